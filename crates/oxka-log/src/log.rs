//! The log of one partition: an ordered set of segments (Kafka's UnifiedLog).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::config::{LogConfig, TimestampType, TopicPartition};
use crate::epoch_cache::{assign_to, LeaderEpochCache};
use crate::error::{IoContext, LogError};
use crate::fileio::sync_dir;
use crate::producer_state::{AppendOrigin, Checked, ProducerStateManager};
use crate::record_batch::{
    recompress_batch, set_base_offset, set_max_timestamp, set_partition_leader_epoch,
    validate_batches_limited, validate_replicated_batches, RecordBatchHeader, ValidatedBatch,
    BATCH_OVERHEAD,
};
use crate::retention::{PendingDeletes, RetentionConfig};
use crate::segment::{segment_file, AppendBatch, LogSegment, LOG_SUFFIX};
use crate::txn_index::TxnIndexes;
use crate::{FetchDataInfo, FetchRegionInfo, LogAppendInfo};

mod txn_state;

/// The batches of one append: a buffer the log patches in place, or a
/// request's bytes it leaves untouched (written beside patched headers).
enum AppendRecords<'a> {
    InPlace(&'a mut BytesMut),
    Shared(&'a [u8]),
}

impl AppendRecords<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            AppendRecords::InPlace(b) => b,
            AppendRecords::Shared(b) => b,
        }
    }
}

/// How an append places its batches.
#[derive(Clone, Copy, Debug)]
enum AppendMode {
    /// The log assigns offsets from its end and stamps `leader_epoch` (and
    /// the append time): produce, coordinators, transaction markers.
    Leader {
        leader_epoch: i32,
        origin: AppendOrigin,
    },
    /// The batches are kept exactly as the leader wrote them: offsets,
    /// leader epochs, timestamps, producer fields (replication).
    Follower,
}

/// Whether a CreateTime batch's header disagrees with its records (type
/// bit or max timestamp), which the log corrects, as Kafka does.
fn needs_max_timestamp_rewrite(v: &ValidatedBatch) -> bool {
    v.header.timestamp_type() != TimestampType::CreateTime
        || v.header.max_timestamp != v.max_record_timestamp
}

/// Index positions are 32-bit, so no segment may grow past this.
const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// Leftovers of interrupted Kafka operations that are safe to drop on open.
const STRAY_SUFFIXES: [&str; 4] = [".deleted", ".cleaned", ".swap", ".tmp"];

/// One partition's log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    tp: TopicPartition,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    recovery_point: i64,
    /// When the oldest unflushed append happened; drives time-based flushing.
    unflushed_since_ms: Option<i64>,
    /// A segment file was created since the directory was last synced.
    dir_dirty: bool,
    /// Set when the on-disk state may no longer match memory; appends and
    /// reads are refused from then on.
    offline: bool,
    /// What retention may remove (see [`Log::delete_old_segments`]).
    retention: RetentionConfig,
    /// Removed segments' files waiting for `file.delete.delay.ms`.
    pending_deletes: PendingDeletes,
    /// Idempotence and transactions (see `log/txn_state.rs`).
    producer_state: ProducerStateManager,
    /// Aborted transactions, for read_committed fetches.
    txn_indexes: TxnIndexes,
    /// The start offset of every leader epoch (see `epoch_cache.rs`).
    epoch_cache: LeaderEpochCache,
}

impl Log {
    /// Opens (creating the dir if missing) `dir`, recovering segments from
    /// the one containing `recovery_point` on.
    pub fn open(
        dir: &Path,
        tp: TopicPartition,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Result<Log, LogError> {
        Self::open_with_shutdown_state(
            dir,
            tp,
            config,
            recovery_point,
            log_start_offset,
            now_ms,
            false,
        )
    }

    /// Like [`Log::open`]; `clean_shutdown` (the broker found Kafka's
    /// clean-shutdown marker) skips validating data before the end of the
    /// log, because a clean shutdown flushed everything. Segments whose
    /// index does not match their data are still recovered.
    pub fn open_with_shutdown_state(
        dir: &Path,
        tp: TopicPartition,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        now_ms: i64,
        clean_shutdown: bool,
    ) -> Result<Log, LogError> {
        fs::create_dir_all(dir).ctx(dir)?;
        // Finish (or roll back) a cleaner swap a crash interrupted, before
        // the segments are listed.
        crate::cleaner::complete_interrupted_swaps(dir)?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).ctx(dir)? {
            let entry = entry.ctx(dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if STRAY_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                tracing::info!(path = %path.display(), "removing leftover file");
                fs::remove_file(&path).ctx(&path)?;
                continue;
            }
            if let Some((stem, ext)) = name.rsplit_once('.') {
                let Ok(base) = stem.parse::<i64>() else {
                    continue;
                };
                if stem.len() != 20 || base < 0 {
                    continue;
                }
                if ext == LOG_SUFFIX {
                    bases.push(base);
                } else if (ext == "index" || ext == "timeindex")
                    && !segment_file(dir, base, LOG_SUFFIX).exists()
                {
                    tracing::info!(path = %path.display(), "removing index without a log file");
                    fs::remove_file(&path).ctx(&path)?;
                }
            }
        }
        bases.sort_unstable();

        // Recovery starts at the segment containing the recovery point.
        let recover_from = bases
            .iter()
            .copied()
            .filter(|&b| b <= recovery_point)
            .max()
            .unwrap_or(i64::MIN);
        let mut segments = BTreeMap::new();
        let mut iter = bases.into_iter();
        for base in iter.by_ref() {
            let recover = !clean_shutdown && base >= recover_from;
            let (seg, truncated) = LogSegment::open(
                dir,
                base,
                config.index_interval_bytes,
                config.max_index_size,
                now_ms,
                recover,
            )?;
            // Offsets must keep increasing across segments too.
            let overlaps = segments
                .last_key_value()
                .is_some_and(|(_, prev): (_, &LogSegment)| seg.base_offset() < prev.next_offset());
            if overlaps {
                tracing::warn!(dir = %dir.display(), base, "segment overlaps its predecessor; dropping it and later segments");
                seg.delete_files()?;
                break;
            }
            segments.insert(base, seg);
            if truncated {
                break;
            }
        }
        // A truncated segment means everything after it is not a prefix
        // of what was appended.
        for base in iter {
            tracing::warn!(dir = %dir.display(), base, "deleting segment after a truncated one");
            for suffix in [LOG_SUFFIX, "index", "timeindex"] {
                let path = segment_file(dir, base, suffix);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(LogError::io(&path, e)),
                }
            }
        }

