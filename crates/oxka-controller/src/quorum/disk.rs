//! The metadata log on disk, in `<metadata.log.dir>/__cluster_metadata-0/`:
//! `entries.log` (frames of length, CRC-32C and one entry, appended and
//! synced), `quorum-state` (term, vote, commit; Kafka keeps a file of that
//! name) and `snapshot` (the image at an index), each of the last two
//! replaced whole with write-temp, fsync, rename, fsync-dir. A torn or
//! corrupt frame ends the log where it begins (it was never acknowledged:
//! appends are synced before Raft acts on them).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::log::{Persisted, QuorumStore};
use super::wire::{WireEntry, WireHardState, WireSnapshot};

/// Kafka's name; oxka-log's LogManager skips a dir of this name.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
const ENTRIES: &str = "entries.log";
const STATE: &str = "quorum-state";
const SNAPSHOT: &str = "snapshot";
/// A frame larger than this is corruption, not an entry (Kafka's metadata
/// batches are bounded far below it).
const MAX_FRAME: usize = 256 << 20;

pub struct DiskStore {
    dir: PathBuf,
    entries: Option<File>,
    /// Indexes stored in `entries.log`, to know when an append replaces.
    stored: Vec<WireEntry>,
}

impl DiskStore {
    /// Opens (creating) the metadata log dir under `parent`.
    pub fn open(parent: &Path) -> io::Result<DiskStore> {
        let dir = parent.join(METADATA_LOG_DIR);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            // the new directory's name is durable once its parent is
            // synced (found by `oxka verify`'s power cuts: a voter came back
            // with no metadata log at all)
            File::open(parent)?.sync_all()?;
        }
        Ok(DiskStore {
            dir,
            entries: None,
            stored: Vec::new(),
        })
    }

    /// True when the dir holds any metadata log state (a node that has
    /// been part of a quorum before).
    pub fn exists(parent: &Path) -> bool {
        let dir = parent.join(METADATA_LOG_DIR);
        dir.join(STATE).exists() || dir.join(ENTRIES).exists() || dir.join(SNAPSHOT).exists()
    }

    fn entries_file(&mut self) -> io::Result<&mut File> {
        let f = match self.entries.take() {
            Some(f) => f,
            None => {
                let path = self.dir.join(ENTRIES);
                let new = !path.exists();
                let f = OpenOptions::new().create(true).append(true).open(&path)?;
                if new {
                    // a new file's name is only durable once its directory
                    // is synced: without this a power cut took back every
                    // entry this voter had acknowledged (raft-rs then
                    // panicked: "to_commit 9 is out of range [last_index 0]")
                    f.sync_all()?;
                    File::open(&self.dir)?.sync_all()?;
                }
                f
            }
        };
        Ok(self.entries.insert(f))
    }

    fn rewrite_entries(&mut self) -> io::Result<()> {
        self.entries = None;
        let mut buf = Vec::new();
        for e in &self.stored {
            frame(&mut buf, e)?;
        }
        write_atomic(&self.dir, ENTRIES, &buf)
    }
}

fn frame(buf: &mut Vec<u8>, e: &WireEntry) -> io::Result<()> {
    let body = postcard::to_stdvec(e).map_err(io::Error::other)?;
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    buf.extend_from_slice(&body);
    Ok(())
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is corrupt: {e}", path.display()),
    )
}

