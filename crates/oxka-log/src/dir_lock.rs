//! The exclusive `.lock` of a log dir (Kafka's `FileLock` on every log dir).
//!
//! Two brokers on one dir would assign the same offsets to different
//! records and overwrite each other's acknowledged data, so a broker takes
//! the lock before it reads, recovers or writes anything in the dir and
//! holds it until it exits. `flock(2)` locks die with the process, so a
//! `kill -9` never leaves a stale lock behind.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{IoContext, LogError};

/// The lock file's name, as Kafka's.
const LOCK_FILE: &str = ".lock";

/// A held lock on one directory; released when dropped (or the process ends).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `dir` if missing and locks it, failing at once with
    /// [`LogError::DirLocked`] when another process holds the lock.
    ///
    /// The holder writes its pid into the file (Kafka leaves it empty) so
    /// that the refused process can name it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LogError> {
        fs::create_dir_all(dir).ctx(dir)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(&path)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().parse::<u32>().ok();
                return Err(LogError::DirLocked {
                    path: dir.to_path_buf(),
                    holder,
                });
            }
            Err(e) => return Err(LogError::io(&path, e.into())),
        }
        // Best effort: the pid only improves the other process's message.
        let pid = std::process::id().to_string();
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()));
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_and_names_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        let held = DirLock::acquire(&dir).unwrap();
        match DirLock::acquire(&dir) {
            Err(LogError::DirLocked { path, holder }) => {
                assert_eq!(path, dir);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected DirLocked, got {other:?}"),
        }
        drop(held);
        DirLock::acquire(&dir).expect("free again once the holder is gone");
    }
}