        let mut log = Log {
            dir: dir.to_path_buf(),
            tp,
            config,
            segments,
            log_start_offset: 0,
            log_end_offset: 0,
            recovery_point: 0,
            unflushed_since_ms: None,
            dir_dirty: false,
            offline: false,
            retention: RetentionConfig::default(),
            pending_deletes: PendingDeletes::default(),
            producer_state: ProducerStateManager::default(),
            txn_indexes: TxnIndexes::default(),
            epoch_cache: LeaderEpochCache::empty(dir),
        };
        if log.segments.is_empty() {
            let base = log_start_offset.max(0);
            log.add_segment(base, now_ms)?;
        }
        log.log_end_offset = log.active_segment().next_offset();
        log.load_epoch_cache()?;
        if log_start_offset > log.log_end_offset {
            // The checkpoint says records below it were deleted; nothing we
            // hold can be served, so start afresh there (Kafka does the same).
            log.truncate_fully_and_start_at(log_start_offset, now_ms)?;
        }
        log.log_start_offset = log_start_offset.max(log.first_segment().base_offset());
        log.recovery_point = if clean_shutdown {
            log.log_end_offset
        } else {
            recovery_point.clamp(0, log.log_end_offset)
        };
        if log.dir_dirty || log.segments.values().any(LogSegment::is_dirty) {
            log.flush()?;
        }
        // The checkpoint may name epochs whose records a crash or a
        // truncation lost, or that retention removed.
        log.epoch_cache.truncate_from_end(log.log_end_offset)?;
        log.epoch_cache.truncate_from_start(log.log_start_offset)?;
        log.load_producer_state()?;
        Ok(log)
    }

    /// Reads `leader-epoch-checkpoint`, or rebuilds it from the leader
    /// epochs in the batch headers when it is missing or unreadable (a log
    /// written before the cache existed, a damaged file). Epochs below 0
    /// (batches written without one) are ignored.
    fn load_epoch_cache(&mut self) -> Result<(), LogError> {
        if let Some(cache) = LeaderEpochCache::load(&self.dir)? {
            self.epoch_cache = cache;
            return Ok(());
        }
        let mut entries = Vec::new();
        for seg in self.segments.values() {
            seg.visit_headers(|h| {
                assign_to(&mut entries, h.partition_leader_epoch, h.base_offset);
            })?;
            // loaded segments hold no descriptor (see `open_files`)
            seg.close_files();
        }
        if !entries.is_empty() {
            tracing::info!(tp = %self.tp, epochs = entries.len(), "rebuilt the leader epoch cache from the log");
        }
        self.epoch_cache = LeaderEpochCache::create(&self.dir, entries)?;
        Ok(())
    }

    fn active_segment(&self) -> &LogSegment {
        match self.segments.last_key_value() {
            Some((_, s)) => s,
            None => unreachable!("a log always has an active segment"),
        }
    }

    fn active_segment_mut(&mut self) -> &mut LogSegment {
        match self.segments.last_entry() {
            Some(s) => s.into_mut(),
            None => unreachable!("a log always has an active segment"),
        }
    }

    fn first_segment(&self) -> &LogSegment {
        match self.segments.first_key_value() {
            Some((_, s)) => s,
            None => unreachable!("a log always has an active segment"),
        }
    }

    fn add_segment(&mut self, base: i64, now_ms: i64) -> Result<(), LogError> {
        let seg = LogSegment::create(
            &self.dir,
            base,
            self.config.index_interval_bytes,
            self.config.max_index_size,
            now_ms,
        )?;
        self.segments.insert(base, seg);
        self.dir_dirty = true;
        Ok(())
    }

    /// Deletes every segment and restarts the log, empty, at `offset`
    /// (Kafka's `truncateFullyAndStartAt`): a follower whose fetch offset
    /// is below its leader's log start offset, or that must diverge before
    /// its own log start. The log start and end become `offset`; producer
    /// state and the leader epoch cache are emptied, and the new state is
    /// made durable before returning.
    pub fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        self.check_online()?;
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        let old = std::mem::take(&mut self.segments);
        for (_, seg) in old {
            seg.delete_files()?;
        }
        self.add_segment(offset, now_ms)?;
        self.log_end_offset = offset;
        self.log_start_offset = offset;
        self.recovery_point = self.recovery_point.min(offset);
        self.epoch_cache.clear()?;
        self.reset_producer_state(offset)?;
        self.flush()
    }

    /// The partition this log stores.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration; index sizing applies to segments
    /// created from now on.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// First offset that may be read.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Every offset below this is known to be on stable storage.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Number of segments.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// Total bytes of all segment data files.
    pub fn size_in_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size).sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// When the oldest unflushed data was appended, if any is unflushed.
    pub fn unflushed_since_ms(&self) -> Option<i64> {
        self.unflushed_since_ms
    }

    /// Raises the log start offset (e.g. for DeleteRecords); segments
    /// wholly below it are deleted.
    pub fn increment_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        self.check_online()?;
        if offset <= self.log_start_offset {
            return Ok(());
        }
        if offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        self.log_start_offset = offset;
        self.epoch_cache.truncate_from_start(offset)?;
        let deletable: Vec<i64> = self
            .segments
            .iter()
            .zip(self.segments.keys().skip(1))
            .filter(|(_, &next_base)| next_base <= offset)
            .map(|((&base, _), _)| base)
            .collect();
        for base in deletable {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete_files()?;
                self.dir_dirty = true;
            }
        }
        Ok(())
    }

    fn check_online(&self) -> Result<(), LogError> {
        if self.offline {
            Err(LogError::LogOffline(self.tp.to_string()))
        } else {
            Ok(())
        }
    }

    fn max_segment_bytes(&self) -> u64 {
        self.config.segment_bytes.clamp(1, MAX_SEGMENT_BYTES)
    }

    /// Validates `records` completely, re-encodes batches whose codec
    /// differs from the topic's `compression.type`, then assigns offsets,
    /// stamps the leader epoch (and append time) in place and appends them.
    /// On return `records` holds the bytes as stored. Batches with a
    /// producer id are checked against the producer state first: a retried
    /// batch gets its original offsets back and nothing is appended.
    pub fn append_as_leader(
        &mut self,
        records: &mut BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        self.append_with_origin(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    fn append_with_origin(
        &mut self,
        records: &mut BytesMut,
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<LogAppendInfo, LogError> {
        let mut validated = self.validate_for_append(records, now_ms)?;
        self.recompress(records, &mut validated)?;
        self.append_validated(
            AppendRecords::InPlace(records),
            &validated,
            AppendMode::Leader {
                leader_epoch,
                origin,
            },
            now_ms,
        )
    }

    /// [`append_as_leader`](Self::append_as_leader) without copying the
    /// records: the request's bytes are written as they arrived, beside
    /// copies of their batch headers with the offsets and leader epoch
    /// filled in (those fields are outside the CRC). A batch the log must
    /// rewrite further (a topic codec to recompress to, LogAppendTime, a
    /// max timestamp that disagrees with the records, which changes the
    /// CRC) sends the append down the copying path instead.
    pub fn append_shared_as_leader(
        &mut self,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        let mut validated = self.validate_for_append(&records, now_ms)?;
        let append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let mode = AppendMode::Leader {
            leader_epoch,
            origin: AppendOrigin::Client,
        };
        let rewrites = self.config.compression.codec().is_some()
            || append_time
            || validated.iter().any(needs_max_timestamp_rewrite);
        if rewrites {
            let mut owned = BytesMut::from(&records[..]);
            self.recompress(&mut owned, &mut validated)?;
            return self.append_validated(
                AppendRecords::InPlace(&mut owned),
                &validated,
                mode,
                now_ms,
            );
        }
        self.append_validated(AppendRecords::Shared(&records), &validated, mode, now_ms)
    }

    /// Appends batches exactly as the leader wrote them (a follower
    /// replicating its leader, Kafka's `appendAsFollower`): offsets, leader
    /// epochs, timestamps and producer ids, epochs and sequences are kept,
    /// nothing is recompressed and no timestamp, key or size policy
    /// applies; only the batches' integrity is checked (framing, CRC, see
    /// [`validate_replicated_batches`]), so batches a compacted leader
    /// rewrote are accepted. Producer state is updated without sequence
    /// checks, so the follower rebuilds idempotence and transaction state,
    /// aborted-transaction index included, and a new leader epoch in the
    /// batches is recorded in the leader epoch cache.
    ///
    /// The first batch must not start below the log end offset and each
    /// batch must start after the previous one's last offset
    /// ([`LogError::UnexpectedAppendOffset`] otherwise, and nothing is
    /// appended); a batch may start later (offsets a compacted leader
    /// removed stay a gap, as in Kafka). The log end becomes the last
    /// batch's last offset + 1. Empty `records` append nothing.
    ///
    /// The caller handles Kafka's one tolerated mismatch: a follower whose
    /// log is empty at the leader's log start offset, which lies inside the
    /// batch the fetch returned, restarts the log at that batch's base
    /// offset ([`Log::truncate_fully_and_start_at`]) and appends again.
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        self.check_online()?;
        if records.is_empty() {
            return Ok(LogAppendInfo {
                first_offset: self.log_end_offset,
                last_offset: self.log_end_offset - 1,
                log_append_time: -1,
                max_timestamp: -1,
                offset_of_max_timestamp: -1,
                num_records: 0,
                num_batches: 0,
                valid_bytes: 0,
            });
        }
        let validated = validate_replicated_batches(records)?;
        self.append_validated(
            AppendRecords::Shared(records),
            &validated,
            AppendMode::Follower,
            now_ms,
        )
    }

    /// The newest leader epoch that wrote to this log (or that a new
    /// leader assigned with [`Log::assign_epoch_start_offset`]).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epoch_cache.latest_epoch()
    }

    /// OffsetForLeaderEpoch's answer for `epoch` (KIP-101, KIP-279): the
    /// largest epoch of this log not above it and the offset where that
    /// epoch ended, the log end offset for the latest epoch. `None` means
    /// UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET; see
    /// [`LeaderEpochCache::end_offset_for`] for every case.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epoch_cache.end_offset_for(epoch, self.log_end_offset)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's
    /// `maybeAssignEpochStartOffset`): a replica becoming leader in
    /// `epoch` calls it with its log end offset, so that OffsetForLeaderEpoch
    /// answers for the new epoch before anything was written in it. An
    /// epoch not newer than the latest one changes nothing.
    pub fn assign_epoch_start_offset(
        &mut self,
        epoch: i32,
        start_offset: i64,
    ) -> Result<(), LogError> {
        self.check_online()?;
        self.epoch_cache.assign(epoch, start_offset).map(|_| ())
    }

    /// The leader epoch cache (entries, for tools and tests).
    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epoch_cache
    }

    /// Every check an append makes before touching anything: the log is
    /// online, every batch is whole and valid within `max.message.bytes`,
    /// a compacted topic's records all have keys, and create times are
    /// within the topic's bounds.
    fn validate_for_append(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<Vec<ValidatedBatch>, LogError> {
        self.check_online()?;
        let validated = validate_batches_limited(
            records,
            Some(self.config.max_message_bytes),
            self.config.max_decompressed_message_bytes,
        )?;
        if self.config.compact {
            crate::cleaner::check_keys_present(&self.tp, records, &validated)?;
        }
        if self.config.message_timestamp_type == TimestampType::CreateTime {
            self.check_timestamps(records, &validated, now_ms)?;
        }
        Ok(validated)
    }

    /// Kafka's create-time bounds: every record's timestamp (but
    /// `NO_TIMESTAMP`) within `[now - before.max.ms, now + after.max.ms]`.
    /// The batch bounds find a batch at fault; its records are then read to
    /// name every one out of range (KIP-467), with Kafka's message.
    fn check_timestamps(
        &self,
        records: &[u8],
        validated: &[ValidatedBatch],
        now_ms: i64,
    ) -> Result<(), LogError> {
        let low = now_ms.saturating_sub(self.config.message_timestamp_before_max_ms);
        let high = now_ms.saturating_add(self.config.message_timestamp_after_max_ms);
        for v in validated {
            let Some(b) = v.timestamp_bounds else {
                continue;
            };
            let bad = if b.min.0 < low {
                b.min
            } else if b.max.0 > high {
                b.max
            } else {
                continue;
            };
            let batch = &records[v.position..v.position + v.size];
            let mut record_errors = Vec::new();
            let mut index = 0i32;
            crate::record_batch::visit_records(&v.header, batch, |r| {
                let ts = r.timestamp(&v.header);
                if ts != crate::record_batch::NO_TIMESTAMP && (ts < low || ts > high) {
                    record_errors.push(crate::error::RecordError {
                        batch_index: index,
                        message: format!(
                            "Timestamp {ts} of message with offset {} is out of range. The timestamp should be within [{low}, {high}]",
                            v.header.base_offset.wrapping_add(i64::from(r.offset_delta))
                        ),
                    });
                }
                index += 1;
                Ok(())
            })?;
            return Err(LogError::InvalidTimestamp {
                timestamp: bad.0,
                offset_delta: bad.1,
                low,
                high,
                record_errors,
            });
        }
        Ok(())
    }

    /// Places validated batches (assigning offsets and stamping the leader
    /// epoch, or keeping the leader's, see [`AppendMode`]), checks them
    /// against the producer state, records new leader epochs and writes
    /// them to the active segment. Leader and follower appends share this
    /// one path: rolling, indexes, producer state, the aborted-transaction
    /// index and flushing work the same for both.
    fn append_validated(
        &mut self,
        mut records: AppendRecords<'_>,
        validated: &[ValidatedBatch],
        mode: AppendMode,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        let total = records.bytes().len();
        if total as u64 > self.max_segment_bytes() {
            return Err(LogError::RecordListTooLarge {
                size: total,
                max: self.max_segment_bytes(),
            });
        }

        let (stamp_epoch, origin) = match mode {
            AppendMode::Leader {
                leader_epoch,
                origin,
            } => (Some(leader_epoch), origin),
            AppendMode::Follower => (None, AppendOrigin::Replication),
        };
        let first_offset = match (stamp_epoch, validated.first()) {
            (None, Some(v)) => v.header.base_offset,
            _ => self.log_end_offset,
        };
        let append_time = stamp_epoch.is_some()
            && self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let mut next = self.log_end_offset;
        let mut max_timestamp = -1i64;
        let mut offset_of_max_timestamp = first_offset;
        let mut num_records = 0u64;
        let mut batches = Vec::with_capacity(validated.len());
        let mut headers: Vec<[u8; BATCH_OVERHEAD]> = Vec::new();
        // Epochs this append starts (at most one for a leader's append).
        let mut latest_epoch = self.epoch_cache.latest_epoch().unwrap_or(-1);
        let mut new_epochs: Vec<(i32, i64)> = Vec::new();
        for (i, v) in validated.iter().enumerate() {
            let base = match stamp_epoch {
                Some(_) => next,
                // A follower's batches continue the log: never below its
                // end or overlapping each other, but gaps (batches a
                // compacted leader removed) are kept, as Kafka does.
                None if v.header.base_offset < next => {
                    return Err(LogError::UnexpectedAppendOffset {
                        expected: next,
                        got: v.header.base_offset,
                    })
                }
                None => v.header.base_offset,
            };
            let last = base + i64::from(v.header.last_offset_delta);
            let batch_epoch = stamp_epoch.unwrap_or(v.header.partition_leader_epoch);
            if batch_epoch > latest_epoch {
                latest_epoch = batch_epoch;
                new_epochs.push((batch_epoch, base));
            }
            let batch_max = if append_time {
                if i == 0 {
                    max_timestamp = now_ms;
                    offset_of_max_timestamp = first_offset;
                }
                now_ms
            } else {
                if i == 0 || v.max_record_timestamp > max_timestamp {
                    max_timestamp = v.max_record_timestamp;
                    offset_of_max_timestamp = base + i64::from(v.offset_delta_of_max_timestamp);
                }
                v.max_record_timestamp
            };
            if let Some(leader_epoch) = stamp_epoch {
                match &mut records {
                    AppendRecords::InPlace(buf) => {
                        let batch = &mut buf[v.position..v.position + v.size];
                        set_base_offset(batch, base);
                        set_partition_leader_epoch(batch, leader_epoch);
                        if append_time {
                            set_max_timestamp(batch, TimestampType::LogAppendTime, now_ms);
                        } else if needs_max_timestamp_rewrite(v) {
                            // Kafka rewrites a producer's max timestamp (and
                            // type bit) when they disagree with the records,
                            // keeping the time index truthful.
                            set_max_timestamp(
                                batch,
                                TimestampType::CreateTime,
                                v.max_record_timestamp,
                            );
                        }
                    }
                    AppendRecords::Shared(buf) => {
                        debug_assert!(!append_time && !needs_max_timestamp_rewrite(v));
                        let mut header = [0u8; BATCH_OVERHEAD];
                        header.copy_from_slice(&buf[v.position..v.position + BATCH_OVERHEAD]);
                        set_base_offset(&mut header, base);
                        set_partition_leader_epoch(&mut header, leader_epoch);
                        headers.push(header);
                    }
                }
            }
            num_records += v.header.records_count.max(0) as u64;
            batches.push(AppendBatch {
                size: v.size,
                last_offset: last,
                max_timestamp: batch_max,
            });
            next = last + 1;
        }
        let last_offset = next - 1;
        let max_ts_in_messages = batches.iter().map(|b| b.max_timestamp).max().unwrap_or(-1);
        let producer_update =
            match self.check_producer_state(records.bytes(), validated, &batches, origin)? {
                Checked::Duplicate(d) => return Ok(Self::duplicate_append_info(d)),
                Checked::Update(u) => u,
            };

        self.maybe_roll(total as u64, max_ts_in_messages, last_offset, now_ms)?;
        // Recorded before the write, as Kafka does: an entry for records a
        // failed write or a crash lost is removed again (below, or when the
        // log is opened and trims the cache to its end), while an entry
        // missing for records on disk could not be recovered.
        for &(epoch, start) in &new_epochs {
            self.epoch_cache.assign(epoch, start)?;
        }
        let written = if headers.is_empty() {
            self.active_segment_mut().append(records.bytes(), &batches)
        } else {
            let buf = records.bytes();
            let mut pieces: Vec<&[u8]> = Vec::with_capacity(2 * validated.len());
            for (v, header) in validated.iter().zip(&headers) {
                pieces.push(header);
                pieces.push(&buf[v.position + BATCH_OVERHEAD..v.position + v.size]);
            }
            self.active_segment_mut().append_vectored(&pieces, &batches)
        };
        if let Err(e) = written {
            if !new_epochs.is_empty() {
                if let Err(undo) = self.epoch_cache.truncate_from_end(self.log_end_offset) {
                    tracing::warn!(tp = %self.tp, error = %undo, "cannot remove the leader epoch of a failed append");
                }
            }
            match e {
                // Undone cleanly (a full disk): the log is as it was, keeps
                // serving reads and takes writes again once there is space.
                e @ LogError::WriteFailed { .. } => return Err(e),
                e => {
                    // Memory and disk may now disagree (Kafka takes the whole
                    // log dir offline on an I/O error); refuse further use.
                    tracing::error!(tp = %self.tp, error = %e, "append failed; taking the log offline");
                    self.offline = true;
                    return Err(e);
                }
            }
        }
        self.log_end_offset = next;
        self.apply_producer_update(producer_update, next, false)?;
        self.unflushed_since_ms.get_or_insert(now_ms);
        let unflushed = (self.log_end_offset - self.recovery_point) as u64;
        if unflushed >= self.config.flush_interval_messages {
            self.flush()?;
        }
        Ok(LogAppendInfo {
            first_offset,
            last_offset,
            log_append_time: if append_time { now_ms } else { -1 },
            max_timestamp,
            offset_of_max_timestamp,
            num_records,
            num_batches: validated.len(),
            valid_bytes: total,
        })
    }

    /// Kafka's LogValidator: when the topic names a codec, batches in any
    /// other codec are rebuilt in it. Everything is re-encoded before
    /// anything is written, and the new sizes are checked against
    /// `max.message.bytes` again (compression may make a batch grow), so a
    /// failure leaves the log untouched.
    fn recompress(
        &self,
        records: &mut BytesMut,
        validated: &mut [ValidatedBatch],
    ) -> Result<(), LogError> {
        let target = self.config.compression;
        if target.codec().is_none() {
            return Ok(());
        }
        let mut rebuilt = Vec::with_capacity(validated.len());
        for v in validated.iter() {
            let batch = &records[v.position..v.position + v.size];
            rebuilt.push(recompress_batch(batch, target)?);
        }
        if rebuilt.iter().all(Option::is_none) {
            return Ok(());
        }
        let max = self.config.max_message_bytes;
        let new_len: usize = validated
            .iter()
            .zip(&rebuilt)
            .map(|(v, r)| r.as_ref().map_or(v.size, Vec::len))
            .sum();
        let mut out = BytesMut::with_capacity(new_len);
        for (v, r) in validated.iter_mut().zip(rebuilt) {
            let position = out.len();
            match r {
                Some(new) => {
                    if new.len() > max as usize {
                        return Err(LogError::MessageTooLarge {
                            size: new.len(),
                            max,
                        });
                    }
                    v.header = RecordBatchHeader::parse(&new)?;
                    out.extend_from_slice(&new);
                }
                None => out.extend_from_slice(&records[v.position..v.position + v.size]),
            }
            v.size = out.len() - position;
            v.position = position;
        }
        *records = out;
        Ok(())
    }

    fn maybe_roll(
        &mut self,
        messages_size: u64,
        max_timestamp_in_messages: i64,
        max_offset_in_messages: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let max_bytes = self.max_segment_bytes();
        let seg = self.active_segment();
        if seg.size() == 0 {
            return Ok(());
        }
        let by_size = seg.size() + messages_size > max_bytes;
        let by_time =
            seg.time_waited_for_roll(now_ms, max_timestamp_in_messages) > self.config.segment_ms;
        let by_index = seg.index_full();
        let by_offset = max_offset_in_messages - seg.base_offset() > i64::from(i32::MAX);
        if by_size || by_time || by_index || by_offset {
            tracing::debug!(
                tp = %self.tp, by_size, by_time, by_index, by_offset,
                new_base = self.log_end_offset, "rolling segment"
            );
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end. The
    /// sealed segment is flushed right away, as Kafka does shortly after a
    /// roll, so the recovery point advances and a crash only has to
    /// recover the active segment.
    fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        let new_base = self.log_end_offset;
        let sealed = self.active_segment().base_offset();
        self.active_segment_mut().seal_time_index()?;
        self.add_segment(new_base, now_ms)?;
        // Kafka snapshots producer state at every roll, so recovery only
        // replays the active segment.
        self.snapshot_producer_state()?;
        for seg in self.segments.values_mut() {
            if seg.base_offset() < new_base {
                seg.flush()?;
            }
        }
        if let Some(seg) = self.segments.get(&sealed) {
            seg.close_files();
        }
        sync_dir(&self.dir).ctx(&self.dir)?;
        self.dir_dirty = false;
        if self.recovery_point < new_base {
            self.recovery_point = new_base;
        }
        Ok(())
    }

    /// Forces a roll (e.g. for tests and tools).
    pub fn roll_now(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.check_online()?;
        if self.active_segment().size() > 0 {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Reads whole batches from the batch containing `start_offset` into
    /// memory (what [`Log::read_region`] finds, copied).
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<FetchDataInfo, LogError> {
        let info = self.read_region(start_offset, max_bytes, max_offset, min_one_message)?;
        let records = match &info.records {
            Some(region) => region.to_bytes().map_err(|e| LogError::io(&self.dir, e))?,
            None => Bytes::new(),
        };
        Ok(FetchDataInfo {
            records,
            first_batch_offset: info.first_batch_offset,
        })
    }

    /// Finds whole batches from the batch containing `start_offset`, at
    /// most `max_bytes` of them (but the first whole when
    /// `min_one_message`), none at or past `max_offset`, and returns where
    /// they lie in one segment file instead of their bytes: a fetch sends
    /// them from the page cache without copying them (see
    /// [`crate::FileRegion`] for why the region stays valid after the
    /// log's lock is released).
    pub fn read_region(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<FetchRegionInfo, LogError> {
        self.check_online()?;
        if start_offset < self.log_start_offset || start_offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: start_offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        let empty = FetchRegionInfo {
            records: None,
            first_batch_offset: None,
        };
        if start_offset == self.log_end_offset || start_offset >= max_offset {
            return Ok(empty);
        }
        let from = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(&b, _)| b);
        for seg in self.segments.range(from..).map(|(_, s)| s) {
            if seg.base_offset() >= max_offset {
                break;
            }
            if let Some(info) =
                seg.read_region(start_offset, max_bytes, max_offset, min_one_message)?
            {
                return Ok(info);
            }
        }
        Ok(empty)
    }

    /// The first record (offset, timestamp) with timestamp >= `ts`.
    pub fn fetch_offset_by_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        self.check_online()?;
        for seg in self.segments.values() {
            if seg.size() == 0
                || seg.max_timestamp_so_far() < ts
                || seg.next_offset() <= self.log_start_offset
            {
                continue;
            }
            if let Some(found) = seg.find_offset_by_timestamp(ts, self.log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets v0's answer (Kafka's `legacyFetchOffsetsBefore`): up to
    /// `max_num_offsets` segment start offsets, newest first. The candidates
    /// are every segment's base offset (not below the log start), stamped
    /// with the segment file's modification time, plus the log end offset
    /// stamped `now_ms` when the active segment holds data. Latest (-1)
    /// starts from the last candidate, earliest (-2) from the first, a
    /// timestamp from the newest candidate stamped at or before it. Clients
    /// of that era read segment boundaries this way; the granularity is
    /// whole segments by design.
    pub fn legacy_offsets_before(
        &self,
        timestamp: i64,
        max_num_offsets: i32,
        now_ms: i64,
    ) -> Result<Vec<i64>, LogError> {
        self.check_online()?;
        let mut candidates: Vec<(i64, i64)> = self
            .segments
            .values()
            .map(|seg| {
                (
                    seg.base_offset().max(self.log_start_offset),
                    seg.last_modified_ms(),
                )
            })
            .collect();
        if self
            .segments
            .values()
            .next_back()
            .is_some_and(|s| s.size() > 0)
        {
            candidates.push((self.log_end_offset(), now_ms));
        }
        let start = match timestamp {
            -1 => candidates.len().checked_sub(1),
            -2 => (!candidates.is_empty()).then_some(0),
            ts => candidates.iter().rposition(|(_, modified)| *modified <= ts),
        };
        let Some(start) = start else {
            return Ok(Vec::new());
        };
        let take = usize::try_from(max_num_offsets).unwrap_or(0).min(start + 1);
        let mut out: Vec<i64> = candidates[..=start]
            .iter()
            .rev()
            .take(take)
            .map(|(o, _)| *o)
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// KIP-734: the (offset, timestamp) of the first record carrying the
    /// largest timestamp.
    pub fn max_timestamp_and_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        self.check_online()?;
        let mut best: Option<&LogSegment> = None;
        for seg in self.segments.values() {
            if seg.size() == 0 || seg.next_offset() <= self.log_start_offset {
                continue;
            }
            if best.is_none_or(|b| seg.max_timestamp_so_far() > b.max_timestamp_so_far()) {
                best = Some(seg);
            }
        }
        let Some(seg) = best else { return Ok(None) };
        let first_base = self.first_segment().base_offset();
        if seg.base_offset() != first_base || self.log_start_offset == first_base {
            if let Some(found) =
                seg.find_offset_by_timestamp(seg.max_timestamp_so_far(), self.log_start_offset)?
            {
                return Ok(Some(found));
            }
        }
        // The maximum lies below the log start offset: scan exactly.
        let mut best: Option<(i64, i64)> = None;
        for seg in self.segments.values() {
            if seg.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some((o, t)) = seg.scan_max_timestamp(self.log_start_offset)? {
                if best.is_none_or(|(_, bt)| t > bt) {
                    best = Some((o, t));
                }
            }
        }
        Ok(best)
    }

    /// Makes every appended byte durable and advances the recovery point.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.check_online()?;
        let started = std::time::Instant::now();
        // Only segments with unsynced writes do any I/O here.
        for seg in self.segments.values_mut() {
            seg.flush()?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir).ctx(&self.dir)?;
            self.dir_dirty = false;
        }
        self.recovery_point = self.log_end_offset;
        self.unflushed_since_ms = None;
        crate::latency::LOG_FLUSH_TIME.observe(started.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    }

    /// Flushes if data has been unflushed for `flush_interval_ms`; returns
    /// whether it flushed.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        match self.unflushed_since_ms {
            Some(since) if now_ms.saturating_sub(since) as u64 >= self.config.flush_interval_ms => {
                self.flush()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes every batch containing an offset >= `offset` (a follower
    /// diverging from its leader; the batch containing `offset` goes
    /// whole, so the log end may end up below `offset`). Leader epochs
    /// starting at or after the new log end are forgotten, and producer
    /// state is rebuilt as it was at the new log end. At or below the log
    /// start offset the log is emptied and restarts at `offset`
    /// ([`Log::truncate_fully_and_start_at`]).
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        self.check_online()?;
        if offset >= self.log_end_offset {
            // Nothing to cut, but the epoch cache may end with an entry at
            // the log end: this replica led briefly and wrote nothing. Left
            // there, its next fetch names that epoch again and the leader
            // answers the same divergence forever (Kafka's truncateTo trims
            // the cache on this path too, KIP-279).
            return self.epoch_cache.truncate_from_end(self.log_end_offset);
        }
        if offset <= self.log_start_offset {
            return self.truncate_fully_and_start_at(offset.max(0), 0);
        }
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(&b, _)| b).collect();
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete_files()?;
                self.dir_dirty = true;
            }
        }
        let seg = self.active_segment_mut();
        seg.truncate_to(offset)?;
        self.log_end_offset = self.active_segment().next_offset();
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        self.flush()?;
        self.epoch_cache.truncate_from_end(self.log_end_offset)?;
        self.rebuild_producer_state_after_truncation()
    }

    /// Flushes everything and seals the indexes.
    pub fn close(mut self) -> Result<(), LogError> {
        if self.offline {
            return Ok(());
        }
        self.flush_for_shutdown().map(|_| ())
    }

    /// What [`Log::close`] does, for logs shared behind a lock.
    ///
    /// Returns false when the records are synced but an index entry, a
    /// recovery point or the producer snapshot could not be written (a
    /// full disk): nothing is lost, but the next start must recover the
    /// log rather than trust those files. An error means records may not
    /// have reached the disk.
    pub fn flush_for_shutdown(&mut self) -> Result<bool, LogError> {
        self.check_online()?;
        for seg in self.segments.values().filter(|s| s.is_dirty()) {
            seg.sync_data()?;
        }
        let complete = self
            .active_segment_mut()
            .seal_time_index()
            .and_then(|()| self.flush())
            .and_then(|()| self.snapshot_producer_state());
        if let Err(e) = &complete {
            tracing::error!(tp = %self.tp, error = %e, "records synced, but not their indexes or producer snapshot: the next start recovers this log");
        }
        Ok(complete.is_ok())
    }

    /// Whether an earlier I/O error or a deletion took the log offline.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Removes the log directory and everything in it.
    pub fn delete(mut self) -> Result<(), LogError> {
        self.delete_in_place()
    }

    /// Deletes the files and marks the log offline, for callers that only
    /// hold the log behind a shared lock.
    pub fn delete_in_place(&mut self) -> Result<(), LogError> {
        // Segments stay so the log keeps its invariants for stale handles;
        // every operation on an offline log is refused anyway.
        self.offline = true;
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LogError::io(&self.dir, e)),
        }
    }

    /// The segments by base offset, the active one last (for the cleaner).
    pub(crate) fn segments(&self) -> &BTreeMap<i64, LogSegment> {
        &self.segments
    }

    /// Mutable segments, for the cleaner's swap, which keeps offsets and
    /// the log end unchanged.
    pub(crate) fn segments_mut(&mut self) -> &mut BTreeMap<i64, LogSegment> {
        &mut self.segments
    }

    /// Refuses further use after a failure that left disk and memory
    /// disagreeing; recovery on the next start sorts the files out.
    pub(crate) fn mark_offline(&mut self) {
        self.offline = true;
    }

    /// Renames the directory (the first step of Kafka's asynchronous delete)
    /// and marks the log offline so nobody appends to a doomed log.
    pub(crate) fn rename_dir_for_delete(&mut self, new_dir: &Path) -> Result<(), LogError> {
        fs::rename(&self.dir, new_dir).ctx(&self.dir)?;
        self.dir = new_dir.to_path_buf();
        for seg in self.segments.values_mut() {
            seg.relocate(new_dir);
        }
        self.epoch_cache.relocate(new_dir);
        self.offline = true;
        if let Some(parent) = new_dir.parent() {
            sync_dir(parent).ctx(parent)?;
        }
        Ok(())
    }
}

