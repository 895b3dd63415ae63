//! SyncGroup: the leader hands in the assignment; everyone waits for it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::{code, Reply, SyncOutcome};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: SyncGroupRequest,
) -> Option<SyncGroupResponse> {
    // Kafka: READ on the group
    if !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        req.group_id.0.as_str(),
    ) {
        return Some(SyncGroupResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let assignments = req
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let outcome = match state.group_coordinator.sync(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
        req.protocol_type.as_deref(),
        req.protocol_name.as_deref(),
        assignments,
    ) {
        Err(e) => SyncOutcome::error(e),
        Ok(Reply::Now(o)) => o,
        Ok(Reply::Later(rx)) => {
            // waiting for the leader's assignment: not a request in progress
            ctx.slot.release();
            let mut shutdown = state.shutdown.clone();
            tokio::select! {
                r = rx => r.unwrap_or_else(|_| SyncOutcome::error(ResponseError::RebalanceInProgress)),
                _ = shutdown.wait_for(|s| *s) => SyncOutcome::error(ResponseError::NotCoordinator),
            }
        }
    };
    // the group's metadata (the leader's assignment) is replicated before
    // anyone is answered
    let outcome = match outcome.error {
        None => match state.group_coordinator.replicated(&req.group_id).await {
            Ok(()) => outcome,
            Err(e) => SyncOutcome::error(e),
        },
        Some(_) => outcome,
    };
    let mut resp = SyncGroupResponse::default()
        .with_error_code(code(outcome.error))
        .with_assignment(outcome.assignment);
    if ctx.version >= 5 {
        resp = resp
            .with_protocol_type(outcome.protocol_type.map(s))
            .with_protocol_name(outcome.protocol_name.map(s));
    }
    Some(resp)
}
