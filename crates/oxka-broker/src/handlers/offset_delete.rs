//! OffsetDelete (KIP-496): removes committed offsets of topics the group is
//! not subscribed to.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::code;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: OffsetDeleteRequest,
) -> Option<OffsetDeleteResponse> {
    // Kafka: DELETE on the group; READ on each topic (the others' offsets
    // are kept and their partitions fail)
    if !authorize(
        state,
        ctx,
        AclOperation::Delete,
        ResourceType::Group,
        req.group_id.0.as_str(),
    ) {
        return Some(OffsetDeleteResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let denied: Vec<_> = req
        .topics
        .iter()
        .filter(|t| {
            !authorize(
                state,
                ctx,
                AclOperation::Read,
                ResourceType::Topic,
                t.name.0.as_str(),
            )
        })
        .collect();
    let topics = req
        .topics
        .iter()
        .filter(|t| !denied.iter().any(|d| d.name == t.name))
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let deleted = match state
        .group_coordinator
        .delete_offsets(&req.group_id, topics)
    {
        Ok(r) => state
            .group_coordinator
            .replicated(&req.group_id)
            .await
            .map(|()| r),
        Err(e) => Err(e),
    };
    match deleted {
        Err(e) => Some(OffsetDeleteResponse::default().with_error_code(e.code())),
        Ok(res) => Some(
            OffsetDeleteResponse::default().with_topics(
                res.into_iter()
                    .chain(denied.iter().map(|t| {
                        let failed =
                            Some(kafka_protocol::error::ResponseError::TopicAuthorizationFailed);
                        (
                            t.name.to_string(),
                            t.partitions
                                .iter()
                                .map(|p| (p.partition_index, failed))
                                .collect(),
                        )
                    }))
                    .map(|(t, ps)| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, e)| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(code(e))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
    }
}
