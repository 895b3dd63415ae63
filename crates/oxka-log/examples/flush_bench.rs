//! The cost of `flush.messages=1` (an fsync after every append) beside
//! Kafka's default (no forced fsync; the page cache and recovery give
//! durability against process crashes).
//!
//! ```sh
//! cargo run --release -p oxka-log --example flush_bench -- [DIR] [APPENDS]
//! ```
//!
//! DIR defaults to the system temp dir (use a dir on the disk you care
//! about); APPENDS defaults to 2000. Each append is one batch of
//! RECORDS_PER_BATCH records of VALUE_BYTES bytes, as a producer with
//! `linger.ms=0` sends them. Figures are recorded in docs/lifecycle.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oxka_log::builder::simple_batch;
use oxka_log::{Log, LogConfig, TopicPartition};

const RECORDS_PER_BATCH: usize = 10;
const VALUE_BYTES: usize = 100;

struct Run {
    label: String,
    elapsed: Duration,
    latencies: Vec<Duration>,
    appends: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn run(dir: &std::path::Path, label: &str, flush_messages: u64, appends: usize) -> Run {
    let sub = tempfile::tempdir_in(dir).expect("temp dir");
    let config = LogConfig {
        flush_interval_messages: flush_messages,
        ..LogConfig::default()
    };
    let mut log =
        Log::open(sub.path(), TopicPartition::new("bench", 0), config, 0, 0, 0).expect("open log");
    let mut latencies = Vec::with_capacity(appends);
    let start = Instant::now();
    for i in 0..appends {
        let mut batch = simple_batch(RECORDS_PER_BATCH, VALUE_BYTES, i as i64);
        let t = Instant::now();
        log.append_as_leader(&mut batch, 0, i as i64)
            .expect("append");
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    log.close().expect("close");
    Run {
        label: label.to_string(),
        elapsed,
        latencies,
        appends,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let appends: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    println!(
        "{appends} appends of {RECORDS_PER_BATCH} x {VALUE_BYTES} B records in {}",
        dir.display()
    );
    println!("| flush.messages | appends/s | records/s | MB/s | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|---|---|");
    for (label, n) in [("default (Long.MAX)", u64::MAX), ("100", 100), ("1", 1)] {
        let mut r = run(&dir, label, n, appends);
        r.latencies.sort();
        let secs = r.elapsed.as_secs_f64();
        let per_sec = r.appends as f64 / secs;
        let batch_bytes = simple_batch(RECORDS_PER_BATCH, VALUE_BYTES, 0).len() as f64;
        println!(
            "| {} | {:.0} | {:.0} | {:.1} | {} | {} | {} |",
            r.label,
            per_sec,
            per_sec * RECORDS_PER_BATCH as f64,
            per_sec * batch_bytes / 1e6,
            percentile(&r.latencies, 0.50).as_micros(),
            percentile(&r.latencies, 0.99).as_micros(),
            r.latencies.last().copied().unwrap_or_default().as_micros(),
        );
    }
}
