//! The replica manager: the partitions this broker hosts, their logs, their
//! roles (leader or follower) and the high watermark that bounds what
//! consumers may read.
//!
//! A leader's high watermark is the smallest log end offset in its ISR
//! (`replication::state`); with one node the ISR is `{self}` and it follows
//! the log end offset. A follower's partitions are fed by the
//! `ReplicaFetcherManager`, which appends the leader's batches as they are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use oxka_log::{LogAppendInfo, LogError, LogManager, RecordError, TopicPartition};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::KafkaConfig;
use crate::metadata::TopicInfo;
use crate::replication::fetcher::ReplicaFetcherManager;
use crate::replication::state::{ReplicaState, RoleChange};
use crate::replication::truncation::Truncation;

pub type SharedLog = Arc<Mutex<oxka_log::Log>>;

pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub log: SharedLog,
    leader_epoch: AtomicI32,
    high_watermark: AtomicI64,
    min_insync_replicas: AtomicI32,
    isr_size: AtomicI32,
    /// This broker leads the partition (the metadata says so); only then
    /// does it take produce requests and serve fetches.
    leader: AtomicBool,
    /// Roles, ISR and followers' progress. Lock order: the log first.
    state: Mutex<ReplicaState>,
    /// The topic's BrokerTopicMetrics, looked up once here so the produce
    /// and fetch paths count without a map lookup.
    pub stats: Arc<crate::metrics::TopicStats>,
}

impl Partition {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.lock().log_start_offset()
    }

    /// The committed ISR's size (what `min.insync.replicas` is checked
    /// against).
    pub fn isr_size(&self) -> i32 {
        self.isr_size.load(Ordering::Acquire)
    }

    pub fn min_insync_replicas(&self) -> i32 {
        self.min_insync_replicas.load(Ordering::Acquire)
    }

    /// A copy of the replication state (tests, describe tools).
    pub fn replica_state(&self) -> ReplicaState {
        self.state.lock().clone()
    }

    /// Moves the high watermark to the smallest log end offset of the
    /// ISR, never backwards; true when it moved.
    fn maybe_increment_high_watermark(&self, log_end_offset: i64) -> bool {
        let candidate = self.state.lock().high_watermark_candidate(log_end_offset);
        if candidate < 0 {
            return false;
        }
        self.high_watermark.fetch_max(candidate, Ordering::AcqRel) < candidate
    }

    /// KIP-320: a client or follower that names the leader epoch it knows
    /// is told when it is behind (FENCED_LEADER_EPOCH: refresh metadata)
    /// or ahead (UNKNOWN_LEADER_EPOCH: this broker has not caught up).
    pub fn check_leader_epoch(&self, current_leader_epoch: i32) -> Result<(), ResponseError> {
        let epoch = self.leader_epoch();
        if current_leader_epoch < 0 || current_leader_epoch == epoch {
            Ok(())
        } else if current_leader_epoch < epoch {
            Err(ResponseError::FencedLeaderEpoch)
        } else {
            Err(ResponseError::UnknownLeaderEpoch)
        }
    }
}

/// What a produce to one partition failed with, as the Kafka error to send.
#[derive(Debug)]
pub struct AppendError {
    pub error: ResponseError,
    pub message: String,
    /// The records refused one by one (KIP-467), by index within their
    /// batch; empty when the whole append failed for another reason.
    pub record_errors: Vec<RecordError>,
}

impl AppendError {
    pub(crate) fn new(error: ResponseError, message: impl Into<String>) -> Self {
        AppendError {
            error,
            message: message.into(),
            record_errors: Vec::new(),
        }
    }

    /// A storage error, with the records it names (and, for timestamps,
    /// Kafka's summary as the message: the records carry the details).
    fn from_log(e: LogError) -> Self {
        let error = log_error_code(&e);
        let (message, record_errors) = match e {
            LogError::InvalidRecords(ref records) => (e.to_string(), records.clone()),
            LogError::InvalidTimestamp { record_errors, .. } => (
                "One or more records have been rejected due to invalid timestamp".to_string(),
                record_errors,
            ),
            e => (e.to_string(), Vec::new()),
        };
        AppendError {
            error,
            message,
            record_errors,
        }
    }
}

