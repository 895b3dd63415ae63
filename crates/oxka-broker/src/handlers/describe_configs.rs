//! DescribeConfigs for topics, brokers and groups (KIP-848): every known
//! config with its value, source, type and (on request) synonyms and
//! documentation; v0 (Kafka 3.9 still took it) has only an is-default flag
//! for the source.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::alter_configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::s;
use crate::config::{ConfigSource, ConfigSynonym, ConfigType, DescribedConfig, TOPIC_CONFIGS};
use crate::request::RequestContext;
use crate::server::BrokerState;

type Entry = DescribedConfig;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeConfigsRequest,
) -> Option<DescribeConfigsResponse> {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let allowed = super::alter_configs::authorize_resource(
                state,
                ctx,
                crate::authorizer::AclOperation::DescribeConfigs,
                r.resource_type,
                r.resource_name.as_str(),
            );
            let entries = match r.resource_type {
                _ if allowed.is_err() => Err((
                    allowed
                        .err()
                        .map_or(ResponseError::UnknownServerError, |e| e.code),
                    String::new(),
                )),
                RESOURCE_TOPIC => topic_entries(state, r.resource_name.as_str()),
                RESOURCE_BROKER => broker_entries(state, r.resource_name.as_str()),
                RESOURCE_GROUP => group_entries(state, r.resource_name.as_str()),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match entries {
                Err((code, msg)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(s(msg))),
                Ok(entries) => {
                    let configs = entries
                        .into_iter()
                        .filter(|e| {
                            r.configuration_keys
                                .as_ref()
                                // null or empty: every config (as Kafka)
                                .is_none_or(|keys| {
                                    keys.is_empty() || keys.iter().any(|k| k.as_str() == e.def.name)
                                })
                        })
                        .map(|e| {
                            // Kafka never shows a password's value.
                            let sensitive = e.def.ty == ConfigType::Password;
                            let value = if sensitive { None } else { e.value.map(s) };
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(s(e.def.name))
                                .with_value(value)
                                .with_is_sensitive(sensitive)
                                .with_read_only(e.read_only)
                                .with_config_source(e.source as i8)
                                // v0 has no source, only this flag: set
                                // as Kafka 1.x set it (the generated
                                // schemas of later Kafka left it false)
                                .with_is_default(e.source == ConfigSource::DefaultConfig)
                                .with_config_type(e.def.ty.wire_code());
                            if req.include_synonyms {
                                c.synonyms = e
                                    .synonyms
                                    .into_iter()
                                    .map(|mut syn| {
                                        if sensitive {
                                            syn.value = None;
                                        }
                                        synonym(syn)
                                    })
                                    .collect();
                            }
                            if req.include_documentation && ctx.version >= 3 {
                                c.documentation = Some(s(e.def.doc));
                            }
                            c
                        })
                        .collect();
                    result.with_configs(configs)
                }
            }
        })
        .collect();
    Some(DescribeConfigsResponse::default().with_results(results))
}

fn synonym(s: ConfigSynonym) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(super::s(s.name))
        .with_value(s.value.map(super::s))
        .with_source(s.source as i8)
}

fn topic_entries(state: &BrokerState, name: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    let image = state.controller.image();
    let topic = image.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist"),
        )
    })?;
    let cfg = &state.config;
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|t| {
            let (value, source) = cfg.topic_value(&topic.configs, t);
            DescribedConfig {
                def: &t.def,
                value,
                source,
                read_only: false,
                synonyms: cfg.topic_synonyms(&topic.configs, t),
            }
        })
        .collect())
}

/// Every group config of `name`, whether or not the group exists (its
/// configs live in the metadata, not in the coordinator).
fn group_entries(state: &BrokerState, name: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    if name.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "Group name must not be empty".to_string(),
        ));
    }
    let image = state.controller.image();
    let empty = Default::default();
    let overrides = image.group_configs.get(name).unwrap_or(&empty);
    Ok(crate::config::group::describe(overrides, &state.config))
}

/// Resource name = this node's id: every broker config; "" (the cluster
/// default): the dynamic defaults only, as Kafka answers.
fn broker_entries(state: &BrokerState, name: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    if !name.is_empty() && name != state.config.node_id.to_string() {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Broker id {name} is not this broker ({})",
                state.config.node_id
            ),
        ));
    }
    Ok(state.config.describe_broker(!name.is_empty()))
}
