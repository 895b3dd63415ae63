//! Log compaction (Kafka's `LogCleaner`).
//!
//! For logs whose `cleanup.policy` contains `compact`, the cleaner keeps the
//! latest record of every key in the cleanable part of the log: from the log
//! start up to the active segment (never touching it), and only through
//! segments older than `min.compaction.lag.ms`.
//!
//! One cleaning of a log works as Kafka's does:
//!
//! 1. Under the log's lock, copy the list of sealed segments (paths, sizes,
//!    offsets). Nothing else happens under the lock until the swap, so
//!    produce and fetch are not held up by the cleaner's bulk I/O.
//! 2. Scan the dirty segments (from the first dirty offset on) into an
//!    [`OffsetMap`], key -> latest offset. The map has a fixed memory budget
//!    (`log.cleaner.dedupe.buffer.size`); when it fills, this pass stops
//!    there and the rest is left for the next pass.
//! 3. Rewrite the segments from the log start up to where the map stopped,
//!    in groups that fit in one segment, into `<base>.log.cleaned` files
//!    (plus indexes): a record is kept unless a later offset of its key is in
//!    the map, it has no key, or it is a tombstone whose delete horizon
//!    passed. Kept records keep their offsets; a batch keeps its base offset,
//!    last offset delta and producer fields, so offsets never change (gaps
//!    appear instead).
//! 4. Under the lock again, check that the group's segments are still the
//!    ones that were cleaned (retention or DeleteRecords may have removed
//!    them meanwhile), then swap: rename `.cleaned` to `.swap` and sync the
//!    directory (the commit point), rename the old segments to `.deleted`,
//!    rename `.swap` to the final names. The old files are unlinked after
//!    the lock is released.
//!
//! A crash at any point leaves either the old or the new segment set:
//! [`complete_interrupted_swaps`], run when a log is opened, deletes
//! `.cleaned` files (the swap had not committed) and completes swaps whose
//! `.log.swap` exists (deleting the segments it replaces). So that recovery
//! knows exactly which segments a swap replaces, a cleaned group always ends
//! with the group's last offset: when the last batch is cleaned away, an
//! empty batch header (what Kafka keeps for producer state) stays in its
//! place.
//!
//! Tombstones follow KIP-534: the first cleaning that keeps a batch holding
//! a tombstone writes `now + delete.retention.ms` into the batch as its
//! delete horizon (attribute bit 6, base timestamp); a cleaning after the
//! horizon drops the tombstone. Consumers thus get `delete.retention.ms` to
//! see a delete after it was first compacted, and the horizon survives
//! restarts because it lives in the data.

use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use crate::config::{BrokerCompression, LogConfig, TopicPartition};
use crate::error::{IoContext, LogError, RecordError};
use crate::fileio::sync_dir;
use crate::log::Log;
use crate::manager::LogManager;
use crate::record_batch::{
    check_batch_integrity, compress, decompress, read_varint, read_varlong, visit_record_meta,
    visit_records, write_varint, write_varlong, Compression, RecordBatchHeader, ValidatedBatch,
    ATTRIBUTES_OFFSET, BATCH_LENGTH_OFFSET, BATCH_OVERHEAD, COMPRESSION_CODEC_MASK,
    CONTROL_FLAG_MASK, CRC_OFFSET, DELETE_HORIZON_FLAG_MASK, FIRST_TIMESTAMP_OFFSET, LOG_OVERHEAD,
    MAGIC_V2, MAX_DECOMPRESSED_BYTES, MAX_TIMESTAMP_OFFSET, RECORDS_COUNT_OFFSET, RECORDS_OFFSET,
    TIMESTAMP_TYPE_MASK, TRANSACTIONAL_FLAG_MASK,
};
use crate::segment::{segment_file, with_suffix, LogSegment, LOG_SUFFIX};
use crate::txn_index::AbortedTxn;
use crate::TimestampType;

/// Suffix of a cleaned segment that is not yet committed (Kafka's).
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment whose swap is committed (Kafka's).
pub const SWAP_SUFFIX: &str = ".swap";
/// Suffix of a replaced segment waiting to be unlinked (Kafka's); such
/// files are removed when the log is opened.
const DELETED_SUFFIX: &str = ".deleted";

/// Index positions are 32-bit, so no cleaned segment may grow past this.
const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// Errors of the cleaner.
#[derive(thiserror::Error, Debug)]
pub enum CleanerError {
    /// Reading or writing the log failed, or its data is corrupt.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The offset map cannot hold even the first batch to clean; raise
    /// `log.cleaner.dedupe.buffer.size`.
    #[error("offset map of {capacity} entries cannot hold a batch of {records} records at offset {offset}")]
    OffsetMapTooSmall {
        /// Entries the map can hold.
        capacity: usize,
        /// Records in the batch that did not fit.
        records: usize,
        /// Base offset of that batch.
        offset: i64,
    },
    /// Shutdown was requested; the pass stopped and left the log as it was.
    #[error("cleaning aborted by shutdown")]
    Aborted,
    /// A test asked the cleaner to stop at this point as if the process had
    /// died; files are left exactly as a crash there would leave them.
    #[error("simulated crash at {0:?}")]
    SimulatedCrash(CrashPoint),
}

/// Points at which a test can make the cleaner stop as if the process died
/// (see [`Cleaner::crash_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The first group's `.cleaned` files are written and synced.
    AfterCleanedWritten,
    /// The first group's files were renamed to `.swap` and the dir synced.
    AfterSwapCommitted,
    /// The first of the replaced segments was renamed to `.deleted`.
    AfterFirstOldSegmentDeleted,
    /// Every replaced segment was renamed to `.deleted`, the `.swap` files
    /// not yet renamed.
    AfterOldSegmentsDeleted,
    /// The swap's index files were renamed to their final names, the data
    /// file not yet.
    AfterIndexesRenamed,
}

