//! The group coordinator: classic consumer groups (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), committed offsets and the group admin APIs.
//!
//! State lives in memory ([`state::Group`] per group, behind one mutex: group
//! operations are short and never block on I/O other than the local append
//! to `__consumer_offsets`, which is what makes them durable). Every change
//! that must survive a restart is appended to the group's partition of
//! `__consumer_offsets` in Kafka's record schemas ([`records`]) before it is
//! acknowledged, and [`GroupCoordinator::load`] replays those partitions at
//! start-up. Timers (session expiry, initial rebalance delay, rebalance
//! timeout) are one periodic sweep, so their cost is bounded by the number
//! of groups and no task is spawned per member.

pub mod assignor;
pub mod consumer;
pub mod offsets;
#[cfg(test)]
mod ownership_tests;
pub mod records;
pub mod state;
mod txn_offsets;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use oxka_log::builder::RecordBatchBuilder;
use oxka_log::TopicPartition;
use parking_lot::Mutex;

use oxka_controller::image::MetadataImage;

use crate::{now_ms, CoordinatorLog, CoordinatorMetadata, Ownership};

use consumer::{ConsumerConfig, ConsumerGroup, HeartbeatOutcome, HeartbeatParams};
use offsets::{partition_for, OffsetAndMetadata, OFFSETS_TOPIC};
use records::{CoordinatorKey, GroupMetadataValue, OffsetCommitValue};
pub use state::{
    code, Group, GroupConfig, GroupState, JoinMember, JoinOutcome, JoinParams, Reply, SyncOutcome,
};

/// How often the sweep checks sessions and rebalance deadlines: the
/// precision of every group timer.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {tp}: {source}")]
    Log {
        tp: TopicPartition,
        source: oxka_log::LogError,
    },
}

impl GroupConfig {
    /// Reads the `group.*` and `offsets.*` broker configs (Kafka's names and
    /// defaults; unparsable values were refused at start-up) through
    /// `value`, the broker config's lookup.
    pub fn from_values(value: impl Fn(&str) -> Option<String>) -> GroupConfig {
        let d = GroupConfig::default();
        let int = |k: &str, dflt: i64| -> i64 {
            value(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(dflt)
        };
        GroupConfig {
            min_session_timeout_ms: int(
                "group.min.session.timeout.ms",
                d.min_session_timeout_ms.into(),
            ) as i32,
            max_session_timeout_ms: int(
                "group.max.session.timeout.ms",
                d.max_session_timeout_ms.into(),
            ) as i32,
            initial_rebalance_delay_ms: int(
                "group.initial.rebalance.delay.ms",
                d.initial_rebalance_delay_ms.into(),
            )
            .max(0) as i32,
            max_size: int("group.max.size", d.max_size as i64).max(1) as usize,
            offsets_retention_ms: int("offsets.retention.minutes", 10080).saturating_mul(60_000),
            offsets_retention_check_interval_ms: int(
                "offsets.retention.check.interval.ms",
                d.offsets_retention_check_interval_ms,
            )
            .max(1),
            offset_metadata_max_bytes: int(
                "offset.metadata.max.bytes",
                d.offset_metadata_max_bytes as i64,
            )
            .max(0) as usize,
            offsets_topic_num_partitions: int(
                "offsets.topic.num.partitions",
                d.offsets_topic_num_partitions.into(),
            )
            .max(1) as i32,
            offsets_topic_replication_factor: int(
                "offsets.topic.replication.factor",
                d.offsets_topic_replication_factor.into(),
            )
            .max(1) as i16,
            offsets_topic_segment_bytes: int(
                "offsets.topic.segment.bytes",
                d.offsets_topic_segment_bytes,
            ),
            offsets_commit_timeout_ms: int(
                "offsets.commit.timeout.ms",
                d.offsets_commit_timeout_ms,
            )
            .max(1),
            consumer: ConsumerConfig {
                heartbeat_interval_ms: int(
                    "group.consumer.heartbeat.interval.ms",
                    d.consumer.heartbeat_interval_ms.into(),
                )
                .clamp(1, i32::MAX.into()) as i32,
                session_timeout_ms: int(
                    "group.consumer.session.timeout.ms",
                    d.consumer.session_timeout_ms.into(),
                )
                .clamp(1, i32::MAX.into()) as i32,
                assignors: {
                    let v: Vec<assignor::Assignor> = value("group.consumer.assignors")
                        .map(|v| v.split(',').filter_map(assignor::Assignor::parse).collect())
                        .unwrap_or_default();
                    if v.is_empty() {
                        d.consumer.assignors.clone()
                    } else {
                        v
                    }
                },
                max_size: int("group.consumer.max.size", d.consumer.max_size as i64).max(1)
                    as usize,
            },
        }
    }
}

/// A result per partition, grouped by topic.
pub type PerPartition<T> = Vec<(String, Vec<(i32, T)>)>;

/// One offset to commit.
#[derive(Debug, Clone)]
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// The commit time OffsetCommit v1 lets the client choose (the base of
    /// the offset's retention); -1, as every other version sends: the
    /// coordinator's clock.
    pub commit_timestamp: i64,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct DescribedGroup {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug, Clone)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Kafka's state name (classic or consumer group states).
    pub state: &'static str,
    /// "classic" or "consumer".
    pub group_type: &'static str,
}

