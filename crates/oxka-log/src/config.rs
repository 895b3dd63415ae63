//! Per-log configuration and partition naming.

use std::fmt;

use crate::record_batch::Compression;

/// Which clock a batch's timestamps come from (Kafka's `message.timestamp.type`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Timestamps chosen by the producer are kept.
    CreateTime,
    /// The broker overwrites the batch max timestamp with its own clock on append.
    LogAppendTime,
}

/// Settings of one log; defaults are Kafka's broker defaults so a broker
/// that configures nothing behaves like a stock Kafka broker.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `log.segment.bytes`: roll before a segment would exceed this.
    pub segment_bytes: u64,
    /// `log.roll.ms`: roll once a segment's data spans this long.
    pub segment_ms: i64,
    /// `log.index.interval.bytes`: bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// `log.index.size.max.bytes`: roll when an index would outgrow this.
    pub max_index_size: u32,
    /// `log.flush.interval.messages`: fsync after this many unflushed messages.
    pub flush_interval_messages: u64,
    /// `log.flush.interval.ms`: fsync when data has been unflushed this long.
    pub flush_interval_ms: u64,
    /// `log.message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a create
    /// time may be (Kafka's default: no limit).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a create
    /// time may be (Kafka 4's default: one hour, KIP-1030), so a producer
    /// with a wrong clock cannot pin a segment against time retention.
    pub message_timestamp_after_max_ms: i64,
    /// `message.max.bytes`: largest accepted batch, header included.
    pub max_message_bytes: u32,
    /// `compression.type` (with the `compression.*.level` settings): the
    /// codec batches are stored in.
    pub compression: BrokerCompression,
    /// `cleanup.policy` contains `compact`: the log cleaner keeps the latest
    /// record per key, and appends of records without a key are refused
    /// (they could never be compacted).
    pub compact: bool,
    /// `cleanup.policy` contains `delete`: retention applies.
    pub delete: bool,
    /// `min.cleanable.dirty.ratio`: the share of not-yet-cleaned bytes that
    /// makes a compacted log worth cleaning.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this stay uncompacted
    /// (consumers get a window in which they see every update).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this makes the log
    /// eligible for cleaning whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone survives after the
    /// cleaner first saw it, so consumers can observe the delete.
    pub delete_retention_ms: i64,
    /// `max.decompressed.message.bytes`: the largest record a compressed
    /// batch may hold (INVALID_RECORD above it).
    pub max_decompressed_message_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            index_interval_bytes: 4096,
            max_index_size: 10_485_760,
            flush_interval_messages: u64::MAX,
            flush_interval_ms: u64::MAX,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            max_message_bytes: 1_048_588,
            compression: BrokerCompression::Producer,
            compact: false,
            delete: true,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            max_decompressed_message_bytes:
                crate::record_batch::DEFAULT_MAX_DECOMPRESSED_RECORD_BYTES,
        }
    }
}

/// A topic's `compression.type`: the codec the leader stores batches in
/// (Kafka's `BrokerCompressionType` plus the KIP-390 levels).
///
/// Levels are kept as configured; out-of-range values are mapped to the
/// codec's default when compressing (see the `effective_*` helpers), so a
/// bad config never fails an append.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum BrokerCompression {
    /// Keep whatever codec the producer used (Kafka's default).
    #[default]
    Producer,
    /// Store records uncompressed.
    Uncompressed,
    /// gzip; `level` is `compression.gzip.level` (-1 = zlib's default, 6).
    Gzip {
        /// 1..=9, or -1 for the default.
        level: i32,
    },
    /// snappy, framed as snappy-java's `SnappyOutputStream` writes it.
    Snappy,
    /// LZ4 frame; `level` is `compression.lz4.level`.
    Lz4 {
        /// 1..=17 in Kafka (9 by default). The pure-Rust encoder only has
        /// its fast mode, so the level does not change the output.
        level: i32,
    },
    /// zstd; `level` is `compression.zstd.level`.
    Zstd {
        /// -131072..=22, 3 by default.
        level: i32,
    },
}

impl BrokerCompression {
    /// `compression.gzip.level` default (zlib's default, i.e. 6).
    pub const GZIP_DEFAULT_LEVEL: i32 = -1;
    /// Smallest explicit gzip level Kafka accepts.
    pub const GZIP_MIN_LEVEL: i32 = 1;
    /// Largest gzip level.
    pub const GZIP_MAX_LEVEL: i32 = 9;
    /// `compression.lz4.level` default.
    pub const LZ4_DEFAULT_LEVEL: i32 = 9;
    /// Smallest lz4 level.
    pub const LZ4_MIN_LEVEL: i32 = 1;
    /// Largest lz4 level.
    pub const LZ4_MAX_LEVEL: i32 = 17;
    /// `compression.zstd.level` default.
    pub const ZSTD_DEFAULT_LEVEL: i32 = 3;
    /// Smallest zstd level (zstd's `ZSTD_minCLevel()`).
    pub const ZSTD_MIN_LEVEL: i32 = -131_072;
    /// Largest zstd level.
    pub const ZSTD_MAX_LEVEL: i32 = 22;

