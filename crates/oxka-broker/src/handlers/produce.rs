//! Produce: validate and append each partition's record batches as leader;
//! records refused one by one are named in `record_errors` (KIP-467).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use oxka_log::TopicPartition;

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::{now_ms, BrokerState};

fn partition_error(index: i32, code: ResponseError, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(s(message)))
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    // KIP-890 verification asks this transactional id's coordinator
    let transactional_id = req.transactional_id.as_ref().map(|t| t.0.to_string());
    let acks_valid = matches!(acks, -1..=1);
    // Kafka: WRITE on the transactional id for transactional data, else
    // every partition fails; WRITE on each topic.
    let txn_denied = transactional_id.as_deref().is_some_and(|id| {
        !authorize(
            state,
            ctx,
            AclOperation::Write,
            ResourceType::TransactionalId,
            id,
        )
    });
    let image = state.controller.image();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut waits: Vec<Waiting> = Vec::new();
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
    for topic in req.topic_data {
        // v13+ (KIP-516) names topics by id only.
        let info = if ctx.version >= 13 {
            image.topic_by_id(&topic.topic_id)
        } else {
            image.topic(topic.name.0.as_str())
        };
        let name = info
            .map(|t| t.name.clone())
            .unwrap_or_else(|| topic.name.0.to_string());
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        let topic_denied = !txn_denied
            && (info.is_some() || ctx.version < 13)
            && !authorize(state, ctx, AclOperation::Write, ResourceType::Topic, &name);
        for p in topic.partition_data {
            let resp = if txn_denied {
                partition_error(
                    p.index,
                    ResponseError::TransactionalIdAuthorizationFailed,
                    String::new(),
                )
            } else if topic_denied {
                partition_error(
                    p.index,
                    ResponseError::TopicAuthorizationFailed,
                    String::new(),
                )
            } else if !acks_valid {
                partition_error(
                    p.index,
                    ResponseError::InvalidRequiredAcks,
                    format!("Invalid required acks {acks}"),
                )
            } else if info.is_none() {
                let code = if ctx.version >= 13 {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                partition_error(p.index, code, format!("Unknown topic {name}"))
            } else if info.is_some_and(|t| !(0..t.partitions.len() as i32).contains(&p.index)) {
                partition_error(
                    p.index,
                    ResponseError::UnknownTopicOrPartition,
                    format!("Unknown partition {name}-{}", p.index),
                )
            } else if info.is_some_and(|t| t.is_internal()) {
                // Only the coordinators write their topics (Kafka's
                // ReplicaManager refuses clients' appends to them): a
                // client's record there would corrupt group or
                // transaction state that is replayed at every start.
                partition_error(
                    p.index,
                    ResponseError::InvalidTopicException,
                    format!("Cannot append to internal topic {name}"),
                )
            } else {
                match p.records {
                    None => {
                        partition_error(p.index, ResponseError::CorruptMessage, "No records".into())
                    }
                    Some(records) => {
                        let tp = TopicPartition::new(name.clone(), p.index);
                        // KIP-890: transactional data only into the
                        // producer's open transaction (v12+ adds to it)
                        // led by another broker: NOT_LEADER_OR_FOLLOWER, and
                        // the client refreshes its metadata and goes there
                        let appended =
                            state
                                .replica_manager
                                .leader_partition(&tp)
                                .and_then(|part| {
                                    let epoch = part.leader_epoch();
                                    state
                                        .txn_coordinator
                                        .verify_transactional_produce(
                                            transactional_id.as_deref(),
                                            &tp,
                                            &records,
                                            ctx.version,
                                        )
                                        .map_err(|e| {
                                            crate::replica_manager::AppendError::new(
                                                e.error, e.message,
                                            )
                                        })?;
                                    let len = records.len() as u64;
                                    let info = state
                                        .replica_manager
                                        .append_records(&part, records, acks, now_ms())
                                        .inspect_err(|e| {
                                            part.stats.produce_failed(
                                                records_refused(e.error).then_some(len),
                                            )
                                        })?;
                                    part.stats
                                        .produced(info.num_records, info.valid_bytes as u64);
                                    Ok((info, part, epoch))
                                });
                        match appended {
                            Ok((info, part, epoch)) => {
                                if acks == -1 {
                                    waits.push(Waiting {
                                        topic: responses.len(),
                                        partition: partitions.len(),
                                        part: part.clone(),
                                        epoch,
                                        offset: info.last_offset + 1,
                                    });
                                }
                                PartitionProduceResponse::default()
                                    .with_index(p.index)
                                    .with_base_offset(info.first_offset)
                                    .with_log_append_time_ms(info.log_append_time)
                                    .with_log_start_offset(part.log_start_offset())
                            }
                            Err(e) => {
                                tracing::debug!(partition = %tp, error = %e.message, "produce rejected");
                                // KIP-467 (v8+): the refused records by
                                // index, so that the client fails exactly
                                // those (the codec drops them before v8)
                                let record_errors = e
                                    .record_errors
                                    .into_iter()
                                    .map(|r| {
                                        BatchIndexAndErrorMessage::default()
                                            .with_batch_index(r.batch_index)
                                            .with_batch_index_error_message(Some(s(r.message)))
                                    })
                                    .collect();
                                partition_error(p.index, e.error, e.message)
                                    .with_record_errors(record_errors)
                            }
                        }
                    }
                }
            };
            partitions.push(resp);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(s(name)))
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if !waits.is_empty() {
        // acks=all: parked until the ISR has the records (Kafka's
        // DelayedProduce); the slot is for requests being worked on
        ctx.slot.release();
        for w in waits {
            let done = state
                .replica_manager
                .wait_for_high_watermark(&w.part, w.epoch, w.offset, deadline)
                .await;
            if let Err(code) = done {
                let index = responses[w.topic].partition_responses[w.partition].index;
                responses[w.topic].partition_responses[w.partition] = partition_error(
                    index,
                    code,
                    format!(
                        "{code:?} while waiting for the in-sync replicas of {}",
                        w.part.tp
                    ),
                );
            }
        }
    }
    for p in responses.iter().flat_map(|t| t.partition_responses.iter()) {
        state.metrics.requests.error(ctx.api_key, p.error_code);
    }
    // acks=0 is answered (or the connection closed) by the dispatcher
    Some(ProduceResponse::default().with_responses(responses))
}

/// The append refused the records themselves (Kafka's BytesRejectedPerSec
/// counts these bytes), not the partition's state.
fn records_refused(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::CorruptMessage
            | ResponseError::MessageTooLarge
            | ResponseError::RecordListTooLarge
            | ResponseError::InvalidRecord
            | ResponseError::InvalidTimestamp
    )
}

/// An acks=all append waiting for its high watermark.
struct Waiting {
    topic: usize,
    partition: usize,
    part: std::sync::Arc<crate::replica_manager::Partition>,
    epoch: i32,
    offset: i64,
}