/// A KIP-848 group as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone)]
pub struct DescribedConsumerGroup {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: &'static str,
    pub members: Vec<DescribedConsumerMember>,
}

#[derive(Debug, Clone)]
pub struct DescribedConsumerMember {
    pub member: consumer::ConsumerMember,
    pub target: assignor::Assignment,
}

pub struct GroupCoordinator {
    cfg: GroupConfig,
    controller: Arc<dyn CoordinatorMetadata>,
    replica_manager: Arc<dyn CoordinatorLog>,
    groups: Mutex<HashMap<String, Group>>,
    /// The `__consumer_offsets` partitions this broker leads: the groups
    /// hashed there are coordinated here.
    owned: Ownership,
    /// Transactional offset commits awaiting their marker (txn_offsets.rs).
    txn_offsets: Mutex<txn_offsets::PendingTxnOffsets>,
}

/// The KIP-848 records of one group while `__consumer_offsets` is
/// replayed (last value per key wins; tombstones remove).
#[derive(Default)]
struct ConsumerReplay {
    epoch: Option<i32>,
    assignment_epoch: i32,
    members: BTreeMap<String, records::ConsumerMemberMetadataValue>,
    current: BTreeMap<String, records::CurrentMemberAssignmentValue>,
    target: BTreeMap<String, assignor::Assignment>,
    /// The last `ConsumerGroupPartitionMetadata` (None: never written).
    subscribed: Option<BTreeMap<String, (uuid::Uuid, i32)>>,
}

/// A member's record sets its entry; a tombstone (or a value of another
/// kind) removes it.
fn set_or_remove<T, V>(
    map: &mut BTreeMap<String, T>,
    member: String,
    value: Option<V>,
    pick: impl FnOnce(V) -> Option<T>,
) {
    match value.and_then(pick) {
        Some(t) => {
            map.insert(member, t);
        }
        None => {
            map.remove(&member);
        }
    }
}

impl ConsumerReplay {
    /// Applies one record; false if its value does not decode.
    fn apply(
        all: &mut HashMap<String, ConsumerReplay>,
        key: CoordinatorKey,
        raw_key: &[u8],
        value: Option<&[u8]>,
    ) -> bool {
        use records::ConsumerValue as V;
        let key_type = raw_key
            .get(..2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(-1);
        let decoded = match value.map(|v| V::decode(key_type, v)) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => return false,
        };
        match (key, decoded) {
            (CoordinatorKey::ConsumerGroupMetadata { group }, v) => {
                let r = all.entry(group).or_default();
                r.epoch = match v {
                    Some(V::GroupMetadata { epoch }) => Some(epoch),
                    _ => None,
                };
            }
            (CoordinatorKey::ConsumerGroupPartitionMetadata { group }, v) => {
                let r = all.entry(group).or_default();
                r.subscribed = match v {
                    Some(V::PartitionMetadata(t)) => Some(t),
                    _ => None,
                };
            }
            (CoordinatorKey::ConsumerGroupTargetAssignmentMetadata { group }, v) => {
                let r = all.entry(group).or_default();
                r.assignment_epoch = match v {
                    Some(V::TargetAssignmentMetadata { assignment_epoch }) => assignment_epoch,
                    _ => 0,
                };
            }
            (CoordinatorKey::ConsumerGroupMemberMetadata { group, member }, v) => {
                let r = all.entry(group).or_default();
                set_or_remove(&mut r.members, member, v, |v| match v {
                    V::Member(m) => Some(m),
                    _ => None,
                });
            }
            (CoordinatorKey::ConsumerGroupCurrentMemberAssignment { group, member }, v) => {
                let r = all.entry(group).or_default();
                set_or_remove(&mut r.current, member, v, |v| match v {
                    V::CurrentAssignment(c) => Some(c),
                    _ => None,
                });
            }
            (CoordinatorKey::ConsumerGroupTargetAssignmentMember { group, member }, v) => {
                let r = all.entry(group).or_default();
                set_or_remove(&mut r.target, member, v, |v| match v {
                    V::TargetAssignmentMember(a) => Some(a),
                    _ => None,
                });
            }
            _ => return false,
        }
        true
    }

    fn into_group(mut self, id: &str, image: &MetadataImage, now_ms: i64) -> Option<ConsumerGroup> {
        let epoch = self.epoch?;
        let members = std::mem::take(&mut self.members)
            .into_iter()
            .map(|(m, md)| {
                let cur = self.current.remove(&m);
                (m, (md, cur))
            })
            .collect();
        let mut g = ConsumerGroup::from_records(
            id,
            epoch,
            self.assignment_epoch,
            members,
            self.target,
            now_ms,
        );
        g.after_load(self.subscribed, image, now_ms);
        Some(g)
    }
}

