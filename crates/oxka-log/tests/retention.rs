//! Retention: by time and by size the oldest whole segments go and nothing
//! else; the log start offset follows; delayed file deletion; DeleteRecords'
//! log start offset survives a restart through the checkpoint.

use std::fs;
use std::path::Path;

use oxka_log::builder::simple_batch;
use oxka_log::{
    Log, LogConfig, LogError, LogManager, RetentionConfig, TopicPartition,
    RETENTION_PASS_MIN_INTERVAL_MS,
};

fn tp() -> TopicPartition {
    TopicPartition::new("r", 0)
}

/// One batch of one 100-byte record per segment: each append rolls.
fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    }
}

fn retention(ms: i64, bytes: i64, delay: i64) -> RetentionConfig {
    RetentionConfig {
        retention_ms: ms,
        retention_bytes: bytes,
        file_delete_delay_ms: delay,
    }
}

/// A log with one segment per timestamp in `stamps`, plus the empty-free
/// active segment holding the last one.
fn log_with(dir: &Path, stamps: &[i64]) -> Log {
    let mut log = Log::open(dir, tp(), small_segments(), 0, 0, 0).unwrap();
    for &ts in stamps {
        log.append_as_leader(&mut simple_batch(1, 100, ts), 0, ts)
            .unwrap();
    }
    assert_eq!(log.num_segments(), stamps.len());
    log
}

fn files_with_suffix(dir: &Path, suffix: &str) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

#[test]
fn time_retention_removes_only_expired_closed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with(dir.path(), &[1_000, 2_000, 3_000, 4_000, 10_000]);
    log.set_retention_config(retention(5_000, -1, 0));
    let hw = log.log_end_offset();
    // at 8_500: segments whose newest record is older than 3_500 go
    assert_eq!(log.delete_old_segments(8_500, hw).unwrap(), 3);
    assert_eq!(log.segment_base_offsets(), vec![3, 4]);
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.log_end_offset(), 5);
    assert!(matches!(
        log.read(2, 1 << 20, hw, false),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let data = log.read(3, 1 << 20, hw, false).unwrap();
    assert_eq!(data.first_batch_offset, Some(3));
    // nothing more is due yet; the next closed segment expires at 9_001
    assert_eq!(log.delete_old_segments(8_500, hw).unwrap(), 0);
    assert_eq!(log.next_retention_check_ms(), Some(9_001));
    assert_eq!(files_with_suffix(dir.path(), ".log"), 2);
    assert_eq!(files_with_suffix(dir.path(), ".deleted"), 0);
}

#[test]
fn time_retention_of_everything_rolls_and_keeps_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with(dir.path(), &[1_000, 2_000, 3_000]);
    log.set_retention_config(retention(100, -1, 0));
    let hw = log.log_end_offset();
    assert_eq!(log.delete_old_segments(50_000, hw).unwrap(), 3);
    assert_eq!(log.num_segments(), 1);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    let info = log
        .append_as_leader(&mut simple_batch(1, 10, 60_000), 0, 60_000)
        .unwrap();
    assert_eq!(info.first_offset, 3);
    // the empty active segment is never deleted
    assert_eq!(log.delete_old_segments(50_000, 3).unwrap(), 0);
}

#[test]
fn retention_never_passes_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with(dir.path(), &[1_000, 2_000, 3_000]);
    log.set_retention_config(retention(100, -1, 0));
    // only offsets below 1 are committed: just the first segment may go
    assert_eq!(log.delete_old_segments(50_000, 1).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 1);
}

#[test]
fn size_retention_removes_oldest_segments_until_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let now = 5_000;
    let mut log = log_with(dir.path(), &[now, now, now, now, now]);
    let seg = log.size_in_bytes() as i64 / 5;
    // room for 2.5 segments: the oldest 2 go (3 remain, 0.5 over)
    log.set_retention_config(retention(-1, seg * 5 / 2, 0));
    let hw = log.log_end_offset();
    assert_eq!(log.delete_old_segments(now, hw).unwrap(), 2);
    assert_eq!(log.segment_base_offsets(), vec![2, 3, 4]);
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(log.delete_old_segments(now, hw).unwrap(), 0);
    assert_eq!(log.next_retention_check_ms(), None);
    // exactly at the limit: nothing more goes either
    log.set_retention_config(retention(-1, seg * 3, 0));
    assert_eq!(log.delete_old_segments(now, hw).unwrap(), 0);
    log.set_retention_config(retention(-1, seg * 2, 0));
    assert_eq!(log.next_retention_check_ms(), Some(0));
    assert_eq!(log.delete_old_segments(now, hw).unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![3, 4]);
}

#[test]
fn compact_only_topics_keep_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with(dir.path(), &[1_000, 2_000, 3_000]);
    let mut cfg = small_segments();
    cfg.delete = false;
    log.set_config(cfg);
    log.set_retention_config(retention(1, 1, 0));
    assert_eq!(log.delete_old_segments(50_000, 3).unwrap(), 0);
    assert_eq!(log.next_retention_check_ms(), None);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn deleted_files_wait_for_the_delete_delay() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with(dir.path(), &[1_000, 2_000, 3_000]);
    log.set_retention_config(retention(1_500, -1, 10_000));
    assert_eq!(log.delete_old_segments(3_600, 3).unwrap(), 2);
    // renamed, not yet unlinked: three files per segment
    assert_eq!(files_with_suffix(dir.path(), ".deleted"), 6);
    assert_eq!(log.pending_file_deletes(), 6);
    assert_eq!(log.next_retention_check_ms(), Some(13_600));
    assert_eq!(log.delete_expired_files(13_599).unwrap(), 0);
    assert_eq!(log.delete_expired_files(13_600).unwrap(), 6);
    assert_eq!(files_with_suffix(dir.path(), ".deleted"), 0);
    assert_eq!(log.pending_file_deletes(), 0);
}

