//! What partition replication needs from the log: the leader epoch cache
//! (KIP-101/KIP-279) and follower appends that copy the leader's batches
//! exactly.

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use bytes::BytesMut;
use oxka_log::builder::{simple_batch, RecordBatchBuilder};
use oxka_log::cleaner::{Cleaner, CleanerConfig};
use oxka_log::record_batch::{batches, decode_records};
use oxka_log::{
    EpochEntry, Log, LogConfig, LogError, TopicPartition, LEADER_EPOCH_CHECKPOINT_FILE,
};
use parking_lot::Mutex;

const NOW: i64 = 1_000_000;

fn tp() -> TopicPartition {
    TopicPartition::new("r", 0)
}

/// Small segments and a dense index, so copies cross rolls and indexes.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_000,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Log {
    Log::open(dir, tp(), config(), 0, 0, NOW).unwrap()
}

fn entries(log: &Log) -> Vec<(i32, i64)> {
    log.leader_epoch_cache()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

fn plain(log: &mut Log, n: usize, epoch: i32) {
    let mut b = simple_batch(n, 40, NOW);
    log.append_as_leader(&mut b, epoch, NOW).unwrap();
}

fn idempotent(log: &mut Log, pid: i64, seq: i32, n: usize, txn: bool, epoch: i32) {
    let mut b = RecordBatchBuilder::new()
        .producer(pid, 0, seq)
        .transactional(txn);
    for i in 0..n {
        b = b.record(Some(b"k"), Some(format!("v{seq}-{i}").as_bytes()), NOW + 5);
    }
    let mut bytes: BytesMut = b.build();
    log.append_as_leader(&mut bytes, epoch, NOW).unwrap();
}

/// A leader log in epochs 0, 1 and 3: plain, idempotent and transactional
/// batches, a committed and an aborted transaction, several segments.
fn leader_log(dir: &Path) -> Log {
    let mut log = open(dir);
    plain(&mut log, 3, 0);
    idempotent(&mut log, 7, 0, 2, false, 0);
    idempotent(&mut log, 9, 0, 2, true, 0);
    plain(&mut log, 4, 0);
    log.append_txn_marker(9, 0, 1, true, 0, NOW).unwrap();
    idempotent(&mut log, 7, 2, 3, false, 1);
    plain(&mut log, 5, 1);
    idempotent(&mut log, 9, 2, 1, true, 1);
    plain(&mut log, 2, 3);
    log.append_txn_marker(9, 0, 1, false, 3, NOW).unwrap();
    idempotent(&mut log, 7, 5, 2, false, 3);
    idempotent(&mut log, 11, 0, 1, true, 3);
    plain(&mut log, 6, 3);
    log
}

/// Copies the leader's batches from `from` on, one fetch per batch.
fn copy_batches(leader: &Log, follower: &mut Log, from: i64) {
    let mut offset = from;
    while offset < leader.log_end_offset() {
        let data = leader.read(offset, 1, i64::MAX, true).unwrap();
        let info = follower.append_as_follower(&data.records, NOW).unwrap();
        assert_eq!(info.num_batches, 1);
        assert_eq!(Some(info.first_offset), data.first_batch_offset);
        offset = info.last_offset + 1;
        assert_eq!(follower.log_end_offset(), offset);
    }
}

/// Every batch of the log, as stored.
fn read_all(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, i64::MAX, true).unwrap().records;
        let last = batches(&data).map(|b| b.unwrap().0.last_offset()).last();
        out.extend_from_slice(&data);
        offset = last.unwrap() + 1;
    }
    out
}

