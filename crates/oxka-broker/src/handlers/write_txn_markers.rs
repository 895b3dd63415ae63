//! WriteTxnMarkers: COMMIT/ABORT control batches on the named partitions
//! (sent by the transaction coordinator of another broker; one on this
//! broker calls the same code directly).

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use oxka_coordinator::CoordinatorLog;
use oxka_log::TopicPartition;

use crate::authorizer::{authorize_cluster, AclOperation};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: WriteTxnMarkersRequest,
) -> Option<WriteTxnMarkersResponse> {
    // Kafka: CLUSTER_ACTION (only brokers write markers); every partition
    // fails otherwise
    let denied = !authorize_cluster(state, ctx, AclOperation::ClusterAction);
    // Kafka appends markers with acks=all: the coordinator counts a marker
    // as written only once it is replicated, so a leader that dies right
    // after cannot lose it (the coordinator resends to the new leader).
    let timeout = std::time::Duration::from_millis(
        state
            .config
            .value("request.timeout.ms")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(30_000)
            .clamp(1, 30_000),
    );
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in &req.markers {
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in &m.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for &p in &t.partition_indexes {
                let tp = TopicPartition::new(t.name.0.to_string(), p);
                let written = if denied {
                    Err(kafka_protocol::error::ResponseError::ClusterAuthorizationFailed)
                } else {
                    match state.txn_coordinator.write_marker(
                        &tp,
                        m.producer_id.0,
                        m.producer_epoch,
                        m.coordinator_epoch,
                        m.transaction_result,
                    ) {
                        Ok(()) => {
                            CoordinatorLog::wait_replicated(&*state.replica_manager, &tp, timeout)
                                .await
                        }
                        Err(e) => Err(e),
                    }
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(written.err().map_or(0, |e| e.code())),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    Some(WriteTxnMarkersResponse::default().with_markers(markers))
}
