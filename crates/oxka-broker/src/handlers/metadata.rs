//! Metadata: brokers, cluster id, controller, topics with their partitions,
//! leaders, replicas and ISR; creates unknown topics when allowed.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::{live_broker_views, reported_controller_id, s, AUTHORIZED_OPERATIONS_OMITTED};
use crate::authorizer::{
    authorize, authorized_operations, is_authorized, AclOperation, ResourceType, CLUSTER_NAME,
};
use crate::controller::CreateTopicSpec;
use crate::metadata::{validate_topic_name, TopicInfo};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: MetadataRequest,
) -> Option<MetadataResponse> {
    let brokers = live_broker_views(state, ctx.conn)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(s(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(s))
        })
        .collect();
    // v0 has no null topic list: an empty one means "all topics" there.
    let requested = match req.topics {
        Some(t) if !(ctx.version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    let allow_create = state.config.auto_create_topics_enable
        && (ctx.version < 4 || req.allow_auto_topic_creation);
    let mut topics: Vec<MetadataResponseTopic> = match requested {
        None => state
            .controller
            .image()
            .topics
            .values()
            // all topics: those the principal may describe, the others
            // left out silently (Kafka's logIfDenied=false)
            .filter(|t| {
                is_authorized(
                    state,
                    ctx,
                    AclOperation::Describe,
                    ResourceType::Topic,
                    &t.name,
                )
            })
            .map(topic_entry)
            .collect(),
        Some(list) => {
            let found: Vec<Result<MetadataResponseTopic, String>> = list
                .into_iter()
                .map(|t| match t.name {
                    Some(name) if !name.0.is_empty() || t.topic_id.is_nil() => {
                        let name = name.0.as_str();
                        if !authorize(
                            state,
                            ctx,
                            AclOperation::Describe,
                            ResourceType::Topic,
                            name,
                        ) {
                            return Ok(denied(Some(name), Uuid::nil()));
                        }
                        match by_name(state, name, allow_create) {
                            // auto-creation needs CREATE on the cluster
                            // or on the topic
                            Err(name) if !may_create(state, ctx, &name) => {
                                Ok(denied(Some(&name), Uuid::nil()))
                            }
                            other => other,
                        }
                    }
                    _ => Ok(by_id(state, ctx, t.topic_id)),
                })
                .collect();
            let mut created = auto_create(state, &found).await;
            found
                .into_iter()
                .map(|f| {
                    f.unwrap_or_else(|name| {
                        created.remove(&name).unwrap_or_else(|| {
                            error_topic(Some(&name), Uuid::nil(), ResponseError::LeaderNotAvailable)
                        })
                    })
                })
                .collect()
        }
    };
    // v8+ (KIP-430): for every topic of the answer, errors included, as
    // Kafka does; the cluster's only up to v10 (v11 moved it to
    // DescribeCluster, KIP-700)
    if req.include_topic_authorized_operations {
        for t in &mut topics {
            let name = t.name.as_ref().map_or("", |n| n.0.as_str());
            t.topic_authorized_operations =
                authorized_operations(state, ctx.conn, ResourceType::Topic, name);
        }
    }
    let cluster_operations =
        if (8..=10).contains(&ctx.version) && req.include_cluster_authorized_operations {
            authorized_operations(state, ctx.conn, ResourceType::Cluster, CLUSTER_NAME)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
    Some(
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(Some(s(state.cluster_id.clone())))
            .with_controller_id(BrokerId(reported_controller_id(state)))
            .with_topics(topics)
            .with_cluster_authorized_operations(cluster_operations),
    )
}

fn error_topic(name: Option<&str>, id: Uuid, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(s(n))))
        .with_topic_id(id)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

fn denied(name: Option<&str>, id: Uuid) -> MetadataResponseTopic {
    error_topic(name, id, ResponseError::TopicAuthorizationFailed)
}

fn may_create(state: &BrokerState, ctx: &RequestContext<'_>, name: &str) -> bool {
    is_authorized(
        state,
        ctx,
        AclOperation::Create,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) || authorize(state, ctx, AclOperation::Create, ResourceType::Topic, name)
}

fn by_id(state: &BrokerState, ctx: &RequestContext<'_>, id: Uuid) -> MetadataResponseTopic {
    match state.controller.image().topic_by_id(&id) {
        Some(t)
            if !authorize(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Topic,
                &t.name,
            ) =>
        {
            denied(None, id)
        }
        Some(t) => topic_entry(t),
        None => error_topic(None, id, ResponseError::UnknownTopicId),
    }
}

/// The topic's entry, or `Err(name)` when it is to be auto-created.
fn by_name(
    state: &BrokerState,
    name: &str,
    allow_create: bool,
) -> Result<MetadataResponseTopic, String> {
    if let Some(t) = state.controller.image().topic(name) {
        return Ok(topic_entry(t));
    }
    if validate_topic_name(name).is_err() {
        return Ok(error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::InvalidTopicException,
        ));
    }
    if !allow_create || name.starts_with("__") {
        return Ok(error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::UnknownTopicOrPartition,
        ));
    }
    Err(name.to_string())
}

/// Creates the topics `found` asks for, all with one metadata write and off
/// the async runtime (a request may name a thousand new topics), and
/// returns each one's entry by name.
async fn auto_create(
    state: &BrokerState,
    found: &[Result<MetadataResponseTopic, String>],
) -> BTreeMap<String, MetadataResponseTopic> {
    let mut names: Vec<String> = found.iter().filter_map(|f| f.clone().err()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return BTreeMap::new();
    }
    let specs: Vec<CreateTopicSpec> = names
        .iter()
        .map(|name| CreateTopicSpec::new(name.clone(), -1, -1))
        .collect();
    let controller = state.controller.clone();
    let results = tokio::task::spawn_blocking(move || {
        controller.create_topics(&specs, false, crate::controller::DEFAULT_TIMEOUT)
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "topic auto-creation task failed");
        Vec::new()
    });
    let image = state.controller.image();
    names
        .into_iter()
        .zip(results)
        .map(|(name, result)| {
            let entry = match result {
                Ok(t) => topic_entry(&t),
                // created by a concurrent request in the meantime
                Err(e) if e.code == ResponseError::TopicAlreadyExists => match image.topic(&name) {
                    Some(t) => topic_entry(t),
                    None => {
                        error_topic(Some(&name), Uuid::nil(), ResponseError::LeaderNotAvailable)
                    }
                },
                Err(e) => {
                    tracing::warn!(topic = %name, error = %e.message, "auto-creation failed");
                    error_topic(Some(&name), Uuid::nil(), e.code)
                }
            };
            (name, entry)
        })
        .collect()
}

fn topic_entry(t: &TopicInfo) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // no leader (its last ISR member is fenced): clients retry
            let error = if p.leader < 0 {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
