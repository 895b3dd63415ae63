//! The aborted-transaction index (Kafka's TransactionIndex): one
//! `<segment base>.txnindex` file per segment holding an entry per aborted
//! transaction whose ABORT marker lies in that segment, so read_committed
//! fetches learn which producers' records to drop without scanning the log.
//!
//! Entry format (34 bytes, big-endian, Kafka's): version i16 (0),
//! producer id i64, first offset i64, last offset i64, last stable offset
//! i64. The entries are small and few, so all of them are kept in memory
//! too; files are append-only and only read at open.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError};

/// Suffix of the index files.
pub const TXN_INDEX_SUFFIX: &str = "txnindex";
const ENTRY_SIZE: usize = 34;
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction on one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose records are aborted.
    pub producer_id: i64,
    /// First offset of the transaction on the partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// The last stable offset when the marker was written.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| -> Option<i64> {
            b.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map(i64::from_be_bytes)
        };
        Some(AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

/// The aborted transactions of one log, by the base offset of the segment
/// whose index holds them.
#[derive(Debug, Default)]
pub struct TxnIndexes {
    by_segment: BTreeMap<i64, Vec<AbortedTxn>>,
}

fn index_file(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.{TXN_INDEX_SUFFIX}"))
}

impl TxnIndexes {
    /// Reads the index files of the segments in `bases`; removes index
    /// files of segments that no longer exist and ignores a torn last
    /// entry.
    pub fn load(dir: &Path, bases: &[i64]) -> Result<TxnIndexes, LogError> {
        let mut out = TxnIndexes::default();
        for entry in fs::read_dir(dir).ctx(dir)? {
            let entry = entry.ctx(dir)?;
            let name = entry.file_name();
            let Some(stem) = name
                .to_str()
                .and_then(|n| n.strip_suffix(&format!(".{TXN_INDEX_SUFFIX}")))
            else {
                continue;
            };
            let Ok(base) = stem.parse::<i64>() else {
                continue;
            };
            let path = entry.path();
            if stem.len() != 20 || bases.binary_search(&base).is_err() {
                tracing::info!(path = %path.display(), "removing txn index without a segment");
                fs::remove_file(&path).ctx(&path)?;
                continue;
            }
            let bytes = fs::read(&path).ctx(&path)?;
            let entries: Vec<AbortedTxn> = bytes
                .chunks_exact(ENTRY_SIZE)
                .filter_map(AbortedTxn::decode)
                .collect();
            if !entries.is_empty() {
                out.by_segment.insert(base, entries);
            }
        }
        Ok(out)
    }

    /// Whether an entry for this marker is already indexed (replay after
    /// a crash may meet markers indexed before it).
    pub fn contains(&self, producer_id: i64, last_offset: i64) -> bool {
        self.by_segment
            .values()
            .flatten()
            .any(|t| t.producer_id == producer_id && t.last_offset == last_offset)
    }

    /// Appends `txn` to the index of the segment based at `segment_base`.
    pub fn append(
        &mut self,
        dir: &Path,
        segment_base: i64,
        txn: AbortedTxn,
    ) -> Result<(), LogError> {
        let path = index_file(dir, segment_base);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ctx(&path)?;
        f.write_all(&txn.encode()).ctx(&path)?;
        self.by_segment.entry(segment_base).or_default().push(txn);
        Ok(())
    }

    /// Aborted transactions overlapping `[start, upper)`, in marker order.
    pub fn collect(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        self.by_segment
            .values()
            .flatten()
            .filter(|t| t.last_offset >= start && t.first_offset < upper)
            .copied()
            .collect()
    }

    /// Forgets (and deletes the files of) segments not in `live`, which
    /// retention or truncation removed.
    pub fn retain_segments(&mut self, dir: &Path, live: &[i64]) -> Result<(), LogError> {
        let gone: Vec<i64> = self
            .by_segment
            .keys()
            .copied()
            .filter(|b| live.binary_search(b).is_err())
            .collect();
        for base in gone {
            self.by_segment.remove(&base);
            let path = index_file(dir, base);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Drops entries whose marker is at or past `offset` (the log was
    /// truncated there); rewrites the affected files.
    pub fn truncate_to(&mut self, dir: &Path, offset: i64) -> Result<(), LogError> {
        for (&base, entries) in self.by_segment.iter_mut() {
            let before = entries.len();
            entries.retain(|t| t.last_offset < offset);
            if entries.len() == before {
                continue;
            }
            let path = index_file(dir, base);
            let bytes: Vec<u8> = entries.iter().flat_map(|t| t.encode()).collect();
            fs::write(&path, bytes).ctx(&path)?;
        }
        self.by_segment.retain(|_, e| !e.is_empty());
        Ok(())
    }

    /// Number of aborted transactions indexed.
    pub fn len(&self) -> usize {
        self.by_segment.values().map(Vec::len).sum()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_segment.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = TxnIndexes::default();
        let t = |pid, f, l| AbortedTxn {
            producer_id: pid,
            first_offset: f,
            last_offset: l,
            last_stable_offset: l + 1,
        };
        ix.append(dir.path(), 0, t(1, 0, 5)).unwrap();
        ix.append(dir.path(), 10, t(2, 8, 12)).unwrap();
        ix.append(dir.path(), 10, t(3, 13, 14)).unwrap();
        assert_eq!(ix.collect(6, 13).len(), 1);
        assert_eq!(ix.collect(0, 100).len(), 3);
        // a torn entry is ignored; the index of a vanished segment removed
        let path = index_file(dir.path(), 10);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0, 0, 1]);
        fs::write(&path, bytes).unwrap();
        let back = TxnIndexes::load(dir.path(), &[10]).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.contains(3, 14));
        assert!(!index_file(dir.path(), 0).exists());
        let mut back = back;
        back.truncate_to(dir.path(), 14).unwrap();
        assert_eq!(TxnIndexes::load(dir.path(), &[10]).unwrap().len(), 1);
    }
}
