//! ListTransactions (KIP-664): filter by state names, producer ids, the
//! minimum running time (v1) and a transactional-id regex (v2).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::s;
use crate::authorizer::{is_authorized, AclOperation, ResourceType};
use crate::coordinator::txn::TxnState;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ListTransactionsRequest,
) -> Option<ListTransactionsResponse> {
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for f in &req.state_filters {
        match TxnState::from_name(f) {
            Some(st) => states.push(st),
            None => unknown.push(f.clone()),
        }
    }
    let resp = ListTransactionsResponse::default().with_unknown_state_filters(unknown.clone());
    if !unknown.is_empty() && states.is_empty() {
        // only unknown states asked for: nothing can match
        return Some(resp);
    }
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match regex::Regex::new(p) {
            Ok(re) => Some(re),
            Err(_) => {
                return Some(resp.with_error_code(ResponseError::InvalidRegularExpression.code()))
            }
        },
    };
    let pids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    match state
        .txn_coordinator
        .list(&states, &pids, req.duration_filter, pattern.as_ref())
    {
        Ok(list) => Some(
            resp.with_transaction_states(
                list.into_iter()
                    // Kafka: those the principal may DESCRIBE
                    .filter(|t| {
                        is_authorized(
                            state,
                            ctx,
                            AclOperation::Describe,
                            ResourceType::TransactionalId,
                            &t.transactional_id,
                        )
                    })
                    .map(|t| {
                        TransactionState::default()
                            .with_transactional_id(TransactionalId(s(t.transactional_id)))
                            .with_producer_id(ProducerId(t.producer_id))
                            .with_transaction_state(s(t.state.name()))
                    })
                    .collect(),
            ),
        ),
        Err(e) => Some(resp.with_error_code(e.code())),
    }
}
