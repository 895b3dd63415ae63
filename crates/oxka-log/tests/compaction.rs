//! Log compaction against a reference model: the latest record per key
//! stays, tombstones go `delete.retention.ms` after they were first
//! cleaned, offsets never change, the active segment is never touched, and
//! a crash at any point of a swap leaves a readable log holding either the
//! old or the new segments.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use bytes::BytesMut;
use oxka_log::builder::RecordBatchBuilder;
use oxka_log::cleaner::{
    CleanOutcome, Cleaner, CleanerConfig, CleanerError, CrashPoint, LogCleaner,
};
use oxka_log::record_batch::{batches, check_batch_integrity, decode_records};
use oxka_log::{Compression, Log, LogConfig, LogError, TopicPartition};
use parking_lot::Mutex;
use proptest::prelude::*;

const RETENTION: i64 = 1_000;

fn tp() -> TopicPartition {
    TopicPartition::new("compacted", 0)
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        compact: true,
        delete: false,
        min_cleanable_dirty_ratio: 0.5,
        delete_retention_ms: RETENTION,
        ..LogConfig::default()
    }
}

fn cleaner(map_bytes: u64) -> Cleaner {
    Cleaner::new(CleanerConfig {
        dedupe_buffer_size: map_bytes,
        io_buffer_size: 4096,
        ..CleanerConfig::default()
    })
}

/// A record as consumers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// The model's view of a record: plus when the cleaner first kept it as a
/// tombstone (its delete horizon is then + delete.retention.ms).
#[derive(Clone, Debug)]
struct ModelRec {
    rec: Rec,
    horizon: Option<i64>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    records: Vec<ModelRec>,
}

impl Model {
    /// One full cleaning at `now` of every offset below `uncleanable`.
    fn clean(&mut self, uncleanable: i64, now: i64) {
        let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
        for r in &self.records {
            if r.rec.offset < uncleanable {
                if let Some(k) = &r.rec.key {
                    latest.insert(k.clone(), r.rec.offset);
                }
            }
        }
        self.records.retain_mut(|r| {
            if r.rec.offset >= uncleanable {
                return true;
            }
            let Some(k) = &r.rec.key else { return false };
            if latest.get(k) != Some(&r.rec.offset) {
                return false;
            }
            if r.rec.value.is_none() {
                match r.horizon {
                    Some(h) if now >= h => return false,
                    Some(_) => {}
                    None => r.horizon = Some(now + RETENTION),
                }
            }
            true
        });
    }

    fn recs(&self) -> Vec<Rec> {
        self.records.iter().map(|r| r.rec.clone()).collect()
    }
}

/// Every record readable from the log start, checking each batch's CRC.
fn read_all(log: &Log) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut pos = log.log_start_offset();
    let end = log.log_end_offset();
    while pos < end {
        let data = log.read(pos, 64 * 1024, i64::MAX, true).expect("read");
        if data.records.is_empty() {
            break;
        }
        for b in batches(&data.records) {
            let (h, raw) = b.expect("framing");
            check_batch_integrity(raw).expect("crc");
            for r in decode_records(raw).expect("decode") {
                if r.offset >= pos {
                    out.push(Rec {
                        offset: r.offset,
                        key: r.key,
                        value: r.value,
                        timestamp: r.timestamp,
                        headers: r.headers,
                    });
                }
            }
            pos = h.last_offset() + 1;
        }
    }
    out
}

fn active_base(log: &Log) -> i64 {
    *log.segment_base_offsets().last().expect("a segment")
}

fn active_bytes(dir: &Path, log: &Log) -> Vec<u8> {
    std::fs::read(dir.join(format!("{:020}.log", active_base(log)))).expect("active segment")
}

fn stray_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

fn codec(c: u8) -> Compression {
    match c % 5 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    }
}

