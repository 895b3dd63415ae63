//! The transaction coordinator: transactional ids, their producer id and
//! epoch, and Kafka's transaction state machine, persisted in
//! `__transaction_state` (Kafka's record schemas, [`records`]).
//!
//! This broker coordinates the transactional ids hashed to the partitions
//! of `__transaction_state` it leads, loading them when it becomes leader
//! and dropping them when it stops (see [`crate::Ownership`]); the leader
//! epoch of that partition is the coordinator epoch in the markers.
//!
//! Ending a transaction: the Prepare* record is written, and once it is
//! replicated the COMMIT/ABORT markers go to every partition of the
//! transaction (locally through the replica manager, to other brokers with
//! WriteTxnMarkers through [`crate::TxnMarkerChannel`]), then Complete* is
//! written. When every partition involved is led here with no follower in
//! its ISR (a single node) this happens inline in the request; otherwise
//! the marker task does it, retrying until the markers land (Kafka's
//! TransactionMarkerChannelManager), and the client learns of the end once
//! the Prepare* record is replicated (Kafka answers EndTxn then too). A
//! coordinator that loads a partition with Prepare* transactions finishes
//! them the same way, so a transaction decided before its coordinator died
//! ends all-or-nothing. The sweep aborts transactions past their timeout
//! (fencing the producer's epoch first) and forgets transactional ids idle
//! past `transactional.id.expiration.ms`.
//!
//! KIP-890: a transactional produce must belong to the producer's open
//! transaction (part 1). Clients of transaction version 2 (part 2, learnt
//! from the `transaction.version` feature in ApiVersions) send no
//! AddPartitionsToTxn: Produce v12 and TxnOffsetCommit v5 add their
//! partition, and every EndTxn v5 bumps the producer epoch, markers
//! included, so nothing late of one transaction (a produce, a commit, an
//! abort) can act on the next. Which rules apply is read from each
//! request's version, as Kafka does; older clients keep one epoch per
//! producer session.
//!
//! Locking: one mutex over all transactional ids. Operations are short
//! (local appends); the produce path takes it for the KIP-890 check (and,
//! for a transaction version 2 produce to a partition new to the
//! transaction, the write that adds it) and never holds a partition lock
//! while taking it.

pub mod records;
pub mod state;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use oxka_log::builder::RecordBatchBuilder;
use oxka_log::TopicPartition;
use parking_lot::Mutex;

use crate::group::offsets::{partition_for, OFFSETS_TOPIC};
use crate::GroupCoordinator;
use crate::{
    now_ms, AppendError, CoordinatorLog, CoordinatorMetadata, Ownership, TxnMarker,
    TxnMarkerChannel,
};

use records::{decode_key, encode_key, TxnLogValue};
pub use state::{TxnMetadata, TxnState, TV_0, TV_2};

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// How many transactions the marker task completes at once (the bound of
/// its in-flight markers; the rest wait for the next round).
const MARKER_BATCH: usize = 64;
/// How often the marker task retries markers that did not land.
const MARKER_RETRY: Duration = Duration::from_millis(500);

/// The feature clients read from ApiVersions (v3+) to learn that the
/// broker speaks transaction version 2 (KIP-890 part 2).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The highest transaction version implemented, and the finalized level.
pub const TRANSACTION_VERSION_LEVEL: i16 = TV_2;

/// The first request versions of transaction version 2, from which Kafka
/// derives the client's transaction version (`TransactionVersion`
/// `transactionVersionForEndTxn` / `...ForAddPartitionsToTxn` and
/// `AddPartitionsToTxnManager`'s `ADD_PARTITION` operation).
pub const FIRST_TV2_END_TXN_VERSION: i16 = 5;
/// AddPartitionsToTxn v4+ come from brokers adding partitions for
/// transaction version 2 clients.
pub const FIRST_TV2_ADD_PARTITIONS_VERSION: i16 = 4;
/// Produce v12+: the partition joins the transaction with the produce.
pub const FIRST_TV2_PRODUCE_VERSION: i16 = 12;
/// TxnOffsetCommit v5+: the offsets partition joins with the commit.
pub const FIRST_TV2_TXN_OFFSET_COMMIT_VERSION: i16 = 5;

/// `epoch + by`, at most `i16::MAX` (the epoch only a fence or a
/// transaction version 2 end that rolls the producer id over may reach;
/// clients are never given it).
fn bump_epoch(epoch: i16, by: i16) -> i16 {
    i16::try_from((i32::from(epoch) + i32::from(by)).min(i32::from(i16::MAX))).unwrap_or(i16::MAX)
}

/// The `transaction.*` / `producer.id.*` broker configs.
#[derive(Clone, Debug)]
pub struct TxnConfig {
    pub num_partitions: i32,
    pub segment_bytes: i64,
    pub replication_factor: i16,
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
    pub abort_interval_ms: u64,
    pub remove_expired_interval_ms: u64,
    pub producer_id_expiration_ms: i64,
    pub producer_id_expiration_check_ms: u64,
    /// How long a write to `__transaction_state` or a marker may wait for
    /// its replication (Kafka's `request.timeout.ms` for the transaction
    /// coordinator's appends).
    pub write_timeout_ms: u64,
}