/// Maps a storage error to the Kafka error a client understands.
pub fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::CorruptRecord(_) => ResponseError::CorruptMessage,
        LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge,
        LogError::InvalidRecord(_) => ResponseError::InvalidRecord,
        LogError::InvalidRecords(_) => ResponseError::InvalidRecord,
        LogError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
        LogError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        LogError::TransactionCoordinatorFenced(_) => ResponseError::TransactionCoordinatorFenced,
        e if e.is_io() => ResponseError::KafkaStorageError,
        _ => ResponseError::UnknownServerError,
    }
}

/// A partition's leadership moved to or away from this broker: what the
/// coordinators follow for their internal topics' partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadershipChange {
    /// Leads now, in this leader epoch (the coordinator epoch).
    Leader { leader_epoch: i32 },
    /// Follows, has no leader, or no longer hosts the partition.
    NotLeader,
}

/// Called on the metadata publisher's thread: must not block.
pub type LeadershipListener = Box<dyn Fn(&TopicPartition, LeadershipChange) + Send + Sync>;

/// An ISR change a leader asks the controller for (AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
    /// KIP-903: the broker epoch each member last fetched with.
    pub broker_epochs: Vec<i64>,
    /// A follower leaves the ISR (else one joins it).
    pub shrink: bool,
}

pub struct ReplicaManager {
    node_id: i32,
    log_manager: Arc<LogManager>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Bumped after every append and every high-watermark move:
    /// long-polling fetches and acks=all produces wait on it.
    data_changed: watch::Sender<u64>,
    fetchers: Arc<ReplicaFetcherManager>,
    /// ISR changes waiting to be sent, one per partition at most.
    isr_changes: Mutex<HashMap<TopicPartition, IsrChange>>,
    isr_changes_ready: tokio::sync::Notify,
    leadership_listeners: RwLock<Vec<LeadershipListener>>,
    /// Roles (leader, follower) are taken only once this incarnation's
    /// registration is in the image: a restarted broker replays metadata
    /// from before it stopped and must not act as leader of an old epoch
    /// meanwhile (Kafka's brokers wait for their initial metadata
    /// catch-up too). Open from the start where nothing registers.
    roles_enabled: AtomicBool,
    /// Set once the roles of every topic were taken (see `roles_taken`).
    roles_taken: AtomicBool,
    /// The broker epoch this incarnation registered with; -1 before.
    registered_epoch: AtomicI64,
    /// When (`now_ms`) the controller last answered this broker's
    /// heartbeat; -1 before the first answer (readiness).
    heartbeat_answered_ms: AtomicI64,
    /// Per-topic BrokerTopicMetrics of the partitions hosted here.
    topic_stats: crate::metrics::BrokerTopicStats,
    /// ISR changes of partitions led here that the controller accepted
    /// (IsrShrinksPerSec, IsrExpandsPerSec) or refused or did not answer
    /// (FailedIsrUpdatesPerSec), counted where Kafka's Partition counts
    /// them: on the AlterPartition answer. A shrink the controller makes
    /// itself (fencing a broker) is no leader's and, as in Kafka, not
    /// counted here.
    isr_shrinks: std::sync::atomic::AtomicU64,
    isr_expands: std::sync::atomic::AtomicU64,
    isr_update_failures: std::sync::atomic::AtomicU64,
}

impl ReplicaManager {
    pub fn new(node_id: i32, log_manager: Arc<LogManager>) -> Self {
        Self::with_fetchers(
            node_id,
            log_manager,
            Arc::new(ReplicaFetcherManager::new(node_id, Default::default())),
        )
    }

    pub fn with_fetchers(
        node_id: i32,
        log_manager: Arc<LogManager>,
        fetchers: Arc<ReplicaFetcherManager>,
    ) -> Self {
        ReplicaManager {
            node_id,
            log_manager,
            partitions: RwLock::new(HashMap::new()),
            data_changed: watch::Sender::new(0),
            fetchers,
            isr_changes: Mutex::new(HashMap::new()),
            isr_changes_ready: tokio::sync::Notify::new(),
            leadership_listeners: RwLock::new(Vec::new()),
            roles_enabled: AtomicBool::new(true),
            roles_taken: AtomicBool::new(true),
            registered_epoch: AtomicI64::new(-1),
            heartbeat_answered_ms: AtomicI64::new(-1),
            topic_stats: crate::metrics::BrokerTopicStats::new(true),
            isr_shrinks: Default::default(),
            isr_expands: Default::default(),
            isr_update_failures: Default::default(),
        }
    }

    /// `metrics.instrumentation.enable=false`: topic metrics record
    /// nothing. Before any partition is hosted.
    pub fn disable_instrumentation(&mut self) {
        self.topic_stats = crate::metrics::BrokerTopicStats::new(false);
    }