impl GroupCoordinator {
    pub fn new(
        cfg: GroupConfig,
        controller: Arc<dyn CoordinatorMetadata>,
        replica_manager: Arc<dyn CoordinatorLog>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            cfg,
            controller,
            replica_manager,
            groups: Mutex::new(HashMap::new()),
            owned: Ownership::default(),
            txn_offsets: Mutex::new(Default::default()),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    /// The KIP-848 settings of `group_id`: the broker's, with the group's
    /// `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`
    /// overrides (KIP-848 group configs, in the metadata image) in place.
    pub fn consumer_config(
        &self,
        image: &MetadataImage,
        group_id: &str,
    ) -> Cow<'_, ConsumerConfig> {
        let Some(overrides) = image.group_configs.get(group_id) else {
            return Cow::Borrowed(&self.cfg.consumer);
        };
        let get = |name: &str| {
            self.controller
                .group_config_int(overrides, name)
                .map(|v| v.clamp(1, i32::MAX.into()) as i32)
        };
        let mut c = self.cfg.consumer.clone();
        if let Some(v) = get("consumer.session.timeout.ms") {
            c.session_timeout_ms = v;
        }
        if let Some(v) = get("consumer.heartbeat.interval.ms") {
            c.heartbeat_interval_ms = v;
        }
        Cow::Owned(c)
    }

    /// Whether a partition led here is still being replayed (its groups
    /// answer COORDINATOR_LOAD_IN_PROGRESS; clients retry).
    pub fn is_loading(&self) -> bool {
        self.owned.any_loading()
    }

