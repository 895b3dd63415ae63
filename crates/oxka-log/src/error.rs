//! Error type shared by every storage operation.

use std::io;
use std::path::PathBuf;

/// Errors from the storage engine.
///
/// Variants map one-to-one onto the Kafka error codes a broker must answer
/// with, so the broker can translate without inspecting messages.
#[derive(thiserror::Error, Debug)]
pub enum LogError {
    /// An I/O error whose file is unknown or irrelevant.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// An I/O error on a known file; kept separate so operators can see
    /// which disk or file is failing (Kafka's KAFKA_STORAGE_ERROR).
    #[error("I/O error on {path}: {source}")]
    IoPath {
        /// The file or directory the operation touched.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Bytes that do not form valid v2 record batches (Kafka's CORRUPT_MESSAGE).
    #[error("corrupt record: {0}")]
    CorruptRecord(String),
    /// A batch larger than `max_message_bytes` (Kafka's MESSAGE_TOO_LARGE).
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// Size of the offending batch, header included.
        size: usize,
        /// The configured limit.
        max: u32,
    },
    /// A produce request whose batches together cannot fit in one segment
    /// (Kafka's RECORD_LIST_TOO_LARGE).
    #[error("record set of {size} bytes exceeds the segment size of {max} bytes")]
    RecordListTooLarge {
        /// Size of the whole record set.
        size: usize,
        /// The configured segment size.
        max: u64,
    },
    /// Well-formed bytes whose content is not acceptable (Kafka's INVALID_RECORD).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Records of one batch refused one by one (KIP-467), e.g. keyless
    /// records in a compacted topic: INVALID_RECORD naming each record, so
    /// that the client fails exactly those and the rest of the batch with a
    /// retriable error. The message is Kafka's.
    #[error(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: {}",
        .0.len(),
        RecordError::list(&.0[..(.0.len().min(3))])
    )]
    InvalidRecords(Vec<RecordError>),
    /// A create time outside `message.timestamp.before/after.max.ms` of the
    /// broker's clock (Kafka's INVALID_TIMESTAMP).
    #[error("Timestamp {timestamp} of message with offset {offset_delta} is out of range. The timestamp should be within [{low}, {high}]")]
    InvalidTimestamp {
        /// The offending create time.
        timestamp: i64,
        /// Its record's offset delta within the batch.
        offset_delta: i32,
        /// The accepted range, inclusive.
        low: i64,
        /// See `low`.
        high: i64,
        /// Every out-of-range record of the batch (KIP-467), the one above
        /// included, so that the client fails exactly those.
        record_errors: Vec<RecordError>,
    },
    /// A fetch or truncation outside `[log_start, log_end]` (Kafka's OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// The current log start offset.
        log_start: i64,
        /// The current log end offset.
        log_end: i64,
    },
    /// A log dir belongs to another broker; starting on it would mix two
    /// brokers' data, so startup refuses.
    #[error("log dir {path} belongs to node {found}, not node {expected}")]
    InconsistentNodeId {
        /// The log dir whose meta.properties disagrees.
        path: PathBuf,
        /// The node id this broker was started with.
        expected: i32,
        /// The node id recorded in meta.properties.
        found: i32,
    },
    /// Log dirs that disagree about the cluster they belong to.
    #[error("log dir {path} belongs to cluster {found}, not cluster {expected}")]
    InconsistentClusterId {
        /// The log dir whose meta.properties disagrees.
        path: PathBuf,
        /// The cluster id of the first log dir (or the configured one).
        expected: String,
        /// The cluster id recorded in this dir.
        found: String,
    },
    /// `format_log_dir` on a dir that already has a `meta.properties`: a
    /// formatted dir keeps its identity.
    #[error("log dir {path} is already formatted")]
    AlreadyFormatted {
        /// The log dir.
        path: PathBuf,
    },
    /// A cluster id that is not a Kafka UUID (Kafka's `Uuid.fromString`).
    #[error("Cluster ID string {id} does not appear to be a valid UUID: {reason}")]
    InvalidClusterId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process holds the dir's `.lock`: two brokers on one dir
    /// would overwrite each other's records, so startup refuses.
    #[error("log dir {path} is in use by another process{}: refusing to start (Kafka's .lock)", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    DirLocked {
        /// The locked directory.
        path: PathBuf,
        /// The holder's pid, as it wrote it in the lock file.
        holder: Option<u32>,
    },
    /// A write failed and was undone (the file cut back to where it was),
    /// so the log is unchanged and stays readable; typically a full disk.
    #[error("write to {path} failed and was undone: {source}")]
    WriteFailed {
        /// The segment file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The log dir's free space is below `log.dir.min.free.bytes`: writes
    /// are refused (reads go on) until space comes back.
    #[error("log dir {dir} has {free} bytes free, below the minimum of {min}: writes are refused until space is freed")]
    LowDiskSpace {
        /// The log dir.
        dir: PathBuf,
        /// Free bytes when last measured.
        free: u64,
        /// The configured minimum.
        min: u64,
    },
    /// A metadata or checkpoint file that cannot be parsed.
    #[error("malformed file {path}: {reason}")]
    MalformedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The same partition exists in two log dirs; which copy is right is unknowable.
    #[error("duplicate log directories for {0}")]
    DuplicateLog(String),
    /// The log was deleted or a previous write left it in an unknown state;
    /// it refuses further appends rather than risk serving a torn batch.
    #[error("log {0} is offline")]
    LogOffline(String),
    /// A follower append whose batches do not continue the log: a batch
    /// starting below `expected` (the log end offset for the first batch,
    /// the offset after the previous batch for the others). Kafka's
    /// UnexpectedAppendOffsetException / OffsetsOutOfOrderException: the
    /// follower fetched from the wrong offset, or its leader's batches
    /// overlap.
    #[error("unexpected offset in a follower append: a batch starts at offset {got}, but the log expects offset {expected} or later")]
    UnexpectedAppendOffset {
        /// The lowest base offset the log accepts there.
        expected: i64,
        /// The batch's base offset.
        got: i64,
    },
    /// A producer's batch does not follow its previous one (a gap, or a
    /// new epoch not starting at 0): Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    /// A batch or marker from an epoch older than the producer's current
    /// one (a zombie): Kafka's INVALID_PRODUCER_EPOCH.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    /// A write that contradicts the producer's transaction state (plain
    /// data inside an open transaction): Kafka's INVALID_TXN_STATE.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// A marker from an older transaction coordinator epoch: Kafka's
    /// TRANSACTION_COORDINATOR_FENCED.
    #[error("transaction coordinator fenced: {0}")]
    TransactionCoordinatorFenced(String),
}

