//! Behaviour of a single partition log through its public API.

use std::fs;
use std::path::Path;

use bytes::BytesMut;
use oxka_log::builder::{simple_batch, RecordBatchBuilder};
use oxka_log::record_batch::{
    batches, check_batch_integrity, decode_records, validate_batches, RecordBatchHeader,
    CRC_OFFSET, MAGIC_OFFSET, RECORDS_COUNT_OFFSET,
};
use oxka_log::{Compression, Log, LogConfig, LogError, TimestampType, TopicPartition};

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, tp(), config, 0, 0, 1_000).unwrap()
}

fn headers(bytes: &[u8]) -> Vec<RecordBatchHeader> {
    batches(bytes).map(|r| r.unwrap().0).collect()
}

fn append(log: &mut Log, n: usize, value_size: usize, ts: i64) -> oxka_log::LogAppendInfo {
    let mut b = simple_batch(n, value_size, ts);
    log.append_as_leader(&mut b, 3, 5_000).unwrap()
}

#[test]
fn append_assigns_dense_offsets_and_stamps_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 0);
    let a = append(&mut log, 3, 10, 100);
    assert_eq!(
        (a.first_offset, a.last_offset, a.num_records, a.num_batches),
        (0, 2, 3, 1)
    );
    assert_eq!(a.log_append_time, -1);
    let b = append(&mut log, 2, 10, 100);
    assert_eq!((b.first_offset, b.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);

    let data = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    let hs = headers(&data.records);
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[0].base_offset, 0);
    assert_eq!(hs[1].base_offset, 3);
    assert!(hs.iter().all(|h| h.partition_leader_epoch == 3));
    assert_eq!(data.first_batch_offset, Some(0));
    // Offsets and epoch are outside the CRC: batches stay valid.
    validate_batches(&data.records).unwrap();
    let recs =
        decode_records(&data.records[data.records.len() - hs[1].total_size().unwrap()..]).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3, 4]
    );
}

#[test]
fn multiple_batches_in_one_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut buf = simple_batch(2, 5, 10);
    buf.extend_from_slice(&simple_batch(3, 5, 30));
    buf.extend_from_slice(&simple_batch(1, 5, 20));
    let info = log.append_as_leader(&mut buf, 0, 0).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.num_batches),
        (0, 5, 3)
    );
    assert_eq!(info.max_timestamp, 30);
    assert_eq!(info.offset_of_max_timestamp, 2);
    let data = log.read(4, 1 << 20, i64::MAX, false).unwrap();
    // Starts at the batch containing offset 4.
    assert_eq!(
        headers(&data.records)
            .iter()
            .map(|h| h.base_offset)
            .collect::<Vec<_>>(),
        vec![2, 5]
    );
}

#[test]
fn read_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for _ in 0..5 {
        append(&mut log, 2, 100, 1);
    }
    let one = log.read(0, 1 << 20, i64::MAX, false).unwrap().records.len() / 5;
    // max_bytes admits whole batches only.
    let r = log.read(0, one * 2 + one / 2, i64::MAX, false).unwrap();
    assert_eq!(r.records.len(), one * 2);
    // Too small for one batch: nothing, unless min_one_message.
    let r = log.read(2, 10, i64::MAX, false).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.first_batch_offset, None);
    let r = log.read(2, 10, i64::MAX, true).unwrap();
    assert_eq!(r.records.len(), one);
    assert_eq!(r.first_batch_offset, Some(2));
    // max_offset excludes batches starting at or after it.
    let r = log.read(0, 1 << 20, 4, false).unwrap();
    assert_eq!(
        headers(&r.records)
            .iter()
            .map(|h| h.base_offset)
            .collect::<Vec<_>>(),
        vec![0, 2]
    );
    let r = log.read(0, 1 << 20, 5, false).unwrap();
    assert_eq!(headers(&r.records).len(), 3);
    let r = log.read(4, 1 << 20, 4, true).unwrap();
    assert!(r.records.is_empty());
    // Reading in the middle of a batch returns that whole batch.
    let r = log.read(3, 1, i64::MAX, true).unwrap();
    assert_eq!(headers(&r.records)[0].base_offset, 2);
    // At the log end: empty, not an error.
    let r = log.read(10, 100, i64::MAX, true).unwrap();
    assert!(r.records.is_empty());
}