    /// The `__consumer_offsets` partition of `group_id`.
    pub fn partition_of(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.offsets_partitions())
    }

    /// Whether this broker coordinates `group_id` now: its partition is
    /// led here and loaded (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS
    /// otherwise, as Kafka's `validateGroupStatus`).
    fn ready(&self, group_id: &str) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.owned.status(self.partition_of(group_id)).map(|_| ())
    }

    /// The leadership listener's entry (called on the metadata publisher's
    /// thread; never waits on I/O): `leader_epoch` is `Some` when this
    /// broker now leads `__consumer_offsets` partition `partition`. A newly
    /// led partition with an empty log is loaded at once (nothing to
    /// replay: a new offsets topic is usable at once, as on a single
    /// node); others are left to the loader task. A partition led
    /// elsewhere now is dropped (its groups' parked JoinGroup/SyncGroup
    /// answered NOT_COORDINATOR).
    pub fn on_leadership(&self, partition: i32, leader_epoch: Option<i32>) {
        match leader_epoch {
            Some(epoch) => {
                if !self.owned.lead(partition, epoch) {
                    return;
                }
                let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
                let empty = self
                    .replica_manager
                    .log_bounds(&tp)
                    .is_some_and(|(start, end)| start >= end);
                if empty {
                    self.install(partition, epoch, HashMap::new());
                } else {
                    self.owned.wake.notify_one();
                }
            }
            None => {
                if self.owned.resign(partition) {
                    self.unload(partition);
                }
            }
        }
    }

    /// Drops the state of the groups hashed to `partition` (Kafka's
    /// `onResignation`): their waiting members are told NOT_COORDINATOR
    /// and find the new coordinator.
    fn unload(&self, partition: i32) {
        let n = self.offsets_partitions();
        let mut groups = self.groups.lock();
        let mut dropped = 0usize;
        groups.retain(|id, g| {
            if partition_for(id, n) != partition {
                return true;
            }
            g.fail_waiters(ResponseError::NotCoordinator);
            dropped += 1;
            false
        });
        drop(groups);
        self.txn_offsets.lock().drop_partition(partition, n);
        tracing::info!(
            partition,
            groups = dropped,
            "no longer the group coordinator for {OFFSETS_TOPIC}-{partition}"
        );
    }

    /// Installs the groups replayed from `partition` if it is still owned
    /// in `epoch` (else the load lost a race with a leadership change and
    /// is dropped).
    fn install(&self, partition: i32, epoch: i32, loaded: HashMap<String, Group>) -> bool {
        let n = self.offsets_partitions();
        let mut groups = self.groups.lock();
        let current = self
            .replica_manager
            .leader_epoch(&TopicPartition::new(OFFSETS_TOPIC, partition));
        if current != Some(epoch) || !self.owned.mark_loaded(partition, epoch) {
            return false;
        }
        // leftovers of an earlier term here (a request that raced with the
        // resignation) give way to the log
        groups.retain(|id, _| partition_for(id, n) != partition);
        let count = loaded.len();
        groups.extend(loaded);
        tracing::info!(
            partition,
            epoch,
            groups = count,
            "group coordinator for {OFFSETS_TOPIC}-{partition}"
        );
        true
    }

    /// Awaits the replication of the group's partition (everything written
    /// to it so far) before a write is acknowledged: Kafka appends the
    /// coordinator's records with acks=all and answers once the high
    /// watermark covers them (`offsets.commit.timeout.ms`,
    /// `offsets.commit.required.acks`). Errors as Kafka maps them:
    /// REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND become
    /// COORDINATOR_NOT_AVAILABLE, lost leadership NOT_COORDINATOR.
    pub async fn replicated(&self, group_id: &str) -> Result<(), ResponseError> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, self.partition_of(group_id));
        if self.replica_manager.leads_alone(&tp) {
            return Ok(());
        }
        let timeout = Duration::from_millis(self.cfg.offsets_commit_timeout_ms.max(1) as u64);
        self.replica_manager
            .wait_replicated(&tp, timeout)
            .await
            .map_err(|e| {
                tracing::debug!(group = group_id, error = ?e, "group write not replicated");
                crate::replication_error(e)
            })
    }

    /// Creates `__consumer_offsets` if it does not exist yet (Kafka does
    /// this on the first FindCoordinator for a group).
    pub fn ensure_offsets_topic(&self) -> Result<i32, ResponseError> {
        self.controller.ensure_internal_topic(
            OFFSETS_TOPIC,
            self.cfg.offsets_topic_num_partitions,
            self.cfg.offsets_topic_replication_factor,
            self.cfg.offsets_topic_segment_bytes,
        )
    }

    /// Appends records for `group` to its partition of the offsets topic
    /// with acks=all semantics. Errors are mapped as Kafka maps them for
    /// the coordinator's writes.
    fn append(
        &self,
        group: &str,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), ResponseError> {
        if records.is_empty() {
            return Ok(());
        }
        let n = self.ensure_offsets_topic()?;
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition_for(group, n));
        let now = now_ms();
        let mut b = RecordBatchBuilder::new();
        for (k, v) in &records {
            b = b.record(Some(k), v.as_deref(), now);
        }
        let bytes = b.try_build().map_err(|e| {
            tracing::error!(error = %e, "cannot encode coordinator records");
            ResponseError::UnknownServerError
        })?;
        self.replica_manager
            .append_records(&tp, Bytes::from(bytes), -1, now)
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!(group, error = %e.message, "writing to {tp} failed");
                match e.error {
                    ResponseError::UnknownTopicOrPartition
                    | ResponseError::NotEnoughReplicas
                    | ResponseError::NotEnoughReplicasAfterAppend
                    | ResponseError::RequestTimedOut => ResponseError::CoordinatorNotAvailable,
                    ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => {
                        ResponseError::NotCoordinator
                    }
                    ResponseError::MessageTooLarge
                    | ResponseError::RecordListTooLarge
                    | ResponseError::InvalidFetchSize => ResponseError::InvalidCommitOffsetSize,
                    other => other,
                }
            })
    }

    fn metadata_record(g: &Group) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            CoordinatorKey::GroupMetadata {
                group: g.id.clone(),
            }
            .encode(),
            Some(g.to_metadata_value().encode()),
        )
    }

    /// Writes the records of what changed in a consumer group. A failed
    /// write is logged: the state in memory stays authoritative until the
    /// next change rewrites the records.
    fn persist_consumer(&self, g: &mut Group) {
        let Some(c) = g.consumer.as_mut() else {
            return;
        };
        let records = c.take_records();
        if let Err(e) = self.append(&g.id, records) {
            tracing::warn!(group = %g.id, error = ?e, "cannot store consumer group records");
        }
    }

    /// Tombstones for the KIP-848 records of `g` (none if classic).
    fn consumer_tombstones(g: &Group) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        g.consumer
            .as_ref()
            .map(ConsumerGroup::tombstones)
            .unwrap_or_default()
    }

    /// Writes the group's metadata record if a transition asked for it.
    fn persist_if_dirty(&self, g: &mut Group) {
        if !g.metadata_dirty {
            return;
        }
        g.metadata_dirty = false;
        if let Err(e) = self.append(&g.id, vec![Self::metadata_record(g)]) {
            tracing::warn!(group = %g.id, error = ?e, "cannot store group metadata");
        }
    }

    pub fn join(&self, group_id: &str, p: JoinParams) -> Result<Reply<JoinOutcome>, ResponseError> {
        self.ready(group_id)?;
        let now = now_ms();
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) {
            // Kafka refuses to create a group for a join with a member id
            if !p.member_id.is_empty() {
                return Ok(Reply::Now(JoinOutcome::error(
                    ResponseError::UnknownMemberId,
                    p.member_id,
                )));
            }
            groups.insert(group_id.to_string(), Group::new(group_id, now));
        }
        let Some(g) = groups.get_mut(group_id) else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        if let Some(c) = &g.consumer {
            // A group keeps its type until it is empty; an empty consumer
            // group becomes a classic one (its offsets stay).
            if !c.is_empty() {
                return Ok(Reply::Now(JoinOutcome::error(
                    ResponseError::InconsistentGroupProtocol,
                    p.member_id,
                )));
            }
            let records = Self::consumer_tombstones(g);
            if let Err(e) = self.append(group_id, records) {
                return Ok(Reply::Now(JoinOutcome::error(e, p.member_id)));
            }
            g.consumer = None;
        }
        let reply = g.join(p, &self.cfg, now);
        self.persist_if_dirty(g);
        Ok(reply)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Reply<SyncOutcome>, ResponseError> {
        self.ready(group_id)?;
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        let reply = g.sync(
            member_id,
            instance,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            now_ms(),
        );
        self.persist_if_dirty(g);
        Ok(reply)
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Option<ResponseError> {
        if let Err(e) = self.ready(group_id) {
            return Some(e);
        }
        let mut groups = self.groups.lock();
        match groups.get_mut(group_id) {
            None => Some(ResponseError::UnknownMemberId),
            Some(g) => g.heartbeat(member_id, instance, generation_id, now_ms()),
        }
    }

    /// ConsumerGroupHeartbeat (KIP-848). Creates the group, or turns an
    /// empty classic group into a consumer group; a classic group with
    /// members is not a consumer group (GROUP_ID_NOT_FOUND, as Kafka).
    pub fn consumer_heartbeat(&self, group_id: &str, p: HeartbeatParams) -> HeartbeatOutcome {
        if let Err(e) = self.ready(group_id) {
            return HeartbeatOutcome::error(e, e.to_string());
        }
        let now = now_ms();
        let image = self.controller.image();
        let mut groups = self.groups.lock();
        let g = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, now));
        if g.consumer.is_none() {
            if p.member_epoch != 0 || !g.members.is_empty() || g.state != GroupState::Empty {
                return HeartbeatOutcome::error(
                    ResponseError::GroupIdNotFound,
                    format!("Group {group_id} is not a consumer group."),
                );
            }
            if g.generation_id > 0 || g.protocol_type.is_some() {
                // the classic group's metadata record goes away
                if let Err(e) = self.append(
                    group_id,
                    vec![(
                        CoordinatorKey::GroupMetadata {
                            group: group_id.to_string(),
                        }
                        .encode(),
                        None,
                    )],
                ) {
                    return HeartbeatOutcome::error(e, e.to_string());
                }
                g.generation_id = 0;
                g.protocol_type = None;
                g.protocol_name = None;
                g.leader_id = None;
            }
            g.consumer = Some(ConsumerGroup::new(group_id, now));
        }
        let Some(c) = g.consumer.as_mut() else {
            return HeartbeatOutcome::error(ResponseError::CoordinatorNotAvailable, "");
        };
        let cfg = self.consumer_config(&image, group_id);
        let out = c.heartbeat(p, &image, &cfg, now);
        self.persist_consumer(g);
        out
    }

    /// ConsumerGroupDescribe of one group: `Err` is the error for the row
    /// (GROUP_ID_NOT_FOUND with Kafka's message for missing and classic
    /// groups).
    pub fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<DescribedConsumerGroup, (ResponseError, String)> {
        self.ready(group_id).map_err(|e| (e, e.to_string()))?;
        let groups = self.groups.lock();
        let not_found = || {
            (
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} not found."),
            )
        };
        let g = groups.get(group_id).ok_or_else(not_found)?;
        let Some(c) = &g.consumer else {
            if g.members.is_empty() && g.state == GroupState::Empty && g.protocol_type.is_none() {
                return Err(not_found());
            }
            return Err((
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            ));
        };
        Ok(DescribedConsumerGroup {
            state: c.state().name(),
            group_epoch: c.group_epoch,
            assignment_epoch: c.assignment_epoch,
            assignor: c.assignor.name(),
            members: c
                .members
                .values()
                .map(|m| DescribedConsumerMember {
                    member: m.clone(),
                    target: c.target.get(&m.member_id).cloned().unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// Whether `group_id` is a KIP-848 consumer group (DescribeGroups
    /// reports those as not classic).
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.groups
            .lock()
            .get(group_id)
            .is_some_and(|g| g.consumer.is_some())
    }

    /// OffsetFetch v9+ from a member of a consumer group: its id and epoch
    /// must be current (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH).
    pub fn validate_member_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        let groups = self.groups.lock();
        match groups.get(group_id).and_then(|g| g.consumer.as_ref()) {
            Some(c) => c.validate_fetch(member_id.unwrap_or(""), member_epoch),
            None => Ok(()),
        }
    }

    /// LeaveGroup for a batch of member identities.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<(String, Option<ResponseError>)>, ResponseError> {
        self.ready(group_id)?;
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return Ok(members
                .iter()
                .map(|(m, _)| (m.clone(), Some(ResponseError::UnknownMemberId)))
                .collect());
        };
        let now = now_ms();
        let out = members
            .iter()
            .map(|(m, i)| {
                let (id, e) = g.leave(m, i.as_deref(), &self.cfg, now);
                (if m.is_empty() { id } else { m.clone() }, e)
            })
            .collect();
        self.persist_if_dirty(g);
        Ok(out)
    }

    /// Whether `topic` has partition `partition` (commits to unknown
    /// partitions fail with UNKNOWN_TOPIC_OR_PARTITION).
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.controller
            .image()
            .topic(topic)
            .is_some_and(|t| partition >= 0 && (partition as usize) < t.partitions.len())
    }

    /// Kafka's offset-commit validation (`OffsetMetadataManager`), shared
    /// by OffsetCommit and TxnOffsetCommit: a group that does not exist
    /// takes only commits without a generation (the caller then creates a
    /// simple group); otherwise the group's own validator decides
    /// (`ConsumerGroup` or `ClassicGroup.validateOffsetCommit`).
    fn validate_offset_commit(
        g: Option<&Group>,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        transactional: bool,
        api_version: i16,
    ) -> Result<(), ResponseError> {
        let Some(g) = g else {
            return if generation_id < 0 {
                Ok(())
            } else if !transactional && api_version >= 9 {
                // OffsetCommit v9+ names the missing group; older versions
                // keep ILLEGAL_GENERATION for compatibility (as Kafka).
                Err(ResponseError::GroupIdNotFound)
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        match &g.consumer {
            Some(c) => c
                .validate_commit(
                    member_id,
                    instance,
                    generation_id,
                    transactional,
                    api_version,
                )
                .map_err(|e| match e {
                    ResponseError::StaleMemberEpoch if transactional => {
                        ResponseError::IllegalGeneration
                    }
                    e => e,
                }),
            None => g.validate_offset_commit(member_id, instance, generation_id, transactional),
        }
    }

    /// OffsetCommit. Returns the per-partition errors, or a group-level
    /// error applying to every partition.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
        entries: Vec<CommitEntry>,
        api_version: i16,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.ready(group_id)?;
        let now = now_ms();
        let mut groups = self.groups.lock();
        Self::validate_offset_commit(
            groups.get(group_id),
            member_id,
            instance,
            generation_id,
            false,
            api_version,
        )?;
        let g = groups.entry(group_id.to_string()).or_insert_with(|| {
            tracing::info!(
                group = group_id,
                "simple group created by a manual offset commit"
            );
            Group::new(group_id, now)
        });
        let mut results = Vec::with_capacity(entries.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for e in entries {
            let md = e.metadata.clone().unwrap_or_default();
            if !self.partition_exists(&e.topic, e.partition) {
                results.push(Some(ResponseError::UnknownTopicOrPartition));
            } else if md.len() > self.cfg.offset_metadata_max_bytes {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
            } else {
                results.push(None);
                let value = OffsetCommitValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: md,
                    commit_timestamp: if e.commit_timestamp == -1 {
                        now
                    } else {
                        e.commit_timestamp
                    },
                };
                records.push((
                    CoordinatorKey::OffsetCommit {
                        group: group_id.to_string(),
                        topic: e.topic.clone(),
                        partition: e.partition,
                    }
                    .encode(),
                    Some(value.encode()),
                ));
                accepted.push((results.len() - 1, e.topic, e.partition, value));
            }
        }
        if let Err(err) = self.append(group_id, records) {
            for (i, ..) in &accepted {
                results[*i] = Some(err);
            }
            return Ok(results);
        }
        for (_, topic, partition, v) in accepted {
            g.offsets
                .insert((topic, partition), OffsetAndMetadata::from(v));
        }
        Ok(results)
    }

    /// OffsetFetch for one group: `None` topics means every committed offset.
    /// Partitions without a commit come back as `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<PerPartition<Option<OffsetAndMetadata>>, ResponseError> {
        self.owned.status(self.partition_of(group_id))?;
        let groups = self.groups.lock();
        let g = groups.get(group_id);
        match topics {
            Some(topics) => Ok(topics
                .into_iter()
                .map(|(t, parts)| {
                    let ps = parts
                        .into_iter()
                        .map(|p| {
                            let o = g.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned());
                            (p, o)
                        })
                        .collect();
                    (t, ps)
                })
                .collect()),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetAndMetadata>)>> =
                    BTreeMap::new();
                if let Some(g) = g {
                    for ((t, p), o) in &g.offsets {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push((*p, Some(o.clone())));
                    }
                }
                for v in by_topic.values_mut() {
                    v.sort_by_key(|(p, _)| *p);
                }
                Ok(by_topic.into_iter().collect())
            }
        }
    }

    /// Rebalances completed by the groups coordinated here now, (classic,
    /// KIP-848 consumer groups): counted per group, so a group that moves
    /// or is deleted takes its count along (Prometheus' `rate` treats the
    /// drop as a reset).
    pub fn rebalance_counts(&self) -> (u64, u64) {
        let groups = self.groups.lock();
        groups
            .values()
            .fold((0, 0), |(classic, consumer), g| match &g.consumer {
                Some(c) => (classic + g.completed_rebalances, consumer + c.rebalances),
                None => (classic + g.completed_rebalances, consumer),
            })
    }

    pub fn list_groups(&self) -> Result<Vec<ListedGroup>, ResponseError> {
        if self.is_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let n = self.offsets_partitions();
        let groups = self.groups.lock();
        let mut out: Vec<ListedGroup> = groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| self.owned.is_loaded(partition_for(&g.id, n)))
            .map(|g| match &g.consumer {
                Some(c) => ListedGroup {
                    group_id: g.id.clone(),
                    protocol_type: "consumer".to_string(),
                    state: c.state().name(),
                    group_type: "consumer",
                },
                None => ListedGroup {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state.name(),
                    group_type: "classic",
                },
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    pub fn describe_group(&self, group_id: &str) -> Result<Option<DescribedGroup>, ResponseError> {
        self.ready(group_id)?;
        let groups = self.groups.lock();
        let Some(g) = groups.get(group_id).filter(|g| g.consumer.is_none()) else {
            return Ok(None);
        };
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        Ok(Some(DescribedGroup {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members_in_order()
                .into_iter()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }))
    }

    /// Tombstones for every offset of `g` and for its metadata.
    fn tombstones(g: &Group) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut recs: Vec<(Vec<u8>, Option<Vec<u8>>)> = g
            .offsets
            .keys()
            .map(|(t, p)| {
                (
                    CoordinatorKey::OffsetCommit {
                        group: g.id.clone(),
                        topic: t.clone(),
                        partition: *p,
                    }
                    .encode(),
                    None,
                )
            })
            .collect();
        recs.push((
            CoordinatorKey::GroupMetadata {
                group: g.id.clone(),
            }
            .encode(),
            None,
        ));
        recs
    }

    pub fn delete_group(&self, group_id: &str) -> Option<ResponseError> {
        if let Err(e) = self.ready(group_id) {
            return Some(e);
        }
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return Some(ResponseError::GroupIdNotFound);
        };
        match g.state {
            GroupState::Dead => return Some(ResponseError::GroupIdNotFound),
            GroupState::Empty => {}
            _ => return Some(ResponseError::NonEmptyGroup),
        }
        if g.consumer.as_ref().is_some_and(|c| !c.is_empty()) {
            return Some(ResponseError::NonEmptyGroup);
        }
        let mut records = Self::tombstones(g);
        records.extend(Self::consumer_tombstones(g));
        if let Err(e) = self.append(group_id, records) {
            return Some(e);
        }
        g.state = GroupState::Dead;
        groups.remove(group_id);
        None
    }

    /// OffsetDelete: per-partition errors, or a group-level error.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<PerPartition<Option<ResponseError>>, ResponseError> {
        self.ready(group_id)?;
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        if g.state == GroupState::Dead {
            return Err(ResponseError::GroupIdNotFound);
        }
        if g.state != GroupState::Empty && g.protocol_type.as_deref() != Some("consumer") {
            return Err(ResponseError::NonEmptyGroup);
        }
        let subscribed = match &g.consumer {
            Some(c) if !c.is_empty() => c.subscribed_topic_names().into_iter().collect(),
            Some(_) => HashSet::new(),
            None => g.subscribed_topics().unwrap_or_default(),
        };
        let mut out = Vec::new();
        let mut records = Vec::new();
        let mut removed = Vec::new();
        for (t, parts) in topics {
            let mut res = Vec::new();
            for p in parts {
                if subscribed.contains(&t) {
                    res.push((p, Some(ResponseError::GroupSubscribedToTopic)));
                    continue;
                }
                if !self.partition_exists(&t, p) {
                    res.push((p, Some(ResponseError::UnknownTopicOrPartition)));
                    continue;
                }
                if g.offsets.contains_key(&(t.clone(), p)) {
                    records.push((
                        CoordinatorKey::OffsetCommit {
                            group: group_id.to_string(),
                            topic: t.clone(),
                            partition: p,
                        }
                        .encode(),
                        None,
                    ));
                    removed.push((t.clone(), p));
                }
                res.push((p, None));
            }
            out.push((t, res));
        }
        self.append(group_id, records)?;
        for k in removed {
            g.offsets.remove(&k);
        }
        Ok(out)
    }

    /// Takes the `__consumer_offsets` partitions led here now (also those
    /// led before the leadership listener was registered) and loads every
    /// one not loaded yet, on the calling thread. The loader task runs
    /// this whenever the listener wakes it; tests call it directly.
    pub fn load(&self) -> Result<(), LoadError> {
        let n = self
            .controller
            .image()
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions.len() as i32);
        if let Some(n) = n {
            for p in self
                .owned
                .reconcile(&*self.replica_manager, OFFSETS_TOPIC, n)
            {
                self.unload(p);
            }
        }
        let mut first_error = None;
        for (p, epoch) in self.owned.to_load() {
            let loaded = match self.replay(p) {
                Ok(groups) => groups,
                Err(e) => {
                    crate::log_load_failure(
                        "consumer groups",
                        &TopicPartition::new(OFFSETS_TOPIC, p),
                        &e,
                    );
                    first_error.get_or_insert(e);
                    HashMap::new()
                }
            };
            self.install(p, epoch, loaded);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Replays one partition of `__consumer_offsets` into the groups hashed
    /// there (Kafka's `GroupMetadataManager.loadGroupsAndOffsets`).
    fn replay(&self, p: i32) -> Result<HashMap<String, Group>, LoadError> {
        let n = self.offsets_partitions();
        self.txn_offsets.lock().drop_partition(p, n);
        let mut meta: HashMap<String, Option<GroupMetadataValue>> = HashMap::new();
        let mut offs: HashMap<String, HashMap<(String, i32), OffsetAndMetadata>> = HashMap::new();
        let mut kip848: HashMap<String, ConsumerReplay> = HashMap::new();
        let mut bad = 0usize;
        {
            let tp = TopicPartition::new(OFFSETS_TOPIC, p);
            let torn = super::replay_partition(&*self.replica_manager, &tp, |h, raw, pos| {
                if h.is_transactional() {
                    // TxnOffsetCommit data and its markers
                    self.load_txn_batch(p, n, h, raw, &mut offs);
                    return;
                }
                let Some(recs) = super::replayed_records(h, raw, pos) else {
                    bad += 1;
                    return;
                };
                for r in recs {
                    let Some(key) = r.key.as_deref() else {
                        continue;
                    };
                    match CoordinatorKey::decode(key) {
                        Ok(CoordinatorKey::OffsetCommit {
                            group,
                            topic,
                            partition,
                        }) => {
                            let entry = offs.entry(group).or_default();
                            match r.value.as_deref().map(OffsetCommitValue::decode) {
                                None => {
                                    entry.remove(&(topic, partition));
                                }
                                Some(Ok(v)) => {
                                    entry.insert((topic, partition), OffsetAndMetadata::from(v));
                                }
                                Some(Err(_)) => bad += 1,
                            }
                        }
                        Ok(CoordinatorKey::GroupMetadata { group }) => {
                            match r.value.as_deref().map(GroupMetadataValue::decode) {
                                None => {
                                    meta.insert(group, None);
                                }
                                Some(Ok(v)) => {
                                    meta.insert(group, Some(v));
                                }
                                Some(Err(_)) => bad += 1,
                            }
                        }
                        Ok(k) => {
                            if !ConsumerReplay::apply(&mut kip848, k, key, r.value.as_deref()) {
                                bad += 1;
                            }
                        }
                        Err(_) => bad += 1,
                    }
                }
            })
            .map_err(|source| LoadError::Log {
                tp: tp.clone(),
                source,
            })?;
            bad += torn;
        }
        if bad > 0 {
            tracing::warn!(
                records = bad,
                "skipped undecodable records in {OFFSETS_TOPIC}"
            );
        }
        let now = now_ms();
        let image = self.controller.image();
        let mut groups = HashMap::new();
        let mut ids: HashSet<String> = offs
            .iter()
            .filter(|(_, o)| !o.is_empty())
            .map(|(g, _)| g.clone())
            .collect();
        ids.extend(
            meta.iter()
                .filter(|(_, v)| v.is_some())
                .map(|(g, _)| g.clone()),
        );
        ids.extend(
            kip848
                .iter()
                .filter(|(_, r)| r.epoch.is_some())
                .map(|(g, _)| g.clone()),
        );
        for id in ids {
            let mut g = match meta.remove(&id).flatten() {
                Some(v) => Group::from_metadata_value(&id, v, now),
                None => Group::new(&id, now),
            };
            if let Some(r) = kip848.remove(&id) {
                g.consumer = r.into_group(&id, &image, now);
            }
            g.offsets = offs.remove(&id).unwrap_or_default();
            groups.insert(id, g);
        }
        Ok(groups)
    }

    /// One pass of the group timers.
    pub fn tick(&self) {
        let now = now_ms();
        let image = self.controller.image();
        let n = self.offsets_partitions();
        let mut groups = self.groups.lock();
        for g in groups.values_mut() {
            if !self.owned.is_loaded(partition_for(&g.id, n)) {
                continue;
            }
            if let Some(c) = g.consumer.as_mut() {
                let cfg = self.consumer_config(&image, &g.id);
                if c.tick(&image, &cfg, now) {
                    self.persist_consumer(g);
                }
                continue;
            }
            g.tick(&self.cfg, now);
            self.persist_if_dirty(g);
        }
    }

    /// Expires offsets of empty groups after `offsets.retention.minutes`
    /// (KIP-211: counted from when the group became empty, or from the
    /// commit for groups that never had members) and forgets empty groups
    /// with nothing left.
    pub fn expire_offsets(&self) {
        let now = now_ms();
        let retention = self.cfg.offsets_retention_ms;
        let n = self.offsets_partitions();
        let mut groups = self.groups.lock();
        let mut gone = Vec::new();
        for g in groups.values_mut() {
            if !self.owned.is_loaded(partition_for(&g.id, n)) {
                continue;
            }
            if g.state != GroupState::Empty || g.consumer.as_ref().is_some_and(|c| !c.is_empty()) {
                continue;
            }
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(_, o)| {
                    let base = if let Some(c) = &g.consumer {
                        c.state_timestamp_ms
                    } else if g.protocol_type.is_some() {
                        g.state_timestamp_ms
                    } else {
                        o.commit_timestamp
                    };
                    base.saturating_add(retention) <= now
                })
                .map(|(k, _)| k.clone())
                .collect();
            let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = expired
                .iter()
                .map(|(t, p)| {
                    (
                        CoordinatorKey::OffsetCommit {
                            group: g.id.clone(),
                            topic: t.clone(),
                            partition: *p,
                        }
                        .encode(),
                        None,
                    )
                })
                .collect();
            let forget = g.offsets.len() == expired.len();
            if forget {
                records.extend(Self::consumer_tombstones(g));
            }
            if forget && g.generation_id > 0 {
                records.push((
                    CoordinatorKey::GroupMetadata {
                        group: g.id.clone(),
                    }
                    .encode(),
                    None,
                ));
            }
            if self.append(&g.id.clone(), records).is_ok() {
                for k in &expired {
                    g.offsets.remove(k);
                }
                if forget {
                    gone.push(g.id.clone());
                }
                if !expired.is_empty() {
                    tracing::info!(group = %g.id, offsets = expired.len(), "expired offsets");
                }
            }
        }
        for id in gone {
            groups.remove(&id);
        }
    }

    /// Loads the offsets partitions led here (again whenever leadership
    /// moves here) and runs the timers until `shutdown`.
    pub fn spawn(
        self: &Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let loader = self.clone();
        let mut loader_shutdown = shutdown.clone();
        tokio::spawn(async move {
            // the loader: a replay reads the log, so it runs on a blocking
            // thread, one partition set at a time
            loop {
                let l = loader.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || {
                    // failures are logged per partition by `load`
                    let _ = l.load();
                })
                .await
                {
                    tracing::error!(error = %e, "group load task failed");
                }
                tokio::select! {
                    _ = loader_shutdown.changed() => break,
                    _ = loader.owned.wake.notified() => {}
                    // level-triggered safety net: leadership is re-read
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        });
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut retention = tokio::time::interval(Duration::from_millis(
                me.cfg.offsets_retention_check_interval_ms as u64,
            ));
            retention.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tick.tick() => me.tick(),
                    _ = retention.tick() => me.expire_offsets(),
                }
            }
            me.shutdown();
        })
    }

    /// Answers every waiting JoinGroup/SyncGroup so connections can close.
    pub fn shutdown(&self) {
        let mut groups = self.groups.lock();
        for g in groups.values_mut() {
            g.fail_waiters(ResponseError::NotCoordinator);
        }
    }
}
