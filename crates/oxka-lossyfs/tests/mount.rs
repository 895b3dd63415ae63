//! The real mount: writes through FUSE, fsyncs, power cuts, and what is
//! left. Skipped (with a message) where this process cannot mount FUSE.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use oxka_lossyfs::LossyMount;

struct Fixture {
    _tmp: tempfile::TempDir,
    backing: std::path::PathBuf,
    mnt: std::path::PathBuf,
}

fn fixture(test: &str) -> Option<Fixture> {
    if let Err(why) = oxka_lossyfs::fuse_available() {
        eprintln!("SKIPPED {test}: cannot mount FUSE here: {why}");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("backing");
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&backing).unwrap();
    fs::create_dir(&mnt).unwrap();
    Some(Fixture {
        _tmp: tmp,
        backing,
        mnt,
    })
}

fn read(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(p).unwrap().read_to_end(&mut v).unwrap();
    v
}

fn fsync_dir(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn only_fsynced_data_survives_a_power_cut() {
    let Some(f) = fixture("only_fsynced_data_survives_a_power_cut") else {
        return;
    };
    fs::write(f.backing.join("old"), b"there before the mount").unwrap();
    let m = LossyMount::mount(&f.backing, &f.mnt).unwrap();

    // A new file: 4 KiB synced, file and directory.
    let log = f.mnt.join("log");
    let mut w = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&log)
        .unwrap();
    let durable: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    w.write_all(&durable).unwrap();
    w.sync_data().unwrap();
    fsync_dir(&f.mnt);
    // Then, unsynced: an append, an overwrite inside the synced part.
    w.write_all(&[0xee; 10_000]).unwrap();
    w.write_all_at(b"OVERWRITTEN", 100).unwrap();
    drop(w);
    // A file that was there before: overwritten and cut, not synced.
    let old = f.mnt.join("old");
    let o = OpenOptions::new().write(true).open(&old).unwrap();
    o.write_all_at(b"THERE", 0).unwrap();
    o.set_len(8).unwrap();
    drop(o);
    // Reads see the writes (and fill the kernel's page cache).
    assert_eq!(read(&log).len(), 4096 + 10_000);
    assert_eq!(&read(&log)[100..111], b"OVERWRITTEN");
    assert_eq!(read(&old), b"THERE be");
    let p = m.pending();
    assert_eq!(p.files, 2, "{p:?}");
    // Saved: the 11 synced bytes of `log` overwritten; of `old` (22
    // bytes) the 5 overwritten and the 14 cut, each once.
    assert_eq!(p.saved_bytes, 11 + 5 + 14, "{p:?}");

    let r = m.power_cut().unwrap();
    assert_eq!(r.files_reverted, 2, "{r}");
    assert_eq!(r.entries_removed, 0, "{r}");
    assert_eq!(read(&log), durable, "the synced 4 KiB, exactly");
    assert_eq!(read(&old), b"there before the mount");
    assert_eq!(fs::metadata(&log).unwrap().len(), 4096);
    assert_eq!(
        read(&f.backing.join("log")),
        durable,
        "the backing file too"
    );
    assert_eq!(m.pending(), Default::default());

    // A second cut with nothing new changes nothing.
    let r = m.power_cut().unwrap();
    assert_eq!(r, Default::default());
    assert_eq!(read(&log), durable);
    m.unmount().unwrap();
}

#[test]
fn a_file_kept_open_across_the_cut_reads_the_durable_content() {
    let Some(f) = fixture("a_file_kept_open_across_the_cut_reads_the_durable_content") else {
        return;
    };
    fs::write(f.backing.join("f"), b"durable").unwrap();
    let m = LossyMount::mount(&f.backing, &f.mnt).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(f.mnt.join("f"))
        .unwrap();
    file.write_all_at(b"lost!!!", 0).unwrap();
    let mut buf = [0u8; 7];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"lost!!!");
    m.power_cut().unwrap();
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"durable");
}

