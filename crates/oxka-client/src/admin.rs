//! Cluster administration: topics, partitions, configs, consumer groups,
//! offsets, record deletion.
//!
//! Every call returns a typed error naming what failed; batch calls
//! (create or delete several topics) return one result per item so a
//! tool can report each.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::*;

use crate::acl::{AclBinding, AclBindingFilter};
use crate::cluster::{Cluster, Metadata, TopicInfo};
use crate::config::{ClientConfig, CommonConfig};
use crate::error::{check, Error, KafkaCode, Result};
use crate::{sb, tn, TopicPartition};

/// A reassignment in progress (ListPartitionReassignments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub partition: TopicPartition,
    /// The target replicas followed by the ones being removed.
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a topic config (`retention.ms`, `cleanup.policy`, ...).
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// What a config request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    /// A broker by id (`""` = cluster-wide default for dynamic configs).
    Broker(String),
    /// A group's configs (KIP-848), by group id.
    Group(String),
}

/// As error messages name it: "topic `orders`", "broker 1", "the
/// cluster-wide broker defaults".
impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigResource::Topic(t) => write!(f, "topic `{t}`"),
            ConfigResource::Broker(b) if b.is_empty() => {
                write!(f, "the cluster-wide broker defaults")
            }
            ConfigResource::Broker(b) => write!(f, "broker {b}"),
            ConfigResource::Group(g) => write!(f, "group `{g}`"),
        }
    }
}

impl ConfigResource {
    fn kind(&self) -> i8 {
        match self {
            ConfigResource::Topic(_) => 2,
            ConfigResource::Broker(_) => 4,
            ConfigResource::Group(_) => 32,
        }
    }

    fn name(&self) -> &str {
        match self {
            ConfigResource::Topic(n) | ConfigResource::Broker(n) | ConfigResource::Group(n) => n,
        }
    }
}

/// One config entry as DescribeConfigs returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Kafka's source names: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, STATIC_BROKER_CONFIG, ...
    pub source: String,
    pub read_only: bool,
    pub sensitive: bool,
}

fn source_name(s: i8) -> &'static str {
    match s {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// An incremental config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

/// The cluster as DescribeCluster (or Metadata) reports it.
#[derive(Debug, Clone)]
pub struct ClusterDescription {
    pub cluster_id: Option<String>,
    /// -1 when no controller is known.
    pub controller_id: i32,
    /// Sorted by id. Fenced brokers are listed only when the broker
    /// answers DescribeCluster v2 (KIP-1073); older answers and Metadata
    /// list the unfenced ones.
    pub brokers: Vec<BrokerDescription>,
}

/// One broker of [`ClusterDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    pub id: i32,
    pub host: String,
    pub port: i32,
    /// `broker.rack`, when set.
    pub rack: Option<String>,
    /// Whether the controller has fenced the broker (no heartbeat within
    /// `broker.session.timeout.ms`, or not caught up with the metadata
    /// log yet); `None` when the answer cannot say (DescribeCluster before
    /// v2, or Metadata).
    pub fenced: Option<bool>,
}

impl BrokerDescription {
    fn from_info(b: &crate::BrokerInfo) -> BrokerDescription {
        BrokerDescription {
            id: b.id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
            fenced: None,
        }
    }
}

/// Which group protocol a group runs, as Kafka's tools name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    /// JoinGroup/SyncGroup (any protocol type: consumer, connect, ...).
    Classic,
    /// KIP-848's ConsumerGroupHeartbeat protocol.
    Consumer,
    /// A type this client does not know (share, streams, ...).
    Other,
}

impl GroupType {
    fn parse(s: &str) -> GroupType {
        match s.to_ascii_lowercase().as_str() {
            "classic" => GroupType::Classic,
            "consumer" => GroupType::Consumer,
            _ => GroupType::Other,
        }
    }
}

impl std::fmt::Display for GroupType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GroupType::Classic => "Classic",
            GroupType::Consumer => "Consumer",
            GroupType::Other => "Unknown",
        })
    }
}

/// A group as ListGroups returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// The classic protocol type (`consumer`, `connect`, or empty for a
    /// group that only commits offsets); `consumer` for KIP-848 groups.
    pub protocol_type: String,
    pub state: String,
    /// From ListGroups v5; a broker without it has classic groups only.
    pub group_type: GroupType,
    pub coordinator: i32,
}

/// A member of a consumer group.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded from the consumer protocol assignment (empty if not a consumer group).
    pub assignment: Vec<TopicPartition>,
    /// KIP-848 groups: the member's epoch and the assignment it is moving
    /// to; `None` for classic groups.
    pub member_epoch: Option<i32>,
    pub target_assignment: Option<Vec<TopicPartition>>,
}

/// A group as DescribeGroups (classic) or ConsumerGroupDescribe (KIP-848)
/// returns it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub group_type: GroupType,
    pub protocol_type: String,
    /// The assignor in use (`range`, `cooperative-sticky`, `uniform`, ...).
    pub protocol: String,
    pub coordinator: i32,
    pub members: Vec<MemberDescription>,
    /// KIP-848 groups: the group epoch and the epoch of its target
    /// assignment.
    pub epochs: Option<(i32, i32)>,
}