/// Appends one batch; returns the records as the model sees them.
fn append(
    log: &mut Log,
    recs: &[(u8, Option<u16>)],
    codec_id: u8,
    now: i64,
) -> Result<Vec<Rec>, LogError> {
    let mut b = RecordBatchBuilder::new().compression(codec(codec_id));
    let mut out = Vec::new();
    let first = log.log_end_offset();
    for (i, (k, v)) in recs.iter().enumerate() {
        let key = format!("key-{k}").into_bytes();
        let value =
            v.map(|v| format!("value-{v}-{}", "x".repeat(usize::from(v % 40))).into_bytes());
        let ts = now + i as i64;
        let hv = format!("h{i}").into_bytes();
        b = b.record_with_headers(
            Some(&key),
            value.as_deref(),
            &[("hdr", Some(hv.as_slice()))],
            ts,
        );
        out.push(Rec {
            offset: first + i as i64,
            key: Some(key),
            value,
            timestamp: ts,
            headers: vec![(b"hdr".to_vec(), Some(hv))],
        });
    }
    let mut bytes: BytesMut = b.build();
    log.append_as_leader(&mut bytes, 0, now)?;
    Ok(out)
}

/// Cleans until the whole cleanable range is done (several passes when the
/// map is small), as the background cleaner would.
fn clean_fully(cleaner: &mut Cleaner, log: &Mutex<Log>, now: i64) -> CleanOutcome {
    let stop = AtomicBool::new(false);
    let target = active_base(&log.lock());
    let mut first_dirty = 0;
    let mut last = CleanOutcome::default();
    for _ in 0..1000 {
        last = cleaner.clean(log, first_dirty, now, &stop).expect("clean");
        first_dirty = last.next_dirty_offset;
        if first_dirty >= target {
            return last;
        }
    }
    panic!("cleaning made no progress: {last:?}");
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        recs: Vec<(u8, Option<u16>)>,
        codec: u8,
    },
    Roll,
    Clean {
        advance: i64,
    },
    CrashClean {
        point: u8,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let rec = (
        0u8..12,
        prop_oneof![1 => Just(None), 4 => any::<u16>().prop_map(Some)],
    );
    prop_oneof![
        8 => (prop::collection::vec(rec, 1..6), any::<u8>())
            .prop_map(|(recs, codec)| Op::Append { recs, codec }),
        2 => Just(Op::Roll),
        3 => (0i64..1500).prop_map(|advance| Op::Clean { advance }),
        1 => (0u8..5).prop_map(|point| Op::CrashClean { point }),
        1 => Just(Op::Reopen),
    ]
}

fn crash_point(i: u8) -> CrashPoint {
    match i % 5 {
        0 => CrashPoint::AfterCleanedWritten,
        1 => CrashPoint::AfterSwapCommitted,
        2 => CrashPoint::AfterFirstOldSegmentDeleted,
        3 => CrashPoint::AfterOldSegmentsDeleted,
        _ => CrashPoint::AfterIndexesRenamed,
    }
}

fn reopen(dir: &Path, log: &Mutex<Log>, segment_bytes: u64, now: i64) -> Log {
    let (rp, start) = {
        let l = log.lock();
        (l.recovery_point(), l.log_start_offset())
    };
    Log::open(dir, tp(), config(segment_bytes), rp, start, now).expect("reopen")
}

