//! Typed errors. Kafka error codes keep their protocol names
//! (`NOT_LEADER_OR_FOLLOWER`) so messages match what operators find in
//! Kafka's documentation.

use std::fmt;

use kafka_protocol::error::ResponseError;

/// A Kafka protocol error code (non-zero), shown by its protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    /// `None` for 0 (no error).
    pub fn from_code(code: i16) -> Option<KafkaCode> {
        (code != 0).then_some(KafkaCode(code))
    }

    /// Whether Kafka classes the error as retriable.
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }

    /// The protocol name, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            Some(ResponseError::Unknown(_)) | None => format!("UNKNOWN_ERROR_CODE_{}", self.0),
            Some(e) => camel_to_upper_snake(&e.to_string()),
        }
    }

    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const TRANSACTION_ABORTABLE: i16 = 120;
}

fn camel_to_upper_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is missing, unknown or malformed.
    #[error("invalid client config `{key}` = `{value}`: {reason}")]
    Config {
        key: String,
        value: String,
        reason: String,
    },
    /// A properties file could not be read.
    #[error("cannot read client properties file {path}: {source}")]
    ConfigFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// TCP connect failed or timed out.
    #[error("cannot connect to broker {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// TLS or SASL authentication with the broker failed.
    #[error("authentication with broker {addr} failed: {reason}")]
    Authentication { addr: String, reason: String },
    /// An established connection broke; in-flight requests on it fail with this.
    #[error("connection to broker {addr} lost: {reason}")]
    Disconnected { addr: String, reason: String },
    /// None of `bootstrap.servers` answered.
    #[error("no broker reachable at {0}; is a broker running there? (set bootstrap.servers / --bootstrap-server)")]
    NoBrokers(String),
    /// The broker does not implement an API (or no version both sides speak).
    #[error("broker {addr} does not support the {api} API (client speaks versions {min}..={max})")]
    UnsupportedApi {
        api: String,
        addr: String,
        min: i16,
        max: i16,
    },
    /// Bytes from the broker did not decode or broke a protocol rule.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The broker answered with a Kafka error code.
    #[error("{context}: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        code: KafkaCode,
        message: Option<String>,
        context: String,
    },
    /// An operation did not finish in its time budget.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A record larger than the producer may send.
    #[error("record of {size} bytes is larger than {key} = {limit}")]
    RecordTooLarge {
        size: usize,
        limit: usize,
        key: &'static str,
    },
    /// The producer or consumer has been closed.
    #[error("the client has been closed")]
    Closed,
    /// A caller passed something that cannot work (bad partition, empty name, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A record batch could not be encoded or decoded.
    #[error("record batch error: {0}")]
    Records(String),
    /// The transactional producer failed (Java's error model). `fatal`:
    /// the producer can do nothing more (fenced by a newer instance with
    /// its `transactional.id`, not authorized, ...) and every later call
    /// returns this error: close it. Otherwise the current transaction
    /// cannot commit (a send in it failed, say) and must be aborted with
    /// `abort_transaction`; the producer then goes on.
    #[error("{} transaction error: {message}", if *fatal { "fatal" } else { "abortable" })]
    Transaction {
        fatal: bool,
        /// The broker's error code, when the error came from one.
        code: Option<KafkaCode>,
        message: String,
    },
    /// A transactional method called in a state that does not allow it
    /// (`begin_transaction` twice, `commit_transaction` without a
    /// transaction, any transactional call on a producer without
    /// `transactional.id`, ...). Nothing was changed.
    #[error("cannot {operation}: the producer is {state}")]
    TransactionState {
        operation: &'static str,
        state: String,
    },
}

impl Error {
    pub(crate) fn kafka(code: i16, message: Option<String>, context: impl Into<String>) -> Error {
        Error::Kafka {
            code: KafkaCode(code),
            message: message.filter(|m| !m.is_empty()),
            context: context.into(),
        }
    }

    /// The Kafka error code, when the broker answered with one.
    pub fn kafka_code(&self) -> Option<KafkaCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            Error::Transaction { code, .. } => *code,
            _ => None,
        }
    }

    /// A fatal transactional error: the producer is unusable (fenced, not
    /// authorized, ...); close it and build a new one.
    pub fn is_fatal_transaction_error(&self) -> bool {
        matches!(self, Error::Transaction { fatal: true, .. })
    }

    /// An abortable transactional error: abort the transaction
    /// (`abort_transaction`) and go on with a new one.
    pub fn is_abortable_transaction_error(&self) -> bool {
        matches!(self, Error::Transaction { fatal: false, .. })
    }

    /// Whether retrying the same operation may succeed (network trouble,
    /// leader moves, coordinator loading).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Disconnected { .. } | Error::Timeout(_) => true,
            Error::Kafka { code, .. } => code.is_retriable(),
            _ => false,
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a non-zero error code into an error.
pub(crate) fn check(
    code: i16,
    message: Option<&kafka_protocol::protocol::StrBytes>,
    context: impl FnOnce() -> String,
) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::kafka(
            code,
            message.map(|m| m.to_string()),
            context(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_print_protocol_names() {
        assert_eq!(KafkaCode(6).name(), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(KafkaCode(3).name(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert!(KafkaCode(6).is_retriable());
        assert!(!KafkaCode(36).is_retriable());
        assert_eq!(KafkaCode(9999).name(), "UNKNOWN_ERROR_CODE_9999");
    }
}
