//! A local cluster of oxka nodes started from the running binary, which
//! the nemesis may kill, restart, pause and resume. One node runs the
//! single-node mode users start with (`oxka broker --listen --data-dir`);
//! more run KRaft's combined mode (every node a broker and a voter).
//!
//! Every node is its own process group, killed (SIGKILL, SIGCONT first if
//! paused) and its data removed when the cluster is dropped: on success,
//! failure, panic or Ctrl-C (the caller drops it).

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use thiserror::Error;

use oxka_lossyfs::{CutReport, LossyMount};

use super::netns::{Net, NetError};

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot prepare the cluster's directory {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start node {id} ({bin}): {source}")]
    Spawn {
        id: i32,
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot mount the lossy file system for node {id}: {source}")]
    Mount {
        id: i32,
        #[source]
        source: std::io::Error,
    },
}

pub struct Node {
    pub id: i32,
    /// 127.0.0.1, or the node's address in its namespace.
    pub host: std::net::Ipv4Addr,
    pub port: u16,
    pub controller_port: u16,
    dir: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// The data dir's lossy mount, when power cuts are on.
    mount: Option<LossyMount>,
}

impl Node {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.with_extension("log")
    }
}

pub struct LocalCluster {
    bin: PathBuf,
    root: PathBuf,
    keep: bool,
    voters: String,
    /// `key=value` broker settings for every node.
    settings: Vec<String>,
    pub nodes: Vec<Node>,
    /// The namespaces when the network can be cut (dropped after the
    /// nodes are killed).
    net: Option<Net>,
    /// After `shutdown`: nothing starts again.
    closed: bool,
}

fn free_port() -> Result<u16, ClusterError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(ClusterError::Port)
}

