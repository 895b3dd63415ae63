//! OffsetDelete (KIP-496): removes committed offsets of topics the group is
//! not subscribed to.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::s;
use crate::coordinator::group::code;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext<'_>,
    req: OffsetDeleteRequest,
) -> Option<OffsetDeleteResponse> {
    let topics = req
        .topics
        .iter()
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
