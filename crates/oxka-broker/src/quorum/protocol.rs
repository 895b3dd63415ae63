//! What nodes say to each other on the controller listener: Raft's
//! messages between voters, and requests to the active controller (broker
//! registration and heartbeats, forwarded admin commands, metadata log
//! fetches by brokers that are not voters, DescribeQuorum). Frames are a
//! 4-byte length and a postcard-encoded [`Frame`]; the length is bounded.

use std::collections::BTreeMap;

use oxka_controller::image::TopicInfo;
use oxka_controller::quorum::{WireMessage, WireSnapshot};
use oxka_controller::records::Endpoint;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Larger frames are refused (a snapshot of a very large cluster is the
/// biggest thing sent).
pub const MAX_FRAME_BYTES: usize = 512 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Frame {
    /// First frame of every connection, from the side that dialled.
    Hello {
        node_id: i32,
        cluster_id: String,
    },
    /// The listener refuses a peer (another cluster's node).
    Refused {
        reason: String,
    },
    Raft(WireMessage),
    Request {
        id: u64,
        body: Request,
    },
    Response {
        id: u64,
        body: Response,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Decide `cmd` within `timeout_ms` (the forwarding node's own
    /// deadline: past it nobody waits for the answer).
    Command {
        cmd: Command,
        timeout_ms: u64,
    },
    /// A broker that is not a voter reads the committed log (Kafka's
    /// brokers fetch `__cluster_metadata`); waits up to `wait_ms` for news.
    FetchMetadata {
        replica_id: i32,
        after: u64,
        wait_ms: u64,
    },
    DescribeQuorum,
}

/// A decision asked of the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    CreateTopics {
        specs: Vec<CreateTopicSpec>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        name: String,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    },
    /// Replaces one resource's overrides with `new`, if they still are
    /// `expected` (the sender validated the change against those).
    SetConfigs {
        target: ConfigTargetWire,
        expected: BTreeMap<String, String>,
        new: BTreeMap<String, String>,
    },
    AllocateProducerIds {
        broker_id: i32,
        count: i64,
    },
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
    },
    BrokerHeartbeat {
        broker_id: i32,
        broker_epoch: i64,
        /// The offset of the metadata this broker has applied.
        applied: u64,
        want_shut_down: bool,
    },
    /// A leader's ISR changes (Kafka's AlterPartition, API 56), each
    /// checked against the leader and partition epochs it was made in.
    AlterPartition {
        broker_id: i32,
        broker_epoch: i64,
        changes: Vec<AlterPartitionItem>,
    },
    /// AlterUserScramCredentials (API 51), checked by the broker first;
    /// answered with one result per item (`Partitions`).
    AlterScramCredentials {
        items: Vec<ScramAlteration>,
    },
    /// CreateAcls (API 30), validated again by the controller; answered
    /// with one result per binding (`Partitions`).
    CreateAcls {
        acls: Vec<oxka_controller::acl::AclBinding>,
    },
    /// DeleteAcls (API 31): per filter, the bindings it removed
    /// (`AclsDeleted`).
    DeleteAcls {
        filters: Vec<oxka_controller::acl::AclBindingFilter>,
    },
    /// AlterClientQuotas (API 49, KIP-546): validated by the controller
    /// (Kafka's ClientQuotaControlManager); answered with one result per
    /// entry (`Partitions`).
    AlterClientQuotas {
        entries: Vec<QuotaAlteration>,
        validate_only: bool,
    },
    /// ElectLeaders (KIP-460): PREFERRED (0) or UNCLEAN (1), of the named
    /// partitions or, with `None`, of all.
    ElectLeaders {
        election_type: i8,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// AlterPartitionReassignments (KIP-455): a target per partition, or
    /// `None` to cancel.
    AlterReassignments {
        items: Vec<(String, i32, Option<Vec<i32>>)>,
        allow_rf_change: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionItem {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
    /// KIP-903: the broker epoch each new ISR member fetched with (-1 or
    /// missing: unknown), so a fetch from before a broker restarted cannot
    /// put its new incarnation into the ISR.
    #[serde(default)]
    pub new_isr_broker_epochs: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigTargetWire {
    Topic(String),
    Broker(String),
    Group(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTopicSpec {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Explicit replica assignment per partition index, if any.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: BTreeMap<String, String>,
}

impl CreateTopicSpec {
    /// A topic by name and counts (-1: the broker's defaults), without
    /// explicit assignments or configs.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> Self {
        CreateTopicSpec {
            name: name.into(),
            num_partitions,
            replication_factor,
            assignments: Vec::new(),
            configs: BTreeMap::new(),
        }
    }
}

/// A Kafka error as it crosses nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    pub code: i16,
    pub message: String,
}

/// One SCRAM credential to set (`credential`) or delete (`None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScramAlteration {
    pub name: String,
    /// Kafka's ScramMechanism type: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
    pub mechanism: i8,
    pub credential: Option<oxka_controller::records::ScramCredential>,
}

/// One AlterClientQuotas entry as the request carries it: the entity's
/// (type, name) components (a `None` name is the type's default) and the
/// keys to set (`Some`) or remove (`None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotaAlteration {
    pub entity: Vec<(String, Option<String>)>,
    pub ops: Vec<(String, Option<f64>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CommandOutcome {
    Topics(Vec<Result<TopicInfo, WireError>>),
    Deleted(Vec<Result<(), WireError>>),
    Done,
    /// SetConfigs found other overrides than `expected`.
    StaleConfigs,
    ProducerIds {
        first: i64,
        count: i64,
    },
    Registered {
        broker_epoch: i64,
    },
    Heartbeat {
        fenced: bool,
        shut_down: bool,
    },
    /// AlterPartition, AlterReassignments: one result per item, in order.
    Partitions(Vec<Result<(), WireError>>),
    /// ElectLeaders: per partition.
    Elections(Vec<((String, i32), Result<(), WireError>)>),
    /// DeleteAcls: per filter, the bindings removed.
    AclsDeleted(Vec<Result<Vec<oxka_controller::acl::AclBinding>, WireError>>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// The command was decided; `offset` is where its records are in the
    /// metadata log (0 when it wrote none), so the caller can wait until
    /// its own image includes them.
    Command {
        result: Result<CommandOutcome, WireError>,
        offset: u64,
    },
    /// Not the active controller; ask `leader` if known.
    NotController {
        leader: Option<i32>,
    },
    Metadata(MetadataChunk),
    Quorum(QuorumDescription),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetadataChunk {
    pub leader: Option<i32>,
    pub commit: u64,
    /// Set when `after` was compacted away: start from this.
    pub snapshot: Option<WireSnapshot>,
    /// (offset, batch) after `after` (or after the snapshot).
    pub entries: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaDescription {
    pub replica_id: i32,
    pub log_end_offset: i64,
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

/// DescribeQuorum's answer for `__cluster_metadata-0` (KIP-595/KIP-836).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuorumDescription {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<ReplicaDescription>,
    pub observers: Vec<ReplicaDescription>,
}

pub fn encode(frame: &Frame) -> Vec<u8> {
    let body = postcard::to_stdvec(frame).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<Frame>> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("controller frame of {len} bytes exceeds {MAX_FRAME_BYTES}"),
        ));
    }
    // grows only as bytes arrive
    let mut body = Vec::with_capacity(len.min(1 << 20));
    let mut take = r.take(len as u64);
    take.read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    postcard::from_bytes(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxka_controller::image::PartitionInfo;

    /// postcard is not self-describing: a `skip_serializing_if` anywhere in
    /// what a frame carries makes the other side fail to decode it.
    #[test]
    fn command_answers_round_trip_through_frames() {
        let topic = TopicInfo {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: vec![PartitionInfo::new(vec![1, 2, 3])],
            configs: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        let frame = Frame::Response {
            id: 7,
            body: Response::Command {
                result: Ok(CommandOutcome::Topics(vec![Ok(topic)])),
                offset: 3,
            },
        };
        let bytes = encode(&frame);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut r = &bytes[..];
        let back = rt.block_on(read_frame(&mut r)).expect("decodes");
        assert_eq!(format!("{back:?}"), format!("{:?}", Some(frame)));
    }
}
