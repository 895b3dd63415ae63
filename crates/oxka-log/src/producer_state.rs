//! Per-partition producer state (Kafka's ProducerStateManager): for every
//! producer id that wrote to the partition, its epoch, the sequence and
//! offset ranges of its last five batches and its open transaction.
//!
//! This is what makes an idempotent producer's retries safe: a retried
//! batch that is still cached is answered with its original offsets instead
//! of being appended twice, a batch that skips sequence numbers is refused
//! (OUT_OF_ORDER_SEQUENCE_NUMBER) and a batch from an older epoch is refused
//! (INVALID_PRODUCER_EPOCH). The open transactions give the last stable
//! offset, and completed aborted transactions feed the aborted-transaction
//! index.
//!
//! The state survives restarts through snapshot files
//! `<20-digit offset>.snapshot` in Kafka's format (version 1, CRC-32C),
//! written when a segment rolls and on clean shutdown; recovery loads the
//! newest snapshot not past the log end and replays the batches after it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError};
use crate::fileio::sync_dir;
use crate::record_batch::{decode_records, RecordBatchHeader};

/// Batches remembered per producer for duplicate detection; librdkafka and
/// the Java client keep at most five requests in flight per connection.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// File suffix of producer state snapshots.
pub const SNAPSHOT_SUFFIX: &str = "snapshot";
/// Snapshot files kept; older ones are deleted after each new snapshot.
const SNAPSHOTS_TO_KEEP: usize = 2;
/// Kafka's snapshot format version.
const SNAPSHOT_VERSION: i16 = 1;
/// Bytes of one producer entry in a snapshot.
const SNAPSHOT_ENTRY_SIZE: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
/// Bytes of the snapshot header: version, CRC, entry count.
const SNAPSHOT_HEADER_SIZE: usize = 2 + 4 + 4;

/// Where an append comes from; only clients' batches are checked for
/// sequence order, as in Kafka.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer through the Produce API.
    Client,
    /// The broker itself (coordinators, transaction markers).
    Coordinator,
    /// Replaying the log (recovery); nothing is refused.
    Replication,
}

/// Sequence and offset range of one appended batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Max timestamp of the batch.
    pub timestamp: i64,
}

/// What the partition knows about one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateEntry {
    /// The producer id.
    pub producer_id: i64,
    /// The newest epoch seen; -1 when unknown.
    pub producer_epoch: i16,
    /// The last batches, oldest first, at most [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// Epoch of the coordinator that wrote the last marker.
    pub coordinator_epoch: i32,
    /// Timestamp of the last write; drives `producer.id.expiration.ms`.
    pub last_timestamp: i64,
    /// First offset of the open transaction on this partition.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    fn empty(producer_id: i64) -> Self {
        ProducerStateEntry {
            producer_id,
            producer_epoch: -1,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
        }
    }

    /// Sequence of the newest batch, -1 when none is cached.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }

    fn maybe_update_epoch(&mut self, epoch: i16) {
        if self.producer_epoch != epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
        }
    }

    fn add_batch(&mut self, b: BatchMetadata) {
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(b);
        self.last_timestamp = b.timestamp;
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.producer_epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// A transaction whose marker was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// First offset of the transaction on this partition (the marker's
    /// offset when the transaction wrote nothing here).
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Whether it was aborted.
    pub is_aborted: bool,
}

/// The outcome of checking an append against the producer state.
#[derive(Debug)]
pub enum Checked {
    /// A retry of a batch already in the log: answer with its offsets.
    Duplicate(BatchMetadata),
    /// New data; apply with [`ProducerStateManager::apply`] once written.
    Update(PendingUpdate),
}

/// State changes of an append, applied only after the bytes are written.
#[derive(Debug, Default)]
pub struct PendingUpdate {
    entries: HashMap<i64, ProducerStateEntry>,
    completed: Vec<CompletedTxn>,
}

/// One batch as the producer state sees it: header plus assigned offsets.
pub struct BatchInfo<'a> {
    /// The batch header as received.
    pub header: &'a RecordBatchHeader,
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// The whole batch (for control batches' marker record).
    pub bytes: &'a [u8],
}