/// Which offset ListOffsets should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at or after this (ms since epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn ts(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// The admin client. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), oxka_client::Error> {
/// use oxka_client::{Admin, ClientConfig, admin::NewTopic};
/// let admin = Admin::new(&ClientConfig::with_bootstrap("localhost:9092"))?;
/// admin.create_topic(NewTopic::new("orders", 3, 1).config("retention.ms", "86400000")).await?;
/// for t in admin.list_topics(false).await? {
///     println!("{} ({} partitions)", t.name, t.partitions.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
    timeout_ms: i32,
}

impl Admin {
    /// Builds an admin client; connects lazily on the first call.
    pub fn new(cfg: &ClientConfig) -> Result<Admin> {
        let common = CommonConfig::parse(cfg, "oxka-admin")?;
        let timeout_ms = cfg.get_i64("default.api.timeout.ms", 60_000, 0, i32::MAX as i64)? as i32;
        Ok(Admin {
            cluster: Arc::new(Cluster::new(common, false)),
            timeout_ms,
        })
    }

    /// Fresh metadata for every topic.
    pub async fn metadata(&self) -> Result<Arc<Metadata>> {
        self.cluster.refresh(None).await
    }

    /// Creates topics; one result per topic, in order.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut req = CreateTopicsRequest::default();
        req.timeout_ms = self.timeout_ms;
        req.validate_only = validate_only;
        for t in topics {
            let mut ct = create_topics_request::CreatableTopic::default();
            ct.name = tn(&t.name);
            ct.num_partitions = t.partitions;
            ct.replication_factor = t.replication_factor;
            ct.configs = t
                .configs
                .iter()
                .map(|(k, v)| {
                    let mut c = create_topics_request::CreatableTopicConfig::default();
                    c.name = sb(k);
                    c.value = Some(sb(v));
                    c
                })
                .collect();
            req.topics.push(ct);
        }
        let resp = self.cluster.send_controller(req).await?;
        let by_name: HashMap<String, _> = resp
            .topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t))
            .collect();
        let out = topics
            .iter()
            .map(|t| {
                let r = match by_name.get(&t.name) {
                    Some(r) => check(r.error_code, r.error_message.as_ref(), || {
                        format!("creating topic `{}`", t.name)
                    }),
                    None => Err(Error::Protocol(format!("no result for topic `{}`", t.name))),
                };
                (t.name.clone(), r)
            })
            .collect();
        let _ = self.cluster.refresh(None).await;
        Ok(out)
    }

    /// Creates one topic.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        self.create_topics(std::slice::from_ref(&topic), false)
            .await?
            .pop()
            .map(|(_, r)| r)
            .unwrap_or(Ok(()))
    }

    /// Deletes topics by name; one result per topic.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut req = DeleteTopicsRequest::default();
        req.timeout_ms = self.timeout_ms;
        req.topic_names = names.iter().map(tn).collect();
        let resp = self.cluster.send_controller(req).await?;
        let by_name: HashMap<String, _> = resp
            .responses
            .into_iter()
            .filter_map(|r| r.name.clone().map(|n| (n.0.to_string(), r)))
            .collect();
        let _ = self.cluster.refresh(None).await;
        Ok(names
            .iter()
            .map(|n| {
                let r = match by_name.get(n) {
                    Some(r) => check(r.error_code, r.error_message.as_ref(), || {
                        format!("deleting topic `{n}`")
                    }),
                    None => Err(Error::Protocol(format!("no result for topic `{n}`"))),
                };
                (n.clone(), r)
            })
            .collect())
    }

    /// Every topic, sorted by name.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicInfo>> {
        let m = self.cluster.refresh(None).await?;
        Ok(m.topics
            .values()
            .filter(|t| include_internal || !t.internal)
            .filter(|t| t.error.is_none())
            .cloned()
            .collect())
    }

    /// Describes the named topics; an unknown topic is an error.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicInfo> {
        let names = [name.to_string()];
        self.cluster.refresh(Some(&names)).await?;
        self.cluster.topic(name).await
    }

    /// Grows a topic to `total` partitions (Kafka cannot shrink).
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let mut req = CreatePartitionsRequest::default();
        req.timeout_ms = self.timeout_ms;
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = tn(topic);
        t.count = total;
        t.assignments = None;
        req.topics.push(t);
        let resp = self.cluster.send_controller(req).await?;
        for r in resp.results {
            check(r.error_code, r.error_message.as_ref(), || {
                format!("adding partitions to `{topic}`")
            })?;
        }
        let _ = self.cluster.refresh(None).await;
        Ok(())
    }

    /// Describes a topic's or broker's configs (all keys when `keys` is empty).
    pub async fn describe_configs(
        &self,
        resource: &ConfigResource,
        keys: &[String],
    ) -> Result<Vec<ConfigEntry>> {
        let mut req = DescribeConfigsRequest::default();
        let mut r = describe_configs_request::DescribeConfigsResource::default();
        r.resource_type = resource.kind();
        r.resource_name = sb(resource.name());
        r.configuration_keys = (!keys.is_empty()).then(|| keys.iter().map(sb).collect());
        req.resources.push(r);
        let resp = match resource {
            ConfigResource::Broker(id) if !id.is_empty() => {
                let id: i32 = id.parse().map_err(|_| {
                    Error::InvalidArgument(format!("broker id `{id}` is not a number"))
                })?;
                self.cluster.conn_to_broker(id).await?.send(req).await?
            }
            _ => self.cluster.send_any(req).await?,
        };
        let mut out = Vec::new();
        for res in resp.results {
            check(res.error_code, res.error_message.as_ref(), || {
                format!("describing configs of {resource}")
            })?;
            for c in res.configs {
                out.push(ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    source: source_name(c.config_source).to_string(),
                    read_only: c.read_only,
                    sensitive: c.is_sensitive,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Applies config changes (IncrementalAlterConfigs).
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
    ) -> Result<()> {
        let mut req = IncrementalAlterConfigsRequest::default();
        let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = resource.kind();
        r.resource_name = sb(resource.name());
        for op in ops {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            let (name, code, value) = match op {
                AlterConfigOp::Set(k, v) => (k, 0, Some(v)),
                AlterConfigOp::Delete(k) => (k, 1, None),
                AlterConfigOp::Append(k, v) => (k, 2, Some(v)),
                AlterConfigOp::Subtract(k, v) => (k, 3, Some(v)),
            };
            c.name = sb(name);
            c.config_operation = code;
            c.value = value.map(sb);
            r.configs.push(c);
        }
        req.resources.push(r);
        let resp = match resource {
            ConfigResource::Broker(id) if !id.is_empty() => {
                let id: i32 = id.parse().map_err(|_| {
                    Error::InvalidArgument(format!("broker id `{id}` is not a number"))
                })?;
                self.cluster.conn_to_broker(id).await?.send(req).await?
            }
            _ => self.cluster.send_controller(req).await?,
        };
        for r in resp.responses {
            check(r.error_code, r.error_message.as_ref(), || {
                format!("altering configs of {resource}")
            })?;
        }
        Ok(())
    }

    /// Cluster id, controller and brokers (DescribeCluster, or Metadata when
    /// the broker lacks it).
    /// DescribeUserScramCredentials (KIP-554): each user's mechanisms and
    /// iteration counts (never keys); `users` empty means every user. A
    /// user the broker has no credential for is an error for that user.
    pub async fn describe_user_scram_credentials(
        &self,
        users: &[String],
    ) -> Result<
        Vec<(
            String,
            Result<Vec<(crate::sasl::scram::ScramMechanism, i32)>>,
        )>,
    > {
        use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
        let conn = self.cluster.any_conn().await?;
        let mut req = DescribeUserScramCredentialsRequest::default();
        if !users.is_empty() {
            req.users = Some(
                users
                    .iter()
                    .map(|u| UserName::default().with_name(sb(u)))
                    .collect(),
            );
        }
        let resp = conn.send(req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "describing SCRAM credentials".into()
        })?;
        Ok(resp
            .results
            .into_iter()
            .map(|r| {
                let user = r.user.to_string();
                let result = check(r.error_code, r.error_message.as_ref(), || {
                    format!("SCRAM credentials of {user}")
                })
                .map(|()| {
                    r.credential_infos
                        .iter()
                        .filter_map(|c| {
                            crate::sasl::scram::ScramMechanism::from_type(c.mechanism)
                                .map(|m| (m, c.iterations))
                        })
                        .collect()
                });
                (user, result)
            })
            .collect())
    }

    /// AlterUserScramCredentials: sets `user`'s credential for `mechanism`
    /// from `password` (salted here with a fresh random salt, as Kafka's
    /// tools do: the password never leaves the client), or deletes it when
    /// `password` is `None`.
    pub async fn alter_user_scram_credential(
        &self,
        user: &str,
        mechanism: crate::sasl::scram::ScramMechanism,
        password: Option<&str>,
        iterations: i32,
    ) -> Result<()> {
        use kafka_protocol::messages::alter_user_scram_credentials_request::{
            ScramCredentialDeletion, ScramCredentialUpsertion,
        };
        let conn = self.cluster.any_conn().await?;
        let mut req = AlterUserScramCredentialsRequest::default();
        match password {
            Some(p) => {
                let salt = crate::sasl::scram::salt();
                let salted =
                    mechanism.salted_password(p.as_bytes(), &salt, iterations.max(1) as u32);
                req.upsertions.push(
                    ScramCredentialUpsertion::default()
                        .with_name(sb(user))
                        .with_mechanism(mechanism.type_code())
                        .with_iterations(iterations)
                        .with_salt(bytes::Bytes::from(salt))
                        .with_salted_password(bytes::Bytes::from(salted)),
                );
            }
            None => req.deletions.push(
                ScramCredentialDeletion::default()
                    .with_name(sb(user))
                    .with_mechanism(mechanism.type_code()),
            ),
        }
        let resp = conn.send(req).await?;
        for r in resp.results {
            check(r.error_code, r.error_message.as_ref(), || {
                format!("altering the SCRAM credential of {}", r.user.as_str())
            })?;
        }
        Ok(())
    }

    /// DescribeClientQuotas (KIP-546): the entities the filter matches
    /// (`strict`: those with no other component) and their quotas.
    pub async fn describe_client_quotas(
        &self,
        components: &[crate::quota::QuotaFilterComponent],
        strict: bool,
    ) -> Result<Vec<(crate::quota::QuotaEntity, BTreeMap<String, f64>)>> {
        use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
        let conn = self.cluster.any_conn().await?;
        let req = DescribeClientQuotasRequest::default()
            .with_components(
                components
                    .iter()
                    .map(|c| {
                        let (t, match_type, m) = c.wire();
                        ComponentData::default()
                            .with_entity_type(sb(t))
                            .with_match_type(match_type)
                            .with_match(m.map(sb))
                    })
                    .collect(),
            )
            .with_strict(strict);
        let resp = conn.send(req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "describing client quotas".into()
        })?;
        Ok(resp
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let entity = crate::quota::QuotaEntity::from_wire(
                    e.entity
                        .iter()
                        .map(|c| (c.entity_type.as_str(), c.entity_name.as_deref())),
                );
                let values = e
                    .values
                    .into_iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect();
                (entity, values)
            })
            .collect())
    }

    /// AlterClientQuotas: per entity, its keys set (`Some`) or removed
    /// (`None`); one outcome per entity the broker answers for.
    pub async fn alter_client_quotas(
        &self,
        alterations: &[(crate::quota::QuotaEntity, crate::quota::QuotaOps)],
        validate_only: bool,
    ) -> Result<Vec<(crate::quota::QuotaEntity, Result<()>)>> {
        use kafka_protocol::messages::alter_client_quotas_request::{
            EntityData, EntryData, OpData,
        };
        let conn = self.cluster.any_conn().await?;
        let req = AlterClientQuotasRequest::default()
            .with_entries(
                alterations
                    .iter()
                    .map(|(entity, ops)| {
                        EntryData::default()
                            .with_entity(
                                entity
                                    .0
                                    .iter()
                                    .map(|(t, n)| {
                                        EntityData::default()
                                            .with_entity_type(sb(t))
                                            .with_entity_name(n.as_deref().map(sb))
                                    })
                                    .collect(),
                            )
                            .with_ops(
                                ops.iter()
                                    .map(|(k, v)| {
                                        OpData::default()
                                            .with_key(sb(k))
                                            .with_value(v.unwrap_or(0.0))
                                            .with_remove(v.is_none())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_validate_only(validate_only);
        let resp = conn.send(req).await?;
        Ok(resp
            .entries
            .into_iter()
            .map(|e| {
                let entity = crate::quota::QuotaEntity::from_wire(
                    e.entity
                        .iter()
                        .map(|c| (c.entity_type.as_str(), c.entity_name.as_deref())),
                );
                let result = check(e.error_code, e.error_message.as_ref(), || {
                    format!("altering the quotas of {entity}")
                });
                (entity, result)
            })
            .collect())
    }

    /// CreateAcls: one outcome per binding, in order.
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<Vec<Result<()>>> {
        use kafka_protocol::messages::create_acls_request::AclCreation;
        let conn = self.cluster.any_conn().await?;
        let req = CreateAclsRequest::default().with_creations(
            acls.iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type)
                        .with_resource_name(sb(&a.resource_name))
                        .with_resource_pattern_type(a.pattern_type)
                        .with_principal(sb(&a.principal))
                        .with_host(sb(&a.host))
                        .with_operation(a.operation)
                        .with_permission_type(a.permission_type)
                })
                .collect(),
        );
        let resp = conn.send(req).await?;
        Ok(resp
            .results
            .iter()
            .map(|r| {
                check(r.error_code, r.error_message.as_ref(), || {
                    "creating an ACL".into()
                })
            })
            .collect())
    }

    /// DescribeAcls: the bindings the filter matches.
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let conn = self.cluster.any_conn().await?;
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(filter.resource_name.as_deref().map(sb))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(filter.principal.as_deref().map(sb))
            .with_host_filter(filter.host.as_deref().map(sb))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission_type);
        let resp = conn.send(req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "describing ACLs".into()
        })?;
        let mut out = Vec::new();
        for r in resp.resources {
            for a in r.acls {
                out.push(AclBinding {
                    resource_type: r.resource_type,
                    resource_name: r.resource_name.to_string(),
                    pattern_type: r.pattern_type,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission_type: a.permission_type,
                });
            }
        }
        Ok(out)
    }

    /// DeleteAcls: per filter, the bindings it removed.
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>>>> {
        use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
        let conn = self.cluster.any_conn().await?;
        let req = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type)
                        .with_resource_name_filter(f.resource_name.as_deref().map(sb))
                        .with_pattern_type_filter(f.pattern_type)
                        .with_principal_filter(f.principal.as_deref().map(sb))
                        .with_host_filter(f.host.as_deref().map(sb))
                        .with_operation(f.operation)
                        .with_permission_type(f.permission_type)
                })
                .collect(),
        );
        let resp = conn.send(req).await?;
        Ok(resp
            .filter_results
            .into_iter()
            .map(|r| {
                check(r.error_code, r.error_message.as_ref(), || {
                    "deleting ACLs".into()
                })
                .map(|()| {
                    r.matching_acls
                        .into_iter()
                        .map(|a| AclBinding {
                            resource_type: a.resource_type,
                            resource_name: a.resource_name.to_string(),
                            pattern_type: a.pattern_type,
                            principal: a.principal.to_string(),
                            host: a.host.to_string(),
                            operation: a.operation,
                            permission_type: a.permission_type,
                        })
                        .collect()
                })
            })
            .collect())
    }

    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let conn = self.cluster.any_conn().await?;
        if conn.supports(ApiKey::DescribeCluster) {
            let v2 = conn.version_for(ApiKey::DescribeCluster)? >= 2;
            let mut req = DescribeClusterRequest::default();
            // KIP-1073: list fenced brokers too, flagged, so that a broker
            // that stopped heartbeating shows up as fenced, not as gone.
            req.include_fenced_brokers = v2;
            let resp = conn.send(req).await?;
            check(resp.error_code, resp.error_message.as_ref(), || {
                "describing the cluster".into()
            })?;
            let mut brokers: Vec<BrokerDescription> = resp
                .brokers
                .into_iter()
                .map(|b| BrokerDescription {
                    id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.map(|r| r.to_string()),
                    fenced: v2.then_some(b.is_fenced),
                })
                .collect();
            brokers.sort_by_key(|b| b.id);
            return Ok(ClusterDescription {
                cluster_id: Some(resp.cluster_id.to_string()),
                controller_id: resp.controller_id.0,
                brokers,
            });
        }
        let m = self.cluster.refresh(None).await?;
        Ok(ClusterDescription {
            cluster_id: m.cluster_id.clone(),
            controller_id: m.controller_id,
            brokers: m
                .brokers
                .values()
                .map(BrokerDescription::from_info)
                .collect(),
        })
    }

    /// The metadata quorum: its leader, epoch, high watermark and each
    /// voter's and observer's replication state (DescribeQuorum, KIP-595).
    /// Any broker answers: as in Kafka, brokers forward the request to the
    /// active controller. Retriable errors (no leader during an election,
    /// a broker gone) are retried every `retry.backoff.ms` within
    /// `default.api.timeout.ms`, as Java's admin client does, so a call
    /// made during a controller failover returns the new leader.
    pub async fn describe_quorum(&self) -> Result<crate::QuorumInfo> {
        self.retrying("DescribeQuorum", || async {
            crate::quorum::from_response(self.cluster.send_any(crate::quorum::request()).await?)
        })
        .await
    }

    /// Runs `op` until it succeeds, fails for good, or a retry would end
    /// after `default.api.timeout.ms`: retriable errors are retried every
    /// `retry.backoff.ms`, as Java's admin client retries its calls.
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(self.timeout_ms as u64);
        let backoff = self.cluster.cfg.retry_backoff;
        loop {
            match op().await {
                Err(e) if e.is_retriable() && std::time::Instant::now() + backoff < deadline => {
                    tracing::debug!("{what} failed, retrying: {e}");
                    tokio::time::sleep(backoff).await;
                }
                r => return r,
            }
        }
    }

    /// Runs `op` on `group`'s coordinator, looked up afresh on each try:
    /// a coordinator still loading the group, moved away or not yet
    /// available answers with a retriable error, which Java's admin
    /// client retries (a new cluster's or a failed-over coordinator
    /// answers COORDINATOR_LOAD_IN_PROGRESS for a while).
    async fn on_coordinator<T, F, Fut>(&self, what: &str, group: &str, op: F) -> Result<T>
    where
        F: Fn(i32, Arc<crate::connection::Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let op = &op;
        self.retrying(what, || async move {
            let (node, conn) = self.cluster.find_coordinator(group).await?;
            op(node, conn).await
        })
        .await
    }

    /// ElectLeaders (KIP-460): `preferred` moves leadership back to each
    /// partition's first replica, otherwise an unclean election gives a
    /// leaderless partition any live replica. `None`: every partition
    /// (only the elections made are reported). ELECTION_NOT_NEEDED is an
    /// error per partition, as Kafka reports it.
    pub async fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let mut req = ElectLeadersRequest::default();
        req.election_type = if preferred { 0 } else { 1 };
        req.timeout_ms = self.timeout_ms;
        req.topic_partitions = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in ps {
                by_topic
                    .entry(tp.topic.as_str())
                    .or_default()
                    .push(tp.partition);
            }
            by_topic
                .into_iter()
                .map(|(t, p)| {
                    elect_leaders_request::TopicPartitions::default()
                        .with_topic(tn(t))
                        .with_partitions(p)
                })
                .collect()
        });
        let resp = self.cluster.send_controller(req).await?;
        check(resp.error_code, None, || "electing leaders".to_string())?;
        let mut out = Vec::new();
        for t in resp.replica_election_results {
            for p in t.partition_result {
                let tp = TopicPartition::new(t.topic.0.to_string(), p.partition_id);
                let r = check(p.error_code, p.error_message.as_ref(), || {
                    format!("electing a leader for {}-{}", tp.topic, tp.partition)
                });
                out.push((tp, r));
            }
        }
        let _ = self.cluster.refresh(None).await;
        Ok(out)
    }

    /// AlterPartitionReassignments (KIP-455): each partition moves to its
    /// target replicas (added, caught up, then the old ones removed), or
    /// `None` cancels its ongoing reassignment. The replication factor may
    /// change (KIP-860's flag is set).
    pub async fn alter_partition_reassignments(
        &self,
        targets: &[(TopicPartition, Option<Vec<i32>>)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.timeout_ms = self.timeout_ms;
        req.allow_replication_factor_change = true;
        let mut by_topic: BTreeMap<
            &str,
            Vec<alter_partition_reassignments_request::ReassignablePartition>,
        > = BTreeMap::new();
        for (tp, target) in targets {
            by_topic.entry(tp.topic.as_str()).or_default().push(
                alter_partition_reassignments_request::ReassignablePartition::default()
                    .with_partition_index(tp.partition)
                    .with_replicas(
                        target
                            .as_ref()
                            .map(|r| r.iter().map(|b| BrokerId(*b)).collect()),
                    ),
            );
        }
        req.topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(tn(t))
                    .with_partitions(ps)
            })
            .collect();
        let resp = self.cluster.send_controller(req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "reassigning partitions".to_string()
        })?;
        let mut out = Vec::new();
        for t in resp.responses {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                let r = check(p.error_code, p.error_message.as_ref(), || {
                    format!("reassigning {}-{}", tp.topic, tp.partition)
                });
                out.push((tp, r));
            }
        }
        Ok(out)
    }

    /// ListPartitionReassignments: the ongoing ones (of `partitions`, or
    /// all), sorted.
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<OngoingReassignment>> {
        let mut req = ListPartitionReassignmentsRequest::default();
        req.timeout_ms = self.timeout_ms;
        req.topics = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in ps {
                by_topic
                    .entry(tp.topic.as_str())
                    .or_default()
                    .push(tp.partition);
            }
            by_topic
                .into_iter()
                .map(|(t, p)| {
                    list_partition_reassignments_request::ListPartitionReassignmentsTopics::default(
                    )
                    .with_name(tn(t))
                    .with_partition_indexes(p)
                })
                .collect()
        });
        let resp = self.cluster.send_controller(req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "listing partition reassignments".to_string()
        })?;
        let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect::<Vec<_>>();
        let mut out: Vec<OngoingReassignment> = resp
            .topics
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| OngoingReassignment {
                    partition: TopicPartition::new(topic.clone(), p.partition_index),
                    replicas: ids(p.replicas),
                    adding: ids(p.adding_replicas),
                    removing: ids(p.removing_replicas),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.partition.topic.as_str(), a.partition.partition)
                .cmp(&(b.partition.topic.as_str(), b.partition.partition))
        });
        Ok(out)
    }

    /// Consumer groups on every broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let m = self.cluster.refresh(None).await?;
        let mut out = Vec::new();
        for id in m.brokers.keys() {
            let conn = self.cluster.conn_to_broker(*id).await?;
            let typed = conn.version_for(ApiKey::ListGroups)? >= 5;
            let resp = conn.send(ListGroupsRequest::default()).await?;
            check(resp.error_code, None, || {
                format!("listing groups on broker {id}")
            })?;
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
                group_type: if typed {
                    GroupType::parse(&g.group_type)
                } else {
                    GroupType::Classic
                },
                coordinator: *id,
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Describes one group (state, members, assignments).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        self.on_coordinator("DescribeGroups", group, |node, conn| {
            describe_group_on(node, conn, group)
        })
        .await
    }

    /// Deletes groups (they must be empty); one result per group.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::new();
        for g in groups {
            let r = async {
                self.on_coordinator("DeleteGroups", g, |_, conn| async move {
                    let mut req = DeleteGroupsRequest::default();
                    req.groups_names = vec![GroupId(sb(g))];
                    let resp = conn.send(req).await?;
                    for r in resp.results {
                        check(r.error_code, None, || format!("deleting group `{g}`"))?;
                    }
                    Ok(())
                })
                .await
            }
            .await;
            out.push((g.clone(), r));
        }
        Ok(out)
    }

    /// A group's committed offsets (all partitions it has committed).
    pub async fn list_group_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        self.on_coordinator("OffsetFetch", group, |_, conn| async move {
            crate::consumer::fetch_committed(&conn, group, None).await
        })
        .await
    }

    /// Sets a group's committed offsets. The group must have no active
    /// members (Kafka rejects commits from outside a live generation).
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        self.on_coordinator("OffsetCommit", group, |_, conn| async move {
            crate::consumer::commit_offsets(&conn, group, -1, "", offsets).await
        })
        .await
    }

    /// Finds offsets by spec for each partition (grouped by leader).
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        crate::consumer::list_offsets(&self.cluster, partitions, spec.ts(), 0).await
    }

    /// Every partition of `topic` with its earliest and latest offsets.
    pub async fn topic_offsets(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>> {
        let t = self.cluster.topic(topic).await?;
        let tps: Vec<TopicPartition> = t
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.id))
            .collect();
        let lo = self.list_offsets(&tps, OffsetSpec::Earliest).await?;
        let hi = self.list_offsets(&tps, OffsetSpec::Latest).await?;
        Ok(tps
            .iter()
            .map(|tp| {
                (
                    tp.partition,
                    lo.get(tp).copied().unwrap_or(-1),
                    hi.get(tp).copied().unwrap_or(-1),
                )
            })
            .collect())
    }

    /// Deletes records before the given offsets (DeleteRecords); returns the
    /// new low watermarks.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let topics: Vec<String> = before.keys().map(|tp| tp.topic.clone()).collect();
        let m = self.cluster.refresh(Some(&topics)).await?;
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<(i32, i64)>>> = BTreeMap::new();
        for (tp, off) in before {
            let leader = leader_of(&m, tp)?;
            by_leader
                .entry(leader)
                .or_default()
                .entry(tp.topic.clone())
                .or_default()
                .push((tp.partition, *off));
        }
        let mut out = BTreeMap::new();
        for (leader, topics) in by_leader {
            let conn = self.cluster.conn_to_broker(leader).await?;
            if !conn.supports(ApiKey::DeleteRecords) {
                return Err(Error::UnsupportedApi {
                    api: "DeleteRecords".into(),
                    addr: conn.addr.clone(),
                    min: 0,
                    max: 2,
                });
            }
            let mut req = DeleteRecordsRequest::default();
            req.timeout_ms = self.timeout_ms;
            for (t, parts) in topics {
                let mut dt = delete_records_request::DeleteRecordsTopic::default();
                dt.name = tn(&t);
                dt.partitions = parts
                    .into_iter()
                    .map(|(p, o)| {
                        let mut dp = delete_records_request::DeleteRecordsPartition::default();
                        dp.partition_index = p;
                        dp.offset = o;
                        dp
                    })
                    .collect();
                req.topics.push(dt);
            }
            let resp = conn.send(req).await?;
            for t in resp.topics {
                for p in t.partitions {
                    let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                    check(p.error_code, None, || format!("deleting records of {tp}"))?;
                    out.insert(tp, p.low_watermark);
                }
            }
        }
        Ok(out)
    }
}