impl TxnConfig {
    /// Reads the `transaction.*` broker configs through `value`, the
    /// broker config's lookup (Kafka's names and defaults).
    pub fn from_values(value: impl Fn(&str) -> Option<String>) -> TxnConfig {
        let int = |k: &str, dflt: i64| -> i64 {
            value(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(dflt)
        };
        TxnConfig {
            num_partitions: int("transaction.state.log.num.partitions", 50).max(1) as i32,
            segment_bytes: int("transaction.state.log.segment.bytes", 104_857_600).max(1),
            replication_factor: int("transaction.state.log.replication.factor", 3).max(1) as i16,
            max_timeout_ms: int("transaction.max.timeout.ms", 900_000).clamp(1, i32::MAX as i64)
                as i32,
            id_expiration_ms: int("transactional.id.expiration.ms", 604_800_000).max(1),
            abort_interval_ms: int(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
            )
            .max(1) as u64,
            remove_expired_interval_ms: int(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                3_600_000,
            )
            .max(1) as u64,
            producer_id_expiration_ms: int("producer.id.expiration.ms", 86_400_000).max(1),
            producer_id_expiration_check_ms: int(
                "producer.id.expiration.check.interval.ms",
                600_000,
            )
            .max(1) as u64,
            write_timeout_ms: int("request.timeout.ms", 30_000).max(1) as u64,
        }
    }
}

#[derive(Default)]
struct Inner {
    txns: HashMap<String, TxnMetadata>,
    /// Producer id -> transactional id, for the produce-path check.
    by_pid: HashMap<i64, String>,
}

impl Inner {
    fn insert(&mut self, meta: TxnMetadata) {
        if let Some(old) = self.txns.get(&meta.transactional_id) {
            if old.producer_id != meta.producer_id {
                self.by_pid.remove(&old.producer_id);
            }
        }
        self.by_pid
            .insert(meta.producer_id, meta.transactional_id.clone());
        self.txns.insert(meta.transactional_id.clone(), meta);
    }
}

/// A transaction as ListTransactions reports it.
#[derive(Clone, Debug)]
pub struct ListedTxn {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: TxnState,
}

pub struct TransactionCoordinator {
    cfg: TxnConfig,
    controller: Arc<dyn CoordinatorMetadata>,
    replica_manager: Arc<dyn CoordinatorLog>,
    groups: Arc<GroupCoordinator>,
    inner: Mutex<Inner>,
    /// The `__transaction_state` partitions led here.
    owned: Ownership,
    /// Wakes the marker task (Prepare* transactions to finish).
    markers_wake: tokio::sync::Notify,
    /// WriteTxnMarkers to other brokers; none in tests of a single node.
    channel: OnceLock<Arc<dyn TxnMarkerChannel>>,
}

/// How an end of a transaction went on: finished inline, or left to the
/// marker task with its Prepare* record written.
enum Ending {
    Done(TxnMetadata),
    Pending(TxnMetadata),
}

impl Ending {
    /// The producer id and epoch the client continues with: those of the
    /// completed transaction, which a pending end already fixed (a
    /// transaction version 2 end that exhausts the epochs moves to its next
    /// producer id at epoch 0).
    fn next_ids(&self) -> (i64, i16) {
        match self {
            Ending::Done(m) => (m.producer_id, m.producer_epoch),
            Ending::Pending(m) if m.supports_epoch_bump() && m.next_producer_id >= 0 => {
                (m.next_producer_id, 0)
            }
            Ending::Pending(m) => (m.producer_id, m.producer_epoch),
        }
    }
}

impl TransactionCoordinator {
    pub fn new(
        cfg: TxnConfig,
        controller: Arc<dyn CoordinatorMetadata>,
        replica_manager: Arc<dyn CoordinatorLog>,
        groups: Arc<GroupCoordinator>,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            cfg,
            controller,
            replica_manager,
            groups,
            inner: Mutex::new(Inner::default()),
            owned: Ownership::default(),
            markers_wake: tokio::sync::Notify::new(),
            channel: OnceLock::new(),
        }
    }

    /// Gives the coordinator its way to other brokers' partitions (set
    /// once, by the broker at start-up).
    pub fn set_marker_channel(&self, channel: Arc<dyn TxnMarkerChannel>) {
        let _ = self.channel.set(channel);
    }

    fn state_partitions(&self) -> i32 {
        self.controller
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .map_or(self.cfg.num_partitions, |t| t.partitions.len() as i32)
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn partition_of(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.state_partitions())
    }