/// The sequence number `delta` records after `seq`, wrapping past
/// `i32::MAX` to 0 as producers do.
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// Decodes a control batch's marker: `Some(true)` for COMMIT, `Some(false)`
/// for ABORT, with the coordinator epoch from the value.
pub fn parse_marker(batch: &[u8]) -> Result<(bool, i32), LogError> {
    let records = decode_records(batch)?;
    let Some(r) = records.first() else {
        return Err(LogError::InvalidRecord("empty control batch".into()));
    };
    let key = r.key.as_deref().unwrap_or_default();
    if key.len() < 4 {
        return Err(LogError::InvalidRecord(
            "control record key too short".into(),
        ));
    }
    let kind = i16::from_be_bytes([key[2], key[3]]);
    let commit = match kind {
        0 => false,
        1 => true,
        other => {
            return Err(LogError::InvalidRecord(format!(
                "unknown control record type {other}"
            )))
        }
    };
    let value = r.value.as_deref().unwrap_or_default();
    let coordinator_epoch = if value.len() >= 6 {
        i32::from_be_bytes([value[2], value[3], value[4], value[5]])
    } else {
        -1
    };
    Ok((commit, coordinator_epoch))
}

/// The producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions by first offset, for the last stable offset.
    ongoing: BTreeMap<i64, i64>,
    /// Offset after the last batch applied.
    map_end_offset: i64,
}

