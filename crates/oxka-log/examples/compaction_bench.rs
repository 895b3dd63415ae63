//! Compaction throughput: builds a log of `--size-mib` MiB (default 1024)
//! in which `--live-pct` percent (default 10) of the records are the latest
//! value of their key, then cleans it once and reports MB/s of log cleaned.
//! While the cleaner runs, a writer appends one small batch per millisecond
//! to the same log and the append latency is compared with an idle log
//! (the cleaner must not hold the log's lock during bulk I/O).
//!
//! ```sh
//! cargo run --release -p oxka-log --example compaction_bench -- \
//!     [--size-mib 1024] [--live-pct 10] [--value-bytes 1000] \
//!     [--io-limit-mbps N] [--dir /path/on/the/disk/to/test]
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxka_log::builder::{BuilderRecord, RecordBatchBuilder};
use oxka_log::cleaner::{Cleaner, CleanerConfig};
use oxka_log::{Log, LogConfig, TopicPartition};
use parking_lot::Mutex;

struct Args {
    size_mib: u64,
    live_pct: u64,
    value_bytes: usize,
    io_limit_mbps: Option<f64>,
    dir: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        size_mib: 1024,
        live_pct: 10,
        value_bytes: 1000,
        io_limit_mbps: None,
        dir: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--size-mib" => a.size_mib = v.parse().unwrap_or(a.size_mib),
            "--live-pct" => a.live_pct = v.parse().unwrap_or(a.live_pct),
            "--value-bytes" => a.value_bytes = v.parse().unwrap_or(a.value_bytes),
            "--io-limit-mbps" => a.io_limit_mbps = v.parse().ok(),
            "--dir" => a.dir = Some(v),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

/// xorshift: deterministic keys without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Appends one 1 KiB record per millisecond until `stop`; returns latencies.
fn append_latencies(log: &Mutex<Log>, stop: &AtomicBool, max: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    let value = vec![7u8; 1024];
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) && out.len() < max {
        let key = format!("writer-{}", i % 100);
        let mut batch = RecordBatchBuilder::new()
            .record(Some(key.as_bytes()), Some(&value), 0)
            .build();
        let t = Instant::now();
        log.lock()
            .append_as_leader(&mut batch, 0, 0)
            .expect("append");
        out.push(t.elapsed());
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    out.sort();
    out
}

fn report(name: &str, lat: &[Duration]) {
    println!(
        "{name}: {} appends, p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        percentile(lat, 0.5),
        percentile(lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
}

fn main() {
    let a = args();
    let tmp = match &a.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let dir = tmp.path().join("bench-0");
    let config = LogConfig {
        segment_bytes: 128 * 1024 * 1024,
        compact: true,
        delete: false,
        ..LogConfig::default()
    };
    let log = Arc::new(Mutex::new(
        Log::open(&dir, TopicPartition::new("bench", 0), config, 0, 0, 0).expect("open"),
    ));

    // Each key is written ~100/live_pct times, so live_pct % of records are
    // the latest value of their key once the log is full.
    let record_bytes = a.value_bytes as u64 + 30;
    let target = a.size_mib * 1024 * 1024;
    let total_records = target / record_bytes;
    let keys = (total_records * a.live_pct / 100).max(1);
    println!(
        "building {} MiB: {total_records} records of {} byte values over {keys} keys",
        a.size_mib, a.value_bytes
    );
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0u64;
    let value = vec![b'v'; a.value_bytes];
    // Every key once (in random order over time) so exactly `keys` are live.
    let mut next_fresh = 0u64;
    while written < total_records {
        let mut b = RecordBatchBuilder::new();
        for _ in 0..100 {
            let k = if next_fresh < keys && rng.next() % (total_records / keys).max(1) == 0 {
                next_fresh += 1;
                next_fresh - 1
            } else {
                rng.next() % keys
            };
            b.push(BuilderRecord {
                key: Some(format!("key-{k:012}").into_bytes()),
                value: Some(value.clone()),
                headers: Vec::new(),
                timestamp: 1,
            });
        }
        let mut bytes = b.build();
        log.lock()
            .append_as_leader(&mut bytes, 0, 1)
            .expect("append");
        written += 100;
    }
    {
        let mut l = log.lock();
        l.roll_now(2).expect("roll");
        l.flush().expect("flush");
    }
    let size = log.lock().size_in_bytes();
    println!(
        "built {:.1} MiB in {:.1} s",
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    // Baseline append latency on the idle log.
    let idle_stop = AtomicBool::new(false);
    let idle = append_latencies(&log, &idle_stop, 2000);

    let mut cleaner = Cleaner::new(CleanerConfig {
        io_max_bytes_per_second: a.io_limit_mbps.map_or(f64::MAX, |m| m * 1_000_000.0),
        ..CleanerConfig::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let log = log.clone();
        let stop = stop.clone();
        std::thread::spawn(move || append_latencies(&log, &stop, usize::MAX))
    };
    let never = AtomicBool::new(false);
    let t = Instant::now();
    let outcome = cleaner.clean(&log, 0, 3, &never).expect("clean");
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let busy = writer.join().expect("writer");
    let s = &outcome.stats;
    println!(
        "cleaned {:.1} MiB in {secs:.2} s: {:.1} MB/s of log cleaned \
         (read {:.1} MiB incl. the offset-map scan, wrote {:.1} MiB, removed {} of {} records)",
        s.bytes_cleaned as f64 / 1048576.0,
        s.bytes_cleaned as f64 / 1e6 / secs,
        s.bytes_read as f64 / 1048576.0,
        s.bytes_written as f64 / 1048576.0,
        s.records_removed,
        s.records_read,
    );
    println!(
        "longest hold of the log lock by the cleaner: {} µs",
        s.max_lock_hold_us
    );
    report("append latency, cleaner idle   ", &idle);
    report("append latency, cleaner running", &busy);
}