#[test]
fn out_of_range_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, 2, 1, 1);
    match log.read(3, 100, i64::MAX, true) {
        Err(LogError::OffsetOutOfRange {
            offset: 3,
            log_start: 0,
            log_end: 2,
        }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(
        log.read(-1, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.increment_log_start_offset(1).unwrap();
    assert!(matches!(
        log.read(0, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(!log.read(1, 100, i64::MAX, true).unwrap().records.is_empty());
}

#[test]
fn roll_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple_batch(1, 200, 1).len() as u64;
    let config = LogConfig {
        segment_bytes: batch_len * 3,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..10 {
        append(&mut log, 1, 200, 1);
    }
    // Three batches fit exactly in a segment.
    assert_eq!(log.segment_base_offsets(), vec![0, 3, 6, 9]);
    assert_eq!(log.size_in_bytes(), batch_len * 10);
    // Sealed segments were flushed: the recovery point follows the roll.
    assert_eq!(log.recovery_point(), 9);
    for off in 0..10 {
        let r = log.read(off, 1 << 20, i64::MAX, false).unwrap();
        assert_eq!(headers(&r.records)[0].base_offset, off);
    }
    let mut files: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert!(files.contains(&"00000000000000000003.log".to_string()));
    assert!(files.contains(&"00000000000000000003.index".to_string()));
    assert!(files.contains(&"00000000000000000003.timeindex".to_string()));
}

#[test]
fn roll_by_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        max_index_size: 32, // four offset index entries
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..15 {
        append(&mut log, 1, 10, 7);
    }
    // The first batch of a segment needs no entry; four more fill the index.
    assert_eq!(log.segment_base_offsets(), vec![0, 5, 10]);
    for off in 0..15 {
        let r = log.read(off, 1, i64::MAX, true).unwrap();
        assert_eq!(headers(&r.records)[0].base_offset, off);
    }
}

#[test]
fn roll_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 1, 1, 10_000);
    append(&mut log, 1, 1, 10_500);
    append(&mut log, 1, 1, 11_000);
    assert_eq!(log.num_segments(), 1);
    append(&mut log, 1, 1, 11_001);
    assert_eq!(log.segment_base_offsets(), vec![0, 3]);
}

#[test]
fn sparse_index_reads_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 300,
        segment_bytes: 5000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..60 {
        append(&mut log, 1 + i % 3, 50, i as i64);
    }
    let leo = log.log_end_offset();
    let before: Vec<_> = (0..leo)
        .map(|o| log.read(o, 1 << 20, i64::MAX, false).unwrap())
        .collect();
    log.close().unwrap();
    let log = Log::open(dir.path(), tp(), config, leo, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    for (o, expected) in before.iter().enumerate() {
        let got = log.read(o as i64, 1 << 20, i64::MAX, false).unwrap();
        assert_eq!(&got, expected, "offset {o}");
        let first = &headers(&got.records)[0];
        assert!(first.base_offset <= o as i64 && first.last_offset() >= o as i64);
    }
}

#[test]
fn corrupt_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for _ in 0..20 {
        append(&mut log, 2, 30, 5);
    }
    log.close().unwrap();
    let index = dir.path().join("00000000000000000000.index");
    // Entries pointing backwards are not a valid index.
    let mut raw = fs::read(&index).unwrap();
    assert!(raw.len() >= 16);
    raw[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    fs::write(&index, &raw).unwrap();
    fs::remove_file(dir.path().join("00000000000000000000.timeindex")).unwrap();
    // With the clean-shutdown flag nothing would be recovered, so this
    // exercises the index sanity checks.
    let log = Log::open_with_shutdown_state(dir.path(), tp(), config, 40, 0, 0, true).unwrap();
    assert_eq!(log.log_end_offset(), 40);
    for o in 0..40 {
        let r = log.read(o, 1, i64::MAX, true).unwrap();
        assert_eq!(headers(&r.records)[0].base_offset, o - o % 2);
    }
    assert_eq!(log.fetch_offset_by_timestamp(5).unwrap(), Some((0, 5)));
}

#[test]
fn timestamp_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_bytes: 170,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    // Record timestamps inside batches: 100,105 | 90,200 | 150 | 300,250
    let specs: [&[i64]; 4] = [&[100, 105], &[90, 200], &[150], &[300, 250]];
    for ts in specs {
        let mut b = RecordBatchBuilder::new();
        for &t in ts {
            b = b.record(None, Some(b"v"), t);
        }
        log.append_as_leader(&mut b.build(), 0, 0).unwrap();
    }
    assert!(log.num_segments() > 1);
    let check = |log: &Log| {
        assert_eq!(log.fetch_offset_by_timestamp(0).unwrap(), Some((0, 100)));
        assert_eq!(log.fetch_offset_by_timestamp(100).unwrap(), Some((0, 100)));
        assert_eq!(log.fetch_offset_by_timestamp(101).unwrap(), Some((1, 105)));
        assert_eq!(log.fetch_offset_by_timestamp(106).unwrap(), Some((3, 200)));
        assert_eq!(log.fetch_offset_by_timestamp(200).unwrap(), Some((3, 200)));
        assert_eq!(log.fetch_offset_by_timestamp(201).unwrap(), Some((5, 300)));
        assert_eq!(log.fetch_offset_by_timestamp(301).unwrap(), None);
        assert_eq!(log.max_timestamp_and_offset().unwrap(), Some((5, 300)));
    };
    check(&log);
    log.close().unwrap();
    let log = Log::open(dir.path(), tp(), config, 6, 0, 0).unwrap();
    check(&log);

    let empty_dir = tempfile::tempdir().unwrap();
    let empty = open(empty_dir.path(), LogConfig::default());
    assert_eq!(empty.max_timestamp_and_offset().unwrap(), None);
    assert_eq!(empty.fetch_offset_by_timestamp(0).unwrap(), None);
}

#[test]
fn timestamp_lookup_in_compressed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for (i, codec) in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let base = 1000 * i as i64;
        let mut b = RecordBatchBuilder::new()
            .compression(codec)
            .record(Some(b"a"), Some(b"1"), base + 10)
            .record(Some(b"b"), Some(b"2"), base + 30)
            .record(Some(b"c"), Some(b"3"), base + 20)
            .build();
        let info = log.append_as_leader(&mut b, 0, 0).unwrap();
        assert_eq!(info.max_timestamp, base + 30);
        assert_eq!(info.offset_of_max_timestamp, info.first_offset + 1);
    }
    assert_eq!(
        log.fetch_offset_by_timestamp(3015).unwrap(),
        Some((10, 3030))
    );
    assert_eq!(
        log.fetch_offset_by_timestamp(1011).unwrap(),
        Some((4, 1030))
    );
    assert_eq!(log.max_timestamp_and_offset().unwrap(), Some((10, 3030)));
    let all = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    validate_batches(&all.records).unwrap();
}

