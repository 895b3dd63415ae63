//! The leader epoch cache of one partition (Kafka's `LeaderEpochFileCache`,
//! KIP-101, refined by KIP-279): for every leader epoch that wrote to the
//! log, the offset of its first record.
//!
//! A follower uses it to find where its log diverges from a new leader's
//! (OffsetForLeaderEpoch: "where does epoch E end on your log?") instead of
//! truncating to its high watermark, which could lose or mismatch records
//! after a leader change (KIP-101). KIP-279 made the answer the largest
//! epoch not above the requested one, so that two replicas whose epoch
//! histories differ still converge in a few round trips.
//!
//! The entries live in `leader-epoch-checkpoint` in the partition directory,
//! in Kafka's text checkpoint format, so the file is interchangeable with
//! Kafka's:
//!
//! ```text
//! 0          <- version
//! 2          <- number of entries
//! 0 0        <- epoch, start offset
//! 3 120
//! ```
//!
//! Every change rewrites the file atomically (temporary file, fsync,
//! rename, directory fsync). Changes are rare: a new epoch, a truncation,
//! a raised log start offset.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError};
use crate::fileio::sync_dir;

/// Name of the checkpoint file in the partition directory (Kafka's).
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Version of Kafka's checkpoint file format (the first line).
const CHECKPOINT_VERSION: i32 = 0;

/// One entry: `epoch` wrote its first record at `start_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// Offset of the first record written in that epoch.
    pub start_offset: i64,
}