fn run_workload(ops: Vec<Op>, segment_bytes: u64, map_bytes: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("compacted-0");
    let mut now = 1_000_000i64;
    let log = Mutex::new(Log::open(&dir, tp(), config(segment_bytes), 0, 0, now).expect("open"));
    let mut cleaner = cleaner(map_bytes);
    let mut model = Model::default();
    for op in ops {
        now += 7;
        match op {
            Op::Append { recs, codec } => {
                let added = append(&mut log.lock(), &recs, codec, now).expect("append");
                model
                    .records
                    .extend(added.into_iter().map(|rec| ModelRec { rec, horizon: None }));
            }
            Op::Roll => log.lock().roll_now(now).expect("roll"),
            Op::Clean { advance } => {
                now += advance;
                let (leo, start, active, active_before) = {
                    let l = log.lock();
                    (
                        l.log_end_offset(),
                        l.log_start_offset(),
                        active_base(&l),
                        active_bytes(&dir, &l),
                    )
                };
                clean_fully(&mut cleaner, &log, now);
                model.clean(active, now);
                let l = log.lock();
                assert_eq!(l.log_end_offset(), leo, "log end moved");
                assert_eq!(l.log_start_offset(), start, "log start moved");
                assert_eq!(active_base(&l), active, "active segment replaced");
                assert_eq!(
                    active_bytes(&dir, &l),
                    active_before,
                    "active segment touched"
                );
                assert_eq!(read_all(&l), model.recs());
                assert!(stray_files(&dir).is_empty());
            }
            Op::CrashClean { point } => {
                let point = crash_point(point);
                let before = read_all(&log.lock());
                let active = active_base(&log.lock());
                let mut after = model.clone();
                after.clean(active, now);
                cleaner.crash_at(Some(point));
                let stop = AtomicBool::new(false);
                let res = cleaner.clean(&log, 0, now, &stop);
                cleaner.crash_at(None);
                let crashed = matches!(res, Err(CleanerError::SimulatedCrash(p)) if p == point);
                if let Err(e) = &res {
                    assert!(crashed, "unexpected error {e}");
                }
                // The process "dies" here: the in-memory log is dropped
                // without any further write, and the log is reopened.
                let reopened = reopen(&dir, &log, segment_bytes, now);
                *log.lock() = reopened;
                let got = read_all(&log.lock());
                assert!(stray_files(&dir).is_empty(), "{:?}", stray_files(&dir));
                // Each segment is either old or new: every record survives
                // from before, and every record the clean keeps is there.
                for r in &got {
                    assert!(before.contains(r), "{r:?} appeared from nowhere");
                }
                for r in after.recs() {
                    assert!(got.contains(&r), "{r:?} lost by the crash");
                }
                if !crashed {
                    // Nothing to clean, or the pass finished first.
                    assert!(got == before || got == after.recs());
                }
                // Finishing the job gives the model's answer.
                clean_fully(&mut cleaner, &log, now);
                model = after;
                assert_eq!(read_all(&log.lock()), model.recs());
            }
            Op::Reopen => {
                let reopened = reopen(&dir, &log, segment_bytes, now);
                *log.lock() = reopened;
                assert_eq!(read_all(&log.lock()), model.recs());
            }
        }
    }
    // A final clean far in the future drops every tombstone that was
    // cleaned once, and keeps exactly the latest value of each key.
    for _ in 0..2 {
        now += RETENTION + 1;
        let active = active_base(&log.lock());
        clean_fully(&mut cleaner, &log, now);
        model.clean(active, now);
        assert_eq!(read_all(&log.lock()), model.recs());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Compaction equals the reference model over random workloads, with an
    /// offset map large enough for one pass.
    #[test]
    fn compaction_matches_model(ops in prop::collection::vec(op(), 1..60), seg in 700u64..3000) {
        run_workload(ops, seg, 1 << 20);
    }

    /// The same with an offset map of a few entries, so every cleaning
    /// takes several passes.
    #[test]
    fn compaction_in_several_passes_matches_model(ops in prop::collection::vec(op(), 1..60), seg in 700u64..3000) {
        run_workload(ops, seg, 400);
    }
}

fn setup(dir: &Path, now: i64) -> Mutex<Log> {
    let log = Mutex::new(Log::open(dir, tp(), config(1 << 20), 0, 0, now).expect("open"));
    {
        let mut l = log.lock();
        for round in 0..5u16 {
            for k in 0..10u8 {
                append(&mut l, &[(k, Some(round * 100 + u16::from(k)))], k, now).expect("append");
            }
            append(&mut l, &[(3, None)], 0, now).expect("tombstone");
            l.roll_now(now).expect("roll");
        }
        append(&mut l, &[(1, Some(9999))], 0, now).expect("active");
    }
    log
}

/// A crash at every point of the swap, on a log whose sealed segments form
/// one group: after reopening, the log is exactly the old one or exactly
/// the cleaned one, and cleaning again finishes the job.
#[test]
fn crash_at_each_swap_step_leaves_old_or_new_log() {
    let now = 5_000_000;
    for (i, point) in [
        CrashPoint::AfterCleanedWritten,
        CrashPoint::AfterSwapCommitted,
        CrashPoint::AfterFirstOldSegmentDeleted,
        CrashPoint::AfterOldSegmentsDeleted,
        CrashPoint::AfterIndexesRenamed,
    ]
    .into_iter()
    .enumerate()
    {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("compacted-0");
        let log = setup(&dir, now);
        let before = read_all(&log.lock());
        let expected = {
            let reference = tmp.path().join("reference-0");
            let rlog = setup(&reference, now);
            clean_fully(&mut cleaner(1 << 20), &rlog, now);
            let r = read_all(&rlog.lock());
            r
        };
        assert!(expected.len() < before.len());
        let mut c = cleaner(1 << 20);
        c.crash_at(Some(point));
        let err = c
            .clean(&log, 0, now, &AtomicBool::new(false))
            .expect_err("crash");
        assert!(
            matches!(err, CleanerError::SimulatedCrash(p) if p == point),
            "{err}"
        );
        let reopened = reopen(&dir, &log, 1 << 20, now);
        drop(log);
        let got = read_all(&reopened);
        assert!(stray_files(&dir).is_empty(), "{:?}", stray_files(&dir));
        if i == 0 {
            assert_eq!(got, before, "{point:?}: the old segments must stay");
        } else {
            assert_eq!(got, expected, "{point:?}: the swap must complete");
        }
        // The reopened log keeps working: clean, append, read.
        let log = Mutex::new(reopened);
        clean_fully(&mut cleaner(1 << 20), &log, now);
        assert_eq!(read_all(&log.lock()), expected);
        append(&mut log.lock(), &[(2, Some(1))], 0, now).expect("append after recovery");
    }
}

/// Leftovers exactly as a crash leaves them, made by hand: a `.cleaned`
/// file (uncommitted) is discarded; a `.swap` file (committed) replaces the
/// segments it covers even if the old ones are still there.
#[test]
fn hand_made_leftovers_are_recovered() {
    let now = 5_000_000;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("compacted-0");
    let log = setup(&dir, now);
    let before = read_all(&log.lock());
    let bases = log.lock().segment_base_offsets();
    let rp = log.lock().recovery_point();
    drop(log);
    // Uncommitted: garbage .cleaned files next to intact segments.
    std::fs::write(
        dir.join(format!("{:020}.log.cleaned", bases[0])),
        b"partial",
    )
    .unwrap();
    std::fs::write(dir.join(format!("{:020}.index.cleaned", bases[0])), b"").unwrap();
    let log = Log::open(&dir, tp(), config(1 << 20), rp, 0, now).expect("open");
    assert_eq!(read_all(&log), before);
    assert!(stray_files(&dir).is_empty());
    drop(log);

    // Committed: the second segment's data as a swap for the first two
    // segments' range would be; here, a copy of segment 2 renamed as the
    // swap of segment 2 replaces it (same content) and the torn index
    // swap is dropped.
    let seg = dir.join(format!("{:020}.log", bases[1]));
    std::fs::copy(&seg, dir.join(format!("{:020}.log.swap", bases[1]))).unwrap();
    std::fs::write(dir.join(format!("{:020}.index.swap", bases[1])), b"torn").unwrap();
    let log = Log::open(&dir, tp(), config(1 << 20), rp, 0, now).expect("open");
    assert_eq!(read_all(&log), before);
    assert!(stray_files(&dir).is_empty());
    assert_eq!(log.segment_base_offsets(), bases);
}

#[test]
fn null_key_is_rejected_in_compacted_log_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(&tmp.path().join("t-0"), tp(), config(1 << 20), 0, 0, 0).expect("open");
    let mut batch = RecordBatchBuilder::new()
        .record(Some(b"k"), Some(b"v"), 1)
        .record(None, Some(b"no key"), 1)
        .record(Some(b"k2"), Some(b"v"), 1)
        .record(None, Some(b"no key either"), 1)
        .build();
    let err = log
        .append_as_leader(&mut batch, 0, 1)
        .expect_err("null key");
    // KIP-467: every keyless record named by its index in the batch, with
    // Kafka's messages
    let why = format!(
        "Compacted topic cannot accept message without key in topic partition {}",
        tp()
    );
    let LogError::InvalidRecords(records) = &err else {
        panic!("{err:?}");
    };
    let named: Vec<(i32, &str)> = records
        .iter()
        .map(|r| (r.batch_index, r.message.as_str()))
        .collect();
    assert_eq!(named, vec![(1, why.as_str()), (3, why.as_str())]);
    assert_eq!(
        err.to_string(),
        format!(
            "One or more records have been rejected due to 2 record errors in total, and only \
             showing the first three errors at most: [RecordError(batchIndex=1, message='{why}'), \
             RecordError(batchIndex=3, message='{why}')]"
        )
    );
    assert_eq!(log.log_end_offset(), 0);
    // Compressed batches are checked too.
    let mut batch = RecordBatchBuilder::new()
        .compression(Compression::Zstd)
        .record(None, Some(b"no key"), 1)
        .build();
    assert!(matches!(
        log.append_as_leader(&mut batch, 0, 1),
        Err(LogError::InvalidRecords(r)) if r.len() == 1 && r[0].batch_index == 0
    ));
    // Tombstones with keys are fine.
    let mut batch = RecordBatchBuilder::new()
        .record(Some(b"k"), None, 1)
        .build();
    log.append_as_leader(&mut batch, 0, 1).expect("tombstone");
    // A delete-only topic takes keyless records.
    log.set_config(LogConfig {
        compact: false,
        ..config(1 << 20)
    });
    let mut batch = RecordBatchBuilder::new()
        .record(None, Some(b"v"), 1)
        .build();
    log.append_as_leader(&mut batch, 0, 1).expect("keyless");
}

