//! Storage engine of oxka: Kafka-compatible partition logs on plain files.
//!
//! The on-disk layout, index formats, roll rules and crash recovery follow
//! Kafka's (LogSegment, OffsetIndex, TimeIndex, UnifiedLog, LogManager) so
//! that operators' expectations and tooling carry over.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod builder;
pub mod cleaner;
mod config;
mod dir_lock;
pub mod epoch_cache;
mod error;
mod fileio;
mod index;
pub mod latency;
mod log;
mod manager;
mod open_files;
pub mod producer_state;
pub mod record_batch;
mod record_stream;
mod retention;
mod segment;
pub mod txn_index;

/// Wall-clock milliseconds since the Unix epoch: record timestamps,
/// retention and expiry deadlines (one clock for every server crate).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub use config::{BrokerCompression, LogConfig, TimestampType, TopicPartition};
pub use dir_lock::DirLock;
pub use epoch_cache::{EpochEntry, LeaderEpochCache, LEADER_EPOCH_CHECKPOINT_FILE};
pub use error::{LogError, RecordError};
pub use fileio::FileRegion;
pub use log::Log;
pub use manager::{
    format_log_dir, random_cluster_id, read_meta_properties, uuid_string, validate_cluster_id,
    LogManager, CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT_FILE, METADATA_LOG_DIR_NAME,
    META_PROPERTIES_FILE, RECOVERY_POINT_CHECKPOINT_FILE, RETENTION_PASS_MIN_INTERVAL_MS,
};
pub use open_files::{open_file_budget, set_open_file_budget};
pub use record_batch::{Compression, RecordBatchHeader};
pub use retention::{RetentionConfig, RetentionSummary};

/// Outcome of a successful append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAppendInfo {
    /// Offset assigned to the first record.
    pub first_offset: i64,
    /// Offset assigned to the last record.
    pub last_offset: i64,
    /// The broker time written into the batches, -1 with CreateTime.
    pub log_append_time: i64,
    /// Largest record timestamp appended.
    pub max_timestamp: i64,
    /// Offset of the first record carrying `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Records appended.
    pub num_records: u64,
    /// Batches appended.
    pub num_batches: usize,
    /// Bytes appended.
    pub valid_bytes: usize,
}

/// Result of a read: whole batches exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchDataInfo {
    /// Concatenated batches.
    pub records: bytes::Bytes,
    /// Base offset of the first batch returned, `None` when nothing was.
    pub first_batch_offset: Option<i64>,
}

/// Result of a zero-copy read ([`Log::read_region`]): the same whole
/// batches as [`FetchDataInfo`], left in the segment file.
#[derive(Clone, Debug)]
pub struct FetchRegionInfo {
    /// Where the batches are; `None` when nothing was read.
    pub records: Option<FileRegion>,
    /// Base offset of the first batch returned, `None` when nothing was.
    pub first_batch_offset: Option<i64>,
}

impl FetchRegionInfo {
    /// Bytes read (0 when nothing was).
    pub fn len(&self) -> usize {
        self.records.as_ref().map_or(0, FileRegion::len)
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    /// The broker shares logs and the manager across threads.
    #[test]
    fn shared_types_are_thread_safe() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::LogManager>();
        assert_send_sync::<std::sync::Arc<parking_lot::Mutex<crate::Log>>>();
        assert_send_sync::<crate::LogError>();
    }
}