/// Every file of `suffix` in `dir`, by name, with its bytes.
fn files(dir: &Path, suffix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// What a producer's state means for the next batch: its epoch, its last
/// batch, its open transaction (the deque of recent batches depends on
/// whether the state was replayed or loaded from a snapshot).
fn producer_summary(
    log: &Log,
    pid: i64,
) -> Option<(
    i16,
    Option<oxka_log::producer_state::BatchMetadata>,
    Option<i64>,
)> {
    log.producer_state().entry(pid).map(|e| {
        (
            e.producer_epoch,
            e.batches.back().copied(),
            e.current_txn_first_offset,
        )
    })
}

fn assert_same_log(a: &Log, b: &Log) {
    assert_eq!(a.log_end_offset(), b.log_end_offset());
    assert_eq!(a.segment_base_offsets(), b.segment_base_offsets());
    assert_eq!(files(a.dir(), ".log"), files(b.dir(), ".log"));
    assert_eq!(entries(a), entries(b));
    assert_eq!(
        a.producer_state().snapshot_bytes(),
        b.producer_state().snapshot_bytes()
    );
    assert_eq!(a.first_unstable_offset(), b.first_unstable_offset());
    assert_eq!(
        a.collect_aborted_transactions(0, i64::MAX),
        b.collect_aborted_transactions(0, i64::MAX)
    );
}

#[test]
fn a_follower_copy_is_byte_identical_with_the_same_epochs_and_producer_state() {
    let ld = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let leader = leader_log(ld.path());
    assert!(leader.num_segments() > 2, "the copy should cross rolls");
    let mut follower = open(fd.path());
    copy_batches(&leader, &mut follower, 0);

    assert_same_log(&leader, &follower);
    assert_eq!(entries(&leader), vec![(0, 0), (1, 12), (3, 21)]);
    assert_eq!(follower.latest_epoch(), Some(3));
    assert_eq!(follower.end_offset_for_epoch(1), Some((1, 21)));
    assert_eq!(follower.end_offset_for_epoch(2), Some((1, 21)));
    assert_eq!(follower.end_offset_for_epoch(3), Some((3, 33)));
    // the aborted transaction is indexed on the follower too
    assert_eq!(follower.collect_aborted_transactions(0, i64::MAX).len(), 1);
    // producer 11's transaction is still open on both
    assert_eq!(follower.first_unstable_offset(), Some(26));
    // sequence state carried over: the follower, once leader, answers a
    // retry with its original offsets
    let e = follower.producer_state().entry(7).unwrap();
    assert_eq!((e.producer_epoch, e.last_seq()), (0, 6));
    let retry = {
        let mut b = RecordBatchBuilder::new().producer(7, 0, 5);
        for i in 0..2 {
            b = b.record(Some(b"k"), Some(format!("v5-{i}").as_bytes()), NOW + 5);
        }
        let mut bytes: BytesMut = b.build();
        follower.append_as_leader(&mut bytes, 4, NOW).unwrap()
    };
    assert_eq!((retry.first_offset, retry.num_records), (24, 0));

    // multi-batch fetches give the same log
    let fd2 = tempfile::tempdir().unwrap();
    let mut follower2 = open(fd2.path());
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let data = leader.read(offset, 700, i64::MAX, true).unwrap();
        let info = follower2.append_as_follower(&data.records, NOW).unwrap();
        offset = info.last_offset + 1;
    }
    assert_same_log(&leader, &follower2);

    // and so does reopening both
    drop(leader);
    follower.close().unwrap();
    let leader = open(ld.path());
    let follower = open(fd.path());
    assert_same_log(&leader, &follower);
}

