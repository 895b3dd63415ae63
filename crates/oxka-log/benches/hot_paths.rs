//! Micro-benchmarks of the log's hot paths, so a regression in the
//! per-batch work shows up without a broker, a network or a disk in the way:
//!
//! - `validate`: full batch validation (framing, CRC-32C, every record's
//!   framing) of a 16 KiB batch of 1 KiB and of 100-byte records;
//! - `assign_offsets`: stamping base offset and leader epoch in place;
//! - `append`: `Log::append_as_leader` (validation + offsets + write to the
//!   page cache, no fsync), 16 records of 1 KiB per batch;
//! - `index_lookup`: `Log::read` of one batch at a random old offset in a
//!   multi-segment log (segment search + offset index + position);
//! - `fetch_read`: `Log::read` of 1 MiB from the start of the log (the
//!   copying read: the bytes in user space) and `Log::read_region` of the
//!   same batches (what a fetch does: find them, leave them in the file for
//!   `sendfile`).
//! - `latency_observe`: one observation into a request-time histogram
//!   (its fixed buckets and its recent quantiles), what every request
//!   stage costs the broker's metrics.
//!
//! ```sh
//! cargo bench -p oxka-log --bench hot_paths            # all
//! cargo bench -p oxka-log --bench hot_paths -- append  # one group
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxka_log::builder::simple_batch;
use oxka_log::record_batch::{set_base_offset, set_partition_leader_epoch, validate_batches};
use oxka_log::{Log, LogConfig, TopicPartition};

/// Records per benchmark batch (a producer's 16 KiB `batch.size`).
const RECORDS_1K: usize = 16;
const RECORDS_100B: usize = 160;
/// The append bench empties its log past this size (bounded disk use).
const APPEND_LOG_MAX: u64 = 256 << 20;

fn validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    for (name, n, size) in [("1KiB", RECORDS_1K, 1024), ("100B", RECORDS_100B, 100)] {
        let batch = simple_batch(n, size, 1_700_000_000_000);
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| validate_batches(black_box(&batch)).map(|v| v.len()))
        });
    }
    g.finish();
}

fn assign_offsets(c: &mut Criterion) {
    let mut g = c.benchmark_group("assign_offsets");
    let mut batch = simple_batch(RECORDS_1K, 1024, 1_700_000_000_000);
    g.throughput(Throughput::Elements(1));
    let mut next = 0i64;
    g.bench_function("16x1KiB", |b| {
        b.iter(|| {
            set_base_offset(black_box(&mut batch), next);
            set_partition_leader_epoch(black_box(&mut batch), 7);
            next += RECORDS_1K as i64;
        })
    });
    g.finish();
}

/// A log in a temp dir with segments small enough that a few thousand
/// batches span many of them.
fn open_log(dir: &std::path::Path, segment_bytes: u64) -> Log {
    let config = LogConfig {
        segment_bytes,
        ..LogConfig::default()
    };
    match Log::open(dir, TopicPartition::new("bench", 0), config, 0, 0, 0) {
        Ok(l) => l,
        Err(e) => panic!("open log in {}: {e}", dir.display()),
    }
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    let template = simple_batch(RECORDS_1K, 1024, 1_700_000_000_000);
    g.throughput(Throughput::Bytes(template.len() as u64));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let mut log = open_log(dir.path(), 64 << 20);
    let mut now = 1_700_000_000_000i64;
    g.bench_function("16x1KiB", |b| {
        // Timed by hand so that emptying the log (which bounds the bench's
        // disk use to APPEND_LOG_MAX) stays outside the measurement.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if log.size_in_bytes() > APPEND_LOG_MAX {
                    if let Err(e) = log.truncate_to(0) {
                        panic!("truncate: {e}");
                    }
                }
                let mut batch = template.clone();
                now += 1;
                let t = Instant::now();
                let r = log.append_as_leader(&mut batch, 0, now);
                total += t.elapsed();
                black_box(r.map(|i| i.last_offset)).ok();
            }
            total
        })
    });
    g.finish();
}

/// Fills a log with `batches` batches of 16 x 1 KiB in `segment_bytes`
/// segments; returns the log and its temp dir (kept alive by the caller).
fn filled_log(batches: usize, segment_bytes: u64) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let mut log = open_log(dir.path(), segment_bytes);
    for i in 0..batches {
        let mut b = simple_batch(RECORDS_1K, 1024, 1_700_000_000_000 + i as i64);
        if let Err(e) = log.append_as_leader(&mut b, 0, 1_700_000_000_000 + i as i64) {
            panic!("append: {e}");
        }
    }
    (dir, log)
}

fn index_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("index_lookup");
    // ~64 MiB in 8 MiB segments: 8 segments, ~4,000 batches.
    let batches = 4_000;
    let (_dir, log) = filled_log(batches, 8 << 20);
    let end = log.log_end_offset();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    g.throughput(Throughput::Elements(1));
    g.bench_function("random_old_offset", |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x % end as u64) as i64;
            log.read(black_box(off), 1, end, true)
                .map(|f| f.first_batch_offset)
        })
    });
    g.finish();
}

fn fetch_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_read");
    let (_dir, log) = filled_log(256, 64 << 20);
    let end = log.log_end_offset();
    g.throughput(Throughput::Bytes(1 << 20));
    g.bench_function("1MiB_from_start", |b| {
        b.iter(|| {
            log.read(black_box(0), 1 << 20, end, true)
                .map(|f| f.records.len())
        })
    });
    g.bench_function("1MiB_region_from_start", |b| {
        b.iter(|| {
            log.read_region(black_box(0), 1 << 20, end, true)
                .map(|f| f.len())
        })
    });
    g.finish();
}

fn latency_observe(c: &mut Criterion) {
    let h = oxka_log::latency::Histogram::new();
    let at = Instant::now();
    let mut g = c.benchmark_group("latency_observe");
    g.throughput(Throughput::Elements(1));
    let mut ms = 0.0;
    g.bench_function("observe_at", |b| {
        b.iter(|| {
            ms = if ms > 100.0 { 0.01 } else { ms * 1.3 + 0.01 };
            h.observe_at(black_box(ms), at)
        })
    });
    // the recent-quantile part alone (the rest is the fixed buckets)
    let r = oxka_log::latency::RecentQuantiles::new();
    g.bench_function("recent_quantiles_record", |b| {
        b.iter(|| {
            ms = if ms > 100.0 { 0.01 } else { ms * 1.3 + 0.01 };
            r.record(black_box(ms), at)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    validate,
    assign_offsets,
    append,
    index_lookup,
    fetch_read,
    latency_observe
);
criterion_main!(benches);
