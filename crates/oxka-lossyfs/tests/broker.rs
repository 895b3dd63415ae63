//! A real oxka broker on the lossy mount: produce with acks=1, kill -9,
//! power cut, restart. The broker must start (log recovery cuts the torn
//! tail) and hold exactly a prefix of what it acknowledged; a topic with
//! `flush.messages=1` must lose nothing acknowledged.
//!
//! Needs the `oxka` binary beside the test (`cargo build --workspace`
//! first, as `./test.sh` does) and FUSE (root, /dev/fuse); skipped with a
//! message otherwise.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxka_client::admin::NewTopic;
use oxka_client::{Admin, ClientConfig, Consumer, Producer, ProducerRecord, TopicPartition};
use oxka_lossyfs::LossyMount;

/// `target/debug/oxka`: the test runs from `target/debug/deps/`.
fn oxka_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OXKA_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("oxka");
    p.exists().then_some(p)
}

struct Broker {
    child: Child,
    addr: String,
}

impl Broker {
    fn start(bin: &Path, data: &Path, port: u16) -> Broker {
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(bin)
            .args(["broker", "--listen", &addr, "--data-dir"])
            .arg(data)
            .args(["--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn oxka broker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("started"), "start-up output: {line:?}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "broker did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, addr }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn cfg(addr: &str) -> ClientConfig {
    ClientConfig::with_bootstrap(addr)
}

fn value(topic: &str, i: usize) -> String {
    format!("{topic}-{i:06}-{}", "x".repeat(100))
}

/// Sends `n` records with acks=1; offset → value of every acknowledged one.
async fn produce(addr: &str, topic: &str, n: usize) -> BTreeMap<i64, String> {
    let mut pc = cfg(addr);
    pc.set("acks", "1")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5");
    let producer = Producer::new(&pc).unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let v = value(topic, i);
        let rec = ProducerRecord::new(topic).partition(0).value(v.clone());
        pending.push((v, producer.enqueue(rec).await.unwrap()));
    }
    let mut acked = BTreeMap::new();
    for (v, p) in pending {
        if let Ok(m) = p.await {
            acked.insert(m.offset, v);
        }
    }
    producer.close().await.unwrap();
    acked
}

/// Every record of partition 0, offset → value.
async fn read_all(addr: &str, topic: &str) -> BTreeMap<i64, String> {
    let mut cc = cfg(addr);
    cc.set("auto.offset.reset", "earliest");
    let mut c = Consumer::new(&cc).unwrap();
    let tp = TopicPartition::new(topic, 0);
    c.assign(vec![tp.clone()]).unwrap();
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for r in c.poll(Duration::from_millis(300)).await.unwrap() {
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            out.insert(r.offset, v);
        }
        if let (Some(pos), Some(hw)) = (c.position(&tp), c.high_watermark(&tp)) {
            if pos >= hw {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "could not read {topic} to its end"
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_survives_a_power_cut_and_keeps_a_prefix_of_what_it_acknowledged() {
    if let Err(why) = oxka_lossyfs::fuse_available() {
        eprintln!("SKIPPED: cannot mount FUSE here: {why}");
        return;
    }
    let Some(bin) = oxka_binary() else {
        eprintln!("SKIPPED: no oxka binary beside the test (run `cargo build --workspace` first)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let mount = LossyMount::mount(&backing, &mnt).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let mut broker = Broker::start(&bin, &mnt, port);
    let admin = Admin::new(&cfg(&broker.addr)).unwrap();
    admin
        .create_topic(NewTopic::new("unsynced", 1, 1))
        .await
        .unwrap();
    admin
        .create_topic(NewTopic::new("synced", 1, 1).config("flush.messages", "1"))
        .await
        .unwrap();
    let n = 2000;
    let acked_unsynced = produce(&broker.addr, "unsynced", n).await;
    let acked_synced = produce(&broker.addr, "synced", n).await;
    assert_eq!(acked_unsynced.len(), n);
    assert_eq!(acked_synced.len(), n);

    broker.kill9();
    let pending = mount.pending();
    let cut = mount.power_cut().unwrap();
    eprintln!("before the cut: {pending:?}\npower cut: {cut}");
    assert!(cut.files_reverted > 0, "nothing was unsynced? {cut}");
    assert_eq!(cut.entries_lost, 0, "{cut}");

    let broker = Broker::start(&bin, &mnt, port);
    let got_unsynced = read_all(&broker.addr, "unsynced").await;
    let got_synced = read_all(&broker.addr, "synced").await;
    eprintln!(
        "unsynced topic (acks=1, default flush): acknowledged {}, kept {}, lost {}",
        acked_unsynced.len(),
        got_unsynced.len(),
        acked_unsynced.len() - got_unsynced.len()
    );
    eprintln!(
        "synced topic (acks=1, flush.messages=1): acknowledged {}, kept {}, lost {}",
        acked_synced.len(),
        got_synced.len(),
        acked_synced.len() - got_synced.len()
    );
    // What is left is a prefix of what was acknowledged, record for record.
    for (o, v) in &got_unsynced {
        assert_eq!(acked_unsynced.get(o), Some(v), "offset {o}");
    }
    assert_eq!(
        got_unsynced.keys().copied().collect::<Vec<_>>(),
        (0..got_unsynced.len() as i64).collect::<Vec<_>>(),
        "a prefix"
    );
    assert!(
        got_unsynced.len() < acked_unsynced.len(),
        "unflushed acks=1 records should be lost to the power cut"
    );
    // fsync after every record: nothing acknowledged is lost.
    assert_eq!(got_synced, acked_synced);

    // And the log goes on from where recovery cut it.
    let more = produce(&broker.addr, "unsynced", 10).await;
    assert_eq!(
        more.keys().next().copied(),
        Some(got_unsynced.len() as i64),
        "new records follow the recovered log end"
    );
    drop(broker);
    mount.unmount().unwrap();
}