/// A partition's leader epochs and their start offsets, both strictly
/// increasing, mirrored in `leader-epoch-checkpoint`.
///
/// Mutations compute the new entries, write them, and only then replace
/// the entries in memory: a failed write leaves the cache as it was (the
/// file holds either the old or the new entries; the log trims it to its
/// own end and start when it is next opened).
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// An empty cache for the partition directory `dir`; nothing is
    /// written until the first change.
    pub fn empty(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache {
            path: dir.join(LEADER_EPOCH_CHECKPOINT_FILE),
            entries: Vec::new(),
        }
    }

    /// Reads `dir`'s checkpoint. `Ok(None)` when the file is missing or
    /// cannot be parsed (or its entries are not strictly increasing): the
    /// caller then rebuilds the cache from the log's batches. I/O errors
    /// other than a missing file are errors.
    pub fn load(dir: &Path) -> Result<Option<LeaderEpochCache>, LogError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let text = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let parsed = std::str::from_utf8(&text)
            .map_err(|e| e.to_string())
            .and_then(parse_checkpoint);
        match parsed {
            Ok(entries) => Ok(Some(LeaderEpochCache { path, entries })),
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason, "unreadable leader epoch checkpoint; rebuilding it from the log");
                Ok(None)
            }
        }
    }

    /// A cache holding `entries` (which must be strictly increasing in
    /// both epoch and start offset), written to `dir` at once.
    pub fn create(dir: &Path, entries: Vec<EpochEntry>) -> Result<LeaderEpochCache, LogError> {
        check_monotonic(&entries).map_err(|reason| LogError::MalformedFile {
            path: dir.join(LEADER_EPOCH_CHECKPOINT_FILE),
            reason,
        })?;
        let mut cache = LeaderEpochCache::empty(dir);
        cache.replace(entries)?;
        Ok(cache)
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries, oldest epoch first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// Whether no epoch is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The newest epoch that wrote to the log (or was assigned by a new
    /// leader), if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The newest entry.
    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`; returns whether the
    /// entries changed (and the file was rewritten).
    ///
    /// Only an epoch newer than the latest one is recorded; anything else
    /// (an older or the same epoch, whatever its offset, or a negative
    /// epoch or offset, which old message formats carry) changes nothing.
    /// Before the new entry is added, entries starting at or after
    /// `start_offset` are removed, as Kafka's assign removes conflicting
    /// entries: an epoch that started at an offset the new epoch now starts
    /// at (or before) never wrote anything that survived. (Kafka would also
    /// rewrite the tail for an older epoch or for the same epoch at a
    /// lower offset; epochs only grow in every caller here, and
    /// truncations remove the entries past the new log end first.)
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<bool, LogError> {
        let mut entries = self.entries.clone();
        if !assign_to(&mut entries, epoch, start_offset) {
            return Ok(false);
        }
        self.replace(entries)?;
        Ok(true)
    }

    /// KIP-101/KIP-279's OffsetForLeaderEpoch answer: the largest epoch not
    /// above `requested_epoch` and the offset where it ended, i.e. the
    /// start offset of the first epoch after `requested_epoch`, or
    /// `log_end_offset` when `requested_epoch` is the latest epoch.
    ///
    /// * the latest epoch: `(latest, log_end_offset)`;
    /// * between known epochs: `(largest epoch <= requested, start offset
    ///   of the first epoch > requested)`;
    /// * below the first known epoch (its records were removed, e.g. by
    ///   retention): `(requested_epoch, start offset of the first epoch)`.
    ///   This is what Kafka answers since KIP-279 (its
    ///   `LeaderEpochFileCache.endOffsetFor`): the follower truncates to
    ///   at most the leader's earliest epoch start and replicates from
    ///   there. Answering UNDEFINED instead would make a consumer
    ///   validating its position (KIP-320) after retention report a
    ///   truncation that did not happen;
    /// * `None` (UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET, -1/-1 on the
    ///   wire) when the cache is empty, the requested epoch is negative
    ///   (UNDEFINED) or above the latest epoch.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let latest = self.entries.last()?;
        if requested_epoch < 0 || requested_epoch > latest.epoch {
            return None;
        }
        if requested_epoch == latest.epoch {
            return Some((latest.epoch, log_end_offset));
        }
        // The first entry with an epoch above the requested one exists:
        // the latest epoch is above it.
        let higher = self.entries.partition_point(|e| e.epoch <= requested_epoch);
        let end = self.entries[higher].start_offset;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].epoch, end)),
            None => Some((requested_epoch, end)),
        }
    }

    /// Removes the entries starting at or after `end_offset` (the log was
    /// truncated to end there: those epochs' records are gone).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        if keep == self.entries.len() {
            return Ok(());
        }
        self.replace(self.entries[..keep].to_vec())
    }

    /// The log now starts at `start_offset`: entries of epochs whose
    /// successor starts at or before it are removed and the epoch holding
    /// `start_offset` is moved to start there (Kafka's `truncateFromStart`,
    /// which keeps an entry starting exactly at `start_offset`).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LogError> {
        let at_or_below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(holder) = at_or_below.checked_sub(1) else {
            return Ok(());
        };
        if holder == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(self.entries.len() - holder);
        entries.push(EpochEntry {
            epoch: self.entries[holder].epoch,
            start_offset,
        });
        entries.extend_from_slice(&self.entries[holder + 1..]);
        self.replace(entries)
    }

    /// Removes every entry (the log was emptied and restarted).
    pub fn clear(&mut self) -> Result<(), LogError> {
        self.replace(Vec::new())
    }

    /// Points the cache at a renamed partition directory.
    pub(crate) fn relocate(&mut self, dir: &Path) {
        self.path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
    }

    /// Writes `entries` to the checkpoint file, then adopts them.
    fn replace(&mut self, entries: Vec<EpochEntry>) -> Result<(), LogError> {
        write_checkpoint(&self.path, &entries)?;
        self.entries = entries;
        Ok(())
    }
}

/// [`LeaderEpochCache::assign`] on a list in memory; returns whether it
/// changed (used to rebuild a cache from the log without a write per batch).
pub(crate) fn assign_to(entries: &mut Vec<EpochEntry>, epoch: i32, start_offset: i64) -> bool {
    if epoch < 0 || start_offset < 0 {
        return false;
    }
    if entries.last().is_some_and(|l| epoch <= l.epoch) {
        return false;
    }
    let keep = entries.partition_point(|e| e.start_offset < start_offset);
    if keep < entries.len() {
        tracing::debug!(
            epoch,
            start_offset,
            removed = ?&entries[keep..],
            "new leader epoch replaces epochs that started at or after its start offset"
        );
        entries.truncate(keep);
    }
    entries.push(EpochEntry {
        epoch,
        start_offset,
    });
    true
}

