//! Kafka's sparse offset and time indexes (`.index`, `.timeindex`).
//!
//! Entries are kept in memory and appended to the file with plain writes;
//! the file is never preallocated, so its length is always a whole number
//! of entries unless a crash tore the last write, which the loader detects.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError};
use crate::fileio::{read_exact_at, write_all_at};
use crate::open_files::LazyFile;

/// Bytes per offset index entry: relative offset u32, position u32.
pub const OFFSET_INDEX_ENTRY_SIZE: usize = 8;
/// Bytes per time index entry: timestamp i64, relative offset u32.
pub const TIME_INDEX_ENTRY_SIZE: usize = 12;

fn open_rw(path: &Path, truncate: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .ctx(path)
}

fn read_all(file: &File, path: &Path) -> Result<Vec<u8>, LogError> {
    let len = file.metadata().ctx(path)?.len();
    let len = usize::try_from(len)
        .map_err(|_| LogError::CorruptRecord(format!("{} is too large", path.display())))?;
    let mut buf = vec![0u8; len];
    read_exact_at(file, &mut buf, 0).ctx(path)?;
    Ok(buf)
}

/// Maps an offset to the file position of a batch at or before it.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    path: PathBuf,
    /// Open only while in use (see `open_files`); the entries are in memory.
    file: LazyFile,
    base_offset: i64,
    /// (relative offset of a batch's last record, file position of the batch)
    entries: Vec<(u32, u32)>,
    max_entries: usize,
}

impl OffsetIndex {
    /// Creates an empty index, discarding any file at `path`.
    pub fn create(path: &Path, base_offset: i64, max_index_size: u32) -> Result<Self, LogError> {
        let file = LazyFile::from_open(path, open_rw(path, true)?);
        Ok(OffsetIndex {
            path: path.to_path_buf(),
            file,
            base_offset,
            entries: Vec::new(),
            max_entries: (max_index_size as usize / OFFSET_INDEX_ENTRY_SIZE).max(1),
        })
    }

    /// Loads an existing index; `None` when the file is missing or not a
    /// plausible index for a log of `log_size` bytes, so the caller rebuilds it.
    pub fn load(
        path: &Path,
        base_offset: i64,
        max_index_size: u32,
        log_size: u64,
    ) -> Result<Option<Self>, LogError> {
        if !path.exists() {
            return Ok(None);
        }
        let raw = read_all(&open_rw(path, false)?, path)?;
        let file = LazyFile::closed(path);
        if raw.len() % OFFSET_INDEX_ENTRY_SIZE != 0 {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(raw.len() / OFFSET_INDEX_ENTRY_SIZE);
        for chunk in raw.chunks_exact(OFFSET_INDEX_ENTRY_SIZE) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if let Some(&(prev_rel, prev_pos)) = entries.last() {
                if rel <= prev_rel || pos <= prev_pos {
                    return Ok(None);
                }
            }
            if u64::from(pos) >= log_size || rel > i32::MAX as u32 {
                return Ok(None);
            }
            entries.push((rel, pos));
        }
        Ok(Some(OffsetIndex {
            path: path.to_path_buf(),
            file,
            base_offset,
            entries,
            max_entries: (max_index_size as usize / OFFSET_INDEX_ENTRY_SIZE).max(1),
        }))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The largest entry whose offset is <= `target`, as (offset, position);
    /// (base offset, 0) when every entry is larger.
    pub fn lookup(&self, target: i64) -> (i64, u32) {
        let idx = self
            .entries
            .partition_point(|&(rel, _)| self.base_offset + i64::from(rel) <= target);
        match idx {
            0 => (self.base_offset, 0),
            i => {
                let (rel, pos) = self.entries[i - 1];
                (self.base_offset + i64::from(rel), pos)
            }
        }
    }

    pub fn last_entry(&self) -> (i64, u32) {
        match self.entries.last() {
            Some(&(rel, pos)) => (self.base_offset + i64::from(rel), pos),
            None => (self.base_offset, 0),
        }
    }

    /// Adds an entry; a full index or a non-increasing entry is skipped,
    /// which keeps the index correct, only sparser.
    pub fn append(&mut self, offset: i64, position: u32) -> Result<(), LogError> {
        if self.is_full() {
            return Ok(());
        }
        let rel = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&rel) {
            return Ok(());
        }
        let rel = rel as u32;
        if let Some(&(prev_rel, prev_pos)) = self.entries.last() {
            if rel <= prev_rel || position <= prev_pos {
                return Ok(());
            }
        }
        let mut buf = [0u8; OFFSET_INDEX_ENTRY_SIZE];
        buf[..4].copy_from_slice(&rel.to_be_bytes());
        buf[4..].copy_from_slice(&position.to_be_bytes());
        let at = (self.entries.len() * OFFSET_INDEX_ENTRY_SIZE) as u64;
        write_all_at(&*self.file.get().ctx(&self.path)?, &buf, at).ctx(&self.path)?;
        self.entries.push((rel, position));
        Ok(())
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let keep = self
            .entries
            .partition_point(|&(rel, _)| self.base_offset + i64::from(rel) < offset);
        self.entries.truncate(keep);
        self.file
            .get()
            .and_then(|f| f.set_len((keep * OFFSET_INDEX_ENTRY_SIZE) as u64))
            .ctx(&self.path)
    }

