//! A broker process for integration tests: the real `oxka` binary on a free
//! loopback port with its own data dir, restartable and killable.

#![allow(dead_code)]

pub mod cluster;
pub mod http;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestBroker {
    pub port: u16,
    pub data_dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
    /// `RLIMIT_NOFILE` (soft and hard) to start the broker with.
    fd_limit: Option<u32>,
    /// Where the data goes: `data_dir` unless the test chose a place.
    data: PathBuf,
    /// The HTTP listener's address from the start-up line, when it is on.
    pub http: Option<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestBroker {
    pub fn start() -> TestBroker {
        Self::start_with(&[])
    }

    /// `extra`: `key=value` overrides.
    pub fn start_with(extra: &[&str]) -> TestBroker {
        let mut b = TestBroker {
            port: free_port(),
            data_dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            fd_limit: None,
            data: PathBuf::new(),
            http: None,
        };
        b.data = b.data_dir.path().to_path_buf();
        b.spawn();
        b
    }

    /// A broker whose PLAINTEXT listener is on `port` (the caller's
    /// `listeners` override adds others beside it).
    pub fn start_on(port: u16, extra: &[&str]) -> TestBroker {
        let mut b = TestBroker {
            port,
            data_dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            fd_limit: None,
            data: PathBuf::new(),
            http: None,
        };
        b.data = b.data_dir.path().to_path_buf();
        b.spawn();
        b
    }

    /// A broker whose soft and hard descriptor limits are both `limit`
    /// (with `prlimit`), so it cannot raise them.
    pub fn start_with_fd_limit(limit: u32, extra: &[&str]) -> TestBroker {
        let mut b = TestBroker {
            port: free_port(),
            data_dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            fd_limit: Some(limit),
            data: PathBuf::new(),
            http: None,
        };
        b.data = b.data_dir.path().to_path_buf();
        b.spawn();
        b
    }

    /// A broker whose data goes to `data` (e.g. on a small file system).
    pub fn start_in(data: &Path, extra: &[&str]) -> TestBroker {
        let mut b = TestBroker {
            port: free_port(),
            data_dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            fd_limit: None,
            data: data.to_path_buf(),
            http: None,
        };
        b.spawn();
        b
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn data_path(&self) -> &Path {
        &self.data
    }

    pub fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_oxka"))
    }

    fn spawn(&mut self) {
        let mut cmd = match self.fd_limit {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(Self::binary());
                c
            }
            None => Command::new(Self::binary()),
        };
        cmd.arg("broker")
            .arg("--listen")
            .arg(self.bootstrap())
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--log-level")
            .arg("warn");
        for o in &self.extra {
            cmd.arg("--override").arg(o);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn oxka broker");
        // The start-up line is printed once the listener is bound.
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("start-up line");
        assert!(
            line.contains("started"),
            "unexpected start-up output: {line:?}"
        );
        self.http = line
            .split_whitespace()
            .skip_while(|w| *w != "http")
            .nth(1)
            .and_then(|a| a.strip_prefix("http://"))
            .map(str::to_string);
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.bootstrap()).is_err() {
            assert!(
                Instant::now() < deadline,
                "broker did not accept connections"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no flush, no checkpoint, exactly like a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let status = c.wait().ok()?;
        status.code()
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        self.spawn();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A broker for the native client's tests: logs at `RUST_LOG` (default
/// warn) through the test writer, no initial rebalance delay.
pub fn client_test_broker() -> TestBroker {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .with_test_writer()
        .try_init();
    TestBroker::start_with(&["group.initial.rebalance.delay.ms=0"])
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An rdkafka consumer in a fresh group (no auto-commit) assigned to
/// `partitions` of `topic`, each read from the beginning.
pub fn consumer_from_beginning(
    b: &TestBroker,
    topic: &str,
    partitions: std::ops::Range<i32>,
) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::Consumer;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", unique("g"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// A new 4-partition topic holding the values "0".."39", partition
/// `i % 4`, written with our own client; returns its name.
pub async fn topic_with_40_records(b: &TestBroker, prefix: &str) -> String {
    use oxka_client::admin::NewTopic;
    use oxka_client::{Admin, ClientConfig, Producer, ProducerRecord};
    let cfg = ClientConfig::with_bootstrap(b.bootstrap());
    let topic = unique(prefix);
    Admin::new(&cfg)
        .expect("admin")
        .create_topic(NewTopic::new(&topic, 4, 1))
        .await
        .expect("create topic");
    let producer = Producer::new(&cfg).expect("producer");
    for i in 0..40 {
        producer
            .enqueue(
                ProducerRecord::new(&topic)
                    .partition(i % 4)
                    .value(format!("{i}")),
            )
            .await
            .expect("enqueue");
    }
    producer.flush().await.expect("flush");
    topic
}

/// Runs one future to completion on a fresh single-threaded runtime (the
/// tests drive async clients from plain threads).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// librdkafka's admin client on `bootstrap`.
pub fn admin_client(
    bootstrap: &str,
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}
