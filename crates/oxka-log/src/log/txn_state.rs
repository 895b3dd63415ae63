//! The log's producer state and aborted-transaction index: the parts of
//! Kafka's UnifiedLog that keep idempotence and transactions, kept out of
//! `log.rs` so that file only carries small hooks (check before an append,
//! apply after it, snapshot at roll and shutdown, rebuild on open and
//! truncation).

use bytes::BytesMut;

use super::Log;
use crate::builder::RecordBatchBuilder;
use crate::error::LogError;
use crate::producer_state::{
    delete_snapshots_after, list_snapshots, load_latest_snapshot, snapshot_file, AppendOrigin,
    BatchInfo, BatchMetadata, Checked, CompletedTxn, PendingUpdate, ProducerStateManager,
};
use crate::record_batch::{batches, ValidatedBatch};
use crate::segment::AppendBatch;
use crate::txn_index::{AbortedTxn, TxnIndexes};
use crate::LogAppendInfo;

/// Bytes read per step when replaying the log into the producer state.
const REPLAY_CHUNK: usize = 1 << 20;

/// Control record type of an ABORT marker (Kafka's ControlRecordType).
const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a COMMIT marker.
const CONTROL_TYPE_COMMIT: i16 = 1;

impl Log {
    /// Rebuilds producer state and the aborted-transaction index: the
    /// newest snapshot not past the log end, then a replay of every batch
    /// after it (all of the log when there is no snapshot).
    pub(super) fn load_producer_state(&mut self) -> Result<(), LogError> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        self.txn_indexes = TxnIndexes::load(&self.dir, &bases)?;
        self.txn_indexes
            .truncate_to(&self.dir, self.log_end_offset)?;
        let state = load_latest_snapshot(&self.dir, self.log_end_offset)?;
        let from = match state {
            Some(s) => {
                let from = s.map_end_offset();
                self.producer_state = s;
                from.max(self.log_start_offset)
            }
            None => {
                self.producer_state.clear(self.log_start_offset);
                self.log_start_offset
            }
        };
        self.replay_producer_state(from)
    }

    fn replay_producer_state(&mut self, from: i64) -> Result<(), LogError> {
        let end = self.log_end_offset;
        let mut pos = from;
        let mut replayed = 0usize;
        while pos < end {
            let data = self.read(pos, REPLAY_CHUNK, end, true)?;
            if data.records.is_empty() {
                break;
            }
            let mut next = pos;
            for batch in batches(&data.records) {
                let (h, raw) = batch?;
                next = next.max(h.last_offset() + 1);
                if h.last_offset() < pos || h.producer_id < 0 {
                    continue;
                }
                let info = BatchInfo {
                    header: &h,
                    base_offset: h.base_offset,
                    bytes: raw,
                };
                let update = match self
                    .producer_state
                    .check(&[info], AppendOrigin::Replication)
                {
                    Ok(Checked::Update(u)) => u,
                    Ok(Checked::Duplicate(_)) => continue,
                    Err(e) => {
                        // a marker we cannot parse: keep going, as Kafka does
                        tracing::warn!(tp = %self.tp, offset = h.base_offset, error = %e, "skipping batch during producer state replay");
                        continue;
                    }
                };
                self.apply_producer_update(update, h.last_offset() + 1, true)?;
                replayed += 1;
            }
            if next <= pos {
                break;
            }
            pos = next;
        }
        self.producer_state.set_end_offset(end);
        if replayed > 0 {
            tracing::debug!(tp = %self.tp, from, replayed, "replayed producer state");
        }
        Ok(())
    }

    /// Checks an append's batches (at the offsets `placed` gives them)
    /// against the producer state.
    pub(super) fn check_producer_state(
        &self,
        records: &[u8],
        validated: &[ValidatedBatch],
        placed: &[AppendBatch],
        origin: AppendOrigin,
    ) -> Result<Checked, LogError> {
        if validated.iter().all(|v| v.header.producer_id < 0) {
            // the common case of plain producers: nothing to check
            return Ok(Checked::Update(PendingUpdate::default()));
        }
        let mut infos = Vec::with_capacity(validated.len());
        for (v, b) in validated.iter().zip(placed) {
            infos.push(BatchInfo {
                header: &v.header,
                base_offset: b.last_offset - i64::from(v.header.last_offset_delta),
                bytes: &records[v.position..v.position + v.size],
            });
        }
        self.producer_state.check(&infos, origin)
    }

    /// Applies an append's producer state changes and indexes the aborted
    /// transactions its markers completed (during replay only those not
    /// indexed already).
    pub(super) fn apply_producer_update(
        &mut self,
        update: PendingUpdate,
        end_offset: i64,
        replay: bool,
    ) -> Result<(), LogError> {
        let completed = self.producer_state.apply(update, end_offset);
        for txn in completed {
            self.index_completed_txn(&txn, replay)?;
        }
        Ok(())
    }

    fn index_completed_txn(&mut self, txn: &CompletedTxn, replay: bool) -> Result<(), LogError> {
        if !txn.is_aborted
            || (replay && self.txn_indexes.contains(txn.producer_id, txn.last_offset))
        {
            return Ok(());
        }
        let segment = self
            .segments
            .range(..=txn.last_offset)
            .next_back()
            .map_or(self.active_segment().base_offset(), |(&b, _)| b);
        let entry = AbortedTxn {
            producer_id: txn.producer_id,
            first_offset: txn.first_offset,
            last_offset: txn.last_offset,
            last_stable_offset: self.producer_state.last_stable_offset_after(txn),
        };
        self.txn_indexes.append(&self.dir, segment, entry)
    }

    /// What a retried batch is answered with: its original offsets.
    pub(super) fn duplicate_append_info(d: BatchMetadata) -> LogAppendInfo {
        LogAppendInfo {
            first_offset: d.first_offset,
            last_offset: d.last_offset,
            log_append_time: -1,
            max_timestamp: d.timestamp,
            offset_of_max_timestamp: d.first_offset,
            num_records: 0,
            num_batches: 0,
            valid_bytes: 0,
        }
    }

    /// Writes a producer state snapshot at the log end (segment roll,
    /// clean shutdown).
    pub(super) fn snapshot_producer_state(&mut self) -> Result<(), LogError> {
        self.producer_state.set_end_offset(self.log_end_offset);
        self.producer_state.write_snapshot(&self.dir)
    }

    /// After a truncation: drops snapshots and aborted entries past the new
    /// end and rebuilds the state.
    pub(super) fn rebuild_producer_state_after_truncation(&mut self) -> Result<(), LogError> {
        delete_snapshots_after(&self.dir, self.log_end_offset)?;
        self.load_producer_state()
    }

    /// After the log was emptied and restarted at `offset`: no producer
    /// state survives (Kafka's `truncateFullyAndStartAt`).
    pub(super) fn reset_producer_state(&mut self, offset: i64) -> Result<(), LogError> {
        for o in list_snapshots(&self.dir)? {
            let path = snapshot_file(&self.dir, o);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&path, e)),
            }
        }
        self.producer_state = ProducerStateManager::default();
        self.producer_state.clear(offset);
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        self.txn_indexes.retain_segments(&self.dir, &bases)
    }

    /// Appends batches written by the broker itself (coordinators): like
    /// [`Log::append_as_leader`] but control batches are allowed and
    /// sequence numbers are not checked.
    pub fn append_as_coordinator(
        &mut self,
        records: &mut BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        self.append_with_origin(records, leader_epoch, now_ms, AppendOrigin::Coordinator)
    }

    /// Writes a COMMIT or ABORT marker for `producer_id` (what
    /// WriteTxnMarkers does on each partition of a transaction).
    pub fn append_txn_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        let kind = if commit {
            CONTROL_TYPE_COMMIT
        } else {
            CONTROL_TYPE_ABORT
        };
        let mut key = Vec::with_capacity(4);
        key.extend_from_slice(&0i16.to_be_bytes());
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = Vec::with_capacity(6);
        value.extend_from_slice(&0i16.to_be_bytes());
        value.extend_from_slice(&coordinator_epoch.to_be_bytes());
        let bytes = RecordBatchBuilder::new()
            .control(true)
            .transactional(true)
            .producer(producer_id, producer_epoch, -1)
            .record(Some(&key), Some(&value), now_ms)
            .try_build()
            .map_err(|e| LogError::InvalidRecord(format!("cannot build a marker: {e}")))?;
        let mut buf = BytesMut::from(&bytes[..]);
        self.append_as_coordinator(&mut buf, leader_epoch, now_ms)
    }

    /// First offset of the earliest open transaction, if any; the last
    /// stable offset is this or the high watermark, whichever is lower.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producer_state.first_unstable_offset()
    }

    /// The aborted transactions a read_committed fetch of `[start, upper)`
    /// must report.
    pub fn collect_aborted_transactions(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        self.txn_indexes.collect(start, upper)
    }

    /// The producer state (DescribeProducers, tests).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    /// Forgets producers idle for `expiration_ms` (`producer.id.expiration.ms`)
    /// and the aborted-transaction entries of segments retention removed;
    /// returns how many producers went.
    pub fn remove_expired_producers(
        &mut self,
        now_ms: i64,
        expiration_ms: i64,
    ) -> Result<usize, LogError> {
        self.check_online()?;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        self.txn_indexes.retain_segments(&self.dir, &bases)?;
        Ok(self.producer_state.remove_expired(now_ms, expiration_ms))
    }
}
