//! Randomised appends, reads and reopens against a simple model.

use std::path::Path;

use oxka_log::builder::{BuilderRecord, RecordBatchBuilder};
use oxka_log::record_batch::batches;
use oxka_log::{Compression, Log, LogConfig, TopicPartition};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append {
        records: usize,
        value_size: usize,
        codec: u8,
    },
    Read {
        at: u16,
        max_bytes: usize,
        min_one: bool,
        bound: Option<u16>,
    },
    Reopen {
        clean: bool,
        recovery_point_frac: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1usize..6, 0usize..300, 0u8..6).prop_map(|(records, value_size, codec)| Op::Append { records, value_size, codec }),
        4 => (any::<u16>(), 1usize..2000, any::<bool>(), proptest::option::of(any::<u16>()))
            .prop_map(|(at, max_bytes, min_one, bound)| Op::Read { at, max_bytes, min_one, bound }),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(clean, recovery_point_frac)| Op::Reopen { clean, recovery_point_frac }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 128,
        max_index_size: 64,
        ..LogConfig::default()
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("p", 0)
}

struct Model {
    /// (base offset, last offset, stored bytes)
    batches: Vec<(i64, i64, Vec<u8>)>,
}

impl Model {
    fn leo(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.1 + 1)
    }
    fn containing(&self, offset: i64) -> usize {
        self.batches.iter().position(|b| b.1 >= offset).unwrap()
    }
}

fn check_full_content(log: &Log, model: &Model) {
    assert_eq!(log.log_end_offset(), model.leo());
    for (i, (base, last, _)) in model.batches.iter().enumerate() {
        for off in [*base, *last] {
            let r = log.read(off, usize::MAX, i64::MAX, true).unwrap();
            // Whatever comes back is exactly the model's batches from i on.
            let mut j = i;
            for b in batches(&r.records) {
                let (_, bytes) = b.unwrap();
                assert_eq!(bytes, &model.batches[j].2[..]);
                j += 1;
            }
            assert!(j > i);
        }
    }
}

fn run(dir: &Path, ops: Vec<Op>) {
    let mut log = Log::open(dir, tp(), config(), 0, 0, 0).unwrap();
    let mut model = Model {
        batches: Vec::new(),
    };
    let mut ts = 1_000i64;
    for op in ops {
        match op {
            Op::Append {
                records,
                value_size,
                codec,
            } => {
                let compression = match codec {
                    1 => Compression::Gzip,
                    2 => Compression::Snappy,
                    3 => Compression::Lz4,
                    4 => Compression::Zstd,
                    _ => Compression::None,
                };
                let mut b = RecordBatchBuilder::new().compression(compression);
                for i in 0..records {
                    ts += 1;
                    b.push(BuilderRecord {
                        key: Some(vec![i as u8; 3]),
                        value: Some((0..value_size).map(|x| (x * 31 + i) as u8).collect()),
                        headers: Vec::new(),
                        timestamp: ts,
                    });
                }
                let mut buf = b.build();
                let info = log.append_as_leader(&mut buf, 7, ts).unwrap();
                assert_eq!(info.first_offset, model.leo());
                assert_eq!(info.last_offset, model.leo() + records as i64 - 1);
                model
                    .batches
                    .push((info.first_offset, info.last_offset, buf.to_vec()));
                assert_eq!(log.log_end_offset(), model.leo());
            }
            Op::Read {
                at,
                max_bytes,
                min_one,
                bound,
            } => {
                let leo = model.leo();
                let offset = if leo == 0 {
                    0
                } else {
                    i64::from(at) % (leo + 1)
                };
                let max_offset = bound.map_or(leo, |b| i64::from(b) % (leo + 1));
                let r = log.read(offset, max_bytes, max_offset, min_one).unwrap();
                if offset == leo || offset >= max_offset {
                    assert!(r.records.is_empty());
                    continue;
                }
                let first = model.containing(offset);
                let mut j = first;
                for b in batches(&r.records) {
                    let (h, bytes) = b.unwrap();
                    assert_eq!(bytes, &model.batches[j].2[..]);
                    assert!(h.base_offset < max_offset);
                    j += 1;
                }
                if j - first > 1 || !min_one {
                    assert!(r.records.len() <= max_bytes);
                }
                let first_len = model.batches[first].2.len();
                if min_one || first_len <= max_bytes {
                    assert!(j > first, "the batch containing {offset} must be returned");
                    assert_eq!(r.first_batch_offset, Some(model.batches[first].0));
                } else {
                    assert!(r.records.is_empty());
                }
            }
            Op::Reopen {
                clean,
                recovery_point_frac,
            } => {
                let leo = model.leo();
                let rp = leo * i64::from(recovery_point_frac) / 255;
                if clean {
                    log.close().unwrap();
                } else {
                    drop(log);
                }
                log = Log::open(dir, tp(), config(), rp, 0, 0).unwrap();
                check_full_content(&log, &model);
            }
        }
    }
    check_full_content(&log, &model);
    let segments = log.num_segments();
    let size = log.size_in_bytes();
    log.close().unwrap();
    let log = Log::open(dir, tp(), config(), 0, 0, 0).unwrap();
    assert_eq!(log.num_segments(), segments);
    assert_eq!(log.size_in_bytes(), size);
    check_full_content(&log, &model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_appends_reads_and_reopens(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), ops);
    }
}
