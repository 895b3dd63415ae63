//! DescribeQuorum (API 55, KIP-595 / KIP-836 / KIP-853): the state of
//! `__cluster_metadata-0` as the active controller sees it: leader, epoch,
//! high watermark, and each voter's and observer's log end offset with the
//! times it last fetched and last caught up. A broker forwards the request
//! to the active controller, as Kafka's brokers do.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};

use super::s;
use crate::authorizer::{authorize_cluster, AclOperation};
use crate::quorum::protocol::ReplicaDescription;
use crate::request::RequestContext;
use crate::server::BrokerState;

const METADATA_TOPIC: &str = "__cluster_metadata";

fn replica(r: &ReplicaDescription) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(r.replica_id))
        .with_log_end_offset(r.log_end_offset)
        .with_last_fetch_timestamp(r.last_fetch_timestamp)
        .with_last_caught_up_timestamp(r.last_caught_up_timestamp)
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeQuorumRequest,
) -> Option<DescribeQuorumResponse> {
    // Kafka: DESCRIBE on the cluster
    if !authorize_cluster(state, ctx, AclOperation::Describe) {
        return Some(DescribeQuorumResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
        ));
    }
    let asks_metadata = req.topics.iter().any(|t| {
        t.topic_name.0.as_str() == METADATA_TOPIC
            && t.partitions.iter().any(|p| p.partition_index == 0)
    });
    if !asks_metadata {
        return Some(
            DescribeQuorumResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(s(
                    "DescribeQuorum describes __cluster_metadata-0 only.",
                ))),
        );
    }
    let controller = state.controller.clone();
    let described = tokio::task::spawn_blocking(move || controller.describe_quorum()).await;
    let partition = PartitionData::default().with_partition_index(0);
    let partition = match described {
        Ok(Ok(q)) => partition
            .with_leader_id(BrokerId(q.leader_id))
            .with_leader_epoch(q.leader_epoch)
            .with_high_watermark(q.high_watermark)
            .with_current_voters(q.voters.iter().map(replica).collect())
            .with_observers(q.observers.iter().map(replica).collect()),
        Ok(Err(e)) => partition
            .with_error_code(e.code.code())
            .with_error_message(Some(s(e.message))),
        Err(_) => partition.with_error_code(ResponseError::UnknownServerError.code()),
    };
    // the voters' listeners exist from v2 on (KIP-853)
    let nodes = if ctx.version < 2 {
        Vec::new()
    } else {
        voter_nodes(state)
    };
    Some(
        DescribeQuorumResponse::default()
            .with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(s(METADATA_TOPIC)))
                .with_partitions(vec![partition])])
            .with_nodes(nodes),
    )
}

fn voter_nodes(state: &BrokerState) -> Vec<Node> {
    state
        .config
        .kraft
        .voters
        .iter()
        .map(|v| {
            let name = state
                .config
                .kraft
                .controller_listener_names
                .first()
                .cloned()
                .unwrap_or_else(|| "CONTROLLER".into());
            Node::default()
                .with_node_id(BrokerId(v.id))
                .with_listeners(vec![Listener::default()
                    .with_name(s(name))
                    .with_host(s(v.host.clone()))
                    .with_port(v.port)])
        })
        .collect()
}
