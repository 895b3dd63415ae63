//! Coordinators: broker-side state machines that clients find through
//! FindCoordinator: the group coordinator and the transaction coordinator.

pub mod group;
pub mod txn;

pub use group::GroupCoordinator;
pub use txn::TransactionCoordinator;

use oxka_log::{LogError, RecordBatchHeader, TopicPartition};

use crate::replica_manager::ReplicaManager;

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
    replica_manager: &ReplicaManager,
    tp: &TopicPartition,
    mut visit: impl FnMut(&RecordBatchHeader, &[u8], i64),
) -> Result<usize, LogError> {
    let Some(partition) = replica_manager.get_partition(tp) else {
        return Ok(0);
    };
    let (mut pos, end) = {
        let l = partition.log.lock();
        (l.log_start_offset(), l.log_end_offset())
    };
    let mut bad = 0usize;
    while pos < end {
        let data = partition.log.lock().read(pos, REPLAY_CHUNK, end, true)?;
        if data.records.is_empty() {
            break;
        }
        let mut next = pos;
        for batch in oxka_log::record_batch::batches(&data.records) {
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