/// Retention (Kafka's `UnifiedLog.deleteOldSegments`): whole segments go from
/// the oldest end and the log start offset follows. Readers never see a
/// half-deleted segment: a read picks its batches while holding the log's
/// lock, which deletion needs too, and the [`crate::FileRegion`] it returns
/// keeps the file open (an unlinked file stays readable), so the bytes are
/// still there when the broker sends them; a read below the new log start
/// offset gets [`LogError::OffsetOutOfRange`].
impl Log {
    /// Replaces the retention settings; the next pass applies them.
    pub fn set_retention_config(&mut self, retention: RetentionConfig) {
        self.retention = retention;
    }

    /// Current retention settings.
    pub fn retention_config(&self) -> &RetentionConfig {
        &self.retention
    }

    /// Removes segments wholly below the log start offset and, when
    /// `cleanup.policy` includes `delete`, the oldest segments past
    /// `retention.bytes` and then those past `retention.ms`, as Kafka does.
    /// Only segments below `high_watermark` are candidates, so the log
    /// start offset never passes what consumers may read. When every
    /// segment is past retention the log rolls first (Kafka's behaviour) so
    /// an empty active segment stays at the log end. Returns the number of
    /// segments removed. An I/O error takes the log offline.
    pub fn delete_old_segments(
        &mut self,
        now_ms: i64,
        high_watermark: i64,
    ) -> Result<usize, LogError> {
        self.check_online()?;
        let start = self.log_start_offset;
        let mut deleted = self.delete_segments_while(now_ms, high_watermark, |_, next| {
            next.is_some_and(|n| n.base_offset() <= start)
        })?;
        if !self.config.delete {
            return Ok(deleted);
        }
        let limit = self.retention.retention_bytes;
        let size = i64::try_from(self.size_in_bytes()).unwrap_or(i64::MAX);
        if limit >= 0 && size >= limit {
            let mut excess = size - limit;
            deleted += self.delete_segments_while(now_ms, high_watermark, |seg, _| {
                let s = i64::try_from(seg.size()).unwrap_or(i64::MAX);
                if excess >= s {
                    excess -= s;
                    true
                } else {
                    false
                }
            })?;
        }
        let max_age = self.retention.retention_ms;
        if max_age >= 0 {
            deleted += self.delete_segments_while(now_ms, high_watermark, |seg, _| {
                now_ms.saturating_sub(seg.largest_timestamp()) > max_age
            })?;
        }
        Ok(deleted)
    }

