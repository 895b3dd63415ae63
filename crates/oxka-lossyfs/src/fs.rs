//! The file system: a passthrough to the backing directory that keeps
//! what a power cut would undo (see the crate docs for the model).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::unsynced::Unsynced;
use crate::CutReport;

/// Where unlinked and replaced objects wait until they are durably gone:
/// a hidden directory at the backing root (same file system, so renames).
pub(crate) const TRASH: &str = ".oxka-lossyfs-trash";

/// Nothing is cached by the kernel's dentry and attribute caches: every
/// lookup and stat comes here, so a power cut is seen at once.
const TTL: Duration = Duration::ZERO;

const ROOT: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Loc {
    /// `name` in directory `parent` (the root: parent 0, empty name).
    Tree { parent: u64, name: OsString },
    /// In the trash, as its inode number.
    Trash,
    /// Removed from the backing directory.
    Gone,
}

#[derive(Debug)]
struct Node {
    loc: Loc,
    /// Open file handles on it.
    open: u32,
    /// File data changed since its last fsync.
    unsynced: Option<Unsynced>,
    /// A directory changed since its last fsync: its entries as they were
    /// at that fsync (or at mount), name → inode.
    durable_entries: Option<BTreeMap<OsString, u64>>,
}

enum Handle {
    File {
        ino: u64,
        file: File,
    },
    Dir {
        entries: Vec<(u64, FileType, OsString)>,
    },
}

pub(crate) struct State {
    root: PathBuf,
    trash: PathBuf,
    nodes: HashMap<u64, Node>,
    children: HashMap<(u64, OsString), u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
}

fn err(e: io::Error) -> Errno {
    Errno::from(e)
}

