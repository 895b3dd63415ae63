//! How a node joins the metadata quorum at start-up (Kafka's
//! SharedServer / ControllerServer / BrokerServer start-up, in one):
//! the controller listener and the connections to the voters, the Raft
//! node on voters or the log follower on brokers, the publisher, the
//! migration of a single-node release's metadata, the broker's
//! registration, and the wait until this broker is unfenced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oxka_controller::quorum::disk::DiskStore;
use oxka_controller::quorum::{MetadataLog, QuorumConfig, WireMessage};
use oxka_controller::records::Endpoint;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::lifecycle::BrokerLifecycle;
use super::publisher::{LogSource, MetadataPublisher};
use super::raft_manager::{CommitSignal, RaftManager, RaftTransport, TICK};
use super::service::ControllerService;
use super::transport::ControllerNet;
use crate::config::KafkaConfig;
use crate::controller::Controller;
use crate::replica_manager::ReplicaManager;
use crate::server::BrokerError;

/// A quorum of one sends nothing anywhere.
struct NoPeers;

impl RaftTransport for NoPeers {
    fn send(&self, _msg: WireMessage) -> bool {
        false
    }
}

/// This node's part in the quorum, running.
pub struct QuorumNode {
    pub controller: Arc<Controller>,
    net: Option<Arc<ControllerNet>>,
    pub raft: Option<Arc<RaftManager>>,
    pub lifecycle: Option<Arc<BrokerLifecycle>>,
    publisher_stop: Arc<AtomicBool>,
    publisher_thread: Option<std::thread::JoinHandle<()>>,
}

fn quorum_config(config: &KafkaConfig) -> QuorumConfig {
    let k = &config.kraft;
    let ticks = |ms: u64| ((ms / TICK.as_millis() as u64).max(1)) as usize;
    let election = ticks(k.election_timeout_ms).max(3);
    QuorumConfig {
        node_id: config.node_id as u64,
        voters: k
            .voter_ids(config.node_id)
            .into_iter()
            .map(|v| v as u64)
            .collect(),
        election_tick: election,
        max_election_tick: election * 2,
        heartbeat_tick: (election / 5).max(1),
    }
}

/// The endpoints a broker registers: its client listeners, with the
/// advertised host and port where one is set.
fn endpoints(config: &KafkaConfig) -> Vec<Endpoint> {
    config
        .listeners
        .iter()
        .map(|l| {
            let adv = config
                .advertised_listeners
                .iter()
                .find(|a| a.name == l.name);
            let (host, port) = match adv {
                Some(a) if !a.host.is_empty() => (a.host.clone(), a.port),
                _ if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" => {
                    ("localhost".to_string(), l.port)
                }
                _ => (l.host.clone(), l.port),
            };
            Endpoint {
                name: l.name.clone(),
                host,
                port,
                security_protocol: config.listener_protocol(&l.name).name().into(),
            }
        })
        .collect()
}

