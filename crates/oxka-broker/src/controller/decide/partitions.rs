//! Partition decisions beyond creation: leader elections (ElectLeaders,
//! KIP-460; the automatic preferred-leader rebalance) and replica
//! reassignments (AlterPartitionReassignments, KIP-455).

use kafka_protocol::error::ResponseError;
use oxka_controller::image::{MetadataImage, PartitionInfo, TopicInfo};
use oxka_controller::records::MetadataRecord;
use uuid::Uuid;

use super::{elect_leader, wire, Decision};
use crate::config::KafkaConfig;
use crate::quorum::protocol::{CommandOutcome, WireError};

/// The fields of one PartitionChangeRecord; `None` leaves a field as is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Change {
    pub isr: Option<Vec<i32>>,
    pub leader: Option<i32>,
    pub replicas: Option<Vec<i32>>,
    pub adding: Option<Vec<i32>>,
    pub removing: Option<Vec<i32>>,
}

impl Change {
    pub fn record(self, topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic_id,
            partition,
            isr: self.isr,
            leader: self.leader,
            replicas: self.replicas,
            adding_replicas: self.adding,
            removing_replicas: self.removing,
        }
    }
}

/// ElectLeaders' election types.
pub const PREFERRED: i8 = 0;
pub const UNCLEAN: i8 = 1;

/// One partition's election (Kafka's ReplicationControlManager.electLeader):
/// PREFERRED moves leadership to the first replica if it is live and in
/// the ISR; UNCLEAN elects only where there is no leader, from the ISR
/// first and else any live replica.
fn elect_one(
    image: &MetadataImage,
    config: &KafkaConfig,
    t: &TopicInfo,
    p: &PartitionInfo,
    election_type: i8,
) -> Result<Change, WireError> {
    if election_type == PREFERRED {
        let Some(&preferred) = p.replicas.first() else {
            return Err(wire(
                ResponseError::PreferredLeaderNotAvailable,
                "no replicas",
            ));
        };
        if p.leader == preferred {
            return Err(wire(
                ResponseError::ElectionNotNeeded,
                "the preferred replica leads",
            ));
        }
        if !p.isr.contains(&preferred) || !image.is_live(preferred) {
            return Err(wire(
                ResponseError::PreferredLeaderNotAvailable,
                &format!("preferred replica {preferred} is not live and in the ISR"),
            ));
        }
        return Ok(Change {
            leader: Some(preferred),
            ..Change::default()
        });
    }
    if p.leader >= 0 && image.is_live(p.leader) {
        return Err(wire(
            ResponseError::ElectionNotNeeded,
            "the partition has a leader",
        ));
    }
    let mut unclean = t.clone();
    unclean
        .configs
        .insert("unclean.leader.election.enable".into(), "true".into());
    match elect_leader(image, config, &unclean, p, &p.isr) {
        Some((leader, isr)) => Ok(Change {
            leader: Some(leader),
            isr: (isr != p.isr).then_some(isr),
            ..Change::default()
        }),
        None => Err(wire(
            ResponseError::EligibleLeadersNotAvailable,
            "no live replica",
        )),
    }
}

/// ElectLeaders for the named partitions, or every partition when `None`
/// (then only the elections made are reported, as Kafka does).
pub fn elect_leaders(
    image: &MetadataImage,
    config: &KafkaConfig,
    election_type: i8,
    partitions: Option<&[(String, i32)]>,
) -> Decision {
    if election_type != PREFERRED && election_type != UNCLEAN {
        return Decision {
            records: Vec::new(),
            outcome: Err(super::ApiError::new(
                ResponseError::InvalidRequest,
                format!("unknown election type {election_type}"),
            )),
        };
    }
    let all: Vec<(String, i32)>;
    let wanted = match partitions {
        Some(p) => p,
        None => {
            all = image
                .topics
                .values()
                .flat_map(|t| (0..t.partitions.len() as i32).map(|i| (t.name.clone(), i)))
                .collect();
            &all
        }
    };
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(wanted.len());
    for (topic, partition) in wanted {
        let found = image.topic(topic).and_then(|t| {
            t.partitions
                .get(usize::try_from(*partition).ok()?)
                .map(|p| (t, p))
        });
        let r = match found {
            None => Err(wire(
                ResponseError::UnknownTopicOrPartition,
                "unknown partition",
            )),
            Some((t, p)) => elect_one(image, config, t, p, election_type).map(|change| {
                records.push(change.record(t.id, *partition));
            }),
        };
        let not_needed = matches!(&r, Err(e) if e.code == ResponseError::ElectionNotNeeded.code());
        if partitions.is_some() || !not_needed {
            results.push(((topic.clone(), *partition), r));
        }
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Elections(results)),
    }
}