#[test]
fn append_as_follower_refuses_offsets_below_the_log_end_and_overlaps() {
    let ld = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let mut leader = open(ld.path());
    plain(&mut leader, 3, 0);
    plain(&mut leader, 2, 0);
    plain(&mut leader, 4, 0);
    let first = leader.read(0, 1, i64::MAX, true).unwrap().records;
    let second = leader.read(3, 1, i64::MAX, true).unwrap().records;
    let third = leader.read(5, 1, i64::MAX, true).unwrap().records;
    let mut follower = open(fd.path());

    let empty = follower.append_as_follower(&[], NOW).unwrap();
    assert_eq!((empty.first_offset, empty.num_records), (0, 0));
    follower.append_as_follower(&first, NOW).unwrap();
    // the same batch again starts below the log end
    match follower.append_as_follower(&first, NOW) {
        Err(LogError::UnexpectedAppendOffset { expected, got }) => {
            assert_eq!((expected, got), (3, 0))
        }
        other => panic!("expected UnexpectedAppendOffset, got {other:?}"),
    }
    // batches out of order within one append: nothing is appended
    let mut both = third.to_vec();
    both.extend_from_slice(&second);
    assert!(matches!(
        follower.append_as_follower(&both, NOW),
        Err(LogError::UnexpectedAppendOffset {
            expected: 9,
            got: 3
        })
    ));
    assert_eq!(follower.log_end_offset(), 3);
    // a corrupt batch is refused
    let mut bad = second.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        follower.append_as_follower(&bad, NOW),
        Err(LogError::CorruptRecord(_))
    ));
    assert_eq!(follower.log_end_offset(), 3);
    follower.append_as_follower(&second, NOW).unwrap();
    // a gap (batches a compacted leader removed) is kept as a gap
    let info = follower.append_as_follower(&third, NOW).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (5, 8));
    assert_eq!(follower.log_end_offset(), 9);
    assert_eq!(files(ld.path(), ".log"), files(fd.path(), ".log"));
}

#[test]
fn a_follower_keeps_a_compacted_leaders_batches() {
    let ld = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 600,
        compact: true,
        delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let leader = Mutex::new(Log::open(ld.path(), tp(), cfg.clone(), 0, 0, NOW).unwrap());
    {
        let mut l = leader.lock();
        for round in 0..6 {
            let mut b = RecordBatchBuilder::new();
            for k in 0..4 {
                // key 0 is rewritten in every batch; the others once
                let key = if k == 0 {
                    "k0".to_string()
                } else {
                    format!("k{round}-{k}")
                };
                b = b.record(Some(key.as_bytes()), Some(b"value"), NOW);
            }
            let mut bytes: BytesMut = b.build();
            l.append_as_leader(&mut bytes, round / 3, NOW).unwrap();
            l.roll_now(NOW).unwrap();
        }
    }
    let mut cleaner = Cleaner::new(CleanerConfig::default());
    cleaner
        .clean(&leader, 0, NOW, &AtomicBool::new(false))
        .unwrap();
    let leader = leader.into_inner();
    let data = read_all(&leader);
    let sparse = batches(&data)
        .map(|b| b.unwrap().0)
        .filter(|h| i64::from(h.records_count) < i64::from(h.last_offset_delta) + 1)
        .count();
    assert!(sparse > 0, "the cleaner should have left sparse batches");

    let mut follower = Log::open(fd.path(), tp(), cfg, 0, 0, NOW).unwrap();
    copy_batches(&leader, &mut follower, 0);
    let copied = read_all(&follower);
    assert_eq!(copied, data);
    let records: usize = batches(&copied)
        .map(|b| decode_records(b.unwrap().1).unwrap().len())
        .sum();
    // three unique keys per batch, and the last k0
    assert_eq!(records, 6 * 3 + 1);
    assert_eq!(entries(&follower), entries(&leader));
    assert_eq!(entries(&follower), vec![(0, 0), (1, 12)]);
}

