//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on the
//! configs of topics, groups (KIP-848) and of the broker's dynamic configs; APPEND/SUBTRACT
//! only for LIST-type configs such as `cleanup.policy`.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::target;
use super::s;
use crate::config::defs::{self, ConfigDef};
use crate::config::dynamic::{self, IncrementalChange};
use crate::controller::ConfigTarget;
use crate::request::RequestContext;
use crate::server::BrokerState;

fn topic_def(name: &str) -> Option<&'static ConfigDef> {
    defs::topic_def(name).map(|t| &t.def)
}

fn group_def(name: &str) -> Option<&'static ConfigDef> {
    crate::config::group::group_def(name).map(|g| &g.def)
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: IncrementalAlterConfigsRequest,
) -> Option<IncrementalAlterConfigsResponse> {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let changes: Vec<IncrementalChange> = r
                .configs
                .iter()
                .map(|c| IncrementalChange {
                    name: c.name.to_string(),
                    op: c.config_operation,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect();
            let outcome = super::alter_configs::authorize_resource(
                state,
                ctx,
                crate::authorizer::AclOperation::AlterConfigs,
                r.resource_type,
                r.resource_name.as_str(),
            )
            .and_then(|()| target(r.resource_type, r.resource_name.as_str()))
            .and_then(|t| {
                state
                    .controller
                    .alter_configs(&t, req.validate_only, |current| match &t {
                        ConfigTarget::Topic(_) => {
                            dynamic::apply_incremental(current, &changes, topic_def, |n| {
                                format!("Unknown topic config name: {n}")
                            })
                        }
                        ConfigTarget::Broker(_) => dynamic::apply_incremental(
                            current,
                            &changes,
                            dynamic::alterable_broker_def,
                            |n| format!("Unknown broker config name: {n}"),
                        ),
                        ConfigTarget::Group(_) => {
                            dynamic::apply_incremental(current, &changes, group_def, |n| {
                                format!("Unknown group config name: {n}")
                            })
                        }
                    })
            });
            let resp = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            match outcome {
                Ok(()) => resp,
                Err(e) => resp
                    .with_error_code(e.code.code())
                    .with_error_message(Some(s(e.message))),
            }
        })
        .collect();
    Some(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
