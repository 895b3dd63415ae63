//! DescribeTransactions: state, timeout, start time, producer id/epoch and
//! partitions of each transactional id (those of topics the caller may
//! describe, as Kafka).

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeTransactionsRequest,
) -> Option<DescribeTransactionsResponse> {
    let states = req
        .transactional_ids
        .iter()
        .map(|id| {
            let base = TransactionState::default()
                .with_transactional_id(id.clone())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            // Kafka: DESCRIBE on the transactional id
            if !authorize(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::TransactionalId,
                &id.0,
            ) {
                return base.with_error_code(
                    kafka_protocol::error::ResponseError::TransactionalIdAuthorizationFailed.code(),
                );
            }
            match state.txn_coordinator.describe(&id.0) {
                Err(e) => base.with_error_code(e.code()),
                Ok(m) => base
                    .with_transaction_state(s(m.state.name()))
                    .with_transaction_timeout_ms(m.timeout_ms)
                    .with_transaction_start_time_ms(m.start_ms)
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.producer_epoch)
                    .with_topics(
                        m.topics()
                            .into_iter()
                            // Kafka: only the topics the caller may describe
                            .filter(|(t, _)| {
                                authorize(
                                    state,
                                    ctx,
                                    AclOperation::Describe,
                                    ResourceType::Topic,
                                    t,
                                )
                            })
                            .map(|(t, ps)| {
                                TopicData::default()
                                    .with_topic(TopicName(s(t)))
                                    .with_partitions(ps)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    Some(DescribeTransactionsResponse::default().with_transaction_states(states))
}