    pub fn flush(&self) -> Result<(), LogError> {
        self.file.get().and_then(|f| f.sync_data()).ctx(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn set_path(&mut self, path: PathBuf) {
        self.file.set_path(path.clone());
        self.path = path;
    }

    /// Closes the file until the next write (a rolled segment's index).
    pub fn close(&self) {
        self.file.close();
    }
}

/// Maps a timestamp to an offset at or before the first record with that
/// timestamp or later.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    path: PathBuf,
    /// Open only while in use (see `open_files`); the entries are in memory.
    file: LazyFile,
    base_offset: i64,
    /// (max timestamp seen so far, relative offset of the batch that first had it)
    entries: Vec<(i64, u32)>,
    max_entries: usize,
}

impl TimeIndex {
    pub fn create(path: &Path, base_offset: i64, max_index_size: u32) -> Result<Self, LogError> {
        let file = LazyFile::from_open(path, open_rw(path, true)?);
        Ok(TimeIndex {
            path: path.to_path_buf(),
            file,
            base_offset,
            entries: Vec::new(),
            max_entries: (max_index_size as usize / TIME_INDEX_ENTRY_SIZE).max(1),
        })
    }

    /// Loads an existing index; `None` when it must be rebuilt.
    pub fn load(
        path: &Path,
        base_offset: i64,
        max_index_size: u32,
    ) -> Result<Option<Self>, LogError> {
        if !path.exists() {
            return Ok(None);
        }
        let raw = read_all(&open_rw(path, false)?, path)?;
        let file = LazyFile::closed(path);
        if raw.len() % TIME_INDEX_ENTRY_SIZE != 0 {
            return Ok(None);
        }
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(raw.len() / TIME_INDEX_ENTRY_SIZE);
        for chunk in raw.chunks_exact(TIME_INDEX_ENTRY_SIZE) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if let Some(&(prev_ts, prev_rel)) = entries.last() {
                if ts <= prev_ts || rel < prev_rel {
                    return Ok(None);
                }
            }
            if rel > i32::MAX as u32 {
                return Ok(None);
            }
            entries.push((ts, rel));
        }
        Ok(Some(TimeIndex {
            path: path.to_path_buf(),
            file,
            base_offset,
            entries,
            max_entries: (max_index_size as usize / TIME_INDEX_ENTRY_SIZE).max(1),
        }))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Last entry as (timestamp, offset).
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(ts, rel)| (ts, self.base_offset + i64::from(rel)))
    }

    /// The largest entry with timestamp <= `ts` as (timestamp, offset);
    /// (-1, base offset) when there is none.
    pub fn lookup(&self, ts: i64) -> (i64, i64) {
        let idx = self.entries.partition_point(|&(t, _)| t <= ts);
        match idx {
            0 => (-1, self.base_offset),
            i => {
                let (t, rel) = self.entries[i - 1];
                (t, self.base_offset + i64::from(rel))
            }
        }
    }

    /// Adds an entry if `ts` is newer than the last one. `force` ignores the
    /// size limit, for the final entry written when a segment is sealed.
    pub fn maybe_append(&mut self, ts: i64, offset: i64, force: bool) -> Result<(), LogError> {
        if self.is_full() && !force {
            return Ok(());
        }
        let rel = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&rel) {
            return Ok(());
        }
        let rel = rel as u32;
        if let Some(&(prev_ts, prev_rel)) = self.entries.last() {
            if ts <= prev_ts || rel < prev_rel {
                return Ok(());
            }
        }
        let mut buf = [0u8; TIME_INDEX_ENTRY_SIZE];
        buf[..8].copy_from_slice(&ts.to_be_bytes());
        buf[8..].copy_from_slice(&rel.to_be_bytes());
        let at = (self.entries.len() * TIME_INDEX_ENTRY_SIZE) as u64;
        write_all_at(&*self.file.get().ctx(&self.path)?, &buf, at).ctx(&self.path)?;
        self.entries.push((ts, rel));
        Ok(())
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let keep = self
            .entries
            .iter()
            .position(|&(_, rel)| self.base_offset + i64::from(rel) >= offset)
            .unwrap_or(self.entries.len());
        self.entries.truncate(keep);
        self.file
            .get()
            .and_then(|f| f.set_len((keep * TIME_INDEX_ENTRY_SIZE) as u64))
            .ctx(&self.path)
    }

    pub fn flush(&self) -> Result<(), LogError> {
        self.file.get().and_then(|f| f.sync_data()).ctx(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn set_path(&mut self, path: PathBuf) {
        self.file.set_path(path.clone());
        self.path = path;
    }

    /// Closes the file until the next write (a rolled segment's index).
    pub fn close(&self) {
        self.file.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_exact_and_between() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let mut idx = OffsetIndex::create(&path, 100, 1024).unwrap();
        assert_eq!(idx.lookup(150), (100, 0));
        idx.append(109, 0).unwrap();
        idx.append(119, 500).unwrap();
        idx.append(139, 1200).unwrap();
        // Before the first entry: start of the segment.
        assert_eq!(idx.lookup(100), (100, 0));
        assert_eq!(idx.lookup(108), (100, 0));
        // Exact hits.
        assert_eq!(idx.lookup(109), (109, 0));
        assert_eq!(idx.lookup(119), (119, 500));
        assert_eq!(idx.lookup(139), (139, 1200));
        // Between entries: the largest entry below.
        assert_eq!(idx.lookup(125), (119, 500));
        assert_eq!(idx.lookup(10_000), (139, 1200));
        // Non-increasing appends are ignored.
        idx.append(139, 1300).unwrap();
        idx.append(150, 1200).unwrap();
        assert_eq!(idx.len(), 3);

        // Persisted and reloaded identically.
        let loaded = OffsetIndex::load(&path, 100, 1024, 2000).unwrap().unwrap();
        assert_eq!(loaded.lookup(125), (119, 500));
        assert_eq!(loaded.len(), 3);
        // Positions past the log end make the index unusable.
        assert!(OffsetIndex::load(&path, 100, 1024, 1000).unwrap().is_none());

        idx.truncate_to(119).unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.lookup(10_000), (109, 0));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
    }

    #[test]
    fn offset_index_rejects_torn_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        std::fs::write(&path, [0u8; 12]).unwrap();
        assert!(OffsetIndex::load(&path, 0, 1024, 100).unwrap().is_none());
        assert!(OffsetIndex::load(&dir.path().join("missing"), 0, 1024, 100)
            .unwrap()
            .is_none());
    }

    #[test]
    fn offset_index_fills_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::create(&dir.path().join("x.index"), 0, 24).unwrap();
        for i in 0..5 {
            idx.append(i, i as u32 * 10).unwrap();
        }
        assert!(idx.is_full());
        assert_eq!(idx.len(), 3);
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.timeindex");
        let mut idx = TimeIndex::create(&path, 50, 1200).unwrap();
        assert_eq!(idx.lookup(1000), (-1, 50));
        idx.maybe_append(1000, 55, false).unwrap();
        idx.maybe_append(1000, 60, false).unwrap(); // not newer: skipped
        idx.maybe_append(2000, 70, false).unwrap();
        assert_eq!(idx.lookup(999), (-1, 50));
        assert_eq!(idx.lookup(1000), (1000, 55));
        assert_eq!(idx.lookup(1500), (1000, 55));
        assert_eq!(idx.lookup(5000), (2000, 70));
        assert_eq!(idx.last_entry(), Some((2000, 70)));
        let loaded = TimeIndex::load(&path, 50, 1200).unwrap().unwrap();
        assert_eq!(loaded.lookup(1500), (1000, 55));
        idx.truncate_to(70).unwrap();
        assert_eq!(idx.last_entry(), Some((1000, 55)));
    }
}
