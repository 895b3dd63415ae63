//! The broker's authorizer: the one place every handler asks whether the
//! request's principal may perform an operation on a resource
//! ([`authorize`]), and the KIP-430 authorized-operations bitfields
//! Metadata, DescribeCluster, DescribeGroups and ConsumerGroupDescribe
//! report ([`authorized_operations`]).
//!
//! Enabled by `authorizer.class.name` set to Kafka's
//! `org.apache.kafka.metadata.authorizer.StandardAuthorizer` (or the
//! alias `oxka`); the decision is the StandardAuthorizer's
//! ([`oxka_controller::acl::authorize`]) on the ACLs of the metadata image,
//! with `super.users` and `allow.everyone.if.no.acl.found`. Without it
//! every principal may do everything, as on Kafka without an authorizer.
//!
//! Audit: denials are logged at INFO and grants at DEBUG on the tracing
//! target `kafka.authorizer.logger` (Kafka's logger name), with the
//! principal, operation, resource, client address and API; set its level
//! in the log filter (`RUST_LOG=info,kafka.authorizer.logger=warn` hides
//! denials). Filtering checks (Metadata of all topics, ListGroups) log no
//! denials, as Kafka's `logIfDenied=false`.

use oxka_controller::acl::{self, AuthorizerSettings};
pub use oxka_controller::acl::{AclOperation, CLUSTER_NAME};

use crate::config::KafkaConfig;
use crate::network::ConnectionInfo;
use crate::request::RequestContext;
use crate::server::BrokerState;

/// Kafka's class name for the KRaft authorizer.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// oxka's short name for the same authorizer.
pub const OXKA_AUTHORIZER_ALIAS: &str = "oxka";

/// Whether `authorizer.class.name` names an authorizer oxka has.
pub fn is_known_authorizer(class_name: &str) -> bool {
    matches!(
        class_name.trim(),
        STANDARD_AUTHORIZER | OXKA_AUTHORIZER_ALIAS
    )
}

/// The resource types authorization is asked about (Kafka's
/// `ResourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

impl ResourceType {
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => acl::resource_type::TOPIC,
            ResourceType::Group => acl::resource_type::GROUP,
            ResourceType::Cluster => acl::resource_type::CLUSTER,
            ResourceType::TransactionalId => acl::resource_type::TRANSACTIONAL_ID,
        }
    }

    /// Kafka's name in log lines (`Topic`, `TransactionalId`).
    fn log_name(self) -> &'static str {
        match self {
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
        }
    }
}

/// The authorizer's settings, read once from the broker config.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    enabled: bool,
    settings: AuthorizerSettings,
}

