//! TxnOffsetCommit: consumer offsets sent within a transaction; they
//! become committed offsets only when the transaction commits. First the
//! transaction coordinator checks (v0–4) or, for transaction version 2
//! clients (v5+), adds the group's offsets partition (KIP-890).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::CommitEntry;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: TxnOffsetCommitRequest,
) -> Option<TxnOffsetCommitResponse> {
    // Kafka: WRITE on the transactional id, then READ on the group (else
    // every partition fails), then READ on each topic (else its
    // partitions fail and the others are committed)
    let denied = if !authorize(
        state,
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id.0,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &req.group_id.0,
    ) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    let topic_denied: Vec<bool> = req
        .topics
        .iter()
        .map(|t| {
            denied.is_none()
                && !authorize(
                    state,
                    ctx,
                    AclOperation::Read,
                    ResourceType::Topic,
                    &t.name.0,
                )
        })
        .collect();
    let nothing_allowed = !req.topics.is_empty() && !topic_denied.contains(&false);
    let checked = match denied {
        Some(e) => Err(e),
        None => Ok(()),
    };
    let checked = checked.and_then(|()| {
        state.txn_coordinator.check_txn_offset_commit(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            &req.group_id.0,
            ctx.version,
        )
    });
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .zip(&topic_denied)
        .filter(|(_, denied)| !**denied)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(|p| CommitEntry {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                commit_timestamp: -1,
            })
        })
        .collect();
    let all =
        |e: ResponseError| vec![e.code(); req.topics.iter().map(|t| t.partitions.len()).sum()];
    let codes: Vec<i16> = match checked.and_then(|()| {
        if nothing_allowed {
            return Ok(Vec::new());
        }
        state.group_coordinator.txn_commit_offsets(
            &req.group_id.0,
            req.producer_id.0,
            req.producer_epoch,
            req.generation_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            entries,
            ctx.version,
        )
    }) {
        Ok(per) => {
            // written in the group's partition (and, for v5+, the
            // transaction's state): both replicated before the answer
            let replicated = match state.group_coordinator.replicated(&req.group_id.0).await {
                Ok(()) => {
                    state
                        .txn_coordinator
                        .replicated(&req.transactional_id.0)
                        .await
                }
                Err(e) => Err(e),
            };
            match replicated {
                Ok(()) => per.into_iter().map(|e| e.map_or(0, |e| e.code())).collect(),
                Err(e) => per
                    .into_iter()
                    .map(|x| x.map_or(e.code(), |x| x.code()))
                    .collect(),
            }
        }
        Err(e) => all(e),
    };
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .iter()
        .zip(&topic_denied)
        .map(|(t, denied)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = if *denied {
                                ResponseError::TopicAuthorizationFailed.code()
                            } else {
                                codes.next().unwrap_or(0)
                            };
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(TxnOffsetCommitResponse::default().with_topics(topics))
}
