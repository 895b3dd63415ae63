//! `Log::read_region`: the zero-copy read a fetch sends with `sendfile`.
//! It must pick exactly the bytes the copying read returns, and the region
//! must stay valid (or fail loudly) whatever happens to the log after the
//! read: appends, retention deleting the segment, the log deleted,
//! truncation.

use std::io::ErrorKind;
use std::path::Path;

use oxka_log::builder::simple_batch;
use oxka_log::{Log, LogConfig, RetentionConfig, TopicPartition};

fn open(dir: &Path, segment_bytes: u64) -> Log {
    let config = LogConfig {
        segment_bytes,
        ..LogConfig::default()
    };
    Log::open(dir, TopicPartition::new("t", 0), config, 0, 0, 1_000).unwrap()
}

/// `batches` batches of `records` records of `size` bytes each.
fn fill(log: &mut Log, batches: usize, records: usize, size: usize) {
    for i in 0..batches {
        let mut b = simple_batch(records, size, 1_000 + i as i64);
        log.append_as_leader(&mut b, 0, 2_000).unwrap();
    }
}

#[test]
fn region_holds_what_the_copying_read_returns() {
    let dir = tempfile::tempdir().unwrap();
    // small segments: reads stop at segment ends and start mid-segment
    let mut log = open(dir.path(), 4096);
    fill(&mut log, 40, 3, 200);
    let end = log.log_end_offset();
    for start in [0, 1, 2, 3, 7, 50, end - 1, end] {
        for max_bytes in [0, 1, 100, 700, 5000, 1 << 20] {
            for upper in [end, end - 5, 10] {
                for min_one in [false, true] {
                    let copied = log.read(start, max_bytes, upper, min_one).unwrap();
                    let region = log.read_region(start, max_bytes, upper, min_one).unwrap();
                    assert_eq!(region.first_batch_offset, copied.first_batch_offset);
                    assert_eq!(region.len(), copied.records.len());
                    let bytes = region
                        .records
                        .map(|r| r.to_bytes().unwrap())
                        .unwrap_or_default();
                    assert_eq!(
                        bytes, copied.records,
                        "start {start} max {max_bytes} upper {upper} min_one {min_one}"
                    );
                }
            }
        }
    }
}

#[test]
fn nothing_to_read_is_no_region() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 1 << 20);
    let r = log.read_region(0, 1 << 20, i64::MAX, true).unwrap();
    assert!(r.records.is_none() && r.is_empty() && r.first_batch_offset.is_none());
    fill(&mut log, 2, 2, 10);
    let r = log.read_region(2, 1 << 20, 2, true).unwrap();
    assert!(r.records.is_none(), "the upper bound excludes everything");
}

#[test]
fn later_appends_do_not_grow_a_region() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 1 << 20);
    fill(&mut log, 3, 2, 100);
    let region = log.read_region(0, 1 << 20, i64::MAX, true).unwrap();
    let before = region.records.clone().unwrap().to_bytes().unwrap();
    fill(&mut log, 3, 2, 100);
    let r = region.records.unwrap();
    assert_eq!(r.len(), before.len());
    assert_eq!(r.to_bytes().unwrap(), before);
}

#[test]
fn region_outlives_its_segment_deleted_by_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 2048);
    log.set_retention_config(RetentionConfig {
        retention_ms: -1,
        retention_bytes: 0,
        // unlink at once: the region's descriptor is all that is left
        file_delete_delay_ms: 0,
    });
    fill(&mut log, 20, 2, 300);
    let region = log.read_region(0, 1 << 20, i64::MAX, true).unwrap();
    let expected = log.read(0, 1 << 20, i64::MAX, true).unwrap().records;
    let deleted = log
        .delete_old_segments(10_000, log.log_end_offset())
        .unwrap();
    assert!(deleted > 0);
    assert!(log.log_start_offset() > 0, "the first segment is gone");
    let r = region.records.unwrap();
    assert_eq!(r.to_bytes().unwrap(), expected);
}

#[test]
fn region_outlives_the_deleted_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("t-0");
    let mut log = open(&log_dir, 1 << 20);
    fill(&mut log, 4, 2, 100);
    let region = log.read_region(0, 1 << 20, i64::MAX, true).unwrap();
    let expected = log.read(0, 1 << 20, i64::MAX, true).unwrap().records;
    log.delete().unwrap();
    assert!(!log_dir.exists());
    assert_eq!(region.records.unwrap().to_bytes().unwrap(), expected);
}

#[test]
fn truncation_below_a_region_is_an_error_not_a_short_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 1 << 20);
    fill(&mut log, 6, 2, 100);
    let r = log
        .read_region(0, 1 << 20, i64::MAX, true)
        .unwrap()
        .records
        .unwrap();
    log.truncate_to(4).unwrap();
    let err = r.to_bytes().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn read_at_checks_the_region_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 1 << 20);
    fill(&mut log, 3, 2, 100);
    let all = log.read(0, 1 << 20, i64::MAX, true).unwrap().records;
    // a region starting at the second batch
    let r = log
        .read_region(2, 1 << 20, i64::MAX, true)
        .unwrap()
        .records
        .unwrap();
    let skip = all.len() - r.len();
    let mut buf = vec![0u8; 10];
    r.read_at(5, &mut buf).unwrap();
    assert_eq!(&buf[..], &all[skip + 5..skip + 15]);
    let mut tail = vec![0u8; 1];
    r.read_at(r.len() - 1, &mut tail).unwrap();
    assert_eq!(tail[0], all[all.len() - 1]);
    assert_eq!(
        r.read_at(r.len(), &mut tail).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        r.read_at(usize::MAX, &mut tail).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
