//! FindCoordinator: a group's coordinator is the leader of its partition of
//! `__consumer_offsets`, a transactional id's the leader of its partition
//! of `__transaction_state` (both created on first use, as Kafka does).
//! v4+ batches keys.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{live_broker_views, s};
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::offsets::{partition_for, OFFSETS_TOPIC};
use crate::coordinator::txn::TRANSACTION_STATE_TOPIC;
use crate::request::RequestContext;
use crate::server::BrokerState;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: FindCoordinatorRequest,
) -> Option<FindCoordinatorResponse> {
    let brokers = live_broker_views(state, ctx.conn);
    // The leader of `topic`'s partition for `key`, if it is a live broker.
    let leader_of = |topic: &str, key: &StrBytes, partitions: i32| {
        let image = state.controller.image();
        let p = partition_for(key.as_str(), partitions);
        let leader = image
            .topic(topic)
            .and_then(|t| t.partitions.get(p as usize))
            .map(|p| p.leader)?;
        brokers.iter().find(|b| b.id == leader)
    };
    let lookup = |key: &StrBytes| -> Result<&super::BrokerView, (ResponseError, String)> {
        let unavailable = || {
            (
                ResponseError::CoordinatorNotAvailable,
                "The coordinator is not available.".to_string(),
            )
        };
        match req.key_type {
            KEY_TYPE_GROUP => {
                if key.is_empty() {
                    return Err((
                        ResponseError::InvalidRequest,
                        "The group id must not be empty.".into(),
                    ));
                }
                // Kafka: DESCRIBE on the group
                if !authorize(state, ctx, AclOperation::Describe, ResourceType::Group, key) {
                    return Err((ResponseError::GroupAuthorizationFailed, String::new()));
                }
                match state.group_coordinator.ensure_offsets_topic() {
                    Ok(n) => leader_of(OFFSETS_TOPIC, key, n).ok_or_else(unavailable),
                    Err(e) => Err((e, "The coordinator is not available.".into())),
                }
            }
            KEY_TYPE_TRANSACTION => {
                if key.is_empty() {
                    return Err((
                        ResponseError::InvalidRequest,
                        "The transactional id must not be empty.".into(),
                    ));
                }
                // Kafka: DESCRIBE on the transactional id
                if !authorize(
                    state,
                    ctx,
                    AclOperation::Describe,
                    ResourceType::TransactionalId,
                    key,
                ) {
                    return Err((
                        ResponseError::TransactionalIdAuthorizationFailed,
                        String::new(),
                    ));
                }
                match state.txn_coordinator.ensure_topic() {
                    Ok(n) => leader_of(TRANSACTION_STATE_TOPIC, key, n).ok_or_else(unavailable),
                    Err(e) => Err((e, "The coordinator is not available.".into())),
                }
            }
            other => Err((
                ResponseError::InvalidRequest,
                format!("Unknown coordinator key type {other}."),
            )),
        }
    };
    if ctx.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match lookup(key) {
                    Ok(b) => c
                        .with_node_id(BrokerId(b.id))
                        .with_host(s(b.host.clone()))
                        .with_port(b.port),
                    Err((e, msg)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(s(msg))),
                }
            })
            .collect();
        return Some(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let mut resp = FindCoordinatorResponse::default();
    match lookup(&req.key) {
        Ok(b) => {
            resp = resp
                .with_node_id(BrokerId(b.id))
                .with_host(s(b.host.clone()))
                .with_port(b.port);
        }
        Err((e, msg)) => {
            resp = resp
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(e.code());
            if ctx.version >= 1 {
                resp = resp.with_error_message(Some(s(msg)));
            }
        }
    }
    Some(resp)
}
