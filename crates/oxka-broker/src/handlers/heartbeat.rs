//! Heartbeat: keeps a member's session alive and tells it to rejoin when a
//! rebalance is under way.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::code;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: HeartbeatRequest,
) -> Option<HeartbeatResponse> {
    // Kafka: READ on the group
    if !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        req.group_id.0.as_str(),
    ) {
        return Some(HeartbeatResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let e = state.group_coordinator.heartbeat(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    Some(HeartbeatResponse::default().with_error_code(code(e)))
}