/// Settings of the cleaner, Kafka's `log.cleaner.*` broker configs.
#[derive(Clone, Debug)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: memory for the offset map.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.load.factor`: how full the map may get.
    pub dedupe_buffer_load_factor: f64,
    /// `log.cleaner.io.buffer.size`: bytes written to a cleaned segment at a time.
    pub io_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`: read plus write rate limit.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: sleep when no log needs cleaning.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_size: 128 * 1024 * 1024,
            dedupe_buffer_load_factor: 0.9,
            io_buffer_size: 512 * 1024,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

// ---------------------------------------------------------------------------
// Append-side validation

/// At most this many records are named in one refusal (KIP-467's
/// `record_errors`); the batch is refused whole either way.
const MAX_RECORD_ERRORS: usize = 1000;

/// Kafka refuses records without a key in compacted topics (INVALID_RECORD):
/// the cleaner could never deduplicate them. Control batches carry their own
/// keys and are not checked. As Kafka's LogValidator, the keyless records
/// of the first batch that has any are named (KIP-467), in record order, up
/// to `MAX_RECORD_ERRORS`.
pub(crate) fn check_keys_present(
    tp: &TopicPartition,
    records: &[u8],
    validated: &[ValidatedBatch],
) -> Result<(), LogError> {
    for v in validated {
        if v.header.is_control() {
            continue;
        }
        let batch = &records[v.position..v.position + v.size];
        let mut errors = Vec::new();
        let mut index = 0i32;
        let message =
            format!("Compacted topic cannot accept message without key in topic partition {tp}");
        visit_record_meta(&v.header, batch, u32::MAX, |r| {
            // bounded: a compressed batch can hold tens of millions of
            // keyless records; the first ones name the fault well enough
            if r.key_is_null && errors.len() < MAX_RECORD_ERRORS {
                errors.push(RecordError {
                    batch_index: index,
                    message: message.clone(),
                });
            }
            index += 1;
            Ok(())
        })?;
        if !errors.is_empty() {
            return Err(LogError::InvalidRecords(errors));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Offset map

/// A 128-bit digest of a key; the map stores digests, not keys, so its
/// memory per entry is fixed (Kafka stores MD5 digests for the same reason).
/// Two independent 64-bit SipHashes make collisions negligible.
#[derive(Clone, Copy, PartialEq, Eq)]
struct KeyDigest(u64, u64);

impl Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

fn digest(key: &[u8]) -> KeyDigest {
    // DefaultHasher::new() has fixed keys, so digests are stable within a
    // run, which is all the map needs.
    let mut a = std::hash::DefaultHasher::new();
    a.write_u8(0xa5);
    a.write(key);
    let mut b = std::hash::DefaultHasher::new();
    b.write_u8(0x5a);
    b.write(key);
    KeyDigest(a.finish(), b.finish())
}

/// The digest is already uniformly distributed; hashing it again is waste.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Clone, Copy, Default)]
struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher::default()
    }
}

/// Key -> latest offset, within a fixed memory budget (Kafka's
/// `SkimpyOffsetMap`).
pub struct OffsetMap {
    map: HashMap<KeyDigest, i64, PassThrough>,
    max_entries: usize,
}

impl std::fmt::Debug for OffsetMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetMap")
            .field("len", &self.map.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

impl OffsetMap {
    /// Bytes a table slot takes: digest, offset and the table's control byte.
    const SLOT_BYTES: u64 = 16 + 8 + 1;

    /// A map that never uses more than `memory` bytes for its table. The
    /// table has a power-of-two number of slots, at most 7/8 of which
    /// (and at most `load_factor` of which) are used, so the table never
    /// grows past the budget.
    pub fn with_memory(memory: u64, load_factor: f64) -> OffsetMap {
        let max_slots = (memory / Self::SLOT_BYTES).max(1);
        // Largest power of two that fits.
        let slots = 1u64 << (63 - max_slots.leading_zeros());
        let by_table = slots / 8 * 7;
        let load = if load_factor.is_finite() {
            load_factor.clamp(0.01, 1.0)
        } else {
            0.9
        };
        let by_load = (slots as f64 * load) as u64;
        let max_entries = usize::try_from(by_table.min(by_load).max(1)).unwrap_or(usize::MAX);
        OffsetMap {
            map: HashMap::with_hasher(PassThrough),
            max_entries,
        }
    }

    /// Entries the map can hold.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records `offset` as the latest of `key`. Returns false (and changes
    /// nothing) when the key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let d = digest(key);
        if let Some(slot) = self.map.get_mut(&d) {
            *slot = (*slot).max(offset);
            return true;
        }
        if self.map.len() >= self.max_entries {
            return false;
        }
        if self.map.capacity() == 0 {
            // Allocated once, at the full budget, and reused by later passes.
            self.map.reserve(self.max_entries);
        }
        self.map.insert(d, offset);
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&digest(key)).copied()
    }

    /// Forgets every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

// ---------------------------------------------------------------------------
// I/O throttling

/// Keeps the cleaner's I/O rate under `log.cleaner.io.max.bytes.per.second`
/// (Kafka's `Throttler`): bytes are counted, and once per check interval the
/// cleaner sleeps long enough to bring the average back to the limit.
#[derive(Debug)]
pub struct Throttler {
    bytes_per_second: f64,
    period_start: Instant,
    observed: f64,
}

impl Throttler {
    /// How often the rate is checked; short, so sleeps stay short and
    /// produce latency sees a smooth background load.
    const CHECK_INTERVAL: Duration = Duration::from_millis(100);

    /// A throttler for `bytes_per_second` (non-finite or huge = unlimited).
    pub fn new(bytes_per_second: f64) -> Throttler {
        Throttler {
            bytes_per_second,
            period_start: Instant::now(),
            observed: 0.0,
        }
    }

    /// Starts a new measuring period, so idle time before a pass is not
    /// counted as credit for a burst.
    pub fn reset(&mut self) {
        self.period_start = Instant::now();
        self.observed = 0.0;
    }

    fn unlimited(&self) -> bool {
        !self.bytes_per_second.is_finite() || self.bytes_per_second >= 1e300
    }

    /// Accounts for `bytes` of I/O, sleeping if the rate is over the limit;
    /// returns early if `stop` is set.
    pub fn maybe_throttle(&mut self, bytes: u64, stop: &AtomicBool) {
        if self.unlimited() {
            return;
        }
        self.observed += bytes as f64;
        let elapsed = self.period_start.elapsed();
        // Checked after a period's time or a period's worth of bytes,
        // whichever comes first, so a burst never exceeds ~100 ms of budget.
        let period_budget = self.bytes_per_second * Self::CHECK_INTERVAL.as_secs_f64();
        if elapsed < Self::CHECK_INTERVAL && self.observed < period_budget {
            return;
        }
        let rate = self.observed / elapsed.as_secs_f64();
        if rate > self.bytes_per_second && self.bytes_per_second > 0.0 {
            let target = Duration::from_secs_f64(self.observed / self.bytes_per_second);
            let mut remaining = target.saturating_sub(elapsed);
            while !remaining.is_zero() && !stop.load(Ordering::Relaxed) {
                let step = remaining.min(Duration::from_millis(50));
                thread::sleep(step);
                remaining -= step;
            }
        }
        self.period_start = Instant::now();
        self.observed = 0.0;
    }
}

// ---------------------------------------------------------------------------
// Crash recovery of interrupted swaps

fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// Parses `<20 digits>.<ext>` into the base offset.
fn parse_segment_name(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The offset after the last whole batch of a data file (its base offset
/// when it holds none).
fn next_offset_of_file(path: &Path, base: i64) -> Result<i64, LogError> {
    let file = File::open(path).ctx(path)?;
    let size = file.metadata().ctx(path)?.len();
    let mut reader = SegmentReader::new(file, path.to_path_buf(), size, 64 * 1024);
    let mut next = base;
    let mut buf = Vec::new();
    // A swap file was synced before it was committed, so it is whole; if it
    // is not, the valid prefix decides and segment recovery cuts the rest.
    while let Ok(Some(h)) = reader.next_batch(&mut buf) {
        next = next.max(h.last_offset() + 1);
    }
    Ok(next)
}

/// Completes or rolls back a cleaner swap interrupted by a crash (Kafka's
/// `LogLoader` swap handling). `.cleaned` files are from a swap that never
/// committed and are deleted. A `<base>.log.swap` file is a committed swap:
/// the segments whose base offsets fall in `[base, swap's next offset)` are
/// what it replaces, so they are deleted and the swap file takes its final
/// name. Index files of swapped segments are deleted and rebuilt when the
/// segment is opened, which is cheap and needs no trust in half-renamed
/// files.
pub fn complete_interrupted_swaps(dir: &Path) -> Result<(), LogError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LogError::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.ctx(dir)?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    let mut changed = false;
    let mut swaps = Vec::new();
    let mut log_bases = Vec::new();
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(CLEANED_SUFFIX) {
            tracing::info!(path = %path.display(), "removing uncommitted cleaner output");
            remove_if_exists(&path)?;
            changed = true;
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            if let Some(base) = parse_segment_name(stem, LOG_SUFFIX) {
                swaps.push(base);
            }
        } else if let Some(base) = parse_segment_name(name, LOG_SUFFIX) {
            log_bases.push(base);
        }
    }
    swaps.sort_unstable();
    for &base in &swaps {
        let swap_path = with_suffix(segment_file(dir, base, LOG_SUFFIX), SWAP_SUFFIX);
        let end = next_offset_of_file(&swap_path, base)?.max(base + 1);
        tracing::info!(path = %swap_path.display(), end, "completing interrupted segment swap");
        for &old in log_bases.iter().filter(|&&b| b >= base && b < end) {
            for ext in [LOG_SUFFIX, "index", "timeindex"] {
                remove_if_exists(&segment_file(dir, old, ext))?;
            }
        }
        for ext in ["index", "timeindex"] {
            remove_if_exists(&segment_file(dir, base, ext))?;
        }
        let final_path = segment_file(dir, base, LOG_SUFFIX);
        fs::rename(&swap_path, &final_path).ctx(&swap_path)?;
        changed = true;
    }
    // Index swaps left without (or after) their data file: rebuilt instead.
    for name in &names {
        if name.ends_with(SWAP_SUFFIX)
            && parse_segment_name(name.trim_end_matches(SWAP_SUFFIX), LOG_SUFFIX).is_none()
        {
            remove_if_exists(&dir.join(name))?;
            changed = true;
        }
    }
    if changed {
        sync_dir(dir).ctx(dir)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Reading segments outside the log lock

/// Reads the whole batches of a sealed segment sequentially through its own
/// file handle, so the log's lock is not needed. Sealed segments never
/// change; if retention deletes one meanwhile, the open handle still reads
/// it and the swap notices the segment is gone.
struct SegmentReader {
    reader: BufReader<File>,
    path: PathBuf,
    remaining: u64,
    position: u64,
}

impl SegmentReader {
    fn new(file: File, path: PathBuf, size: u64, buffer: usize) -> SegmentReader {
        SegmentReader {
            reader: BufReader::with_capacity(buffer.max(BATCH_OVERHEAD), file),
            path,
            remaining: size,
            position: 0,
        }
    }

    fn open(path: &Path, size: u64, buffer: usize) -> Result<SegmentReader, LogError> {
        let file = File::open(path).ctx(path)?;
        Ok(SegmentReader::new(file, path.to_path_buf(), size, buffer))
    }

    /// Reads the next batch into `buf` and checks its framing and CRC (the
    /// cleaner must never re-sign corrupt data with a fresh CRC). `None` at
    /// the end of the segment.
    fn next_batch(&mut self, buf: &mut Vec<u8>) -> Result<Option<RecordBatchHeader>, LogError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let corrupt = |what: &str, pos: u64, path: &Path| {
            LogError::CorruptRecord(format!("{}: {what} at position {pos}", path.display()))
        };
        if self.remaining < BATCH_OVERHEAD as u64 {
            return Err(corrupt("truncated batch header", self.position, &self.path));
        }
        buf.resize(BATCH_OVERHEAD, 0);
        self.reader.read_exact(buf).ctx(&self.path)?;
        let h = RecordBatchHeader::parse(buf)?;
        let size = match h.total_size() {
            Some(s) if h.magic == MAGIC_V2 && s as u64 <= self.remaining => s,
            _ => return Err(corrupt("invalid batch header", self.position, &self.path)),
        };
        buf.resize(size, 0);
        self.reader
            .read_exact(&mut buf[BATCH_OVERHEAD..])
            .ctx(&self.path)?;
        check_batch_integrity(buf)?;
        self.remaining -= size as u64;
        self.position += size as u64;
        Ok(Some(h))
    }
}

