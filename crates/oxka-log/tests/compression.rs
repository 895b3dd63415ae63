//! The topic's `compression.type` on the append path (Kafka's LogValidator
//! recompression).

use std::path::Path;

use bytes::BytesMut;
use oxka_log::builder::RecordBatchBuilder;
use oxka_log::record_batch::{
    batches, check_batch_integrity, decode_records, decompress, validate_batches, Record,
    RecordBatchHeader, ATTRIBUTES_OFFSET, COMPRESSION_CODEC_MASK, CRC_OFFSET,
    MAX_DECOMPRESSED_BYTES, RECORDS_OFFSET,
};
use oxka_log::{
    BrokerCompression, Compression, Log, LogConfig, LogError, TimestampType, TopicPartition,
};

const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn open(dir: &Path, compression: BrokerCompression) -> Log {
    let config = LogConfig {
        compression,
        ..LogConfig::default()
    };
    Log::open(dir, TopicPartition::new("t", 0), config, 0, 0, 1_000).unwrap()
}

/// Deterministic incompressible bytes.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A batch with null keys and values, headers, out-of-order timestamps and
/// a value spanning several snappy (32 KiB) and lz4 (64 KiB) blocks.
fn rich_batch(codec: Compression) -> RecordBatchBuilder {
    // A fresh producer id per batch: the same (producer, epoch, sequence)
    // twice in one log would be a retried batch, stored once.
    static NEXT_PID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(42);
    let pid = NEXT_PID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut big = noise(70_000, 7);
    big.extend(std::iter::repeat_n(b'z', 100_000));
    RecordBatchBuilder::new()
        .compression(codec)
        .producer(pid, 5, 17)
        .record(Some(b"k1"), Some(b"v1"), 1_000)
        .record_with_headers(None, None, &[("h", Some(b"x")), ("n", None)], 1_005)
        .record(Some(b""), Some(&big), 999)
        .record(Some(b"k4"), Some(&[7u8; 5000]), 1_003)
}

/// The records of one whole batch as uncompressed, encoded bytes.
fn raw_records(batch: &[u8]) -> Vec<u8> {
    let h = RecordBatchHeader::parse(batch).unwrap();
    let payload = &batch[RECORDS_OFFSET..h.total_size().unwrap()];
    decompress(h.compression().unwrap(), payload, MAX_DECOMPRESSED_BYTES).unwrap()
}

fn stored_batches(log: &Log) -> Vec<Vec<u8>> {
    let data = log.read(0, usize::MAX, i64::MAX, true).unwrap();
    validate_batches(&data.records).unwrap();
    batches(&data.records)
        .map(|r| r.unwrap().1.to_vec())
        .collect()
}

/// Records without their absolute offsets, which the log assigns.
fn contents(batch: &[u8]) -> Vec<Record> {
    let base = RecordBatchHeader::parse(batch).unwrap().base_offset;
    decode_records(batch)
        .unwrap()
        .into_iter()
        .map(|mut r| {
            r.offset -= base;
            r
        })
        .collect()
}

