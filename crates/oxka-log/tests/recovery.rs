//! Crash recovery: whatever happens to the tail of the log, reopening
//! yields exactly a prefix of the appended batches.

use std::fs::{self, OpenOptions};
use std::path::Path;

use oxka_log::builder::{simple_batch, RecordBatchBuilder};
use oxka_log::record_batch::{batches, check_batch_integrity};
use oxka_log::{Compression, Log, LogConfig, TopicPartition};

fn tp() -> TopicPartition {
    TopicPartition::new("r", 0)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Builds a log of several segments; returns the stored bytes of each
/// batch of the active (last) segment and the config used.
fn build_log(dir: &Path) -> (LogConfig, Vec<(i64, Vec<u8>)>, i64) {
    let config = LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir, tp(), config.clone(), 0, 0, 0).unwrap();
    let mut stored = Vec::new();
    for i in 0..9 {
        let mut b = if i % 3 == 2 {
            RecordBatchBuilder::new()
                .compression(Compression::Snappy)
                .record(Some(b"key"), Some(&[i as u8; 90]), 1000 + i)
                .record(None, Some(b"second"), 1001 + i)
                .build()
        } else {
            simple_batch(1 + (i as usize % 3), 40, 1000 + i)
        };
        let info = log.append_as_leader(&mut b, 1, 0).unwrap();
        stored.push((info.first_offset, b.to_vec()));
    }
    assert!(log.num_segments() >= 3, "test needs several segments");
    let active_base = *log.segment_base_offsets().last().unwrap();
    log.close().unwrap();
    (config, stored, active_base)
}

fn all_bytes(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut off = log.log_start_offset();
    while off < log.log_end_offset() {
        let r = log.read(off, usize::MAX, i64::MAX, true).unwrap();
        assert!(!r.records.is_empty());
        for b in batches(&r.records) {
            let (h, bytes) = b.unwrap();
            check_batch_integrity(bytes).unwrap();
            off = h.last_offset() + 1;
        }
        out.extend_from_slice(&r.records);
    }
    out
}

fn expect_prefix(log: &Log, stored: &[(i64, Vec<u8>)], keep: usize) {
    let expected: Vec<u8> = stored[..keep].iter().flat_map(|(_, b)| b.clone()).collect();
    let leo = if keep < stored.len() {
        stored[keep].0
    } else {
        log.log_end_offset()
    };
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(all_bytes(log), expected);
}

#[test]
fn torn_last_batch_at_every_byte() {
    let src = tempfile::tempdir().unwrap();
    let (config, stored, active_base) = build_log(src.path());
    let active = src.path().join(format!("{active_base:020}.log"));
    let full_len = fs::metadata(&active).unwrap().len();
    let last_len = stored.last().unwrap().1.len() as u64;
    let keep = stored.len() - 1;
    let scratch = tempfile::tempdir().unwrap();
    for cut in (full_len - last_len)..full_len {
        let dir = scratch.path().join(format!("cut-{cut}"));
        copy_dir(src.path(), &dir);
        let f = OpenOptions::new()
            .write(true)
            .open(dir.join(format!("{active_base:020}.log")))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        // Recovery point at the active segment, as after a crash that lost
        // only unflushed data.
        let mut log = Log::open(&dir, tp(), config.clone(), active_base, 0, 0).unwrap();
        expect_prefix(&log, &stored, keep);
        assert_eq!(
            fs::metadata(dir.join(format!("{active_base:020}.log")))
                .unwrap()
                .len(),
            full_len - last_len
        );
        let info = log
            .append_as_leader(&mut simple_batch(2, 3, 5), 1, 0)
            .unwrap();
        assert_eq!(info.first_offset, stored[keep].0, "cut at {cut}");
        drop(log);
        let log = Log::open(&dir, tp(), config.clone(), 0, 0, 0).unwrap();
        assert_eq!(log.log_end_offset(), stored[keep].0 + 2);
        drop(log);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn corrupted_byte_in_last_batch_is_dropped() {
    let src = tempfile::tempdir().unwrap();
    let (config, stored, active_base) = build_log(src.path());
    let name = format!("{active_base:020}.log");
    let full = fs::read(src.path().join(&name)).unwrap();
    let last_len = stored.last().unwrap().1.len();
    let start = full.len() - last_len;
    let keep = stored.len() - 1;
    let scratch = tempfile::tempdir().unwrap();
    // Every byte the CRC or the framing protects (not the base offset or
    // leader epoch, which the broker owns and the CRC leaves out).
    for pos in (8..12).chain(16..last_len) {
        let dir = scratch.path().join(format!("flip-{pos}"));
        copy_dir(src.path(), &dir);
        let mut bytes = full.clone();
        bytes[start + pos] ^= 0x41;
        fs::write(dir.join(&name), &bytes).unwrap();
        let log = Log::open(&dir, tp(), config.clone(), 0, 0, 0).unwrap();
        expect_prefix(&log, &stored, keep);
        drop(log);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn garbage_after_valid_data_is_truncated() {
    let src = tempfile::tempdir().unwrap();
    let (config, stored, active_base) = build_log(src.path());
    let name = src.path().join(format!("{active_base:020}.log"));
    let mut bytes = fs::read(&name).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&name, &bytes).unwrap();
    let log = Log::open(src.path(), tp(), config, active_base, 0, 0).unwrap();
    expect_prefix(&log, &stored, stored.len());
}

#[test]
fn corruption_in_middle_segment_drops_later_segments() {
    let src = tempfile::tempdir().unwrap();
    let (config, stored, _) = build_log(src.path());
    let log = Log::open(src.path(), tp(), config.clone(), 0, 0, 0).unwrap();
    let bases = log.segment_base_offsets();
    drop(log);
    let second = src.path().join(format!("{:020}.log", bases[1]));
    let mut bytes = fs::read(&second).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&second, &bytes).unwrap();
    // Recovery point 0: every segment is checked.
    let log = Log::open(src.path(), tp(), config, 0, 0, 0).unwrap();
    assert_eq!(log.num_segments(), 2);
    let keep = stored.iter().position(|(o, _)| *o >= bases[2]).unwrap() - 1;
    expect_prefix(&log, &stored, keep);
    assert!(!src.path().join(format!("{:020}.log", bases[2])).exists());
}

#[test]
fn segments_before_recovery_point_are_trusted_but_tail_checked() {
    let src = tempfile::tempdir().unwrap();
    let (config, stored, active_base) = build_log(src.path());
    // Cut the active segment mid-batch but claim it was all flushed: the
    // tail scan still notices the torn batch and recovers.
    let name = src.path().join(format!("{active_base:020}.log"));
    let len = fs::metadata(&name).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&name)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let log =
        Log::open_with_shutdown_state(src.path(), tp(), config, i64::MAX, 0, 0, true).unwrap();
    expect_prefix(&log, &stored, stored.len() - 1);
}