// ---------------------------------------------------------------------------
// Record-level filtering

/// Where one record lies in a (decompressed) payload.
struct RecordSpan {
    start: usize,
    end: usize,
    /// Start of the key length (everything from here on is copied as is).
    key_start: usize,
    attributes: u8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<(usize, usize)>,
    tombstone: bool,
}

fn corrupt(msg: &str) -> LogError {
    LogError::CorruptRecord(msg.to_string())
}

/// Skips a varint-length-prefixed byte string; `None` for null.
fn skip_nullable(buf: &[u8], pos: &mut usize) -> Result<Option<(usize, usize)>, LogError> {
    let len = read_varint(buf, pos)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(corrupt("negative length in record"));
    }
    let start = *pos;
    let end = start
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| corrupt("record field runs past the end of the record"))?;
    *pos = end;
    Ok(Some((start, end)))
}

/// Splits a payload into records, checking each record's framing.
fn record_spans(payload: &[u8], out: &mut Vec<RecordSpan>) -> Result<(), LogError> {
    out.clear();
    let mut pos = 0;
    while pos < payload.len() {
        let start = pos;
        let len = read_varint(payload, &mut pos)?;
        if len <= 0 {
            return Err(corrupt("invalid record length"));
        }
        let end = pos
            .checked_add(len as usize)
            .filter(|&e| e <= payload.len())
            .ok_or_else(|| corrupt("record runs past the end of the batch"))?;
        let body = &payload[..end];
        let attributes = *body
            .get(pos)
            .ok_or_else(|| corrupt("record is missing attributes"))?;
        pos += 1;
        let timestamp_delta = read_varlong(body, &mut pos)?;
        let offset_delta = read_varint(body, &mut pos)?;
        let key_start = pos;
        let key = skip_nullable(body, &mut pos)?;
        let value = skip_nullable(body, &mut pos)?;
        let headers = read_varint(body, &mut pos)?;
        if headers < 0 {
            return Err(corrupt("negative header count"));
        }
        for _ in 0..headers {
            skip_nullable(body, &mut pos)?;
            skip_nullable(body, &mut pos)?;
        }
        if pos != end {
            return Err(corrupt("record length disagrees with its fields"));
        }
        out.push(RecordSpan {
            start,
            end,
            key_start,
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            tombstone: value.is_none(),
        });
    }
    Ok(())
}

/// What cleaning did to one batch.
enum BatchOutcome {
    /// Every record stays and nothing needs rewriting.
    Keep,
    /// Some records stay; the batch was re-encoded.
    Rewritten { bytes: Vec<u8>, max_timestamp: i64 },
    /// No record stays.
    Drop,
}

/// The per-pass inputs of the retention decision.
struct FilterContext<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
}

/// Counters of one cleaning pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Bytes read (offset map scan and rewrite).
    pub bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub bytes_written: u64,
    /// Bytes of segments rewritten (their size before cleaning).
    pub bytes_cleaned: u64,
    /// Records read while rewriting.
    pub records_read: u64,
    /// Records removed (superseded, keyless or expired tombstones).
    pub records_removed: u64,
    /// Tombstones removed because their delete horizon passed.
    pub tombstones_removed: u64,
    /// Records put in the offset map.
    pub records_mapped: u64,
    /// Longest time the pass held the log's lock (a swap), in microseconds:
    /// what an append could have waited for.
    pub max_lock_hold_us: u64,
}

/// Scratch buffers reused across batches.
#[derive(Default)]
struct Scratch {
    spans: Vec<RecordSpan>,
    body: Vec<u8>,
}

