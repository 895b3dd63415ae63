//! `oxka-client`: a native async Rust client for Kafka-compatible brokers
//! (oxka, Apache Kafka, Redpanda).
//!
//! Three entry points, all configured with Kafka's property names so an
//! existing `client.properties` works unchanged:
//!
//! - [`Admin`]: topics, partitions, configs, consumer groups and their
//!   offsets, cluster and metadata-quorum description, record deletion.
//! - [`Producer`]: batching by `batch.size`/`linger.ms` under
//!   `buffer.memory`, Java's partitioner, compression, acks, retries within
//!   `delivery.timeout.ms`, idempotence on by default; transactions with
//!   `transactional.id` (`init_transactions`, `begin_transaction`,
//!   `commit_transaction`, `abort_transaction`,
//!   `send_offsets_to_transaction`), Java's state machine and error model
//!   ([`TransactionState`], [`Error::Transaction`]).
//! - [`Consumer`]: manual assignment or group membership (classic protocol,
//!   `range` and `cooperative-sticky` assignors), seek, pause/resume,
//!   commits, auto-commit, rebalance callbacks.
//!
//! ```no_run
//! use oxka_client::{ClientConfig, Producer, ProducerRecord, Consumer};
//! # async fn demo() -> Result<(), oxka_client::Error> {
//! let mut cfg = ClientConfig::with_bootstrap("localhost:9092");
//! let producer = Producer::new(&cfg)?;
//! let meta = producer.send(ProducerRecord::new("greetings").key("k").value("hello")).await?;
//! println!("written to partition {} at offset {}", meta.partition, meta.offset);
//! producer.close().await?;
//!
//! cfg.set("group.id", "readers").set("auto.offset.reset", "earliest");
//! let mut consumer = Consumer::new(&cfg)?;
//! consumer.subscribe(&["greetings"])?;
//! for record in consumer.poll(std::time::Duration::from_secs(1)).await? {
//!     println!("{}:{} {:?}", record.partition, record.offset, record.value);
//! }
//! consumer.close().await?;
//! # Ok(()) }
//! ```
//!
//! The crate depends on no server crate: it speaks only the wire protocol
//! (through the `kafka-protocol` codec).

pub mod acl;
pub mod admin;
mod buffer_pool;
mod cluster;
pub mod config;
mod connection;
pub mod consumer;
pub mod error;
mod frame;
pub mod partitioner;
pub mod producer;
pub mod quorum;
pub mod quota;
pub mod records;
pub mod sasl;
pub mod security;
mod transaction;

pub use admin::Admin;
pub use cluster::{BrokerInfo, Metadata, PartitionInfo, TopicInfo};
pub use config::ClientConfig;
/// One broker connection (the broker's replica fetchers use it too).
pub use connection::Connection;
pub use consumer::{Consumer, ConsumerGroupMetadata, ConsumerRecord, RebalanceListener};
pub use error::{Error, KafkaCode, Result};
pub use producer::{Producer, ProducerRecord, RecordMetadata, TransactionState};
pub use quorum::QuorumInfo;
pub use records::{Compression, Header};

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

pub(crate) fn sb(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}

pub(crate) fn tn(s: impl Into<String>) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(sb(s))
}

/// Milliseconds since the Unix epoch (Kafka's timestamp unit).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Kafka's text form of a UUID (topic ids, directory ids, cluster ids):
/// URL-safe base64 of its 16 bytes without padding, as `Uuid.toString()`.
pub fn kafka_uuid_string(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let (mut acc, mut bits) = (0u32, 0);
    for b in id.as_bytes() {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 0x3f) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_print_as_kafka_prints_them() {
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(super::kafka_uuid_string(&id), "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(
            super::kafka_uuid_string(&uuid::Uuid::nil()),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
    }
}