#[test]
fn gzip_topic_recompresses_uncompressed_and_lz4_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), BrokerCompression::Gzip { level: -1 });
    let plain = rich_batch(Compression::None).build();
    let lz4 = RecordBatchBuilder::new()
        .compression(Compression::Lz4)
        .producer(43, 1, 0)
        .transactional(true)
        .record(Some(b"a"), Some(&[1u8; 3000]), 2_000)
        .record(Some(b"b"), None, 2_001)
        .build();
    let mut input = plain.clone();
    input.extend_from_slice(&lz4);

    let info = log.append_as_leader(&mut input, 4, 5_000).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 5));
    assert_eq!((info.num_records, info.num_batches), (6, 2));
    assert_eq!(info.max_timestamp, 2_001);
    assert_eq!(info.offset_of_max_timestamp, 5);

    let stored = stored_batches(&log);
    assert_eq!(stored.len(), 2);
    assert_eq!(info.valid_bytes, stored.iter().map(Vec::len).sum::<usize>());
    // The caller's buffer now holds exactly what was stored.
    assert_eq!(&input[..], &stored.concat()[..]);
    for (got, sent) in stored.iter().zip([&plain, &lz4]) {
        let (h, size) = check_batch_integrity(got).unwrap();
        assert_eq!(size, got.len());
        assert_eq!(h.compression().unwrap(), Compression::Gzip);
        assert_eq!(&got[RECORDS_OFFSET..RECORDS_OFFSET + 2], &[0x1f, 0x8b]);
        let orig = RecordBatchHeader::parse(sent).unwrap();
        assert_eq!(h.partition_leader_epoch, 4);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (orig.producer_id, orig.producer_epoch, orig.base_sequence)
        );
        assert_eq!(h.is_transactional(), orig.is_transactional());
        assert!(!h.is_control());
        assert_eq!(
            h.attributes & !COMPRESSION_CODEC_MASK,
            orig.attributes & !COMPRESSION_CODEC_MASK
        );
        assert_eq!(
            (h.first_timestamp, h.last_offset_delta, h.records_count),
            (
                orig.first_timestamp,
                orig.last_offset_delta,
                orig.records_count
            )
        );
        // Same encoded records, byte for byte; only the wrapping changed.
        assert_eq!(raw_records(got), raw_records(sent));
        assert_eq!(contents(got), contents(sent));
    }
    assert!(stored[0].len() < plain.len());
}

#[test]
fn producer_setting_keeps_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), BrokerCompression::Producer);
    let mut sent = Vec::new();
    for codec in ALL_CODECS {
        let mut b = rich_batch(codec).build();
        sent.push(b.clone());
        log.append_as_leader(&mut b, 0, 5_000).unwrap();
    }
    let raw_snappy = RecordBatchBuilder::new()
        .compression(Compression::Snappy)
        .raw_snappy(true)
        .record(None, Some(b"librdkafka"), 10)
        .build();
    sent.push(raw_snappy.clone());
    log.append_as_leader(&mut raw_snappy.clone(), 0, 5_000)
        .unwrap();

    let stored = stored_batches(&log);
    assert_eq!(stored.len(), sent.len());
    for (got, sent) in stored.iter().zip(&sent) {
        // Identical apart from the offset and the leader epoch.
        assert_eq!(got.len(), sent.len());
        assert_eq!(&got[CRC_OFFSET..], &sent[CRC_OFFSET..]);
    }
}

#[test]
fn same_codec_is_not_recompressed() {
    // Kafka only rebuilds when the codec differs, whatever the level.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), BrokerCompression::Zstd { level: 19 });
    let sent = rich_batch(Compression::Zstd).build();
    log.append_as_leader(&mut sent.clone(), 0, 5_000).unwrap();
    let stored = stored_batches(&log);
    assert_eq!(&stored[0][CRC_OFFSET..], &sent[CRC_OFFSET..]);
}

#[test]
fn control_batch_is_never_recompressed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), BrokerCompression::Snappy);
    let data = RecordBatchBuilder::new()
        .producer(9, 0, 0)
        .transactional(true)
        .record(Some(b"k"), Some(b"v"), 100)
        .build();
    // An end-transaction marker: key (version 0, type 1 = commit).
    let marker = RecordBatchBuilder::new()
        .producer(9, 0, -1)
        .transactional(true)
        .control(true)
        .record(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), 101)
        .build();
    let mut input = data.clone();
    input.extend_from_slice(&marker);
    // only the broker writes markers
    log.append_as_coordinator(&mut input, 0, 5_000).unwrap();

    let stored = stored_batches(&log);
    let hs: Vec<RecordBatchHeader> = stored
        .iter()
        .map(|b| RecordBatchHeader::parse(b).unwrap())
        .collect();
    assert_eq!(hs[0].compression().unwrap(), Compression::Snappy);
    assert!(hs[1].is_control() && hs[1].is_transactional());
    assert_eq!(hs[1].compression().unwrap(), Compression::None);
    assert_eq!(&stored[1][CRC_OFFSET..], &marker[CRC_OFFSET..]);
    assert_eq!(contents(&stored[0]), contents(&data));
}

