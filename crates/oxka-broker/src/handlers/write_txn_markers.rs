//! WriteTxnMarkers: COMMIT/ABORT control batches on the named partitions
//! (sent by a transaction coordinator; ours calls the same code directly).

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use oxka_log::TopicPartition;

use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext<'_>,
    req: WriteTxnMarkersRequest,
) -> Option<WriteTxnMarkersResponse> {
    let markers = req
        .markers
        .iter()
        .map(|m| {
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            let tp = TopicPartition::new(t.name.0.to_string(), p);
                            let code = match state.txn_coordinator.write_marker(
                                &tp,
                                m.producer_id.0,
                                m.producer_epoch,
                                m.coordinator_epoch,
                                m.transaction_result,
                            ) {
                                Ok(()) => 0,
                                Err(e) => e.code(),
                            };
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    Some(WriteTxnMarkersResponse::default().with_markers(markers))
}
