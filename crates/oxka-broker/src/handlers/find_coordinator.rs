//! FindCoordinator: this broker coordinates every group and every
//! transactional id (one node). v4+ batches keys.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{advertised_endpoint, s};
use crate::request::RequestContext;
use crate::server::BrokerState;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: FindCoordinatorRequest,
) -> Option<FindCoordinatorResponse> {
    let (host, port) = advertised_endpoint(state, ctx.conn);
    let node_id = state.config.node_id;
    let lookup = |key: &StrBytes| -> (Option<ResponseError>, String) {
        match req.key_type {
            KEY_TYPE_GROUP => {
                if key.is_empty() {
                    return (
                        Some(ResponseError::InvalidRequest),
                        "The group id must not be empty.".into(),
                    );
                }
                match state.group_coordinator.ensure_offsets_topic() {
                    Ok(_) => (None, String::new()),
                    Err(e) => (Some(e), "The coordinator is not available.".into()),
                }
            }
            KEY_TYPE_TRANSACTION => {
                if key.is_empty() {
                    return (
                        Some(ResponseError::InvalidRequest),
                        "The transactional id must not be empty.".into(),
                    );
                }
                match state.txn_coordinator.ensure_topic() {
                    Ok(_) => (None, String::new()),
                    Err(e) => (Some(e), "The coordinator is not available.".into()),
                }
            }
            other => (
                Some(ResponseError::InvalidRequest),
                format!("Unknown coordinator key type {other}."),
            ),
        }
    };
    if ctx.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let (err, msg) = lookup(key);
                let c = Coordinator::default().with_key(key.clone());
                match err {
                    None => c
                        .with_node_id(BrokerId(node_id))
                        .with_host(s(host.clone()))
                        .with_port(port),
                    Some(e) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(s(msg))),
                }
            })
            .collect();
        return Some(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let (err, msg) = lookup(&req.key);
    let mut resp = FindCoordinatorResponse::default();
    match err {
        None => {
            resp = resp
                .with_node_id(BrokerId(node_id))
                .with_host(s(host))
                .with_port(port);
        }
        Some(e) => {
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