/// ConsumerGroupDescribe for one group; `None` when the coordinator says
/// it is not a KIP-848 group (GROUP_ID_NOT_FOUND, as Kafka answers for
/// classic and unknown groups), so the caller asks DescribeGroups.
async fn describe_consumer_group(
    conn: &crate::connection::Connection,
    node: i32,
    group: &str,
) -> Result<Option<GroupDescription>> {
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![GroupId(sb(group))];
    let resp = conn.send(req).await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| Error::Protocol("ConsumerGroupDescribe returned no group".into()))?;
    if g.error_code == KafkaCode::GROUP_ID_NOT_FOUND {
        return Ok(None);
    }
    check(g.error_code, g.error_message.as_ref(), || {
        format!("describing group `{group}`")
    })?;
    let tps = |a: &consumer_group_describe_response::Assignment| -> Vec<TopicPartition> {
        let mut v: Vec<TopicPartition> = a
            .topic_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t.topic_name.0.to_string(), *p))
            })
            .collect();
        v.sort();
        v
    };
    Ok(Some(GroupDescription {
        group_id: g.group_id.0.to_string(),
        state: g.group_state.to_string(),
        group_type: GroupType::Consumer,
        protocol_type: "consumer".into(),
        protocol: g.assignor_name.to_string(),
        coordinator: node,
        epochs: Some((g.group_epoch, g.assignment_epoch)),
        members: g
            .members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: tps(&m.assignment),
                member_epoch: Some(m.member_epoch),
                target_assignment: Some(tps(&m.target_assignment)),
            })
            .collect(),
    }))
}