#[test]
fn leftover_deleted_files_go_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = log_with(dir.path(), &[1_000, 2_000, 3_000]);
        log.set_retention_config(retention(1_500, -1, 60_000));
        assert_eq!(log.delete_old_segments(3_600, 3).unwrap(), 2);
        assert_eq!(files_with_suffix(dir.path(), ".deleted"), 6);
        // dropped without close: a crash
    }
    let log = Log::open(dir.path(), tp(), small_segments(), 0, 2, 0).unwrap();
    assert_eq!(files_with_suffix(dir.path(), ".deleted"), 0);
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn manager_runs_due_passes_and_full_sweeps() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d0")];
    let mgr = LogManager::startup(&dirs, 1, "c", LogConfig::default(), 0).unwrap();
    let a = TopicPartition::new("a", 0);
    let b = TopicPartition::new("b", 0);
    for t in [&a, &b] {
        let log = mgr.get_or_create_log(t, small_segments()).unwrap();
        let mut log = log.lock();
        log.set_retention_config(retention(1_000, -1, 0));
        for ts in [1_000, 2_000, 3_000] {
            log.append_as_leader(&mut simple_batch(1, 100, ts), 0, ts)
                .unwrap();
        }
    }
    let hw = |_: &TopicPartition| Some(3);
    // nothing scheduled: a due run does nothing
    assert_eq!(mgr.run_due_retention(10_000, hw).segments_deleted, 0);
    mgr.schedule_retention_check(&a, 5_000);
    assert_eq!(mgr.run_due_retention(4_999, hw).logs_checked, 0);
    let s = mgr.run_due_retention(5_000, hw);
    assert_eq!((s.logs_checked, s.segments_deleted), (1, 3));
    assert_eq!(mgr.get_log(&b).unwrap().lock().log_start_offset(), 0);
    // a full sweep covers every log; logs not led here are skipped
    let s = mgr.cleanup_logs(10_000, |tp| (*tp == b).then_some(3));
    assert_eq!((s.logs_checked, s.segments_deleted), (1, 3));
    assert_eq!(mgr.get_log(&b).unwrap().lock().log_start_offset(), 3);
}

#[test]
fn log_start_offset_survives_restart_through_the_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d0")];
    {
        let mgr = LogManager::startup(&dirs, 1, "c", LogConfig::default(), 0).unwrap();
        let log = mgr.get_or_create_log(&tp(), LogConfig::default()).unwrap();
        let mut log = log.lock();
        for _ in 0..10 {
            log.append_as_leader(&mut simple_batch(1, 10, 1), 0, 1)
                .unwrap();
        }
        log.increment_log_start_offset(7).unwrap();
        drop(log);
        mgr.checkpoint().unwrap();
        // no shutdown: a crash after the checkpoint
    }
    let mgr = LogManager::startup(&dirs, 1, "c", LogConfig::default(), 0).unwrap();
    let log = mgr.get_log(&tp()).unwrap();
    let log = log.lock();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 10));
    assert!(matches!(
        log.read(6, 1 << 20, 10, false),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn scheduled_passes_of_a_log_are_spaced_after_a_deletion() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d0")];
    let mgr = LogManager::startup(&dirs, 1, "c", LogConfig::default(), 0).unwrap();
    let a = TopicPartition::new("a", 0);
    let log = mgr.get_or_create_log(&a, small_segments()).unwrap();
    log.lock().set_retention_config(retention(1_000, -1, 0));
    let append = |ts: i64| {
        log.lock()
            .append_as_leader(&mut simple_batch(1, 100, ts), 0, ts)
            .unwrap();
    };
    for ts in [1_000, 2_000, 3_000] {
        append(ts);
    }
    let hw = |_: &TopicPartition| Some(i64::MAX);
    mgr.schedule_retention_check(&a, 0);
    // at 3_500 the segments of 1_000 and 2_000 are past retention
    assert_eq!(mgr.run_due_retention(3_500, hw).segments_deleted, 2);
    // a roll makes the next segment due, but not within the interval
    append(6_000);
    mgr.schedule_retention_check_for(&a, &log.lock());
    assert_eq!(mgr.run_due_retention(8_000, hw).segments_deleted, 0);
    let later = 3_500 + RETENTION_PASS_MIN_INTERVAL_MS;
    assert_eq!(mgr.run_due_retention(later - 1, hw).segments_deleted, 0);
    assert!(mgr.run_due_retention(later, hw).segments_deleted > 0);
    // a config change asks for a pass at once
    append(1);
    log.lock().set_retention_config(retention(10, -1, 0));
    mgr.request_retention_check(&a);
    assert!(mgr.run_due_retention(later + 1, hw).segments_deleted > 0);
}
