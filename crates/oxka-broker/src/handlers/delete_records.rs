//! DeleteRecords: moves partitions' log start offsets forward (-1: to the
//! high watermark). Consumers below the new start get OFFSET_OUT_OF_RANGE
//! and reset per their policy. The log-start-offset checkpoint is written
//! before answering, so the deletion survives a crash right after.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use oxka_log::TopicPartition;

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DeleteRecordsRequest,
) -> Option<DeleteRecordsResponse> {
    let image = state.controller.image();
    let mut moved = false;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            // Kafka: DELETE on the topic
            let denied = !authorize(
                state,
                ctx,
                AclOperation::Delete,
                ResourceType::Topic,
                t.name.0.as_str(),
            );
            let count = image.topic(t.name.0.as_str()).map_or(0, |t| t.partitions.len() as i32);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if denied {
                        return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    if !(0..count).contains(&p.partition_index) {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                    match state.replica_manager.delete_records(&tp, p.offset) {
                        Ok(low) => {
                            moved = true;
                            result.with_low_watermark(low)
                        }
                        Err(e) => {
                            tracing::debug!(partition = %tp, offset = p.offset, error = %e.message, "delete records refused");
                            result.with_error_code(e.error.code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    if moved {
        let lm = state.replica_manager.log_manager().clone();
        match tokio::task::spawn_blocking(move || lm.checkpoint()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "checkpoint after DeleteRecords failed"),
            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
        }
    }
    Some(DeleteRecordsResponse::default().with_topics(topics))
}