    pub fn topic_stats(&self) -> &crate::metrics::BrokerTopicStats {
        &self.topic_stats
    }

    /// (ISR shrinks, ISR expansions, failed ISR updates) so far.
    pub fn isr_change_counts(&self) -> (u64, u64, u64) {
        (
            self.isr_shrinks.load(Ordering::Relaxed),
            self.isr_expands.load(Ordering::Relaxed),
            self.isr_update_failures.load(Ordering::Relaxed),
        )
    }

    /// The controller committed `change` (Kafka marks IsrShrinksPerSec or
    /// IsrExpandsPerSec on that answer).
    pub fn isr_change_accepted(&self, change: &IsrChange) {
        let counter = if change.shrink {
            &self.isr_shrinks
        } else {
            &self.isr_expands
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An AlterPartition failed for `change`: refused, or no answer
    /// (FailedIsrUpdatesPerSec).
    pub fn isr_change_failed(&self) {
        self.isr_update_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Holds roles back until [`Self::maybe_enable_roles`] finds this
    /// incarnation's registration (a broker that registers at start-up).
    pub fn hold_roles_until_registered(&self) {
        self.roles_enabled.store(false, Ordering::Release);
        self.roles_taken.store(false, Ordering::Release);
    }

    pub fn roles_enabled(&self) -> bool {
        self.roles_enabled.load(Ordering::Acquire)
    }

    /// Every partition's role has been taken from the metadata (after
    /// [`Self::roles_enabled`] turns true, once every topic is applied and
    /// its leadership listeners told, e.g. the coordinators own their
    /// partitions): what start-up waits for before it serves, so a client
    /// is never told NOT_COORDINATOR by a broker about to lead.
    pub fn roles_taken(&self) -> bool {
        self.roles_taken.load(Ordering::Acquire)
    }

    /// The controller answered a heartbeat of this broker just now.
    pub fn heartbeat_answered(&self) {
        self.heartbeat_answered_ms
            .store(crate::server::now_ms(), Ordering::Release);
    }

    /// When the controller last answered a heartbeat (`now_ms`), if ever.
    pub fn last_heartbeat_answer_ms(&self) -> Option<i64> {
        let at = self.heartbeat_answered_ms.load(Ordering::Acquire);
        (at >= 0).then_some(at)
    }

    /// The registration the lifecycle got (its broker epoch).
    pub fn set_registered_epoch(&self, epoch: i64) {
        self.registered_epoch.store(epoch, Ordering::Release);
    }

    /// Called by the metadata publisher (on its thread, so roles are never
    /// applied from two images at once): once `image` holds this broker's
    /// registration, roles are taken from it for every topic.
    pub fn maybe_enable_roles(
        &self,
        image: &oxka_controller::image::MetadataImage,
        config: &KafkaConfig,
    ) {
        if self.roles_enabled() {
            return;
        }
        let epoch = self.registered_epoch.load(Ordering::Acquire);
        if epoch < 0 || image.brokers.get(&self.node_id).map(|b| b.epoch) != Some(epoch) {
            return;
        }
        self.roles_enabled.store(true, Ordering::Release);
        tracing::info!(
            broker_epoch = epoch,
            "registered: taking partition roles from the metadata"
        );
        for t in image.topics.values() {
            if let Err(e) = self.apply_topic(t, config) {
                tracing::error!(topic = %t.name, error = %e, "cannot open the logs of a topic");
            }
        }
        self.roles_taken.store(true, Ordering::Release);
    }

    /// Registers a listener for leadership changes of every partition
    /// (the coordinators load and unload their partitions' state with it).
    pub fn add_leadership_listener(&self, listener: LeadershipListener) {
        self.leadership_listeners.write().push(listener);
    }

    fn notify_leadership(&self, tp: &TopicPartition, change: LeadershipChange) {
        for l in self.leadership_listeners.read().iter() {
            l(tp, change);
        }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn fetchers(&self) -> &Arc<ReplicaFetcherManager> {
        &self.fetchers
    }

    fn notify_data_changed(&self) {
        self.data_changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn log_manager(&self) -> &Arc<LogManager> {
        &self.log_manager
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.data_changed.subscribe()
    }

    pub fn get_partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// Makes the hosted partitions of `topic` match the metadata: opens or
    /// creates the logs of partitions led here and applies the topic configs.
    pub fn apply_topic(&self, topic: &TopicInfo, config: &KafkaConfig) -> Result<(), LogError> {
        let log_config = config.log_config(&topic.configs);
        let retention = config.retention_config(&topic.configs);
        let min_isr = topic
            .configs
            .get("min.insync.replicas")
            .cloned()
            .or_else(|| config.value("min.insync.replicas"))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(1);
        for (i, p) in topic.partitions.iter().enumerate() {
            let tp = TopicPartition::new(topic.name.clone(), i as i32);
            if !p.replicas.contains(&self.node_id) {
                // reassigned away (KIP-455): Kafka's StopReplica with delete
                if self.get_partition(&tp).is_some() {
                    tracing::info!(partition = %tp, "no longer a replica: deleting the local log");
                    self.remove_partitions(std::slice::from_ref(&tp))?;
                }
                continue;
            }
            if let Some(existing) = self.get_partition(&tp) {
                {
                    let mut log = existing.log.lock();
                    log.set_config(log_config.clone());
                    log.set_retention_config(retention.clone());
                }
                // settings may have changed: a retention pass soon applies them
                self.log_manager.request_retention_check(&tp);
                existing
                    .min_insync_replicas
                    .store(min_isr, Ordering::Release);
                self.apply_partition(&existing, p);
                continue;
            }
            let log = self
                .log_manager
                .get_or_create_log(&tp, log_config.clone())?;
            {
                let mut l = log.lock();
                l.set_config(log_config.clone());
                l.set_retention_config(retention.clone());
            }
            let (leo, log_start) = {
                let l = log.lock();
                (l.log_end_offset(), l.log_start_offset())
            };
            if leo > 0 {
                // a log loaded at start-up: its first retention pass comes
                // after Kafka's `log.initial.task.delay.ms` (30 s), not the
                // moment the broker is up; new empty logs need none
                self.log_manager.schedule_retention_check(
                    &tp,
                    crate::server::now_ms()
                        .saturating_add(oxka_log::RETENTION_PASS_MIN_INTERVAL_MS),
                );
            }
            // A restarted replica's high watermark: Kafka keeps it in a
            // checkpoint; here the log end for a sole replica, else the log
            // start until the ISR's fetches (leader) or the leader's answer
            // (follower) tell.
            let partition = Arc::new(Partition {
                tp: tp.clone(),
                topic_id: topic.id,
                log,
                leader_epoch: AtomicI32::new(-1),
                high_watermark: AtomicI64::new(if p.replicas.len() == 1 {
                    leo
                } else {
                    log_start
                }),
                min_insync_replicas: AtomicI32::new(min_isr),
                isr_size: AtomicI32::new(p.isr.len() as i32),
                leader: AtomicBool::new(false),
                state: Mutex::new(ReplicaState::new(self.node_id)),
                stats: self.topic_stats.topic(&tp.topic),
            });
            self.partitions.write().insert(tp, partition.clone());
            self.apply_partition(&partition, p);
        }
        Ok(())
    }

    /// Takes a partition's new metadata: role, epoch and ISR, and starts or
    /// stops fetching it from its leader.
    fn apply_partition(
        &self,
        partition: &Arc<Partition>,
        p: &oxka_controller::image::PartitionInfo,
    ) {
        let now = crate::server::now_ms();
        let leo = partition.log.lock().log_end_offset();
        // before this incarnation is registered: hosted, no role
        let held;
        let p = if self.roles_enabled() {
            p
        } else {
            held = oxka_controller::image::PartitionInfo {
                leader: -1,
                ..p.clone()
            };
            &held
        };
        let change = partition.state.lock().apply(p, leo, now);
        partition
            .isr_size
            .store(p.isr.len() as i32, Ordering::Release);
        partition
            .leader_epoch
            .store(p.leader_epoch, Ordering::Release);
        partition
            .leader
            .store(p.leader == self.node_id, Ordering::Release);
        match change {
            RoleChange::BecameLeader => {
                self.fetchers.remove_partition(&partition.tp);
                // batches of this epoch start here (Kafka's
                // maybeAssignEpochStartOffset on makeLeader)
                let mut log = partition.log.lock();
                let leo = log.log_end_offset();
                if let Err(e) = log.assign_epoch_start_offset(p.leader_epoch, leo) {
                    tracing::error!(partition = %partition.tp, error = %e, "cannot record the new leader epoch");
                }
                drop(log);
                tracing::info!(partition = %partition.tp, epoch = p.leader_epoch, leo, "leading");
                self.notify_leadership(
                    &partition.tp,
                    LeadershipChange::Leader {
                        leader_epoch: p.leader_epoch,
                    },
                );
            }
            RoleChange::BecameFollower { leader } => {
                self.fetchers
                    .add_partition(partition.clone(), leader, p.leader_epoch);
                tracing::debug!(partition = %partition.tp, leader, epoch = p.leader_epoch, "following");
                self.notify_leadership(&partition.tp, LeadershipChange::NotLeader);
            }
            RoleChange::Stopped => {
                self.fetchers.remove_partition(&partition.tp);
                self.notify_leadership(&partition.tp, LeadershipChange::NotLeader);
            }
            RoleChange::Unchanged => {}
        }
        // a smaller ISR may let the high watermark move
        if partition.is_leader() && partition.maybe_increment_high_watermark(leo) {
            self.notify_data_changed();
        }
    }

    /// Stops hosting every partition of `topic` and deletes their logs.
    pub fn remove_topic(&self, topic: &str) -> Result<(), LogError> {
        let hosted: Vec<TopicPartition> = self
            .partitions
            .read()
            .keys()
            .filter(|tp| tp.topic == topic)
            .cloned()
            .collect();
        self.topic_stats.remove_topic(topic);
        self.remove_partitions(&hosted)
    }

    /// Stops hosting `partitions` and deletes their logs, also logs that
    /// were created but never hosted (a creation that failed half-way).
    pub fn remove_partitions(&self, partitions: &[TopicPartition]) -> Result<(), LogError> {
        {
            let mut parts = self.partitions.write();
            for tp in partitions {
                parts.remove(tp);
                self.fetchers.remove_partition(tp);
            }
        }
        for tp in partitions {
            self.notify_leadership(tp, LeadershipChange::NotLeader);
        }
        for tp in partitions {
            self.log_manager.delete_log(tp)?;
        }
        Ok(())
    }

    /// Deletes logs on disk that no topic in the metadata claims (left by a
    /// crash between a metadata change and the matching log change).
    pub fn remove_orphan_logs(&self) -> Result<Vec<TopicPartition>, LogError> {
        let hosted = self.partitions.read();
        let mut removed = Vec::new();
        for (tp, _) in self.log_manager.all_logs() {
            if !hosted.contains_key(&tp) {
                self.log_manager.delete_log(&tp)?;
                removed.push(tp);
            }
        }
        Ok(removed)
    }

    /// Appends a produce request's records to a partition it leads (from
    /// [`Self::leader_partition`]).
    pub fn append_records(
        &self,
        partition: &Arc<Partition>,
        records: Bytes,
        required_acks: i16,
        now_ms: i64,
    ) -> Result<LogAppendInfo, AppendError> {
        let tp = &partition.tp;
        if required_acks == -1 {
            let min_isr = partition.min_insync_replicas.load(Ordering::Acquire);
            let isr = partition.isr_size.load(Ordering::Acquire);
            if isr < min_isr {
                return Err(AppendError::new(
                    ResponseError::NotEnoughReplicas,
                    format!("The size of the current ISR {isr} is insufficient to satisfy the min.isr requirement of {min_isr} for partition {tp}"),
                ));
            }
        }
        self.append_to(partition, |log, epoch| {
            log.append_shared_as_leader(records, epoch, now_ms)
        })
    }

    /// The partition if this broker leads it; NOT_LEADER_OR_FOLLOWER if it
    /// is only a follower here or not hosted at all (callers have checked
    /// that the partition exists in the metadata: the client refreshes it
    /// and goes to the leader).
    pub fn leader_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, AppendError> {
        match self.get_partition(tp) {
            Some(p) if p.is_leader() => Ok(p),
            _ => Err(AppendError::new(
                ResponseError::NotLeaderOrFollower,
                format!("This server is not the leader of {tp}"),
            )),
        }
    }

    /// The partition a consumer may read here: the leader's, or (KIP-392)
    /// a follower's when the fetch carries client metadata (v11+), as
    /// Kafka allows once a consumer was sent to a preferred read replica.
    pub fn readable_partition(
        &self,
        tp: &TopicPartition,
        followers_too: bool,
    ) -> Result<Arc<Partition>, AppendError> {
        match self.get_partition(tp) {
            Some(p) if p.is_leader() => Ok(p),
            Some(p) if followers_too && p.state.lock().leader >= 0 => Ok(p),
            _ => Err(AppendError::new(
                ResponseError::NotLeaderOrFollower,
                format!("This server is not the leader of {tp}"),
            )),
        }
    }

    /// KIP-392's rack-aware selection (Kafka's RackAwareReplicaSelector),
    /// on the leader: for a consumer in `client_rack`, an in-sync replica in
    /// that rack that has `fetch_offset` (the most caught-up one), unless
    /// the leader is in that rack itself. `rack_of` gives a broker's rack.
    pub fn preferred_read_replica(
        &self,
        partition: &Partition,
        client_rack: &str,
        fetch_offset: i64,
        rack_of: impl Fn(i32) -> Option<String>,
    ) -> Option<i32> {
        if client_rack.is_empty() || rack_of(self.node_id).as_deref() == Some(client_rack) {
            return None;
        }
        let st = partition.state.lock();
        st.isr
            .iter()
            .copied()
            .filter(|r| *r != self.node_id && rack_of(*r).as_deref() == Some(client_rack))
            .filter_map(|r| st.follower(r).map(|f| (r, f.log_end_offset)))
            .filter(|(_, leo)| *leo >= fetch_offset)
            .max_by_key(|(r, leo)| (*leo, -*r))
            .map(|(r, _)| r)
    }

    /// DeleteRecords on one partition: raises the log start offset to
    /// `offset` (-1: the high watermark) and returns the new low watermark.
    /// Beyond the high watermark: OFFSET_OUT_OF_RANGE; a topic whose
    /// `cleanup.policy` lacks `delete`: POLICY_VIOLATION (as Kafka).
    pub fn delete_records(&self, tp: &TopicPartition, offset: i64) -> Result<i64, AppendError> {
        let partition = self.leader_partition(tp)?;
        let hw = partition.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(AppendError::new(
                ResponseError::OffsetOutOfRange,
                format!("Cannot increment the log start offset to {offset} of partition {tp} since it is larger than the high watermark {hw}"),
            ));
        }
        let mut log = partition.log.lock();
        if !log.config().delete {
            return Err(AppendError::new(
                ResponseError::PolicyViolation,
                format!(
                    "Records of partition {tp} can not be deleted due to the configured policy"
                ),
            ));
        }
        log.increment_log_start_offset(target)
            .map_err(AppendError::from_log)?;
        Ok(log.log_start_offset())
    }

    /// Retention over every hosted log (every
    /// `log.retention.check.interval.ms`).
    pub fn cleanup_logs(&self, now_ms: i64) -> oxka_log::RetentionSummary {
        self.log_manager.cleanup_logs(now_ms, |tp| {
            self.get_partition(tp).map(|p| p.high_watermark())
        })
    }

    /// The retention passes that fell due (after a roll or a config
    /// change); called every second.
    pub fn run_due_retention(&self, now_ms: i64) -> oxka_log::RetentionSummary {
        self.log_manager.run_due_retention(now_ms, |tp| {
            self.get_partition(tp).map(|p| p.high_watermark())
        })
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }
}

/// Exactly-once: writes by the coordinators (transactional offset commits,
/// transaction markers) and the last stable offset. Coordinator writes skip
/// the client-side sequence checks but keep the epoch fencing.
impl ReplicaManager {
    fn append_with(
        &self,
        tp: &TopicPartition,
        f: impl FnOnce(&mut oxka_log::Log, i32) -> Result<LogAppendInfo, LogError>,
    ) -> Result<LogAppendInfo, AppendError> {
        let partition = self.leader_partition(tp)?;
        self.append_to(&partition, f)
    }

    /// The one append path: free-space check, the append, storage errors
    /// logged, high watermark, retention schedule, long-poll wake-up.
    fn append_to(
        &self,
        partition: &Partition,
        f: impl FnOnce(&mut oxka_log::Log, i32) -> Result<LogAppendInfo, LogError>,
    ) -> Result<LogAppendInfo, AppendError> {
        let tp = &partition.tp;
        self.log_manager
            .check_free_space(tp)
            .map_err(AppendError::from_log)?;
        let info = {
            let mut log = partition.log.lock();
            let segments_before = log.num_segments();
            let info = f(&mut log, partition.leader_epoch()).map_err(|e| {
                if e.is_io() {
                    tracing::error!(partition = %tp, error = %e, "append failed");
                }
                if matches!(e, LogError::WriteFailed { .. }) {
                    // likely a full disk: stop writes now, not at the next tick
                    self.log_manager.refresh_free_space();
                }
                AppendError::from_log(e)
            })?;
            partition.maybe_increment_high_watermark(log.log_end_offset());
            if log.num_segments() != segments_before {
                self.log_manager.schedule_retention_check_for(tp, &log);
            }
            info
        };
        self.notify_data_changed();
        Ok(info)
    }

    /// Appends batches a coordinator built (e.g. transactional offset
    /// commits carrying the producer's id and epoch).
    pub fn append_coordinator_records(
        &self,
        tp: &TopicPartition,
        records: Bytes,
        now_ms: i64,
    ) -> Result<LogAppendInfo, AppendError> {
        let mut buf = BytesMut::from(&records[..]);
        self.append_with(tp, |log, epoch| {
            log.append_as_coordinator(&mut buf, epoch, now_ms)
        })
    }

    /// WriteTxnMarkers for one partition: a COMMIT or ABORT control batch.
    pub fn write_txn_marker(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        now_ms: i64,
    ) -> Result<LogAppendInfo, AppendError> {
        self.append_with(tp, |log, epoch| {
            log.append_txn_marker(
                producer_id,
                producer_epoch,
                coordinator_epoch,
                commit,
                epoch,
                now_ms,
            )
        })
    }

    /// Forgets idle producers on every hosted partition
    /// (`producer.id.expiration.ms`).
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut removed = 0;
        for p in self.all_partitions() {
            match p.log.lock().remove_expired_producers(now_ms, expiration_ms) {
                Ok(n) => removed += n,
                Err(e) => tracing::debug!(tp = %p.tp, error = %e, "producer expiry skipped"),
            }
        }
        removed
    }
}

impl Partition {
    /// The last stable offset: the first offset of the earliest open
    /// transaction, else the high watermark. read_committed consumers read
    /// below it.
    pub fn last_stable_offset(&self, log: &oxka_log::Log) -> i64 {
        let hw = self.high_watermark();
        log.first_unstable_offset().map_or(hw, |f| f.min(hw))
    }
}

/// Replication: what a leader does with its followers' fetches and ISR,
/// and what a follower does with its leader's answers.
impl ReplicaManager {
    /// A follower fetched `partition` from here at `fetch_offset`: its
    /// progress is recorded, the high watermark may move (waking acks=all
    /// produces and consumers) and a caught-up follower is proposed for
    /// the ISR.
    pub fn follower_fetched(
        &self,
        partition: &Partition,
        replica: i32,
        broker_epoch: i64,
        fetch_offset: i64,
    ) {
        let now = crate::server::now_ms();
        let leo = partition.log.lock().log_end_offset();
        let hw = partition.high_watermark();
        let expand = {
            let mut st = partition.state.lock();
            st.note_broker_epoch(replica, broker_epoch);
            let expand = st.on_follower_fetch(replica, fetch_offset, leo, hw, now);
            expand.map(|isr| IsrChange {
                tp: partition.tp.clone(),
                topic_id: partition.topic_id,
                leader_epoch: st.leader_epoch,
                partition_epoch: st.partition_epoch,
                broker_epochs: st.broker_epochs(&isr),
                isr,
                shrink: false,
            })
        };
        if partition.maybe_increment_high_watermark(leo) {
            self.notify_data_changed();
        }
        if let Some(change) = expand {
            tracing::info!(partition = %partition.tp, replica, isr = ?change.isr, "expanding the ISR");
            self.queue_isr_change(change);
        }
    }

    /// Followers that have not caught up within `lag_ms` leave the ISR of
    /// every partition led here (run every `replica.lag.time.max.ms / 2`).
    pub fn shrink_isrs(&self, lag_ms: i64) {
        let now = crate::server::now_ms();
        for p in self.all_partitions() {
            if !p.is_leader() {
                continue;
            }
            let change = {
                let mut st = p.state.lock();
                st.shrink_candidate(now, lag_ms).map(|isr| IsrChange {
                    tp: p.tp.clone(),
                    topic_id: p.topic_id,
                    leader_epoch: st.leader_epoch,
                    partition_epoch: st.partition_epoch,
                    broker_epochs: st.broker_epochs(&isr),
                    isr,
                    shrink: true,
                })
            };
            if let Some(change) = change {
                tracing::info!(partition = %p.tp, isr = ?change.isr, "shrinking the ISR: a follower is out of sync");
                self.queue_isr_change(change);
            }
        }
    }

    fn queue_isr_change(&self, change: IsrChange) {
        self.isr_changes.lock().insert(change.tp.clone(), change);
        self.isr_changes_ready.notify_one();
    }

    /// Waits for ISR changes to send and takes them all.
    pub async fn next_isr_changes(&self) -> Vec<IsrChange> {
        loop {
            let ready = self.isr_changes_ready.notified();
            let taken: Vec<IsrChange> = self.isr_changes.lock().drain().map(|(_, c)| c).collect();
            if !taken.is_empty() {
                return taken;
            }
            ready.await;
        }
    }

    /// The controller refused an ISR change for good (an ineligible
    /// replica, no longer the leader): a new one may be asked. Committed
    /// changes, stale-epoch refusals and lost answers are settled by the
    /// metadata instead (`ReplicaState::apply`).
    pub fn isr_change_refused(&self, change: &IsrChange) {
        if let Some(p) = self.get_partition(&change.tp) {
            let mut st = p.state.lock();
            if st.pending_isr() == Some(&change.isr) {
                st.clear_pending();
            }
        }
    }

    /// Sends an unanswered ISR change again if it is still the pending one
    /// (the controller could not be reached).
    pub fn retry_isr_change(&self, change: IsrChange) {
        let Some(p) = self.get_partition(&change.tp) else {
            return;
        };
        let still = {
            let st = p.state.lock();
            st.pending_isr() == Some(&change.isr)
                && st.partition_epoch == change.partition_epoch
                && st.leader_epoch == change.leader_epoch
        };
        if still {
            self.queue_isr_change(change);
        }
    }

    /// Appends a fetch answer's batches on a follower, then takes the
    /// leader's high watermark (never above what this log has) and log
    /// start offset.
    pub fn append_as_follower(
        &self,
        partition: &Partition,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
    ) -> Result<(), LogError> {
        let tp = &partition.tp;
        let mut log = partition.log.lock();
        if !records.is_empty() {
            self.log_manager.check_free_space(tp)?;
            let segments_before = log.num_segments();
            log.append_as_follower(records, crate::server::now_ms())
                .inspect_err(|e| {
                    if matches!(e, LogError::WriteFailed { .. }) {
                        self.log_manager.refresh_free_space();
                    }
                })?;
            partition.stats.replicated_in(records.len() as u64);
            if log.num_segments() != segments_before {
                self.log_manager.schedule_retention_check_for(tp, &log);
            }
        }
        if leader_log_start > log.log_start_offset() && leader_log_start <= log.log_end_offset() {
            log.increment_log_start_offset(leader_log_start)?;
        }
        let hw = leader_high_watermark.min(log.log_end_offset());
        if hw >= 0 && partition.high_watermark.swap(hw, Ordering::AcqRel) != hw {
            drop(log);
            // consumers reading this follower (KIP-392) may have more now
            self.notify_data_changed();
        }
        Ok(())
    }

    /// Cuts a follower's log where it diverged from its leader's.
    pub fn truncate_follower(&self, partition: &Partition, t: Truncation) -> Result<(), LogError> {
        let mut log = partition.log.lock();
        let before = log.log_end_offset();
        match t {
            Truncation::To(offset) => log.truncate_to(offset)?,
            Truncation::Fully { start } => {
                log.truncate_fully_and_start_at(start, crate::server::now_ms())?
            }
        }
        let leo = log.log_end_offset();
        partition.high_watermark.fetch_min(leo, Ordering::AcqRel);
        if leo != before {
            tracing::warn!(partition = %partition.tp, from = before, to = leo, "truncated the log to the leader's");
        }
        Ok(())
    }

    /// Waits until the high watermark of `partition` reaches `offset`
    /// (acks=all), the partition stops being led here or `deadline`
    /// passes. A parked produce holds no thread and no request slot: it is
    /// one future in the connection that sent it, and connections are
    /// bounded (`max.connections`), which bounds this purgatory.
    pub async fn wait_for_high_watermark(
        &self,
        partition: &Partition,
        leader_epoch: i32,
        offset: i64,
        deadline: tokio::time::Instant,
    ) -> Result<(), ResponseError> {
        let mut changes = self.subscribe();
        loop {
            changes.borrow_and_update();
            // a new epoch may have truncated what was appended
            if !partition.is_leader() || partition.leader_epoch() != leader_epoch {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            if partition.high_watermark() >= offset {
                // Kafka's DelayedProduce: replicated, but to fewer
                // replicas than the topic asks for
                if partition.isr_size() < partition.min_insync_replicas() {
                    return Err(ResponseError::NotEnoughReplicasAfterAppend);
                }
                return Ok(());
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return Err(ResponseError::RequestTimedOut) },
                _ = tokio::time::sleep_until(deadline) => return Err(ResponseError::RequestTimedOut),
            }
        }
    }
}