/// A follower that copied records the next leader never had cuts back to
/// where the epochs diverge (KIP-101) and continues from the new leader.
#[test]
fn a_follower_truncates_to_the_divergence_and_follows_the_new_leader() {
    let ad = tempfile::tempdir().unwrap();
    let bd = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    // A leads epochs 0 and 1; B and F follow.
    let mut a = open(ad.path());
    plain(&mut a, 4, 0);
    idempotent(&mut a, 7, 0, 3, false, 0);
    idempotent(&mut a, 7, 3, 3, false, 1);
    plain(&mut a, 4, 1);
    let mut b = open(bd.path());
    copy_batches(&a, &mut b, 0);
    let b_end = b.log_end_offset();
    assert_eq!(b_end, 14);
    let state_at_b_end = producer_summary(&b, 7);
    // A writes more in epoch 1 that only F copies.
    idempotent(&mut a, 7, 6, 2, false, 1);
    plain(&mut a, 15, 1);
    idempotent(&mut a, 7, 8, 2, false, 1);
    let mut f = open(fd.path());
    copy_batches(&a, &mut f, 0);
    assert!(f.num_segments() > b.num_segments());
    assert_eq!(f.producer_state().entry(7).unwrap().last_seq(), 9);

    // B becomes leader in epoch 2 at its log end and writes.
    b.assign_epoch_start_offset(2, b.log_end_offset()).unwrap();
    assert_eq!(b.end_offset_for_epoch(2), Some((2, 14)));
    plain(&mut b, 5, 2);
    idempotent(&mut b, 7, 6, 1, false, 2);

    // F asks where its latest epoch ends on B, and truncates there.
    let (epoch, end) = b.end_offset_for_epoch(f.latest_epoch().unwrap()).unwrap();
    assert_eq!((epoch, end), (1, 14));
    f.truncate_to(end.min(f.log_end_offset())).unwrap();
    assert_eq!(f.log_end_offset(), 14);
    assert_eq!(entries(&f), vec![(0, 0), (1, 7)]);
    // the producer's state is the one at the truncation point
    assert_eq!(producer_summary(&f, 7), state_at_b_end);
    assert_eq!(f.producer_state().entry(7).unwrap().last_seq(), 5);
    copy_batches(&b, &mut f, end);
    assert_same_log(&b, &f);
    assert_eq!(entries(&f), vec![(0, 0), (1, 7), (2, 14)]);
    // and after a restart
    drop(f);
    let f = open(fd.path());
    assert_same_log(&b, &f);
}

#[test]
fn truncation_inside_a_batch_drops_the_batch_and_its_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    plain(&mut log, 5, 0);
    idempotent(&mut log, 3, 0, 2, false, 0);
    plain(&mut log, 5, 2);
    idempotent(&mut log, 3, 2, 2, false, 2);
    assert_eq!(entries(&log), vec![(0, 0), (2, 7)]);
    // 9 lies inside the batch 7..=11: all of it goes, and epoch 2 with it
    log.truncate_to(9).unwrap();
    assert_eq!(log.log_end_offset(), 7);
    assert_eq!(entries(&log), vec![(0, 0)]);
    let e = log.producer_state().entry(3).unwrap();
    assert_eq!(
        (e.last_seq(), e.batches.back().unwrap().last_offset),
        (1, 6)
    );
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 7)));
    // truncating to the log start empties the log and the cache
    log.truncate_to(0).unwrap();
    assert_eq!(entries(&log), vec![]);
    assert_eq!(log.latest_epoch(), None);
    assert!(log.producer_state().is_empty());
}

#[test]
fn truncate_fully_and_start_at_restarts_an_empty_log() {
    let ld = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let mut leader = open(ld.path());
    for i in 0..6 {
        plain(&mut leader, 3, i / 2);
    }
    let mut follower = open(fd.path());
    plain(&mut follower, 2, 0);
    // the leader's log now starts at 9: the follower's fetch offset is
    // below it
    leader.increment_log_start_offset(9).unwrap();
    assert_eq!(entries(&leader), vec![(1, 9), (2, 12)]);
    follower
        .truncate_fully_and_start_at(leader.log_start_offset(), NOW)
        .unwrap();
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (9, 9)
    );
    assert_eq!(follower.latest_epoch(), None);
    assert_eq!(follower.segment_base_offsets(), vec![9]);
    copy_batches(&leader, &mut follower, 9);
    assert_eq!(entries(&follower), vec![(1, 9), (2, 12)]);
    drop(follower);
    let follower = Log::open(fd.path(), tp(), config(), 0, 9, NOW).unwrap();
    assert_eq!(entries(&follower), vec![(1, 9), (2, 12)]);
    assert_eq!(follower.log_end_offset(), 18);
}

