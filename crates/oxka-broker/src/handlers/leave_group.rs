//! LeaveGroup: one member (v0–2) or a batch of identities (v3+, KIP-345).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::code;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: LeaveGroupRequest,
) -> Option<LeaveGroupResponse> {
    // Kafka: READ on the group
    if !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        req.group_id.0.as_str(),
    ) {
        return Some(LeaveGroupResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let results = match state.group_coordinator.leave(&req.group_id, &members) {
        Ok(r) => r,
        Err(e) => return Some(LeaveGroupResponse::default().with_error_code(e.code())),
    };
    if let Err(e) = state.group_coordinator.replicated(&req.group_id).await {
        return Some(LeaveGroupResponse::default().with_error_code(e.code()));
    }
    if ctx.version < 3 {
        let e = results.first().and_then(|(_, e)| *e);
        return Some(LeaveGroupResponse::default().with_error_code(code(e)));
    }
    let out = results
        .into_iter()
        .zip(members)
        .map(|((id, e), (_, instance))| {
            MemberResponse::default()
                .with_member_id(s(id))
                .with_group_instance_id(instance.map(s))
                .with_error_code(code(e))
        })
        .collect();
    Some(LeaveGroupResponse::default().with_members(out))
}