#[test]
fn uncompressed_target_stores_plain_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), BrokerCompression::Uncompressed);
    let mut sent = Vec::new();
    for codec in ALL_CODECS {
        let mut b = rich_batch(codec).build();
        sent.push(b.clone());
        log.append_as_leader(&mut b, 0, 5_000).unwrap();
    }
    let stored = stored_batches(&log);
    let plain = rich_batch(Compression::None).build();
    for (got, sent) in stored.iter().zip(&sent) {
        let (h, _) = check_batch_integrity(got).unwrap();
        assert_eq!(h.compression().unwrap(), Compression::None);
        assert_eq!(&got[RECORDS_OFFSET..], &plain[RECORDS_OFFSET..]);
        assert_eq!(contents(got), contents(sent));
    }
}

#[test]
fn every_target_codec_round_trips() {
    let targets = [
        BrokerCompression::Uncompressed,
        BrokerCompression::Gzip { level: -1 },
        BrokerCompression::Gzip { level: 1 },
        BrokerCompression::Gzip { level: 9 },
        BrokerCompression::Snappy,
        BrokerCompression::Lz4 { level: 9 },
        BrokerCompression::Lz4 { level: 17 },
        BrokerCompression::Zstd { level: 3 },
        BrokerCompression::Zstd { level: -5 },
        BrokerCompression::Zstd { level: 19 },
    ];
    for target in targets {
        let codec = target.codec().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), target);
        let mut sent = Vec::new();
        for source in ALL_CODECS {
            let mut b = rich_batch(source).build();
            sent.push(b.clone());
            log.append_as_leader(&mut b, 0, 5_000)
                .unwrap_or_else(|e| panic!("{target:?} from {source:?}: {e}"));
        }
        let stored = stored_batches(&log);
        assert_eq!(stored.len(), sent.len());
        for (got, sent) in stored.iter().zip(&sent) {
            let (h, _) = check_batch_integrity(got).unwrap();
            assert_eq!(h.compression().unwrap(), codec, "{target:?}");
            assert_eq!(raw_records(got), raw_records(sent), "{target:?}");
            assert_eq!(contents(got), contents(sent), "{target:?}");
            assert_eq!(
                h.producer_id,
                RecordBatchHeader::parse(sent).unwrap().producer_id
            );
            let payload = &got[RECORDS_OFFSET..];
            // The framing Kafka's broker writes for each codec.
            match codec {
                Compression::Gzip => assert_eq!(&payload[..3], &[0x1f, 0x8b, 8]),
                Compression::Snappy => {
                    assert_eq!(&payload[..8], b"\x82SNAPPY\0");
                    assert_eq!(&payload[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
                }
                Compression::Lz4 => {
                    // Magic, FLG (version 1, independent blocks, no
                    // checksums, no content size), BD (64 KiB blocks).
                    assert_eq!(&payload[..6], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
                    assert_eq!(&payload[payload.len() - 4..], &[0, 0, 0, 0]);
                }
                Compression::Zstd => assert_eq!(&payload[..4], &[0x28, 0xb5, 0x2f, 0xfd]),
                Compression::None => {}
            }
        }
    }
}

#[test]
fn gzip_level_changes_output() {
    let sizes: Vec<usize> = [1, 9]
        .into_iter()
        .map(|level| {
            let dir = tempfile::tempdir().unwrap();
            let mut log = open(dir.path(), BrokerCompression::Gzip { level });
            let text: Vec<u8> = (0..200_000u32)
                .flat_map(|i| format!("{} ", i % 977).into_bytes())
                .collect();
            let mut b = RecordBatchBuilder::new()
                .record(None, Some(&text), 1)
                .build();
            log.append_as_leader(&mut b, 0, 5_000).unwrap();
            b.len()
        })
        .collect();
    assert!(sizes[1] < sizes[0], "{sizes:?}");
}

#[test]
fn recompression_works_with_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compression: BrokerCompression::Lz4 { level: 9 },
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), TopicPartition::new("t", 0), config, 0, 0, 1_000).unwrap();
    let mut b = rich_batch(Compression::Gzip).build();
    let info = log.append_as_leader(&mut b, 0, 77_777).unwrap();
    assert_eq!(info.log_append_time, 77_777);
    let stored = stored_batches(&log);
    let (h, _) = check_batch_integrity(&stored[0]).unwrap();
    assert_eq!(h.compression().unwrap(), Compression::Lz4);
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, 77_777);
    assert!(decode_records(&stored[0])
        .unwrap()
        .iter()
        .all(|r| r.timestamp == 77_777));
}