/// One refused record of a batch (Kafka's `ProduceResponse.RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's index within its batch.
    pub batch_index: i32,
    /// Why it was refused.
    pub message: String,
}

impl RecordError {
    /// Kafka's rendering of a list of record errors (Java's `List.toString`
    /// of `RecordError(batchIndex=.., message='..')`), as its error message
    /// quotes them.
    fn list(errors: &[RecordError]) -> String {
        let items: Vec<String> = errors
            .iter()
            .map(|e| {
                format!(
                    "RecordError(batchIndex={}, message='{}')",
                    e.batch_index, e.message
                )
            })
            .collect();
        format!("[{}]", items.join(", "))
    }
}

impl LogError {
    /// Whether the error came from the disk rather than from the caller's
    /// input; brokers answer KAFKA_STORAGE_ERROR for these.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            LogError::Io(_)
                | LogError::IoPath { .. }
                | LogError::LogOffline(_)
                | LogError::WriteFailed { .. }
                | LogError::LowDiskSpace { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> LogError {
        LogError::IoPath {
            path: path.into(),
            source,
        }
    }
}

/// Attaches a path to I/O errors.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: &std::path::Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for Result<T, io::Error> {
    fn ctx(self, path: &std::path::Path) -> Result<T, LogError> {
        self.map_err(|e| LogError::io(path, e))
    }
}
