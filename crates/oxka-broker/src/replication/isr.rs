//! ISR changes go through the controller (Kafka's AlterPartitionManager):
//! the leaders' proposals are batched into one AlterPartition command, and
//! a periodic check (every `replica.lag.time.max.ms / 2`, as Kafka's
//! isr-expiration task) proposes shrinking out followers that lag.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use crate::controller::Controller;
use crate::quorum::protocol::{AlterPartitionItem, Command, CommandOutcome};
use crate::replica_manager::{IsrChange, ReplicaManager};

/// Runs the AlterPartition sender and the lag check until `shutdown`.
pub fn spawn(
    replica_manager: Arc<ReplicaManager>,
    controller: Arc<Controller>,
    lag_ms: i64,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut check = tokio::time::interval(Duration::from_millis((lag_ms / 2).max(10) as u64));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = check.tick() => replica_manager.shrink_isrs(lag_ms),
                changes = replica_manager.next_isr_changes() => {
                    let rm = replica_manager.clone();
                    let c = controller.clone();
                    // the controller's submit blocks until the change is
                    // committed and applied here
                    let _ = tokio::task::spawn_blocking(move || send(&rm, &c, changes)).await;
                }
            }
        }
    })
}

fn send(rm: &ReplicaManager, controller: &Controller, changes: Vec<IsrChange>) {
    let node = rm.node_id();
    let broker_epoch = controller
        .image()
        .brokers
        .get(&node)
        .map_or(-1, |b| b.epoch);
    let items = changes
        .iter()
        .map(|c| AlterPartitionItem {
            topic_id: c.topic_id,
            partition: c.tp.partition,
            leader_epoch: c.leader_epoch,
            partition_epoch: c.partition_epoch,
            new_isr: c.isr.clone(),
            new_isr_broker_epochs: c.broker_epochs.clone(),
        })
        .collect();
    let cmd = Command::AlterPartition {
        broker_id: node,
        broker_epoch,
        changes: items,
    };
    match controller.submit(cmd, Duration::from_secs(10)) {
        Ok(CommandOutcome::Partitions(results)) => {
            for (c, r) in changes.into_iter().zip(results) {
                let Err(e) = r else {
                    rm.isr_change_accepted(&c);
                    continue;
                };
                rm.isr_change_failed();
                let code = ResponseError::try_from_code(e.code);
                tracing::info!(partition = %c.tp, isr = ?c.isr, error = ?code, message = %e.message, "ISR change refused");
                match code {
                    // the metadata has moved on; it settles the change
                    Some(
                        ResponseError::InvalidUpdateVersion | ResponseError::FencedLeaderEpoch,
                    ) => {}
                    _ => rm.isr_change_refused(&c),
                }
            }
        }
        Ok(other) => tracing::warn!(?other, "unexpected answer to AlterPartition"),
        Err(e) => {
            tracing::warn!(error = %e.message, "AlterPartition failed; asking again");
            std::thread::sleep(Duration::from_millis(500));
            for c in changes {
                rm.isr_change_failed();
                rm.retry_isr_change(c);
            }
        }
    }
}
