//! Measures consumer group convergence against a running broker:
//! time from start to every partition assigned (exactly once) for a group
//! of N consumers, and time for the group to settle after one member is
//! killed with SIGKILL. Each consumer is a child process (this program
//! re-executed with `--member`), so a kill is a real crash.
//!
//! ```sh
//! cargo run -p oxka --example group_settle -- --bootstrap 127.0.0.1:9092 \
//!     [--members 10] [--partitions 100] [--protocols consumer,eager,cooperative]
//! ```

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

const TIMEOUT: Duration = Duration::from_secs(180);

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// Child mode: consume and print the assignment whenever it changes.
fn member(args: &[String]) {
    let protocol = arg(args, "--protocol", "consumer");
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", arg(args, "--bootstrap", ""))
        .set("group.id", arg(args, "--group", ""))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    match protocol.as_str() {
        "consumer" => {
            c.set("group.protocol", "consumer");
        }
        "eager" => {
            c.set("partition.assignment.strategy", "range");
        }
        _ => {
            c.set("partition.assignment.strategy", "cooperative-sticky");
        }
    }
    let consumer: BaseConsumer = match c.create() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("consumer: {e}");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[&arg(args, "--topic", "")]) {
        eprintln!("subscribe: {e}");
        return;
    }
    let mut last: Option<Vec<i32>> = None;
    let stdout = std::io::stdout();
    loop {
        let _ = consumer.poll(Duration::from_millis(10));
        let now: Vec<i32> = consumer
            .assignment()
            .map(|t| t.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        if last.as_ref() != Some(&now) {
            let line: Vec<String> = now.iter().map(i32::to_string).collect();
            let mut out = stdout.lock();
            if writeln!(out, "A {}", line.join(",")).is_err() || out.flush().is_err() {
                return;
            }
            last = Some(now);
        }
    }
}

struct Members {
    children: Vec<Child>,
    assignments: Arc<Mutex<Vec<Option<BTreeSet<i32>>>>>,
}

impl Members {
    fn spawn(n: usize, args: &[&str]) -> Members {
        let assignments = Arc::new(Mutex::new(vec![None; n]));
        let me = std::env::current_exe().expect("current exe");
        let mut children = Vec::new();
        for i in 0..n {
            let mut child = Command::new(&me)
                .arg("--member")
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn member");
            let out = child.stdout.take().expect("stdout");
            let a = assignments.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let Some(rest) = line.strip_prefix("A ") else {
                        continue;
                    };
                    let set: BTreeSet<i32> =
                        rest.split(',').filter_map(|p| p.parse().ok()).collect();
                    if let Ok(mut v) = a.lock() {
                        v[i] = Some(set);
                    }
                }
            });
            children.push(child);
        }
        Members {
            children,
            assignments,
        }
    }

    /// The group has settled: every partition is owned by exactly one live
    /// member and the live members' loads differ by at most one (a first
    /// member owning everything before the others joined does not count).
    fn complete(&self, partitions: i32, dead: &BTreeSet<usize>) -> bool {
        let Ok(v) = self.assignments.lock() else {
            return false;
        };
        let mut seen = BTreeSet::new();
        let mut count = 0;
        let (mut min, mut max) = (usize::MAX, 0);
        for (i, a) in v.iter().enumerate() {
            if dead.contains(&i) {
                continue;
            }
            let len = a.as_ref().map_or(0, BTreeSet::len);
            min = min.min(len);
            max = max.max(len);
            if let Some(a) = a {
                count += a.len();
                seen.extend(a.iter().copied());
            }
        }
        max - min <= 1 && count == partitions as usize && seen == (0..partitions).collect()
    }

    fn wait(&self, partitions: i32, dead: &BTreeSet<usize>, since: Instant) -> Option<Duration> {
        while since.elapsed() < TIMEOUT {
            if self.complete(partitions, dead) {
                return Some(since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let res = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .expect("create topic");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
}

fn fmt(d: Option<Duration>) -> String {
    d.map_or("timeout".to_string(), |d| {
        format!("{:.2} s", d.as_secs_f64())
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--member") {
        member(&args);
        return;
    }
    let bootstrap = arg(&args, "--bootstrap", "127.0.0.1:9092");
    let n: usize = arg(&args, "--members", "10").parse().unwrap_or(10);
    let partitions: i32 = arg(&args, "--partitions", "100").parse().unwrap_or(100);
    let protocols = arg(&args, "--protocols", "consumer,eager,cooperative");
    let run = std::process::id();
    println!("{n} consumers, {partitions} partitions, broker {bootstrap}");
    println!("| protocol | all assigned after start | settled after one member killed |");
    println!("|---|---|---|");
    for protocol in protocols.split(',') {
        let topic = format!("settle-{protocol}-{run}");
        let group = format!("settle-g-{protocol}-{run}");
        create_topic(&bootstrap, &topic, partitions);
        let start = Instant::now();
        let mut members = Members::spawn(
            n,
            &[
                "--bootstrap",
                &bootstrap,
                "--group",
                &group,
                "--topic",
                &topic,
                "--protocol",
                protocol,
            ],
        );
        let joined = members.wait(partitions, &BTreeSet::new(), start);
        let mut settled = None;
        if joined.is_some() {
            let _ = members.children[0].kill();
            let _ = members.children[0].wait();
            let killed = Instant::now();
            let dead = BTreeSet::from([0usize]);
            // the dead member's last report no longer counts; wait until
            // the survivors alone cover every partition
            settled = members.wait(partitions, &dead, killed);
        }
        println!("| {protocol} | {} | {} |", fmt(joined), fmt(settled));
        drop(members);
    }
}
