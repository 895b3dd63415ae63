//! DescribeProducers: the producer state a partition keeps (for
//! `kafka-transactions.sh describe-producers` and finding hanging
//! transactions).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use oxka_log::TopicPartition;

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeProducersRequest,
) -> Option<DescribeProducersResponse> {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            // Kafka: READ on the topic
            let denied = !authorize(
                state,
                ctx,
                AclOperation::Read,
                ResourceType::Topic,
                t.name.0.as_str(),
            );
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let resp = PartitionResponse::default().with_partition_index(p);
                    if denied {
                        return resp
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let tp = TopicPartition::new(t.name.0.to_string(), p);
                    let Some(partition) = state.replica_manager.get_partition(&tp) else {
                        return resp.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let log = partition.log.lock();
                    let mut producers: Vec<ProducerState> = log
                        .producer_state()
                        .entries()
                        .map(|e| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(e.producer_id))
                                .with_producer_epoch(i32::from(e.producer_epoch))
                                .with_last_sequence(e.last_seq())
                                .with_last_timestamp(e.last_timestamp)
                                .with_coordinator_epoch(e.coordinator_epoch)
                                .with_current_txn_start_offset(
                                    e.current_txn_first_offset.unwrap_or(-1),
                                )
                        })
                        .collect();
                    producers.sort_by_key(|p| p.producer_id.0);
                    resp.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(DescribeProducersResponse::default().with_topics(topics))
}
