//! Coordinators: the state machines clients find through FindCoordinator,
//! the group coordinator and the transaction coordinator, over their
//! internal topics (`__consumer_offsets`, `__transaction_state`). They reach
//! the broker only through two narrow traits, [`CoordinatorLog`] (their
//! partitions: append, replay, transaction markers) and
//! [`CoordinatorMetadata`] (the metadata image, their internal topics,
//! producer ids, group configs), so they are testable without a broker and
//! depend on no server crate but the log and the metadata image.

pub mod group;
pub mod txn;

pub use group::GroupCoordinator;
pub use txn::TransactionCoordinator;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use oxka_controller::image::MetadataImage;
use oxka_log::{LogError, RecordBatchHeader, TopicPartition};
use parking_lot::Mutex;

/// A future the broker resolves for a coordinator (replication, a
/// request to another broker).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a write to an internal topic failed with, as the Kafka error.
#[derive(Debug, Clone)]
pub struct AppendError {
    pub error: ResponseError,
    pub message: String,
}

impl AppendError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        AppendError {
            error,
            message: message.into(),
        }
    }
}

/// The coordinators' partitions, as the broker's replica manager holds them.
pub trait CoordinatorLog: Send + Sync {
    /// Appends records as the partition's leader (`acks` as a producer's).
    fn append_records(
        &self,
        tp: &TopicPartition,
        records: Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<(), AppendError>;
    /// Appends transactional offset commits written by the coordinator
    /// itself (the producer's epoch checked, no client limits).
    fn append_coordinator_records(
        &self,
        tp: &TopicPartition,
        records: Bytes,
        now_ms: i64,
    ) -> Result<(), AppendError>;
    /// Writes a COMMIT or ABORT marker for a producer's transaction.
    fn write_txn_marker(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        now_ms: i64,
    ) -> Result<(), AppendError>;
    /// Drops the idle producer ids of every partition (Kafka's
    /// `producer.id.expiration.ms`); how many.
    fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize;
    /// The partition's log start and end offsets, if it is hosted here.
    fn log_bounds(&self, tp: &TopicPartition) -> Option<(i64, i64)>;
    /// Whole batches from `from`, about `max_bytes`, below `end`.
    fn read(
        &self,
        tp: &TopicPartition,
        from: i64,
        max_bytes: usize,
        end: i64,
    ) -> Result<Bytes, LogError>;
    /// The partition's leader epoch when this broker leads it (the
    /// coordinator epoch of the ids hashed to it), else `None`.
    fn leader_epoch(&self, tp: &TopicPartition) -> Option<i32>;
    /// Whether this broker leads the partition with no other replica in
    /// its ISR, so that an append is committed the moment it is written
    /// (a single node): the coordinators then finish work inline instead
    /// of waiting for followers.
    fn leads_alone(&self, tp: &TopicPartition) -> bool;
    /// Resolves once the partition's high watermark covers everything
    /// appended to it so far (acks=all for the coordinators' writes), with
    /// the produce path's errors: NOT_LEADER_OR_FOLLOWER,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT after `timeout`.
    fn wait_replicated(
        &self,
        tp: &TopicPartition,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), ResponseError>>;
}

/// One COMMIT/ABORT marker for a partition led by another broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMarker {
    pub tp: TopicPartition,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
}

/// How the transaction coordinator reaches partition leaders on other
/// brokers: WriteTxnMarkers (API 27) to the leader the metadata names
/// (Kafka's TransactionMarkerChannelManager). Resolves with the leader's
/// answer for the partition (written and replicated), or the error to
/// retry on (no leader, broker down, timeout).
pub trait TxnMarkerChannel: Send + Sync {
    fn send_marker(&self, marker: TxnMarker) -> BoxFuture<'static, Result<(), ResponseError>>;
}

/// The cluster metadata as the coordinators need it.
pub trait CoordinatorMetadata: Send + Sync {
    fn image(&self) -> Arc<MetadataImage>;
    /// Creates an internal compacted topic on first use; its partitions.
    fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        segment_bytes: i64,
    ) -> Result<i32, ResponseError>;
    /// A producer id never handed out before.
    fn allocate_producer_id(&self) -> Result<i64, ResponseError>;
    /// A group config's effective value: the group's override in
    /// `overrides`, else the broker's `group.*` default.
    fn group_config_int(&self, overrides: &BTreeMap<String, String>, name: &str) -> Option<i64>;
}

pub use oxka_log::now_ms;

/// How much of an internal topic's log a replay reads at once.
const REPLAY_CHUNK: usize = 1 << 20;

/// The data records of a replayed batch at or after `pos` (none for a
/// control batch); `None` if the batch does not decode.
pub(crate) fn replayed_records(
    h: &RecordBatchHeader,
    raw: &[u8],
    pos: i64,
) -> Option<impl Iterator<Item = oxka_log::record_batch::Record>> {
    let recs = if h.is_control() {
        Vec::new()
    } else {
        oxka_log::record_batch::decode_records(raw).ok()?
    };
    Some(recs.into_iter().filter(move |r| r.offset >= pos))
}

