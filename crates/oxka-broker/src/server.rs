//! Broker start-up, the accept loops, background jobs and orderly shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oxka_log::LogManager;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::KafkaConfig;
use crate::controller::Controller;
use crate::coordinator::{GroupCoordinator, TransactionCoordinator};
use crate::replica_manager::ReplicaManager;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot open the log dirs: {0}")]
    Log(#[from] oxka_log::LogError),
    #[error("cannot load cluster metadata: {0}")]
    Metadata(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    ClusterMismatch(String),
    /// A listener's TLS or SASL settings (keystore, users) do not load.
    #[error(transparent)]
    Security(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    HttpBind(#[from] crate::http::BindError),
}

impl BrokerError {
    /// The process exit code for a failed start: 2 when the operator must
    /// change something (a dir locked by another broker or belonging to
    /// another node or cluster), as for an invalid config; 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            BrokerError::Log(
                oxka_log::LogError::DirLocked { .. }
                | oxka_log::LogError::InconsistentNodeId { .. }
                | oxka_log::LogError::InconsistentClusterId { .. },
            ) => 2,
            BrokerError::ClusterMismatch(_) | BrokerError::Security(_) => 2,
            _ => 1,
        }
    }
}

/// Everything a request handler may touch.
pub struct BrokerState {
    pub config: Arc<KafkaConfig>,
    pub cluster_id: String,
    pub controller: Arc<Controller>,
    pub replica_manager: Arc<ReplicaManager>,
    pub group_coordinator: Arc<GroupCoordinator>,
    pub txn_coordinator: Arc<TransactionCoordinator>,
    /// `queued.max.requests`: requests handled at once across connections.
    pub request_slots: Arc<Semaphore>,
    /// `queued.max.request.bytes`: request bytes read and held at once.
    pub request_memory: Arc<crate::network::MemoryPool>,
    /// `max.connections`, `max.connections.per.ip(.overrides)`.
    pub connection_quotas: Arc<crate::network::ConnectionQuotas>,
    pub idle_timeout_ms: u64,
    /// High watermarks of partitions led elsewhere, for consumer lag
    /// (`group_lag`), cached for a few seconds.
    pub end_offsets: crate::group_lag::EndOffsetCache,
    /// Flips to true when the broker is stopping; long polls end early.
    pub shutdown: watch::Receiver<bool>,
    /// Request, network and process metrics (`/metrics`); topic metrics
    /// live with the partitions in the replica manager.
    pub metrics: Arc<crate::metrics::BrokerMetrics>,
    /// `authorizer.class.name`, `super.users`, ...: what every handler's
    /// authorization check reads with the image's ACLs.
    pub authorizer: crate::authorizer::Authorizer,
    /// Client quotas' usage (KIP-55, KIP-124, KIP-599), checked against
    /// the image's quotas.
    pub quotas: crate::quota::QuotaManagers,
}

pub use oxka_log::now_ms;

/// The cluster id a node writes into a data dir it formats itself (no
/// `oxka storage format`): random for a node alone; for a node of a quorum,
/// derived from `controller.quorum.voters`, so every node of one cluster
/// formats itself to the same id without asking the others.
fn cluster_id_for_new_dirs(config: &KafkaConfig) -> String {
    let k = &config.kraft;
    if !k.is_multi_node(config.node_id) {
        return oxka_log::random_cluster_id();
    }
    let mut voters: Vec<String> = k
        .voters
        .iter()
        .map(|v| format!("{}@{}", v.id, v.addr()))
        .collect();
    voters.sort();
    let mut id =
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, voters.join(",").as_bytes()).into_bytes();
    // Kafka's ids never start with '-' (62 in base64url): clear a top bit
    id[0] &= 0x7f;
    oxka_log::uuid_string(id)
}

pub struct Broker {
    state: Arc<BrokerState>,
    log_manager: Arc<LogManager>,
    listeners: Vec<(TcpListener, Arc<crate::network::ListenerSecurity>)>,
    shutdown_tx: watch::Sender<bool>,
    quorum: crate::quorum::node::QuorumNode,
    /// `http.listeners`, bound; served from `run_until`.
    http: Option<crate::http::HttpListener>,
}