/// The partitions the automatic rebalance moves back to their preferred
/// replica: every one whose first replica is live and in the ISR but does
/// not lead (Kafka 4's `auto.leader.rebalance.enable`).
pub fn imbalanced_partitions(image: &MetadataImage) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            if p.leader != preferred && p.isr.contains(&preferred) && image.is_live(preferred) {
                out.push((t.name.clone(), i as i32));
            }
        }
    }
    out
}

/// One partition's reassignment request: a target, or `None` to cancel.
pub type ReassignmentItem = (String, i32, Option<Vec<i32>>);

/// AlterPartitionReassignments (KIP-455): the partition's replicas become
/// the target followed by the current ones it drops; the added ones catch
/// up and join the ISR, and the AlterPartition that completes the ISR
/// also completes the reassignment (`complete_reassignment`). A cancel
/// reverts to the replicas before the reassignment.
///
/// Without `allow_rf_change` (KIP-860) a target of another size than the
/// current replica set is INVALID_REPLICATION_FACTOR.
pub fn alter_reassignments(
    image: &MetadataImage,
    items: &[ReassignmentItem],
    allow_rf_change: bool,
) -> Decision {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(items.len());
    for (topic, partition, target) in items {
        let found = image.topic(topic).and_then(|t| {
            t.partitions
                .get(usize::try_from(*partition).ok()?)
                .map(|p| (t, p))
        });
        let r = match found {
            None => Err(wire(
                ResponseError::UnknownTopicOrPartition,
                "unknown partition",
            )),
            Some((t, p)) => match target {
                None => cancel(p).map(|c| records.push(c.record(t.id, *partition))),
                Some(target) if !allow_rf_change && target.len() != p.target_replicas().len() => {
                    Err(wire(
                        ResponseError::InvalidReplicationFactor,
                        "the reassignment changes the replication factor",
                    ))
                }
                Some(target) => reassign(image, p, target).map(|c| {
                    if let Some(c) = c {
                        records.push(c.record(t.id, *partition));
                    }
                }),
            },
        };
        results.push(r);
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Partitions(results)),
    }
}

fn reassign(
    image: &MetadataImage,
    p: &PartitionInfo,
    target: &[i32],
) -> Result<Option<Change>, WireError> {
    let mut seen = std::collections::BTreeSet::new();
    if target.is_empty() || !target.iter().all(|r| seen.insert(*r)) {
        return Err(wire(
            ResponseError::InvalidReplicaAssignment,
            "the target replicas must be a non-empty list without duplicates",
        ));
    }
    if let Some(r) = target.iter().find(|r| !image.brokers.contains_key(r)) {
        return Err(wire(
            ResponseError::InvalidReplicaAssignment,
            &format!("broker {r} is not registered"),
        ));
    }
    // a new reassignment replaces an ongoing one from its original replicas
    let original: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    if target == original && !p.is_reassigning() {
        return Ok(None);
    }
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let removing: Vec<i32> = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let replicas: Vec<i32> = target.iter().chain(removing.iter()).copied().collect();
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    let after = PartitionInfo {
        replicas: replicas.clone(),
        isr: isr.clone(),
        adding_replicas: adding.clone(),
        removing_replicas: removing.clone(),
        ..p.clone()
    };
    let change = Change {
        replicas: Some(replicas),
        isr: (isr != p.isr).then_some(isr),
        adding: Some(adding),
        removing: Some(removing),
        leader: None,
    };
    // targets already in the ISR (a pure removal): done at once
    Ok(Some(complete_with(image, &after, change)))
}

fn cancel(p: &PartitionInfo) -> Result<Change, WireError> {
    if !p.is_reassigning() {
        return Err(wire(
            ResponseError::NoReassignmentInProgress,
            "no reassignment in progress",
        ));
    }
    let replicas: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    let mut isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    let leader = if replicas.contains(&p.leader) {
        None
    } else {
        Some(isr.first().copied().unwrap_or(-1))
    };
    if isr.is_empty() {
        isr = p.isr.clone();
    }
    Ok(Change {
        replicas: Some(replicas),
        isr: Some(isr),
        leader,
        adding: Some(Vec::new()),
        removing: Some(Vec::new()),
    })
}

/// Folds the completion of a reassignment into `change` when, with it
/// applied, every target replica is in the ISR (Kafka's
/// PartitionReassignmentReplicas.maybeCompleteReassignment): the replicas
/// become the target, the ISR loses the removed ones and, if the leader
/// was removed, the first live in-sync target replica leads.
pub fn complete_reassignment(image: &MetadataImage, p: &PartitionInfo, change: Change) -> Change {
    if !p.is_reassigning() {
        return change;
    }
    let mut after = p.clone();
    if let Some(isr) = &change.isr {
        after.isr = isr.clone();
    }
    complete_with(image, &after, change)
}