/// Decides which records of `batch` stay. Returns the outcome and, when a
/// kept batch holds a tombstone, its delete horizon.
fn filter_batch(
    h: &RecordBatchHeader,
    batch: &[u8],
    ctx: &FilterContext<'_>,
    scratch: &mut Scratch,
    stats: &mut CleanerStats,
) -> Result<(BatchOutcome, Option<i64>), LogError> {
    if h.is_control() {
        // Transaction markers stay: transactions are not cleaned yet.
        return Ok((BatchOutcome::Keep, None));
    }
    if h.records_count <= 0 {
        return Ok((BatchOutcome::Drop, None));
    }
    let codec = h.compression()?;
    let payload = &batch[RECORDS_OFFSET..];
    let decompressed;
    let records = if codec == Compression::None {
        payload
    } else {
        decompressed = decompress(codec, payload, MAX_DECOMPRESSED_BYTES)?;
        &decompressed[..]
    };
    record_spans(records, &mut scratch.spans)?;
    let horizon = (h.attributes & DELETE_HORIZON_FLAG_MASK != 0).then_some(h.first_timestamp);
    let total = scratch.spans.len();
    stats.records_read += total as u64;
    let mut has_tombstone = false;
    scratch.spans.retain(|r| {
        let Some((ks, ke)) = r.key else {
            // Kafka drops keyless records from compacted logs.
            return false;
        };
        let offset = h.base_offset + i64::from(r.offset_delta);
        if ctx.map.get(&records[ks..ke]).is_some_and(|o| offset < o) {
            return false;
        }
        if r.tombstone {
            if horizon.is_some_and(|hz| ctx.now_ms >= hz) {
                stats.tombstones_removed += 1;
                return false;
            }
            has_tombstone = true;
        }
        true
    });
    let kept = scratch.spans.len();
    stats.records_removed += (total - kept) as u64;
    if kept == 0 {
        return Ok((BatchOutcome::Drop, None));
    }
    let set_horizon = has_tombstone && horizon.is_none();
    let new_horizon = if set_horizon {
        Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms))
    } else if has_tombstone {
        horizon
    } else {
        None
    };
    if kept == total && !set_horizon {
        return Ok((BatchOutcome::Keep, new_horizon));
    }

    // Re-encode the kept records; their offset deltas stay, so do offsets.
    let new_first_ts = if set_horizon {
        ctx.now_ms.saturating_add(ctx.delete_retention_ms)
    } else {
        h.first_timestamp
    };
    let append_time = h.timestamp_type() == TimestampType::LogAppendTime;
    let mut max_ts = i64::MIN;
    scratch.body.clear();
    let mut header = Vec::with_capacity(24);
    for r in &scratch.spans {
        let ts = h.first_timestamp.wrapping_add(r.timestamp_delta);
        max_ts = max_ts.max(ts);
        if new_first_ts == h.first_timestamp {
            scratch.body.extend_from_slice(&records[r.start..r.end]);
        } else {
            header.clear();
            header.push(r.attributes);
            write_varlong(&mut header, ts.wrapping_sub(new_first_ts));
            write_varint(&mut header, r.offset_delta);
            let rest = &records[r.key_start..r.end];
            let len = i32::try_from(header.len() + rest.len())
                .map_err(|_| corrupt("record too large"))?;
            write_varint(&mut scratch.body, len);
            scratch.body.extend_from_slice(&header);
            scratch.body.extend_from_slice(rest);
        }
    }
    let max_timestamp = if append_time { h.max_timestamp } else { max_ts };
    let payload = match codec {
        Compression::None => None,
        c => Some(compress(default_level(c), &scratch.body).map_err(|e| {
            LogError::CorruptRecord(format!("records cannot be recompressed: {e}"))
        })?),
    };
    let payload = payload.as_deref().unwrap_or(&scratch.body);
    let mut attributes = h.attributes;
    if new_horizon.is_some() || horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG_MASK;
    }
    let out = encode_batch(
        &batch[..BATCH_OVERHEAD],
        attributes,
        new_first_ts,
        max_timestamp,
        kept as i32,
        payload,
    )?;
    Ok((
        BatchOutcome::Rewritten {
            bytes: out,
            max_timestamp,
        },
        new_horizon,
    ))
}

/// The codec at its default level, for re-encoding a cleaned batch in the
/// codec the producer chose.
fn default_level(codec: Compression) -> BrokerCompression {
    match codec {
        Compression::None => BrokerCompression::Uncompressed,
        Compression::Gzip => BrokerCompression::Gzip {
            level: BrokerCompression::GZIP_DEFAULT_LEVEL,
        },
        Compression::Snappy => BrokerCompression::Snappy,
        Compression::Lz4 => BrokerCompression::Lz4 {
            level: BrokerCompression::LZ4_DEFAULT_LEVEL,
        },
        Compression::Zstd => BrokerCompression::Zstd {
            level: BrokerCompression::ZSTD_DEFAULT_LEVEL,
        },
    }
}

/// A batch with `original_header`'s base offset, last offset delta, leader
/// epoch and producer fields, and the given contents; CRC recomputed.
fn encode_batch(
    original_header: &[u8],
    attributes: i16,
    first_timestamp: i64,
    max_timestamp: i64,
    records_count: i32,
    payload: &[u8],
) -> Result<Vec<u8>, LogError> {
    let batch_length = i32::try_from(BATCH_OVERHEAD - LOG_OVERHEAD + payload.len())
        .map_err(|_| corrupt("cleaned batch too large"))?;
    let mut out = Vec::with_capacity(BATCH_OVERHEAD + payload.len());
    out.extend_from_slice(&original_header[..BATCH_OVERHEAD]);
    out.extend_from_slice(payload);
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out[FIRST_TIMESTAMP_OFFSET..FIRST_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&first_timestamp.to_be_bytes());
    out[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
        .copy_from_slice(&records_count.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// The header of a batch whose records were all cleaned away, kept so the
/// batch's offsets stay accounted for (Kafka writes the same for producer
/// state): no records, no codec, same offsets and producer fields.
fn empty_batch(original_header: &[u8], h: &RecordBatchHeader) -> Result<Vec<u8>, LogError> {
    let keep = TIMESTAMP_TYPE_MASK | TRANSACTIONAL_FLAG_MASK | CONTROL_FLAG_MASK;
    let attributes = h.attributes & keep & !COMPRESSION_CODEC_MASK;
    encode_batch(
        original_header,
        attributes,
        h.max_timestamp,
        h.max_timestamp,
        0,
        &[],
    )
}

// ---------------------------------------------------------------------------
// The cleaner

/// A sealed segment as seen when the pass started.
#[derive(Clone, Debug)]
struct SegmentInfo {
    base: i64,
    next_offset: i64,
    size: u64,
    max_timestamp: i64,
    path: PathBuf,
    /// The segment has an aborted-transaction index (`.txnindex`), whose
    /// file is named after the segment's base offset.
    has_txn_index: bool,
}

/// What a pass needs from the log, copied under its lock.
#[derive(Clone, Debug)]
struct LogSnapshot {
    dir: PathBuf,
    tp: TopicPartition,
    config: LogConfig,
    log_start: i64,
    active_base: i64,
    /// The first offset of the earliest open transaction: its records may
    /// still be aborted, so nothing from here on is cleaned (Kafka bounds
    /// cleaning by the last stable offset the same way).
    first_unstable: Option<i64>,
    /// The aborted transactions of the sealed segments: their records
    /// must not stand for their keys in the offset map, or a committed
    /// value would be cleaned away in favour of one no read_committed
    /// consumer can see. By producer id: (first offset, marker offset).
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    /// Sealed segments, oldest first.
    segments: Vec<SegmentInfo>,
}

impl LogSnapshot {
    fn take(log: &Log) -> LogSnapshot {
        let segs = log.segments();
        let active_base = segs.keys().next_back().copied().unwrap_or(0);
        LogSnapshot {
            dir: log.dir().to_path_buf(),
            tp: log.topic_partition().clone(),
            config: log.config().clone(),
            log_start: log.log_start_offset(),
            active_base,
            first_unstable: log.first_unstable_offset(),
            aborted: aborted_by_producer(
                log.collect_aborted_transactions(log.log_start_offset(), active_base),
            ),
            segments: segs
                .range(..active_base)
                .map(|(&base, s)| SegmentInfo {
                    base,
                    next_offset: s.next_offset(),
                    size: s.size(),
                    max_timestamp: s.max_timestamp_so_far(),
                    path: s.log_path().to_path_buf(),
                    has_txn_index: false,
                })
                .collect(),
        }
    }

    /// The first offset the cleaner may not touch: the active segment, the
    /// first dirty segment holding records younger than
    /// `min.compaction.lag.ms`, or the segment holding the start of the
    /// earliest open transaction.
    fn first_uncleanable(&self, first_dirty: i64, now_ms: i64) -> i64 {
        let lag = self.config.min_compaction_lag_ms;
        let by_lag = if lag <= 0 {
            self.active_base
        } else {
            self.segments
                .iter()
                .filter(|s| s.next_offset > first_dirty)
                .find(|s| s.max_timestamp > now_ms.saturating_sub(lag))
                .map_or(self.active_base, |s| s.base)
        };
        let by_txn = self.first_unstable.map_or(self.active_base, |u| {
            self.segments
                .iter()
                .find(|s| s.next_offset > u)
                .map_or(self.active_base, |s| s.base)
        });
        by_lag.min(by_txn)
    }

    /// Whether `h` holds records of an aborted transaction.
    fn is_aborted(&self, h: &RecordBatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.aborted.get(&h.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|&(first, last)| first <= h.base_offset && h.base_offset <= last)
            })
    }

    /// (clean bytes, dirty bytes) for the dirty ratio.
    fn dirty_bytes(&self, first_dirty: i64, uncleanable: i64) -> (u64, u64) {
        let mut clean = 0;
        let mut dirty = 0;
        for s in &self.segments {
            if s.next_offset <= first_dirty {
                clean += s.size;
            } else if s.base < uncleanable {
                dirty += s.size;
            }
        }
        (clean, dirty)
    }
}

/// Aborted transactions by producer: a batch is looked up by its own
/// producer's ranges only.
fn aborted_by_producer(aborted: Vec<AbortedTxn>) -> HashMap<i64, Vec<(i64, i64)>> {
    let mut by: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for a in aborted {
        by.entry(a.producer_id)
            .or_default()
            .push((a.first_offset, a.last_offset));
    }
    by
}

/// Result of cleaning one log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Offsets below this were compacted by this pass (the offset map
    /// covered them); the next pass starts here.
    pub next_dirty_offset: i64,
    /// Segments below this offset were rewritten (the end of the last
    /// rewritten group), 0 when nothing was.
    pub cleaned_up_to: i64,
    /// Groups of segments swapped in.
    pub groups_swapped: usize,
    /// The pass stopped because the log changed under it (retention,
    /// DeleteRecords, deletion); what was swapped before stays.
    pub interrupted: bool,
    /// The earliest delete horizon among tombstones still in the cleaned
    /// range: the log needs another pass then to drop them.
    pub next_delete_horizon: Option<i64>,
    /// Counters.
    pub stats: CleanerStats,
}