fn kind_of(ft: fs::FileType) -> FileType {
    FileType::from_std(ft).unwrap_or(FileType::RegularFile)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

fn attr(ino: u64, m: &fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.ctime(), m.ctime_nsec()),
        kind: kind_of(m.file_type()),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl State {
    pub(crate) fn new(backing: &Path) -> io::Result<State> {
        let root = fs::canonicalize(backing)?;
        let trash = root.join(TRASH);
        // A previous run's trash: whatever is in it was never durable.
        remove_any(&trash)?;
        fs::create_dir(&trash)?;
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                loc: Loc::Tree {
                    parent: 0,
                    name: OsString::new(),
                },
                open: 0,
                unsynced: None,
                durable_entries: None,
            },
        );
        Ok(State {
            root,
            trash,
            nodes,
            children: HashMap::new(),
            next_ino: ROOT + 1,
            handles: HashMap::new(),
            next_fh: 1,
        })
    }

    fn path(&self, ino: u64) -> Result<PathBuf, Errno> {
        if ino == ROOT {
            return Ok(self.root.clone());
        }
        match &self.nodes.get(&ino).ok_or(Errno::ESTALE)?.loc {
            Loc::Tree { parent, name } => Ok(self.path(*parent)?.join(name)),
            Loc::Trash => Ok(self.trash.join(ino.to_string())),
            Loc::Gone => Err(Errno::ENOENT),
        }
    }

    fn node(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::ESTALE)
    }

    fn hidden(parent: u64, name: &OsStr) -> bool {
        parent == ROOT && name == TRASH
    }

    /// The inode of `parent/name`, known or new.
    fn ino_for(&mut self, parent: u64, name: &OsStr) -> u64 {
        let key = (parent, name.to_os_string());
        if let Some(&ino) = self.children.get(&key) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                loc: Loc::Tree {
                    parent,
                    name: name.to_os_string(),
                },
                open: 0,
                unsynced: None,
                durable_entries: None,
            },
        );
        self.children.insert(key, ino);
        ino
    }

    /// `parent/name` in the backing dir, with its inode.
    fn child(&mut self, parent: u64, name: &OsStr) -> Result<(u64, fs::Metadata), Errno> {
        if Self::hidden(parent, name) {
            return Err(Errno::ENOENT);
        }
        let path = self.path(parent)?.join(name);
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok((self.ino_for(parent, name), m)),
            Err(e) => {
                if let Some(ino) = self.children.remove(&(parent, name.to_os_string())) {
                    // Changed behind our back: forget the name.
                    if let Some(n) = self.nodes.get_mut(&ino) {
                        n.loc = Loc::Gone;
                    }
                }
                Err(err(e))
            }
        }
    }

    /// The entries of a directory in the backing dir, name → inode.
    fn entries(&mut self, dir: u64) -> Result<BTreeMap<OsString, u64>, Errno> {
        let path = self.path(dir)?;
        let mut out = BTreeMap::new();
        for e in fs::read_dir(&path).map_err(err)? {
            let e = e.map_err(err)?;
            let name = e.file_name();
            if Self::hidden(dir, &name) {
                continue;
            }
            out.insert(name.clone(), self.ino_for(dir, &name));
        }
        Ok(out)
    }

    /// Before the first change of `dir`'s entries since its last fsync:
    /// remember them as its durable entries.
    fn before_dir_change(&mut self, dir: u64) -> Result<(), Errno> {
        if self.node(dir)?.durable_entries.is_none() {
            let entries = self.entries(dir)?;
            self.node(dir)?.durable_entries = Some(entries);
        }
        Ok(())
    }

    /// Before the first change of a file's data since its last fsync:
    /// its size now is its durable size.
    fn unsynced_of(&mut self, ino: u64, current_len: u64) -> Result<&mut Unsynced, Errno> {
        Ok(self
            .node(ino)?
            .unsynced
            .get_or_insert_with(|| Unsynced::new(current_len)))
    }

    fn referenced(&self, ino: u64) -> bool {
        self.nodes
            .values()
            .filter_map(|n| n.durable_entries.as_ref())
            .any(|e| e.values().any(|&i| i == ino))
    }

    /// Takes `parent/name` (inode `ino`) out of the tree: into the trash
    /// while some durable directory still names it, else removed.
    fn take_out(&mut self, parent: u64, name: &OsStr, ino: u64) -> Result<(), Errno> {
        let from = self.path(parent)?.join(name);
        fs::rename(&from, self.trash.join(ino.to_string())).map_err(err)?;
        self.children.remove(&(parent, name.to_os_string()));
        self.node(ino)?.loc = Loc::Trash;
        if !self.referenced(ino) {
            self.remove_trashed(ino)?;
        }
        Ok(())
    }

    fn remove_trashed(&mut self, ino: u64) -> Result<(), Errno> {
        remove_any(&self.trash.join(ino.to_string())).map_err(err)?;
        let node = self.node(ino)?;
        node.loc = Loc::Gone;
        if node.open == 0 {
            self.nodes.remove(&ino);
        }
        Ok(())
    }

    fn add_handle(&mut self, h: Handle) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        if let Handle::File { ino, .. } = &h {
            if let Some(n) = self.nodes.get_mut(ino) {
                n.open += 1;
            }
        }
        self.handles.insert(fh, h);
        fh
    }

    fn file(&mut self, fh: u64) -> Result<(u64, &mut File), Errno> {
        match self.handles.get_mut(&fh) {
            Some(Handle::File { ino, file }) => Ok((*ino, file)),
            _ => Err(Errno::EBADF),
        }
    }

    fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let (ino, file) = self.file(fh)?;
        let mut file = file.try_clone().map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        self.unsynced_of(ino, len)?
            .before_change(&mut file, offset, offset + data.len() as u64)
            .map_err(err)?;
        file.write_all_at(data, offset).map_err(err)?;
        Ok(data.len() as u32)
    }

    fn truncate(&mut self, ino: u64, fh: Option<u64>, size: u64) -> Result<(), Errno> {
        let mut file = match fh.and_then(|fh| self.file(fh).ok()) {
            Some((_, f)) => f.try_clone().map_err(err)?,
            None => OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.path(ino)?)
                .map_err(err)?,
        };
        let len = file.metadata().map_err(err)?.len();
        self.unsynced_of(ino, len)?
            .before_change(&mut file, size, u64::MAX)
            .map_err(err)?;
        file.set_len(size).map_err(err)
    }

    /// A new entry `parent/name` was just made in the backing dir.
    fn created(&mut self, parent: u64, name: &OsStr, m: &fs::Metadata) -> u64 {
        let ino = self.ino_for(parent, name);
        if m.is_file() {
            // Its durable content is nothing, as its name is not durable.
            self.nodes.get_mut(&ino).expect("just made").unsynced = Some(Unsynced::new(0));
        }
        ino
    }

    fn fsyncdir(&mut self, dir: u64) -> Result<(), Errno> {
        if self.node(dir)?.durable_entries.take().is_none() {
            return Ok(());
        }
        // An object renamed into `dir` from another directory is durably
        // here now, no longer where it was.
        let here: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(&n.loc, Loc::Tree { parent, .. } if *parent == dir))
            .map(|(&i, _)| i)
            .collect();
        for n in self.nodes.values_mut() {
            if let Some(e) = n.durable_entries.as_mut() {
                e.retain(|_, i| !here.contains(i));
            }
        }
        // What only this directory still named is durably gone.
        let trashed: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.loc == Loc::Trash)
            .map(|(&i, _)| i)
            .collect();
        for ino in trashed {
            if !self.referenced(ino) {
                self.remove_trashed(ino)?;
            }
        }
        Ok(())
    }

    pub(crate) fn power_cut(&mut self) -> io::Result<(CutReport, Vec<u64>)> {
        let mut report = CutReport::default();
        let mut touched = Vec::new();
        // File data back to the last fsync.
        let dirty: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.unsynced.is_some() && n.loc != Loc::Gone)
            .map(|(&i, _)| i)
            .collect();
        for ino in dirty {
            let path = self.path(ino).map_err(to_io)?;
            let u = self.nodes.get_mut(&ino).and_then(|n| n.unsynced.take());
            let Some(u) = u else { continue };
            let mut f = OpenOptions::new().read(true).write(true).open(&path)?;
            let len = f.metadata()?.len();
            report.bytes_cut += len.saturating_sub(u.durable_size());
            report.bytes_restored += u.restore(&mut f)?;
            report.files_reverted += 1;
            touched.push(ino);
        }
        // Directory entries back to each directory's last fsync: first
        // every name that is not durable goes to the trash...
        let dirs: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.durable_entries.is_some() && n.loc != Loc::Gone)
            .map(|(&i, _)| i)
            .collect();
        for &dir in &dirs {
            let durable = self.nodes[&dir].durable_entries.clone().unwrap_or_default();
            let now = self.entries(dir).map_err(to_io)?;
            for (name, ino) in now {
                if durable.get(&name) != Some(&ino) {
                    let from = self.path(dir).map_err(to_io)?.join(&name);
                    fs::rename(&from, self.trash.join(ino.to_string()))?;
                    self.children.remove(&(dir, name.clone()));
                    if let Some(n) = self.nodes.get_mut(&ino) {
                        n.loc = Loc::Trash;
                    }
                    report.entries_removed += 1;
                    touched.push(dir);
                }
            }
        }
        // ...then every durable name not in place comes back from it.
        for &dir in &dirs {
            let durable = self.nodes[&dir].durable_entries.clone().unwrap_or_default();
            for (name, ino) in durable {
                let want = Loc::Tree {
                    parent: dir,
                    name: name.clone(),
                };
                match self.nodes.get(&ino).map(|n| &n.loc) {
                    Some(l) if *l == want => {}
                    Some(Loc::Trash) => {
                        let to = self.path(dir).map_err(to_io)?.join(&name);
                        fs::rename(self.trash.join(ino.to_string()), &to)?;
                        self.nodes.get_mut(&ino).expect("present").loc = want;
                        self.children.insert((dir, name), ino);
                        report.entries_restored += 1;
                        touched.push(dir);
                    }
                    _ => report.entries_lost += 1,
                }
            }
        }
        // What is left in the trash was never durable anywhere.
        for n in self.nodes.values_mut() {
            n.durable_entries = None;
        }
        let trashed: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.loc == Loc::Trash)
            .map(|(&i, _)| i)
            .collect();
        for ino in trashed {
            self.remove_trashed(ino).map_err(to_io)?;
        }
        Ok((report, touched))
    }

    pub(crate) fn pending(&self) -> crate::Pending {
        let mut p = crate::Pending::default();
        for n in self.nodes.values() {
            if n.loc == Loc::Gone {
                continue;
            }
            if let Some(u) = &n.unsynced {
                p.files += 1;
                p.saved_bytes += u.saved_bytes();
            }
            if n.durable_entries.is_some() {
                p.dirs += 1;
            }
        }
        p
    }
}

