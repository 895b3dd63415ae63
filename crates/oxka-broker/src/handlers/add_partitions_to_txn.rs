//! AddPartitionsToTxn: partitions join a producer's transaction. v0–3 carry
//! one transaction (from clients, transaction versions 0/1); v4+ batch
//! several and come from brokers: `verify_only` checks membership (KIP-890
//! part 1), otherwise the partitions are added for a transaction version 2
//! client (part 2), as Kafka's coordinator reads the version.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};
use oxka_log::TopicPartition;

use crate::authorizer::{authorize, authorize_cluster, AclOperation, ResourceType};
use crate::coordinator::txn::{FIRST_TV2_ADD_PARTITIONS_VERSION, TV_0, TV_2};
use crate::request::RequestContext;
use crate::server::BrokerState;

/// Adds (or verifies) one transaction's partitions; unknown partitions fail
/// alone and the others answer OPERATION_NOT_ATTEMPTED, as Kafka does.
async fn add(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let version = ctx.version;
    let image = state.controller.image();
    let known = |t: &str, p: i32| {
        image
            .topic(t)
            .is_some_and(|i| p >= 0 && (p as usize) < i.partitions.len())
    };
    let any_unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|&p| !known(&t.name.0, p)));
    // Kafka, for clients (v3 and below; brokers' batched form is checked
    // for CLUSTER_ACTION by the caller): WRITE on the transactional id,
    // else every partition fails; WRITE on each topic, else its
    // partitions fail and the others are not attempted
    let client = version < FIRST_TV2_ADD_PARTITIONS_VERSION;
    let txn_denied = client
        && !authorize(
            state,
            ctx,
            AclOperation::Write,
            ResourceType::TransactionalId,
            transactional_id,
        );
    let topic_denied: Vec<bool> = topics
        .iter()
        .map(|t| {
            client
                && !txn_denied
                && !authorize(
                    state,
                    ctx,
                    AclOperation::Write,
                    ResourceType::Topic,
                    &t.name.0,
                )
        })
        .collect();
    let any_denied = txn_denied || topic_denied.contains(&true);
    let tps: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.name.0.to_string(), p))
        })
        .collect();
    let tv = if version >= FIRST_TV2_ADD_PARTITIONS_VERSION {
        TV_2
    } else {
        TV_0
    };
    // one outcome per partition, in request order
    let outcome: Vec<Option<ResponseError>> = if txn_denied {
        vec![Some(ResponseError::TransactionalIdAuthorizationFailed); tps.len()]
    } else if any_unknown || any_denied {
        vec![Some(ResponseError::OperationNotAttempted); tps.len()]
    } else if verify_only {
        state
            .txn_coordinator
            .verify_partitions(transactional_id, producer_id, producer_epoch, &tps)
            .unwrap_or_else(|e| vec![Some(e); tps.len()])
    } else {
        let e = match state.txn_coordinator.add_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            &tps,
            tv,
        ) {
            // the partitions joined once that is replicated
            Ok(()) => state
                .txn_coordinator
                .replicated(transactional_id)
                .await
                .err(),
            Err(e) => Some(e),
        };
        vec![e; tps.len()]
    };
    let mut outcome = outcome.into_iter();
    topics
        .iter()
        .zip(topic_denied)
        .map(|(t, denied)| {
            let results = t
                .partitions
                .iter()
                .map(|&p| {
                    let e = outcome.next().flatten();
                    let code = if denied {
                        ResponseError::TopicAuthorizationFailed.code()
                    } else if txn_denied {
                        ResponseError::TransactionalIdAuthorizationFailed.code()
                    } else if !known(&t.name.0, p) {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        e.map_or(0, |e| {
                            super::txn_error_code(e, ApiKey::AddPartitionsToTxn, version)
                        })
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
    if ctx.version < FIRST_TV2_ADD_PARTITIONS_VERSION {
        let results = add(
            state,
            ctx,
            &req.v3_and_below_transactional_id.0,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &req.v3_and_below_topics,
            false,
        )
        .await;
        return Some(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
        );
    }
    // v4+ is sent by brokers (KIP-890): CLUSTER_ACTION on the cluster
    if !authorize_cluster(state, ctx, AclOperation::ClusterAction) {
        return Some(
            AddPartitionsToTxnResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let topic_results = add(
            state,
            ctx,
            &t.transactional_id.0,
            t.producer_id.0,
            t.producer_epoch,
            &t.topics,
            t.verify_only,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topic_results),
        );
    }
    Some(AddPartitionsToTxnResponse::default().with_results_by_transaction(results))
}