/// The checkpoint file's text: version, entry count, one `epoch offset`
/// line per entry, each line ending in `\n` (Kafka's `CheckpointFile`).
pub fn checkpoint_text(entries: &[EpochEntry]) -> String {
    let mut out = format!("{CHECKPOINT_VERSION}\n{}\n", entries.len());
    for e in entries {
        out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    out
}

/// Parses a checkpoint file's text; the entries must be strictly
/// increasing in epoch and start offset.
pub fn parse_checkpoint(text: &str) -> Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    let version = lines.next().ok_or("empty file")?.trim();
    if version != CHECKPOINT_VERSION.to_string() {
        return Err(format!("unsupported version {version:?}"));
    }
    let count: usize = lines
        .next()
        .ok_or("missing entry count")?
        .trim()
        .parse()
        .map_err(|e| format!("bad entry count: {e}"))?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for line in lines.by_ref().take(count) {
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(offset), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("malformed entry {line:?}"));
        };
        let epoch: i32 = epoch
            .parse()
            .map_err(|e| format!("bad epoch in {line:?}: {e}"))?;
        let start_offset: i64 = offset
            .parse()
            .map_err(|e| format!("bad offset in {line:?}: {e}"))?;
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if entries.len() != count {
        return Err(format!("{} entries, {count} expected", entries.len()));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("data after the last entry".into());
    }
    check_monotonic(&entries)?;
    Ok(entries)
}

fn check_monotonic(entries: &[EpochEntry]) -> Result<(), String> {
    if entries.iter().any(|e| e.epoch < 0 || e.start_offset < 0) {
        return Err("negative epoch or offset".into());
    }
    for w in entries.windows(2) {
        if w[1].epoch <= w[0].epoch || w[1].start_offset <= w[0].start_offset {
            return Err(format!(
                "entries not strictly increasing: {:?} then {:?}",
                w[0], w[1]
            ));
        }
    }
    Ok(())
}

