//! The active controller's decisions (Kafka's QuorumController and its
//! ReplicationControlManager / ConfigurationControlManager /
//! ClusterControlManager / ProducerIdControlManager): a command checked
//! against the current image becomes the metadata records that carry it
//! out, or a Kafka error. Pure: no I/O, no clock, an injected RNG, so the
//! rules are unit-tested directly.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use oxka_controller::image::{
    collision_key, config_diff, topic_records, validate_topic_name, MetadataImage, PartitionInfo,
    TopicInfo,
};
use oxka_controller::placement::{place, PlacementSpec, UsableBroker};
use oxka_controller::records::{ConfigResourceType, MetadataRecord};
use uuid::Uuid;

mod acls;
mod partitions;
mod quotas;
mod scram;

pub use acls::{create_acls, delete_acls};
pub use partitions::{
    alter_reassignments, elect_leaders, imbalanced_partitions, list_reassignments,
    ReassignmentItem, PREFERRED, UNCLEAN,
};
use partitions::{complete_reassignment, Change};
pub use quotas::alter_client_quotas;
pub use scram::alter_scram_credentials;

use super::ApiError;
use crate::config::KafkaConfig;
use crate::quorum::protocol::{
    AlterPartitionItem, CommandOutcome, ConfigTargetWire, CreateTopicSpec, WireError,
};

/// Kafka's controller refuses operations that would write more than 10,000
/// records at once (`MAX_RECORDS_PER_USER_OP`); the same bound here keeps a
/// CreateTopics or CreatePartitions asking for two billion partitions from
/// allocating memory for each before anything is validated further.
pub const MAX_PARTITIONS_PER_OPERATION: i32 = 10_000;

/// What a command decided: records to commit and the answer once they are.
pub struct Decision {
    pub records: Vec<MetadataRecord>,
    pub outcome: Result<CommandOutcome, ApiError>,
}

impl Decision {
    fn answer(outcome: Result<CommandOutcome, ApiError>) -> Self {
        Decision {
            records: Vec::new(),
            outcome,
        }
    }
}

fn too_many_partitions(n: i32) -> ApiError {
    ApiError::new(
        ResponseError::PolicyViolation,
        format!(
            "Creating {n} partitions in one operation exceeds the limit of {MAX_PARTITIONS_PER_OPERATION}; create them in several steps."
        ),
    )
}

/// The brokers placement may use: registered ones, fenced flagged
/// (Kafka's BrokerHeartbeatManager.usableBrokers).
fn usable_brokers(image: &MetadataImage) -> Vec<UsableBroker> {
    image
        .brokers
        .values()
        .map(|b| UsableBroker {
            id: b.id,
            rack: b.rack.clone(),
            fenced: b.fenced,
        })
        .collect()
}

/// New partitions' records state: ISR = the unfenced replicas, leader =
/// the first of them (ReplicationControlManager.buildPartitionRegistration).
fn new_partition(image: &MetadataImage, replicas: Vec<i32>) -> Result<PartitionInfo, ApiError> {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|b| image.is_live(*b))
        .collect();
    let Some(&leader) = isr.first() else {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {} time(s): All brokers are currently fenced or in controlled shutdown.", replicas.len()),
        ));
    };
    Ok(PartitionInfo {
        replicas,
        isr,
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    })
}

fn place_partitions(
    image: &MetadataImage,
    start: i32,
    count: i32,
    rf: i16,
    rng: &mut impl rand::Rng,
) -> Result<Vec<Vec<i32>>, ApiError> {
    let spec = PlacementSpec {
        start_partition: start,
        num_partitions: count,
        replication_factor: rf,
    };
    place(&spec, &usable_brokers(image), rng).map_err(|e| {
        ApiError::new(
            ResponseError::try_from_code(e.error_code())
                .unwrap_or(ResponseError::InvalidReplicationFactor),
            e.api_message(rf),
        )
    })
}

/// Checks an explicit assignment's broker ids against the registered ones.
fn check_assignment(image: &MetadataImage, index: i32, brokers: &[i32]) -> Result<(), ApiError> {
    let unique: HashSet<_> = brokers.iter().collect();
    if brokers.is_empty() || unique.len() != brokers.len() {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!("Invalid replica list {brokers:?} for partition {index}"),
        ));
    }
    if let Some(b) = brokers.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!("Broker {b} in the assignment of partition {index} is not registered"),
        ));
    }
    Ok(())
}

