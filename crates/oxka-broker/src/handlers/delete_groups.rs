//! DeleteGroups: only empty groups; their offsets and metadata are
//! tombstoned in `__consumer_offsets`.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::code;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DeleteGroupsRequest,
) -> Option<DeleteGroupsResponse> {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for g in &req.groups_names {
        // Kafka: DELETE on the group
        if !authorize(
            state,
            ctx,
            AclOperation::Delete,
            ResourceType::Group,
            g.0.as_str(),
        ) {
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
                    .with_error_code(
                        kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
                    ),
            );
            continue;
        }
        let e = match state.group_coordinator.delete_group(g) {
            None => state.group_coordinator.replicated(g).await.err(),
            e => e,
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(g.clone())
                .with_error_code(code(e)),
        );
    }
    Some(DeleteGroupsResponse::default().with_results(results))
}