/// Keyless records written before the topic became compacted are dropped
/// by the cleaner, as Kafka does.
#[test]
fn keyless_records_are_cleaned_away() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("t-0");
    let mut l = Log::open(&dir, tp(), LogConfig::default(), 0, 0, 0).expect("open");
    let mut batch = RecordBatchBuilder::new()
        .record(None, Some(b"a"), 1)
        .record(Some(b"k"), Some(b"b"), 1)
        .record(None, Some(b"c"), 1)
        .build();
    l.append_as_leader(&mut batch, 0, 1).expect("append");
    l.roll_now(1).expect("roll");
    l.set_config(config(1 << 20));
    let log = Mutex::new(l);
    clean_fully(&mut cleaner(1 << 20), &log, 10);
    let got = read_all(&log.lock());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].offset, 1);
    assert_eq!(log.lock().log_end_offset(), 3);
}

/// Offsets, producer fields and the last offset delta survive a rewrite;
/// a batch cleaned away entirely at the end of a segment leaves an empty
/// batch so the segment still ends at the same offset.
#[test]
fn rewritten_batches_keep_offsets_and_producer_fields() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("t-0");
    // Small segments: each sealed segment is cleaned on its own.
    let mut l = Log::open(&dir, tp(), config(200), 0, 0, 0).expect("open");
    let mut append = |b: BytesMut| {
        let mut b = b;
        l.append_as_leader(&mut b, 5, 20).expect("append");
    };
    append(
        RecordBatchBuilder::new()
            .producer(42, 3, 7)
            .record(Some(b"a"), Some(b"1"), 10)
            .record(Some(b"b"), Some(b"1"), 11)
            .record(Some(b"c"), Some(b"1"), 12)
            .build(),
    );
    append(
        RecordBatchBuilder::new()
            .producer(42, 3, 10)
            .record(Some(b"a"), Some(b"2"), 13)
            .build(),
    );
    l.roll_now(20).expect("roll");
    let mut b3 = RecordBatchBuilder::new()
        .record(Some(b"a"), Some(b"3"), 15)
        .build();
    l.append_as_leader(&mut b3, 5, 20).expect("append");
    l.roll_now(20).expect("roll");
    let mut b4 = RecordBatchBuilder::new()
        .record(Some(b"z"), Some(b"active"), 16)
        .build();
    l.append_as_leader(&mut b4, 5, 20).expect("append");
    assert_eq!(l.segment_base_offsets(), vec![0, 4, 5]);
    let log = Mutex::new(l);
    clean_fully(&mut cleaner(1 << 20), &log, 100);
    let l = log.lock();
    assert_eq!(l.segment_base_offsets(), vec![0, 4, 5]);
    let data = l.read(0, 1 << 20, i64::MAX, true).expect("read");
    let hs: Vec<_> = batches(&data.records)
        .map(|b| b.expect("batch").0)
        .collect();
    // The first batch loses `a`; the second (only `a`) is cleaned away but
    // leaves an empty batch, so the segment still ends at offset 3.
    assert_eq!(hs.len(), 2, "{hs:?}");
    assert_eq!(
        (
            hs[0].base_offset,
            hs[0].last_offset_delta,
            hs[0].records_count
        ),
        (0, 2, 2)
    );
    assert_eq!(
        (hs[0].producer_id, hs[0].producer_epoch, hs[0].base_sequence),
        (42, 3, 7)
    );
    assert_eq!(hs[0].partition_leader_epoch, 5);
    assert_eq!(
        (hs[1].base_offset, hs[1].last_offset(), hs[1].records_count),
        (3, 3, 0)
    );
    assert_eq!(
        (hs[1].producer_id, hs[1].producer_epoch, hs[1].base_sequence),
        (42, 3, 10)
    );
    let recs = read_all(&l);
    let offsets: Vec<i64> = recs.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![1, 2, 4, 5]);
    assert_eq!(recs[0].timestamp, 11);
    assert_eq!(recs[2].value.as_deref(), Some(&b"3"[..]));
}

