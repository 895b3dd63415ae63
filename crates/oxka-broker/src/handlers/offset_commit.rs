//! OffsetCommit (v0–9): member commits checked against the generation,
//! simple (generation -1) commits for groups without members. v0 carries
//! no generation or member id, so it is always a simple commit (Kafka 3.9
//! wrote v0 commits to ZooKeeper; here they go to the coordinator like any
//! other); v1 may carry a commit timestamp per partition.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::{code, CommitEntry};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: OffsetCommitRequest,
) -> Option<OffsetCommitResponse> {
    // Kafka: READ on the group (else every partition fails), READ on
    // each topic (else its partitions fail, the others are committed)
    let group_denied = !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        req.group_id.0.as_str(),
    );
    let topic_denied: Vec<bool> = req
        .topics
        .iter()
        .map(|t| {
            !group_denied
                && !authorize(
                    state,
                    ctx,
                    AclOperation::Read,
                    ResourceType::Topic,
                    t.name.0.as_str(),
                )
        })
        .collect();
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .zip(&topic_denied)
        .filter(|(_, denied)| !**denied)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(move |p| CommitEntry {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                // v1 only; the codec gives -1 (now) for the other versions
                commit_timestamp: p.commit_timestamp,
            })
        })
        .collect();
    let results = if group_denied {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if entries.is_empty() && !req.topics.is_empty() {
        Ok(Vec::new())
    } else {
        state.group_coordinator.commit_offsets(
            &req.group_id,
            req.generation_id_or_member_epoch,
            &req.member_id,
            req.group_instance_id.as_deref(),
            entries,
            ctx.version,
        )
    };
    // acknowledged once replicated (acks=all, `offsets.commit.timeout.ms`)
    let results = match results {
        Ok(r) if r.iter().any(Option::is_none) => {
            match state.group_coordinator.replicated(&req.group_id).await {
                Ok(()) => Ok(r),
                Err(e) => Ok(r.into_iter().map(|x| x.or(Some(e))).collect()),
            }
        }
        other => other,
    };
    let mut it = 0usize;
    let topics = req
        .topics
        .iter()
        .zip(&topic_denied)
        .map(|(t, denied)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    if *denied {
                        return OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let e = match &results {
                        Ok(r) => r.get(it).copied().flatten(),
                        Err(e) => Some(*e),
                    };
                    it += 1;
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code(e))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(OffsetCommitResponse::default().with_topics(topics))
}