#[test]
fn corrupt_batches_are_rejected_before_recompression() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), BrokerCompression::Gzip { level: -1 });
    let good = rich_batch(Compression::None).build();
    let mut bad = rich_batch(Compression::Lz4).build();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let mut input = good.clone();
    input.extend_from_slice(&bad);
    let before = input.clone();
    let err = log.append_as_leader(&mut input, 0, 5_000).unwrap_err();
    assert!(matches!(err, LogError::CorruptRecord(_)), "{err}");
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_in_bytes(), 0);
    assert_eq!(input, before);
}

#[test]
fn batch_too_large_after_recompression_is_rejected() {
    // Incompressible data grows a little under gzip; Kafka re-checks
    // max.message.bytes after recompressing.
    let small = RecordBatchBuilder::new()
        .record(None, Some(b"fits"), 1)
        .build();
    let big = RecordBatchBuilder::new()
        .record(None, Some(&noise(10_000, 99)), 1)
        .build();
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compression: BrokerCompression::Gzip { level: -1 },
        max_message_bytes: big.len() as u32,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), TopicPartition::new("t", 0), config, 0, 0, 1_000).unwrap();
    let mut input = small.clone();
    input.extend_from_slice(&big);
    let err = log.append_as_leader(&mut input, 0, 5_000).unwrap_err();
    assert!(
        matches!(err, LogError::MessageTooLarge { size, max } if size > max as usize),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_in_bytes(), 0);

    // Alone, the small batch goes through.
    let mut ok = small.clone();
    log.append_as_leader(&mut ok, 0, 5_000).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn recompressed_batches_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let sent = rich_batch(Compression::Snappy).build();
    {
        let mut log = open(dir.path(), BrokerCompression::Zstd { level: 3 });
        log.append_as_leader(&mut sent.clone(), 0, 5_000).unwrap();
        // the same records from another producer (a resend would be a retry)
        let mut again = rich_batch(Compression::Snappy).build();
        log.append_as_leader(&mut again, 0, 5_000).unwrap();
        // Unclean: no close, so the segment is recovered (CRC-checked).
    }
    let log = Log::open(
        dir.path(),
        TopicPartition::new("t", 0),
        LogConfig::default(),
        0,
        0,
        9_000,
    )
    .unwrap();
    assert_eq!(log.log_end_offset(), 8);
    let stored = stored_batches(&log);
    assert_eq!(stored.len(), 2);
    for got in &stored {
        assert_eq!(
            got[ATTRIBUTES_OFFSET + 1] as i16 & COMPRESSION_CODEC_MASK,
            i16::from(Compression::Zstd.id())
        );
        assert_eq!(contents(got), contents(&sent));
    }
}

#[test]
fn recompress_batch_round_trips_exactly() {
    // Re-encoding to the batch's own codec is a no-op, and going back to
    // uncompressed restores the producer's bytes exactly.
    let a = rich_batch(Compression::None).build();
    let once = oxka_log::record_batch::recompress_batch(&a, BrokerCompression::Snappy)
        .unwrap()
        .unwrap();
    let twice = oxka_log::record_batch::recompress_batch(&once, BrokerCompression::Snappy).unwrap();
    assert!(twice.is_none());
    let back = oxka_log::record_batch::recompress_batch(&once, BrokerCompression::Uncompressed)
        .unwrap()
        .unwrap();
    assert_eq!(BytesMut::from(&back[..]), a);
}