/// The background cleaner picks logs by dirty ratio, respects
/// min.compaction.lag.ms, and cleans again once a tombstone's delete
/// horizon passes.
#[test]
fn log_cleaner_selection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let now = 10_000_000;
    let log = std::sync::Arc::new(setup(&tmp.path().join("compacted-0"), now));
    let logs = vec![(tp(), log.clone())];
    let lc = LogCleaner::new(CleanerConfig::default());
    // Everything dirty: ratio 1.0.
    let c = lc.candidates(&logs, now);
    assert_eq!(c.len(), 1);
    assert!((c[0].dirty_ratio - 1.0).abs() < 1e-9);
    // A lag longer than the data's age makes nothing cleanable.
    log.lock().set_config(LogConfig {
        min_compaction_lag_ms: 60_000,
        ..config(1 << 20)
    });
    assert!(lc.candidates(&logs, now + 1000).is_empty());
    assert!(lc.clean_round(&logs, now + 1000).is_empty());
    log.lock().set_config(config(1 << 20));
    let done = lc.clean_round(&logs, now);
    assert_eq!(done.len(), 1);
    assert!(done[0].1.stats.records_removed > 0);
    // Clean now: below the ratio, nothing to do until the horizon.
    assert!(lc.candidates(&logs, now + 1).is_empty());
    let c = lc.candidates(&logs, now + RETENTION);
    assert_eq!(c.len(), 1);
    assert!(c[0].delete_horizon_due);
    let before = read_all(&log.lock());
    assert!(before.iter().any(|r| r.value.is_none()));
    lc.clean_round(&logs, now + RETENTION);
    let after = read_all(&log.lock());
    assert!(after.iter().all(|r| r.value.is_some()), "{after:?}");
    assert_eq!(after.len(), before.len() - 1);
    // New dirty data below the ratio does not trigger; max lag does.
    {
        let mut l = log.lock();
        append(&mut l, &[(7, Some(1))], 0, now).expect("append");
        l.roll_now(now).expect("roll");
    }
    let later = now + 2 * RETENTION;
    assert!(lc.candidates(&logs, later).is_empty());
    log.lock().set_config(LogConfig {
        max_compaction_lag_ms: 500,
        ..config(1 << 20)
    });
    let c = lc.candidates(&logs, later);
    assert_eq!(c.len(), 1);
    assert!(c[0].compaction_lag_due);
}