/// The FUSE side: every request takes the one lock.
pub(crate) struct LossyFs {
    pub(crate) state: Arc<Mutex<State>>,
}

impl LossyFs {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn open_options(flags: i32) -> OpenOptions {
    let mut o = OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => o.read(true),
        // Read too: a page the kernel fills before a partial write.
        _ => o.read(true).write(true),
    };
    o
}

impl Filesystem for LossyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.lock().child(parent.0, name) {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut s = self.lock();
        let m = match fh.map(|fh| s.file(fh.0)) {
            Some(Ok((_, f))) => f.metadata().map_err(err),
            _ => s
                .path(ino.0)
                .and_then(|p| fs::symlink_metadata(p).map_err(err)),
        };
        match m {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = self.lock();
        let r = (|| -> Result<fs::Metadata, Errno> {
            let path = s.path(ino.0)?;
            if let Some(size) = size {
                s.truncate(ino.0, fh.map(|f| f.0), size)?;
            }
            if let Some(mode) = mode {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(err)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&path, uid, gid).map_err(err)?;
            }
            if atime.is_some() || mtime.is_some() {
                let f = File::open(&path).map_err(err)?;
                let at = |t: TimeOrNow| match t {
                    TimeOrNow::SpecificTime(t) => t,
                    TimeOrNow::Now => SystemTime::now(),
                };
                let mut times = fs::FileTimes::new();
                if let Some(a) = atime {
                    times = times.set_accessed(at(a));
                }
                if let Some(m) = mtime {
                    times = times.set_modified(at(m));
                }
                f.set_times(times).map_err(err)?;
            }
            fs::symlink_metadata(&path).map_err(err)
        })();
        match r {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .lock()
            .path(ino.0)
            .and_then(|p| fs::read_link(p).map_err(err))
        {
            Ok(t) => reply.data(t.as_os_str().as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut s = self.lock();
        let r = (|| -> Result<(u64, fs::Metadata), Errno> {
            if State::hidden(parent.0, name) {
                return Err(Errno::EPERM);
            }
            s.before_dir_change(parent.0)?;
            let path = s.path(parent.0)?.join(name);
            fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(&path)
                .map_err(err)?;
            let m = fs::symlink_metadata(&path).map_err(err)?;
            Ok((s.created(parent.0, name, &m), m))
        })();
        match r {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut s = self.lock();
        let r = (|| -> Result<(u64, fs::Metadata), Errno> {
            if State::hidden(parent.0, link_name) {
                return Err(Errno::EPERM);
            }
            s.before_dir_change(parent.0)?;
            let path = s.path(parent.0)?.join(link_name);
            std::os::unix::fs::symlink(target, &path).map_err(err)?;
            let m = fs::symlink_metadata(&path).map_err(err)?;
            Ok((s.created(parent.0, link_name, &m), m))
        })();
        match r {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = self.lock();
        let r = (|| -> Result<(), Errno> {
            let (ino, m) = s.child(parent.0, name)?;
            if m.is_dir() {
                return Err(Errno::EISDIR);
            }
            s.before_dir_change(parent.0)?;
            s.take_out(parent.0, name, ino)
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = self.lock();
        let r = (|| -> Result<(), Errno> {
            let (ino, m) = s.child(parent.0, name)?;
            if !m.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let path = s.path(ino)?;
            if fs::read_dir(&path).map_err(err)?.next().is_some() {
                return Err(Errno::ENOTEMPTY);
            }
            s.before_dir_change(parent.0)?;
            s.take_out(parent.0, name, ino)
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut s = self.lock();
        let r = (|| -> Result<(), Errno> {
            if flags.bits() & !libc::RENAME_NOREPLACE != 0 {
                return Err(Errno::EINVAL); // RENAME_EXCHANGE, RENAME_WHITEOUT
            }
            if State::hidden(newparent.0, newname) {
                return Err(Errno::EPERM);
            }
            let (ino, m) = s.child(parent.0, name)?;
            let target = s.child(newparent.0, newname).ok();
            if let Some((tino, tm)) = &target {
                if *tino == ino {
                    return Ok(());
                }
                if flags.bits() & libc::RENAME_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                match (m.is_dir(), tm.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) => {
                        let p = s.path(*tino)?;
                        if fs::read_dir(&p).map_err(err)?.next().is_some() {
                            return Err(Errno::ENOTEMPTY);
                        }
                    }
                    (false, false) => {}
                }
            }
            s.before_dir_change(parent.0)?;
            s.before_dir_change(newparent.0)?;
            let from = s.path(parent.0)?.join(name);
            let to = s.path(newparent.0)?.join(newname);
            if let Some((tino, _)) = target {
                s.take_out(newparent.0, newname, tino)?;
            }
            fs::rename(&from, &to).map_err(err)?;
            s.children.remove(&(parent.0, name.to_os_string()));
            s.children
                .insert((newparent.0, newname.to_os_string()), ino);
            s.node(ino)?.loc = Loc::Tree {
                parent: newparent.0,
                name: newname.to_os_string(),
            };
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut s = self.lock();
        let r = (|| -> Result<u64, Errno> {
            let path = s.path(ino.0)?;
            let file = open_options(flags.0).open(&path).map_err(err)?;
            Ok(s.add_handle(Handle::File { ino: ino.0, file }))
        })();
        match r {
            // No FOPEN_KEEP_CACHE: every open drops the kernel's cached
            // pages of the file, so what a power cut put back is read.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = self.lock();
        let r = (|| -> Result<(u64, fs::Metadata, u64), Errno> {
            if State::hidden(parent.0, name) {
                return Err(Errno::EPERM);
            }
            let path = s.path(parent.0)?.join(name);
            if let Ok((ino, _)) = s.child(parent.0, name) {
                // Raced with another creator: an open of what is there.
                if flags & libc::O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                let file = open_options(flags).open(&path).map_err(err)?;
                if flags & libc::O_TRUNC != 0 {
                    s.truncate(ino, None, 0)?;
                }
                let m = file.metadata().map_err(err)?;
                return Ok((ino, m, s.add_handle(Handle::File { ino, file })));
            }
            s.before_dir_change(parent.0)?;
            let file = open_options(flags)
                .create_new(true)
                .mode(mode & !umask & 0o7777)
                .open(&path)
                .map_err(err)?;
            let m = file.metadata().map_err(err)?;
            let ino = s.created(parent.0, name, &m);
            Ok((ino, m, s.add_handle(Handle::File { ino, file })))
        })();
        match r {
            Ok((ino, m, fh)) => reply.created(
                &TTL,
                &attr(ino, &m),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut s = self.lock();
        let r = s.file(fh.0).and_then(|(_, f)| {
            let mut buf = vec![0u8; size as usize];
            let mut got = 0;
            while got < buf.len() {
                match f.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(err(e)),
                }
            }
            buf.truncate(got);
            Ok(buf)
        });
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.lock().write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    /// No extended attributes: ENOSYS makes the kernel stop asking (the
    /// default answer, without fuser's warning on every write a process
    /// makes with `security.capability` checks).
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &std::ffi::OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut s = self.lock();
        if let Some(Handle::File { ino, .. }) = s.handles.remove(&fh.0) {
            if let Some(n) = s.nodes.get_mut(&ino) {
                n.open = n.open.saturating_sub(1);
                if n.open == 0 && n.loc == Loc::Gone {
                    s.nodes.remove(&ino);
                }
            }
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Durable from here on; the backing dir is scratch, so no real
        // fsync is needed for the simulation.
        match self.lock().node(ino.0) {
            Ok(n) => {
                n.unsynced = None;
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut s = self.lock();
        let r = (|| -> Result<u64, Errno> {
            let parent = match &s.nodes.get(&ino.0).ok_or(Errno::ESTALE)?.loc {
                Loc::Tree { parent, .. } if *parent != 0 => *parent,
                _ => ino.0,
            };
            let mut entries = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (parent, FileType::Directory, OsString::from("..")),
            ];
            let path = s.path(ino.0)?;
            for e in fs::read_dir(&path).map_err(err)? {
                let e = e.map_err(err)?;
                let name = e.file_name();
                if State::hidden(ino.0, &name) {
                    continue;
                }
                let ft = e.file_type().map_err(err)?;
                let child = s.ino_for(ino.0, &name);
                entries.push((child, kind_of(ft), name));
            }
            Ok(s.add_handle(Handle::Dir { entries }))
        })();
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let s = self.lock();
        match s.handles.get(&fh.0) {
            Some(Handle::Dir { entries }) => {
                for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok()
            }
            _ => reply.error(Errno::EBADF),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.lock().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.lock().fsyncdir(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    // The block counts are u64 on 64-bit Linux, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let root = self.lock().root.clone();
        match statvfs(&root) {
            Ok(v) => reply.statfs(
                u64::from(v.f_blocks),
                u64::from(v.f_bfree),
                u64::from(v.f_bavail),
                u64::from(v.f_files),
                u64::from(v.f_ffree),
                v.f_bsize as u32,
                v.f_namemax as u32,
                v.f_frsize as u32,
            ),
            Err(e) => reply.error(err(e)),
        }
    }
}

fn statvfs(path: &Path) -> io::Result<libc::statvfs> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut v = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid C string and `v` points to writable memory of
    // the right type; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), v.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `v`.
    Ok(unsafe { v.assume_init() })
}

fn to_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.code())
}