#[test]
fn the_log_start_moving_up_moves_the_first_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for epoch in 0..4 {
        for _ in 0..4 {
            plain(&mut log, 10, epoch);
        }
    }
    assert_eq!(entries(&log), vec![(0, 0), (1, 40), (2, 80), (3, 120)]);
    log.increment_log_start_offset(50).unwrap();
    assert_eq!(entries(&log), vec![(1, 50), (2, 80), (3, 120)]);
    // retention removes whole segments and raises the log start
    let mut retention = log.retention_config().clone();
    retention.retention_bytes = 1;
    log.set_retention_config(retention);
    log.delete_old_segments(NOW, log.log_end_offset()).unwrap();
    let start = log.log_start_offset();
    assert!(start > 120, "retention should have reached epoch 3");
    assert_eq!(entries(&log), vec![(3, start)]);
    // below the first known epoch: that epoch ends where the log's first
    // epoch now starts (KIP-279)
    assert_eq!(log.end_offset_for_epoch(1), Some((1, start)));
    drop(log);
    let log = Log::open(dir.path(), tp(), config(), 0, start, NOW).unwrap();
    assert_eq!(entries(&log), vec![(3, start)]);
}

#[test]
fn a_crash_keeps_the_cache_and_a_lost_checkpoint_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let log = leader_log(dir.path());
    let expected = entries(&log);
    let end = log.log_end_offset();
    // a crash: no close
    drop(log);
    let log = open(dir.path());
    assert_eq!(entries(&log), expected);
    assert_eq!(log.log_end_offset(), end);

    // an entry for records a crash lost (recorded before the write) is
    // dropped on open
    let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
    drop(log);
    let mut text = String::from("0\n4\n0 0\n1 12\n3 21\n");
    text.push_str(&format!("5 {}\n", end));
    fs::write(&path, text).unwrap();
    let log = open(dir.path());
    assert_eq!(entries(&log), expected);
    drop(log);

    // a missing checkpoint is rebuilt from the batches and written again
    fs::remove_file(&path).unwrap();
    let log = open(dir.path());
    assert_eq!(entries(&log), expected);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "0\n3\n0 0\n1 12\n3 21\n"
    );
    drop(log);
    // so is a damaged one
    fs::write(&path, "0\n3\n0 0\n1 1").unwrap();
    let log = open(dir.path());
    assert_eq!(entries(&log), expected);
}

#[test]
fn batches_without_a_leader_epoch_are_ignored_by_the_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    plain(&mut log, 3, -1);
    assert_eq!(log.latest_epoch(), None);
    plain(&mut log, 3, 4);
    plain(&mut log, 3, -1);
    assert_eq!(entries(&log), vec![(4, 3)]);
    drop(log);
    fs::remove_file(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
    let log = open(dir.path());
    assert_eq!(
        log.leader_epoch_cache().entries(),
        &[EpochEntry {
            epoch: 4,
            start_offset: 3
        }]
    );
}

#[test]
fn a_new_leader_assigns_its_epoch_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    plain(&mut log, 3, 0);
    log.assign_epoch_start_offset(2, log.log_end_offset())
        .unwrap();
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 3)));
    // appends in that epoch add nothing; an older epoch changes nothing
    plain(&mut log, 3, 2);
    log.assign_epoch_start_offset(1, 6).unwrap();
    assert_eq!(entries(&log), vec![(0, 0), (2, 3)]);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 6)));
    assert_eq!(log.end_offset_for_epoch(3), None);
}

/// A replica that led in an epoch but wrote nothing keeps an epoch entry at
/// its log end; truncating to the log end (where the new leader's
/// divergence answer points) must drop it, or every later fetch names that
/// epoch again and the follower never catches up (found by the broker's
/// replication simulator).
#[test]
fn truncating_to_the_log_end_drops_an_empty_trailing_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    plain(&mut log, 3, 1);
    let leo = log.log_end_offset();
    log.assign_epoch_start_offset(4, leo).unwrap();
    assert_eq!(log.latest_epoch(), Some(4));
    log.truncate_to(leo).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(entries(&log), vec![(1, 0)]);
}