#[test]
fn log_append_time_rewrites_header_with_valid_crc() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), tp(), config, 0, 0, 0).unwrap();
    let mut b = RecordBatchBuilder::new()
        .compression(Compression::Lz4)
        .record(None, Some(b"x"), 10)
        .record(None, Some(b"y"), 20)
        .build();
    let info = log.append_as_leader(&mut b, 1, 777_000).unwrap();
    assert_eq!(info.log_append_time, 777_000);
    assert_eq!(info.max_timestamp, 777_000);
    assert_eq!(info.offset_of_max_timestamp, 0);
    let r = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    let (h, _) = check_batch_integrity(&r.records).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, 777_000);
    assert_eq!(h.first_timestamp, 10);
    let recs = decode_records(&r.records).unwrap();
    assert!(recs.iter().all(|r| r.timestamp == 777_000));
    assert_eq!(
        log.fetch_offset_by_timestamp(500_000).unwrap(),
        Some((0, 777_000))
    );
}

#[test]
fn create_time_corrects_a_wrong_max_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut b = RecordBatchBuilder::new()
        .timestamp_type(TimestampType::LogAppendTime)
        .record(None, Some(b"x"), 10)
        .record(None, Some(b"y"), 20)
        .build();
    // Lie about the max timestamp and re-CRC, as a buggy client might.
    oxka_log::record_batch::set_max_timestamp(&mut b, TimestampType::LogAppendTime, 99_999);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    let r = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    let (h, _) = check_batch_integrity(&r.records).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(h.max_timestamp, 20);
}

fn assert_rejected(log: &mut Log, mut bad: BytesMut, expect: fn(&LogError) -> bool) {
    let leo = log.log_end_offset();
    let size = log.size_in_bytes();
    let mut with_good = simple_batch(1, 10, 1);
    with_good.extend_from_slice(&bad);
    for buf in [&mut bad, &mut with_good] {
        let err = log.append_as_leader(buf, 0, 0).unwrap_err();
        assert!(expect(&err), "unexpected error {err:?}");
        assert!(!err.is_io());
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(log.size_in_bytes(), size);
    }
}

fn is_corrupt(e: &LogError) -> bool {
    matches!(e, LogError::CorruptRecord(_))
}