/// Replays one partition of a coordinator's internal topic
/// (`__consumer_offsets`, `__transaction_state`) from its log start to its
/// end in bounded chunks, calling `visit(header, raw, chunk_start)` for every
/// batch. Both coordinators rebuild their state this way at start-up.
/// Returns how many torn or unparsable batches ended a chunk early.
pub(crate) fn replay_partition(
    log: &dyn CoordinatorLog,
    tp: &TopicPartition,
    mut visit: impl FnMut(&RecordBatchHeader, &[u8], i64),
) -> Result<usize, LogError> {
    let Some((mut pos, end)) = log.log_bounds(tp) else {
        return Ok(0);
    };
    let mut bad = 0usize;
    while pos < end {
        let records = log.read(tp, pos, REPLAY_CHUNK, end)?;
        if records.is_empty() {
            break;
        }
        let mut next = pos;
        for batch in oxka_log::record_batch::batches(&records) {
            let Ok((h, raw)) = batch else {
                bad += 1;
                break;
            };
            next = next.max(h.last_offset() + 1);
            visit(&h, raw, pos);
        }
        if next <= pos {
            break;
        }
        pos = next;
    }
    Ok(bad)
}

/// A partition of a coordinator's internal topic that this broker leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owned {
    /// The partition's leader epoch: Kafka's coordinator epoch.
    epoch: i32,
    /// Its state is replayed into memory.
    loaded: bool,
}

/// Which partitions of its internal topic a coordinator owns. Kafka makes
/// a broker the group (transaction) coordinator of the ids hashed to a
/// partition of `__consumer_offsets` (`__transaction_state`) exactly while
/// it leads that partition (`GroupCoordinator.onElection` /
/// `onResignation`): it answers COORDINATOR_LOAD_IN_PROGRESS while the
/// partition is replayed and NOT_COORDINATOR once it is led elsewhere.
/// The map is bounded by the topic's partition count; the loader task is
/// woken through `wake` (a permit, so no wake-up is lost and nothing
/// queues).
#[derive(Default)]
pub(crate) struct Ownership {
    states: Mutex<HashMap<i32, Owned>>,
    pub(crate) wake: tokio::sync::Notify,
}

impl Ownership {
    /// This broker leads `partition` in `epoch`. True when its state must
    /// be loaded (it was not owned); a new epoch of a partition that stayed
    /// here keeps its state and takes the epoch.
    pub(crate) fn lead(&self, partition: i32, epoch: i32) -> bool {
        let mut s = self.states.lock();
        match s.get_mut(&partition) {
            Some(o) => {
                o.epoch = o.epoch.max(epoch);
                false
            }
            None => {
                s.insert(
                    partition,
                    Owned {
                        epoch,
                        loaded: false,
                    },
                );
                true
            }
        }
    }

    /// This broker no longer leads `partition`; true if it owned it.
    pub(crate) fn resign(&self, partition: i32) -> bool {
        self.states.lock().remove(&partition).is_some()
    }

    /// The coordinator epoch when `partition` is owned and loaded;
    /// COORDINATOR_LOAD_IN_PROGRESS while it loads, NOT_COORDINATOR when
    /// it is not led here.
    pub(crate) fn status(&self, partition: i32) -> Result<i32, ResponseError> {
        match self.states.lock().get(&partition) {
            Some(o) if o.loaded => Ok(o.epoch),
            Some(_) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::NotCoordinator),
        }
    }

    pub(crate) fn is_loaded(&self, partition: i32) -> bool {
        self.status(partition).is_ok()
    }

    pub(crate) fn any_loading(&self) -> bool {
        self.states.lock().values().any(|o| !o.loaded)
    }

    /// The owned partitions still to load, with their epochs.
    pub(crate) fn to_load(&self) -> Vec<(i32, i32)> {
        let mut v: Vec<(i32, i32)> = self
            .states
            .lock()
            .iter()
            .filter(|(_, o)| !o.loaded)
            .map(|(p, o)| (*p, o.epoch))
            .collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn owned(&self) -> Vec<i32> {
        self.states.lock().keys().copied().collect()
    }

    /// Marks `partition` loaded if it is still owned in `epoch` (a load
    /// that lost the race with a resignation is thrown away).
    pub(crate) fn mark_loaded(&self, partition: i32, epoch: i32) -> bool {
        match self.states.lock().get_mut(&partition) {
            Some(o) if o.epoch == epoch => {
                o.loaded = true;
                true
            }
            _ => false,
        }
    }

    /// Brings the map in line with the replica manager (level-triggered,
    /// so a leadership change that happened before the listener existed or
    /// raced with a load is still seen): partitions led here are owned,
    /// others not. Returns the partitions resigned.
    pub(crate) fn reconcile(
        &self,
        log: &dyn CoordinatorLog,
        topic: &str,
        partitions: i32,
    ) -> Vec<i32> {
        let mut resigned = Vec::new();
        for p in 0..partitions {
            match log.leader_epoch(&TopicPartition::new(topic, p)) {
                Some(epoch) => {
                    self.lead(p, epoch);
                }
                None => {
                    if self.resign(p) {
                        resigned.push(p);
                    }
                }
            }
        }
        resigned
    }
}

/// Logs a partition load that failed: the partition is then served empty
/// (marked loaded) rather than answering COORDINATOR_LOAD_IN_PROGRESS
/// forever, as the single-node coordinators did at start-up.
pub(crate) fn log_load_failure(what: &str, tp: &TopicPartition, e: &dyn std::fmt::Display) {
    tracing::error!(partition = %tp, error = %e, "loading {what} failed; serving it without that state");
}

/// Maps an error of a coordinator write's replication as Kafka maps the
/// append errors of its coordinators (`GroupMetadataManager` /
/// `TransactionStateManager`): not replicated in time or not enough
/// replicas is COORDINATOR_NOT_AVAILABLE (the client retries here),
/// leadership lost is NOT_COORDINATOR (it looks the coordinator up again).
pub(crate) fn replication_error(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => {
            ResponseError::NotCoordinator
        }
        _ => ResponseError::CoordinatorNotAvailable,
    }
}