/// The cleaner reads and writes sealed segments without the log's lock:
/// appends and reads go on while it runs.
#[test]
fn appends_proceed_while_cleaning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let now = 1_000;
    let log = std::sync::Arc::new(Mutex::new(
        Log::open(&tmp.path().join("t-0"), tp(), config(64 * 1024), 0, 0, now).expect("open"),
    ));
    {
        let mut l = log.lock();
        for i in 0..3000u16 {
            append(&mut l, &[((i % 50) as u8, Some(i))], 0, now).expect("append");
        }
        l.roll_now(now).expect("roll");
    }
    let stop = AtomicBool::new(false);
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for i in 0..300u16 {
                append(&mut log.lock(), &[(1, Some(i))], 0, now).expect("append");
                n += 1;
            }
            n
        })
    };
    let mut c = Cleaner::new(CleanerConfig {
        io_max_bytes_per_second: 2_000_000.0,
        ..CleanerConfig::default()
    });
    let out = c.clean(&log, 0, now, &stop).expect("clean");
    assert!(out.groups_swapped > 0);
    assert_eq!(writer.join().expect("writer"), 300);
    let recs = read_all(&log.lock());
    let mut seen = std::collections::HashSet::new();
    for r in &recs {
        if r.offset < 3000 {
            assert!(seen.insert(r.key.clone()), "duplicate key in cleaned range");
        }
    }
    assert_eq!(log.lock().log_end_offset(), 3300);
}

