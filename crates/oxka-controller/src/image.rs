//! The `MetadataImage`: what folding the metadata log's records in order
//! gives. Every node builds the same image from the same committed log, so
//! Metadata, DescribeCluster and DescribeConfigs answer alike everywhere
//! once a node has caught up. Handlers read an `Arc` of it; a new image
//! replaces it whole after each applied batch. Snapshots of the metadata log
//! are this image serialised.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::{ConfigResourceType, Endpoint, MetadataRecord, RecordBatch, ScramCredential};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionInfo {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped by every change of the partition (Kafka's partition epoch,
    /// which AlterPartition is checked against).
    #[serde(default)]
    pub partition_epoch: i32,
    /// An ongoing reassignment (KIP-455): target replicas not yet in the
    /// ISR, and the current ones the target drops. (Always serialised:
    /// `TopicInfo` also travels in postcard frames, which cannot skip
    /// fields.)
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

impl PartitionInfo {
    /// A partition as created: the replicas are the ISR, the first leads.
    pub fn new(replicas: Vec<i32>) -> Self {
        PartitionInfo {
            leader: replicas.first().copied().unwrap_or(-1),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    /// The replicas a finished reassignment keeps.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionInfo>,
    /// Topic-level overrides only; defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

impl TopicInfo {
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map(|p| p.replicas.len() as i16)
            .unwrap_or(0)
    }

    pub fn is_internal(&self) -> bool {
        self.name == "__consumer_offsets" || self.name == "__transaction_state"
    }
}

/// A registered broker incarnation (Kafka's BrokerRegistration).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BrokerRegistration {
    pub id: i32,
    pub incarnation_id: Uuid,
    pub epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
}

impl BrokerRegistration {
    /// The endpoint for a listener name, or the first one.
    pub fn endpoint(&self, listener: Option<&str>) -> Option<&Endpoint> {
        listener
            .and_then(|l| self.endpoints.iter().find(|e| e.name == l))
            .or_else(|| self.endpoints.first())
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct MetadataImage {
    /// The offset (Raft index) of the last batch folded in; 0 for none.
    #[serde(default)]
    pub offset: u64,
    pub topics: BTreeMap<String, TopicInfo>,
    /// First producer id not yet handed out in a block (Kafka's
    /// ProducerIdsRecord): ids below it may be in use, so a restart
    /// continues above it and never reuses one.
    #[serde(default)]
    pub next_producer_id_block: i64,
    /// Dynamic broker configs (AlterConfigs on resource type BROKER) by
    /// resource name: a node id, or "" for the cluster-wide default
    /// (Kafka's ConfigRecords for brokers). Topic overrides live in
    /// [`TopicInfo::configs`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Group config overrides (KIP-848, resource type GROUP) by group id
    /// (Kafka's ConfigRecords for groups); a group need not exist.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Registered brokers by id (the latest incarnation of each).
    #[serde(default)]
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Finalized feature levels (FeatureLevelRecord).
    #[serde(default)]
    pub features: BTreeMap<String, i16>,
    /// SCRAM credentials by user, then Kafka's mechanism type
    /// (UserScramCredentialRecord).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram_credentials: BTreeMap<String, BTreeMap<i8, ScramCredential>>,
    /// ACLs by id (AccessControlEntryRecord), what the authorizer
    /// decides on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub acls: crate::acl::AclMap,
    /// Client quotas by entity (ClientQuotaRecord), what the brokers
    /// enforce.
    #[serde(default, skip_serializing_if = "crate::quota::ClientQuotas::is_empty")]
    pub client_quotas: crate::quota::ClientQuotas,
    #[serde(skip)]
    by_id: HashMap<Uuid, String>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicInfo> {
        self.by_id.get(id).and_then(|n| self.topics.get(n))
    }

    pub fn upsert(&mut self, t: TopicInfo) {
        self.by_id.insert(t.id, t.name.clone());
        self.topics.insert(t.name.clone(), t);
    }

    pub fn remove(&mut self, name: &str) -> Option<TopicInfo> {
        let t = self.topics.remove(name)?;
        self.by_id.remove(&t.id);
        Some(t)
    }

    /// Rebuilds the id index (after deserialising a snapshot).
    pub fn reindex(&mut self) {
        self.by_id = self
            .topics
            .values()
            .map(|t| (t.id, t.name.clone()))
            .collect();
    }

    /// Registered, unfenced brokers: the ones Metadata lists and placement
    /// uses (Kafka's getAliveBrokerNodes).
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    pub fn is_live(&self, broker: i32) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// Folds one committed batch in (at Raft index `offset`).
    pub fn apply_batch(&mut self, offset: u64, batch: &RecordBatch) {
        for r in &batch.records {
            self.apply(r);
        }
        self.offset = offset;
    }

    /// Folds one record in. A record naming something that is not there
    /// (which a correct controller never writes) is skipped with a warning
    /// rather than taking the node down.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::FeatureLevel { name, level } => {
                self.features.insert(name.clone(), *level);
            }
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                broker_epoch,
                endpoints,
                rack,
                fenced,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        id: *broker_id,
                        incarnation_id: *incarnation_id,
                        epoch: *broker_epoch,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: *fenced,
                    },
                );
            }
            MetadataRecord::FenceBroker {
                broker_id,
                broker_epoch,
            }
            | MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => {
                let fenced = matches!(record, MetadataRecord::FenceBroker { .. });
                match self.brokers.get_mut(broker_id) {
                    Some(b) if b.epoch == *broker_epoch => b.fenced = fenced,
                    _ => tracing::warn!(
                        broker_id,
                        broker_epoch,
                        "fencing change for an unknown broker epoch"
                    ),
                }
            }
            MetadataRecord::Topic { name, topic_id } => self.upsert(TopicInfo {
                name: name.clone(),
                id: *topic_id,
                partitions: Vec::new(),
                configs: BTreeMap::new(),
            }),
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let Some(t) = self.topic_mut(topic_id) else {
                    tracing::warn!(%topic_id, partition, "partition record for an unknown topic");
                    return;
                };
                let info = PartitionInfo {
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                };
                let i = *partition as usize;
                if i < t.partitions.len() {
                    t.partitions[i] = info;
                } else if i == t.partitions.len() {
                    t.partitions.push(info);
                } else {
                    tracing::warn!(%topic_id, partition, "partition record out of order");
                }
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                isr,
                leader,
                replicas,
                adding_replicas,
                removing_replicas,
            } => {
                let Some(p) = self
                    .topic_mut(topic_id)
                    .and_then(|t| t.partitions.get_mut(*partition as usize))
                else {
                    tracing::warn!(%topic_id, partition, "change of an unknown partition");
                    return;
                };
                if let Some(isr) = isr {
                    p.isr = isr.clone();
                }
                if let Some(r) = replicas {
                    p.replicas = r.clone();
                }
                if let Some(a) = adding_replicas {
                    p.adding_replicas = a.clone();
                }
                if let Some(r) = removing_replicas {
                    p.removing_replicas = r.clone();
                }
                if let Some(l) = leader {
                    if *l != p.leader {
                        p.leader = *l;
                        p.leader_epoch += 1;
                    }
                }
                p.partition_epoch += 1;
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.by_id.get(topic_id).cloned() {
                    self.remove(&name);
                }
            }
            MetadataRecord::Config {
                resource_type,
                resource_name,
                name,
                value,
            } => {
                let map = match resource_type {
                    ConfigResourceType::Topic => match self.topics.get_mut(resource_name) {
                        Some(t) => &mut t.configs,
                        None => return,
                    },
                    ConfigResourceType::Broker => self
                        .broker_configs
                        .entry(resource_name.clone())
                        .or_default(),
                    ConfigResourceType::Group => {
                        self.group_configs.entry(resource_name.clone()).or_default()
                    }
                };
                match value {
                    Some(v) => {
                        map.insert(name.clone(), v.clone());
                    }
                    None => {
                        map.remove(name);
                    }
                }
                self.broker_configs.retain(|_, m| !m.is_empty());
                self.group_configs.retain(|_, m| !m.is_empty());
            }
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            } => {
                self.scram_credentials
                    .entry(name.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                if let Some(m) = self.scram_credentials.get_mut(name) {
                    m.remove(mechanism);
                    if m.is_empty() {
                        self.scram_credentials.remove(name);
                    }
                }
            }
            MetadataRecord::AccessControlEntry { id, acl } => {
                self.acls.insert(*id, acl.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                self.acls.remove(id);
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                self.client_quotas.apply(entity, key, *value);
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                self.next_producer_id_block = self.next_producer_id_block.max(*next_producer_id);
            }
        }
    }

    fn topic_mut(&mut self, id: &Uuid) -> Option<&mut TopicInfo> {
        let name = self.by_id.get(id)?;
        self.topics.get_mut(name)
    }

    /// The records that rebuild this image's topics, configs and producer-id
    /// block from nothing: how a single-node release's JSON metadata is
    /// migrated into the metadata log on first start.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        for t in self.topics.values() {
            out.extend(topic_records(t));
        }
        for (res, map) in &self.broker_configs {
            out.extend(config_records(ConfigResourceType::Broker, res, map));
        }
        for (res, map) in &self.group_configs {
            out.extend(config_records(ConfigResourceType::Group, res, map));
        }
        for (name, by_mechanism) in &self.scram_credentials {
            for (mechanism, credential) in by_mechanism {
                out.push(MetadataRecord::UserScramCredential {
                    name: name.clone(),
                    mechanism: *mechanism,
                    credential: credential.clone(),
                });
            }
        }
        for (id, acl) in &self.acls {
            out.push(MetadataRecord::AccessControlEntry {
                id: *id,
                acl: acl.clone(),
            });
        }
        for (entity, values) in self.client_quotas.iter() {
            for (key, value) in values {
                out.push(MetadataRecord::ClientQuota {
                    entity: entity.clone(),
                    key: key.clone(),
                    value: Some(*value),
                });
            }
        }
        if self.next_producer_id_block > 0 {
            out.push(MetadataRecord::ProducerIds {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id_block,
            });
        }
        out
    }
}