impl QuorumStore for DiskStore {
    fn load(&mut self) -> io::Result<Persisted> {
        let mut p = Persisted::default();
        let state = self.dir.join(STATE);
        if let Some(b) = read_optional(&state)? {
            p.hard_state = serde_json::from_slice(&b).map_err(|e| corrupt(&state, e))?;
        }
        let snap = self.dir.join(SNAPSHOT);
        if let Some(b) = read_optional(&snap)? {
            p.snapshot = postcard::from_bytes(&b).map_err(|e| corrupt(&snap, e))?;
        }
        let path = self.dir.join(ENTRIES);
        let mut bytes = Vec::new();
        if let Ok(mut f) = File::open(&path) {
            f.read_to_end(&mut bytes)?;
        }
        let mut pos = 0;
        let mut entries: Vec<WireEntry> = Vec::new();
        while pos + 8 <= bytes.len() {
            let header = |at: usize| {
                u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
            };
            let (len, crc) = (header(pos) as usize, header(pos + 4));
            if len > MAX_FRAME || pos + 8 + len > bytes.len() {
                break;
            }
            let body = &bytes[pos + 8..pos + 8 + len];
            if crc32c::crc32c(body) != crc {
                break;
            }
            let Ok(e) = postcard::from_bytes::<WireEntry>(body) else {
                break;
            };
            // A later frame with an index at or below an earlier one is an
            // overwrite that was appended (never written: overwrites
            // rewrite the file), so treat it as the end.
            if entries.last().is_some_and(|l| e.index != l.index + 1) {
                break;
            }
            entries.push(e);
            pos += 8 + len;
        }
        if pos != bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = pos,
                file_bytes = bytes.len(),
                "metadata log ends in a torn or corrupt frame; truncating it there"
            );
            self.stored = entries.clone();
            self.rewrite_entries()?;
        }
        self.stored = entries.clone();
        p.entries = entries;
        Ok(p)
    }

    fn append(&mut self, entries: &[WireEntry], replace_from: Option<u64>) -> io::Result<()> {
        if let Some(from) = replace_from {
            self.stored.retain(|e| e.index < from);
            self.stored.extend_from_slice(entries);
            return self.rewrite_entries();
        }
        let mut buf = Vec::new();
        for e in entries {
            frame(&mut buf, e)?;
        }
        self.stored.extend_from_slice(entries);
        let f = self.entries_file()?;
        f.write_all(&buf)?;
        f.sync_data()
    }

    fn has_room(&self, bytes: usize) -> bool {
        // the entry, its share of a rewrite and the state file, with room
        // to spare: 1 MiB
        match rustix::fs::statvfs(&self.dir) {
            Ok(st) => st.f_bavail.saturating_mul(st.f_frsize) >= bytes as u64 + (1 << 20),
            Err(_) => true,
        }
    }

    fn save_hard_state(&mut self, hs: &WireHardState) -> io::Result<()> {
        let b = serde_json::to_vec(hs).map_err(io::Error::other)?;
        write_atomic(&self.dir, STATE, &b)
    }

    fn save_snapshot(
        &mut self,
        snapshot: &WireSnapshot,
        remaining: &[WireEntry],
    ) -> io::Result<()> {
        let b = postcard::to_stdvec(snapshot).map_err(io::Error::other)?;
        write_atomic(&self.dir, SNAPSHOT, &b)?;
        self.stored = remaining.to_vec();
        self.rewrite_entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> WireEntry {
        WireEntry {
            entry_type: 0,
            term,
            index,
            data: vec![index as u8; 10],
            context: vec![],
        }
    }

    #[test]
    fn append_replace_snapshot_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskStore::open(dir.path()).unwrap();
        assert!(s.load().unwrap().entries.is_empty());
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)], None)
            .unwrap();
        s.append(&[entry(3, 2)], Some(3)).unwrap();
        s.append(&[entry(4, 2)], None).unwrap();
        s.save_hard_state(&WireHardState {
            term: 2,
            vote: 1,
            commit: 3,
        })
        .unwrap();
        let p = DiskStore::open(dir.path()).unwrap().load().unwrap();
        let got: Vec<_> = p.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(got, vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
        assert_eq!(p.hard_state.commit, 3);
        // a torn frame at the end is cut off
        let path = dir.path().join(METADATA_LOG_DIR).join(ENTRIES);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2]).unwrap();
        let mut s = DiskStore::open(dir.path()).unwrap();
        assert_eq!(s.load().unwrap().entries.len(), 4);
        s.save_snapshot(
            &WireSnapshot {
                index: 2,
                term: 1,
                voters: vec![1],
                learners: vec![],
                data: b"image".to_vec(),
            },
            &[entry(3, 2), entry(4, 2)],
        )
        .unwrap();
        let p = DiskStore::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(p.snapshot.index, 2);
        assert_eq!(p.snapshot.data, b"image");
        assert_eq!(p.entries.len(), 2);
    }
}