    /// The leadership listener's entry (on the metadata publisher's
    /// thread; never waits on I/O), as [`GroupCoordinator::on_leadership`]:
    /// a newly led partition with an empty log is loaded at once, others
    /// by the loader task; a partition led elsewhere now is dropped.
    pub fn on_leadership(&self, partition: i32, leader_epoch: Option<i32>) {
        match leader_epoch {
            Some(epoch) => {
                if !self.owned.lead(partition, epoch) {
                    return;
                }
                let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition);
                let empty = self
                    .replica_manager
                    .log_bounds(&tp)
                    .is_some_and(|(start, end)| start >= end);
                if empty {
                    self.install(partition, epoch, Vec::new());
                } else {
                    self.owned.wake.notify_one();
                }
            }
            None => {
                if self.owned.resign(partition) {
                    self.unload(partition);
                }
            }
        }
    }

    /// Forgets the transactional ids of `partition` (Kafka's
    /// `removeTransactionsForTxnTopicPartition`); the new coordinator has
    /// them from the log and finishes what was decided.
    fn unload(&self, partition: i32) {
        let n = self.state_partitions();
        let mut inner = self.inner.lock();
        let gone: Vec<String> = inner
            .txns
            .keys()
            .filter(|id| partition_for(id, n) == partition)
            .cloned()
            .collect();
        for id in &gone {
            if let Some(m) = inner.txns.remove(id) {
                inner.by_pid.remove(&m.producer_id);
            }
        }
        tracing::info!(
            partition,
            transactional_ids = gone.len(),
            "no longer the transaction coordinator for {TRANSACTION_STATE_TOPIC}-{partition}"
        );
    }

    /// Installs the transactions replayed from `partition` if it is still
    /// owned in `epoch`, and wakes the marker task for those decided but
    /// not completed.
    fn install(&self, partition: i32, epoch: i32, loaded: Vec<TxnMetadata>) -> bool {
        let n = self.state_partitions();
        let mut inner = self.inner.lock();
        let current = self
            .replica_manager
            .leader_epoch(&TopicPartition::new(TRANSACTION_STATE_TOPIC, partition));
        if current != Some(epoch) || !self.owned.mark_loaded(partition, epoch) {
            return false;
        }
        let stale: Vec<String> = inner
            .txns
            .keys()
            .filter(|id| partition_for(id, n) == partition)
            .cloned()
            .collect();
        for id in stale {
            if let Some(m) = inner.txns.remove(&id) {
                inner.by_pid.remove(&m.producer_id);
            }
        }
        let count = loaded.len();
        for m in loaded {
            inner.insert(m);
        }
        drop(inner);
        self.markers_wake.notify_one();
        tracing::info!(
            partition,
            epoch,
            transactional_ids = count,
            "transaction coordinator for {TRANSACTION_STATE_TOPIC}-{partition}"
        );
        true
    }

    /// Awaits the replication of the id's `__transaction_state` partition
    /// before a state change is acknowledged (Kafka appends transaction
    /// state with acks=all); errors as Kafka's `TransactionStateManager`
    /// maps them (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR).
    pub async fn replicated(&self, transactional_id: &str) -> Result<(), ResponseError> {
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, self.partition_of(transactional_id));
        if self.replica_manager.leads_alone(&tp) {
            return Ok(());
        }
        self.replica_manager
            .wait_replicated(&tp, Duration::from_millis(self.cfg.write_timeout_ms))
            .await
            .map_err(|e| {
                tracing::debug!(transactional_id, error = ?e, "transaction state not replicated");
                crate::replication_error(e)
            })
    }

    pub fn config(&self) -> &TxnConfig {
        &self.cfg
    }

    /// Whether this broker coordinates `transactional_id` now: NOT_COORDINATOR
    /// when its partition is led elsewhere, COORDINATOR_LOAD_IN_PROGRESS
    /// while it loads.
    fn ready(&self, transactional_id: &str) -> Result<(), ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        self.owned
            .status(self.partition_of(transactional_id))
            .map(|_| ())
    }

    /// Creates `__transaction_state` if missing (Kafka does on the first
    /// FindCoordinator for a transactional id).
    pub fn ensure_topic(&self) -> Result<i32, ResponseError> {
        self.controller.ensure_internal_topic(
            TRANSACTION_STATE_TOPIC,
            self.cfg.num_partitions,
            self.cfg.replication_factor,
            self.cfg.segment_bytes,
        )
    }

    /// Writes the record of `meta` (or a tombstone) to its partition of
    /// `__transaction_state`; the state change counts only once this
    /// succeeded.
    fn persist(&self, id: &str, meta: Option<&TxnMetadata>) -> Result<(), ResponseError> {
        let n = self.ensure_topic()?;
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition_for(id, n));
        let now = now_ms();
        let value = meta.map(|m| m.to_value().encode());
        let bytes = RecordBatchBuilder::new()
            .record(Some(&encode_key(id)), value.as_deref(), now)
            .try_build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot encode a transaction log record");
                ResponseError::UnknownServerError
            })?;
        self.replica_manager
            .append_records(&tp, Bytes::from(bytes), -1, now)
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!(transactional_id = id, error = %e.message, "writing to {tp} failed");
                match e.error {
                    ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => {
                        ResponseError::NotCoordinator
                    }
                    _ => ResponseError::CoordinatorNotAvailable,
                }
            })
    }

    /// Moves `meta` to `next` durably (in memory only when the write
    /// succeeded).
    fn transition(&self, inner: &mut Inner, mut next: TxnMetadata) -> Result<(), ResponseError> {
        next.last_update_ms = now_ms();
        self.persist(&next.transactional_id.clone(), Some(&next))?;
        inner.insert(next);
        Ok(())
    }

    /// InitProducerId with a transactional id: a new producer id, or the
    /// next epoch of the existing one, fencing older producers and aborting
    /// their open transaction (KIP-360 checks when the client names its
    /// current id and epoch).
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16), ResponseError> {
        self.ready(transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.cfg.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        self.ensure_topic()?;
        let mut inner = self.inner.lock();
        let Some(current) = inner.txns.get(transactional_id).cloned() else {
            let pid = self.controller.allocate_producer_id()?;
            let meta = TxnMetadata {
                transactional_id: transactional_id.to_string(),
                producer_id: pid,
                last_producer_id: -1,
                last_producer_epoch: -1,
                previous_producer_id: -1,
                next_producer_id: -1,
                client_transaction_version: TV_0,
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now_ms(),
            };
            self.transition(&mut inner, meta)?;
            return Ok((pid, 0));
        };
        if producer_id >= 0 {
            let is_current =
                producer_id == current.producer_id && producer_epoch == current.producer_epoch;
            let is_retry = producer_id == current.last_producer_id
                && producer_epoch == current.last_producer_epoch;
            if is_retry && current.state == TxnState::Empty {
                return Ok((current.producer_id, current.producer_epoch));
            }
            if !is_current && !is_retry {
                return Err(ResponseError::ProducerFenced);
            }
        }
        let mut meta = match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                // markers still to write: finish that first
                let commit = current.state == TxnState::PrepareCommit;
                self.write_markers_and_complete(&mut inner, current, commit)?
            }
            TxnState::Ongoing => self.fence_and_abort(&mut inner, current)?,
            TxnState::PrepareEpochFence | TxnState::Dead => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => current,
        };
        meta.last_producer_id = meta.producer_id;
        meta.last_producer_epoch = meta.producer_epoch;
        if meta.producer_epoch >= i16::MAX - 1 {
            // epochs exhausted: a new producer id starts at epoch 0
            meta.previous_producer_id = meta.producer_id;
            meta.producer_id = self.controller.allocate_producer_id()?;
            meta.producer_epoch = 0;
        } else {
            meta.producer_epoch += 1;
        }
        meta.timeout_ms = timeout_ms;
        meta.state = TxnState::Empty;
        meta.partitions.clear();
        meta.start_ms = -1;
        meta.next_producer_id = -1;
        let out = (meta.producer_id, meta.producer_epoch);
        self.transition(&mut inner, meta)?;
        Ok(out)
    }

    /// Bumps the epoch of an open transaction's producer (so the old
    /// producer is fenced everywhere) and aborts the transaction.
    ///
    /// A transaction version 2 client recognises the retry of its own
    /// EndTxn by the epoch one above the one it sent, so a fenced client's
    /// next EndTxn must not find exactly that: such transactions are bumped
    /// by two (as Kafka does, through its fence and its abort), leaving
    /// the fenced epoch + 1 unused.
    fn fence_and_abort(
        &self,
        inner: &mut Inner,
        mut meta: TxnMetadata,
    ) -> Result<TxnMetadata, ResponseError> {
        let by = if meta.supports_epoch_bump() { 2 } else { 1 };
        meta.producer_epoch = bump_epoch(meta.producer_epoch, by);
        meta.next_producer_id = -1;
        meta.state = TxnState::PrepareEpochFence;
        self.write_markers_and_complete(inner, meta, false)
    }

    /// Starts ending the transaction of `meta`: Prepare* (durably). Under
    /// transaction version 2 (`tv`) the epoch is bumped first, so the
    /// markers carry an epoch no request of the ended transaction had and
    /// every late request of it (a produce, a commit, an abort) is fenced;
    /// when that exhausts the epochs a new producer id is allocated now and
    /// taken at completion. An end of a transaction that is not open (an
    /// abort under transaction version 2) has no partitions.
    fn prepare_end(
        &self,
        inner: &mut Inner,
        mut meta: TxnMetadata,
        commit: bool,
        tv: i16,
    ) -> Result<TxnMetadata, ResponseError> {
        if meta.state != TxnState::Ongoing {
            meta.partitions.clear();
            meta.start_ms = now_ms();
        }
        meta.client_transaction_version = tv;
        meta.next_producer_id = -1;
        if tv >= TV_2 {
            if meta.producer_epoch >= i16::MAX - 1 {
                meta.next_producer_id = self.controller.allocate_producer_id()?;
            }
            meta.producer_epoch = bump_epoch(meta.producer_epoch, 1);
        }
        meta.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        self.transition(inner, meta.clone())?;
        Ok(meta)
    }

    /// Prepare (durably), write the markers, complete (durably). A
    /// failure after the prepare leaves the transaction in Prepare* for the
    /// sweep to finish; the decision itself is already durable. A
    /// transaction version 2 end that exhausted the epochs completes on its
    /// new producer id at epoch 0.
    ///
    /// Ends that cannot finish inline (see the module doc) are left to the
    /// marker task: CONCURRENT_TRANSACTIONS, which clients retry, as Kafka
    /// answers while markers are outstanding.
    fn write_markers_and_complete(
        &self,
        inner: &mut Inner,
        meta: TxnMetadata,
        commit: bool,
    ) -> Result<TxnMetadata, ResponseError> {
        match self.end_transaction(inner, meta, commit)? {
            Ending::Done(m) => Ok(m),
            Ending::Pending(_) => Err(ResponseError::ConcurrentTransactions),
        }
    }

    /// Writes Prepare* (if not yet), then either finishes inline or hands
    /// the transaction to the marker task.
    fn end_transaction(
        &self,
        inner: &mut Inner,
        mut meta: TxnMetadata,
        commit: bool,
    ) -> Result<Ending, ResponseError> {
        if !matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            meta.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            self.transition(inner, meta.clone())?;
        }
        if !self.completes_inline(&meta) {
            self.markers_wake.notify_one();
            return Ok(Ending::Pending(meta));
        }
        let coordinator_epoch = self
            .owned
            .status(self.partition_of(&meta.transactional_id))?;
        let failed = self.write_markers(
            meta.producer_id,
            meta.producer_epoch,
            coordinator_epoch,
            commit,
            meta.partitions.iter(),
        );
        if failed > 0 {
            tracing::warn!(transactional_id = %meta.transactional_id, failed, "transaction markers not all written; will retry");
            self.markers_wake.notify_one();
            return Err(ResponseError::ConcurrentTransactions);
        }
        self.complete(inner, meta, commit).map(Ending::Done)
    }

    /// Whether the markers of `meta` may be written inline: its state
    /// partition and every partition of the transaction are led here with
    /// no follower in the ISR, so every write is committed when written
    /// (partitions of deleted topics need no marker).
    fn completes_inline(&self, meta: &TxnMetadata) -> bool {
        let state_tp = TopicPartition::new(
            TRANSACTION_STATE_TOPIC,
            self.partition_of(&meta.transactional_id),
        );
        if !self.replica_manager.leads_alone(&state_tp) {
            return false;
        }
        let image = self.controller.image();
        meta.partitions
            .iter()
            .all(|tp| image.topic(&tp.topic).is_none() || self.replica_manager.leads_alone(tp))
    }

    /// Complete* after every marker landed (durably; a failed write is
    /// retried by the marker task, the markers being idempotent).
    fn complete(
        &self,
        inner: &mut Inner,
        mut meta: TxnMetadata,
        commit: bool,
    ) -> Result<TxnMetadata, ResponseError> {
        meta.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        meta.partitions.clear();
        if meta.supports_epoch_bump() && meta.next_producer_id >= 0 {
            meta.previous_producer_id = meta.producer_id;
            meta.producer_id = meta.next_producer_id;
            meta.producer_epoch = 0;
        }
        meta.next_producer_id = -1;
        if let Err(e) = self.transition(inner, meta.clone()) {
            tracing::warn!(transactional_id = %meta.transactional_id, error = ?e, "cannot record the completed transaction; will retry");
        }
        Ok(meta)
    }

    /// The body of WriteTxnMarkers: a marker on each partition, then the
    /// group coordinator settles transactional offsets on
    /// `__consumer_offsets` partitions. Partitions that no longer exist are
    /// skipped (Kafka drops markers for deleted topics). Returns how many
    /// markers failed.
    pub fn write_markers<'a>(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        partitions: impl Iterator<Item = &'a TopicPartition>,
    ) -> usize {
        let mut failed = 0;
        for tp in partitions {
            match self.write_marker(tp, producer_id, producer_epoch, coordinator_epoch, commit) {
                Ok(()) => {}
                Err(ResponseError::UnknownTopicOrPartition) => {}
                Err(e) => {
                    tracing::warn!(partition = %tp, producer_id, error = ?e, "writing a transaction marker failed");
                    failed += 1;
                }
            }
        }
        failed
    }

    /// One marker on one partition (WriteTxnMarkers' per-partition step).
    pub fn write_marker(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<(), ResponseError> {
        self.replica_manager
            .write_txn_marker(
                tp,
                producer_id,
                producer_epoch,
                coordinator_epoch,
                commit,
                now_ms(),
            )
            .map_err(|e| e.error)?;
        if tp.topic == OFFSETS_TOPIC {
            self.groups
                .complete_txn_offsets(producer_id, tp.partition, commit);
        }
        Ok(())
    }

    /// Checks the transactional id / producer id / epoch triple of a
    /// request against the coordinator's view.
    fn validate<'a>(
        inner: &'a Inner,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&'a TxnMetadata, ResponseError> {
        let meta = inner
            .txns
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if meta.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch != producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Dead => Err(ResponseError::InvalidProducerIdMapping),
            _ => Ok(meta),
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn, and the partitions a
    /// transaction version 2 Produce or TxnOffsetCommit adds: the
    /// partitions join the transaction (which starts if it was not open).
    /// `tv` is the transaction version the request speaks; the transaction
    /// remembers it.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        tv: i16,
    ) -> Result<(), ResponseError> {
        self.ready(transactional_id)?;
        let mut inner = self.inner.lock();
        let meta = Self::validate(&inner, transactional_id, producer_id, producer_epoch)?;
        let next = Self::with_partitions(meta, partitions, tv);
        match next {
            None => Ok(()),
            Some(next) => self.transition(&mut inner, next),
        }
    }

    /// The transaction after `partitions` joined it, or `None` when it is
    /// open and has them all already (nothing to write: the common case of
    /// every batch after a partition's first).
    fn with_partitions(
        meta: &TxnMetadata,
        partitions: &[TopicPartition],
        tv: i16,
    ) -> Option<TxnMetadata> {
        let all_in = partitions.iter().all(|tp| meta.partitions.contains(tp));
        if meta.state == TxnState::Ongoing && all_in {
            return None;
        }
        let mut next = meta.clone();
        if next.state != TxnState::Ongoing {
            next.start_ms = now_ms();
            next.partitions.clear();
        }
        next.state = TxnState::Ongoing;
        next.client_transaction_version = tv;
        next.partitions.extend(partitions.iter().cloned());
        Some(next)
    }

    /// AddPartitionsToTxn v4+ `verify_only` (KIP-890 part 1, as brokers
    /// send it): per partition, NONE when the open transaction has it,
    /// TRANSACTION_ABORTABLE when not; the whole request fails on a wrong
    /// producer id/epoch or while the transaction is ending.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.ready(transactional_id)?;
        let inner = self.inner.lock();
        let meta = Self::validate(&inner, transactional_id, producer_id, producer_epoch)?;
        Ok(partitions
            .iter()
            .map(|tp| {
                (!(meta.state == TxnState::Ongoing && meta.partitions.contains(tp)))
                    .then_some(ResponseError::TransactionAbortable)
            })
            .collect())
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        tv: i16,
    ) -> Result<(), ResponseError> {
        let tp = self.offsets_partition(group_id)?;
        self.add_partitions(transactional_id, producer_id, producer_epoch, &[tp], tv)
    }

    fn offsets_partition(&self, group_id: &str) -> Result<TopicPartition, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let n = self.groups.ensure_offsets_topic()?;
        Ok(TopicPartition::new(
            OFFSETS_TOPIC,
            partition_for(group_id, n),
        ))
    }

    /// The KIP-890 check of a TxnOffsetCommit before the group coordinator
    /// takes its offsets: v5+ (transaction version 2, which sends no
    /// AddOffsetsToTxn) adds the group's offsets partition to the
    /// transaction; older versions must find it there already (part 1),
    /// else the offsets would wait for a marker that never comes. Errors as
    /// Kafka's verification gives them: a fenced epoch is
    /// INVALID_PRODUCER_EPOCH, a partition outside the transaction
    /// TRANSACTION_ABORTABLE from v4 and INVALID_TXN_STATE before.
    pub fn check_txn_offset_commit(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        version: i16,
    ) -> Result<(), ResponseError> {
        let fenced = |e: ResponseError| match e {
            ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            e => e,
        };
        if version >= FIRST_TV2_TXN_OFFSET_COMMIT_VERSION {
            return self
                .add_offsets(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    group_id,
                    TV_2,
                )
                .map_err(fenced);
        }
        let tp = self.offsets_partition(group_id)?;
        let per = self
            .verify_partitions(transactional_id, producer_id, producer_epoch, &[tp])
            .map_err(fenced)?;
        match per.into_iter().next().flatten() {
            None => Ok(()),
            Some(_) if version >= 4 => Err(ResponseError::TransactionAbortable),
            Some(_) => Err(ResponseError::InvalidTxnState),
        }
    }

    /// EndTxn: commit or abort. Versions up to 4 (transaction versions 0
    /// and 1) keep the producer's epoch and answer a retry of a completed
    /// end with success; v5+ (transaction version 2) ends every
    /// transaction with an epoch bump, see [`Self::end_txn_v2`]. Returns
    /// the producer id and epoch to use next.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        tv: i16,
    ) -> Result<(i64, i16), ResponseError> {
        self.ready(transactional_id)?;
        if tv >= TV_2 {
            return self.end_txn_v2(transactional_id, producer_id, producer_epoch, commit);
        }
        let mut inner = self.inner.lock();
        let meta = inner
            .txns
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if meta.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch != producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        let out = (meta.producer_id, meta.producer_epoch);
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                let meta = meta.clone();
                let meta = self.prepare_end(&mut inner, meta, commit, tv)?;
                // decided: a pending end is answered once Prepare* is
                // replicated (the handler awaits that), as Kafka does
                self.end_transaction(&mut inner, meta, commit).map(|_| out)
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(out),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                let meta = meta.clone();
                self.write_markers_and_complete(&mut inner, meta, commit)
                    .map(|_| out)
            }
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => Err(ResponseError::ProducerFenced),
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// EndTxn under transaction version 2 (KIP-890 part 2), Kafka's rules:
    /// the request names the current epoch, the end bumps it (markers
    /// included) and the answer carries the new id/epoch. A retry of the
    /// end just made names the epoch before the bump (or, after a
    /// rollover, the old id at the last epoch) and gets the same answer
    /// again; anything else older is PRODUCER_FENCED. So a late commit or
    /// abort of transaction N can never act on transaction N+1, which runs
    /// at the bumped epoch. An abort with nothing open is allowed (and
    /// bumps too); a commit with nothing open is INVALID_TXN_STATE.
    fn end_txn_v2(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(i64, i16), ResponseError> {
        let mut inner = self.inner.lock();
        let meta = inner
            .txns
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        // The end just made, asked again: the epoch is one above the
        // request's. A fence leaves that epoch unused (it bumps by two), and
        // only a completion that rolls the id over may reach i16::MAX.
        let retry_on_bump = meta.producer_id == producer_id
            && i32::from(meta.producer_epoch) == i32::from(producer_epoch) + 1
            && (meta.producer_epoch < i16::MAX || meta.next_producer_id >= 0);
        // ... or, after that end rolled the id over, the old id at the last
        // epoch it had.
        let retry_on_overflow = meta.producer_id != producer_id
            && meta.previous_producer_id == producer_id
            && producer_epoch == i16::MAX - 1
            && meta.producer_epoch == 0;
        if meta.producer_id != producer_id && !retry_on_overflow {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        let current = meta.producer_id == producer_id && meta.producer_epoch == producer_epoch;
        let valid = match meta.state {
            TxnState::Ongoing | TxnState::Empty | TxnState::Dead | TxnState::PrepareEpochFence => {
                current
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_bump || retry_on_overflow || current
            }
        };
        if !valid {
            return Err(ResponseError::ProducerFenced);
        }
        let is_retry = retry_on_bump || retry_on_overflow;
        let meta = meta.clone();
        let out = (meta.producer_id, meta.producer_epoch);
        let end = |inner: &mut Inner, meta: TxnMetadata| -> Result<(i64, i16), ResponseError> {
            let meta = self.prepare_end(inner, meta, commit, TV_2)?;
            Ok(self.end_transaction(inner, meta, commit)?.next_ids())
        };
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => end(&mut inner, meta),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if is_retry => {
                Ok(out)
            }
            // nothing open: an abort still bumps the epoch (the client may
            // abort whenever it is unsure whether anything was added)
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false)
                if !is_retry =>
            {
                end(&mut inner, meta)
            }
            // the end was decided but its markers are not all written yet:
            // finish it now (Kafka answers CONCURRENT_TRANSACTIONS and lets
            // the client retry until they are)
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                let done = self.write_markers_and_complete(&mut inner, meta, commit)?;
                Ok((done.producer_id, done.producer_epoch))
            }
            (TxnState::PrepareEpochFence | TxnState::Dead, _) => Err(ResponseError::ProducerFenced),
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// The KIP-890 check of a transactional produce. Produce v12+
    /// (transaction version 2, whose clients send no AddPartitionsToTxn)
    /// adds the partition to the producer's transaction, starting one if
    /// none is open; older versions must find the partition in the open
    /// transaction of the producer's current epoch (part 1). Errors as
    /// Kafka's produce path gives them: a fenced epoch is
    /// INVALID_PRODUCER_EPOCH; a partition outside the transaction is
    /// TRANSACTION_ABORTABLE from v11 and INVALID_TXN_STATE before; a
    /// coordinator that cannot answer yet (loading, or the transaction
    /// still ending) is the retriable NOT_ENOUGH_REPLICAS.
    ///
    /// Only a coordinator on this broker is asked: when the producer's
    /// coordinator is another broker the produce is not verified, as Kafka
    /// with `transaction.partition.verification.enable=false` (Kafka's
    /// AddPartitionsToTxnManager would ask it with AddPartitionsToTxn v4+;
    /// not done yet), so a transactional producer's writes never fail just
    /// because its coordinator is remote.
    pub fn verify_produce(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        producer_epoch: i16,
        tp: &TopicPartition,
        version: i16,
    ) -> Result<(), ResponseError> {
        let n = self.state_partitions();
        match transactional_id {
            Some(id) => match self.owned.status(partition_for(id, n)) {
                Ok(_) => {}
                Err(ResponseError::NotCoordinator) => return Ok(()),
                Err(_) => return Err(ResponseError::NotEnoughReplicas),
            },
            None if self.owned.any_loading() => return Err(ResponseError::NotEnoughReplicas),
            None => {}
        }
        let mut inner = self.inner.lock();
        let Some(meta) = inner
            .by_pid
            .get(&producer_id)
            .and_then(|id| inner.txns.get(id))
        else {
            if transactional_id.is_none() && self.owned.owned().len() < n as usize {
                // maybe coordinated elsewhere: not verified (see above)
                return Ok(());
            }
            return Err(if version >= FIRST_TV2_PRODUCE_VERSION {
                ResponseError::InvalidProducerIdMapping
            } else {
                ResponseError::InvalidTxnState
            });
        };
        if producer_epoch < meta.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if version >= FIRST_TV2_PRODUCE_VERSION {
            if producer_epoch != meta.producer_epoch {
                return Err(ResponseError::InvalidProducerEpoch);
            }
            return match meta.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                    Err(ResponseError::NotEnoughReplicas)
                }
                TxnState::Dead => Err(ResponseError::InvalidProducerIdMapping),
                _ => match Self::with_partitions(meta, std::slice::from_ref(tp), TV_2) {
                    None => Ok(()),
                    Some(next) => self.transition(&mut inner, next).map_err(|e| match e {
                        ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable => {
                            ResponseError::NotEnoughReplicas
                        }
                        e => e,
                    }),
                },
            };
        }
        if producer_epoch == meta.producer_epoch
            && meta.state == TxnState::Ongoing
            && meta.partitions.contains(tp)
        {
            return Ok(());
        }
        Err(if version >= 11 {
            ResponseError::TransactionAbortable
        } else {
            ResponseError::InvalidTxnState
        })
    }

    /// The produce-path hook: when `records` start with a transactional
    /// batch, [`Self::verify_produce`] its producer against `tp`.
    pub fn verify_transactional_produce(
        &self,
        transactional_id: Option<&str>,
        tp: &TopicPartition,
        records: &[u8],
        version: i16,
    ) -> Result<(), AppendError> {
        let Ok(h) = oxka_log::RecordBatchHeader::parse(records) else {
            // malformed: the log's validation answers it
            return Ok(());
        };
        if !h.is_transactional() || h.producer_id < 0 {
            return Ok(());
        }
        self.verify_produce(
            transactional_id,
            h.producer_id,
            h.producer_epoch,
            tp,
            version,
        )
            .map_err(|error| {
                let (pid, epoch) = (h.producer_id, h.producer_epoch);
                let message = match error {
                    ResponseError::InvalidProducerEpoch => format!(
                        "Transactional produce to {tp} by producer {pid} with epoch {epoch}, which is fenced"
                    ),
                    ResponseError::InvalidProducerIdMapping => format!(
                        "Transactional produce to {tp} by producer {pid}, which no transactional id has"
                    ),
                    ResponseError::NotEnoughReplicas => format!(
                        "Unable to verify that {tp} is part of the transaction of producer {pid} yet"
                    ),
                    _ => format!(
                        "Transactional produce to {tp} by producer {pid} epoch {epoch}, which is not part of its ongoing transaction"
                    ),
                };
                AppendError::new(error, message)
            })
    }

    /// ListTransactions (KIP-664; v1 adds the minimum duration of open
    /// transactions, v2 a transactional-id regular expression).
    pub fn list(
        &self,
        states: &[TxnState],
        producer_ids: &[i64],
        min_duration_ms: i64,
        pattern: Option<&regex::Regex>,
    ) -> Result<Vec<ListedTxn>, ResponseError> {
        if self.owned.any_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let now = now_ms();
        let n = self.state_partitions();
        let inner = self.inner.lock();
        let mut out: Vec<ListedTxn> = inner
            .txns
            .values()
            .filter(|m| self.owned.is_loaded(partition_for(&m.transactional_id, n)))
            .filter(|m| states.is_empty() || states.contains(&m.state))
            .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .filter(|m| pattern.is_none_or(|re| re.is_match(&m.transactional_id)))
            .filter(|m| {
                min_duration_ms < 0
                    || (m.state == TxnState::Ongoing
                        && now.saturating_sub(m.start_ms) >= min_duration_ms)
            })
            .map(|m| ListedTxn {
                transactional_id: m.transactional_id.clone(),
                producer_id: m.producer_id,
                state: m.state,
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// DescribeTransactions for one id.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnMetadata, ResponseError> {
        self.ready(transactional_id)?;
        self.inner
            .lock()
            .txns
            .get(transactional_id)
            .cloned()
            .ok_or(ResponseError::TransactionalIdNotFound)
    }

    /// Takes the `__transaction_state` partitions led here now (also those
    /// led before the leadership listener existed) and loads every one not
    /// loaded yet, on the calling thread. The loader task runs this when
    /// the listener wakes it; tests call it directly.
    pub fn load(&self) -> Result<(), oxka_log::LogError> {
        let n = self
            .controller
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .map(|t| t.partitions.len() as i32);
        if let Some(n) = n {
            for p in self
                .owned
                .reconcile(&*self.replica_manager, TRANSACTION_STATE_TOPIC, n)
            {
                self.unload(p);
            }
        }
        let mut first_error = None;
        for (p, epoch) in self.owned.to_load() {
            let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, p);
            let loaded = match self.replay(&tp) {
                Ok(txns) => txns,
                Err(e) => {
                    crate::log_load_failure("transaction state", &tp, &e);
                    first_error.get_or_insert(e);
                    Vec::new()
                }
            };
            self.install(p, epoch, loaded);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Replays one partition of `__transaction_state` (Kafka's
    /// `TransactionStateManager.loadTransactionMetadata`): the last record
    /// per transactional id wins, a tombstone removes it.
    fn replay(&self, tp: &TopicPartition) -> Result<Vec<TxnMetadata>, oxka_log::LogError> {
        let mut latest: HashMap<String, Option<TxnLogValue>> = HashMap::new();
        let mut bad = 0usize;
        bad += super::replay_partition(&*self.replica_manager, tp, |h, raw, pos| {
            let Some(recs) = super::replayed_records(h, raw, pos) else {
                bad += 1;
                return;
            };
            for r in recs {
                let Some(Ok(id)) = r.key.as_deref().map(decode_key) else {
                    bad += 1;
                    continue;
                };
                match r.value.as_deref().map(TxnLogValue::decode) {
                    None => {
                        latest.insert(id, None);
                    }
                    Some(Ok(v)) => {
                        latest.insert(id, Some(v));
                    }
                    Some(Err(_)) => bad += 1,
                }
            }
        })?;
        if bad > 0 {
            tracing::warn!(records = bad, "skipped undecodable records in {tp}");
        }
        Ok(latest
            .into_iter()
            .filter_map(|(id, v)| v.map(|v| TxnMetadata::from_value(&id, v)))
            .collect())
    }

    /// The periodic sweep: abort transactions past their timeout (fencing
    /// the producer), forget idle ids, and wake the marker task for
    /// transactions stuck in Prepare*. Only ids coordinated here.
    pub fn sweep(&self, now: i64, expire_ids: bool) {
        let n = self.state_partitions();
        let mut inner = self.inner.lock();
        let todo: Vec<TxnMetadata> = inner
            .txns
            .values()
            .filter(|m| self.owned.is_loaded(partition_for(&m.transactional_id, n)))
            .filter(|m| match m.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                    true
                }
                TxnState::Ongoing => m.start_ms.saturating_add(i64::from(m.timeout_ms)) < now,
                _ => false,
            })
            .cloned()
            .collect();
        for meta in todo {
            let id = meta.transactional_id.clone();
            let res = match meta.state {
                TxnState::Ongoing => {
                    tracing::info!(transactional_id = %id, producer_id = meta.producer_id, "aborting a transaction past its timeout");
                    self.fence_and_abort(&mut inner, meta).map(|_| ())
                }
                state if self.completes_inline(&meta) => self
                    .write_markers_and_complete(&mut inner, meta, state == TxnState::PrepareCommit)
                    .map(|_| ()),
                _ => {
                    self.markers_wake.notify_one();
                    Ok(())
                }
            };
            match res {
                Ok(()) | Err(ResponseError::ConcurrentTransactions) => {}
                Err(e) => {
                    tracing::warn!(transactional_id = %id, error = ?e, "transaction sweep step failed")
                }
            }
        }
        if !expire_ids {
            return;
        }
        let expired: Vec<String> = inner
            .txns
            .values()
            .filter(|m| self.owned.is_loaded(partition_for(&m.transactional_id, n)))
            .filter(|m| {
                matches!(
                    m.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && m.last_update_ms.saturating_add(self.cfg.id_expiration_ms) < now
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in expired {
            if self.persist(&id, None).is_ok() {
                if let Some(m) = inner.txns.remove(&id) {
                    inner.by_pid.remove(&m.producer_id);
                }
                tracing::info!(transactional_id = %id, "expired transactional id");
            }
        }
    }

    /// One round of the marker task: the Prepare* transactions coordinated
    /// here (at most [`MARKER_BATCH`], concurrently) get their markers and
    /// are completed. Returns whether any is left for another round.
    async fn complete_pending(self: &Arc<Self>) -> bool {
        let n = self.state_partitions();
        let todo: Vec<TxnMetadata> = {
            let inner = self.inner.lock();
            inner
                .txns
                .values()
                .filter(|m| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
                .filter(|m| self.owned.is_loaded(partition_for(&m.transactional_id, n)))
                .take(MARKER_BATCH + 1)
                .cloned()
                .collect()
        };
        let more = todo.len() > MARKER_BATCH;
        let mut tasks = tokio::task::JoinSet::new();
        for meta in todo.into_iter().take(MARKER_BATCH) {
            let me = self.clone();
            tasks.spawn(async move { me.complete_one(meta).await });
        }
        let mut left = more;
        while let Some(done) = tasks.join_next().await {
            left |= !matches!(done, Ok(true));
        }
        left
    }

    /// Sends the markers of one Prepare* transaction, after its decision
    /// is replicated (Kafka sends markers only for a durable decision, so
    /// a new coordinator finds the same one and completes it the same
    /// way), then writes Complete*. True when it completed.
    async fn complete_one(self: Arc<Self>, meta: TxnMetadata) -> bool {
        let id = meta.transactional_id.clone();
        let state_tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, self.partition_of(&id));
        let Ok(coordinator_epoch) = self.owned.status(state_tp.partition) else {
            return false;
        };
        let timeout = Duration::from_millis(self.cfg.write_timeout_ms);
        if let Err(e) = self
            .replica_manager
            .wait_replicated(&state_tp, timeout)
            .await
        {
            tracing::debug!(transactional_id = %id, error = ?e, "transaction decision not replicated yet");
            return false;
        }
        let commit = meta.state == TxnState::PrepareCommit;
        let image = self.controller.image();
        let mut failed = 0usize;
        for tp in &meta.partitions {
            let exists = image
                .topic(&tp.topic)
                .is_some_and(|t| tp.partition >= 0 && (tp.partition as usize) < t.partitions.len());
            if !exists {
                continue; // Kafka drops markers for deleted partitions
            }
            let written = if self.replica_manager.leader_epoch(tp).is_some() {
                match self.write_marker(
                    tp,
                    meta.producer_id,
                    meta.producer_epoch,
                    coordinator_epoch,
                    commit,
                ) {
                    Ok(()) => self.replica_manager.wait_replicated(tp, timeout).await,
                    Err(e) => Err(e),
                }
            } else if let Some(channel) = self.channel.get() {
                channel
                    .send_marker(TxnMarker {
                        tp: tp.clone(),
                        producer_id: meta.producer_id,
                        producer_epoch: meta.producer_epoch,
                        coordinator_epoch,
                        commit,
                    })
                    .await
            } else {
                Err(ResponseError::NotLeaderOrFollower)
            };
            match written {
                Ok(()) | Err(ResponseError::UnknownTopicOrPartition) => {}
                Err(e) => {
                    tracing::debug!(transactional_id = %id, partition = %tp, error = ?e, "transaction marker not written; will retry");
                    failed += 1;
                }
            }
        }
        if failed > 0 {
            return false;
        }
        let mut inner = self.inner.lock();
        // still the same decision, still coordinated here in the same epoch
        let same = inner.txns.get(&id).is_some_and(|m| {
            m.state == meta.state
                && m.producer_id == meta.producer_id
                && m.producer_epoch == meta.producer_epoch
        });
        if !same || self.owned.status(state_tp.partition) != Ok(coordinator_epoch) {
            return false;
        }
        self.complete(&mut inner, meta, commit).is_ok()
    }

    /// Loads the `__transaction_state` partitions led here (again whenever
    /// leadership moves here), completes decided transactions, and runs
    /// the sweeps until `shutdown`.
    pub fn spawn(
        self: &Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let loader = self.clone();
        let mut loader_shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let l = loader.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || {
                    // failures are logged per partition by `load`
                    let _ = l.load();
                })
                .await
                {
                    tracing::error!(error = %e, "transaction load task failed");
                }
                tokio::select! {
                    _ = loader_shutdown.changed() => break,
                    _ = loader.owned.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        });
        let markers = self.clone();
        let mut markers_shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let again = markers.complete_pending().await;
                let wait = if again {
                    MARKER_RETRY
                } else {
                    Duration::from_secs(5)
                };
                tokio::select! {
                    _ = markers_shutdown.changed() => break,
                    _ = markers.markers_wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut abort = tokio::time::interval(Duration::from_millis(me.cfg.abort_interval_ms));
            let mut expire =
                tokio::time::interval(Duration::from_millis(me.cfg.remove_expired_interval_ms));
            let mut producers = tokio::time::interval(Duration::from_millis(
                me.cfg.producer_id_expiration_check_ms,
            ));
            for t in [&mut abort, &mut expire, &mut producers] {
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t.tick().await;
            }
            loop {
                let job: Box<dyn FnOnce() + Send> = tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = abort.tick() => {
                        let m = me.clone();
                        Box::new(move || m.sweep(now_ms(), false))
                    }
                    _ = expire.tick() => {
                        let m = me.clone();
                        Box::new(move || m.sweep(now_ms(), true))
                    }
                    _ = producers.tick() => {
                        let m = me.clone();
                        Box::new(move || {
                            let n = m
                                .replica_manager
                                .remove_expired_producers(now_ms(), m.cfg.producer_id_expiration_ms);
                            if n > 0 {
                                tracing::info!(producers = n, "expired idle producer ids");
                            }
                        })
                    }
                };
                if let Err(e) = tokio::task::spawn_blocking(job).await {
                    tracing::error!(error = %e, "transaction sweep task failed");
                }
            }
        })
    }
}
