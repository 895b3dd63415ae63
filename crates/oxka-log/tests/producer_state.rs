//! Idempotence and transactions in the log: sequence checks on append, and
//! producer state / aborted-transaction index surviving restarts (snapshot
//! plus replay of the log tail), crashes and truncation.

use std::path::Path;

use oxka_log::builder::RecordBatchBuilder;
use oxka_log::producer_state::list_snapshots;
use oxka_log::{Log, LogConfig, LogError, TopicPartition};

fn tp() -> TopicPartition {
    TopicPartition::new("eos", 0)
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, cfg: &LogConfig) -> Log {
    Log::open(dir, tp(), cfg.clone(), 0, 0, 0).unwrap()
}

fn batch(pid: i64, epoch: i16, seq: i32, n: usize, txn: bool) -> bytes::BytesMut {
    let mut b = RecordBatchBuilder::new()
        .producer(pid, epoch, seq)
        .transactional(txn);
    for i in 0..n {
        b = b.record(None, Some(format!("{pid}-{seq}-{i}").as_bytes()), 1_000);
    }
    b.build()
}

fn append(log: &mut Log, pid: i64, epoch: i16, seq: i32, n: usize) -> Result<i64, LogError> {
    append_txn(log, pid, epoch, seq, n, false)
}

fn append_txn(
    log: &mut Log,
    pid: i64,
    epoch: i16,
    seq: i32,
    n: usize,
    txn: bool,
) -> Result<i64, LogError> {
    log.append_as_leader(&mut batch(pid, epoch, seq, n, txn), 0, 1_000)
        .map(|i| i.first_offset)
}

#[test]
fn retries_are_deduplicated_and_gaps_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &config(1 << 20));
    assert_eq!(append(&mut log, 1, 0, 0, 3).unwrap(), 0);
    assert_eq!(append(&mut log, 1, 0, 3, 2).unwrap(), 3);
    // the retry is answered with the original offset and not stored
    assert_eq!(append(&mut log, 1, 0, 3, 2).unwrap(), 3);
    assert_eq!(log.log_end_offset(), 5);
    assert!(matches!(
        append(&mut log, 1, 0, 9, 1),
        Err(LogError::OutOfOrderSequence(_))
    ));
    assert!(matches!(
        append(&mut log, 1, -1, 5, 1),
        Err(LogError::InvalidProducerEpoch(_))
    ));
    // plain batches are untouched by all this
    let mut plain = RecordBatchBuilder::new()
        .record(None, Some(b"x"), 1)
        .build();
    assert_eq!(
        log.append_as_leader(&mut plain, 0, 0).unwrap().first_offset,
        5
    );
    assert_eq!(log.log_end_offset(), 6);
    // clients cannot write markers
    let mut marker = RecordBatchBuilder::new()
        .control(true)
        .transactional(true)
        .producer(1, 0, -1)
        .record(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), 1)
        .build();
    assert!(matches!(
        log.append_as_leader(&mut marker, 0, 0),
        Err(LogError::InvalidRecord(_))
    ));
}

/// Kill -9 with no snapshot at all: the whole log is replayed.
#[test]
fn state_is_rebuilt_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 20);
    {
        let mut log = open(dir.path(), &cfg);
        for i in 0..10 {
            append(&mut log, 7, 2, i * 2, 2).unwrap();
        }
        // dropped without close: no snapshot, no clean shutdown
    }
    assert!(list_snapshots(dir.path()).unwrap().is_empty());
    let mut log = open(dir.path(), &cfg);
    assert_eq!(
        append(&mut log, 7, 2, 18, 2).unwrap(),
        18,
        "retry after restart"
    );
    assert_eq!(append(&mut log, 7, 2, 16, 2).unwrap(), 16);
    assert!(matches!(
        append(&mut log, 7, 2, 30, 1),
        Err(LogError::OutOfOrderSequence(_))
    ));
    assert_eq!(append(&mut log, 7, 2, 20, 1).unwrap(), 20);
}