    /// Parses a `compression.type` value (case-insensitive: `producer`,
    /// `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`) with the levels
    /// that apply to it; `None` for an unknown name.
    pub fn from_config(
        name: &str,
        gzip_level: i32,
        lz4_level: i32,
        zstd_level: i32,
    ) -> Option<BrokerCompression> {
        let name = name.trim();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        Some(if is("producer") {
            BrokerCompression::Producer
        } else if is("uncompressed") {
            BrokerCompression::Uncompressed
        } else if is("gzip") {
            BrokerCompression::Gzip { level: gzip_level }
        } else if is("snappy") {
            BrokerCompression::Snappy
        } else if is("lz4") {
            BrokerCompression::Lz4 { level: lz4_level }
        } else if is("zstd") {
            BrokerCompression::Zstd { level: zstd_level }
        } else {
            return None;
        })
    }

    /// The codec batches are stored in, `None` for `Producer`.
    pub fn codec(self) -> Option<Compression> {
        match self {
            BrokerCompression::Producer => None,
            BrokerCompression::Uncompressed => Some(Compression::None),
            BrokerCompression::Gzip { .. } => Some(Compression::Gzip),
            BrokerCompression::Snappy => Some(Compression::Snappy),
            BrokerCompression::Lz4 { .. } => Some(Compression::Lz4),
            BrokerCompression::Zstd { .. } => Some(Compression::Zstd),
        }
    }

    /// The zlib level to use for a configured `compression.gzip.level`:
    /// -1 (and anything out of range) means zlib's default, 6.
    pub fn effective_gzip_level(level: i32) -> u32 {
        if (Self::GZIP_MIN_LEVEL..=Self::GZIP_MAX_LEVEL).contains(&level) {
            level as u32
        } else {
            6
        }
    }

    /// The zstd level to use for a configured `compression.zstd.level`.
    pub fn effective_zstd_level(level: i32) -> i32 {
        if (Self::ZSTD_MIN_LEVEL..=Self::ZSTD_MAX_LEVEL).contains(&level) {
            level
        } else {
            Self::ZSTD_DEFAULT_LEVEL
        }
    }
}

/// A topic partition, named on disk the way Kafka names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Creates a topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The partition's directory name inside a log dir, `topic-N`.
    pub fn dir_name(&self) -> String {
        self.to_string()
    }

    /// Parses `topic-N`; the split is at the last `-` because topic names
    /// may themselves contain dashes.
    pub fn parse_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() {
            return None;
        }
        if !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        Some(TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_compression_parses_kafka_names() {
        let parse = |n: &str| BrokerCompression::from_config(n, 4, 10, -5);
        assert_eq!(parse("producer"), Some(BrokerCompression::Producer));
        assert_eq!(parse("Uncompressed"), Some(BrokerCompression::Uncompressed));
        assert_eq!(parse("GZIP"), Some(BrokerCompression::Gzip { level: 4 }));
        assert_eq!(parse("snappy"), Some(BrokerCompression::Snappy));
        assert_eq!(parse("lz4"), Some(BrokerCompression::Lz4 { level: 10 }));
        assert_eq!(parse(" zstd "), Some(BrokerCompression::Zstd { level: -5 }));
        assert_eq!(parse("none"), None);
        assert_eq!(parse("brotli"), None);
        assert_eq!(
            LogConfig::default().compression,
            BrokerCompression::Producer
        );
        assert_eq!(BrokerCompression::Producer.codec(), None);
        assert_eq!(
            BrokerCompression::Uncompressed.codec(),
            Some(Compression::None)
        );
        assert_eq!(BrokerCompression::effective_gzip_level(-1), 6);
        assert_eq!(BrokerCompression::effective_gzip_level(0), 6);
        assert_eq!(BrokerCompression::effective_gzip_level(9), 9);
        assert_eq!(BrokerCompression::effective_zstd_level(-7), -7);
        assert_eq!(BrokerCompression::effective_zstd_level(23), 3);
    }

    #[test]
    fn dir_name_round_trip() {
        let tp = TopicPartition::new("my-topic", 12);
        assert_eq!(tp.dir_name(), "my-topic-12");
        assert_eq!(TopicPartition::parse_dir_name("my-topic-12"), Some(tp));
        assert_eq!(TopicPartition::parse_dir_name("nodash"), None);
        assert_eq!(TopicPartition::parse_dir_name("t-"), None);
        assert_eq!(TopicPartition::parse_dir_name("-3"), None);
        assert_eq!(TopicPartition::parse_dir_name("t-3.abc-delete"), None);
        assert_eq!(TopicPartition::parse_dir_name("t-99999999999"), None);
    }
}
