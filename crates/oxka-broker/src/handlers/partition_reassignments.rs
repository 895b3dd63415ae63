//! AlterPartitionReassignments (API 45) and ListPartitionReassignments
//! (API 46), KIP-455: a partition's replicas move to a target list by
//! adding the new replicas, waiting until they are in the ISR, then
//! removing the old ones (moving leadership first if the leader goes).
//! The controller decides; any broker answers the listing from its image.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use super::s;
use crate::authorizer::{authorize_cluster, AclOperation};
use crate::controller::decide::list_reassignments;
use crate::quorum::protocol::{Command, CommandOutcome};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn alter(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: AlterPartitionReassignmentsRequest,
) -> Option<AlterPartitionReassignmentsResponse> {
    // Kafka: ALTER on the cluster
    if !authorize_cluster(state, ctx, AclOperation::Alter) {
        return Some(
            AlterPartitionReassignmentsResponse::default().with_error_code(
                kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
            ),
        );
    }
    let items: Vec<(String, i32, Option<Vec<i32>>)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                )
            })
        })
        .collect();
    // v0 predates KIP-860: it may change the replication factor
    let allow_rf_change = ctx.version == 0 || req.allow_replication_factor_change;
    let cmd = Command::AlterReassignments {
        items: items.clone(),
        allow_rf_change,
    };
    let timeout = crate::controller::request_timeout(req.timeout_ms);
    let results: Vec<(i16, Option<String>)> = match state.controller.submit(cmd, timeout) {
        Ok(CommandOutcome::Partitions(r)) if r.len() == items.len() => r
            .into_iter()
            .map(|r| match r {
                Ok(()) => (0, None),
                Err(e) => (e.code, Some(e.message)),
            })
            .collect(),
        Ok(_) => {
            return Some(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(ResponseError::UnknownServerError.code()),
            )
        }
        Err(e) => {
            return Some(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(e.code.code())
                    .with_error_message(Some(s(e.message))),
            )
        }
    };
    let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
    for ((topic, partition, _), (code, message)) in items.into_iter().zip(results) {
        let pr = ReassignablePartitionResponse::default()
            .with_partition_index(partition)
            .with_error_code(code)
            .with_error_message(message.map(s));
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(pr),
            None => topics.push(
                ReassignableTopicResponse::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![pr]),
            ),
        }
    }
    Some(
        AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(allow_rf_change)
            .with_responses(topics),
    )
}

pub async fn list(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ListPartitionReassignmentsRequest,
) -> Option<ListPartitionReassignmentsResponse> {
    // Kafka: DESCRIBE on the cluster
    if !authorize_cluster(state, ctx, AclOperation::Describe) {
        return Some(
            ListPartitionReassignmentsResponse::default().with_error_code(
                kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
            ),
        );
    }
    let image = state.controller.image();
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let ongoing = list_reassignments(&image, wanted.as_deref());
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect::<Vec<_>>();
    for o in ongoing {
        let pr = OngoingPartitionReassignment::default()
            .with_partition_index(o.partition)
            .with_replicas(ids(o.replicas))
            .with_adding_replicas(ids(o.adding))
            .with_removing_replicas(ids(o.removing));
        let topic = o.topic;
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(pr),
            None => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![pr]),
            ),
        }
    }
    Some(ListPartitionReassignmentsResponse::default().with_topics(topics))
}
