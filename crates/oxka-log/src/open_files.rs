//! Segment files opened on demand under one process-wide budget of open
//! descriptors.
//!
//! Every segment has three files (`.log`, `.index`, `.timeindex`); keeping
//! them all open, as Kafka does, makes the partition count a broker can
//! host a function of `RLIMIT_NOFILE`, and running out of descriptors
//! takes the whole broker down (no new connections, no restart). Here a
//! segment's files are [`LazyFile`]s: opened when first used, kept open
//! while used, and closed least-recently-used first once the budget is
//! reached. The budget is process-wide because the limit it protects is
//! per process; the broker sets it from the descriptor limit at start-up
//! ([`set_open_file_budget`]).
//!
//! A read that hands a file to the network ([`crate::FileRegion`]) holds
//! its own `Arc<File>`, so closing a cold file never cuts a response short;
//! such descriptors live only as long as a response in flight.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// The budget before the broker sets one: enough for tests and tools that
/// open logs directly, well below common descriptor limits.
const DEFAULT_BUDGET: usize = 4096;

static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET);
/// A logical clock for least-recently-used order (cheaper than reading time).
static CLOCK: AtomicU64 = AtomicU64::new(0);
static OPEN: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// Sets how many segment files may be open at once across the process
/// (at least 16). Takes effect at the next open.
pub fn set_open_file_budget(files: usize) {
    BUDGET.store(files.max(16), Ordering::Relaxed);
}

/// The current budget (see [`set_open_file_budget`]).
pub fn open_file_budget() -> usize {
    BUDGET.load(Ordering::Relaxed)
}

#[derive(Debug)]
struct Inner {
    path: Mutex<PathBuf>,
    slot: Mutex<Option<Arc<File>>>,
    last_used: AtomicU64,
}

/// A file that is open only while it is in use (see the module doc).
/// Files are opened for reading and writing, never created or truncated:
/// the owner creates the file before handing it over.
#[derive(Debug)]
pub(crate) struct LazyFile {
    inner: Arc<Inner>,
}

impl LazyFile {
    /// Takes over an already open `file` at `path` (it counts against the
    /// budget like any other open file).
    pub fn from_open(path: &Path, file: File) -> LazyFile {
        let f = LazyFile::closed(path);
        *f.inner.slot.lock() = Some(Arc::new(file));
        f.inner.touch();
        register(&f.inner);
        f
    }

    /// A file that will be opened at its first use.
    pub fn closed(path: &Path) -> LazyFile {
        LazyFile {
            inner: Arc::new(Inner {
                path: Mutex::new(path.to_path_buf()),
                slot: Mutex::new(None),
                last_used: AtomicU64::new(0),
            }),
        }
    }

    /// The open file, opening it if it was closed.
    pub fn get(&self) -> io::Result<Arc<File>> {
        let mut slot = self.inner.slot.lock();
        self.inner.touch();
        if let Some(f) = slot.as_ref() {
            return Ok(Arc::clone(f));
        }
        let path = self.inner.path.lock().clone();
        let file = Arc::new(OpenOptions::new().read(true).write(true).open(&path)?);
        *slot = Some(Arc::clone(&file));
        drop(slot);
        register(&self.inner);
        Ok(file)
    }

    /// Closes the file now (it reopens at its next use): for files that
    /// are done being written, such as a rolled segment's.
    pub fn close(&self) {
        let closed = self.inner.slot.lock().take();
        if closed.is_some() {
            let me = Arc::downgrade(&self.inner);
            OPEN.lock().retain(|w| !w.ptr_eq(&me));
        }
    }

    /// Records a rename done by the owner, so a later reopen finds the file.
    pub fn set_path(&self, path: PathBuf) {
        *self.inner.path.lock() = path;
    }

    /// Whether the file is open right now (for tests and diagnostics).
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.inner.slot.lock().is_some()
    }
}

impl Drop for LazyFile {
    fn drop(&mut self) {
        self.close();
    }
}

impl Inner {
    fn touch(&self) {
        self.last_used
            .store(CLOCK.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Adds a newly opened file to the open set and closes the least recently
/// used ones when the set is over budget. Called without holding any
/// file's slot lock; victims' slots are only `try_lock`ed, so a file being
/// used right now is skipped rather than waited for.
fn register(inner: &Arc<Inner>) {
    let budget = open_file_budget();
    let victims: Vec<Arc<Inner>> = {
        let mut open = OPEN.lock();
        open.push(Arc::downgrade(inner));
        if open.len() <= budget {
            return;
        }
        open.retain(|w| w.strong_count() > 0);
        if open.len() <= budget {
            return;
        }
        // Close an eighth of the budget at once so that the sort is paid
        // once per many opens, not at every open.
        let excess = open.len() - budget + budget / 8;
        let mut live: Vec<(u64, Arc<Inner>)> = open
            .iter()
            .filter_map(Weak::upgrade)
            .map(|i| (i.last_used.load(Ordering::Relaxed), i))
            .collect();
        live.sort_by_key(|(t, _)| *t);
        live.into_iter().take(excess).map(|(_, i)| i).collect()
    };
    let mut closed = Vec::with_capacity(victims.len());
    for v in &victims {
        if Arc::ptr_eq(v, inner) {
            continue;
        }
        if let Some(mut slot) = v.slot.try_lock() {
            if slot.take().is_some() {
                closed.push(Arc::downgrade(v));
            }
        }
    }
    if !closed.is_empty() {
        OPEN.lock()
            .retain(|w| w.strong_count() > 0 && !closed.iter().any(|c| c.ptr_eq(w)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_reopen_after_eviction_and_follow_renames() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"hello").unwrap();
        let f = LazyFile::closed(&a);
        assert!(!f.is_open());
        let mut buf = [0u8; 5];
        crate::fileio::read_exact_at(&f.get().unwrap(), &mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(f.is_open());
        f.close();
        assert!(!f.is_open());
        let b = dir.path().join("b");
        std::fs::rename(&a, &b).unwrap();
        f.set_path(b);
        crate::fileio::read_exact_at(&f.get().unwrap(), &mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[test]
    fn the_open_set_never_grows_far_past_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<LazyFile> = (0..200)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, b"x").unwrap();
                LazyFile::closed(&p)
            })
            .collect();
        // Other tests share the process-wide budget; a small one only makes
        // their files reopen more often.
        let before = open_file_budget();
        set_open_file_budget(16);
        for f in &files {
            f.get().unwrap();
        }
        let open = files.iter().filter(|f| f.is_open()).count();
        set_open_file_budget(before);
        assert!(
            open <= 16,
            "{open} of this test's files open with a budget of 16"
        );
        // every file still works after being closed for the budget
        for f in &files {
            f.get().unwrap();
        }
    }
}
