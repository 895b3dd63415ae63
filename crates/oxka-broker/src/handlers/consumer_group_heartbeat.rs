//! ConsumerGroupHeartbeat (KIP-848, v0–1): joins, heartbeats, reconciles
//! and leaves in one API; the coordinator answers at once (nothing waits).

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::group::assignor;
use crate::coordinator::group::code;
use crate::coordinator::group::consumer::HeartbeatParams;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ConsumerGroupHeartbeatRequest,
) -> Option<ConsumerGroupHeartbeatResponse> {
    // Kafka: READ on the group
    if !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        req.group_id.0.as_str(),
    ) {
        return Some(ConsumerGroupHeartbeatResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    // KAFKA-18813: DESCRIBE on every subscribed topic named (a regex's
    // topics are not filtered yet); clients may not learn of topics they
    // cannot describe
    if let Some(names) = req.subscribed_topic_names.as_ref() {
        let denied: Vec<&str> = names
            .iter()
            .map(|t| t.as_str())
            .filter(|t| !authorize(state, ctx, AclOperation::Describe, ResourceType::Topic, t))
            .collect();
        if !denied.is_empty() {
            return Some(
                ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(
                        kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code(),
                    )
                    .with_error_message(Some(s(format!(
                        "not authorized to describe the subscribed topics {}",
                        denied.join(", ")
                    )))),
            );
        }
    }
    let owned = req.topic_partitions.as_ref().map(|tps| {
        let mut a = assignor::Assignment::new();
        for tp in tps {
            for p in &tp.partitions {
                assignor::insert(&mut a, tp.topic_id, *p);
            }
        }
        a
    });
    let params = HeartbeatParams {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
        client_id: ctx
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.conn.peer.ip()),
    };
    let o = state
        .group_coordinator
        .consumer_heartbeat(&req.group_id, params);
    // the group's records are replicated before the member acts on them
    let o = match o.error {
        None => match state.group_coordinator.replicated(&req.group_id).await {
            Ok(()) => o,
            Err(e) => oxka_coordinator::group::consumer::HeartbeatOutcome::error(e, e.to_string()),
        },
        Some(_) => o,
    };
    let mut resp = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code(o.error))
        .with_error_message(o.error_message.map(s));
    if o.error.is_some() {
        return Some(resp);
    }
    resp = resp
        .with_member_id(Some(s(o.member_id)))
        .with_member_epoch(o.member_epoch)
        .with_heartbeat_interval_ms(o.heartbeat_interval_ms)
        .with_assignment(o.assignment.map(|a| {
            Assignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(t, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(t)
                            .with_partitions(ps.into_iter().collect())
                    })
                    .collect(),
            )
        }));
    Some(resp)
}
