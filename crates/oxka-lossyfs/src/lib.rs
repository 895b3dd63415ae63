//! A simulated power cut for one node: a passthrough FUSE file system over
//! a backing directory that remembers what has not been fsynced and can
//! drop it on command, in the spirit of LazyFS (the FUSE file system
//! Jepsen uses to lose unsynced writes).
//!
//! Every operation goes through to the backing directory at once (reads
//! see the writes); beside it the file system keeps what a power cut
//! would undo. The model, kept simple and exact:
//!
//! - **File data** is durable after an fsync (or fdatasync) of that file:
//!   its size and every byte. A power cut puts each file changed since
//!   its last fsync back to that content: its durable size (longer files
//!   are cut, shorter ones grow back) and the durable bytes that were
//!   overwritten or cut. Files unchanged since the mount count as durable.
//! - **Names** are durable after an fsync of their directory. A power cut
//!   puts each directory changed since its last fsync back to the entries
//!   it had then: names created since (files, directories, symlinks,
//!   rename targets) are removed, names unlinked or renamed away come
//!   back. A rename between two directories is durable once the
//!   destination is fsynced (the object leaves the source's durable
//!   entries then); until then a power cut moves it back.
//! - Both are independent: a file fsynced in a directory that was not
//!   fsynced since its creation disappears; a new name made durable
//!   without an fsync of the file has size 0.
//!
//! Memory: per file changed since its fsync, the durable bytes it
//! overwrote or cut since (each byte saved once, appends cost nothing);
//! per directory changed since its fsync, its list of entries. Unlinked
//! and replaced objects that a directory's durable entries still name
//! wait in a hidden directory of the backing dir (`.oxka-lossyfs-trash`,
//! on disk, not in memory) until that directory is fsynced or the cut.
//!
//! Not modelled: mode, owner and times (passed through, never undone);
//! hard links (`link` is refused with EPERM); fallocate, copy_file_range
//! and lseek(SEEK_DATA) are left to the kernel's generic fallbacks. flock
//! is not sent to the file system at all: the kernel keeps flock locks of
//! a FUSE mount itself, per open file, and drops them when the holder
//! dies, as on a local file system. No mmap is needed by oxka; shared
//! mmap would work through the kernel's page cache (no direct I/O) but is
//! not tested. The kernel caches no names or attributes (TTL 0) and drops
//! a file's cached pages at every open, so what a cut restored is what
//! the next process reads.
//!
//! Use: kill the node with SIGKILL, call [`LossyMount::power_cut`], start
//! the node again on the same mount. A cut while a process still has
//! files open under the mount is allowed but its later writes land on
//! whatever is there.

mod fs;
pub mod unsynced;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, Config, MountOption, Notifier};

/// What one power cut undid.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose data went back to their last fsync.
    pub files_reverted: u64,
    /// Bytes past the durable sizes, dropped.
    pub bytes_cut: u64,
    /// Overwritten or cut durable bytes written back.
    pub bytes_restored: u64,
    /// Names not durable in their directory, removed.
    pub entries_removed: u64,
    /// Durable names unlinked or renamed away, put back.
    pub entries_restored: u64,
    /// Durable names that could not be put back (should stay 0).
    pub entries_lost: u64,
}

impl std::fmt::Display for CutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "files_reverted={} bytes_cut={} bytes_restored={} entries_removed={} entries_restored={} entries_lost={}",
            self.files_reverted,
            self.bytes_cut,
            self.bytes_restored,
            self.entries_removed,
            self.entries_restored,
            self.entries_lost
        )
    }
}

/// What a power cut now would undo, roughly.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Files changed since their last fsync.
    pub files: u64,
    /// Durable bytes held in memory to put them back.
    pub saved_bytes: u64,
    /// Directories changed since their last fsync.
    pub dirs: u64,
}

/// Whether this process can mount FUSE itself (root and `/dev/fuse`);
/// the reason when not.
pub fn fuse_available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (the mount is made with mount(2), which needs root)".into());
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(format!("/dev/fuse: {e}"));
    }
    Ok(())
}

/// A mounted lossy file system; unmounted when dropped.
pub struct LossyMount {
    session: Option<BackgroundSession>,
    notifier: Notifier,
    state: Arc<Mutex<fs::State>>,
    mountpoint: PathBuf,
}

impl LossyMount {
    /// Mounts `backing` (an existing directory) at `mountpoint` (an
    /// existing, preferably empty directory). Everything in `backing` now
    /// counts as durable. Needs root (see [`fuse_available`]).
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<LossyMount> {
        let state = Arc::new(Mutex::new(fs::State::new(backing)?));
        let fs = fs::LossyFs {
            state: state.clone(),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("oxka-lossyfs".into()),
            MountOption::Subtype("oxka-lossyfs".into()),
            MountOption::NoAtime,
        ];
        let session = fuser::spawn_mount(fs, mountpoint, &config)?;
        Ok(LossyMount {
            notifier: session.notifier(),
            session: Some(session),
            state,
            mountpoint: mountpoint.to_path_buf(),
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Drops everything not durable (see the crate docs): file data back
    /// to each file's last fsync, directory entries back to each
    /// directory's last fsync. The mount keeps serving; from here on
    /// everything counts as durable again.
    pub fn power_cut(&self) -> io::Result<CutReport> {
        let (report, touched) = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .power_cut()?;
        // Outside the lock: the kernel may need the file system to answer
        // while it drops pages. Attributes and names are not cached
        // (TTL 0) and every open drops a file's pages anyway, so this is
        // for processes that kept a file open across the cut.
        for ino in touched {
            let _ = self.notifier.inval_inode(fuser::INodeNo(ino), 0, 0);
        }
        Ok(report)
    }

    /// What a power cut now would undo.
    pub fn pending(&self) -> Pending {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending()
    }

    /// Unmounts; if the mount is busy, detaches it (it goes once the last
    /// user closes its files).
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                detach(&self.mountpoint);
                Err(e)
            }
        }
    }
}

fn detach(mountpoint: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(mountpoint.as_os_str().as_bytes()) {
        // SAFETY: a valid C string; umount2 has no other preconditions.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

impl Drop for LossyMount {
    fn drop(&mut self) {
        let _ = self.unmount_inner();
    }
}