impl QuorumNode {
    /// Starts everything up to (not including) the broker's registration.
    pub async fn start(
        config: Arc<KafkaConfig>,
        cluster_id: &str,
        replica_manager: Arc<ReplicaManager>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<QuorumNode, BrokerError> {
        let k = &config.kraft;
        let node_id = config.node_id;
        let multi = k.is_multi_node(node_id);
        if k.broker {
            // no partition role from replayed metadata before this
            // incarnation's registration is in it
            replica_manager.hold_roles_until_registered();
        }
        let lifecycle_rm = replica_manager.clone();
        let voter_addrs: Vec<(i32, String)> = k.voters.iter().map(|v| (v.id, v.addr())).collect();
        let net = if multi {
            Some(ControllerNet::start(
                node_id,
                cluster_id.to_string(),
                &voter_addrs,
                shutdown.clone(),
            ))
        } else {
            None
        };
        if let (Some(net), Some(l), true) = (&net, &k.controller_listener, k.controller) {
            let addr = l.bind_addr();
            let listener = TcpListener::bind(&addr)
                .await
                .map_err(|source| BrokerError::Bind { addr, source })?;
            tokio::spawn(net.clone().serve(listener, shutdown.clone()));
        }
        let legacy = if k.is_voter(node_id) && !DiskStore::exists(&k.metadata_log_dir) {
            let first = config.log_dirs.first().cloned().unwrap_or_default();
            super::migration::find(&first).map_err(|e| BrokerError::Metadata(e.into()))?
        } else {
            None
        };
        let publisher = MetadataPublisher::new();
        let (raft, source) = if k.is_voter(node_id) {
            let store = DiskStore::open(&k.metadata_log_dir)
                .map_err(|e| BrokerError::Metadata(e.into()))?;
            let transport: Arc<dyn RaftTransport> = match &net {
                Some(n) => n.clone(),
                None => Arc::new(NoPeers),
            };
            let raft = RaftManager::start(quorum_config(&config), store, transport)
                .map_err(|e| BrokerError::Metadata(e.into()))?;
            if let Some(n) = &net {
                n.set_raft(raft.clone());
            }
            let source = LogSource {
                log: raft.log().clone(),
                commit: raft.commit_signal().clone(),
                raft: Some(raft.clone()),
            };
            (Some(raft), source)
        } else {
            let source = LogSource {
                log: MetadataLog::default(),
                commit: Arc::new(CommitSignal::default()),
                raft: None,
            };
            (None, source)
        };
        let controller = Arc::new(Controller::new(
            config.clone(),
            publisher.clone(),
            raft.clone(),
            net.clone(),
        ));
        if let Some(n) = &net {
            n.set_handler(Arc::new(ControllerService {
                controller: controller.clone(),
                log: source.log.clone(),
                commit: source.commit.clone(),
            }));
            if raft.is_none() {
                tokio::spawn(super::follower::follow(
                    controller.clone(),
                    n.clone(),
                    source.log.clone(),
                    source.commit.clone(),
                    k.voters.iter().map(|v| v.id).collect(),
                    shutdown.clone(),
                ));
            }
        }
        let publisher_stop = Arc::new(AtomicBool::new(false));
        let commit = source.commit.clone();
        let publisher_thread = publisher
            .start(
                source,
                replica_manager,
                config.clone(),
                k.snapshot_bytes,
                publisher_stop.clone(),
            )
            .map_err(|e| BrokerError::Metadata(e.into()))?;
        if let Some(legacy) = legacy {
            if k.voter_ids(node_id).len() == 1 {
                let records = legacy.records.clone();
                let c = controller.clone();
                tokio::task::spawn_blocking(move || c.commit_migration(records))
                    .await
                    .map_err(|e| BrokerError::Metadata(e.into()))?
                    .map_err(|e| BrokerError::Metadata(e.message.into()))?;
                super::migration::mark_migrated(&legacy)
                    .map_err(|e| BrokerError::Metadata(e.into()))?;
                tracing::info!(
                    topics = legacy.topics,
                    file = %legacy.path.display(),
                    "migrated the single-node metadata file into the metadata log"
                );
            } else {
                tracing::warn!(
                    file = %legacy.path.display(),
                    "a single-node metadata file is in this data dir; start the node alone once (no controller.quorum.voters) to migrate it"
                );
            }
        }
        // what is committed already (all of it, on a quorum of one)
        {
            let p = publisher.clone();
            tokio::task::spawn_blocking(move || {
                // a new leader commits its first entry within a few ticks
                let c = commit.wait_past(0, Duration::from_millis(500));
                p.wait_applied(c, Duration::from_secs(30))
            })
            .await
            .map_err(|e| BrokerError::Metadata(e.into()))?;
        }
        let lifecycle = k.broker.then(|| {
            BrokerLifecycle::new(
                controller.clone(),
                lifecycle_rm,
                endpoints(&config),
                config.broker_rack.clone(),
                Duration::from_millis(k.heartbeat_interval_ms),
            )
        });
        Ok(QuorumNode {
            controller,
            net,
            raft,
            lifecycle,
            publisher_stop,
            publisher_thread: Some(publisher_thread),
        })
    }

    /// Registers and heartbeats (brokers), fences expired brokers (the
    /// active controller); resolves once this broker is unfenced, or fails
    /// when a voter refuses this node as one of another cluster.
    pub async fn run_background(&self, shutdown: watch::Receiver<bool>) -> Result<(), BrokerError> {
        let mut refused = match &self.net {
            Some(n) => n.refused(),
            None => watch::channel(None).1,
        };
        if self.raft.is_some() {
            let c = self.controller.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    let c = c.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        c.fence_expired_brokers();
                        c.rebalance_leaders();
                    })
                    .await;
                }
            });
        }
        if let Some(l) = &self.lifecycle {
            tokio::spawn(l.clone().run(shutdown));
            let mut waited = 0u64;
            let wait = l.wait_unfenced();
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    Ok(()) = refused.changed() => {
                        if let Some(reason) = refused.borrow().clone() {
                            return Err(BrokerError::ClusterMismatch(reason));
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        waited += 5;
                        tracing::info!(waited_s = waited, "waiting to be unfenced by the active controller (a majority of controller.quorum.voters must be up)");
                    }
                }
            }
            // unfenced means registered: the publisher takes the roles on
            // its next pass (within 200 ms); serve only once it has
            let rm = l.replica_manager();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !rm.roles_taken() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(())
    }

    /// Stops the quorum's threads. The controlled shutdown happened
    /// before (`Broker::run_until`, while the node could still reach the
    /// controller): a second one here, after the listeners closed, only
    /// waited out its timeout.
    pub fn shutdown(&mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.publisher_stop.store(true, Ordering::Release);
        if let Some(t) = self.publisher_thread.take() {
            let _ = t.join();
        }
        if let Some(r) = &self.raft {
            r.shutdown();
        }
    }
}

/// A broker dropped without an orderly stop (a simulated crash in tests)
/// must not leave the quorum's threads holding the logs (and their dir
/// locks).
impl Drop for QuorumNode {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// A single node's quorum and registered broker, for unit tests that need
/// a [`Controller`] without a whole broker: keep the returned guard alive.
#[cfg(test)]
pub fn single_node_for_tests(
    config: Arc<KafkaConfig>,
    replica_manager: Arc<ReplicaManager>,
) -> (Arc<Controller>, TestQuorum) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime");
    let (stop, rx) = watch::channel(false);
    let node = rt
        .block_on(QuorumNode::start(
            config,
            "test-cluster-id-000000",
            replica_manager,
            rx.clone(),
        ))
        .expect("quorum of one starts");
    rt.block_on(node.run_background(rx)).expect("unfenced");
    let controller = node.controller.clone();
    (
        controller,
        TestQuorum {
            node: Some(node),
            stop,
            rt: Some(rt),
        },
    )
}

#[cfg(test)]
pub struct TestQuorum {
    node: Option<QuorumNode>,
    stop: watch::Sender<bool>,
    rt: Option<tokio::runtime::Runtime>,
}

#[cfg(test)]
impl Drop for TestQuorum {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(mut n) = self.node.take() {
            n.shutdown();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
