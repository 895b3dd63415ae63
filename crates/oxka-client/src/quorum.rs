//! The metadata quorum as DescribeQuorum (API 55, KIP-595) describes it:
//! the Raft leader of `__cluster_metadata`, its epoch and high watermark,
//! and how far each voter and observer has replicated the log.
//!
//! Versions: v1 adds each replica's last fetch and last caught-up times
//! (KIP-836), v2 the replicas' directory ids and the voters' endpoints
//! (KIP-853). Fields a version lacks come back as `None`.

use std::collections::BTreeMap;

use kafka_protocol::messages::{describe_quorum_request, DescribeQuorumRequest};
use kafka_protocol::messages::{describe_quorum_response, DescribeQuorumResponse};
use uuid::Uuid;

use crate::error::{check, Error, Result};
use crate::tn;

/// The topic the quorum replicates (Kafka's `Topic.CLUSTER_METADATA_TOPIC_NAME`).
pub const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// The quorum's state as its leader reports it (Kafka's `QuorumInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// -1 while no leader is known.
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    /// The voters, the leader among them.
    pub voters: Vec<ReplicaState>,
    /// Replicas that fetch the log without voting (brokers).
    pub observers: Vec<ReplicaState>,
    /// The voters' listeners by node id (v2; empty before).
    pub nodes: BTreeMap<i32, Vec<RaftEndpoint>>,
}

/// How far one replica has replicated the metadata log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub replica_id: i32,
    /// The replica's metadata log dir id (v2, KIP-853); `None` when the
    /// broker does not know it (static voters report the zero id).
    pub directory_id: Option<Uuid>,
    pub log_end_offset: i64,
    /// When the leader last received a fetch from it, ms since the epoch
    /// (v1, KIP-836; `None` when unknown).
    pub last_fetch_timestamp: Option<i64>,
    /// When it was last caught up with the leader's log end offset, ms
    /// since the epoch (v1, KIP-836; `None` when unknown).
    pub last_caught_up_timestamp: Option<i64>,
}

/// One listener of a voter (v2, KIP-853), shown as Kafka's tools show it:
/// `CONTROLLER://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for RaftEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.listener, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.listener, self.host, self.port)
        }
    }
}

impl QuorumInfo {
    /// The leader's own state, when the leader is among the voters.
    pub fn leader(&self) -> Option<&ReplicaState> {
        self.voters.iter().find(|v| v.replica_id == self.leader_id)
    }

    /// How far each replica is behind the leader's log end offset (0 when
    /// the leader is unknown), as `kafka-metadata-quorum describe
    /// --replication` computes its Lag column.
    pub fn lag(&self, replica: &ReplicaState) -> i64 {
        self.leader()
            .map_or(0, |l| l.log_end_offset - replica.log_end_offset)
    }

    /// The largest lag of any voter behind the leader, and how long that
    /// voter has been behind (the leader's last caught-up time minus its
    /// own; -1 when a time is unknown): the MaxFollowerLag and
    /// MaxFollowerLagTimeMs of `kafka-metadata-quorum describe --status`
    /// (Kafka's `MetadataQuorumCommand`).
    pub fn max_follower_lag(&self) -> (i64, i64) {
        let Some(leader) = self.leader() else {
            return (0, -1);
        };
        let Some(slowest) = self.voters.iter().min_by_key(|v| v.log_end_offset) else {
            return (0, -1);
        };
        let lag = leader.log_end_offset - slowest.log_end_offset;
        if slowest.replica_id == leader.replica_id {
            return (lag, 0);
        }
        let lag_ms = match (
            leader.last_caught_up_timestamp,
            slowest.last_caught_up_timestamp,
        ) {
            (Some(l), Some(s)) => l - s,
            _ => -1,
        };
        (lag, lag_ms)
    }
}

/// The request for the metadata log's only partition.
pub(crate) fn request() -> DescribeQuorumRequest {
    let mut partition = describe_quorum_request::PartitionData::default();
    partition.partition_index = 0;
    let mut topic = describe_quorum_request::TopicData::default();
    topic.topic_name = tn(CLUSTER_METADATA_TOPIC);
    topic.partitions.push(partition);
    let mut req = DescribeQuorumRequest::default();
    req.topics.push(topic);
    req
}

