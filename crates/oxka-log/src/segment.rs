//! One segment of a log: a `.log` file of whole batches plus its indexes
//! (Kafka's LogSegment).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, LogError};
use crate::fileio::{read_exact_at, write_all_at, write_all_vectored_at, FileRegion};
use crate::index::{OffsetIndex, TimeIndex};
use crate::open_files::LazyFile;
use crate::record_batch::{
    check_batch_integrity, visit_records, RecordBatchHeader, BATCH_OVERHEAD, MAGIC_V2,
};
use crate::FetchRegionInfo;

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";

/// Kafka's file name for a segment: the base offset zero-padded to 20
/// digits, so lexical order is offset order.
pub(crate) fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// `path` with `suffix` appended to its file name (`x.log` -> `x.log.swap`).
pub(crate) fn with_suffix(path: PathBuf, suffix: &str) -> PathBuf {
    if suffix.is_empty() {
        return path;
    }
    let mut s = path.into_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// What the segment needs to know about each batch being appended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AppendBatch {
    pub size: usize,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    /// Open only while in use (see `open_files`); the [`FileRegion`]s of
    /// reads still being sent hold their own handle, which keeps the file
    /// readable after the segment is closed or removed.
    log: LazyFile,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    next_offset: i64,
    bytes_since_last_index_entry: u64,
    index_interval_bytes: u64,
    /// Largest batch max timestamp in the segment, -1 when none.
    max_timestamp_so_far: i64,
    /// Last offset of the batch that first reached `max_timestamp_so_far`.
    offset_of_max_timestamp_so_far: i64,
    /// Max timestamp of the first batch; segment age is measured from it
    /// so that replaying old data does not roll on every append.
    rolling_based_timestamp: Option<i64>,
    created_ms: i64,
    dirty: bool,
}

