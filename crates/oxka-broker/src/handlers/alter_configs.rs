//! AlterConfigs (legacy): sets the whole set of dynamic configs of each
//! resource; every override not named in the request reverts to its
//! default. Topics (resource type 2), the broker's dynamic configs
//! (type 4: this node's id, or "" for the cluster default) and groups
//! (type 32, KIP-848).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType, CLUSTER_NAME};
use crate::config::dynamic;
use crate::controller::{ApiError, ConfigTarget};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_GROUP: i8 = 32;

/// The controller target of a resource, or the error for a type oxka does
/// not alter.
pub(crate) fn target(resource_type: i8, name: &str) -> Result<ConfigTarget, ApiError> {
    match resource_type {
        RESOURCE_TOPIC => Ok(ConfigTarget::Topic(name.to_string())),
        RESOURCE_BROKER => Ok(ConfigTarget::Broker(name.to_string())),
        RESOURCE_GROUP => Ok(ConfigTarget::Group(name.to_string())),
        other => Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {other} for altering configs"),
        )),
    }
}

/// Kafka's check for a config resource: `op` (DESCRIBE_CONFIGS or
/// ALTER_CONFIGS) on the cluster for brokers and broker loggers, on the
/// topic or group otherwise, each with its authorization error.
pub(crate) fn authorize_resource(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    op: AclOperation,
    resource_type: i8,
    name: &str,
) -> Result<(), ApiError> {
    const RESOURCE_BROKER_LOGGER: i8 = 8;
    let (resource, error) = match resource_type {
        RESOURCE_TOPIC => (ResourceType::Topic, ResponseError::TopicAuthorizationFailed),
        RESOURCE_GROUP => (ResourceType::Group, ResponseError::GroupAuthorizationFailed),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => (
            ResourceType::Cluster,
            ResponseError::ClusterAuthorizationFailed,
        ),
        // refused as unsupported by the caller
        _ => return Ok(()),
    };
    let name = if resource == ResourceType::Cluster {
        CLUSTER_NAME
    } else {
        name
    };
    if authorize(state, ctx, op, resource, name) {
        Ok(())
    } else {
        Err(ApiError::new(error, ""))
    }
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: AlterConfigsRequest,
) -> Option<AlterConfigsResponse> {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let entries: Vec<(String, Option<String>)> = r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            let outcome = authorize_resource(
                state,
                ctx,
                AclOperation::AlterConfigs,
                r.resource_type,
                r.resource_name.as_str(),
            )
            .and_then(|()| target(r.resource_type, r.resource_name.as_str()))
            .and_then(|t| {
                state
                    .controller
                    .alter_configs(&t, req.validate_only, |_| dynamic::apply_legacy(&entries))
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
    Some(AlterConfigsResponse::default().with_responses(responses))
}