/// Writes the checkpoint atomically: a temporary file, synced, renamed over
/// the old one, then the directory synced.
fn write_checkpoint(path: &Path, entries: &[EpochEntry]) -> Result<(), LogError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp).ctx(&tmp)?;
        f.write_all(checkpoint_text(entries).as_bytes()).ctx(&tmp)?;
        f.sync_all().ctx(&tmp)?;
    }
    fs::rename(&tmp, path).ctx(path)?;
    sync_dir(dir).ctx(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }

    fn cache(dir: &Path, entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::create(dir, entries.iter().map(|&(a, b)| e(a, b)).collect()).unwrap()
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn checkpoint_is_kafkas_format_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), &[(0, 0), (1, 100), (3, 250)]);
        let bytes = fs::read(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(bytes, b"0\n3\n0 0\n1 100\n3 250\n");
        let back = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.entries(), c.entries());
        // no temporary file is left behind
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut empty = LeaderEpochCache::empty(dir.path());
        empty.clear().unwrap();
        let bytes = fs::read(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(bytes, b"0\n0\n");
        assert!(LeaderEpochCache::load(dir.path())
            .unwrap()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn missing_or_corrupt_checkpoints_load_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LeaderEpochCache::load(dir.path()).unwrap().is_none());
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
        for bad in [
            &b""[..],
            b"1\n0\n",
            b"0\n2\n0 0\n",
            b"0\n1\n0 0 7\n",
            b"0\n1\nx 0\n",
            b"0\n2\n1 0\n1 5\n",
            b"0\n2\n1 5\n2 5\n",
            b"0\n1\n0 0\n1 5\n",
            b"0\n1\n-1 0\n",
            b"\xff\n",
        ] {
            fs::write(&path, bad).unwrap();
            assert!(
                LeaderEpochCache::load(dir.path()).unwrap().is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Kafka's parser splits on any whitespace
        fs::write(&path, "0\n2\n0  0\n4\t9\n").unwrap();
        let c = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(pairs(&c), vec![(0, 0), (4, 9)]);
    }

    #[test]
    fn assign_only_moves_forward_and_drops_conflicting_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::empty(dir.path());
        assert_eq!(c.latest_epoch(), None);
        assert!(c.assign(2, 10).unwrap());
        assert!(c.assign(3, 20).unwrap());
        // older, equal or undefined epochs change nothing
        assert!(!c.assign(3, 25).unwrap());
        assert!(!c.assign(3, 15).unwrap());
        assert!(!c.assign(1, 30).unwrap());
        assert!(!c.assign(-1, 40).unwrap());
        assert!(!c.assign(9, -1).unwrap());
        assert_eq!(pairs(&c), vec![(2, 10), (3, 20)]);
        // a new epoch at an offset an earlier epoch started at or after
        // replaces those entries
        assert!(c.assign(5, 20).unwrap());
        assert_eq!(pairs(&c), vec![(2, 10), (5, 20)]);
        assert!(c.assign(6, 5).unwrap());
        assert_eq!(pairs(&c), vec![(6, 5)]);
        assert_eq!(c.latest_epoch(), Some(6));
        let back = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(pairs(&back), vec![(6, 5)]);
    }

    #[test]
    fn end_offset_for_follows_kip_279() {
        let dir = tempfile::tempdir().unwrap();
        let empty = LeaderEpochCache::empty(dir.path());
        assert_eq!(empty.end_offset_for(0, 10), None);

        let c = cache(dir.path(), &[(1, 10), (2, 20), (5, 50)]);
        // the latest epoch ends at the log end
        assert_eq!(c.end_offset_for(5, 77), Some((5, 77)));
        // a middle epoch ends where the next one starts
        assert_eq!(c.end_offset_for(1, 77), Some((1, 20)));
        assert_eq!(c.end_offset_for(2, 77), Some((2, 50)));
        // an epoch the log never saw: the largest one below it, ending
        // where the next known one starts
        assert_eq!(c.end_offset_for(3, 77), Some((2, 50)));
        assert_eq!(c.end_offset_for(4, 77), Some((2, 50)));
        // below the first epoch: the requested epoch, ending where the
        // first known epoch starts (Kafka since KIP-279)
        assert_eq!(c.end_offset_for(0, 77), Some((0, 10)));
        // undefined and future epochs
        assert_eq!(c.end_offset_for(-1, 77), None);
        assert_eq!(c.end_offset_for(6, 77), None);
    }

    #[test]
    fn truncation_from_either_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cache(dir.path(), &[(1, 10), (2, 20), (5, 50), (7, 70)]);
        c.truncate_from_end(71).unwrap();
        assert_eq!(c.entries().len(), 4);
        c.truncate_from_end(70).unwrap();
        assert_eq!(pairs(&c), vec![(1, 10), (2, 20), (5, 50)]);
        c.truncate_from_end(45).unwrap();
        assert_eq!(pairs(&c), vec![(1, 10), (2, 20)]);

        let mut c = cache(dir.path(), &[(1, 10), (2, 20), (5, 50), (7, 70)]);
        // below every entry: nothing to do
        c.truncate_from_start(5).unwrap();
        assert_eq!(c.entries().len(), 4);
        // exactly at the first entry: kept as is
        c.truncate_from_start(10).unwrap();
        assert_eq!(c.entries().len(), 4);
        // inside epoch 2: epoch 1 goes, epoch 2 now starts at 30
        c.truncate_from_start(30).unwrap();
        assert_eq!(pairs(&c), vec![(2, 30), (5, 50), (7, 70)]);
        // exactly at an entry: the ones before it go, it stays
        c.truncate_from_start(50).unwrap();
        assert_eq!(pairs(&c), vec![(5, 50), (7, 70)]);
        // past the last entry
        c.truncate_from_start(90).unwrap();
        assert_eq!(pairs(&c), vec![(7, 90)]);
        let back = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(pairs(&back), vec![(7, 90)]);
        c.clear().unwrap();
        assert!(c.is_empty());
        assert!(LeaderEpochCache::load(dir.path())
            .unwrap()
            .unwrap()
            .is_empty());
    }
}