/// A new topic's records: TopicRecord, its ConfigRecords, a PartitionRecord
/// per partition (Kafka's order in ReplicationControlManager.createTopic).
pub fn topic_records(t: &TopicInfo) -> Vec<MetadataRecord> {
    let mut out = vec![MetadataRecord::Topic {
        name: t.name.clone(),
        topic_id: t.id,
    }];
    out.extend(config_records(
        ConfigResourceType::Topic,
        &t.name,
        &t.configs,
    ));
    out.extend(
        t.partitions
            .iter()
            .enumerate()
            .map(|(i, p)| MetadataRecord::Partition {
                topic_id: t.id,
                partition: i as i32,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
            }),
    );
    out
}

fn config_records<'a>(
    resource_type: ConfigResourceType,
    resource_name: &str,
    map: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = MetadataRecord> + 'a {
    let resource_name = resource_name.to_string();
    map.iter().map(move |(k, v)| MetadataRecord::Config {
        resource_type,
        resource_name: resource_name.clone(),
        name: k.clone(),
        value: Some(v.clone()),
    })
}

/// The ConfigRecords that turn `old` into `new` for one resource.
pub fn config_diff(
    resource_type: ConfigResourceType,
    resource_name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.push(MetadataRecord::Config {
                resource_type,
                resource_name: resource_name.to_string(),
                name: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        out.push(MetadataRecord::Config {
            resource_type,
            resource_name: resource_name.to_string(),
            name: k.clone(),
            value: None,
        });
    }
    out
}

/// Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Topics whose names differ only by '.' versus '_' collide in metric names,
/// so Kafka refuses to create the second one.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions: vec![PartitionInfo {
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            }],
            configs: BTreeMap::from([("retention.ms".to_string(), "5".to_string())]),
        }
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "ü", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        assert_eq!(collision_key("a.b"), collision_key("a_b"));
    }

    #[test]
    fn records_rebuild_the_image() {
        let mut image = MetadataImage::default();
        image.upsert(topic("a"));
        image.upsert(topic("b"));
        image.next_producer_id_block = 3000;
        image
            .group_configs
            .insert("g".into(), BTreeMap::from([("k".into(), "v".into())]));
        let entity = crate::quota::ClientQuotaEntity {
            user: Some(crate::quota::EntityName::Default),
            client_id: Some(crate::quota::EntityName::Named("c".into())),
            ip: None,
        };
        image.apply(&MetadataRecord::ClientQuota {
            entity: entity.clone(),
            key: crate::quota::PRODUCER_BYTE_RATE.into(),
            value: Some(1024.0),
        });
        let mut rebuilt = MetadataImage::default();
        rebuilt.apply_batch(1, &RecordBatch::new(image.to_records()));
        assert_eq!(rebuilt.client_quotas, image.client_quotas);
        assert!(rebuilt.client_quotas.get(&entity).is_some());
        // the image's snapshot form keeps them too
        let json = serde_json::to_vec(&rebuilt).unwrap();
        let back: MetadataImage = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.client_quotas, image.client_quotas);
        assert_eq!(rebuilt.topics, image.topics);
        assert_eq!(rebuilt.group_configs, image.group_configs);
        assert_eq!(rebuilt.next_producer_id_block, 3000);
        assert_eq!(rebuilt.offset, 1);
        let id = image.topic("a").unwrap().id;
        assert_eq!(rebuilt.topic_by_id(&id).unwrap().name, "a");
    }

    #[test]
    fn partition_change_bumps_epochs_and_remove_forgets_the_id() {
        let mut image = MetadataImage::default();
        let t = topic("a");
        let id = t.id;
        image.apply_batch(1, &RecordBatch::new(topic_records(&t)));
        image.apply(&MetadataRecord::PartitionChange {
            topic_id: id,
            partition: 0,
            isr: Some(vec![2]),
            leader: Some(2),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        });
        let p = &image.topic("a").unwrap().partitions[0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 1));
        image.apply(&MetadataRecord::PartitionChange {
            topic_id: id,
            partition: 0,
            isr: Some(vec![2, 1]),
            leader: None,
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        });
        let p = &image.topic("a").unwrap().partitions[0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 2));
        image.apply(&MetadataRecord::RemoveTopic { topic_id: id });
        assert!(image.topic("a").is_none() && image.topic_by_id(&id).is_none());
    }

    #[test]
    fn fencing_follows_the_broker_epoch() {
        let mut image = MetadataImage::default();
        image.apply(&MetadataRecord::RegisterBroker {
            broker_id: 1,
            incarnation_id: Uuid::new_v4(),
            broker_epoch: 10,
            endpoints: vec![],
            rack: None,
            fenced: true,
        });
        assert!(!image.is_live(1));
        image.apply(&MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 9,
        });
        assert!(!image.is_live(1), "a stale epoch changes nothing");
        image.apply(&MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 10,
        });
        assert!(image.is_live(1));
        assert_eq!(image.live_brokers().count(), 1);
    }
}
