//! The metadata records of `__cluster_metadata`, modelled on Kafka's KRaft
//! records (`metadata/src/main/resources/common/metadata/*.json`): every
//! change to the cluster's metadata is one of these, and the
//! [`MetadataImage`](crate::image::MetadataImage) is what folding them in
//! order gives. A Raft entry carries one [`RecordBatch`]: the records of one
//! controller decision, applied all or nothing (Kafka's atomic batches).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A listener a broker registered (Kafka's BrokerEndpoint in
/// RegisterBrokerRecord).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: String,
}

/// Bytes that must not reach a log line (SCRAM stored and server keys):
/// serialised as they are, shown as `<redacted>` by `Debug`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user's SCRAM credential for one mechanism (RFC 5802's salt,
/// iteration count, StoredKey and ServerKey; the salted password itself
/// is never stored).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Secret,
    pub server_key: Secret,
    pub iterations: i32,
}

/// Kafka's ConfigResource types as the metadata log records them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    Topic,
    Broker,
    Group,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// FeatureLevelRecord: a finalized feature's level (metadata.version).
    FeatureLevel { name: String, level: i16 },
    /// RegisterBrokerRecord: a broker incarnation; the broker epoch is the
    /// offset of this record, so a restarted broker's old session is told
    /// apart from its new one. A new registration starts fenced.
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        broker_epoch: i64,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        fenced: bool,
    },
    /// FenceBrokerRecord: left out of Metadata and placement.
    FenceBroker { broker_id: i32, broker_epoch: i64 },
    /// UnfenceBrokerRecord: caught up with the metadata log and heartbeating.
    UnfenceBroker { broker_id: i32, broker_epoch: i64 },
    /// TopicRecord.
    Topic { name: String, topic_id: Uuid },
    /// PartitionRecord: a new partition with its replicas, ISR and leader.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// PartitionChangeRecord: only the fields that change are present; any
    /// change bumps the partition epoch and a leader change the leader
    /// epoch (Kafka's PartitionRegistration.merge).
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isr: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas: Option<Vec<i32>>,
        /// A reassignment's replicas still to join (KIP-455); `Some(vec![])`
        /// ends the reassignment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding_replicas: Option<Vec<i32>>,
        /// A reassignment's replicas to remove once it completes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing_replicas: Option<Vec<i32>>,
    },
    /// RemoveTopicRecord.
    RemoveTopic { topic_id: Uuid },
    /// ConfigRecord: `value: None` deletes the key. Broker resources are a
    /// node id or "" (the cluster default); group resources a group id.
    Config {
        resource_type: ConfigResourceType,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    /// UserScramCredentialRecord: `mechanism` is Kafka's ScramMechanism
    /// type (1 SCRAM-SHA-256, 2 SCRAM-SHA-512); replaces any earlier one.
    UserScramCredential {
        name: String,
        mechanism: i8,
        credential: ScramCredential,
    },
    /// RemoveUserScramCredentialRecord.
    RemoveUserScramCredential { name: String, mechanism: i8 },
    /// AccessControlEntryRecord: an ACL, by the id the controller gave it.
    AccessControlEntry {
        id: Uuid,
        acl: crate::acl::AclBinding,
    },
    /// RemoveAccessControlEntryRecord.
    RemoveAccessControlEntry { id: Uuid },
    /// ClientQuotaRecord: one quota key of an entity; `value: None`
    /// removes it (Kafka's `remove: true`).
    ClientQuota {
        entity: crate::quota::ClientQuotaEntity,
        key: String,
        value: Option<f64>,
    },
    /// ProducerIdsRecord: ids below `next_producer_id` are handed out.
    ProducerIds {
        broker_id: i32,
        broker_epoch: i64,
        next_producer_id: i64,
    },
}

/// The records of one controller decision: one Raft entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordBatch {
    pub records: Vec<MetadataRecord>,
}

#[derive(Debug, thiserror::Error)]
#[error("undecodable metadata batch at offset {offset}: {reason}")]
pub struct DecodeError {
    pub offset: u64,
    pub reason: String,
}

impl RecordBatch {
    pub fn new(records: Vec<MetadataRecord>) -> Self {
        RecordBatch { records }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data structures into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// An empty entry is Raft's own (a new leader's no-op): no records.
    pub fn decode(offset: u64, data: &[u8]) -> Result<Self, DecodeError> {
        if data.is_empty() {
            return Ok(RecordBatch::default());
        }
        serde_json::from_slice(data).map_err(|e| DecodeError {
            offset,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_empty_is_a_noop() {
        let b = RecordBatch::new(vec![
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: Uuid::new_v4(),
            },
            MetadataRecord::PartitionChange {
                topic_id: Uuid::nil(),
                partition: 0,
                isr: Some(vec![1, 2]),
                leader: None,
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
            },
        ]);
        assert_eq!(RecordBatch::decode(7, &b.encode()).unwrap(), b);
        assert!(RecordBatch::decode(7, b"").unwrap().records.is_empty());
        let e = RecordBatch::decode(9, b"{nope").unwrap_err();
        assert_eq!(e.offset, 9);
    }
}
