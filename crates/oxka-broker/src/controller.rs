//! The metadata authority for topic changes: validates CreateTopics,
//! DeleteTopics and CreatePartitions, places replicas, persists the new image
//! and then tells the replica manager to follow it.
//!
//! On one node this runs in-process. It is the seam where the Raft metadata
//! quorum (`oxka-controller`) comes in: the same decisions, written to the
//! replicated metadata log instead of the local snapshot.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use oxka_log::TopicPartition;
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use crate::config::dynamic::{self, AlterConfigError, DynamicBrokerConfigs};
use crate::config::KafkaConfig;
use crate::metadata::{
    collision_key, validate_topic_name, MetadataError, MetadataImage, MetadataStore, PartitionInfo,
    TopicInfo,
};
use crate::replica_manager::{log_error_code, ReplicaManager};

/// A Kafka error code with the message that goes beside it in responses.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ResponseError,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<AlterConfigError> for ApiError {
    fn from(e: AlterConfigError) -> Self {
        match e {
            AlterConfigError::InvalidRequest(m) => ApiError::new(ResponseError::InvalidRequest, m),
            AlterConfigError::InvalidConfig(m) => ApiError::new(ResponseError::InvalidConfig, m),
        }
    }
}

/// The resource an AlterConfigs / IncrementalAlterConfigs entry changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigTarget {
    /// A topic's overrides (resource type 2).
    Topic(String),
    /// Dynamic broker configs (resource type 4): a node id, or "" for the
    /// cluster-wide default.
    Broker(String),
    /// A group's config overrides (resource type 32, KIP-848).
    Group(String),
}

/// The dynamic broker configs in `image` that apply to `node_id`.
fn dynamic_configs_of(image: &MetadataImage, node_id: i32) -> DynamicBrokerConfigs {
    DynamicBrokerConfigs {
        per_broker: image
            .broker_configs
            .get(&node_id.to_string())
            .cloned()
            .unwrap_or_default(),
        cluster_default: image.broker_configs.get("").cloned().unwrap_or_default(),
    }
}

impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> Self {
        ApiError::new(ResponseError::KafkaStorageError, e.to_string())
    }
}

pub struct CreateTopicSpec {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Explicit replica assignment per partition index, if any.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: BTreeMap<String, String>,
}

pub struct Controller {
    config: Arc<KafkaConfig>,
    image: RwLock<Arc<MetadataImage>>,
    store: MetadataStore,
    replica_manager: Arc<ReplicaManager>,
    /// Serialises metadata changes so validate-then-write is atomic.
    write_lock: Mutex<()>,
    /// The current producer-id block: next id to hand out, end (exclusive).
    producer_ids: Mutex<(i64, i64)>,
}

/// Kafka's controller refuses operations that would write more than 10,000
/// records at once (`MAX_RECORDS_PER_USER_OP`); the same bound here keeps a
/// CreateTopics or CreatePartitions asking for two billion partitions from
/// allocating memory for each before anything is validated further.
pub const MAX_PARTITIONS_PER_OPERATION: i32 = 10_000;

fn too_many_partitions(n: i32) -> ApiError {
    ApiError::new(
        ResponseError::PolicyViolation,
        format!(
            "Creating {n} partitions in one operation exceeds the limit of {MAX_PARTITIONS_PER_OPERATION}; create them in several steps."
        ),
    )
}