impl Broker {
    /// Opens (and recovers) the logs, loads metadata and binds the listeners.
    pub async fn start(config: KafkaConfig) -> Result<Broker, BrokerError> {
        let config = Arc::new(config);
        // keystores and SASL users load before the data dirs are touched
        let securities = crate::network::ListenerSecurity::all_from_config(&config)?;
        let limits = crate::limits::raise_file_limit();
        tracing::info!(
            soft_before = limits.soft_before,
            soft = limits.soft,
            hard = limits.hard,
            segment_file_budget = limits.segment_file_budget,
            "open file limit (RLIMIT_NOFILE)"
        );
        let default_log = config.log_config(&Default::default());
        let log_manager = {
            let config = config.clone();
            let cluster_id = cluster_id_for_new_dirs(&config);
            tokio::task::spawn_blocking(move || {
                LogManager::startup(
                    &config.log_dirs,
                    config.node_id,
                    &cluster_id,
                    default_log,
                    now_ms(),
                )
            })
            .await
            .map_err(|e| BrokerError::Metadata(e.into()))??
        };
        let log_manager = Arc::new(log_manager);
        log_manager.set_min_free_bytes(
            config
                .value("log.dir.min.free.bytes")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0),
        );
        let fetchers = Arc::new(crate::replication::fetcher::ReplicaFetcherManager::new(
            config.node_id,
            crate::replication::fetcher::FetcherSettings::from_config(&config),
        ));
        let instrumented = crate::metrics::BrokerMetrics::enabled_in(&config);
        let mut replica_manager =
            ReplicaManager::with_fetchers(config.node_id, log_manager.clone(), fetchers);
        if !instrumented {
            replica_manager.disable_instrumentation();
        }
        let replica_manager = Arc::new(replica_manager);
        replica_manager
            .fetchers()
            .set_replica_manager(&replica_manager);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let quorum = crate::quorum::node::QuorumNode::start(
            config.clone(),
            log_manager.cluster_id(),
            replica_manager.clone(),
            shutdown_rx.clone(),
        )
        .await?;
        let controller = quorum.controller.clone();
        let group_coordinator = Arc::new(GroupCoordinator::new(
            crate::coordinator_host::group_config(&config),
            controller.clone(),
            replica_manager.clone(),
        ));
        let txn_coordinator = Arc::new(TransactionCoordinator::new(
            crate::coordinator_host::txn_config(&config),
            controller.clone(),
            replica_manager.clone(),
            group_coordinator.clone(),
        ));
        txn_coordinator.set_marker_channel(Arc::new(crate::coordinator_host::MarkerChannel::new(
            &config,
            controller.clone(),
        )));
        // the coordinators follow the leadership of their topics'
        // partitions; those led already are picked up by their first load
        crate::coordinator_host::follow_leadership(
            &replica_manager,
            &group_coordinator,
            &txn_coordinator,
        );
        // Kafka opens the client listeners once the broker is unfenced
        quorum.run_background(shutdown_rx.clone()).await?;
        {
            let rm = replica_manager.clone();
            match tokio::task::spawn_blocking(move || rm.remove_orphan_logs()).await {
                Ok(Ok(removed)) => {
                    for tp in removed {
                        tracing::warn!(partition = %tp, "removed log of a partition this broker no longer hosts");
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "cannot remove orphan logs"),
                Err(e) => tracing::error!(error = %e, "orphan log task failed"),
            }
        }
        let mut listeners = Vec::new();
        for (l, security) in config.listeners.iter().zip(securities) {
            let addr = l.bind_addr();
            let listener = TcpListener::bind(&addr)
                .await
                .map_err(|source| BrokerError::Bind { addr, source })?;
            listeners.push((listener, security));
        }
        let http = crate::http::HttpListener::bind(crate::http::HttpSettings::from_config(&config))
            .await?;
        let idle_timeout_ms = config
            .value("connections.max.idle.ms")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(600_000) as u64;
        let authorizer = crate::authorizer::Authorizer::from_config(&config);
        let state = Arc::new(BrokerState {
            quotas: crate::quota::QuotaManagers::new(&config),
            cluster_id: log_manager.cluster_id().to_string(),
            request_slots: Arc::new(Semaphore::new(config.queued_max_requests.max(1))),
            connection_quotas: crate::network::ConnectionQuotas::new(config.clone()),
            request_memory: crate::network::MemoryPool::from_config(
                config
                    .value("queued.max.request.bytes")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .unwrap_or(-1),
                config.socket_request_max_bytes,
            ),
            config,
            controller,
            replica_manager,
            group_coordinator,
            txn_coordinator,
            idle_timeout_ms,
            end_offsets: Default::default(),
            shutdown: shutdown_rx,
            metrics: Arc::new(crate::metrics::BrokerMetrics::new(instrumented)),
            authorizer,
        });
        Ok(Broker {
            state,
            log_manager,
            listeners,
            shutdown_tx,
            quorum,
            http,
        })
    }

    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// The HTTP listener's bound address (`http.listeners`), if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.local_addr())
    }

    /// Serves until `stop` completes, then stops accepting, lets in-flight
    /// requests finish, flushes every log and writes the checkpoints.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), BrokerError> {
        let Broker {
            state,
            log_manager,
            listeners,
            shutdown_tx,
            mut quorum,
            http,
        } = self;
        let mut connections = JoinSet::new();
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel::<(
            tokio::net::TcpStream,
            Arc<crate::network::ListenerSecurity>,
            crate::network::ConnectionGuard,
            Arc<crate::metrics::ListenerStats>,
        )>(64);
        let mut acceptors = JoinSet::new();
        for (listener, security) in listeners {
            let stats = state.metrics.network.listener(&security.name);
            let tx = conn_tx.clone();
            let mut shutdown = state.shutdown.clone();
            let quotas = state.connection_quotas.clone();
            let broker = state.clone();
            acceptors.spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        r = accept_within_quotas(&listener, &security.name, &quotas, &broker) => match r {
                            Ok(Some((stream, guard))) => {
                                if tx.send((stream, security.clone(), guard, stats.clone())).await.is_err() {
                                    break;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                // EMFILE and friends: back off instead of spinning
                                tracing::error!(error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        },
                    }
                }
            });
        }
        drop(conn_tx);
        let serving = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let http_task = http.map(|h| {
            let ctx = crate::http::HttpContext {
                state: state.clone(),
                serving: serving.clone(),
            };
            h.serve(crate::http::routes(ctx), state.shutdown.clone())
        });
        let background = spawn_background_jobs(&state, &log_manager);
        let retention = spawn_retention_jobs(&state);
        let cleaner = start_log_cleaner(&state.config, &log_manager, &state.metrics);
        let isr_task = crate::replication::isr::spawn(
            state.replica_manager.clone(),
            state.controller.clone(),
            state
                .config
                .value("replica.lag.time.max.ms")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(30_000)
                .max(1),
            state.shutdown.clone(),
        );
        // loads the __consumer_offsets partitions led here (and those that
        // become led here), runs the group timers until shutdown
        let groups_task = state.group_coordinator.spawn(state.shutdown.clone());
        // the same for __transaction_state; completes decided transactions
        // (markers) and aborts timed-out ones
        let txn_task = state.txn_coordinator.spawn(state.shutdown.clone());
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some((stream, security, guard, stats)) = conn_rx.recv() => {
                    let st = state.clone();
                    let shutdown = state.shutdown.clone();
                    st.metrics.network.opened(&stats);
                    connections.spawn(async move {
                        let metrics = st.metrics.clone();
                        tokio::select! {
                            _ = crate::network::serve_connection(st, stream, security, guard.activity(), shutdown) => {}
                            _ = guard.closed_by_quotas() => {
                                tracing::info!("closing a connection: max.connections reached with the inter-broker listener's connections");
                            }
                        }
                        metrics.network.closed(&stats);
                        drop(guard);
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        if let Some(l) = quorum.lifecycle.clone() {
            let multi = state.config.kraft.is_multi_node(state.config.node_id);
            if multi && state.config.kraft.controlled_shutdown {
                let _ = tokio::task::spawn_blocking(move || {
                    l.controlled_shutdown(Duration::from_secs(10))
                })
                .await;
            }
        }
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        serving.store(false, std::sync::atomic::Ordering::Release);
        let _ = shutdown_tx.send(true);
        acceptors.shutdown().await;
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(30), drain)
            .await
            .is_err()
        {
            tracing::warn!("connections did not finish within 30 s; closing them");
            connections.shutdown().await;
        }
        if let Some(t) = http_task {
            let _ = t.await;
        }
        background.abort();
        retention.abort();
        if let Some(c) = cleaner {
            // a pass in progress aborts at its next batch; no swap may run
            // while the logs are flushed for shutdown
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        groups_task.abort();
        txn_task.abort();
        isr_task.abort();
        state.replica_manager.fetchers().shutdown();
        let _ = tokio::task::spawn_blocking(move || quorum.shutdown()).await;
        let lm = log_manager.clone();
        tokio::task::spawn_blocking(move || lm.shutdown())
            .await
            .map_err(|e| BrokerError::Metadata(e.into()))??;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Periodic recovery-point checkpoints and time-based flushes.
fn spawn_background_jobs(
    state: &Arc<BrokerState>,
    log_manager: &Arc<LogManager>,
) -> tokio::task::JoinHandle<()> {
    let lm = log_manager.clone();
    let checkpoint_every = Duration::from_millis(state.config.checkpoint_interval_ms);
    let flush_every = Duration::from_millis(state.config.flush_scheduler_interval_ms.min(1000));
    tokio::spawn(async move {
        let mut checkpoint = tokio::time::interval(checkpoint_every);
        let mut flush = tokio::time::interval(flush_every);
        let mut release = tokio::time::interval(crate::memory::RELEASE_INTERVAL);
        checkpoint.tick().await;
        flush.tick().await;
        release.tick().await;
        loop {
            tokio::select! {
                _ = release.tick() => {
                    let _ = tokio::task::spawn_blocking(crate::memory::release_free_memory).await;
                }
                _ = checkpoint.tick() => {
                    let lm = lm.clone();
                    match tokio::task::spawn_blocking(move || lm.checkpoint()).await {
                        Ok(Err(e)) => tracing::error!(error = %e, "writing checkpoints failed"),
                        Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
                        Ok(Ok(())) => {}
                    }
                }
                _ = flush.tick() => {
                    let lm = lm.clone();
                    let flushed = tokio::task::spawn_blocking(move || {
                        lm.refresh_free_space();
                        lm.flush_dirty(now_ms())
                    });
                    match flushed.await {
                        Ok(Err(e)) => tracing::error!(error = %e, "flushing logs failed"),
                        Err(e) => tracing::error!(error = %e, "flush task failed"),
                        Ok(Ok(())) => {}
                    }
                }
            }
        }
    })
}

/// Retention: a full sweep every `log.retention.check.interval.ms`
/// (Kafka's default interval, 300 s), plus, every second, the passes that
/// fell due because a segment rolled or a topic's config changed, so time
/// retention acts within a second of a closed segment expiring. Both run on
/// the blocking pool; a slow disk never stalls request handling.
fn spawn_retention_jobs(state: &Arc<BrokerState>) -> tokio::task::JoinHandle<()> {
    let rm = state.replica_manager.clone();
    let sweep_ms = state
        .config
        .value("log.retention.check.interval.ms")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(300_000);
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(Duration::from_millis(sweep_ms));
        let mut due = tokio::time::interval(Duration::from_secs(1));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // the first ticks complete at once; start-up already scheduled a
        // pass of every log through `apply_topic`
        sweep.tick().await;
        loop {
            let full = tokio::select! {
                _ = sweep.tick() => true,
                _ = due.tick() => false,
            };
            let rm = rm.clone();
            let started = std::time::Instant::now();
            let run = tokio::task::spawn_blocking(move || {
                if full {
                    rm.cleanup_logs(now_ms())
                } else {
                    rm.run_due_retention(now_ms())
                }
            });
            match run.await {
                Ok(summary) if full || summary.segments_deleted > 0 => {
                    tracing::debug!(
                        full,
                        logs = summary.logs_checked,
                        segments_deleted = summary.segments_deleted,
                        files_removed = summary.files_removed,
                        errors = summary.errors,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "retention pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention task failed"),
            }
        }
    })
}

/// The log cleaner (compaction of `cleanup.policy=compact` topics) on its
/// own thread, as Kafka runs it; its bulk I/O is rate-limited by
/// `log.cleaner.io.max.bytes.per.second` and never holds a partition's lock.
fn start_log_cleaner(
    config: &KafkaConfig,
    log_manager: &Arc<LogManager>,
    metrics: &crate::metrics::BrokerMetrics,
) -> Option<oxka_log::cleaner::CleanerThread> {
    let enabled = config
        .value("log.cleaner.enable")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    if !enabled {
        return None;
    }
    let d = oxka_log::cleaner::CleanerConfig::default();
    let int = |key: &str, fallback: u64| {
        config
            .value(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(fallback, |v| v.max(0) as u64)
    };
    let double = |key: &str, fallback: f64| {
        config
            .value(key)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(fallback)
    };
    let cleaner_config = oxka_log::cleaner::CleanerConfig {
        dedupe_buffer_size: int("log.cleaner.dedupe.buffer.size", d.dedupe_buffer_size),
        dedupe_buffer_load_factor: double(
            "log.cleaner.io.buffer.load.factor",
            d.dedupe_buffer_load_factor,
        ),
        io_buffer_size: int("log.cleaner.io.buffer.size", d.io_buffer_size as u64).max(4096)
            as usize,
        io_max_bytes_per_second: double(
            "log.cleaner.io.max.bytes.per.second",
            d.io_max_bytes_per_second,
        ),
        backoff_ms: int("log.cleaner.backoff.ms", d.backoff_ms),
    };
    let cleaner = Arc::new(oxka_log::cleaner::LogCleaner::new(cleaner_config));
    let _ = metrics.cleaner.set(cleaner.clone());
    match cleaner.start(log_manager.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "could not start the log cleaner thread");
            None
        }
    }
}

/// One connection through the listener's acceptor: accepted, delayed by
/// the creation rates (KIP-612), then counted once the listener and the
/// broker have room (`network::quotas`); `None` when its address is over
/// its limit (the connection is closed) or its connection_creation_rate
/// (closed after the throttle time).
async fn accept_within_quotas(
    listener: &TcpListener,
    name: &str,
    quotas: &Arc<crate::network::ConnectionQuotas>,
    broker: &BrokerState,
) -> std::io::Result<Option<(tokio::net::TcpStream, crate::network::ConnectionGuard)>> {
    let (stream, peer) = listener.accept().await?;
    let delay = quotas.creation_delay(name);
    if !delay.is_zero() {
        tracing::debug!(%peer, listener = name, "connection creation rate: delaying the connection {} ms", delay.as_millis());
        tokio::time::sleep(delay).await;
    }
    // KIP-612: an address over its connection_creation_rate (a client
    // quota of an ip entity) is not served; as Kafka, the socket is
    // closed once the throttle time (at most one window) has passed
    let throttle = broker.quotas.ip_connections.record(
        &broker.controller.image().client_quotas,
        peer.ip(),
        broker.quotas.now_ms(),
    );
    if throttle > 0 {
        tracing::debug!(%peer, listener = name, "connection_creation_rate exceeded: closing the connection in {throttle} ms");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(throttle)).await;
            drop(stream);
        });
        return Ok(None);
    }
    match quotas.acquire(name, peer.ip()).await {
        Ok(guard) => Ok(Some((stream, guard))),
        Err(e) => {
            tracing::info!(%peer, "closing connection: {e}");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_quorum_formats_itself_to_one_cluster_id() {
        let config = |node: &str| {
            let props = std::collections::BTreeMap::from([
                ("node.id".to_string(), node.to_string()),
                (
                    "listeners".to_string(),
                    "PLAINTEXT://:0,CONTROLLER://:1".to_string(),
                ),
                (
                    "controller.listener.names".to_string(),
                    "CONTROLLER".to_string(),
                ),
                (
                    "controller.quorum.voters".to_string(),
                    "1@h:1,2@h:2,3@h:3".to_string(),
                ),
            ]);
            crate::config::KafkaConfig::from_props(props).unwrap().0
        };
        let one = super::cluster_id_for_new_dirs(&config("1"));
        assert_eq!(one, super::cluster_id_for_new_dirs(&config("3")));
        assert!(oxka_log::validate_cluster_id(&one).is_ok() && !one.starts_with('-'));
        let alone = super::cluster_id_for_new_dirs(&crate::config::KafkaConfig::defaults());
        assert_ne!(
            alone,
            super::cluster_id_for_new_dirs(&crate::config::KafkaConfig::defaults())
        );
    }
}
