//! `oxka-lossyfs MOUNTPOINT BACKING [--ignore-stdin]`: mounts the lossy
//! file system and serves it until told to stop.
//!
//! Control, for a nemesis in another process:
//! - stdout: `mounted MOUNTPOINT` once the mount is up, then one line per
//!   answer;
//! - stdin, one command a line: `power-cut` (answered `power-cut
//!   files_reverted=… …` once the cut is complete, or `error …`),
//!   `pending` (answered `pending files=… saved_bytes=… dirs=…`),
//!   `unmount` (or end of input: unmount and exit 0);
//! - SIGUSR1: a power cut (answered on stdout as above); SIGTERM, SIGINT,
//!   SIGHUP: unmount and exit 0. With `--ignore-stdin`, only signals.
//!
//! Exit status: 0 after an unmount, 1 if the mount failed, 2 usage.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use oxka_lossyfs::LossyMount;

enum Event {
    PowerCut,
    Pending,
    Exit,
}

fn blocked_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the set they are given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGUSR1, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ignore_stdin = args.iter().any(|a| a == "--ignore-stdin");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if paths.len() != 2 {
        eprintln!("usage: oxka-lossyfs MOUNTPOINT BACKING [--ignore-stdin]");
        std::process::exit(2);
    }
    let (mountpoint, backing) = (PathBuf::from(paths[0]), PathBuf::from(paths[1]));

    // Blocked in every thread (the FUSE thread inherits the mask), taken
    // by sigwait in one.
    let set = blocked_signals();
    // SAFETY: `set` is a valid signal set; no old mask is asked for.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };

    let mount = match LossyMount::mount(&backing, &mountpoint) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "oxka-lossyfs: mounting {} over {}: {e}",
                mountpoint.display(),
                backing.display()
            );
            std::process::exit(1);
        }
    };

    let (tx, rx) = mpsc::channel();
    let sig_tx = tx.clone();
    std::thread::spawn(move || loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is valid and `sig` is writable.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        let ev = if sig == libc::SIGUSR1 {
            Event::PowerCut
        } else {
            Event::Exit
        };
        if sig_tx.send(ev).is_err() {
            return;
        }
    });
    if !ignore_stdin {
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let ev = match line.as_deref().map(str::trim) {
                    Ok("power-cut") => Event::PowerCut,
                    Ok("pending") => Event::Pending,
                    Ok("unmount") | Err(_) => break,
                    Ok("") => continue,
                    Ok(other) => {
                        println!("error unknown command {other:?}");
                        continue;
                    }
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::Exit);
        });
    }

    let mut out = std::io::stdout();
    let _ = writeln!(out, "mounted {}", mountpoint.display());
    let _ = out.flush();
    for ev in rx {
        let line = match ev {
            Event::PowerCut => match mount.power_cut() {
                Ok(r) => format!("power-cut {r}"),
                Err(e) => format!("error power-cut: {e}"),
            },
            Event::Pending => {
                let p = mount.pending();
                format!(
                    "pending files={} saved_bytes={} dirs={}",
                    p.files, p.saved_bytes, p.dirs
                )
            }
            Event::Exit => break,
        };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    if let Err(e) = mount.unmount() {
        eprintln!("oxka-lossyfs: unmount: {e} (detached instead)");
    }
}
