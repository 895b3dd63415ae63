//! CreateTopics: validation (names, counts, replication, configs),
//! `validate_only`, and the v5+ echo of the resulting configs (with
//! DESCRIBE_CONFIGS on the topic, else TOPIC_AUTHORIZATION_FAILED in
//! `topic_config_error_code`, as Kafka's controller answers).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::s;
use crate::authorizer::{authorize, is_authorized, AclOperation, ResourceType, CLUSTER_NAME};
use crate::config::TOPIC_CONFIGS;
use crate::controller::CreateTopicSpec;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: CreateTopicsRequest,
) -> Option<CreateTopicsResponse> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.0.to_string()).or_default() += 1;
    }
    // Requests are checked one by one; the valid ones are created with
    // one metadata write, off the async runtime (files and fsyncs).
    let mut results = Vec::with_capacity(req.topics.len());
    let mut specs = Vec::new();
    // Kafka: CREATE on the cluster, else on each topic
    let cluster_create = is_authorized(
        state,
        ctx,
        AclOperation::Create,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    for t in req.topics {
        let name = t.name.0.to_string();
        let result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            results.push(Err(result
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(s(format!(
                    "Create topics request from client contains multiple entries for topic {name}"
                ))))));
            continue;
        }
        if !cluster_create
            && !authorize(state, ctx, AclOperation::Create, ResourceType::Topic, &name)
        {
            results.push(Err(
                result.with_error_code(ResponseError::TopicAuthorizationFailed.code())
            ));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut null_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => null_config = Some(c.name.to_string()),
            }
        }
        if let Some(key) = null_config {
            results.push(Err(result
                .with_error_code(ResponseError::InvalidConfig.code())
                .with_error_message(Some(s(format!(
                    "Null value not supported for topic config {key}"
                ))))));
            continue;
        }
        // KIP-599: the partitions it creates against the client's
        // controller_mutation_rate (strict from v6)
        if !req.validate_only {
            let partitions = if !t.assignments.is_empty() {
                t.assignments.len()
            } else if t.num_partitions > 0 {
                t.num_partitions as usize
            } else {
                state
                    .config
                    .value("num.partitions")
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(1)
            };
            if let Err(e) = crate::quota::record_mutation(ctx, partitions, 6) {
                results.push(Err(result
                    .with_error_code(e.code.code())
                    .with_error_message(Some(s(e.message)))));
                continue;
            }
        }
        specs.push(CreateTopicSpec {
            name,
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs,
        });
        results.push(Ok(result));
    }
    let controller = state.controller.clone();
    let validate_only = req.validate_only;
    // Kafka's timeoutMs: how long to wait for the controller
    let timeout = crate::controller::request_timeout(req.timeout_ms);
    let created = tokio::task::spawn_blocking(move || {
        controller.create_topics(&specs, validate_only, timeout)
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "topic creation task failed");
        Vec::new()
    });
    let mut created = created.into_iter();
    let results = results
        .into_iter()
        .map(|r| {
            let result = match r {
                Err(done) => return done,
                Ok(result) => result,
            };
            let Some(outcome) = created.next() else {
                return result.with_error_code(ResponseError::UnknownServerError.code());
            };
            match outcome {
                Ok(topic) => {
                    let r = result.with_topic_id(if validate_only {
                        uuid::Uuid::nil()
                    } else {
                        topic.id
                    });
                    // Kafka: the configs, partition count and replication
                    // factor only with DESCRIBE_CONFIGS on the topic
                    if !is_authorized(
                        state,
                        ctx,
                        AclOperation::DescribeConfigs,
                        ResourceType::Topic,
                        &topic.name,
                    ) {
                        return r.with_topic_config_error_code(
                            ResponseError::TopicAuthorizationFailed.code(),
                        );
                    }
                    let mut r = r
                        .with_num_partitions(topic.partitions.len() as i32)
                        .with_replication_factor(topic.replication_factor());
                    if ctx.version >= 5 {
                        r.configs = Some(
                            TOPIC_CONFIGS
                                .iter()
                                .map(|d| {
                                    let (value, source) =
                                        state.config.topic_value(&topic.configs, d);
                                    CreatableTopicConfigs::default()
                                        .with_name(s(d.def.name))
                                        .with_value(value.map(s))
                                        .with_config_source(source as i8)
                                })
                                .collect(),
                        );
                    }
                    r
                }
                Err(e) => result
                    .with_error_code(e.code.code())
                    .with_error_message(Some(s(e.message))),
            }
        })
        .collect();
    Some(CreateTopicsResponse::default().with_topics(results))
}