impl LogSegment {
    /// Creates an empty segment, replacing any stale files with its name.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u32,
        max_index_size: u32,
        now_ms: i64,
    ) -> Result<LogSegment, LogError> {
        Self::create_with_suffix(
            dir,
            base_offset,
            index_interval_bytes,
            max_index_size,
            now_ms,
            "",
        )
    }

    /// Like [`LogSegment::create`] with `file_suffix` appended to every file
    /// name (Kafka's `.cleaned`), so the cleaner can build a replacement
    /// segment beside the live one and swap it in by renaming.
    pub fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u32,
        max_index_size: u32,
        now_ms: i64,
        file_suffix: &str,
    ) -> Result<LogSegment, LogError> {
        let path = |ext: &str| with_suffix(segment_file(dir, base_offset, ext), file_suffix);
        let log_path = path(LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .ctx(&log_path)?;
        let log = LazyFile::from_open(&log_path, log);
        let offset_index = OffsetIndex::create(&path(INDEX_SUFFIX), base_offset, max_index_size)?;
        let time_index = TimeIndex::create(&path(TIME_INDEX_SUFFIX), base_offset, max_index_size)?;
        Ok(LogSegment {
            base_offset,
            log_path,
            log,
            size: 0,
            offset_index,
            time_index,
            next_offset: base_offset,
            bytes_since_last_index_entry: 0,
            index_interval_bytes: u64::from(index_interval_bytes),
            max_timestamp_so_far: -1,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_based_timestamp: None,
            created_ms: now_ms,
            dirty: true,
        })
    }

    /// Opens an existing segment. With `recover` false the data is trusted
    /// (it was flushed before the recovery point) and only the tail after
    /// the last index entry is scanned; if the indexes are unusable or that
    /// scan finds a torn batch, it falls back to full recovery. Returns the
    /// segment and whether it was truncated during recovery.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u32,
        max_index_size: u32,
        now_ms: i64,
        recover: bool,
    ) -> Result<(LogSegment, bool), LogError> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .ctx(&log_path)?;
        let size = log.metadata().ctx(&log_path)?.len();
        let log = LazyFile::from_open(&log_path, log);
        let index_path = segment_file(dir, base_offset, INDEX_SUFFIX);
        let time_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let loaded = if recover {
            None
        } else {
            match (
                OffsetIndex::load(&index_path, base_offset, max_index_size, size)?,
                TimeIndex::load(&time_path, base_offset, max_index_size)?,
            ) {
                (Some(o), Some(t)) => Some((o, t)),
                _ => None,
            }
        };
        let trusted = loaded.is_some();
        let (offset_index, time_index) = match loaded {
            Some(pair) => pair,
            None => (
                OffsetIndex::create(&index_path, base_offset, max_index_size)?,
                TimeIndex::create(&time_path, base_offset, max_index_size)?,
            ),
        };
        let mut seg = LogSegment {
            base_offset,
            log_path,
            log,
            size,
            offset_index,
            time_index,
            next_offset: base_offset,
            bytes_since_last_index_entry: 0,
            index_interval_bytes: u64::from(index_interval_bytes),
            max_timestamp_so_far: -1,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_based_timestamp: None,
            created_ms: now_ms,
            dirty: false,
        };
        if trusted && seg.load_tail()? {
            seg.load_rolling_timestamp()?;
            seg.close_files();
            return Ok((seg, false));
        }
        if trusted {
            tracing::warn!(path = %seg.log_path.display(), "segment tail is inconsistent with its index; recovering it");
        }
        let truncated = seg.recover()?;
        // Validated data may still sit only in the page cache of a crashed
        // process; it is synced before the recovery point moves past it.
        seg.dirty = true;
        seg.close_files();
        Ok((seg, truncated))
    }

    /// Computes the next offset and max timestamp from the indexes plus a
    /// header scan after the last offset index entry. Returns false if the
    /// scan does not end exactly at the end of the file.
    fn load_tail(&mut self) -> Result<bool, LogError> {
        let (entry_offset, entry_pos) = self.offset_index.last_entry();
        let has_entry = self.offset_index.len() > 0;
        if let Some((ts, off)) = self.time_index.last_entry() {
            self.max_timestamp_so_far = ts;
            self.offset_of_max_timestamp_so_far = off;
        }
        let mut pos = u64::from(entry_pos);
        let mut next = self.base_offset;
        let mut first = true;
        while pos < self.size {
            let Some(h) = self.read_header_unchecked(pos)? else {
                return Ok(false);
            };
            let Some(size) = h.total_size() else {
                return Ok(false);
            };
            if h.magic != MAGIC_V2 || pos + size as u64 > self.size || h.base_offset < next {
                return Ok(false);
            }
            // The indexed batch must be the one the entry names.
            if first && has_entry && h.last_offset() != entry_offset {
                return Ok(false);
            }
            first = false;
            if h.max_timestamp > self.max_timestamp_so_far {
                self.max_timestamp_so_far = h.max_timestamp;
                self.offset_of_max_timestamp_so_far = h.last_offset();
            }
            next = h.last_offset() + 1;
            pos += size as u64;
            self.bytes_since_last_index_entry += size as u64;
        }
        if let Some((_, off)) = self.time_index.last_entry() {
            if off >= next && self.size > 0 {
                return Ok(false);
            }
        }
        self.next_offset = next;
        Ok(true)
    }

    fn load_rolling_timestamp(&mut self) -> Result<(), LogError> {
        if self.size > 0 {
            if let Some(h) = self.read_header_unchecked(0)? {
                self.rolling_based_timestamp = Some(h.max_timestamp);
            }
        }
        Ok(())
    }

    /// Validates every batch (framing, magic, CRC, increasing offsets),
    /// truncates the file at the first invalid one and rebuilds the
    /// indexes. Returns whether anything was truncated.
    pub fn recover(&mut self) -> Result<bool, LogError> {
        self.offset_index.truncate_to(self.base_offset)?;
        self.time_index.truncate_to(self.base_offset)?;
        self.next_offset = self.base_offset;
        self.max_timestamp_so_far = -1;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.bytes_since_last_index_entry = 0;
        self.rolling_based_timestamp = None;
        let mut pos: u64 = 0;
        let mut header_buf = [0u8; BATCH_OVERHEAD];
        while pos < self.size {
            if self.size - pos < BATCH_OVERHEAD as u64 {
                break;
            }
            read_exact_at(&*self.data()?, &mut header_buf, pos).ctx(&self.log_path)?;
            let Ok(h) = RecordBatchHeader::parse(&header_buf) else {
                break;
            };
            let Some(size) = h.total_size() else { break };
            if h.magic != MAGIC_V2 || pos + size as u64 > self.size {
                break;
            }
            let mut batch = vec![0u8; size];
            read_exact_at(&*self.data()?, &mut batch, pos).ctx(&self.log_path)?;
            if check_batch_integrity(&batch).is_err() {
                break;
            }
            let last = h.last_offset();
            if h.base_offset < self.next_offset
                || h.last_offset_delta < 0
                || last - self.base_offset > i64::from(i32::MAX)
                || pos + size as u64 > u64::from(u32::MAX)
            {
                break;
            }
            self.index_batch(
                pos as u32,
                AppendBatch {
                    size,
                    last_offset: last,
                    max_timestamp: h.max_timestamp,
                },
            )?;
            self.next_offset = last + 1;
            pos += size as u64;
        }
        let truncated = pos < self.size;
        if truncated {
            tracing::warn!(
                path = %self.log_path.display(),
                valid_bytes = pos,
                file_bytes = self.size,
                "truncating invalid or torn data at the end of segment"
            );
            self.data()?.set_len(pos).ctx(&self.log_path)?;
            self.size = pos;
            self.dirty = true;
        }
        Ok(truncated)
    }

    /// Updates the indexes and timestamp bookkeeping for a batch at `pos`.
    fn index_batch(&mut self, pos: u32, b: AppendBatch) -> Result<(), LogError> {
        if self.rolling_based_timestamp.is_none() {
            self.rolling_based_timestamp = Some(b.max_timestamp);
        }
        if b.max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = b.max_timestamp;
            self.offset_of_max_timestamp_so_far = b.last_offset;
        }
        if self.bytes_since_last_index_entry >= self.index_interval_bytes {
            self.offset_index.append(b.last_offset, pos)?;
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
                false,
            )?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += b.size as u64;
        Ok(())
    }

    /// Appends already-validated, offset-assigned batches. On a write error
    /// the file is cut back to its previous length so no partial batch stays.
    pub fn append(&mut self, data: &[u8], batches: &[AppendBatch]) -> Result<(), LogError> {
        self.append_vectored(&[data], batches)
    }

    /// [`append`](Self::append) of batches given as consecutive pieces
    /// (patched headers beside untouched record bytes), written with one
    /// vectored write.
    pub fn append_vectored(
        &mut self,
        pieces: &[&[u8]],
        batches: &[AppendBatch],
    ) -> Result<(), LogError> {
        let start = self.size;
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        debug_assert_eq!(len, batches.iter().map(|b| b.size).sum::<usize>());
        let written = match pieces {
            [one] => write_all_at(&*self.data()?, one, start),
            _ => write_all_vectored_at(&*self.data()?, pieces, start),
        };
        if let Err(e) = written {
            // Shrinking needs no space: on a full disk this still works
            // and leaves the segment exactly as it was.
            self.data()?.set_len(start).ctx(&self.log_path)?;
            return Err(LogError::WriteFailed {
                path: self.log_path.clone(),
                source: e,
            });
        }
        self.dirty = true;
        self.size = start + len as u64;
        let mut pos = start;
        for b in batches {
            self.index_batch(u32::try_from(pos).unwrap_or(u32::MAX), *b)?;
            self.next_offset = b.last_offset + 1;
            pos += b.size as u64;
        }
        Ok(())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn max_timestamp_so_far(&self) -> i64 {
        self.max_timestamp_so_far
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn index_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// How long the segment has been collecting data, by record time when
    /// known (Kafka's `timeWaitedForRoll`).
    pub fn time_waited_for_roll(&self, now_ms: i64, max_timestamp_in_messages: i64) -> i64 {
        match self.rolling_based_timestamp {
            Some(t) if t >= 0 => max_timestamp_in_messages.saturating_sub(t),
            _ => now_ms.saturating_sub(self.created_ms),
        }
    }

    /// Reads a header without validation; `None` if fewer than a header's
    /// worth of bytes remain.
    fn read_header_unchecked(&self, pos: u64) -> Result<Option<RecordBatchHeader>, LogError> {
        if pos >= self.size || self.size - pos < BATCH_OVERHEAD as u64 {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_OVERHEAD];
        read_exact_at(&*self.data()?, &mut buf, pos).ctx(&self.log_path)?;
        RecordBatchHeader::parse(&buf).map(Some)
    }

    /// Reads the header at `pos` of data already in the log; a header that
    /// does not frame a batch inside the file means the segment is corrupt.
    fn header_at(&self, pos: u64) -> Result<Option<(RecordBatchHeader, u64)>, LogError> {
        if pos >= self.size {
            return Ok(None);
        }
        let h = self.read_header_unchecked(pos)?.ok_or_else(|| {
            LogError::CorruptRecord(format!(
                "{}: truncated batch header at position {pos}",
                self.log_path.display()
            ))
        })?;
        match h.total_size() {
            Some(size) if h.magic == MAGIC_V2 && pos + size as u64 <= self.size => {
                Ok(Some((h, size as u64)))
            }
            _ => Err(LogError::CorruptRecord(format!(
                "{}: invalid batch header at position {pos}",
                self.log_path.display()
            ))),
        }
    }

    /// Calls `f` with the header of every batch, in order, reading only
    /// headers (rebuilding the leader epoch cache needs nothing else).
    pub fn visit_headers(&self, mut f: impl FnMut(&RecordBatchHeader)) -> Result<(), LogError> {
        let mut pos = 0;
        while let Some((h, size)) = self.header_at(pos)? {
            f(&h);
            pos += size;
        }
        Ok(())
    }

    fn read_bytes(&self, pos: u64, len: u64) -> Result<Vec<u8>, LogError> {
        let len =
            usize::try_from(len).map_err(|_| LogError::CorruptRecord("read too large".into()))?;
        let mut buf = vec![0u8; len];
        read_exact_at(&*self.data()?, &mut buf, pos).ctx(&self.log_path)?;
        Ok(buf)
    }

    /// Finds the first batch whose last offset is >= `target`, starting at
    /// the index's best position. Returns its header and position.
    pub fn translate_offset(
        &self,
        target: i64,
    ) -> Result<Option<(RecordBatchHeader, u64)>, LogError> {
        let (_, start) = self.offset_index.lookup(target);
        let mut pos = u64::from(start);
        while let Some((h, size)) = self.header_at(pos)? {
            if h.last_offset() >= target {
                return Ok(Some((h, pos)));
            }
            pos += size;
        }
        Ok(None)
    }

    /// Finds whole batches from the one containing `start_offset` and
    /// returns where they are, without reading them; `None` when this
    /// segment has nothing at or after it. The region ends at a batch
    /// boundary inside the current file size, so it holds exactly what a
    /// copying read would have returned.
    pub fn read_region(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<Option<FetchRegionInfo>, LogError> {
        let Some((_, start)) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        let mut end = start;
        let mut first_batch_offset = None;
        while let Some((h, size)) = self.header_at(end)? {
            if h.base_offset >= max_offset {
                break;
            }
            let fits = (end - start).saturating_add(size) <= max_bytes as u64;
            // KIP-74: the first batch is returned whole even if too big.
            let oversized_first = first_batch_offset.is_none() && min_one_message;
            if !(fits || oversized_first) {
                break;
            }
            first_batch_offset.get_or_insert(h.base_offset);
            end += size;
            if !fits {
                break;
            }
        }
        let records = if end > start {
            // `header_at` keeps `end` within the file; segments stay below
            // 2 GiB, so the length fits every platform's usize
            let len = usize::try_from(end - start)
                .map_err(|_| LogError::CorruptRecord("read too large".into()))?;
            Some(FileRegion::new(self.data()?, start, len))
        } else {
            None
        };
        Ok(Some(FetchRegionInfo {
            records,
            first_batch_offset,
        }))
    }

    /// The first record at or after `starting_offset` with timestamp >= `ts`.
    pub fn find_offset_by_timestamp(
        &self,
        ts: i64,
        starting_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let (_, indexed_offset) = self.time_index.lookup(ts);
        let (_, start) = self
            .offset_index
            .lookup(indexed_offset.max(starting_offset));
        let mut pos = u64::from(start);
        while let Some((h, size)) = self.header_at(pos)? {
            if h.max_timestamp >= ts && h.last_offset() >= starting_offset {
                let batch = self.read_bytes(pos, size)?;
                let mut found = None;
                visit_records(&h, &batch, |r| {
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    let t = r.timestamp(&h);
                    if found.is_none() && t >= ts && offset >= starting_offset {
                        found = Some((offset, t));
                    }
                    Ok(())
                })?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            pos += size;
        }
        Ok(None)
    }

    /// Record-exact maximum timestamp among offsets >= `starting_offset`,
    /// by scanning every batch (the slow path for KIP-734).
    pub fn scan_max_timestamp(&self, starting_offset: i64) -> Result<Option<(i64, i64)>, LogError> {
        let Some((_, mut pos)) = self.translate_offset(starting_offset)? else {
            return Ok(None);
        };
        let mut best: Option<(i64, i64)> = None; // (timestamp, offset)
        while let Some((h, size)) = self.header_at(pos)? {
            if best.is_none_or(|(t, _)| h.max_timestamp > t) {
                let batch = self.read_bytes(pos, size)?;
                visit_records(&h, &batch, |r| {
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    let t = r.timestamp(&h);
                    if offset >= starting_offset && best.is_none_or(|(bt, _)| t > bt) {
                        best = Some((t, offset));
                    }
                    Ok(())
                })?;
            }
            pos += size;
        }
        Ok(best.map(|(t, o)| (o, t)))
    }

    /// Drops every batch whose last offset is >= `offset` (so the batch
    /// containing `offset` goes entirely) and rebuilds the indexes.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let Some((_, pos)) = self.translate_offset(offset)? else {
            return Ok(());
        };
        self.data()?.set_len(pos).ctx(&self.log_path)?;
        self.size = pos;
        self.dirty = true;
        self.recover()?;
        Ok(())
    }

    /// Writes the final time index entry so the segment's max timestamp
    /// survives a restart without scanning (Kafka's onBecomeInactiveSegment).
    pub fn seal_time_index(&mut self) -> Result<(), LogError> {
        if self.size > 0 {
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
                true,
            )?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), LogError> {
        if !self.dirty {
            return Ok(());
        }
        // The records first: indexes can be rebuilt from them, not the
        // other way round (on a full disk the index entry may not fit).
        self.sync_data()?;
        self.seal_time_index()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.dirty = false;
        Ok(())
    }

    /// Forces the records to disk (not the indexes).
    pub fn sync_data(&self) -> Result<(), LogError> {
        self.data()?.sync_data().ctx(&self.log_path)
    }

    /// The open data file (opened again if the open-file budget closed it).
    fn data(&self) -> Result<Arc<File>, LogError> {
        self.log.get().ctx(&self.log_path)
    }

    /// Closes the segment's three files until their next use: a segment
    /// that is no longer written (rolled, or loaded at start-up) costs no
    /// descriptors while nobody reads it.
    pub fn close_files(&self) {
        self.log.close();
        self.offset_index.close();
        self.time_index.close();
    }

    /// Points the segment at its files after the directory was renamed.
    pub fn relocate(&mut self, dir: &Path) {
        self.log_path = segment_file(dir, self.base_offset, LOG_SUFFIX);
        self.log.set_path(self.log_path.clone());
        self.offset_index
            .set_path(segment_file(dir, self.base_offset, INDEX_SUFFIX));
        self.time_index
            .set_path(segment_file(dir, self.base_offset, TIME_INDEX_SUFFIX));
    }

    /// The data file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Renames the segment's three files from names ending in `from` to
    /// names ending in `to` (the cleaner's `.cleaned` -> `.swap` -> final
    /// steps). The indexes go first and the data file last, because
    /// recovery keys on the data file's name.
    pub fn rename_files(&mut self, from: &str, to: &str) -> Result<(), LogError> {
        let rename = |path: &Path| -> Result<PathBuf, LogError> {
            // Segment file names are ASCII; the directory may not be.
            let stem = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(from));
            let (Some(stem), Some(dir)) = (stem, path.parent()) else {
                return Err(LogError::io(
                    path,
                    std::io::Error::other(format!("file name does not end in {from:?}")),
                ));
            };
            let new = dir.join(format!("{stem}{to}"));
            fs::rename(path, &new).ctx(path)?;
            Ok(new)
        };
        let index = rename(self.offset_index.path())?;
        self.offset_index.set_path(index);
        let time = rename(self.time_index.path())?;
        self.time_index.set_path(time);
        self.log_path = rename(&self.log_path)?;
        self.log.set_path(self.log_path.clone());
        Ok(())
    }

    /// The newest record time in the segment, or the file's modification
    /// time when no record carries one (Kafka's `largestTimestamp`); time
    /// retention compares it with `retention.ms`.
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp_so_far >= 0 {
            return self.max_timestamp_so_far;
        }
        fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(self.created_ms)
    }

    /// The data file's modification time (Kafka's `lastModified`), read
    /// from the path so that it needs no open descriptor; the creation time
    /// when the file system cannot tell.
    pub fn last_modified_ms(&self) -> i64 {
        std::fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(self.created_ms)
    }

    /// Renames the segment's files to `<name>.deleted` (Kafka's
    /// asynchronous delete) and returns the new paths. Startup removes
    /// such files, so a crash before they are unlinked leaks nothing.
    pub fn rename_to_deleted(self) -> Result<Vec<PathBuf>, LogError> {
        let mut out = Vec::with_capacity(3);
        for path in [
            self.log_path.as_path(),
            self.offset_index.path(),
            self.time_index.path(),
        ] {
            let mut target = path.as_os_str().to_owned();
            target.push(".deleted");
            let target = PathBuf::from(target);
            match fs::rename(path, &target) {
                Ok(()) => out.push(target),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(path, e)),
            }
        }
        Ok(out)
    }

    pub fn delete_files(self) -> Result<(), LogError> {
        for path in [
            self.log_path.as_path(),
            self.offset_index.path(),
            self.time_index.path(),
        ] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(path, e)),
            }
        }
        Ok(())
    }
}