/// Validates `spec` against `image` and builds the topic.
pub fn plan_topic(
    image: &MetadataImage,
    config: &KafkaConfig,
    spec: &CreateTopicSpec,
    rng: &mut impl rand::Rng,
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
            check_assignment(image, index, &brokers)?;
            lists.push(brokers);
        }
        lists
    } else {
        let partitions = match spec.num_partitions {
            -1 => config.num_partitions,
            n if n < 1 => {
                return Err(ApiError::new(
                    ResponseError::InvalidPartitions,
                    "Number of partitions was set to an invalid non-positive value.",
                ))
            }
            n if n > MAX_PARTITIONS_PER_OPERATION => return Err(too_many_partitions(n)),
            n => n,
        };
        let rf = match spec.replication_factor {
            -1 => config.default_replication_factor as i16,
            n if n < 1 => {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicationFactor,
                    "Replication factor must be larger than 0, or -1 to use the default value.",
                ))
            }
            n => n,
        };
        place_partitions(image, 0, partitions, rf, rng)?
    };
    config
        .validate_topic_configs(&spec.configs)
        .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
    let partitions = replica_lists
        .into_iter()
        .map(|r| new_partition(image, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopicInfo {
        name: spec.name.clone(),
        id: Uuid::from_u128(rng.gen()),
        partitions,
        configs: spec.configs.clone(),
    })
}

/// CreateTopics: each spec against the image including the ones before it;
/// all created topics in one batch.
pub fn create_topics(
    image: &MetadataImage,
    config: &KafkaConfig,
    specs: &[CreateTopicSpec],
    validate_only: bool,
    rng: &mut impl rand::Rng,
) -> Decision {
    let mut next = image.clone();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(specs.len());
    for spec in specs {
        let planned = plan_topic(&next, config, spec, rng);
        if let Ok(t) = &planned {
            next.upsert(t.clone());
            if !validate_only {
                records.extend(topic_records(t));
            }
        }
        results.push(planned.map_err(Into::into));
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Topics(results)),
    }
}

pub fn delete_topics(image: &MetadataImage, config: &KafkaConfig, names: &[String]) -> Decision {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(names.len());
    let mut seen = HashSet::new();
    for name in names {
        let r = if !config.delete_topic_enable {
            Err(ApiError::new(
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled.",
            ))
        } else {
            match image.topic(name) {
                Some(t) if seen.insert(t.id) => {
                    records.push(MetadataRecord::RemoveTopic { topic_id: t.id });
                    Ok(())
                }
                Some(_) => Ok(()),
                None => Err(ApiError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{name}' does not exist."),
                )),
            }
        };
        results.push(r.map_err(Into::into));
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Deleted(results)),
    }
}

pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
    validate_only: bool,
    rng: &mut impl rand::Rng,
) -> Decision {
    let mut run = || -> Result<Vec<MetadataRecord>, ApiError> {
        let topic = image.topic(name).ok_or_else(|| {
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
        let rf = topic.replication_factor().max(1);
        let lists = match assignments {
            Some(a) => {
                if a.len() as i32 != count - existing {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Increasing the number of partitions by {} but {} assignments provided.",
                            count - existing,
                            a.len()
                        ),
                    ));
                }
                for (i, brokers) in a.iter().enumerate() {
                    if brokers.len() != rf as usize {
                        return Err(ApiError::new(
                            ResponseError::InvalidReplicaAssignment,
                            format!("Invalid replica assignment {brokers:?}"),
                        ));
                    }
                    check_assignment(image, existing + i as i32, brokers)?;
                }
                a.to_vec()
            }
            None => place_partitions(image, existing, count - existing, rf, rng)?,
        };
        let mut records = Vec::with_capacity(lists.len());
        for (i, replicas) in lists.into_iter().enumerate() {
            let p = new_partition(image, replicas)?;
            records.push(MetadataRecord::Partition {
                topic_id: topic.id,
                partition: existing + i as i32,
                replicas: p.replicas,
                isr: p.isr,
                leader: p.leader,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        Ok(if validate_only { Vec::new() } else { records })
    };
    match run() {
        Ok(records) => Decision {
            records,
            outcome: Ok(CommandOutcome::Done),
        },
        Err(e) => Decision::answer(Err(e)),
    }
}

/// A resource's config overrides in `image`.
pub fn current_configs(
    image: &MetadataImage,
    target: &ConfigTargetWire,
) -> Option<BTreeMap<String, String>> {
    match target {
        ConfigTargetWire::Topic(n) => image.topic(n).map(|t| t.configs.clone()),
        ConfigTargetWire::Broker(n) => {
            Some(image.broker_configs.get(n).cloned().unwrap_or_default())
        }
        ConfigTargetWire::Group(n) => Some(image.group_configs.get(n).cloned().unwrap_or_default()),
    }
}

pub fn set_configs(
    image: &MetadataImage,
    target: &ConfigTargetWire,
    expected: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Decision {
    let Some(current) = current_configs(image, target) else {
        // only a topic can be missing (brokers and groups have defaults)
        let (ConfigTargetWire::Topic(name)
        | ConfigTargetWire::Broker(name)
        | ConfigTargetWire::Group(name)) = target;
        return Decision::answer(Err(ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )));
    };
    if current != *expected {
        // validated against overrides that changed meanwhile: the sender
        // validates again against the newer ones and retries
        return Decision::answer(Ok(CommandOutcome::StaleConfigs));
    }
    let (ty, name) = match target {
        ConfigTargetWire::Topic(n) => (ConfigResourceType::Topic, n),
        ConfigTargetWire::Broker(n) => (ConfigResourceType::Broker, n),
        ConfigTargetWire::Group(n) => (ConfigResourceType::Group, n),
    };
    Decision {
        records: config_diff(ty, name, &current, new),
        outcome: Ok(CommandOutcome::Done),
    }
}

/// Producer ids are handed out in blocks so that one metadata write
/// serves many producers (Kafka's ProducerIdControlManager, 1000 a block).
pub fn allocate_producer_ids(image: &MetadataImage, broker_id: i32, count: i64) -> Decision {
    let first = image.next_producer_id_block;
    let count = count.clamp(1, 1_000_000);
    Decision {
        records: vec![MetadataRecord::ProducerIds {
            broker_id,
            broker_epoch: image.brokers.get(&broker_id).map_or(-1, |b| b.epoch),
            next_producer_id: first + count,
        }],
        outcome: Ok(CommandOutcome::ProducerIds { first, count }),
    }
}

/// AlterPartition (KIP-497, KIP-841): a leader's ISR changes, each
/// accepted only from the current leader in its current leader epoch, made
/// against the current partition epoch (a stale leader's change is
/// refused), naming only assigned replicas, with every replica it adds
/// unfenced and the leader itself kept.
pub fn alter_partition(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    changes: &[AlterPartitionItem],
) -> Decision {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(changes.len());
    let registered = image.brokers.get(&broker_id).map(|b| b.epoch);
    for c in changes {
        let r = (|| {
            if registered != Some(broker_epoch) {
                return Err(wire(
                    ResponseError::StaleBrokerEpoch,
                    "the broker epoch is not the registered one",
                ));
            }
            let topic = image
                .topic_by_id(&c.topic_id)
                .ok_or_else(|| wire(ResponseError::UnknownTopicId, "unknown topic id"))?;
            let p = topic
                .partitions
                .get(c.partition as usize)
                .ok_or_else(|| wire(ResponseError::UnknownTopicOrPartition, "unknown partition"))?;
            if p.leader != broker_id {
                return Err(wire(
                    ResponseError::NotLeaderOrFollower,
                    "not the partition's leader",
                ));
            }
            if c.leader_epoch < p.leader_epoch {
                return Err(wire(ResponseError::FencedLeaderEpoch, "stale leader epoch"));
            }
            if c.leader_epoch > p.leader_epoch || c.partition_epoch != p.partition_epoch {
                return Err(wire(
                    ResponseError::InvalidUpdateVersion,
                    "the partition changed meanwhile",
                ));
            }
            // KIP-903: a replica joins with the incarnation that fetched
            let stale_incarnation = c
                .new_isr
                .iter()
                .zip(&c.new_isr_broker_epochs)
                .filter(|(r, e)| !p.isr.contains(r) && **e >= 0)
                .any(|(r, e)| image.brokers.get(r).map(|b| b.epoch) != Some(*e));
            if stale_incarnation {
                return Err(wire(
                    ResponseError::IneligibleReplica,
                    "a new ISR member fetched with a stale broker epoch",
                ));
            }
            let eligible = c.new_isr.contains(&broker_id)
                && c.new_isr.iter().all(|r| p.replicas.contains(r))
                && c.new_isr
                    .iter()
                    .filter(|r| !p.isr.contains(r))
                    .all(|r| image.is_live(*r));
            if !eligible {
                return Err(wire(
                    ResponseError::IneligibleReplica,
                    "the new ISR holds an ineligible replica",
                ));
            }
            if c.new_isr != p.isr {
                let change = Change {
                    isr: Some(c.new_isr.clone()),
                    ..Change::default()
                };
                let change = complete_reassignment(image, p, change);
                records.push(change.record(c.topic_id, c.partition));
            }
            Ok(())
        })();
        results.push(r);
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Partitions(results)),
    }
}

fn wire(code: ResponseError, message: &str) -> WireError {
    WireError {
        code: code.code(),
        message: message.to_string(),
    }
}

/// Whether a topic may elect a replica outside its ISR
/// (`unclean.leader.election.enable`, topic override over broker value).
fn unclean_allowed(config: &KafkaConfig, t: &TopicInfo) -> bool {
    t.configs
        .get("unclean.leader.election.enable")
        .cloned()
        .or_else(|| config.value("unclean.leader.election.enable"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The leader a partition gets when its current one is gone: the first
/// replica, in replica order, that is in the ISR and live (Kafka's
/// PartitionChangeBuilder); else, only where unclean election is allowed,
/// the first live replica at all, which then is the ISR alone. None: the
/// partition stays offline.
fn elect_leader(
    image: &MetadataImage,
    config: &KafkaConfig,
    t: &TopicInfo,
    p: &PartitionInfo,
    isr: &[i32],
) -> Option<(i32, Vec<i32>)> {
    if let Some(l) = p
        .replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && image.is_live(*r))
    {
        return Some((l, isr.to_vec()));
    }
    if unclean_allowed(config, t) {
        if let Some(l) = p.replicas.iter().copied().find(|r| image.is_live(*r)) {
            tracing::warn!(
                topic = %t.name, leader = l, isr = ?isr,
                "unclean leader election: records the old ISR had and this replica lacks are lost"
            );
            return Some((l, vec![l]));
        }
    }
    None
}

/// The partition changes that take `broker` out of every ISR and move its
/// leaderships (Kafka's ReplicationControlManager.handleBrokerFenced).
/// The last ISR member is kept (leader -1) rather than dropped: without
/// unclean election only it may lead again.
fn leave_isrs(image: &MetadataImage, config: &KafkaConfig, broker: i32) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            if !p.isr.contains(&broker) && p.leader != broker {
                continue;
            }
            let shrunk: Vec<i32> = p.isr.iter().copied().filter(|b| *b != broker).collect();
            let leader_gone = p.leader == broker || p.leader == -1;
            let (isr, leader) = if !leader_gone {
                (shrunk, p.leader)
            } else {
                match elect_leader(image, config, t, p, &shrunk) {
                    Some((l, isr)) => (isr, l),
                    None if shrunk.is_empty() => (p.isr.clone(), -1),
                    None => (shrunk, -1),
                }
            };
            if isr == p.isr && leader == p.leader {
                continue;
            }
            let change = Change {
                isr: (isr != p.isr).then_some(isr),
                leader: (leader != p.leader).then_some(leader),
                ..Change::default()
            };
            out.push(change.record(t.id, i as i32));
        }
    }
    out
}