impl Authorizer {
    pub fn from_config(cfg: &KafkaConfig) -> Authorizer {
        let class = cfg.value("authorizer.class.name").unwrap_or_default();
        let super_users = cfg
            .value("super.users")
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Authorizer {
            enabled: is_known_authorizer(&class),
            settings: AuthorizerSettings {
                super_users,
                allow_everyone_if_no_acl_found: cfg
                    .value("allow.everyone.if.no.acl.found")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            },
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn decide(
        &self,
        state: &BrokerState,
        conn: &ConnectionInfo,
        op: AclOperation,
        resource: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled {
            return true;
        }
        let image = state.controller.image();
        acl::authorize(
            image.acls.values(),
            &self.settings,
            &conn.principal.to_string(),
            &conn.peer.ip().to_string(),
            op,
            resource.code(),
            name,
        )
    }
}

/// May the request's principal perform `op` on the resource? Denials are
/// logged on `kafka.authorizer.logger` (see the module doc). The one
/// check every handler makes.
pub fn authorize(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    op: AclOperation,
    resource: ResourceType,
    name: &str,
) -> bool {
    let allowed = state.authorizer.decide(state, ctx.conn, op, resource, name);
    if state.authorizer.enabled {
        audit(ctx, allowed, op, resource, name);
    }
    allowed
}

/// [`authorize`] for filtering what a listing shows: denials are not
/// logged (Kafka's `logIfDenied=false`).
pub fn is_authorized(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    op: AclOperation,
    resource: ResourceType,
    name: &str,
) -> bool {
    state.authorizer.decide(state, ctx.conn, op, resource, name)
}

/// [`authorize`] on the CLUSTER resource.
pub fn authorize_cluster(state: &BrokerState, ctx: &RequestContext<'_>, op: AclOperation) -> bool {
    authorize(state, ctx, op, ResourceType::Cluster, CLUSTER_NAME)
}

/// Kafka's `authorizeByResourceType` (KIP-679): may the principal
/// perform `op` on some resource of the type (InitProducerId's
/// idempotent producer with WRITE on any topic).
pub fn authorize_by_resource_type(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    op: AclOperation,
    resource: ResourceType,
) -> bool {
    let a = &state.authorizer;
    if !a.enabled {
        return true;
    }
    let image = state.controller.image();
    acl::authorize_by_resource_type(
        image.acls.values(),
        &a.settings,
        &ctx.conn.principal.to_string(),
        &ctx.conn.peer.ip().to_string(),
        op,
        resource.code(),
    )
}

fn audit(
    ctx: &RequestContext<'_>,
    allowed: bool,
    op: AclOperation,
    resource: ResourceType,
    name: &str,
) {
    let principal = &ctx.conn.principal;
    let host = ctx.conn.peer.ip();
    let resource = format!("{}:LITERAL:{name}", resource.log_name());
    let api = ctx.api_key;
    if allowed {
        tracing::debug!(target: "kafka.authorizer.logger", %principal, operation = op.name(), %resource, %host, request = ?api, "Principal = {principal} is Allowed operation = {} from host = {host} on resource = {resource} for request = {api:?}", op.name());
    } else {
        tracing::info!(target: "kafka.authorizer.logger", %principal, operation = op.name(), %resource, %host, request = ?api, "Principal = {principal} is Denied operation = {} from host = {host} on resource = {resource} for request = {api:?}", op.name());
    }
}

/// The operations that apply to a resource type: Kafka's
/// `AclEntry.supportedOperations`.
pub fn supported_operations(resource: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
    }
}

/// The operations the client on `conn` may perform on the named resource,
/// one bit per operation code (Kafka's `Utils.to32BitField`): those of
/// [`supported_operations`] the authorizer allows.
pub fn authorized_operations(
    state: &BrokerState,
    conn: &ConnectionInfo,
    resource: ResourceType,
    resource_name: &str,
) -> i32 {
    supported_operations(resource)
        .iter()
        .filter(|op| {
            state
                .authorizer
                .decide(state, conn, **op, resource, resource_name)
        })
        .fold(0, |bits, op| bits | 1 << (*op as i8))
}

/// Without an authorizer: all of [`supported_operations`].
#[cfg(test)]
fn all_operations(resource: ResourceType) -> i32 {
    supported_operations(resource)
        .iter()
        .fold(0, |bits, op| bits | 1 << (*op as i8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values Kafka without an authorizer reports (topic 3576: READ,
    /// WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
    /// ALTER_CONFIGS).
    #[test]
    fn bitfields_match_kafka_without_authorizer() {
        assert_eq!(all_operations(ResourceType::Topic), 3576);
        assert_eq!(all_operations(ResourceType::Group), 3400);
        assert_eq!(all_operations(ResourceType::Cluster), 8096);
        assert_eq!(all_operations(ResourceType::TransactionalId), 272);
    }

    #[test]
    fn settings_from_config() {
        let props = [
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:admin; User:ANONYMOUS"),
            ("allow.everyone.if.no.acl.found", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (cfg, _) = KafkaConfig::from_props(props).unwrap();
        let a = Authorizer::from_config(&cfg);
        assert!(a.enabled());
        assert!(a.settings.is_super_user("User:ANONYMOUS"));
        assert!(a.settings.is_super_user("User:admin"));
        assert!(a.settings.allow_everyone_if_no_acl_found);
        assert!(!Authorizer::from_config(&KafkaConfig::defaults()).enabled());
    }
}