#[test]
fn invalid_batches_are_rejected_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 2, 10, 1);

    let mut bad_crc = simple_batch(2, 10, 1);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    assert_rejected(&mut log, bad_crc, is_corrupt);

    let mut bad_crc_field = simple_batch(2, 10, 1);
    bad_crc_field[CRC_OFFSET] ^= 0x80;
    assert_rejected(&mut log, bad_crc_field, is_corrupt);

    let mut bad_magic = simple_batch(2, 10, 1);
    bad_magic[MAGIC_OFFSET] = 1;
    assert_rejected(&mut log, bad_magic, is_corrupt);

    // Record count that disagrees with the records: re-CRC so only the count is wrong.
    let mut bad_count = simple_batch(2, 10, 1);
    bad_count[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&3i32.to_be_bytes());
    bad_count[23..27].copy_from_slice(&2i32.to_be_bytes());
    let crc = crc32c::crc32c(&bad_count[21..]);
    bad_count[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    assert_rejected(&mut log, bad_count, is_corrupt);

    // Same for a compressed batch: the count is checked after decompressing.
    let mut bad_count_z = RecordBatchBuilder::new()
        .compression(Compression::Zstd)
        .record(None, Some(b"a"), 1)
        .build();
    bad_count_z[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
        .copy_from_slice(&2i32.to_be_bytes());
    bad_count_z[23..27].copy_from_slice(&1i32.to_be_bytes());
    let crc = crc32c::crc32c(&bad_count_z[21..]);
    bad_count_z[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    assert_rejected(&mut log, bad_count_z, is_corrupt);

    // Garbage payload under a valid CRC.
    let mut garbage = RecordBatchBuilder::new()
        .compression(Compression::Gzip)
        .record(None, Some(b"a"), 1)
        .build();
    for b in garbage[61..].iter_mut() {
        *b = 0x5a;
    }
    let crc = crc32c::crc32c(&garbage[21..]);
    garbage[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    assert_rejected(&mut log, garbage, is_corrupt);

    // Truncated batch.
    let whole = simple_batch(2, 10, 1);
    assert_rejected(
        &mut log,
        BytesMut::from(&whole[..whole.len() - 3]),
        is_corrupt,
    );

    // Too large.
    assert_rejected(&mut log, simple_batch(1, 2000, 1), |e| {
        matches!(e, LogError::MessageTooLarge { max: 1000, .. })
    });

    // Empty.
    let err = log
        .append_as_leader(&mut BytesMut::new(), 0, 0)
        .unwrap_err();
    assert!(is_corrupt(&err));
    // Zero records.
    let err = log
        .append_as_leader(&mut RecordBatchBuilder::new().build(), 0, 0)
        .unwrap_err();
    assert!(is_corrupt(&err));

    // Control batches come from the broker (transaction markers) only.
    let mut ctrl = RecordBatchBuilder::new()
        .control(true)
        .transactional(true)
        .producer(5, 0, -1)
        .record(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), 1)
        .build();
    assert_rejected(&mut log, ctrl.clone(), |e| {
        matches!(e, LogError::InvalidRecord(_))
    });
    log.append_as_coordinator(&mut ctrl, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn record_list_larger_than_segment_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 500,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut buf = simple_batch(1, 300, 1);
    buf.extend_from_slice(&simple_batch(1, 300, 1));
    assert!(matches!(
        log.append_as_leader(&mut buf, 0, 0),
        Err(LogError::RecordListTooLarge { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn truncate_to_and_continue() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for _ in 0..10 {
        append(&mut log, 2, 50, 1);
    }
    let segs = log.num_segments();
    assert!(segs > 3);
    log.truncate_to(7).unwrap();
    // The batch containing offset 7 (6..=7) goes entirely.
    assert_eq!(log.log_end_offset(), 6);
    assert!(log.num_segments() < segs);
    assert!(matches!(log.read(6, 100, i64::MAX, true), Ok(r) if r.records.is_empty()));
    let info = append(&mut log, 1, 5, 1);
    assert_eq!(info.first_offset, 6);
    log.close().unwrap();
    let log = Log::open(dir.path(), tp(), config.clone(), 0, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 7);
    let mut log = log;
    log.truncate_to(0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.num_segments(), 1);
    assert_eq!(append(&mut log, 1, 1, 1).first_offset, 0);
}

#[test]
fn log_start_offset_is_clamped_and_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for _ in 0..10 {
        append(&mut log, 2, 100, 1);
    }
    assert_eq!(log.segment_base_offsets()[..3], [0, 2, 4]);
    log.increment_log_start_offset(5).unwrap();
    // Segments wholly below the start are deleted; the one containing it stays.
    assert_eq!(log.segment_base_offsets()[0], 4);
    assert!(matches!(
        log.read(4, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.read(5, 100, i64::MAX, true).unwrap().first_batch_offset,
        Some(4)
    );
    log.close().unwrap();
    // An unknown (0) start offset is clamped to the first segment.
    let log = Log::open(dir.path(), tp(), config.clone(), 20, 0, 0).unwrap();
    assert_eq!(log.log_start_offset(), 4);
    drop(log);
    let log = Log::open(dir.path(), tp(), config.clone(), 20, 5, 0).unwrap();
    assert_eq!(log.log_start_offset(), 5);
    drop(log);
    // A start offset past the end discards everything.
    let log = Log::open(dir.path(), tp(), config, 20, 50, 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
    assert_eq!(log.num_segments(), 1);
    // Fresh log whose start is checkpointed.
    let dir2 = tempfile::tempdir().unwrap();
    let log = Log::open(dir2.path(), tp(), LogConfig::default(), 0, 42, 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (42, 42));
}

#[test]
fn flush_interval_messages_advances_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_interval_messages: 3,
        flush_interval_ms: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 2, 1, 1);
    assert_eq!(log.recovery_point(), 0);
    append(&mut log, 2, 1, 1);
    assert_eq!(log.recovery_point(), 4);
    let mut b = simple_batch(1, 1, 1);
    log.append_as_leader(&mut b, 0, 1_000).unwrap();
    assert_eq!(log.recovery_point(), 4);
    assert!(!log.flush_if_due(1_050).unwrap());
    assert!(log.flush_if_due(1_100).unwrap());
    assert_eq!(log.recovery_point(), 5);
}

#[test]
fn delete_removes_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = open(&path, LogConfig::default());
    append(&mut log, 1, 1, 1);
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn stray_files_are_cleaned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, 1, 1, 1);
    log.close().unwrap();
    fs::write(dir.path().join("00000000000000000005.index"), b"").unwrap();
    fs::write(dir.path().join("00000000000000000000.log.deleted"), b"x").unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 1);
    assert!(!dir.path().join("00000000000000000005.index").exists());
    assert!(!dir.path().join("00000000000000000000.log.deleted").exists());
}

/// Kafka's create-time bounds (KIP-937, KIP-1030 defaults): one hour into
/// the future, any age; `NO_TIMESTAMP` records and LogAppendTime topics
/// are not checked; nothing of a refused append is written.
#[test]
fn create_times_outside_the_configured_bounds_are_refused() {
    let now = 10_000_000_000;
    let hour = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for ts in [1, now - 100 * hour, now, now + hour] {
        log.append_as_leader(&mut simple_batch(2, 10, ts), 0, now)
            .unwrap_or_else(|e| panic!("{ts}: {e}"));
    }
    let leo = log.log_end_offset();
    // one good batch and one a second too far ahead: all or nothing
    let mut both = simple_batch(1, 10, now);
    both.extend_from_slice(&simple_batch(3, 10, now + hour + 1));
    let err = log.append_as_leader(&mut both, 0, now).unwrap_err();
    match &err {
        LogError::InvalidTimestamp {
            timestamp,
            low,
            high,
            ..
        } => assert_eq!(
            (*timestamp, *low, *high),
            (now + hour + 1, now - i64::MAX, now + hour)
        ),
        e => panic!("unexpected {e:?}"),
    }
    assert!(err.to_string().contains("is out of range"), "{err}");
    assert_eq!(log.log_end_offset(), leo);
    // the shared (copy-free) append path checks the same
    let err = log
        .append_shared_as_leader(simple_batch(1, 10, now + 2 * hour).freeze(), 0, now)
        .unwrap_err();
    assert!(matches!(err, LogError::InvalidTimestamp { .. }), "{err:?}");
    // no timestamp at all: accepted
    log.append_as_leader(&mut simple_batch(1, 10, -1), 0, now)
        .unwrap();

    // a topic bounding the past too
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_before_max_ms: hour,
        message_timestamp_after_max_ms: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    let err = log
        .append_as_leader(&mut simple_batch(1, 10, now - hour - 1), 0, now)
        .unwrap_err();
    assert!(
        matches!(err, LogError::InvalidTimestamp { timestamp, low, high, .. }
            if timestamp == now - hour - 1 && low == now - hour && high == now),
        "{err:?}"
    );
    log.append_as_leader(&mut simple_batch(1, 10, now - hour), 0, now)
        .unwrap();
    // LogAppendTime: the broker's clock replaces the producer's, no check
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..config
        },
    );
    log.append_as_leader(&mut simple_batch(1, 10, now + 100 * hour), 0, now)
        .unwrap();
}
