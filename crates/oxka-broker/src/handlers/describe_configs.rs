//! DescribeConfigs for topics and brokers: every known config with its
//! value, source, type and (on request) synonyms and documentation.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::s;
use crate::config::{ConfigDef, ConfigSource, TOPIC_CONFIGS};
use crate::request::RequestContext;
use crate::server::BrokerState;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

struct Entry {
    def: &'static ConfigDef,
    value: Option<String>,
    source: ConfigSource,
    read_only: bool,
    synonyms: Vec<DescribeConfigsSynonym>,
}

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
            let entries = match r.resource_type {
                RESOURCE_TOPIC => topic_entries(state, r.resource_name.as_str()),
                RESOURCE_BROKER => broker_entries(state, r.resource_name.as_str()),
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
                                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.def.name))
                        })
                        .map(|e| {
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(s(e.def.name))
                                .with_value(e.value.map(s))
                                .with_read_only(e.read_only)
                                .with_config_source(e.source as i8)
                                .with_config_type(e.def.ty.wire_code());
                            if req.include_synonyms {
                                c.synonyms = e.synonyms;
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

fn synonym(name: &str, value: Option<String>, source: ConfigSource) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(s(name))
        .with_value(value.map(s))
        .with_source(source as i8)
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
            let mut synonyms = Vec::new();
            if let Some(v) = topic.configs.get(t.def.name) {
                synonyms.push(synonym(
                    t.def.name,
                    Some(v.clone()),
                    ConfigSource::TopicConfig,
                ));
            }
            if let Some(b) = t.broker_synonym {
                if cfg.is_explicit(b) {
                    synonyms.push(synonym(b, cfg.value(b), ConfigSource::StaticBrokerConfig));
                }
                let default = crate::config::defs::broker_def(b)
                    .and_then(|d| d.default)
                    .map(str::to_string)
                    .or_else(|| t.def.default.map(str::to_string));
                synonyms.push(synonym(b, default, ConfigSource::DefaultConfig));
            }
            Entry {
                def: &t.def,
                value,
                source,
                read_only: false,
                synonyms,
            }
        })
        .collect())
}

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
    Ok(state
        .config
        .describe()
        .into_iter()
        .map(|(def, value, source)| {
            let synonyms = vec![synonym(def.name, value.clone(), source)];
            Entry {
                def,
                value,
                source,
                read_only: true,
                synonyms,
            }
        })
        .collect())
}
