//! What the console shows, as plain data: the broker fills these in
//! through [`crate::ConsoleSource`]; the pages only render them.

use serde::Serialize;

/// The cluster as this node sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterOverview {
    pub cluster_id: String,
    /// The node serving the console.
    pub node_id: i32,
    /// The active controller, when known.
    pub controller_id: Option<i32>,
    pub brokers: usize,
    pub live_brokers: usize,
    pub topics: usize,
    pub partitions: usize,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: usize,
    /// Partitions without a live leader.
    pub offline: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BrokerRow {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub fenced: bool,
    pub is_controller: bool,
    pub is_this_node: bool,
}

/// A config as DescribeConfigs reports it (Kafka's source names).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigRow {
    pub name: String,
    pub value: Option<String>,
    pub source: String,
    pub sensitive: bool,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TopicRow {
    pub name: String,
    pub internal: bool,
    pub partitions: usize,
    pub replication_factor: i16,
    /// Bytes of the partitions stored on this node.
    pub size_here: u64,
    pub under_replicated: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionRow {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub start_offset: Option<i64>,
    /// The high watermark.
    pub end_offset: Option<i64>,
    /// Bytes of the replica on this node, if it has one.
    pub size_here: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TopicDetail {
    pub name: String,
    pub id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionRow>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupRow {
    pub group_id: String,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: String,
    pub state: String,
    /// The node coordinating the group.
    pub coordinator: i32,
    /// Members, committed partitions and lag are known for the groups
    /// this node coordinates; `None` for the others.
    pub members: Option<usize>,
    pub partitions: Option<usize>,
    pub total_lag: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemberRow {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Assigned partitions by topic.
    pub assignment: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LagRow {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    pub end_offset: Option<i64>,
    pub lag: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub member_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupDetail {
    pub group_id: String,
    pub group_type: String,
    pub state: String,
    pub members: Vec<MemberRow>,
    pub lags: Vec<LagRow>,
}

impl GroupDetail {
    pub fn total_lag(&self) -> i64 {
        self.lags.iter().filter_map(|l| l.lag).sum()
    }
}

/// Where the message browser starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowseFrom {
    /// The last `limit` records of each partition.
    Latest,
    Offset(i64),
    /// Milliseconds since the epoch.
    Timestamp(i64),
}

#[derive(Debug, Clone)]
pub struct BrowseRequest {
    pub topic: String,
    /// `None`: every partition.
    pub partition: Option<i32>,
    pub from: BrowseFrom,
    /// At most this many records (the console caps it at
    /// [`crate::MAX_BROWSE_RECORDS`]).
    pub limit: usize,
}

#[derive(Debug, Clone, Default)]
pub struct BrowsedRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Counters the sampler reads every few seconds; rates are their
/// differences. Counters only ever grow (a decrease, e.g. a restart, is a
/// new start, not a negative rate); `None` when the broker does not count.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Records produced to the partitions this node leads.
    pub messages_in: Option<u64>,
    /// Bytes of records produced to them.
    pub bytes_in: Option<u64>,
    /// Bytes of records fetched by consumers (not followers).
    pub bytes_out: Option<u64>,
    /// Per topic, its records produced here.
    pub topic_messages: Vec<(String, u64)>,
    /// Per group, its total lag.
    pub group_lags: Vec<(String, i64)>,
}

/// A change the console can make when actions are enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateTopic {
        name: String,
        partitions: i32,
        replication_factor: i16,
    },
    AddPartitions {
        topic: String,
        total: i32,
    },
    /// `None` value: delete the override (back to the default).
    SetTopicConfig {
        topic: String,
        key: String,
        value: Option<String>,
    },
    ResetOffsets {
        group: String,
        topic: String,
        to: ResetTo,
    },
    DeleteTopic {
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
}