/// Producer ids are reserved in blocks so that persisting happens once per
/// block, not once per producer.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl Controller {
    /// Loads the persisted image and brings the replica manager in line with
    /// it (opening logs, creating missing ones, removing orphans).
    pub fn start(
        config: Arc<KafkaConfig>,
        replica_manager: Arc<ReplicaManager>,
    ) -> Result<Controller, Box<dyn std::error::Error + Send + Sync>> {
        let dir = config
            .log_dirs
            .first()
            .ok_or("no log dir configured")?
            .clone();
        let store = MetadataStore::new(&dir);
        let image = store.load()?;
        config.set_dynamic_configs(dynamic_configs_of(&image, config.node_id));
        for t in image.topics.values() {
            replica_manager.apply_topic(t, &config)?;
        }
        for tp in replica_manager.remove_orphan_logs()? {
            tracing::warn!(partition = %tp, "removed log of a topic that no longer exists");
        }
        Ok(Controller {
            config,
            image: RwLock::new(Arc::new(image)),
            store,
            replica_manager,
            write_lock: Mutex::new(()),
            producer_ids: Mutex::new((0, 0)),
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    pub fn live_brokers(&self) -> Vec<i32> {
        vec![self.config.node_id]
    }

    fn commit(&self, next: MetadataImage) -> Result<(), ApiError> {
        self.store
            .save(&next)
            .inspect_err(|e| tracing::error!(error = %e, "cannot write the metadata"))?;
        *self.image.write() = Arc::new(next);
        Ok(())
    }

    /// Validates `spec` against the current image and builds the topic.
    fn plan_topic(
        &self,
        image: &MetadataImage,
        spec: &CreateTopicSpec,
    ) -> Result<TopicInfo, ApiError> {
        validate_topic_name(&spec.name)
            .map_err(|m| ApiError::new(ResponseError::InvalidTopicException, m))?;
        if image.topic(&spec.name).is_some() {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", spec.name),
            ));
        }
        let key = collision_key(&spec.name);
        if let Some(other) = image.topics.keys().find(|n| collision_key(n) == key) {
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!(
                    "Topic '{}' collides with existing topic: {other}",
                    spec.name
                ),
            ));
        }
        let live = self.live_brokers();
        let replica_lists: Vec<Vec<i32>> = if !spec.assignments.is_empty() {
            if spec.num_partitions != -1 || spec.replication_factor != -1 {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
                ));
            }
            let mut sorted = spec.assignments.clone();
            sorted.sort_by_key(|(i, _)| *i);
            let mut lists = Vec::with_capacity(sorted.len());
            for (expected, (index, brokers)) in sorted.into_iter().enumerate() {
                if index != expected as i32 {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        "Partitions should be 0-based and consecutive",
                    ));
                }
                let unique: HashSet<_> = brokers.iter().collect();
                if brokers.is_empty() || unique.len() != brokers.len() {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!("Invalid replica list {brokers:?} for partition {index}"),
                    ));
                }
                if let Some(b) = brokers.iter().find(|b| !live.contains(b)) {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Broker {b} in the assignment of partition {index} is not registered"
                        ),
                    ));
                }
                lists.push(brokers);
            }
            lists
        } else {
            let partitions = match spec.num_partitions {
                -1 => self.config.num_partitions,
                n if n < 1 => {
                    return Err(ApiError::new(
                        ResponseError::InvalidPartitions,
                        "Number of partitions was set to an invalid non-positive value.",
                    ))
                }
                n if n > MAX_PARTITIONS_PER_OPERATION => return Err(too_many_partitions(n)),
                n => n,
            };
            let rf =
                match spec.replication_factor {
                    -1 => self.config.default_replication_factor,
                    n if n < 1 => return Err(ApiError::new(
                        ResponseError::InvalidReplicationFactor,
                        "Replication factor must be larger than 0, or -1 to use the default value.",
                    )),
                    n => n as i32,
                };
            if rf as usize > live.len() {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicationFactor,
                    format!(
                        "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                        live.len()
                    ),
                ));
            }
            (0..partitions)
                .map(|p| place_replicas(&live, p, rf as usize))
                .collect()
        };
        self.config
            .validate_topic_configs(&spec.configs)
            .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
        Ok(TopicInfo {
            name: spec.name.clone(),
            id: Uuid::new_v4(),
            partitions: replica_lists
                .into_iter()
                .map(|replicas| PartitionInfo {
                    leader: replicas[0],
                    isr: replicas.clone(),
                    replicas,
                    leader_epoch: 0,
                })
                .collect(),
            configs: spec.configs.clone(),
        })
    }

    pub fn create_topic(
        &self,
        spec: &CreateTopicSpec,
        validate_only: bool,
    ) -> Result<TopicInfo, ApiError> {
        self.create_topics(std::slice::from_ref(spec), validate_only)
            .pop()
            .unwrap_or_else(|| {
                Err(ApiError::new(
                    ResponseError::UnknownServerError,
                    "no result",
                ))
            })
    }

    /// Creates several topics with one metadata write (one CreateTopics
    /// request, or the topics one Metadata request auto-creates): the
    /// image is rewritten whole, so a write per topic made bulk creation
    /// slower with every topic already there. Each topic is validated
    /// against the image including the ones before it and has its logs
    /// opened before the single commit; a topic whose logs cannot be
    /// opened fails alone (its logs removed), and a failed commit fails
    /// them all. Results are in the order of `specs`.
    pub fn create_topics(
        &self,
        specs: &[CreateTopicSpec],
        validate_only: bool,
    ) -> Vec<Result<TopicInfo, ApiError>> {
        let _guard = self.write_lock.lock();
        let current = self.image();
        let mut next = (*current).clone();
        let mut results = Vec::with_capacity(specs.len());
        for spec in specs {
            let planned = self.plan_topic(&next, spec).and_then(|topic| {
                if !validate_only {
                    self.open_new_partitions(&topic, 0)?;
                }
                Ok(topic)
            });
            if let Ok(topic) = &planned {
                next.upsert(topic.clone());
            }
            results.push(planned);
        }
        let created: Vec<&TopicInfo> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        if validate_only || created.is_empty() {
            return results;
        }
        if let Err(e) = self.commit(next) {
            for topic in created {
                self.remove_new_partitions(topic, 0);
            }
            return results.into_iter().map(|_| Err(e.clone())).collect();
        }
        for topic in created {
            tracing::info!(topic = %topic.name, partitions = topic.partitions.len(), "created topic");
        }
        results
    }

    /// Creates a coordinator's internal compacted topic (`__consumer_offsets`,
    /// `__transaction_state`) on first use, as Kafka does on the first
    /// FindCoordinator; returns its partition count. The replication factor
    /// is capped at the live brokers so a single node can start.
    pub fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        segment_bytes: i64,
    ) -> Result<i32, ResponseError> {
        if let Some(t) = self.image().topic(name) {
            let n = t.partitions.len() as i32;
            let last = TopicPartition::new(name, n - 1);
            if self.replica_manager.get_partition(&last).is_none() {
                // A concurrent first use published the topic and is still
                // opening its logs (in order, holding the write lock):
                // writing now would find no partition.
                drop(self.write_lock.lock());
            }
            return Ok(n);
        }
        let rf = (replication_factor.max(1) as usize).min(self.live_brokers().len().max(1)) as i16;
        let spec = CreateTopicSpec {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: rf,
            assignments: Vec::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), segment_bytes.to_string()),
            ]),
        };
        match self.create_topic(&spec, false) {
            Ok(t) => Ok(t.partitions.len() as i32),
            Err(e) if e.code == ResponseError::TopicAlreadyExists => self
                .image()
                .topic(name)
                .map(|t| t.partitions.len() as i32)
                .ok_or(ResponseError::CoordinatorNotAvailable),
            Err(e) => {
                tracing::error!(error = %e.message, "cannot create {name}");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<TopicInfo, ApiError> {
        if !self.config.delete_topic_enable {
            return Err(ApiError::new(
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled.",
            ));
        }
        let _guard = self.write_lock.lock();
        let current = self.image();
        let mut next = (*current).clone();
        let removed = next.remove(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        self.commit(next)?;
        self.replica_manager
            .remove_topic(name)
            .map_err(|e| ApiError::new(log_error_code(&e), e.to_string()))?;
        tracing::info!(topic = %name, "deleted topic");
        Ok(removed)
    }

    /// The broker config the controller validates against.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Changes the configs of `target`: `edit` turns the current overrides
    /// into the new ones (legacy AlterConfigs replaces them all,
    /// IncrementalAlterConfigs edits them), and the result is validated,
    /// persisted in the metadata image and applied to the live logs, all
    /// under the metadata write lock so concurrent changes do not lose
    /// each other's updates. `validate_only` stops after validation.
    pub fn alter_configs(
        &self,
        target: &ConfigTarget,
        validate_only: bool,
        edit: impl FnOnce(
            &BTreeMap<String, String>,
        ) -> Result<BTreeMap<String, String>, AlterConfigError>,
    ) -> Result<(), ApiError> {
        let _guard = self.write_lock.lock();
        let current = self.image();
        match target {
            ConfigTarget::Topic(name) => {
                let topic = current.topic(name).ok_or_else(|| {
                    ApiError::new(
                        ResponseError::UnknownTopicOrPartition,
                        format!("The topic '{name}' does not exist."),
                    )
                })?;
                let configs = edit(&topic.configs)?;
                self.config
                    .validate_topic_configs(&configs)
                    .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
                if validate_only || configs == topic.configs {
                    return Ok(());
                }
                let mut updated = topic.clone();
                updated.configs = configs;
                let mut next = (*current).clone();
                next.upsert(updated.clone());
                self.commit(next)?;
                self.replica_manager
                    .apply_topic(&updated, &self.config)
                    .map_err(|e| ApiError::new(log_error_code(&e), e.to_string()))?;
                tracing::info!(topic = %name, configs = ?updated.configs, "altered topic configs");
            }
            ConfigTarget::Broker(name) => {
                let node = self.config.node_id.to_string();
                if !name.is_empty() && *name != node {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Unexpected broker id, expected {node} or empty string, but received {name}"),
                    ));
                }
                let empty = BTreeMap::new();
                let old = current.broker_configs.get(name).unwrap_or(&empty);
                let configs = edit(old)?;
                dynamic::validate_broker_configs(&configs, name.is_empty())?;
                if validate_only || configs == *old {
                    return Ok(());
                }
                for k in configs.keys() {
                    dynamic::note_no_effect(k);
                }
                let mut next = (*current).clone();
                if configs.is_empty() {
                    next.broker_configs.remove(name);
                } else {
                    next.broker_configs.insert(name.clone(), configs);
                }
                self.commit(next)?;
                let image = self.image();
                self.config
                    .set_dynamic_configs(dynamic_configs_of(&image, self.config.node_id));
                // Topic defaults may have changed: every live log takes
                // its recomputed settings.
                for t in image.topics.values() {
                    self.replica_manager
                        .apply_topic(t, &self.config)
                        .map_err(|e| ApiError::new(log_error_code(&e), e.to_string()))?;
                }
                tracing::info!(broker = %name, "altered dynamic broker configs");
            }
            ConfigTarget::Group(name) => {
                if name.is_empty() {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        "Default group resources are not allowed.",
                    ));
                }
                let empty = BTreeMap::new();
                let old = current.group_configs.get(name).unwrap_or(&empty);
                let configs = edit(old)?;
                crate::config::group::validate(&configs, &self.config)?;
                if validate_only || configs == *old {
                    return Ok(());
                }
                let mut next = (*current).clone();
                if configs.is_empty() {
                    next.group_configs.remove(name);
                } else {
                    next.group_configs.insert(name.clone(), configs);
                }
                self.commit(next)?;
                tracing::info!(group = %name, "altered group configs");
            }
        }
        Ok(())
    }

    /// A producer id never handed out before, also across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            let _guard = self.write_lock.lock();
            let current = self.image();
            let mut next = (*current).clone();
            let start = next.next_producer_id_block;
            next.next_producer_id_block = start + PRODUCER_ID_BLOCK;
            self.commit(next)?;
            *ids = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _guard = self.write_lock.lock();
        let current = self.image();
        let topic = current.topic(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            )
        })?;
        let existing = topic.partitions.len() as i32;
        if count < existing {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("The topic {name} currently has {existing} partition(s); {count} would not be an increase."),
            ));
        }
        if count == existing {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {existing} partition(s)."),
            ));
        }
        if count - existing > MAX_PARTITIONS_PER_OPERATION {
            return Err(too_many_partitions(count - existing));
        }
        let live = self.live_brokers();
        let rf = topic.replication_factor().max(1) as usize;
        let new_lists: Vec<Vec<i32>> = match assignments {
            Some(a) => {
                if a.len() as i32 != count - existing {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!("Increasing the number of partitions by {} but {} assignments provided.", count - existing, a.len()),
                    ));
                }
                for brokers in &a {
                    if brokers.len() != rf || brokers.iter().any(|b| !live.contains(b)) {
                        return Err(ApiError::new(
                            ResponseError::InvalidReplicaAssignment,
                            format!("Invalid replica assignment {brokers:?}"),
                        ));
                    }
                }
                a
            }
            None => (existing..count)
                .map(|p| place_replicas(&live, p, rf))
                .collect(),
        };
        if validate_only {
            return Ok(());
        }
        let mut updated = topic.clone();
        updated
            .partitions
            .extend(new_lists.into_iter().map(|replicas| PartitionInfo {
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
            }));
        let mut next = (*current).clone();
        next.upsert(updated.clone());
        self.prepare_then_commit(&updated, existing, next)
    }

    /// Opens the logs of `topic`'s partitions from `first_new` on, then
    /// persists `next`: a topic is never in the metadata without its logs.
    fn prepare_then_commit(
        &self,
        topic: &TopicInfo,
        first_new: i32,
        next: MetadataImage,
    ) -> Result<(), ApiError> {
        self.open_new_partitions(topic, first_new)?;
        self.commit(next)
            .inspect_err(|_| self.remove_new_partitions(topic, first_new))
    }

    /// Opens (creating) the logs of `topic`'s partitions from `first_new`
    /// on. If that fails (descriptors or disk exhausted), the ones opened
    /// are removed again, so the client gets the storage error and
    /// nothing is half-created.
    fn open_new_partitions(&self, topic: &TopicInfo, first_new: i32) -> Result<(), ApiError> {
        self.replica_manager
            .apply_topic(topic, &self.config)
            .map_err(|e| {
                tracing::error!(topic = %topic.name, error = %e, "cannot open the logs of new partitions");
                ApiError::new(log_error_code(&e), e.to_string())
            })
            .inspect_err(|_| self.remove_new_partitions(topic, first_new))
    }

    fn remove_new_partitions(&self, topic: &TopicInfo, first_new: i32) {
        tracing::error!(topic = %topic.name, "rolling back the creation of partitions");
        let new: Vec<_> = (first_new..topic.partitions.len() as i32)
            .map(|p| TopicPartition::new(topic.name.clone(), p))
            .collect();
        if let Err(e) = self.replica_manager.remove_partitions(&new) {
            tracing::error!(topic = %topic.name, error = %e, "cannot remove the logs of a failed creation; the next start removes them");
        }
    }
}