/// Cleans one log at a time with a bounded offset map (Kafka's `Cleaner`;
/// one per cleaner thread).
#[derive(Debug)]
pub struct Cleaner {
    config: CleanerConfig,
    map: OffsetMap,
    throttler: Throttler,
    crash_at: Option<CrashPoint>,
}

impl Cleaner {
    /// A cleaner with its own offset map and throttler.
    pub fn new(config: CleanerConfig) -> Cleaner {
        Cleaner {
            map: OffsetMap::with_memory(
                config.dedupe_buffer_size,
                config.dedupe_buffer_load_factor,
            ),
            throttler: Throttler::new(config.io_max_bytes_per_second),
            config,
            crash_at: None,
        }
    }

    /// Makes the next pass stop at `point` as if the process died there
    /// (for crash tests). The log must then be reopened from disk.
    pub fn crash_at(&mut self, point: Option<CrashPoint>) {
        self.crash_at = point;
    }

    /// Entries the offset map can hold.
    pub fn map_capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Cleans `log` from `first_dirty` on, whatever its dirty ratio (the
    /// caller decides whether cleaning is due; [`LogCleaner`] checks
    /// `min.cleanable.dirty.ratio` and `max.compaction.lag.ms`). Returns the
    /// outcome; a log that is not compacted, or has nothing cleanable, is
    /// left alone.
    pub fn clean(
        &mut self,
        log: &Mutex<Log>,
        first_dirty: i64,
        now_ms: i64,
        stop: &AtomicBool,
    ) -> Result<CleanOutcome, CleanerError> {
        let snap = {
            let l = log.lock();
            if l.is_offline() {
                return Ok(CleanOutcome::default());
            }
            LogSnapshot::take(&l)
        };
        let mut outcome = CleanOutcome {
            next_dirty_offset: first_dirty,
            ..CleanOutcome::default()
        };
        if !snap.config.compact {
            return Ok(outcome);
        }
        let first_dirty = first_dirty.max(snap.log_start);
        let uncleanable = snap.first_uncleanable(first_dirty, now_ms);
        self.map.clear();
        self.throttler.reset();
        let map_end = if first_dirty >= uncleanable {
            // Nothing dirty: the pass only drops tombstones whose delete
            // horizon passed, from the already clean part.
            first_dirty
        } else {
            self.build_offset_map(&snap, first_dirty, uncleanable, stop, &mut outcome)?
        };
        outcome.next_dirty_offset = map_end;

        let ctx_delete_retention = snap.config.delete_retention_ms;
        let to_clean: Vec<SegmentInfo> = snap
            .segments
            .iter()
            .filter(|s| s.base < map_end)
            .map(|s| SegmentInfo {
                has_txn_index: segment_file(&snap.dir, s.base, crate::txn_index::TXN_INDEX_SUFFIX)
                    .exists(),
                ..s.clone()
            })
            .collect();
        let max_bytes = snap.config.segment_bytes.clamp(1, MAX_SEGMENT_BYTES);
        let groups = group_segments(&to_clean, max_bytes);
        let mut first_group = true;
        for group in groups {
            if stop.load(Ordering::Relaxed) {
                return Err(CleanerError::Aborted);
            }
            let ctx = FilterContext {
                map: &self.map,
                now_ms,
                delete_retention_ms: ctx_delete_retention,
            };
            let mut horizon = None;
            let cleaned = clean_group(
                &snap,
                group,
                &ctx,
                &self.config,
                &mut self.throttler,
                stop,
                now_ms,
                &mut outcome.stats,
                &mut horizon,
            )?;
            let crash = if first_group { self.crash_at } else { None };
            first_group = false;
            let swapped = swap_in(
                log,
                &snap,
                group,
                map_end,
                cleaned,
                crash,
                &mut outcome.stats.max_lock_hold_us,
            )?;
            if !swapped {
                outcome.interrupted = true;
                // Later groups' decisions rest on the same snapshot; stop
                // here and let the next pass start from fresh state.
                outcome.next_dirty_offset = first_dirty;
                return Ok(outcome);
            }
            outcome.groups_swapped += 1;
            outcome.stats.bytes_cleaned += group.iter().map(|s| s.size).sum::<u64>();
            outcome.cleaned_up_to = group.last().map_or(0, |s| s.next_offset);
            outcome.next_delete_horizon = match (outcome.next_delete_horizon, horizon) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(outcome)
    }

    /// Fills the offset map from the dirty segments; returns the offset the
    /// map covers up to (exclusive), which is `uncleanable` unless it filled.
    fn build_offset_map(
        &mut self,
        snap: &LogSnapshot,
        first_dirty: i64,
        uncleanable: i64,
        stop: &AtomicBool,
        outcome: &mut CleanOutcome,
    ) -> Result<i64, CleanerError> {
        let mut buf = Vec::new();
        for seg in snap
            .segments
            .iter()
            .filter(|s| s.next_offset > first_dirty && s.base < uncleanable)
        {
            let mut reader = SegmentReader::open(&seg.path, seg.size, self.config.io_buffer_size)?;
            while let Some(h) = reader.next_batch(&mut buf)? {
                if stop.load(Ordering::Relaxed) {
                    return Err(CleanerError::Aborted);
                }
                outcome.stats.bytes_read += buf.len() as u64;
                self.throttler.maybe_throttle(buf.len() as u64, stop);
                if h.last_offset() < first_dirty
                    || h.is_control()
                    || h.records_count <= 0
                    || snap.is_aborted(&h)
                {
                    continue;
                }
                let count = h.records_count as usize;
                if self.map.len() + count > self.map.capacity() {
                    if h.base_offset <= first_dirty {
                        return Err(CleanerError::OffsetMapTooSmall {
                            capacity: self.map.capacity(),
                            records: count,
                            offset: h.base_offset,
                        });
                    }
                    tracing::debug!(tp = %snap.tp, offset = h.base_offset, "offset map full; cleaning in several passes");
                    return Ok(h.base_offset);
                }
                // one record at a time: a compressed batch is not
                // inflated whole to read its keys
                let map = &mut self.map;
                let mapped = &mut outcome.stats.records_mapped;
                visit_records(&h, &buf, |r| {
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    if offset >= first_dirty {
                        if let Some(key) = r.key {
                            // Cannot fail: capacity was checked for the batch.
                            map.put(key, offset);
                            *mapped += 1;
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok(uncleanable)
    }
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose total size
/// fits in one segment and whose offsets fit a 32-bit index are cleaned
/// into one, so compacted logs do not accumulate tiny segments.
fn group_segments(segments: &[SegmentInfo], max_bytes: u64) -> Vec<&[SegmentInfo]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let base = segments[start].base;
        let mut size = segments[start].size;
        let mut end = start + 1;
        while end < segments.len() {
            let s = &segments[end];
            let fits = size + s.size <= max_bytes;
            let offsets_fit = s.next_offset - 1 - base <= i64::from(i32::MAX);
            // A segment's aborted-transaction index is named after its base
            // offset, so such a segment only ever heads a group: its index
            // then stays valid for the merged segment and needs no rewrite.
            if !(fits && offsets_fit) || s.has_txn_index {
                break;
            }
            size += s.size;
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
}

/// Rewrites one group into a `.cleaned` segment named after its first
/// base offset; synced before returning.
#[allow(clippy::too_many_arguments)]
fn clean_group(
    snap: &LogSnapshot,
    group: &[SegmentInfo],
    ctx: &FilterContext<'_>,
    config: &CleanerConfig,
    throttler: &mut Throttler,
    stop: &AtomicBool,
    now_ms: i64,
    stats: &mut CleanerStats,
    min_horizon: &mut Option<i64>,
) -> Result<LogSegment, CleanerError> {
    let base = group[0].base;
    let mut dest = LogSegment::create_with_suffix(
        &snap.dir,
        base,
        snap.config.index_interval_bytes,
        snap.config.max_index_size,
        now_ms,
        CLEANED_SUFFIX,
    )?;
    let result = (|| -> Result<(), CleanerError> {
        let mut out = Vec::with_capacity(config.io_buffer_size);
        let mut out_batches = Vec::new();
        let mut buf = Vec::new();
        let mut scratch = Scratch::default();
        // The last batch of the group, if cleaned away, leaves its header.
        let mut trailing_empty: Option<(Vec<u8>, RecordBatchHeader)> = None;
        for seg in group {
            let mut reader = SegmentReader::open(&seg.path, seg.size, config.io_buffer_size)?;
            while let Some(h) = reader.next_batch(&mut buf)? {
                if stop.load(Ordering::Relaxed) {
                    return Err(CleanerError::Aborted);
                }
                stats.bytes_read += buf.len() as u64;
                throttler.maybe_throttle(buf.len() as u64, stop);
                let (outcome, horizon) = filter_batch(&h, &buf, ctx, &mut scratch, stats)?;
                if let Some(hz) = horizon {
                    *min_horizon = Some(min_horizon.map_or(hz, |m: i64| m.min(hz)));
                }
                let (bytes, max_ts): (&[u8], i64) = match &outcome {
                    BatchOutcome::Keep => (&buf, h.max_timestamp),
                    BatchOutcome::Rewritten {
                        bytes,
                        max_timestamp,
                    } => (bytes, *max_timestamp),
                    BatchOutcome::Drop => {
                        trailing_empty = Some((empty_batch(&buf, &h)?, h));
                        continue;
                    }
                };
                trailing_empty = None;
                push_batch(&mut out, &mut out_batches, bytes, h.last_offset(), max_ts);
                if out.len() >= config.io_buffer_size {
                    write_out(
                        &mut dest,
                        &mut out,
                        &mut out_batches,
                        throttler,
                        stop,
                        stats,
                    )?;
                }
            }
        }
        if let Some((bytes, h)) = trailing_empty {
            push_batch(
                &mut out,
                &mut out_batches,
                &bytes,
                h.last_offset(),
                h.max_timestamp,
            );
        }
        write_out(
            &mut dest,
            &mut out,
            &mut out_batches,
            throttler,
            stop,
            stats,
        )?;
        dest.flush()?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(dest),
        Err(e) => {
            if let Err(del) = dest.delete_files() {
                tracing::warn!(error = %del, "could not remove partial cleaner output");
            }
            Err(e)
        }
    }
}

fn push_batch(
    out: &mut Vec<u8>,
    batches: &mut Vec<crate::segment::AppendBatch>,
    bytes: &[u8],
    last_offset: i64,
    max_timestamp: i64,
) {
    out.extend_from_slice(bytes);
    batches.push(crate::segment::AppendBatch {
        size: bytes.len(),
        last_offset,
        max_timestamp,
    });
}

fn write_out(
    dest: &mut LogSegment,
    out: &mut Vec<u8>,
    batches: &mut Vec<crate::segment::AppendBatch>,
    throttler: &mut Throttler,
    stop: &AtomicBool,
    stats: &mut CleanerStats,
) -> Result<(), CleanerError> {
    if out.is_empty() {
        return Ok(());
    }
    dest.append(out, batches)?;
    stats.bytes_written += out.len() as u64;
    throttler.maybe_throttle(out.len() as u64, stop);
    out.clear();
    batches.clear();
    Ok(())
}

/// Swaps a cleaned group in under the log's lock. Returns false (and
/// discards the cleaned files) when the log changed under the pass.
fn swap_in(
    log: &Mutex<Log>,
    snap: &LogSnapshot,
    group: &[SegmentInfo],
    map_end: i64,
    mut cleaned: LogSegment,
    crash: Option<CrashPoint>,
    max_lock_hold_us: &mut u64,
) -> Result<bool, CleanerError> {
    let crashed = |p: CrashPoint| -> Result<(), CleanerError> {
        if crash == Some(p) {
            Err(CleanerError::SimulatedCrash(p))
        } else {
            Ok(())
        }
    };
    if let Err(e) = crashed(CrashPoint::AfterCleanedWritten) {
        drop(cleaned);
        return Err(e);
    }
    let mut l = log.lock();
    let locked_at = Instant::now();
    // The group and every dirty segment the map read must be unchanged:
    // the map's offsets justify removing older records only while the
    // records they point at still exist.
    let segs = l.segments();
    let active = segs.keys().next_back().copied().unwrap_or(0);
    let intact = !l.is_offline()
        && l.log_end_offset() >= map_end
        && snap
            .segments
            .iter()
            .filter(|s| s.base >= group[0].base && s.base < map_end)
            .all(|s| s.base < active && segs.get(&s.base).is_some_and(|x| x.size() == s.size));
    if !intact {
        drop(l);
        tracing::info!(tp = %snap.tp, base = group[0].base, "log changed during cleaning; discarding this pass");
        cleaned.delete_files()?;
        return Ok(false);
    }
    let dir = snap.dir.clone();
    // Commit point: once `.log.swap` is durable, recovery completes the swap.
    if let Err(e) = cleaned
        .rename_files(CLEANED_SUFFIX, SWAP_SUFFIX)
        .and_then(|()| sync_dir(&dir).ctx(&dir))
    {
        drop(l);
        tracing::error!(tp = %snap.tp, error = %e, "could not commit cleaned segment");
        // Whatever got renamed is recovered or removed on the next start.
        for suffix in [CLEANED_SUFFIX, SWAP_SUFFIX] {
            for ext in [LOG_SUFFIX, "index", "timeindex"] {
                let _ =
                    remove_if_exists(&with_suffix(segment_file(&dir, group[0].base, ext), suffix));
            }
        }
        return Err(e.into());
    }
    let mut doomed = Vec::new();
    let result = (|| -> Result<(), CleanerError> {
        crashed(CrashPoint::AfterSwapCommitted)?;
        // Old segments are renamed (cheap) under the lock and unlinked
        // after it, as Kafka's async delete does: unlinking a large file
        // can take milliseconds that appends would otherwise wait for.
        for (i, s) in group.iter().enumerate() {
            if let Some(mut old) = l.segments_mut().remove(&s.base) {
                let renamed = old.rename_files("", DELETED_SUFFIX);
                doomed.push(old);
                renamed?;
            }
            if i == 0 {
                crashed(CrashPoint::AfterFirstOldSegmentDeleted)?;
            }
        }
        crashed(CrashPoint::AfterOldSegmentsDeleted)?;
        rename_swap_to_final(&mut cleaned, crash)?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            l.segments_mut().insert(group[0].base, cleaned);
            drop(l);
            let held = u64::try_from(locked_at.elapsed().as_micros()).unwrap_or(u64::MAX);
            *max_lock_hold_us = (*max_lock_hold_us).max(held);
            // Not needed for safety (recovery redoes a lost rename), but
            // keeps the directory durable in its final state.
            if let Err(e) = sync_dir(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "directory sync after swap failed");
            }
            for old in doomed {
                if let Err(e) = old.delete_files() {
                    tracing::warn!(error = %e, "could not delete a replaced segment; it goes at the next start");
                }
            }
            Ok(true)
        }
        Err(e) => {
            if !matches!(e, CleanerError::SimulatedCrash(_)) {
                tracing::error!(tp = %snap.tp, error = %e, "segment swap failed after commit; taking the log offline until restart");
            }
            l.mark_offline();
            Err(e)
        }
    }
}

fn rename_swap_to_final(
    cleaned: &mut LogSegment,
    crash: Option<CrashPoint>,
) -> Result<(), CleanerError> {
    if crash == Some(CrashPoint::AfterIndexesRenamed) {
        // Rename only the indexes, as a crash between the renames would.
        let dir = cleaned
            .log_path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let name = cleaned
            .log_path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| parse_segment_name(n.trim_end_matches(SWAP_SUFFIX), LOG_SUFFIX));
        if let Some(base) = name {
            for ext in ["index", "timeindex"] {
                let from = with_suffix(segment_file(&dir, base, ext), SWAP_SUFFIX);
                fs::rename(&from, segment_file(&dir, base, ext)).ctx(&from)?;
            }
        }
        return Err(CleanerError::SimulatedCrash(
            CrashPoint::AfterIndexesRenamed,
        ));
    }
    cleaned.rename_files(SWAP_SUFFIX, "")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The background cleaner of a broker

/// What the cleaner remembers about a log between passes (Kafka keeps the
/// first dirty offset in `cleaner-offset-checkpoint`; here it lives in
/// memory, so after a restart every compacted log is cleaned once in full).
struct LogState {
    log: Weak<Mutex<Log>>,
    first_dirty: i64,
    next_delete_horizon: Option<i64>,
    /// Set after a non-I/O failure (corrupt data, map too small): the log is
    /// skipped until restart instead of failing every round.
    uncleanable: bool,
}

/// Why a log was chosen for cleaning.
#[derive(Clone, Debug, PartialEq)]
pub struct CleaningCandidate {
    /// The partition.
    pub tp: TopicPartition,
    /// Dirty bytes / (clean + dirty bytes).
    pub dirty_ratio: f64,
    /// Dirty bytes.
    pub dirty_bytes: u64,
    /// A dirty record is older than `max.compaction.lag.ms`.
    pub compaction_lag_due: bool,
    /// A tombstone's delete horizon has passed.
    pub delete_horizon_due: bool,
}

type SharedLog = Arc<Mutex<Log>>;

/// The broker's background cleaner (Kafka's `LogCleaner` with one thread):
/// picks the compacted logs that need cleaning, filthiest first, cleans
/// them, and backs off for `log.cleaner.backoff.ms` when none does.
pub struct LogCleaner {
    cleaner: Mutex<Cleaner>,
    states: Mutex<HashMap<TopicPartition, LogState>>,
    backoff: Duration,
    stop: AtomicBool,
    wake: (Mutex<()>, Condvar),
    totals: Mutex<CleanerTotals>,
}

/// What the cleaner did since start, for the broker's metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CleanerTotals {
    /// Passes that completed (one log each).
    pub runs: u64,
    /// Bytes of segments rewritten, their size before cleaning.
    pub bytes_cleaned: u64,
    /// Bytes written to the cleaned segments.
    pub bytes_written: u64,
    /// Records removed (superseded, keyless or expired tombstones).
    pub records_removed: u64,
    /// The last round's longest pass, in seconds (Kafka's
    /// max-clean-time-secs).
    pub last_round_max_secs: f64,
    /// The last pass's bytes written per byte cleaned, in percent (Kafka's
    /// cleaner-recopy-percent).
    pub last_recopy_percent: f64,
}

impl std::fmt::Debug for LogCleaner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCleaner")
            .field("backoff", &self.backoff)
            .finish()
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl LogCleaner {
    /// A cleaner with `config`; nothing runs until [`LogCleaner::start`] or
    /// [`LogCleaner::clean_round`].
    pub fn new(config: CleanerConfig) -> LogCleaner {
        LogCleaner {
            backoff: Duration::from_millis(config.backoff_ms.max(1)),
            cleaner: Mutex::new(Cleaner::new(config)),
            states: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
            totals: Mutex::new(CleanerTotals::default()),
        }
    }

    /// Totals since start.
    pub fn totals(&self) -> CleanerTotals {
        self.totals.lock().clone()
    }

    fn first_dirty_of(&self, tp: &TopicPartition, log: &SharedLog) -> (i64, Option<i64>, bool) {
        let states = self.states.lock();
        match states.get(tp) {
            Some(s) if s.log.upgrade().is_some_and(|l| Arc::ptr_eq(&l, log)) => {
                (s.first_dirty, s.next_delete_horizon, s.uncleanable)
            }
            _ => (0, None, false),
        }
    }

    /// The compacted logs among `logs` that need cleaning at `now_ms`,
    /// filthiest first: dirty ratio >= `min.cleanable.dirty.ratio`, a dirty
    /// record older than `max.compaction.lag.ms`, or a tombstone past its
    /// delete horizon.
    pub fn candidates(
        &self,
        logs: &[(TopicPartition, SharedLog)],
        now_ms: i64,
    ) -> Vec<CleaningCandidate> {
        let mut out = Vec::new();
        for (tp, log) in logs {
            let (first_dirty, horizon, uncleanable) = self.first_dirty_of(tp, log);
            if uncleanable {
                continue;
            }
            let snap = {
                let l = log.lock();
                if l.is_offline() || !l.config().compact {
                    continue;
                }
                LogSnapshot::take(&l)
            };
            let first_dirty = first_dirty.max(snap.log_start);
            let uncleanable_at = snap.first_uncleanable(first_dirty, now_ms);
            let (clean, dirty) = snap.dirty_bytes(first_dirty, uncleanable_at);
            let total = clean + dirty;
            let ratio = if total == 0 {
                0.0
            } else {
                dirty as f64 / total as f64
            };
            let lag_due = dirty > 0 && {
                let max_lag = snap.config.max_compaction_lag_ms;
                snap.segments
                    .iter()
                    .find(|s| s.next_offset > first_dirty && s.base < uncleanable_at)
                    .and_then(|s| first_batch_timestamp(&s.path).ok().flatten())
                    .is_some_and(|ts| ts >= 0 && now_ms.saturating_sub(ts) > max_lag)
            };
            let horizon_due = horizon.is_some_and(|h| now_ms >= h);
            let by_ratio = dirty > 0 && ratio >= snap.config.min_cleanable_dirty_ratio;
            if by_ratio || lag_due || horizon_due {
                out.push(CleaningCandidate {
                    tp: tp.clone(),
                    dirty_ratio: ratio,
                    dirty_bytes: dirty,
                    compaction_lag_due: lag_due,
                    delete_horizon_due: horizon_due,
                });
            }
        }
        out.sort_by(|a, b| {
            (b.compaction_lag_due, b.dirty_ratio)
                .partial_cmp(&(a.compaction_lag_due, a.dirty_ratio))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        out
    }

    /// One round: cleans every log of `logs` that needs it. Returns the
    /// outcomes of the logs cleaned. Errors are logged per log and do not
    /// stop the round.
    pub fn clean_round(
        &self,
        logs: &[(TopicPartition, SharedLog)],
        now_ms: i64,
    ) -> Vec<(TopicPartition, CleanOutcome)> {
        // Forget logs that no longer exist.
        let live: std::collections::HashSet<&TopicPartition> =
            logs.iter().map(|(t, _)| t).collect();
        self.states
            .lock()
            .retain(|tp, s| s.log.strong_count() > 0 && live.contains(tp));
        let mut done = Vec::new();
        let mut round_max_secs: Option<f64> = None;
        for cand in self.candidates(logs, now_ms) {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let Some((_, log)) = logs.iter().find(|(t, _)| *t == cand.tp) else {
                continue;
            };
            let (first_dirty, _, _) = self.first_dirty_of(&cand.tp, log);
            let started = Instant::now();
            let result = self
                .cleaner
                .lock()
                .clean(log, first_dirty, now_ms, &self.stop);
            let mut states = self.states.lock();
            let state = states.entry(cand.tp.clone()).or_insert_with(|| LogState {
                log: Arc::downgrade(log),
                first_dirty: 0,
                next_delete_horizon: None,
                uncleanable: false,
            });
            if !state.log.upgrade().is_some_and(|l| Arc::ptr_eq(&l, log)) {
                *state = LogState {
                    log: Arc::downgrade(log),
                    first_dirty: 0,
                    next_delete_horizon: None,
                    uncleanable: false,
                };
            }
            match result {
                Ok(outcome) => {
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(
                        tp = %cand.tp,
                        dirty_ratio = cand.dirty_ratio,
                        bytes_cleaned = outcome.stats.bytes_cleaned,
                        bytes_written = outcome.stats.bytes_written,
                        records_removed = outcome.stats.records_removed,
                        secs,
                        "cleaned log"
                    );
                    {
                        let mut t = self.totals.lock();
                        t.runs += 1;
                        t.bytes_cleaned += outcome.stats.bytes_cleaned;
                        t.bytes_written += outcome.stats.bytes_written;
                        t.records_removed += outcome.stats.records_removed;
                        if outcome.stats.bytes_cleaned > 0 {
                            t.last_recopy_percent = outcome.stats.bytes_written as f64 * 100.0
                                / outcome.stats.bytes_cleaned as f64;
                        }
                    }
                    round_max_secs = Some(round_max_secs.map_or(secs, |m: f64| m.max(secs)));
                    if !outcome.interrupted {
                        state.first_dirty = outcome.next_dirty_offset;
                        state.next_delete_horizon = outcome.next_delete_horizon;
                    }
                    done.push((cand.tp.clone(), outcome));
                }
                Err(CleanerError::Aborted) => break,
                Err(CleanerError::Log(e)) if e.is_io() => {
                    tracing::error!(tp = %cand.tp, error = %e, "cleaning failed; will retry");
                }
                Err(e) => {
                    tracing::error!(tp = %cand.tp, error = %e, "cleaning failed; the log is marked uncleanable until restart");
                    state.uncleanable = true;
                }
            }
        }
        if let Some(m) = round_max_secs {
            self.totals.lock().last_round_max_secs = m;
        }
        done
    }

    /// Runs rounds on a thread named `log-cleaner` until [`LogCleaner::shutdown`].
    pub fn start(self: &Arc<Self>, log_manager: Arc<LogManager>) -> io::Result<CleanerThread> {
        let me = Arc::clone(self);
        let handle = thread::Builder::new()
            .name("log-cleaner".into())
            .spawn(move || {
                while !me.stop.load(Ordering::Relaxed) {
                    let logs = log_manager.all_logs();
                    let cleaned = me.clean_round(&logs, wall_clock_ms());
                    if cleaned.is_empty() {
                        let mut g = me.wake.0.lock();
                        if !me.stop.load(Ordering::Relaxed) {
                            me.wake.1.wait_for(&mut g, me.backoff);
                        }
                    }
                }
            })?;
        Ok(CleanerThread {
            cleaner: Arc::clone(self),
            handle: Some(handle),
        })
    }

    /// Asks the cleaner to stop: a pass in progress aborts at the next
    /// batch and leaves the log as it was.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _g = self.wake.0.lock();
        self.wake.1.notify_all();
    }
}

/// The running cleaner thread; [`CleanerThread::stop`] ends it.
#[derive(Debug)]
pub struct CleanerThread {
    cleaner: Arc<LogCleaner>,
    handle: Option<thread::JoinHandle<()>>,
}

impl CleanerThread {
    /// Stops the cleaner and waits for its thread, so no swap runs while
    /// the broker flushes and checkpoints at shutdown.
    pub fn stop(mut self) {
        self.cleaner.shutdown();
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("log cleaner thread panicked");
            }
        }
    }
}

impl Drop for CleanerThread {
    fn drop(&mut self) {
        self.cleaner.shutdown();
    }
}

/// The first batch's max timestamp of a segment file (what Kafka uses for
/// `max.compaction.lag.ms`).
fn first_batch_timestamp(path: &Path) -> Result<Option<i64>, LogError> {
    let mut file = File::open(path).ctx(path)?;
    let mut buf = [0u8; BATCH_OVERHEAD];
    match file.read_exact(&mut buf) {
        Ok(()) => Ok(Some(RecordBatchHeader::parse(&buf)?.max_timestamp)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(LogError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_map_respects_its_budget() {
        let mut m = OffsetMap::with_memory(1024, 0.9);
        // 1024 / 25 = 40 slots -> 32 slots -> 28 entries by the table
        assert_eq!(m.capacity(), 28);
        for i in 0..28 {
            assert!(m.put(format!("k{i}").as_bytes(), i));
        }
        assert!(!m.put(b"new", 100));
        assert!(m.put(b"k3", 50), "existing keys update when full");
        assert_eq!(m.get(b"k3"), Some(50));
        assert_eq!(m.get(b"missing"), None);
        m.clear();
        assert!(m.is_empty());
        let big = OffsetMap::with_memory(128 * 1024 * 1024, 0.9);
        assert!(big.capacity() > 3_000_000);
        assert!(big.capacity() as u64 * OffsetMap::SLOT_BYTES <= 128 * 1024 * 1024);
    }

    #[test]
    fn groups_fit_a_segment_and_txn_indexed_segments_head_groups() {
        let seg = |base: i64, size: u64, txn: bool| SegmentInfo {
            base,
            next_offset: base + 10,
            size,
            max_timestamp: 0,
            path: PathBuf::new(),
            has_txn_index: txn,
        };
        let segs = [
            seg(0, 40, false),
            seg(10, 40, false),
            seg(20, 40, false),
            seg(30, 10, true),
            seg(40, 10, false),
        ];
        let groups: Vec<Vec<i64>> = group_segments(&segs, 100)
            .iter()
            .map(|g| g.iter().map(|s| s.base).collect())
            .collect();
        assert_eq!(groups, vec![vec![0, 10], vec![20], vec![30, 40]]);
    }

    #[test]
    fn segment_names_parse() {
        assert_eq!(
            parse_segment_name("00000000000000000042.log", "log"),
            Some(42)
        );
        assert_eq!(parse_segment_name("42.log", "log"), None);
        assert_eq!(
            parse_segment_name("00000000000000000042.index", "log"),
            None
        );
    }

    #[test]
    fn throttler_limits_rate() {
        let stop = AtomicBool::new(false);
        let mut t = Throttler::new(10_000_000.0);
        let start = Instant::now();
        for _ in 0..30 {
            t.maybe_throttle(100_000, &stop);
            thread::sleep(Duration::from_millis(5));
        }
        // 3 MB at 10 MB/s takes at least ~0.2 s once throttled.
        assert!(start.elapsed() >= Duration::from_millis(200));
        // Unlimited returns before any accounting (so before any sleep).
        let mut free = Throttler::new(f64::MAX);
        assert!(free.unlimited());
        free.maybe_throttle(u64::MAX / 2, &stop);
        assert_eq!(free.observed, 0.0);
    }
}
