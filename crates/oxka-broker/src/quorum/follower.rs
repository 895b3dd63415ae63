//! How a broker that is not a voter follows `__cluster_metadata`: it
//! fetches committed batches from the active controller (any voter when
//! none is known) and keeps them in its own in-memory copy of the log,
//! which the publisher reads like a voter's. A broker far behind (or with
//! a wiped data dir) gets the controller's snapshot first. It never votes.

use std::sync::Arc;
use std::time::Duration;

use oxka_controller::quorum::MetadataLog;
use tokio::sync::watch;

use super::protocol::{Request, Response};
use super::raft_manager::CommitSignal;
use super::transport::ControllerNet;
use crate::controller::Controller;

pub async fn follow(
    controller: Arc<Controller>,
    net: Arc<ControllerNet>,
    log: MetadataLog,
    commit: Arc<CommitSignal>,
    voters: Vec<i32>,
    mut shutdown: watch::Receiver<bool>,
) {
    let node_id = controller.config().node_id;
    let mut probe = 0usize;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let target = controller.active_controller().unwrap_or_else(|| {
            probe += 1;
            voters[probe % voters.len().max(1)]
        });
        let req = Request::FetchMetadata {
            replica_id: node_id,
            after: log.commit_index(),
            wait_ms: 500,
        };
        let ok = match net.request(target, req, Duration::from_secs(5)).await {
            Ok(Response::Metadata(chunk)) => {
                controller.set_leader_hint(chunk.leader);
                if let Some(s) = chunk.snapshot {
                    tracing::info!(
                        offset = s.index,
                        "loading a metadata snapshot from node {target}"
                    );
                    log.follow_snapshot(s);
                }
                log.follow_append(&chunk.entries, chunk.commit);
                commit.set(log.commit_index());
                true
            }
            Ok(Response::NotController { leader }) => {
                controller.set_leader_hint(leader);
                false
            }
            Ok(_) | Err(_) => {
                controller.set_leader_hint(None);
                false
            }
        };
        if !ok {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}
