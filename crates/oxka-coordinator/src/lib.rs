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

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use oxka_controller::image::MetadataImage;
use oxka_log::{LogError, RecordBatchHeader, TopicPartition};

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

/// Runs a coordinator's start-up load on a blocking thread. A load that
/// fails is logged and the coordinator starts without that state (marked
/// loaded) rather than answering COORDINATOR_LOAD_IN_PROGRESS forever.
pub(crate) async fn load_or_start_empty<E: std::fmt::Display + Send + 'static>(
    what: &'static str,
    loaded: &std::sync::atomic::AtomicBool,
    load: impl FnOnce() -> Result<(), E> + Send + 'static,
) {
    let failure = match tokio::task::spawn_blocking(load).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("load task failed: {e}"),
    };
    tracing::error!(error = %failure, "loading {what} failed; starting without it");
    loaded.store(true, std::sync::atomic::Ordering::Release);
}