fn complete_with(image: &MetadataImage, after: &PartitionInfo, mut change: Change) -> Change {
    let target = after.target_replicas();
    if !target.iter().all(|r| after.isr.contains(r)) {
        return change;
    }
    let isr: Vec<i32> = after
        .isr
        .iter()
        .copied()
        .filter(|r| target.contains(r))
        .collect();
    if !target.contains(&after.leader) {
        let leader = target
            .iter()
            .copied()
            .find(|r| isr.contains(r) && image.is_live(*r))
            .unwrap_or(-1);
        change.leader = Some(leader);
    }
    change.replicas = Some(target);
    change.isr = Some(isr);
    change.adding = Some(Vec::new());
    change.removing = Some(Vec::new());
    change
}

/// An ongoing reassignment as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ongoing {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// ListPartitionReassignments: the ongoing ones, of the named partitions or
/// all.
pub fn list_reassignments(
    image: &MetadataImage,
    wanted: Option<&[(String, Vec<i32>)]>,
) -> Vec<Ongoing> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        let names = wanted.map(|w| w.iter().find(|(n, _)| *n == t.name));
        if names == Some(None) {
            continue;
        }
        for (i, p) in t.partitions.iter().enumerate() {
            let asked = match names.flatten() {
                Some((_, ps)) => ps.contains(&(i as i32)),
                None => true,
            };
            if asked && p.is_reassigning() {
                out.push(Ongoing {
                    topic: t.name.clone(),
                    partition: i as i32,
                    replicas: p.replicas.clone(),
                    adding: p.adding_replicas.clone(),
                    removing: p.removing_replicas.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decide::{alter_partition, broker_change};
    use crate::quorum::protocol::AlterPartitionItem;
    use oxka_controller::records::RecordBatch;

    fn image(brokers: i32, replicas: &[i32]) -> (MetadataImage, Uuid) {
        let mut image = MetadataImage::default();
        for id in 1..=brokers {
            image.apply(&MetadataRecord::RegisterBroker {
                broker_id: id,
                incarnation_id: Uuid::nil(),
                broker_epoch: id as i64,
                endpoints: vec![],
                rack: None,
                fenced: false,
            });
        }
        let t = TopicInfo {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: vec![PartitionInfo::new(replicas.to_vec())],
            configs: Default::default(),
        };
        let id = t.id;
        image.apply_batch(
            1,
            &RecordBatch::new(oxka_controller::image::topic_records(&t)),
        );
        (image, id)
    }

    fn apply(
        image: &mut MetadataImage,
        f: impl FnOnce(&MetadataImage) -> Decision,
    ) -> CommandOutcome {
        let d = f(image);
        image.apply_batch(image.offset + 1, &RecordBatch::new(d.records));
        d.outcome.expect("decided")
    }

    fn part(image: &MetadataImage) -> PartitionInfo {
        image.topic("t").unwrap().partitions[0].clone()
    }

    #[test]
    fn preferred_election_moves_back_only_when_needed_and_possible() {
        let config = KafkaConfig::defaults();
        let (mut image, _) = image(3, &[1, 2, 3]);
        let ask = Some(&[("t".to_string(), 0)][..]);
        let CommandOutcome::Elections(r) =
            apply(&mut image, |i| elect_leaders(i, &config, PREFERRED, ask))
        else {
            panic!()
        };
        assert_eq!(
            r[0].1.as_ref().unwrap_err().code,
            ResponseError::ElectionNotNeeded.code()
        );
        // broker 1 fenced: leadership moves to 2; back once 1 is unfenced
        let fence = MetadataRecord::FenceBroker {
            broker_id: 1,
            broker_epoch: 1,
        };
        image.apply_batch(10, &RecordBatch::new(broker_change(&image, &config, fence)));
        assert_eq!(part(&image).leader, 2);
        let CommandOutcome::Elections(r) =
            apply(&mut image, |i| elect_leaders(i, &config, PREFERRED, ask))
        else {
            panic!()
        };
        assert_eq!(
            r[0].1.as_ref().unwrap_err().code,
            ResponseError::PreferredLeaderNotAvailable.code()
        );
        let unfence = MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 1,
        };
        image.apply_batch(
            11,
            &RecordBatch::new(broker_change(&image, &config, unfence)),
        );
        // not in the ISR yet
        assert!(imbalanced_partitions(&image).is_empty());
        let mut p = part(&image);
        p.isr.push(1);
        let item = AlterPartitionItem {
            topic_id: image.topic("t").unwrap().id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: p.isr.clone(),
            new_isr_broker_epochs: Vec::new(),
        };
        apply(&mut image, |i| {
            alter_partition(i, 2, 2, std::slice::from_ref(&item))
        });
        assert_eq!(imbalanced_partitions(&image), vec![("t".to_string(), 0)]);
        // the same change again is stale (the partition epoch moved)
        let CommandOutcome::Partitions(r) =
            apply(&mut image, |i| alter_partition(i, 2, 2, &[item]))
        else {
            panic!()
        };
        assert_eq!(
            r[0].as_ref().unwrap_err().code,
            ResponseError::InvalidUpdateVersion.code()
        );
        apply(&mut image, |i| elect_leaders(i, &config, PREFERRED, None));
        assert_eq!(part(&image).leader, 1);
    }

    #[test]
    fn unclean_election_takes_any_live_replica_only_when_asked() {
        let config = KafkaConfig::defaults();
        let (mut image, _) = image(3, &[1, 2]);
        // 2 leaves the ISR, then 1 (the last ISR member) dies: offline
        let fence2 = MetadataRecord::FenceBroker {
            broker_id: 2,
            broker_epoch: 2,
        };
        image.apply_batch(
            10,
            &RecordBatch::new(broker_change(&image, &config, fence2)),
        );
        let unfence2 = MetadataRecord::UnfenceBroker {
            broker_id: 2,
            broker_epoch: 2,
        };
        image.apply_batch(
            11,
            &RecordBatch::new(broker_change(&image, &config, unfence2)),
        );
        let fence1 = MetadataRecord::FenceBroker {
            broker_id: 1,
            broker_epoch: 1,
        };
        image.apply_batch(
            12,
            &RecordBatch::new(broker_change(&image, &config, fence1)),
        );
        assert_eq!(
            (part(&image).leader, part(&image).isr.clone()),
            (-1, vec![1])
        );
        let ask = Some(&[("t".to_string(), 0)][..]);
        apply(&mut image, |i| elect_leaders(i, &config, UNCLEAN, ask));
        assert_eq!(
            (part(&image).leader, part(&image).isr.clone()),
            (2, vec![2])
        );
    }

    #[test]
    fn a_reassignment_completes_when_the_targets_are_in_sync_and_can_be_cancelled() {
        let (mut image, id) = image(3, &[1]);
        let items = vec![("t".to_string(), 0, Some(vec![2, 3]))];
        // KIP-860: changing the replication factor needs the flag
        let CommandOutcome::Partitions(r) =
            apply(&mut image, |i| alter_reassignments(i, &items, false))
        else {
            panic!()
        };
        assert_eq!(
            r[0].as_ref().unwrap_err().code,
            ResponseError::InvalidReplicationFactor.code()
        );
        apply(&mut image, |i| alter_reassignments(i, &items, true));
        let p = part(&image);
        assert_eq!(
            (
                p.replicas.clone(),
                p.adding_replicas.clone(),
                p.removing_replicas.clone()
            ),
            (vec![2, 3, 1], vec![2, 3], vec![1])
        );
        assert_eq!(list_reassignments(&image, None).len(), 1);
        // 2 joins: not done yet; 3 joins: done, 1 removed, 2 leads
        for isr in [vec![1, 2], vec![1, 2, 3]] {
            let p = part(&image);
            let item = AlterPartitionItem {
                topic_id: id,
                partition: 0,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr: isr,
                new_isr_broker_epochs: Vec::new(),
            };
            apply(&mut image, |i| alter_partition(i, 1, 1, &[item]));
        }
        let p = part(&image);
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![2, 3], vec![2, 3], 2)
        );
        assert!(!p.is_reassigning());
        let cancel = vec![("t".to_string(), 0, None)];
        let CommandOutcome::Partitions(r) =
            apply(&mut image, |i| alter_reassignments(i, &cancel, true))
        else {
            panic!()
        };
        assert_eq!(
            r[0].as_ref().unwrap_err().code,
            ResponseError::NoReassignmentInProgress.code()
        );
        // a new one, cancelled before it completes: back to {2, 3}, in the
        // merged order minus the added replicas (Kafka's revert does so too)
        apply(&mut image, |i| {
            alter_reassignments(i, &[("t".to_string(), 0, Some(vec![1, 3]))], true)
        });
        apply(&mut image, |i| alter_reassignments(i, &cancel, true));
        let p = part(&image);
        assert_eq!(
            (p.replicas.clone(), p.is_reassigning()),
            (vec![3, 2], false)
        );
    }
}