impl ProducerStateManager {
    /// The state of one producer.
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer with state, for DescribeProducers.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }

    /// Producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// First offset of the earliest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Offset after the last batch the state covers.
    pub fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    /// Checks `batches` (in append order) and computes the state changes,
    /// refusing the whole append on the first bad batch.
    pub fn check(
        &self,
        batches: &[BatchInfo<'_>],
        origin: AppendOrigin,
    ) -> Result<Checked, LogError> {
        let mut update = PendingUpdate::default();
        for b in batches {
            let h = b.header;
            if h.producer_id < 0 {
                if h.is_transactional() || h.is_control() {
                    return Err(LogError::InvalidRecord(
                        "transactional or control batch without a producer id".into(),
                    ));
                }
                continue;
            }
            let last_offset = b.base_offset + i64::from(h.last_offset_delta);
            let entry = update.entries.entry(h.producer_id).or_insert_with(|| {
                self.producers
                    .get(&h.producer_id)
                    .cloned()
                    .unwrap_or_else(|| ProducerStateEntry::empty(h.producer_id))
            });
            if h.is_control() {
                if origin == AppendOrigin::Client {
                    return Err(LogError::InvalidRecord(
                        "clients may not write control batches".into(),
                    ));
                }
                let (commit, coordinator_epoch) = parse_marker(b.bytes)?;
                if origin != AppendOrigin::Replication {
                    if h.producer_epoch < entry.producer_epoch {
                        return Err(LogError::InvalidProducerEpoch(format!(
                            "marker epoch {} of producer {} is older than {}",
                            h.producer_epoch, h.producer_id, entry.producer_epoch
                        )));
                    }
                    if coordinator_epoch < entry.coordinator_epoch {
                        return Err(LogError::TransactionCoordinatorFenced(format!(
                            "marker from coordinator epoch {coordinator_epoch}, current {}",
                            entry.coordinator_epoch
                        )));
                    }
                }
                update.completed.push(CompletedTxn {
                    producer_id: h.producer_id,
                    first_offset: entry.current_txn_first_offset.unwrap_or(b.base_offset),
                    last_offset,
                    is_aborted: !commit,
                });
                entry.maybe_update_epoch(h.producer_epoch);
                entry.current_txn_first_offset = None;
                entry.coordinator_epoch = coordinator_epoch;
                entry.last_timestamp = h.max_timestamp;
                continue;
            }
            let last_seq = increment_sequence(h.base_sequence, h.last_offset_delta);
            if origin == AppendOrigin::Client {
                if let Some(dup) = entry.find_duplicate(h.producer_epoch, h.base_sequence, last_seq)
                {
                    return Ok(Checked::Duplicate(dup));
                }
                if h.producer_epoch < entry.producer_epoch {
                    return Err(LogError::InvalidProducerEpoch(format!(
                        "epoch {} of producer {} is older than the current epoch {}",
                        h.producer_epoch, h.producer_id, entry.producer_epoch
                    )));
                }
                Self::check_sequence(entry, h)?;
            }
            if h.is_transactional() {
                if entry.current_txn_first_offset.is_none() {
                    entry.current_txn_first_offset = Some(b.base_offset);
                }
            } else if entry.current_txn_first_offset.is_some()
                && origin != AppendOrigin::Replication
            {
                return Err(LogError::InvalidTxnState(format!(
                    "expected a transactional write from producer {}",
                    h.producer_id
                )));
            }
            entry.maybe_update_epoch(h.producer_epoch);
            entry.add_batch(BatchMetadata {
                first_seq: h.base_sequence,
                last_seq,
                first_offset: b.base_offset,
                last_offset,
                timestamp: h.max_timestamp,
            });
        }
        Ok(Checked::Update(update))
    }

    /// Kafka's `checkSequence` (4.x): a new epoch must start at 0 unless
    /// the producer is unknown; within an epoch the next batch must follow
    /// the last one. An unknown producer (its state expired or was never
    /// here) is accepted at any sequence, as KIP-360 brokers do.
    fn check_sequence(entry: &ProducerStateEntry, h: &RecordBatchHeader) -> Result<(), LogError> {
        if h.producer_epoch != entry.producer_epoch {
            if h.base_sequence != 0 && entry.producer_epoch != -1 {
                return Err(LogError::OutOfOrderSequence(format!(
                    "invalid sequence {} for new epoch {} of producer {} (current epoch {})",
                    h.base_sequence, h.producer_epoch, h.producer_id, entry.producer_epoch
                )));
            }
            return Ok(());
        }
        let last = entry.last_seq();
        if entry.batches.is_empty() || in_sequence(last, h.base_sequence) {
            return Ok(());
        }
        Err(LogError::OutOfOrderSequence(format!(
            "out of order sequence {} for producer {} (expected {})",
            h.base_sequence,
            h.producer_id,
            increment_sequence(last, 1)
        )))
    }

    /// Applies a checked append after its bytes were written; returns the
    /// transactions its markers completed.
    pub fn apply(&mut self, update: PendingUpdate, end_offset: i64) -> Vec<CompletedTxn> {
        for (pid, entry) in update.entries {
            if let Some(old) = self
                .producers
                .get(&pid)
                .and_then(|e| e.current_txn_first_offset)
            {
                if entry.current_txn_first_offset != Some(old) {
                    self.ongoing.remove(&old);
                }
            }
            if let Some(first) = entry.current_txn_first_offset {
                self.ongoing.insert(first, pid);
            }
            self.producers.insert(pid, entry);
        }
        self.map_end_offset = self.map_end_offset.max(end_offset);
        update.completed
    }

    /// The last stable offset right after `txn` completed: the first
    /// offset of the earliest transaction still open, else the offset
    /// after the marker (what Kafka stores in the aborted-txn index).
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, &pid)| pid != txn.producer_id)
            .map_or(txn.last_offset + 1, |(&o, _)| o)
    }

    /// Forgets producers idle for `expiration_ms` without an open
    /// transaction (`producer.id.expiration.ms`); returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Records that the state covers the log up to `end_offset`.
    pub fn set_end_offset(&mut self, end_offset: i64) {
        self.map_end_offset = end_offset;
    }

    /// Drops everything (before a rebuild).
    pub fn clear(&mut self, end_offset: i64) {
        self.producers.clear();
        self.ongoing.clear();
        self.map_end_offset = end_offset;
    }

    /// Kafka's snapshot bytes: version, CRC-32C of the rest, then one
    /// entry per producer carrying its newest batch.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        let mut body = Vec::with_capacity(4 + ids.len() * SNAPSHOT_ENTRY_SIZE);
        body.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let e = &self.producers[id];
            let (last_seq, last_offset, delta, ts) = match e.batches.back() {
                Some(b) => (
                    b.last_seq,
                    b.last_offset,
                    (b.last_offset - b.first_offset) as i32,
                    b.timestamp,
                ),
                None => (-1, -1, 0, e.last_timestamp),
            };
            body.extend_from_slice(&e.producer_id.to_be_bytes());
            body.extend_from_slice(&e.producer_epoch.to_be_bytes());
            body.extend_from_slice(&last_seq.to_be_bytes());
            body.extend_from_slice(&last_offset.to_be_bytes());
            body.extend_from_slice(&delta.to_be_bytes());
            body.extend_from_slice(&ts.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses snapshot bytes; `end_offset` is the offset the snapshot was
    /// taken at.
    pub fn from_snapshot_bytes(buf: &[u8], end_offset: i64) -> Result<Self, String> {
        if buf.len() < SNAPSHOT_HEADER_SIZE {
            return Err("truncated header".into());
        }
        let version = i16::from_be_bytes([buf[0], buf[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(format!("unsupported version {version}"));
        }
        let crc = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]);
        let body = &buf[6..];
        if crc32c::crc32c(body) != crc {
            return Err("CRC mismatch".into());
        }
        let count = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let count = usize::try_from(count).map_err(|_| "negative entry count".to_string())?;
        let entries = &body[4..];
        if entries.len() != count.saturating_mul(SNAPSHOT_ENTRY_SIZE) {
            return Err(format!("{} bytes for {count} entries", entries.len()));
        }
        let mut m = ProducerStateManager {
            map_end_offset: end_offset,
            ..Default::default()
        };
        for e in entries.chunks_exact(SNAPSHOT_ENTRY_SIZE) {
            let mut r = Reader(e);
            let producer_id = r.i64();
            let producer_epoch = r.i16();
            let last_seq = r.i32();
            let last_offset = r.i64();
            let delta = r.i32();
            let timestamp = r.i64();
            let coordinator_epoch = r.i32();
            let txn_first = r.i64();
            let mut entry = ProducerStateEntry::empty(producer_id);
            entry.producer_epoch = producer_epoch;
            entry.coordinator_epoch = coordinator_epoch;
            entry.last_timestamp = timestamp;
            if last_offset >= 0 && last_seq >= 0 {
                let first_seq = if last_seq >= delta {
                    last_seq - delta
                } else {
                    // the batch wrapped past i32::MAX
                    i32::MAX - (delta - last_seq) + 1
                };
                entry.batches.push_back(BatchMetadata {
                    first_seq,
                    last_seq,
                    first_offset: last_offset - i64::from(delta),
                    last_offset,
                    timestamp,
                });
            }
            if txn_first >= 0 {
                entry.current_txn_first_offset = Some(txn_first);
                m.ongoing.insert(txn_first, producer_id);
            }
            m.producers.insert(producer_id, entry);
        }
        Ok(m)
    }

    /// Writes `<map end offset>.snapshot` in `dir` (temp file, fsync,
    /// rename, fsync dir) and deletes all but the newest snapshots.
    pub fn write_snapshot(&self, dir: &Path) -> Result<(), LogError> {
        let path = snapshot_file(dir, self.map_end_offset);
        let tmp = dir.join(format!("{:020}.{SNAPSHOT_SUFFIX}.tmp", self.map_end_offset));
        {
            let mut f = fs::File::create(&tmp).ctx(&tmp)?;
            f.write_all(&self.snapshot_bytes()).ctx(&tmp)?;
            f.sync_all().ctx(&tmp)?;
        }
        fs::rename(&tmp, &path).ctx(&path)?;
        sync_dir(dir).ctx(dir)?;
        let offsets = list_snapshots(dir)?;
        let keep_from = offsets.len().saturating_sub(SNAPSHOTS_TO_KEEP);
        for &o in &offsets[..keep_from] {
            remove_if_exists(&snapshot_file(dir, o))?;
        }
        Ok(())
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        // callers read fixed-size entries whose length was checked
        a.copy_from_slice(&self.0[..N]);
        self.0 = &self.0[N..];
        a
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
}

/// `<dir>/<offset, 20 digits>.snapshot`.
pub fn snapshot_file(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_SUFFIX}"))
}

fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// Offsets of the snapshot files in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).ctx(dir)? {
        let entry = entry.ctx(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(&format!(".{SNAPSHOT_SUFFIX}")) else {
            continue;
        };
        if stem.len() != 20 {
            continue;
        }
        if let Ok(o) = stem.parse::<i64>() {
            out.push(o);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Loads the newest readable snapshot at or below `log_end`, deleting
/// snapshots past the log end (a truncated tail) and unreadable ones.
pub fn load_latest_snapshot(
    dir: &Path,
    log_end: i64,
) -> Result<Option<ProducerStateManager>, LogError> {
    let offsets = list_snapshots(dir)?;
    for &o in offsets.iter().rev() {
        let path = snapshot_file(dir, o);
        if o > log_end {
            tracing::info!(path = %path.display(), log_end, "removing producer snapshot past the log end");
            remove_if_exists(&path)?;
            continue;
        }
        let bytes = fs::read(&path).ctx(&path)?;
        match ProducerStateManager::from_snapshot_bytes(&bytes, o) {
            Ok(m) => return Ok(Some(m)),
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason, "removing unreadable producer snapshot");
                remove_if_exists(&path)?;
            }
        }
    }
    Ok(None)
}

/// Removes snapshots above `offset` (truncation).
pub fn delete_snapshots_after(dir: &Path, offset: i64) -> Result<(), LogError> {
    for o in list_snapshots(dir)? {
        if o > offset {
            remove_if_exists(&snapshot_file(dir, o))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::RecordBatchBuilder;

    fn header(pid: i64, epoch: i16, seq: i32, n: i32, txn: bool) -> RecordBatchHeader {
        let mut b = RecordBatchBuilder::new()
            .producer(pid, epoch, seq)
            .transactional(txn);
        for _ in 0..n {
            b = b.record(None, Some(b"v"), 1);
        }
        RecordBatchHeader::parse(&b.build()).unwrap()
    }

    fn append(
        m: &mut ProducerStateManager,
        h: &RecordBatchHeader,
        base: i64,
    ) -> Result<Option<BatchMetadata>, LogError> {
        let info = BatchInfo {
            header: h,
            base_offset: base,
            bytes: &[],
        };
        match m.check(&[info], AppendOrigin::Client)? {
            Checked::Duplicate(d) => Ok(Some(d)),
            Checked::Update(u) => {
                m.apply(u, base + i64::from(h.last_offset_delta) + 1);
                Ok(None)
            }
        }
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut m = ProducerStateManager::default();
        assert_eq!(append(&mut m, &header(7, 0, 0, 3, false), 0).unwrap(), None);
        assert_eq!(append(&mut m, &header(7, 0, 3, 2, false), 3).unwrap(), None);
        // the retry of either cached batch is a duplicate with its offsets
        let d = append(&mut m, &header(7, 0, 3, 2, false), 5)
            .unwrap()
            .unwrap();
        assert_eq!((d.first_offset, d.last_offset), (3, 4));
        let d = append(&mut m, &header(7, 0, 0, 3, false), 5)
            .unwrap()
            .unwrap();
        assert_eq!((d.first_offset, d.last_offset), (0, 2));
        // a gap
        assert!(matches!(
            append(&mut m, &header(7, 0, 9, 1, false), 5),
            Err(LogError::OutOfOrderSequence(_))
        ));
        // an overlap that is not an exact retry is out of order too
        assert!(matches!(
            append(&mut m, &header(7, 0, 4, 1, false), 5),
            Err(LogError::OutOfOrderSequence(_))
        ));
        // a new epoch must start at 0
        assert!(matches!(
            append(&mut m, &header(7, 1, 5, 1, false), 5),
            Err(LogError::OutOfOrderSequence(_))
        ));
        assert_eq!(append(&mut m, &header(7, 1, 0, 1, false), 5).unwrap(), None);
        // the old epoch is fenced
        assert!(matches!(
            append(&mut m, &header(7, 0, 5, 1, false), 6),
            Err(LogError::InvalidProducerEpoch(_))
        ));
        // an unknown producer is accepted at any sequence (KIP-360)
        assert_eq!(
            append(&mut m, &header(8, 3, 42, 1, false), 6).unwrap(),
            None
        );
        // only five batches are remembered
        for i in 0..6 {
            append(&mut m, &header(9, 0, i, 1, false), 10 + i64::from(i)).unwrap();
        }
        assert_eq!(append(&mut m, &header(9, 0, 0, 1, false), 20).ok(), None);
        assert!(append(&mut m, &header(9, 0, 1, 1, false), 20)
            .unwrap()
            .is_some());
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        let mut m = ProducerStateManager::default();
        append(&mut m, &header(1, 0, i32::MAX - 1, 2, false), 0).unwrap();
        assert_eq!(append(&mut m, &header(1, 0, 0, 1, false), 2).unwrap(), None);
    }

    #[test]
    fn transactions_and_lso() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &header(1, 0, 0, 2, true), 10).unwrap();
        append(&mut m, &header(2, 0, 0, 2, true), 12).unwrap();
        append(&mut m, &header(1, 0, 2, 2, true), 14).unwrap();
        assert_eq!(m.first_unstable_offset(), Some(10));
        // a non-transactional write inside a transaction
        assert!(matches!(
            append(&mut m, &header(1, 0, 4, 1, false), 16),
            Err(LogError::InvalidTxnState(_))
        ));
        let snap = m.snapshot_bytes();
        let back = ProducerStateManager::from_snapshot_bytes(&snap, 16).unwrap();
        assert_eq!(back.first_unstable_offset(), Some(10));
        assert_eq!(back.entry(1).unwrap().last_seq(), 3);
        assert_eq!(back.entry(1).unwrap().batches[0].first_offset, 14);
        let mut bad = snap.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(ProducerStateManager::from_snapshot_bytes(&bad, 16).is_err());
    }

    fn marker(pid: i64, epoch: i16, commit: bool) -> Vec<u8> {
        let key = [0u8, 0, 0, u8::from(commit)];
        let value = [0u8, 0, 0, 0, 0, 0];
        RecordBatchBuilder::new()
            .control(true)
            .transactional(true)
            .producer(pid, epoch, -1)
            .record(Some(&key), Some(&value), 1)
            .build()
            .to_vec()
    }

    fn append_marker(
        m: &mut ProducerStateManager,
        bytes: &[u8],
        base: i64,
    ) -> Result<Vec<CompletedTxn>, LogError> {
        let h = RecordBatchHeader::parse(bytes).unwrap();
        let info = BatchInfo {
            header: &h,
            base_offset: base,
            bytes,
        };
        match m.check(&[info], AppendOrigin::Coordinator)? {
            Checked::Update(u) => Ok(m.apply(u, base + 1)),
            Checked::Duplicate(_) => panic!("a marker is never a duplicate"),
        }
    }

    /// Transaction version 2 (KIP-890 part 2): the coordinator writes the
    /// markers of a transaction at epoch + 1 and the next transaction runs
    /// at that epoch with sequences from 0; whatever the ended transaction
    /// still had in flight (its epoch) is fenced.
    #[test]
    fn a_marker_at_a_bumped_epoch_fences_the_ended_transaction() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &header(5, 3, 0, 2, true), 0).unwrap();
        append(&mut m, &header(5, 3, 2, 2, true), 2).unwrap();
        assert_eq!(m.first_unstable_offset(), Some(0));
        let done = append_marker(&mut m, &marker(5, 4, true), 4).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].first_offset, done[0].is_aborted), (0, false));
        assert_eq!(m.first_unstable_offset(), None);
        assert_eq!(m.entry(5).unwrap().producer_epoch, 4);
        // a late batch of the ended transaction, even its exact retry
        assert!(matches!(
            append(&mut m, &header(5, 3, 4, 1, true), 5),
            Err(LogError::InvalidProducerEpoch(_))
        ));
        assert!(matches!(
            append(&mut m, &header(5, 3, 2, 2, true), 5),
            Err(LogError::InvalidProducerEpoch(_))
        ));
        // the next transaction, at the marker's epoch, from sequence 0
        assert_eq!(append(&mut m, &header(5, 4, 0, 1, true), 5).unwrap(), None);
        assert_eq!(m.first_unstable_offset(), Some(5));
        // a marker older than the producer's epoch is refused
        assert!(matches!(
            append_marker(&mut m, &marker(5, 3, false), 6),
            Err(LogError::InvalidProducerEpoch(_))
        ));
        // the epoch no client is given (a rollover's last markers)
        assert_eq!(
            append_marker(&mut m, &marker(5, i16::MAX, true), 6)
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            append(&mut m, &header(5, 4, 1, 1, true), 7),
            Err(LogError::InvalidProducerEpoch(_))
        ));
    }

    #[test]
    fn expiry_keeps_open_transactions() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &header(1, 0, 0, 1, false), 0).unwrap();
        append(&mut m, &header(2, 0, 0, 1, true), 1).unwrap();
        assert_eq!(m.remove_expired(1_000, 10), 1);
        assert!(m.entry(1).is_none() && m.entry(2).is_some());
    }
}