fn txn_append(log: &mut Log, pid: i64, seq: i32, key: &str, value: &str, now: i64) -> i64 {
    let mut b: BytesMut = RecordBatchBuilder::new()
        .producer(pid, 0, seq)
        .transactional(true)
        .record(Some(key.as_bytes()), Some(value.as_bytes()), now)
        .build();
    log.append_as_leader(&mut b, 0, now)
        .expect("transactional append")
        .first_offset
}

/// Records of aborted transactions never stand for their key in the
/// offset map, and an open transaction is not cleaned: otherwise the
/// committed value would be cleaned away for one that read_committed
/// consumers never see (the committed offsets of a group whose later
/// transaction aborted, in `__consumer_offsets`).
#[test]
fn aborted_and_open_transactions_never_displace_committed_values() {
    let now = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let log = Mutex::new(Log::open(dir.path(), tp(), config(1 << 20), 0, 0, now).unwrap());
    let (committed, aborted_at, open_at) = {
        let mut l = log.lock();
        let committed = txn_append(&mut l, 1, 0, "k", "committed", now);
        l.append_txn_marker(1, 0, 0, true, 0, now).unwrap();
        let aborted_at = txn_append(&mut l, 2, 0, "k", "aborted", now);
        l.append_txn_marker(2, 0, 0, false, 0, now).unwrap();
        l.roll_now(now).unwrap();
        let open_at = txn_append(&mut l, 3, 0, "k", "open", now);
        l.roll_now(now).unwrap();
        append(&mut l, &[(9, Some(1))], 0, now).unwrap();
        (committed, aborted_at, open_at)
    };
    // cleans until a pass makes no progress (an open transaction stops it
    // short of the active segment)
    let clean = |log: &Mutex<Log>| {
        let mut c = cleaner(1 << 20);
        let stop = AtomicBool::new(false);
        let mut first_dirty = 0;
        loop {
            let next = c
                .clean(log, first_dirty, now, &stop)
                .unwrap()
                .next_dirty_offset;
            if next == first_dirty {
                return next;
            }
            first_dirty = next;
        }
    };
    assert_eq!(clean(&log), open_at, "stopped at the open transaction");
    let offsets = |log: &Mutex<Log>| -> Vec<i64> {
        read_all(&log.lock())
            .iter()
            .filter(|r| r.key.as_deref() == Some(b"k".as_slice()))
            .map(|r| r.offset)
            .collect()
    };
    // the committed value stays beside the aborted one (which hides
    // nothing from read_committed readers, who skip it by the index)
    assert_eq!(offsets(&log), vec![committed, aborted_at, open_at]);

    // the open transaction aborts too: the committed value still stands
    {
        let mut l = log.lock();
        l.append_txn_marker(3, 0, 0, false, 0, now).unwrap();
        l.roll_now(now).unwrap();
        append(&mut l, &[(9, Some(2))], 0, now).unwrap();
    }
    clean(&log);
    assert_eq!(offsets(&log), vec![committed, aborted_at, open_at]);

    // a later committed value does replace it
    let newer = {
        let mut l = log.lock();
        let newer = txn_append(&mut l, 4, 0, "k", "newer", now);
        l.append_txn_marker(4, 0, 0, true, 0, now).unwrap();
        l.roll_now(now).unwrap();
        append(&mut l, &[(9, Some(3))], 0, now).unwrap();
        newer
    };
    clean(&log);
    assert_eq!(offsets(&log), vec![newer]);
}