#[test]
fn names_are_durable_only_after_a_directory_fsync() {
    let Some(f) = fixture("names_are_durable_only_after_a_directory_fsync") else {
        return;
    };
    fs::create_dir(f.backing.join("d")).unwrap();
    fs::create_dir(f.backing.join("e")).unwrap();
    fs::write(f.backing.join("d/unlinked"), b"u").unwrap();
    fs::write(f.backing.join("d/renamed"), b"r").unwrap();
    fs::write(f.backing.join("d/moved"), b"m").unwrap();
    fs::write(f.backing.join("d/checkpoint"), b"v1").unwrap();
    fs::write(f.backing.join("d/replaced"), b"old").unwrap();
    let m = LossyMount::mount(&f.backing, &f.mnt).unwrap();
    let d = f.mnt.join("d");
    let e = f.mnt.join("e");

    // Not durable: a new file, fsynced itself but not its directory.
    let mut n = File::create(d.join("new")).unwrap();
    n.write_all(b"new").unwrap();
    n.sync_all().unwrap();
    drop(n);
    fs::remove_file(d.join("unlinked")).unwrap();
    fs::rename(d.join("renamed"), d.join("renamed.2")).unwrap();
    fs::create_dir(d.join("newdir")).unwrap();
    fs::write(d.join("newdir/inner"), b"i").unwrap();
    fs::write(d.join("replacement"), b"new").unwrap();
    fs::rename(d.join("replacement"), d.join("replaced")).unwrap();
    // Durable: moved to e, e fsynced (d is not).
    fs::rename(d.join("moved"), e.join("moved")).unwrap();
    fsync_dir(&e);
    // Durable: the write-temp, fsync, rename, fsync-dir pattern, in e.
    let mut t = File::create(e.join("checkpoint.tmp")).unwrap();
    t.write_all(b"v2").unwrap();
    t.sync_all().unwrap();
    drop(t);
    fs::rename(e.join("checkpoint.tmp"), e.join("checkpoint")).unwrap();
    fsync_dir(&e);
    // Not durable: a new file in e after its last fsync.
    fs::write(e.join("late"), b"late").unwrap();

    assert_eq!(
        names(&d),
        ["checkpoint", "new", "newdir", "renamed.2", "replaced"]
    );
    let r = m.power_cut().unwrap();
    assert_eq!(r.entries_lost, 0, "{r}");
    assert_eq!(
        names(&d),
        ["checkpoint", "renamed", "replaced", "unlinked"],
        "{r}"
    );
    assert_eq!(fs::read(d.join("unlinked")).unwrap(), b"u");
    assert_eq!(fs::read(d.join("renamed")).unwrap(), b"r");
    assert_eq!(fs::read(d.join("replaced")).unwrap(), b"old");
    assert_eq!(names(&e), ["checkpoint", "moved"]);
    assert_eq!(fs::read(e.join("moved")).unwrap(), b"m");
    assert_eq!(fs::read(e.join("checkpoint")).unwrap(), b"v2");
    // The trash is hidden and left empty.
    assert_eq!(names(&f.mnt), ["d", "e"]);
    assert!(names(&f.backing.join(".oxka-lossyfs-trash")).is_empty());

    // A file whose name is durable but whose data never was: empty.
    let mut n = File::create(d.join("named")).unwrap();
    n.write_all(b"data").unwrap();
    drop(n);
    fsync_dir(&d);
    m.power_cut().unwrap();
    assert_eq!(fs::read(d.join("named")).unwrap(), b"");
}

#[test]
fn flock_is_exclusive_and_dies_with_its_holder() {
    let Some(f) = fixture("flock_is_exclusive_and_dies_with_its_holder") else {
        return;
    };
    let _m = LossyMount::mount(&f.backing, &f.mnt).unwrap();
    let lock = f.mnt.join(".lock");
    let a = File::create(&lock).unwrap();
    let b = File::open(&lock).unwrap();
    let flock = |f: &File| unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(flock(&a), 0);
    assert_eq!(flock(&b), -1, "a second exclusive lock is refused");
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EWOULDBLOCK)
    );
    drop(a);
    assert_eq!(flock(&b), 0, "free once the holder closed it");
}
