//! A cluster of real `oxka` processes on loopback: combined nodes (broker
//! and controller) or separate controllers and brokers, each with its own
//! ports and data dir, killable and restartable one by one.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Node {
    pub id: i32,
    pub broker: bool,
    pub controller: bool,
    pub port: u16,
    pub controller_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    started: Option<mpsc::Receiver<String>>,
    /// The HTTP listener's address from the start-up line, when it is on.
    pub http: Option<String>,
}

pub struct TestCluster {
    pub nodes: Vec<Node>,
    voters: String,
    extra: Vec<String>,
    _root: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestCluster {
    /// `combined` nodes that are brokers and voters, then `controllers`
    /// controller-only voters and `brokers` broker-only nodes.
    pub fn start(
        combined: usize,
        controllers: usize,
        brokers: usize,
        extra: &[&str],
    ) -> TestCluster {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = Vec::new();
        let mut id = 1;
        for (n, broker, controller) in [
            (combined, true, true),
            (controllers, false, true),
            (brokers, true, false),
        ] {
            for _ in 0..n {
                nodes.push(Node {
                    id,
                    broker,
                    controller,
                    port: free_port(),
                    controller_port: free_port(),
                    dir: root.path().join(format!("node-{id}")),
                    child: None,
                    started: None,
                    http: None,
                });
                id += 1;
            }
        }
        let voters = nodes
            .iter()
            .filter(|n| n.controller)
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = TestCluster {
            nodes,
            voters,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            _root: root,
        };
        for i in 0..c.nodes.len() {
            c.spawn(i);
        }
        for i in 0..c.nodes.len() {
            c.wait_started(i, Duration::from_secs(60));
        }
        c
    }

    pub fn node(&self, id: i32) -> &Node {
        self.nodes.iter().find(|n| n.id == id).expect("node id")
    }

    fn index(&self, id: i32) -> usize {
        self.nodes.iter().position(|n| n.id == id).expect("node id")
    }

    pub fn bootstrap_of(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.node(id).port)
    }

    /// Every running broker's address.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.broker && n.child.is_some())
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn broker_ids(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.broker)
            .map(|n| n.id)
            .collect()
    }

    pub fn running_brokers(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.broker && n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    pub fn command_line(&self, id: i32) -> Command {
        let n = self.node(id);
        let roles = match (n.broker, n.controller) {
            (true, true) => "broker,controller",
            (true, false) => "broker",
            _ => "controller",
        };
        let mut listeners = Vec::new();
        if n.broker {
            listeners.push(format!("PLAINTEXT://127.0.0.1:{}", n.port));
        }
        if n.controller {
            listeners.push(format!("CONTROLLER://127.0.0.1:{}", n.controller_port));
        }
        let mut cmd = Command::new(super::TestBroker::binary());
        cmd.arg("broker").arg("--log-level").arg("info");
        let mut o = vec![
            format!("node.id={}", n.id),
            format!("process.roles={roles}"),
            format!("listeners={}", listeners.join(",")),
            "controller.listener.names=CONTROLLER".to_string(),
            format!("controller.quorum.voters={}", self.voters),
            format!("log.dirs={}", n.dir.display()),
            format!("broker.rack=rack-{}", (n.id - 1) % 3),
        ];
        o.extend(self.extra.iter().cloned());
        for kv in o {
            cmd.arg("--override").arg(kv);
        }
        cmd
    }

    fn spawn(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let log = std::fs::File::create(self.nodes[i].dir.with_extension("log"))
            .or_else(|_| {
                std::fs::create_dir_all(self.nodes[i].dir.parent().expect("root"))?;
                std::fs::File::create(self.nodes[i].dir.with_extension("log"))
            })
            .expect("node log file");
        let mut child = self
            .command_line(id)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn oxka node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // keep draining so the node never blocks on a full pipe
            let mut sink = String::new();
            while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        self.nodes[i].child = Some(child);
        self.nodes[i].started = Some(rx);
    }

    fn wait_started(&mut self, i: usize, timeout: Duration) {
        let Some(rx) = self.nodes[i].started.take() else {
            return;
        };
        let line = rx.recv_timeout(timeout).unwrap_or_default();
        assert!(
            line.contains("started"),
            "node {} did not start within {timeout:?}: {line:?}; its log: {}",
            self.nodes[i].id,
            self.log_tail(self.nodes[i].id)
        );
        self.nodes[i].http = line
            .split_whitespace()
            .skip_while(|w| *w != "http")
            .nth(1)
            .and_then(|a| a.strip_prefix("http://"))
            .map(str::to_string);
    }

    pub fn log_tail(&self, id: i32) -> String {
        let text =
            std::fs::read_to_string(self.node(id).dir.with_extension("log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn kill9(&mut self, id: i32) {
        let i = self.index(id);
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal (`-STOP`, `-CONT`) to a running node.
    pub fn signal(&self, id: i32, signal: &str) {
        let child = self.node(id).child.as_ref().expect("node is running");
        let ok = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} node {id}");
    }

    /// SIGTERM and wait; the exit code.
    pub fn terminate(&mut self, id: i32) -> Option<i32> {
        let i = self.index(id);
        let mut c = self.nodes[i].child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().ok()?.code()
    }

    /// Starts a stopped node; `wait`: until it has started (a broker is
    /// unfenced, which needs a quorum).
    pub fn start_node(&mut self, id: i32, wait: bool) {
        let i = self.index(id);
        assert!(self.nodes[i].child.is_none(), "node {id} is running");
        self.spawn(i);
        if wait {
            self.wait_started(i, Duration::from_secs(60));
        }
    }

    pub fn wait_node_started(&mut self, id: i32) {
        let i = self.index(id);
        self.wait_started(i, Duration::from_secs(60));
    }

    pub fn data_dir(&self, id: i32) -> &Path {
        &self.node(id).dir
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Polls `f` every 50 ms until it returns Some, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