/// Checks the answer as Java's admin client does (one topic, the metadata
/// log; one partition, 0; no error) and converts it.
pub(crate) fn from_response(resp: DescribeQuorumResponse) -> Result<QuorumInfo> {
    let what = || "describing the metadata quorum".to_string();
    check(resp.error_code, resp.error_message.as_ref(), what)?;
    let mut topics = resp.topics.into_iter();
    let topic = match (topics.next(), topics.next()) {
        (Some(t), None) if t.topic_name.0.as_str() == CLUSTER_METADATA_TOPIC => t,
        _ => {
            return Err(Error::Protocol(format!(
                "DescribeQuorum answered without exactly one topic `{CLUSTER_METADATA_TOPIC}`"
            )))
        }
    };
    let mut partitions = topic.partitions.into_iter();
    let p = match (partitions.next(), partitions.next()) {
        (Some(p), None) if p.partition_index == 0 => p,
        _ => {
            return Err(Error::Protocol(format!(
                "DescribeQuorum answered without exactly partition 0 of `{CLUSTER_METADATA_TOPIC}`"
            )))
        }
    };
    check(p.error_code, p.error_message.as_ref(), what)?;
    let nodes = resp
        .nodes
        .into_iter()
        .map(|n| {
            let endpoints = n
                .listeners
                .into_iter()
                .map(|l| RaftEndpoint {
                    listener: l.name.to_string(),
                    host: l.host.to_string(),
                    port: l.port,
                })
                .collect();
            (n.node_id.0, endpoints)
        })
        .collect();
    Ok(QuorumInfo {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters: p.current_voters.into_iter().map(replica_state).collect(),
        observers: p.observers.into_iter().map(replica_state).collect(),
        nodes,
    })
}

fn replica_state(r: describe_quorum_response::ReplicaState) -> ReplicaState {
    // -1 is the protocol's "unknown" for both times (and their default
    // when v0 leaves them out).
    let known = |t: i64| (t >= 0).then_some(t);
    ReplicaState {
        replica_id: r.replica_id.0,
        directory_id: (!r.replica_directory_id.is_nil()).then_some(r.replica_directory_id),
        log_end_offset: r.log_end_offset,
        last_fetch_timestamp: known(r.last_fetch_timestamp),
        last_caught_up_timestamp: known(r.last_caught_up_timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::BrokerId;

    fn replica(id: i32, leo: i64, caught_up: i64) -> describe_quorum_response::ReplicaState {
        let mut r = describe_quorum_response::ReplicaState::default();
        r.replica_id = BrokerId(id);
        r.log_end_offset = leo;
        r.last_fetch_timestamp = caught_up;
        r.last_caught_up_timestamp = caught_up;
        r
    }

    fn response(voters: Vec<describe_quorum_response::ReplicaState>) -> DescribeQuorumResponse {
        let mut p = describe_quorum_response::PartitionData::default();
        p.leader_id = BrokerId(2);
        p.leader_epoch = 5;
        p.high_watermark = 100;
        p.current_voters = voters;
        p.observers = vec![replica(7, 90, -1)];
        let mut t = describe_quorum_response::TopicData::default();
        t.topic_name = tn(CLUSTER_METADATA_TOPIC);
        t.partitions.push(p);
        let mut resp = DescribeQuorumResponse::default();
        resp.topics.push(t);
        resp
    }

    #[test]
    fn lags_as_kafkas_tool_computes_them() {
        let q = from_response(response(vec![
            replica(1, 98, 1_000),
            replica(2, 104, 1_500),
            replica(3, 101, 1_200),
        ]))
        .unwrap();
        assert_eq!(q.leader().map(|l| l.replica_id), Some(2));
        assert_eq!(q.max_follower_lag(), (6, 500));
        assert_eq!(q.lag(&q.voters[2]), 3);
        assert_eq!(q.lag(&q.observers[0]), 14);
        assert_eq!(q.observers[0].last_fetch_timestamp, None);
        assert_eq!(q.voters[0].directory_id, None);
    }

    #[test]
    fn a_caught_up_quorum_has_no_lag() {
        let q = from_response(response(vec![
            replica(2, 104, 1_500),
            replica(1, 104, 1_499),
        ]))
        .unwrap();
        // The first voter with the smallest log end offset is the leader.
        assert_eq!(q.max_follower_lag(), (0, 0));
    }

    #[test]
    fn errors_and_malformed_answers_are_refused() {
        let mut resp = response(vec![]);
        resp.topics[0].partitions[0].error_code = 6;
        let e = from_response(resp).unwrap_err();
        assert_eq!(e.kafka_code().map(|c| c.0), Some(6), "{e}");

        let mut resp = response(vec![]);
        resp.error_code = 41; // NOT_CONTROLLER
        assert!(from_response(resp).is_err());

        let mut resp = response(vec![]);
        resp.topics[0].topic_name = tn("other");
        assert!(matches!(from_response(resp), Err(Error::Protocol(_))));

        let mut resp = response(vec![]);
        resp.topics[0].partitions[0].partition_index = 1;
        assert!(matches!(from_response(resp), Err(Error::Protocol(_))));
    }
}
