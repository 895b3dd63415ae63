//! `Log::append_shared_as_leader`: a request's records appended without a
//! copy must store exactly what the copying append stores, leave the
//! request's bytes untouched, and fall back to copying when a batch must
//! be rewritten beyond its offset fields.

use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use oxka_log::builder::{simple_batch, RecordBatchBuilder};
use oxka_log::record_batch::{batches, validate_batches};
use oxka_log::{Compression, Log, LogAppendInfo, LogConfig, TimestampType, TopicPartition};

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, TopicPartition::new("t", 0), config, 0, 0, 1_000).unwrap()
}

/// The bytes of every `.log` file of a log, in base-offset order.
fn log_bytes(dir: &Path) -> Vec<u8> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files.iter().flat_map(|p| fs::read(p).unwrap()).collect()
}

fn summary(i: &LogAppendInfo) -> (i64, i64, i64, i64, i64, u64, usize) {
    (
        i.first_offset,
        i.last_offset,
        i.log_append_time,
        i.max_timestamp,
        i.offset_of_max_timestamp,
        i.num_records,
        i.num_batches,
    )
}

/// Requests of one or many batches in every codec, some from an
/// idempotent producer.
fn requests() -> Vec<BytesMut> {
    let mut out = Vec::new();
    let mut seq = 0;
    for (i, codec) in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let mut req = BytesMut::new();
        for b in 0..=i {
            let mut builder = RecordBatchBuilder::new().compression(codec);
            if b % 2 == 1 {
                builder = builder.producer(42, 0, seq);
                seq += 3;
            }
            for r in 0..3 {
                let v = format!("value {i}.{b}.{r}");
                builder = builder.record(Some(b"k"), Some(v.as_bytes()), 1_000 + r as i64);
            }
            req.extend_from_slice(&builder.build());
        }
        out.push(req);
    }
    // many small batches in one request: more pieces than one pwritev
    // takes; twice, so that the log rolls
    let mut req = BytesMut::new();
    for i in 0..1_500 {
        req.extend_from_slice(&simple_batch(1, 1 + i % 7, 5_000));
    }
    out.push(req.clone());
    out.push(req);
    out
}

#[test]
fn shared_append_stores_what_the_copying_append_stores() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = LogConfig {
        segment_bytes: 150_000,
        ..LogConfig::default()
    };
    let mut copying = open(a.path(), config.clone());
    let mut shared = open(b.path(), config);
    for req in requests() {
        let request = Bytes::from(req.to_vec());
        let mut buf = req;
        let x = copying.append_as_leader(&mut buf, 7, 9_000).unwrap();
        let y = shared
            .append_shared_as_leader(request.clone(), 7, 9_000)
            .unwrap();
        assert_eq!(summary(&x), summary(&y));
        assert_eq!(copying.log_end_offset(), shared.log_end_offset());
    }
    assert!(shared.num_segments() > 1, "the appends rolled segments");
    assert_eq!(log_bytes(a.path()), log_bytes(b.path()));
    // the indexes agree: every offset reads back the same batches
    for offset in 0..shared.log_end_offset() {
        let x = copying.read(offset, 2_000, i64::MAX, false).unwrap();
        let y = shared.read(offset, 2_000, i64::MAX, false).unwrap();
        assert_eq!(x.records, y.records, "read at {offset}");
    }
    let stored = log_bytes(b.path());
    validate_batches(&stored).unwrap();
    assert!(batches(&stored).all(|h| h.unwrap().0.partition_leader_epoch == 7));
}

#[test]
fn shared_append_leaves_the_request_bytes_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&mut simple_batch(5, 10, 1), 0, 0)
        .unwrap();
    let request = Bytes::from(simple_batch(3, 10, 2).to_vec());
    let before = request.to_vec();
    let info = log.append_shared_as_leader(request.clone(), 4, 0).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (5, 7));
    assert_eq!(request.to_vec(), before);
    let (h, _) = batches(&log_bytes(dir.path())).nth(1).unwrap().unwrap();
    assert_eq!((h.base_offset, h.partition_leader_epoch), (5, 4));
}

#[test]
fn log_append_time_takes_the_copying_path_and_keeps_the_crc_valid() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let request = Bytes::from(simple_batch(3, 10, 2).to_vec());
    let info = log.append_shared_as_leader(request, 0, 77_000).unwrap();
    assert_eq!(info.log_append_time, 77_000);
    let stored = log_bytes(dir.path());
    validate_batches(&stored).unwrap();
    let (h, _) = batches(&stored).next().unwrap().unwrap();
    assert_eq!(h.max_timestamp, 77_000);
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
}

#[test]
fn a_retried_idempotent_batch_is_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let batch = RecordBatchBuilder::new()
        .producer(9, 0, 0)
        .record(None, Some(b"once"), 1)
        .record(None, Some(b"only"), 1)
        .build();
    let request = Bytes::from(batch.to_vec());
    let first = log.append_shared_as_leader(request.clone(), 0, 0).unwrap();
    let retry = log.append_shared_as_leader(request, 0, 0).unwrap();
    assert_eq!(
        (retry.first_offset, retry.last_offset),
        (first.first_offset, first.last_offset)
    );
    assert_eq!(log.log_end_offset(), 2);
}