pub(crate) fn leader_of(m: &Metadata, tp: &TopicPartition) -> Result<i32> {
    let t = m.topic(&tp.topic).ok_or_else(|| {
        Error::kafka(
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
            None,
            format!("topic `{}`", tp.topic),
        )
    })?;
    let p = t
        .partitions
        .iter()
        .find(|p| p.id == tp.partition)
        .ok_or_else(|| {
            Error::kafka(
                KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                None,
                format!("partition {tp}"),
            )
        })?;
    if p.leader < 0 {
        return Err(Error::kafka(
            KafkaCode::LEADER_NOT_AVAILABLE,
            None,
            format!("partition {tp}"),
        ));
    }
    Ok(p.leader)
}

/// Describes one group on its coordinator: as Java's admin client,
/// ConsumerGroupDescribe first (KIP-848 groups), DescribeGroups when the
/// coordinator answers that it is no consumer group (or lacks the API).
async fn describe_group_on(
    node: i32,
    conn: Arc<crate::connection::Connection>,
    group: &str,
) -> Result<GroupDescription> {
    if conn.supports(ApiKey::ConsumerGroupDescribe) {
        if let Some(d) = describe_consumer_group(&conn, node, group).await? {
            return Ok(d);
        }
    }
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(sb(group))];
    let resp = conn.send(req).await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| Error::Protocol("DescribeGroups returned no group".into()))?;
    check(g.error_code, g.error_message.as_ref(), || {
        format!("describing group `{group}`")
    })?;
    let consumer = g.protocol_type.as_str() == "consumer";
    Ok(GroupDescription {
        group_id: g.group_id.0.to_string(),
        state: g.group_state.to_string(),
        group_type: GroupType::Classic,
        epochs: None,
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        coordinator: node,
        members: g
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: if consumer {
                    crate::consumer::decode_assignment(&m.member_assignment).unwrap_or_default()
                } else {
                    Vec::new()
                },
                member_epoch: None,
                target_assignment: None,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// One node that is its own group coordinator and answers OffsetCommit
    /// with COORDINATOR_LOAD_IN_PROGRESS for its first `loading` commits,
    /// as a new or failed-over coordinator does while it loads the group.
    async fn loading_coordinator(loading: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let commits = Arc::new(AtomicUsize::new(0));
        let seen = commits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, addr.port(), seen.clone(), loading));
            }
        });
        (addr.to_string(), commits)
    }

    async fn serve(mut s: TcpStream, port: u16, commits: Arc<AtomicUsize>, loading: usize) {
        loop {
            let Ok(len) = s.read_i32().await else { return };
            let mut frame = vec![0u8; len as usize];
            if s.read_exact(&mut frame).await.is_err() {
                return;
            }
            let mut buf = &frame[..];
            let key = ApiKey::try_from(buf.get_i16()).unwrap();
            let version = buf.get_i16();
            let mut body = &frame[..];
            let header =
                RequestHeader::decode(&mut body, key.request_header_version(version)).unwrap();
            let mut out = BytesMut::new();
            match key {
                ApiKey::ApiVersions => {
                    let mut r = ApiVersionsResponse::default();
                    for (k, max) in [
                        (ApiKey::ApiVersions, 3),
                        (ApiKey::FindCoordinator, 4),
                        (ApiKey::OffsetCommit, 8),
                    ] {
                        let mut v = api_versions_response::ApiVersion::default();
                        v.api_key = k as i16;
                        v.min_version = 0;
                        v.max_version = max;
                        r.api_keys.push(v);
                    }
                    r.encode(&mut out, version).unwrap();
                }
                ApiKey::FindCoordinator => {
                    let req = FindCoordinatorRequest::decode(&mut body, version).unwrap();
                    let mut c = find_coordinator_response::Coordinator::default();
                    c.key = req.coordinator_keys.first().cloned().unwrap_or_default();
                    c.node_id = BrokerId(1);
                    c.host = sb("127.0.0.1");
                    c.port = port as i32;
                    let mut r = FindCoordinatorResponse::default();
                    r.coordinators = vec![c];
                    r.encode(&mut out, version).unwrap();
                }
                ApiKey::OffsetCommit => {
                    let req = OffsetCommitRequest::decode(&mut body, version).unwrap();
                    let code = if commits.fetch_add(1, Ordering::SeqCst) < loading {
                        KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
                    } else {
                        0
                    };
                    let mut r = OffsetCommitResponse::default();
                    for t in req.topics {
                        let mut rt = offset_commit_response::OffsetCommitResponseTopic::default();
                        rt.name = t.name;
                        for p in t.partitions {
                            let mut rp =
                                offset_commit_response::OffsetCommitResponsePartition::default();
                            rp.partition_index = p.partition_index;
                            rp.error_code = code;
                            rt.partitions.push(rp);
                        }
                        r.topics.push(rt);
                    }
                    r.encode(&mut out, version).unwrap();
                }
                _ => return,
            }
            let mut head = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut head, key.response_header_version(version))
                .unwrap();
            let mut msg = BytesMut::new();
            msg.put_i32((head.len() + out.len()) as i32);
            msg.extend_from_slice(&head);
            msg.extend_from_slice(&out);
            if s.write_all(&msg).await.is_err() {
                return;
            }
        }
    }

    fn admin(bootstrap: &str) -> Admin {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap);
        cfg.set("retry.backoff.ms", "10");
        cfg.set("default.api.timeout.ms", "10000");
        Admin::new(&cfg).unwrap()
    }

    #[tokio::test]
    async fn a_loading_coordinator_is_retried_until_it_answers() {
        let (addr, commits) = loading_coordinator(3).await;
        let offsets = BTreeMap::from([(TopicPartition::new("t", 0), 42)]);
        admin(&addr)
            .alter_group_offsets("g", &offsets)
            .await
            .unwrap();
        assert_eq!(commits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn retries_stop_at_the_api_timeout() {
        let (addr, _) = loading_coordinator(usize::MAX).await;
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &addr);
        cfg.set("retry.backoff.ms", "10");
        cfg.set("default.api.timeout.ms", "200");
        let offsets = BTreeMap::from([(TopicPartition::new("t", 0), 42)]);
        let err = Admin::new(&cfg)
            .unwrap()
            .alter_group_offsets("g", &offsets)
            .await
            .unwrap_err();
        assert!(err.is_retriable(), "{err}");
    }
}