    /// Unlinks the `.deleted` files of removed segments whose
    /// `file.delete.delay.ms` has passed; returns how many went.
    pub fn delete_expired_files(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let mut removed = 0;
        let mut first_err = None;
        for path in self.pending_deletes.take_due(now_ms) {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Left for startup, which removes every `.deleted` file.
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove deleted segment file");
                    first_err.get_or_insert(LogError::io(&path, e));
                }
            }
        }
        first_err.map_or(Ok(removed), Err)
    }

    /// Files of removed segments still waiting for their delete delay.
    pub fn pending_file_deletes(&self) -> usize {
        self.pending_deletes.len()
    }

    /// The earliest wall-clock time at which a retention pass may have
    /// something to do that it has not now: the oldest closed segment
    /// passing `retention.ms`, `retention.bytes` already exceeded, or a
    /// delayed file falling due. `None` when only new appends can change
    /// that. Lets the broker run a pass when it is due rather than waiting
    /// for the next `log.retention.check.interval.ms` sweep.
    pub fn next_retention_check_ms(&self) -> Option<i64> {
        let mut due = self.pending_deletes.next_due();
        if self.offline || self.segments.len() < 2 {
            return due;
        }
        let mut earliest = |t: i64| due = Some(due.map_or(t, |d| d.min(t)));
        let first = self.first_segment();
        let second_base = self
            .segments
            .keys()
            .nth(1)
            .copied()
            .unwrap_or(self.log_end_offset);
        if second_base <= self.log_start_offset {
            earliest(0);
        }
        if self.config.delete {
            let limit = self.retention.retention_bytes;
            let size = i64::try_from(self.size_in_bytes()).unwrap_or(i64::MAX);
            let first_size = i64::try_from(first.size()).unwrap_or(i64::MAX);
            if limit >= 0 && size.saturating_sub(limit) >= first_size {
                earliest(0);
            }
            if self.retention.retention_ms >= 0 {
                earliest(
                    first
                        .largest_timestamp()
                        .saturating_add(self.retention.retention_ms)
                        .saturating_add(1),
                );
            }
        }
        due
    }

    /// Removes the oldest segments while `pred(segment, next_segment)` holds
    /// (Kafka's `deletableSegments` + `deleteSegments`).
    fn delete_segments_while(
        &mut self,
        now_ms: i64,
        high_watermark: i64,
        mut pred: impl FnMut(&LogSegment, Option<&LogSegment>) -> bool,
    ) -> Result<usize, LogError> {
        let mut doomed = Vec::new();
        let mut iter = self.segments.values().peekable();
        while let Some(seg) = iter.next() {
            let next = iter.peek().copied();
            let upper = next.map_or(self.log_end_offset, LogSegment::base_offset);
            let last_and_empty = next.is_none() && seg.size() == 0;
            if high_watermark >= upper && !last_and_empty && pred(seg, next) {
                doomed.push(seg.base_offset());
            } else {
                break;
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.remove_segments(&doomed, now_ms) {
            tracing::error!(tp = %self.tp, error = %e, "deleting old segments failed; taking the log offline");
            self.offline = true;
            return Err(e);
        }
        tracing::info!(
            tp = %self.tp,
            segments = doomed.len(),
            log_start_offset = self.log_start_offset,
            "deleted old log segments"
        );
        Ok(doomed.len())
    }

    fn remove_segments(&mut self, bases: &[i64], now_ms: i64) -> Result<(), LogError> {
        // A log always has a segment: if all go, a new active one starts at
        // the log end first.
        if bases.len() >= self.segments.len() {
            self.roll(now_ms)?;
        }
        let delay = self.retention.file_delete_delay_ms;
        for base in bases {
            let Some(seg) = self.segments.remove(base) else {
                continue;
            };
            if delay <= 0 {
                seg.delete_files()?;
            } else {
                let due = now_ms.saturating_add(delay);
                for path in seg.rename_to_deleted()? {
                    self.pending_deletes.push(due, path);
                }
            }
        }
        self.log_start_offset = self
            .log_start_offset
            .max(self.first_segment().base_offset());
        self.epoch_cache
            .truncate_from_start(self.log_start_offset)?;
        sync_dir(&self.dir).ctx(&self.dir)?;
        Ok(())
    }
}
