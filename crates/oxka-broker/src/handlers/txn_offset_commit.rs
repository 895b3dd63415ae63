//! TxnOffsetCommit: consumer offsets sent within a transaction; they
//! become committed offsets only when the transaction commits.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::coordinator::group::CommitEntry;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext<'_>,
    req: TxnOffsetCommitRequest,
) -> Option<TxnOffsetCommitResponse> {
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitEntry {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let codes: Vec<i16> = match state.group_coordinator.txn_commit_offsets(
        &req.group_id.0,
        req.producer_id.0,
        req.producer_epoch,
        req.generation_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        entries,
    ) {
        Ok(per) => per.into_iter().map(|e| e.map_or(0, |e| e.code())).collect(),
        Err(e) => vec![e.code(); req.topics.iter().map(|t| t.partitions.len()).sum()],
    };
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect();
    Some(TxnOffsetCommitResponse::default().with_topics(topics))
}