impl LocalCluster {
    /// Starts `n` nodes of `bin` under a new directory in `parent`; with
    /// `namespaces`, each in its own network namespace (see `netns`); with
    /// `lossy`, each node's data dir on a file system that forgets what
    /// was not fsynced when told (power cuts, `oxka-lossyfs`).
    pub fn start(
        bin: &Path,
        parent: &Path,
        n: usize,
        settings: &[String],
        keep: bool,
        namespaces: bool,
        lossy: bool,
    ) -> Result<LocalCluster, ClusterError> {
        let ids: Vec<i32> = (1..=n as i32).collect();
        let net = if namespaces {
            Some(Net::create(&ids)?)
        } else {
            None
        };
        sweep_stale_mounts();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let root = parent.join(format!("oxka-verify-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&root).map_err(|source| ClusterError::Dir {
            path: root.display().to_string(),
            source,
        })?;
        let mut nodes = Vec::new();
        for id in 1..=n as i32 {
            // in a namespace of its own a node has its address to itself
            let (host, port, controller_port) = match &net {
                Some(net) => (net.addr(id), 9092, 9093),
                None => (std::net::Ipv4Addr::LOCALHOST, free_port()?, free_port()?),
            };
            let dir = root.join(format!("node-{id}"));
            let mount = if lossy {
                let backing = root.join(format!("node-{id}.backing"));
                let made =
                    std::fs::create_dir_all(&backing).and_then(|_| std::fs::create_dir_all(&dir));
                made.and_then(|_| LossyMount::mount(&backing, &dir))
                    .map(Some)
                    .map_err(|source| ClusterError::Mount { id, source })?
            } else {
                None
            };
            nodes.push(Node {
                id,
                host,
                port,
                controller_port,
                dir,
                child: None,
                paused: false,
                mount,
            });
        }
        let voters = nodes
            .iter()
            .map(|n| format!("{}@{}:{}", n.id, n.host, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = LocalCluster {
            bin: bin.to_path_buf(),
            root,
            keep,
            voters,
            settings: settings.to_vec(),
            nodes,
            net,
            closed: false,
        };
        for id in 1..=n as i32 {
            c.spawn(id)?;
        }
        Ok(c)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}:{}", n.host, n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&self, id: i32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn node_mut(&mut self, id: i32) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// The namespaces, when the network can be cut.
    pub fn net(&self) -> Option<&Net> {
        self.net.as_ref()
    }

    fn command(&self, n: &Node) -> Command {
        // `ip netns exec` enters the namespace and execs the node: the
        // child's pid is the node's
        let mut cmd = match &self.net {
            Some(net) => {
                let mut c = Command::new("ip");
                c.arg("netns").arg("exec").arg(net.ns(n.id)).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("broker").arg("--log-level").arg("info");
        if self.nodes.len() == 1 {
            cmd.arg("--listen")
                .arg(format!("{}:{}", n.host, n.port))
                .arg("--data-dir")
                .arg(&n.dir);
        } else {
            for kv in [
                format!("node.id={}", n.id),
                "process.roles=broker,controller".to_string(),
                format!(
                    "listeners=PLAINTEXT://{h}:{},CONTROLLER://{h}:{}",
                    n.port,
                    n.controller_port,
                    h = n.host
                ),
                format!("advertised.listeners=PLAINTEXT://{}:{}", n.host, n.port),
                "controller.listener.names=CONTROLLER".to_string(),
                format!("controller.quorum.voters={}", self.voters),
                format!("log.dirs={}", n.dir.display()),
                format!("broker.rack=rack-{}", (n.id - 1) % 3),
            ] {
                cmd.arg("--override").arg(kv);
            }
        }
        for kv in &self.settings {
            cmd.arg("--override").arg(kv);
        }
        cmd
    }

    /// Starts node `id` (again); its output goes to `node-<id>.log`.
    pub fn spawn(&mut self, id: i32) -> Result<(), ClusterError> {
        let Some(n) = self.node(id) else {
            return Ok(());
        };
        if n.running() || self.closed {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(n.log_path())
            .map_err(|source| ClusterError::Dir {
                path: n.log_path().display().to_string(),
                source,
            })?;
        let err = log.try_clone().map_err(|source| ClusterError::Dir {
            path: n.log_path().display().to_string(),
            source,
        })?;
        let mut cmd = self.command(n);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd.spawn().map_err(|source| ClusterError::Spawn {
            id,
            bin: self.bin.display().to_string(),
            source,
        })?;
        if let Some(n) = self.node_mut(id) {
            n.child = Some(child);
            n.paused = false;
        }
        Ok(())
    }

    /// kill -9 of node `id` (its whole process group).
    pub fn kill(&mut self, id: i32) {
        if let Some(n) = self.node_mut(id) {
            if let Some(mut c) = n.child.take() {
                signal_group(c.id(), libc::SIGKILL);
                if n.paused {
                    signal_group(c.id(), libc::SIGCONT);
                }
                let _ = c.wait();
            }
            n.paused = false;
        }
    }

    /// A power cut: kill -9, then everything the node wrote and did not
    /// fsync is gone from its data dir. `None` without a lossy mount.
    pub fn power_cut(&mut self, id: i32) -> Option<std::io::Result<CutReport>> {
        self.kill(id);
        self.node(id)?.mount.as_ref().map(LossyMount::power_cut)
    }

    /// SIGSTOP: the node keeps its sockets but answers nothing.
    pub fn pause(&mut self, id: i32) {
        if let Some(n) = self.node_mut(id) {
            if let Some(pid) = n.pid() {
                signal_group(pid, libc::SIGSTOP);
                n.paused = true;
            }
        }
    }

    pub fn resume(&mut self, id: i32) {
        if let Some(n) = self.node_mut(id) {
            if let Some(pid) = n.pid() {
                signal_group(pid, libc::SIGCONT);
            }
            n.paused = false;
        }
    }

    /// Ends a node that exited by itself (a crash): `Some(status)`.
    pub fn reap(&mut self, id: i32) -> Option<String> {
        let n = self.node_mut(id)?;
        let c = n.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                n.child = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// The last lines of a node's log.
    pub fn log_tail(&self, id: i32, lines: usize) -> String {
        let Some(n) = self.node(id) else {
            return String::new();
        };
        let text = std::fs::read_to_string(n.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Detaches the lossy mounts of runs whose process is gone (a run killed
/// with SIGKILL leaves its FUSE mounts dead: "Transport endpoint is not
/// connected").
fn sweep_stale_mounts() {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(source), Some(path)) = (f.next(), f.next()) else {
            continue;
        };
        if source != "oxka-lossyfs" {
            continue;
        }
        let Some(rest) = path.split("/oxka-verify-").nth(1) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            if let Ok(c) = std::ffi::CString::new(path) {
                // SAFETY: a NUL-terminated path; umount2 touches no memory
                // of ours.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
}

fn signal_group(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group the
    // node leads (it was started with process_group(0)); no memory is
    // shared with it.
    unsafe {
        libc::kill(-(pid as i32), sig);
    }
}

impl LocalCluster {
    /// Kills every node, removes the namespaces and (unless kept) the
    /// data; nothing can be started afterwards. Idempotent.
    pub fn shutdown(&mut self) {
        self.closed = true;
        let ids: Vec<i32> = self.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            self.kill(id);
        }
        for n in &mut self.nodes {
            if let Some(m) = n.mount.take() {
                let _ = m.unmount();
            }
        }
        self.net = None;
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