/// Snapshots at every roll; a crash replays only the tail after the last.
#[test]
fn snapshot_at_roll_plus_tail_replay() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(300);
    {
        let mut log = open(dir.path(), &cfg);
        for i in 0..30 {
            append(&mut log, 3, 0, i, 1).unwrap();
        }
        assert!(log.num_segments() > 3);
    }
    let snaps = list_snapshots(dir.path()).unwrap();
    assert!(!snaps.is_empty() && snaps.len() <= 2, "{snaps:?}");
    let mut log = open(dir.path(), &cfg);
    assert!(*snaps.last().unwrap() < log.log_end_offset());
    assert_eq!(append(&mut log, 3, 0, 29, 1).unwrap(), 29);
    assert_eq!(append(&mut log, 3, 0, 30, 1).unwrap(), 30);
    log.close().unwrap();
    // clean shutdown: a snapshot at the log end, nothing to replay
    assert_eq!(list_snapshots(dir.path()).unwrap().last(), Some(&31));
    let mut log = open(dir.path(), &cfg);
    assert_eq!(append(&mut log, 3, 0, 30, 1).unwrap(), 30);
    assert_eq!(log.log_end_offset(), 31);
}

/// A corrupt snapshot is ignored (and removed): the log is replayed.
#[test]
fn corrupt_snapshot_falls_back_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 20);
    {
        let mut log = open(dir.path(), &cfg);
        append(&mut log, 4, 0, 0, 5).unwrap();
        log.close().unwrap();
    }
    let snap = dir.path().join(format!("{:020}.snapshot", 5));
    std::fs::write(&snap, b"garbage").unwrap();
    let mut log = open(dir.path(), &cfg);
    assert!(!snap.exists());
    assert_eq!(append(&mut log, 4, 0, 0, 5).unwrap(), 0);
}

#[test]
fn transactions_lso_and_aborted_index_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 20);
    {
        let mut log = open(dir.path(), &cfg);
        append_txn(&mut log, 10, 0, 0, 2, true).unwrap(); // 0..1
        append_txn(&mut log, 11, 0, 0, 2, true).unwrap(); // 2..3
        assert_eq!(log.first_unstable_offset(), Some(0));
        // plain data inside an open transaction is refused
        assert!(matches!(
            append(&mut log, 10, 0, 2, 1),
            Err(LogError::InvalidTxnState(_))
        ));
        let m = log.append_txn_marker(10, 0, 0, false, 0, 1_000).unwrap(); // 4
        assert_eq!(m.first_offset, 4);
        assert_eq!(log.first_unstable_offset(), Some(2));
        let aborted = log.collect_aborted_transactions(0, 5);
        assert_eq!(aborted.len(), 1);
        assert_eq!((aborted[0].first_offset, aborted[0].last_offset), (0, 4));
        assert_eq!(aborted[0].last_stable_offset, 2);
        // a marker from an older epoch is fenced
        assert!(matches!(
            log.append_txn_marker(11, -1, 0, true, 0, 1_000),
            Err(LogError::InvalidProducerEpoch(_))
        ));
        log.roll_now(1_000).unwrap();
        log.append_txn_marker(11, 0, 0, true, 0, 1_000).unwrap(); // 5
        assert_eq!(log.first_unstable_offset(), None);
        append_txn(&mut log, 12, 0, 0, 1, true).unwrap(); // 6, left open
                                                          // crash
    }
    let mut log = open(dir.path(), &cfg);
    assert_eq!(log.first_unstable_offset(), Some(6));
    assert_eq!(log.collect_aborted_transactions(0, 100).len(), 1);
    log.append_txn_marker(12, 0, 0, false, 0, 1_000).unwrap(); // 7
    assert_eq!(log.collect_aborted_transactions(5, 100).len(), 1);
    assert_eq!(log.collect_aborted_transactions(0, 100).len(), 2);
    // truncation below the second abort forgets it and reopens the txn
    log.truncate_to(7).unwrap();
    assert_eq!(log.collect_aborted_transactions(0, 100).len(), 1);
    assert_eq!(log.first_unstable_offset(), Some(6));
    log.close().unwrap();
    let log = open(dir.path(), &cfg);
    assert_eq!(log.first_unstable_offset(), Some(6));
    assert_eq!(log.collect_aborted_transactions(0, 100).len(), 1);
}

#[test]
fn idle_producers_expire() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &config(1 << 20));
    append(&mut log, 1, 0, 0, 1).unwrap();
    assert_eq!(
        log.remove_expired_producers(1_000 + 86_400_000, 86_400_000)
            .unwrap(),
        1
    );
    // forgotten: any sequence is accepted again (KIP-360)
    assert_eq!(append(&mut log, 1, 0, 5, 1).unwrap(), 1);
}
