//! JoinGroup: waits (outside any lock) for the rebalance to complete.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::{code, JoinOutcome, JoinParams, Reply};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: JoinGroupRequest,
) -> Option<JoinGroupResponse> {
    // Kafka: READ on the group
    if !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        req.group_id.0.as_str(),
    ) {
        return Some(JoinGroupResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let params = JoinParams {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.conn.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout
        rebalance_timeout_ms: if ctx.version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: ctx.version >= 4,
    };
    let member_id = params.member_id.clone();
    let outcome = match state.group_coordinator.join(&req.group_id, params) {
        Err(e) => JoinOutcome::error(e, member_id),
        Ok(Reply::Now(o)) => o,
        Ok(Reply::Later(rx)) => {
            // waiting for the group: not a request in progress
            ctx.slot.release();
            let mut shutdown = state.shutdown.clone();
            tokio::select! {
                r = rx => r.unwrap_or_else(|_| JoinOutcome::error(ResponseError::RebalanceInProgress, member_id)),
                _ = shutdown.wait_for(|s| *s) => JoinOutcome::error(ResponseError::NotCoordinator, member_id),
            }
        }
    };
    // a completed rebalance's group metadata is replicated before the
    // members learn their generation
    let outcome = match outcome.error {
        None => match state.group_coordinator.replicated(&req.group_id).await {
            Ok(()) => outcome,
            Err(e) => JoinOutcome::error(e, outcome.member_id),
        },
        Some(_) => outcome,
    };
    Some(response(ctx.version, outcome))
}

fn response(version: i16, o: JoinOutcome) -> JoinGroupResponse {
    let protocol_name = match (&o.protocol_name, version >= 7) {
        (Some(p), _) => Some(s(p.clone())),
        (None, true) => None,
        (None, false) => Some(s("")),
    };
    let mut resp = JoinGroupResponse::default()
        .with_error_code(code(o.error))
        .with_generation_id(o.generation_id)
        .with_protocol_name(protocol_name)
        .with_leader(s(o.leader))
        .with_member_id(s(o.member_id))
        .with_members(
            o.members
                .into_iter()
                .map(|m| {
                    let r = JoinGroupResponseMember::default()
                        .with_member_id(s(m.member_id))
                        .with_metadata(m.metadata);
                    if version >= 5 {
                        r.with_group_instance_id(m.group_instance_id.map(s))
                    } else {
                        r
                    }
                })
                .collect(),
        );
    if version >= 7 {
        resp = resp.with_protocol_type(o.protocol_type.map(s));
    }
    resp
}
