//! AddPartitionsToTxn: partitions join a producer's transaction. v0–3 carry
//! one transaction (from clients); v4+ batch several and may only verify
//! membership (`verify_only`, KIP-890, sent by brokers).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use oxka_log::TopicPartition;

use crate::request::RequestContext;
use crate::server::BrokerState;

/// Adds one transaction's partitions; unknown partitions fail alone and the
/// others answer OPERATION_NOT_ATTEMPTED, as Kafka does.
fn add(
    state: &BrokerState,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let image = state.controller.image();
    let known = |t: &str, p: i32| {
        image
            .topic(t)
            .is_some_and(|i| p >= 0 && (p as usize) < i.partitions.len())
    };
    let any_unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|&p| !known(&t.name.0, p)));
    let outcome: Result<(), ResponseError> = if any_unknown {
        Err(ResponseError::OperationNotAttempted)
    } else {
        let tps: Vec<TopicPartition> = topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|&p| TopicPartition::new(t.name.0.to_string(), p))
            })
            .collect();
        state.txn_coordinator.add_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            &tps,
            verify_only,
        )
    };
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = if !known(&t.name.0, p) {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        outcome.err().map_or(0, |e| e.code())
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: AddPartitionsToTxnRequest,
) -> Option<AddPartitionsToTxnResponse> {
    if ctx.version <= 3 {
        let results = add(
            state,
            &req.v3_and_below_transactional_id.0,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &req.v3_and_below_topics,
            false,
        );
        return Some(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
        );
    }
    let results = req
        .transactions
        .iter()
        .map(|t| {
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(add(
                    state,
                    &t.transactional_id.0,
                    t.producer_id.0,
                    t.producer_epoch,
                    &t.topics,
                    t.verify_only,
                ))
        })
        .collect();
    Some(AddPartitionsToTxnResponse::default().with_results_by_transaction(results))
}