/// A broker's change of state (a new, fenced registration; fencing;
/// unfencing) and the partition changes it entails, decided against the
/// image with the change applied, in one batch: a fenced broker leaves
/// every ISR and its leaderships move, an unfenced one leads the
/// leaderless partitions it may lead.
pub fn broker_change(
    image: &MetadataImage,
    config: &KafkaConfig,
    change: MetadataRecord,
) -> Vec<MetadataRecord> {
    let mut after = image.clone();
    after.apply(&change);
    let follow = match &change {
        MetadataRecord::UnfenceBroker { .. } => elect_offline(&after, config),
        MetadataRecord::FenceBroker { broker_id, .. }
        | MetadataRecord::RegisterBroker { broker_id, .. } => {
            leave_isrs(&after, config, *broker_id)
        }
        _ => Vec::new(),
    };
    std::iter::once(change).chain(follow).collect()
}

/// Leaderless partitions get a leader when one is eligible again (a
/// returning ISR member, or any live replica under unclean election).
fn elect_offline(image: &MetadataImage, config: &KafkaConfig) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            if p.leader != -1 {
                continue;
            }
            if let Some((leader, isr)) = elect_leader(image, config, t, p, &p.isr) {
                let change = Change {
                    isr: (isr != p.isr).then_some(isr),
                    leader: Some(leader),
                    ..Change::default()
                };
                out.push(change.record(t.id, i as i32));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxka_controller::records::RecordBatch;
    use rand::SeedableRng;

    fn image_with_brokers(n: i32) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in 1..=n {
            image.apply(&MetadataRecord::RegisterBroker {
                broker_id: id,
                incarnation_id: Uuid::nil(),
                broker_epoch: id as i64,
                endpoints: vec![],
                rack: None,
                fenced: false,
            });
        }
        image
    }

    fn spec(name: &str, n: i32, rf: i16) -> CreateTopicSpec {
        CreateTopicSpec::new(name, n, rf)
    }

    #[test]
    fn create_topics_validates_and_places_on_registered_brokers() {
        let config = KafkaConfig::defaults();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut image = image_with_brokers(3);
        let d = create_topics(
            &image,
            &config,
            &[spec("a", 6, 3), spec("a", 1, 1), spec("b", 1, 4)],
            false,
            &mut rng,
        );
        let Ok(CommandOutcome::Topics(results)) = d.outcome else {
            panic!()
        };
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err().code,
            ResponseError::TopicAlreadyExists.code()
        );
        assert_eq!(
            results[2].as_ref().unwrap_err().code,
            ResponseError::InvalidReplicationFactor.code()
        );
        image.apply_batch(1, &RecordBatch::new(d.records));
        let t = image.topic("a").unwrap();
        assert_eq!(t.partitions.len(), 6);
        for p in &t.partitions {
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader, p.replicas[0]);
        }
    }

    #[test]
    fn fencing_moves_leaders_and_keeps_the_last_isr_member() {
        let config = KafkaConfig::defaults();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut image = image_with_brokers(3);
        let d = create_topics(
            &image,
            &config,
            &[spec("a", 3, 3), spec("one", 3, 1)],
            false,
            &mut rng,
        );
        image.apply_batch(1, &RecordBatch::new(d.records));
        let fence = MetadataRecord::FenceBroker {
            broker_id: 1,
            broker_epoch: 1,
        };
        image.apply_batch(2, &RecordBatch::new(broker_change(&image, &config, fence)));
        for p in &image.topic("a").unwrap().partitions {
            assert!(
                !p.isr.contains(&1) && p.leader != 1 && p.leader != -1,
                "{p:?}"
            );
        }
        for p in &image.topic("one").unwrap().partitions {
            if p.replicas == [1] {
                assert_eq!((p.leader, p.isr.clone()), (-1, vec![1]));
            }
        }
        let unfence = MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 1,
        };
        image.apply_batch(
            3,
            &RecordBatch::new(broker_change(&image, &config, unfence)),
        );
        assert!(image
            .topic("one")
            .unwrap()
            .partitions
            .iter()
            .all(|p| p.leader != -1));
    }

    #[test]
    fn stale_config_changes_are_refused() {
        let image = image_with_brokers(1);
        let target = ConfigTargetWire::Group("g".into());
        let new = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let d = set_configs(&image, &target, &BTreeMap::new(), &new);
        assert_eq!(d.records.len(), 1);
        let d = set_configs(&image, &target, &new, &BTreeMap::new());
        assert!(matches!(d.outcome, Ok(CommandOutcome::StaleConfigs)));
    }
}
