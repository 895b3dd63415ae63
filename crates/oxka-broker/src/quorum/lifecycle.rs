//! Kafka's BrokerLifecycleManager: registers this broker with the active
//! controller (incarnation id, listeners, rack), heartbeats every
//! `broker.heartbeat.interval.ms` with the metadata offset it has applied
//! (the controller unfences it once that reaches its registration), and on
//! shutdown asks to be fenced so its leaderships move first (controlled
//! shutdown).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use oxka_controller::records::Endpoint;
use tokio::sync::watch;
use uuid::Uuid;

use crate::controller::Controller;
use crate::quorum::protocol::{Command, CommandOutcome};

pub struct BrokerLifecycle {
    controller: Arc<Controller>,
    node_id: i32,
    incarnation_id: Uuid,
    endpoints: Vec<Endpoint>,
    rack: Option<String>,
    interval: Duration,
    epoch: AtomicI64,
    fenced: AtomicBool,
    unfenced: watch::Sender<bool>,
    /// Told the registration, so it takes partition roles once the
    /// metadata holds it.
    replica_manager: Arc<crate::replica_manager::ReplicaManager>,
}

impl BrokerLifecycle {
    pub fn new(
        controller: Arc<Controller>,
        replica_manager: Arc<crate::replica_manager::ReplicaManager>,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        interval: Duration,
    ) -> Arc<BrokerLifecycle> {
        Arc::new(BrokerLifecycle {
            node_id: controller.config().node_id,
            controller,
            incarnation_id: Uuid::new_v4(),
            endpoints,
            rack,
            interval,
            epoch: AtomicI64::new(-1),
            fenced: AtomicBool::new(true),
            unfenced: watch::channel(false).0,
            replica_manager,
        })
    }

    pub fn replica_manager(&self) -> &Arc<crate::replica_manager::ReplicaManager> {
        &self.replica_manager
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// Resolves once the controller has unfenced this broker.
    pub async fn wait_unfenced(&self) {
        let mut rx = self.unfenced.subscribe();
        let _ = rx.wait_for(|u| *u).await;
    }

    fn register(&self) -> Result<(), String> {
        let cmd = Command::RegisterBroker {
            broker_id: self.node_id,
            incarnation_id: self.incarnation_id,
            endpoints: self.endpoints.clone(),
            rack: self.rack.clone(),
        };
        match self
            .controller
            .submit(cmd, self.interval.max(Duration::from_secs(5)))
        {
            Ok(CommandOutcome::Registered { broker_epoch }) => {
                self.epoch.store(broker_epoch, Ordering::Release);
                self.replica_manager.set_registered_epoch(broker_epoch);
                tracing::info!(broker_epoch, "registered with the active controller");
                Ok(())
            }
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(e.message),
        }
    }

    /// One heartbeat (registering first when needed).
    fn heartbeat(&self, want_shut_down: bool) -> Result<bool, String> {
        if self.epoch.load(Ordering::Acquire) < 0 {
            self.register()?;
        }
        let cmd = Command::BrokerHeartbeat {
            broker_id: self.node_id,
            broker_epoch: self.epoch.load(Ordering::Acquire),
            applied: self.controller.publisher().applied(),
            want_shut_down,
        };
        match self
            .controller
            .submit(cmd, self.interval.max(Duration::from_secs(2)))
        {
            Ok(CommandOutcome::Heartbeat { fenced, shut_down }) => {
                self.replica_manager.heartbeat_answered();
                let was = self.fenced.swap(fenced, Ordering::AcqRel);
                if was && !fenced {
                    tracing::info!("unfenced: serving as a broker of the cluster");
                } else if !was && fenced && !want_shut_down {
                    tracing::warn!("fenced by the controller");
                }
                let _ = self.unfenced.send(!fenced);
                Ok(shut_down)
            }
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) if e.code == ResponseError::StaleBrokerEpoch => {
                // the controller lost or replaced our registration
                self.epoch.store(-1, Ordering::Release);
                Err(e.message)
            }
            Err(e) => Err(e.message),
        }
    }

    /// Heartbeats until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            let me = self.clone();
            let r = tokio::task::spawn_blocking(move || me.heartbeat(false)).await;
            match r {
                Ok(Ok(_)) => failures = 0,
                Ok(Err(e)) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(10) {
                        tracing::warn!(error = %e, "broker heartbeat failed");
                    }
                }
                Err(_) => {}
            }
            // until unfenced, beat faster: start-up waits on it
            let wait = if self.is_fenced() {
                self.interval.min(Duration::from_millis(200))
            } else {
                self.interval
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Controlled shutdown: heartbeats asking to shut down until the
    /// controller has fenced this broker (its leaderships moved), at most
    /// `timeout`.
    pub fn controlled_shutdown(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            match self.heartbeat(true) {
                Ok(true) => {
                    tracing::info!(
                        "controlled shutdown: the controller moved this broker's leaderships"
                    );
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "controlled shutdown heartbeat failed"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tracing::warn!("controlled shutdown did not complete; stopping anyway");
    }
}
