//! OffsetForLeaderEpoch (API 23): the end offset of a leader epoch in this
//! leader's log: the start of the next larger epoch, or the log end for
//! the current one (KIP-101, KIP-279). Followers used it to find where to
//! truncate before Fetch carried diverging epochs; consumers use it after
//! a leader change to check that their position still exists (KIP-320).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use oxka_log::TopicPartition;

use crate::authorizer::{authorize, authorize_cluster, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: OffsetForLeaderEpochRequest,
) -> Option<OffsetForLeaderEpochResponse> {
    let image = state.controller.image();
    // Kafka: a follower (replica_id >= 0) needs CLUSTER_ACTION on the
    // cluster, a client DESCRIBE on each topic
    let follower_denied =
        req.replica_id.0 >= 0 && !authorize_cluster(state, ctx, AclOperation::ClusterAction);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let denied = follower_denied
                || (req.replica_id.0 < 0
                    && !authorize(
                        state,
                        ctx,
                        AclOperation::Describe,
                        ResourceType::Topic,
                        t.topic.0.as_str(),
                    ));
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(t.topic.0.to_string(), p.partition);
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if denied {
                        return base
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let known = image
                        .topic(&tp.topic)
                        .is_some_and(|i| (0..i.partitions.len() as i32).contains(&tp.partition));
                    if !known {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    let partition = match state.replica_manager.leader_partition(&tp) {
                        Ok(part) => part,
                        Err(e) => return base.with_error_code(e.error.code()),
                    };
                    if let Err(code) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return base.with_error_code(code.code());
                    }
                    let found = partition.log.lock().end_offset_for_epoch(p.leader_epoch);
                    match found {
                        Some((epoch, end)) => base.with_leader_epoch(epoch).with_end_offset(end),
                        None => base,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
