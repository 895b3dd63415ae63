//! Per-log configuration and partition naming.

use std::fmt;

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
    /// `message.max.bytes`: largest accepted batch, header included.
    pub max_message_bytes: u32,
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
            max_message_bytes: 1_048_588,
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