/// Kafka's simple placement: partition `p`'s replica `j` on live broker
/// `(p + j) mod n`, which spreads leaders evenly.
fn place_replicas(live: &[i32], partition: i32, rf: usize) -> Vec<i32> {
    let n = live.len().max(1);
    (0..rf)
        .map(|j| live[(partition as usize + j) % n])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxka_log::LogManager;

    fn start(dir: &std::path::Path) -> Controller {
        let props = BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())]);
        let (config, _) = KafkaConfig::from_props(props).unwrap();
        let config = Arc::new(config);
        let lm = LogManager::startup(
            &config.log_dirs,
            1,
            "cluster",
            config.log_config(&BTreeMap::new()),
            0,
        )
        .unwrap();
        let rm = Arc::new(ReplicaManager::new(1, Arc::new(lm)));
        Controller::start(config, rm).unwrap()
    }

    #[test]
    fn producer_ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let c = start(dir.path());
        let a = c.allocate_producer_id().unwrap();
        let b = c.allocate_producer_id().unwrap();
        assert_eq!(b, a + 1);
        drop(c);
        let c = start(dir.path());
        assert!(c.allocate_producer_id().unwrap() > b);
    }

    /// Coordinators on many connections ensure their internal topic at
    /// once; none may come back before the partitions are hosted.
    #[test]
    fn internal_topic_is_hosted_when_ensure_returns() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let c = Arc::new(start(dir.path()));
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let c = c.clone();
                    std::thread::spawn(move || {
                        // the others come while the first is opening logs
                        if i > 0 {
                            let give_up =
                                std::time::Instant::now() + std::time::Duration::from_secs(30);
                            while c.image().topic("__consumer_offsets").is_none() {
                                assert!(std::time::Instant::now() < give_up, "never created");
                                std::thread::yield_now();
                            }
                        }
                        let n = c.ensure_internal_topic("__consumer_offsets", 50, 1, 1 << 20);
                        let n = n.expect("ensure");
                        (0..n).all(|p| {
                            let tp = TopicPartition::new("__consumer_offsets", p);
                            c.replica_manager.get_partition(&tp).is_some()
                        })
                    })
                })
                .collect();
            for t in threads {
                assert!(
                    t.join().unwrap(),
                    "round {round}: a partition was not hosted yet"
                );
            }
        }
    }

    /// A creation whose logs cannot all be opened (here a file squats on
    /// partition 5's directory; in production, descriptors or disk run
    /// out) answers the storage error and leaves nothing behind: no topic
    /// in the metadata, no partition directory, and the same creation
    /// works once the cause is gone. Before, the topic was committed first
    /// and stayed listed with unopened partitions.
    #[test]
    fn a_creation_that_cannot_open_its_logs_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = start(dir.path());
        let squatter = dir.path().join("orders-5");
        std::fs::write(&squatter, b"not a directory").unwrap();
        let spec = CreateTopicSpec {
            name: "orders".into(),
            num_partitions: 10,
            replication_factor: 1,
            assignments: vec![],
            configs: BTreeMap::new(),
        };
        let err = c.create_topic(&spec, false).unwrap_err();
        assert_eq!(
            err.code,
            ResponseError::KafkaStorageError,
            "{}",
            err.message
        );
        assert!(c.image().topic("orders").is_none());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "partition dirs left behind: {left:?}");
        drop(c);
        let c = start(dir.path());
        assert!(c.image().topic("orders").is_none(), "not committed either");
        std::fs::remove_file(&squatter).unwrap();
        c.create_topic(&spec, false).unwrap();
        // adding partitions follows the same rule
        std::fs::write(dir.path().join("orders-12"), b"x").unwrap();
        let err = c.create_partitions("orders", 14, None, false).unwrap_err();
        assert_eq!(err.code, ResponseError::KafkaStorageError);
        assert_eq!(c.image().topic("orders").unwrap().partitions.len(), 10);
        assert!(!dir.path().join("orders-10").exists());
        assert!(c
            .replica_manager
            .get_partition(&TopicPartition::new("orders", 9))
            .is_some());
    }

    #[test]
    fn topics_survive_restart_and_validation_errors() {
        let dir = tempfile::tempdir().unwrap();
        let c = start(dir.path());
        let spec = |name: &str, n: i32, rf: i16| CreateTopicSpec {
            name: name.into(),
            num_partitions: n,
            replication_factor: rf,
            assignments: vec![],
            configs: BTreeMap::new(),
        };
        let t = c.create_topic(&spec("orders", 3, 1), false).unwrap();
        assert_eq!(
            c.create_topic(&spec("orders", 3, 1), false)
                .unwrap_err()
                .code,
            ResponseError::TopicAlreadyExists
        );
        assert_eq!(
            c.create_topic(&spec("orders_", 0, 1), false)
                .unwrap_err()
                .code,
            ResponseError::InvalidPartitions
        );
        assert_eq!(
            c.create_topic(&spec("x", 1, 2), false).unwrap_err().code,
            ResponseError::InvalidReplicationFactor
        );
        assert_eq!(
            c.create_topic(&spec("a/b", 1, 1), false).unwrap_err().code,
            ResponseError::InvalidTopicException
        );
        assert!(c.create_topic(&spec("dry", 1, 1), true).is_ok());
        // absurd counts are refused before anything is allocated for them
        assert_eq!(
            c.create_topic(&spec("huge", 2_000_000_000, 1), false)
                .unwrap_err()
                .code,
            ResponseError::PolicyViolation
        );
        assert_eq!(
            c.create_partitions("orders", i32::MAX, None, false)
                .unwrap_err()
                .code,
            ResponseError::PolicyViolation
        );
        assert!(c.image().topic("dry").is_none());
        c.create_partitions("orders", 5, None, false).unwrap();
        drop(c);
        let c = start(dir.path());
        let back = c.image().topic("orders").cloned().unwrap();
        assert_eq!((back.id, back.partitions.len()), (t.id, 5));
        c.delete_topic("orders").unwrap();
        assert!(!dir.path().join("orders-0").exists());
    }

    #[test]
    fn placement_spreads_leaders() {
        let live = [1, 2, 3];
        assert_eq!(place_replicas(&live, 0, 2), vec![1, 2]);
        assert_eq!(place_replicas(&live, 1, 2), vec![2, 3]);
        assert_eq!(place_replicas(&live, 2, 3), vec![3, 1, 2]);
    }
}
