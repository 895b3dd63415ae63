//! OffsetFetch: one group (v0–7; v0 reads the same offsets as v1, Kafka 3.9
//! read ZooKeeper for it) or several (v8+). Partitions without a
//! commit answer offset -1 with no error, as Kafka does. With
//! `require_stable` (v7+) a partition whose transactional offset commit is
//! still pending answers UNSTABLE_OFFSET_COMMIT (the client retries).

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::s;
use crate::authorizer::{authorize, is_authorized, AclOperation, ResourceType};
use crate::coordinator::group::offsets::OffsetAndMetadata;
use crate::request::RequestContext;
use crate::server::BrokerState;

type Fetched = Vec<(String, Vec<(i32, Option<OffsetAndMetadata>)>)>;

/// The group's committed offsets, as the principal may see them (Kafka's
/// checks): DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED; of
/// all topics only those it may DESCRIBE; named topics it may not
/// describe come back without offsets and are listed in the second
/// value, to be answered TOPIC_AUTHORIZATION_FAILED.
fn fetch(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<(Fetched, HashSet<String>), ResponseError> {
    if !authorize(
        state,
        ctx,
        AclOperation::Describe,
        ResourceType::Group,
        group,
    ) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let may_describe =
        |t: &str| is_authorized(state, ctx, AclOperation::Describe, ResourceType::Topic, t);
    match topics {
        None => {
            let mut f = state.group_coordinator.fetch_offsets(group, None)?;
            f.retain(|(t, _)| may_describe(t));
            Ok((f, HashSet::new()))
        }
        Some(topics) => {
            let (allowed, denied): (Vec<_>, Vec<_>) = topics.into_iter().partition(|(t, _)| {
                authorize(state, ctx, AclOperation::Describe, ResourceType::Topic, t)
            });
            let mut f = if allowed.is_empty() && !denied.is_empty() {
                Vec::new()
            } else {
                state
                    .group_coordinator
                    .fetch_offsets(group, Some(allowed))?
            };
            let names = denied.iter().map(|(t, _)| t.clone()).collect();
            f.extend(
                denied
                    .into_iter()
                    .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect())),
            );
            Ok((f, names))
        }
    }
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: OffsetFetchRequest,
) -> Option<OffsetFetchResponse> {
    let unstable = |group: &str, topic: &str, p: i32| {
        req.require_stable
            && state
                .group_coordinator
                .has_pending_txn_offset(group, topic, p)
    };
    if ctx.version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let resp = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                // v9+: a KIP-848 member's id and epoch must be current
                let member = if ctx.version >= 9 {
                    state.group_coordinator.validate_member_fetch(
                        &g.group_id,
                        g.member_id.as_deref(),
                        g.member_epoch,
                    )
                } else {
                    Ok(())
                };
                match member.and_then(|()| fetch(state, ctx, &g.group_id, topics)) {
                    Err(e) => resp.with_error_code(e.code()),
                    Ok((f, denied)) => resp.with_topics(
                        f.into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(s(t.clone())))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|(p, o)| {
                                                let r = OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p);
                                                if denied.contains(&t) {
                                                    return r
                                                        .with_committed_offset(-1)
                                                        .with_error_code(
                                                            ResponseError::TopicAuthorizationFailed
                                                                .code(),
                                                        );
                                                }
                                                if unstable(&g.group_id, &t, p) {
                                                    return r
                                                        .with_committed_offset(-1)
                                                        .with_error_code(
                                                            ResponseError::UnstableOffsetCommit
                                                                .code(),
                                                        );
                                                }
                                                match o {
                                                    Some(o) => r
                                                        .with_committed_offset(o.offset)
                                                        .with_committed_leader_epoch(o.leader_epoch)
                                                        .with_metadata(Some(s(o.metadata))),
                                                    None => r.with_committed_offset(-1),
                                                }
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        return Some(OffsetFetchResponse::default().with_groups(groups));
    }
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect::<Vec<_>>()
    });
    let partition = |p: i32, o: Option<OffsetAndMetadata>, err: i16| {
        let r = OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_error_code(err);
        match o {
            Some(o) => {
                let r = r
                    .with_committed_offset(o.offset)
                    .with_metadata(Some(s(o.metadata)));
                if ctx.version >= 5 {
                    r.with_committed_leader_epoch(o.leader_epoch)
                } else {
                    r
                }
            }
            None => r.with_committed_offset(-1),
        }
    };
    match fetch(state, ctx, &req.group_id, topics.clone()) {
        Ok((f, denied)) => Some(
            OffsetFetchResponse::default().with_topics(
                f.into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(s(t.clone())))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, o)| {
                                        if denied.contains(&t) {
                                            let code =
                                                ResponseError::TopicAuthorizationFailed.code();
                                            return partition(p, None, code);
                                        }
                                        if unstable(&req.group_id, &t, p) {
                                            let code = ResponseError::UnstableOffsetCommit.code();
                                            partition(p, None, code)
                                        } else {
                                            partition(p, o, 0)
                                        }
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        Err(e) if ctx.version >= 2 => {
            Some(OffsetFetchResponse::default().with_error_code(e.code()))
        }
        Err(e) => Some(
            // v1 has no top-level error: every partition carries it
            OffsetFetchResponse::default().with_topics(
                topics
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|p| partition(p, None, e.code()))
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
    }
}
