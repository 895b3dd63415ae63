//! One consumer group of the KIP-848 protocol (ConsumerGroupHeartbeat):
//! members with epochs, the group epoch, the target assignment computed by
//! a server-side assignor, and the reconciliation that moves each member
//! towards its target without a partition ever being owned by two members.
//!
//! Epochs: every change of membership, subscription or subscribed metadata
//! bumps the group epoch; the target assignment is recomputed for it (its
//! epoch becomes the group epoch); a member reaches the target epoch once it
//! owns exactly its target minus the partitions still held by others.
//! A member that must give partitions up first gets an assignment without
//! them and keeps its epoch (UNREVOKED_PARTITIONS); only when it heartbeats
//! without them are they released. A partition whose previous owner has not
//! released it yet is withheld from its new owner (UNRELEASED_PARTITIONS).
//!
//! Pure logic over a clock and a metadata image passed in (unit-testable);
//! the coordinator adds locking, persistence and the timer sweep.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;
use regex::Regex;
use uuid::Uuid;

use super::assignor::{self, Assignment, Assignor, MemberSpec};
use super::records::{
    ConsumerMemberMetadataValue, ConsumerValue, CoordinatorKey, CurrentMemberAssignmentValue,
};
use oxka_controller::image::MetadataImage;

/// Epoch a member sends to leave the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Epoch a static member sends to leave temporarily (it keeps its
/// partitions until its session expires or it comes back).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
/// Upper bound of a subscription regex's compiled size: a client cannot
/// make us hold an arbitrarily large automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Distinct regexes kept compiled per group (bounded by the member count in
/// practice; this bounds it absolutely).
const MAX_CACHED_REGEXES: usize = 1024;

/// The `group.consumer.*` broker configs.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub heartbeat_interval_ms: i32,
    pub session_timeout_ms: i32,
    /// The first is the default.
    pub assignors: Vec<Assignor>,
    pub max_size: usize,
}

impl Default for ConsumerConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        ConsumerConfig {
            heartbeat_interval_ms: 5000,
            session_timeout_ms: 45_000,
            assignors: vec![Assignor::Uniform, Assignor::Range],
            max_size: i32::MAX as usize,
        }
    }
}

/// Kafka's `MemberState` (values as in its records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

impl MemberState {
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 1,
            MemberState::UnrevokedPartitions => 2,
            MemberState::UnreleasedPartitions => 3,
        }
    }

    pub fn from_value(v: i8) -> MemberState {
        match v {
            2 => MemberState::UnrevokedPartitions,
            3 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

/// Kafka's consumer group states, as ListGroups and ConsumerGroupDescribe
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    /// Partitions the member owns and may consume.
    pub assigned: Assignment,
    /// Partitions it was told to give up and has not yet confirmed.
    pub pending_revocation: Assignment,
    pub last_heartbeat_ms: i64,
    revoking_since_ms: Option<i64>,
}

impl ConsumerMember {
    pub fn new(member_id: impl Into<String>, now_ms: i64) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.into(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 300_000,
            server_assignor: None,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            last_heartbeat_ms: now_ms,
            revoking_since_ms: None,
        }
    }
}

/// A ConsumerGroupHeartbeat request, decoded. `None` fields did not change
/// since the member's previous heartbeat.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatParams {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1: unchanged.
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, when it reports them.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What a ConsumerGroupHeartbeat answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub error: Option<ResponseError>,
    pub error_message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's full assignment when it changed (or was asked for).
    pub assignment: Option<Assignment>,
}

impl HeartbeatOutcome {
    pub fn error(e: ResponseError, message: impl Into<String>) -> HeartbeatOutcome {
        HeartbeatOutcome {
            error: Some(e),
            error_message: Some(message.into()),
            member_id: String::new(),
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// instance id → member id of static members.
    static_members: HashMap<String, String>,
    /// The target assignment of every member at `assignment_epoch`.
    pub target: BTreeMap<String, Assignment>,
    /// Which member owns each partition (assigned or pending revocation):
    /// the ledger that keeps a partition from having two owners.
    owners: HashMap<(Uuid, i32), String>,
    /// The topics members subscribe to that exist, with id and partition
    /// count: a change here changes the group epoch.
    subscribed: BTreeMap<String, (Uuid, i32)>,
    regexes: HashMap<String, Regex>,
    /// The assignor that computed the current target.
    pub assignor: Assignor,
    /// When the group last became empty (offset expiry counts from it).
    pub state_timestamp_ms: i64,
    /// Group epoch bumps (new target assignments) while coordinated here:
    /// the broker's rebalance metric.
    pub rebalances: u64,
    /// What changed since the records were last written.
    changes: Changes,
}

/// Changes not yet written to `__consumer_offsets`: only what changed is
/// written, so a heartbeat that changes nothing writes nothing.
#[derive(Debug, Default)]
struct Changes {
    epoch: bool,
    target: bool,
    /// The subscribed topics' metadata (`subscribed`) changed.
    subscribed: bool,
    members: BTreeSet<String>,
    removed: BTreeSet<String>,
}

fn compile(re: &str) -> Result<Regex, regex::Error> {
    // Kafka matches the whole topic name (Pattern.matcher(..).matches()).
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

impl ConsumerGroup {
    pub fn new(id: impl Into<String>, now_ms: i64) -> ConsumerGroup {
        ConsumerGroup {
            id: id.into(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: BTreeMap::new(),
            owners: HashMap::new(),
            subscribed: BTreeMap::new(),
            regexes: HashMap::new(),
            assignor: Assignor::Uniform,
            state_timestamp_ms: now_ms,
            rebalances: 0,
            changes: Changes::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().any(|m| {
            m.member_epoch >= 0
                && (m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        }) {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Owner of a partition, if any (tests and invariant checks).
    pub fn owner(&self, t: &Uuid, p: i32) -> Option<&str> {
        self.owners.get(&(*t, p)).map(String::as_str)
    }

    fn regex(&mut self, re: &str) -> Result<&Regex, regex::Error> {
        if !self.regexes.contains_key(re) {
            if self.regexes.len() >= MAX_CACHED_REGEXES {
                self.regexes.clear();
            }
            self.regexes.insert(re.to_string(), compile(re)?);
        }
        self.regexes
            .get(re)
            .ok_or_else(|| regex::Error::Syntax(re.to_string()))
    }

    /// The topics (existing in `image`) that `m` subscribes to.
    fn member_topics(&self, m: &ConsumerMember, image: &MetadataImage) -> BTreeSet<Uuid> {
        let mut out = BTreeSet::new();
        for n in &m.subscribed_topic_names {
            if let Some(t) = image.topic(n) {
                out.insert(t.id);
            }
        }
        if let Some(re) = m.subscribed_topic_regex.as_deref() {
            if let Some(r) = self.regexes.get(re) {
                out.extend(
                    image
                        .topics
                        .values()
                        .filter(|t| !t.is_internal() && r.is_match(&t.name))
                        .map(|t| t.id),
                );
            }
        }
        out
    }

    /// Re-resolves every member's subscription against `image`; true when
    /// the subscribed topics, their ids or partition counts changed.
    fn refresh_subscribed(&mut self, image: &MetadataImage) -> bool {
        let mut next: BTreeMap<String, (Uuid, i32)> = BTreeMap::new();
        let names: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter())
            .collect();
        for n in names {
            if let Some(t) = image.topic(n) {
                next.insert(n.clone(), (t.id, t.partitions.len() as i32));
            }
        }
        let res: BTreeSet<&String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.as_ref())
            .collect();
        for re in res {
            if let Some(r) = self.regexes.get(re.as_str()) {
                for t in image.topics.values() {
                    if !t.is_internal() && r.is_match(&t.name) {
                        next.insert(t.name.clone(), (t.id, t.partitions.len() as i32));
                    }
                }
            }
        }
        if next != self.subscribed {
            self.subscribed = next;
            self.changes.subscribed = true;
            true
        } else {
            false
        }
    }

    /// The assignor the members ask for most (ties: the configured order),
    /// else the configured default.
    fn pick_assignor(&self, cfg: &ConsumerConfig) -> Assignor {
        let mut votes: HashMap<Assignor, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref().and_then(Assignor::parse) {
                *votes.entry(a).or_default() += 1;
            }
        }
        let default = cfg.assignors.first().copied().unwrap_or(Assignor::Uniform);
        cfg.assignors
            .iter()
            .copied()
            .filter(|a| votes.contains_key(a))
            .max_by_key(|a| {
                let rank =
                    cfg.assignors.len() - cfg.assignors.iter().position(|x| x == a).unwrap_or(0);
                (votes.get(a).copied().unwrap_or(0), rank)
            })
            .unwrap_or(default)
    }

    /// Bumps the group epoch and computes the target assignment for it.
    fn bump_and_assign(&mut self, image: &MetadataImage, cfg: &ConsumerConfig) {
        self.refresh_subscribed(image);
        self.group_epoch = self.group_epoch.wrapping_add(1).max(1);
        self.rebalances += 1;
        self.compute_target(image, cfg);
        self.changes.epoch = true;
    }

    fn compute_target(&mut self, image: &MetadataImage, cfg: &ConsumerConfig) {
        let topics: BTreeMap<Uuid, i32> = self.subscribed.values().copied().collect();
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: m.member_id.clone(),
                subscribed: self.member_topics(m, image),
                current: self.target.get(&m.member_id).cloned().unwrap_or_default(),
            })
            .collect();
        self.assignor = self.pick_assignor(cfg);
        self.target = self.assignor.assign(&specs, &topics);
        self.assignment_epoch = self.group_epoch;
        self.changes.target = true;
    }

    /// Removes a member and everything it owned; the caller bumps the epoch.
    fn drop_member(&mut self, id: &str) -> Option<ConsumerMember> {
        let m = self.members.remove(id)?;
        self.changes.members.remove(id);
        self.changes.removed.insert(id.to_string());
        self.owners.retain(|_, o| o != id);
        self.target.remove(id);
        if let Some(inst) = &m.instance_id {
            if self.static_members.get(inst).map(String::as_str) == Some(id) {
                self.static_members.remove(inst);
            }
        }
        Some(m)
    }

    /// Removes a member (left, fenced or expired) and reassigns.
    pub fn remove_member(
        &mut self,
        id: &str,
        image: &MetadataImage,
        cfg: &ConsumerConfig,
        now_ms: i64,
    ) -> bool {
        if self.drop_member(id).is_none() {
            return false;
        }
        self.bump_and_assign(image, cfg);
        if self.members.is_empty() {
            self.state_timestamp_ms = now_ms;
        }
        true
    }

    pub fn heartbeat(
        &mut self,
        p: HeartbeatParams,
        image: &MetadataImage,
        cfg: &ConsumerConfig,
        now_ms: i64,
    ) -> HeartbeatOutcome {
        use ResponseError as E;
        if p.member_id.is_empty() {
            return HeartbeatOutcome::error(E::InvalidRequest, "MemberId can't be empty.");
        }
        if p.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return HeartbeatOutcome::error(E::InvalidRequest, "MemberEpoch is invalid.");
        }
        if p.instance_id.as_deref() == Some("") {
            return HeartbeatOutcome::error(E::InvalidRequest, "InstanceId can't be empty.");
        }
        if p.member_epoch < 0 {
            return self.leave(&p, image, cfg, now_ms);
        }
        if p.member_epoch == 0 {
            if p.rebalance_timeout_ms == -1 {
                return HeartbeatOutcome::error(
                    E::InvalidRequest,
                    "RebalanceTimeoutMs must be provided in first request.",
                );
            }
            if p.subscribed_topic_names.is_none() && p.subscribed_topic_regex.is_none() {
                return HeartbeatOutcome::error(
                    E::InvalidRequest,
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        }
        if let Some(a) = p.server_assignor.as_deref().filter(|a| !a.is_empty()) {
            if !Assignor::parse(a).is_some_and(|x| cfg.assignors.contains(&x)) {
                return HeartbeatOutcome::error(
                    E::UnsupportedAssignor,
                    format!(
                        "ServerAssignor {a} is not supported. Supported assignors: {}.",
                        cfg.assignors
                            .iter()
                            .map(|a| a.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if let Some(re) = p
            .subscribed_topic_regex
            .as_deref()
            .filter(|r| !r.is_empty())
        {
            if let Err(e) = self.regex(re) {
                return HeartbeatOutcome::error(
                    E::InvalidRegularExpression,
                    format!("SubscribedTopicRegex `{re}` is not a valid regular expression: {e}."),
                );
            }
        }

        let id = p.member_id.clone();
        let mut changed = false;
        if p.member_epoch == 0 {
            if let Err(o) = self.join(&p, cfg, now_ms, &mut changed) {
                return o;
            }
        } else {
            let m = match self.identify(&id, p.instance_id.as_deref()) {
                Ok(m) => m,
                Err(o) => return o,
            };
            if let Err(e) = check_epoch(m, p.member_epoch, p.owned.as_ref()) {
                return HeartbeatOutcome::error(
                    e,
                    format!(
                        "The member epoch {} of {id} does not match the expected epoch {}.",
                        p.member_epoch, m.member_epoch
                    ),
                );
            }
        }

        // Update the member from the fields that are set.
        let Some(m) = self.members.get_mut(&id) else {
            return HeartbeatOutcome::error(E::UnknownMemberId, "member vanished");
        };
        m.last_heartbeat_ms = now_ms;
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        if p.rebalance_timeout_ms > 0 {
            m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        }
        if p.rack_id.is_some() {
            m.rack_id = p.rack_id.clone();
        }
        if let Some(names) = &p.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            if names != m.subscribed_topic_names {
                m.subscribed_topic_names = names;
                changed = true;
            }
        }
        if let Some(re) = &p.subscribed_topic_regex {
            let re = Some(re.clone()).filter(|r| !r.is_empty());
            if re != m.subscribed_topic_regex {
                m.subscribed_topic_regex = re;
                changed = true;
            }
        }
        if let Some(a) = &p.server_assignor {
            let a = Some(a.clone()).filter(|a| !a.is_empty());
            if a != m.server_assignor {
                m.server_assignor = a;
                changed = true;
            }
        }
        let before = m.assigned.clone();

        // New metadata (a topic created, grown or matching a regex) counts
        // as a subscription change.
        if changed {
            self.changes.members.insert(id.clone());
        }
        if self.refresh_subscribed(image) {
            changed = true;
        }
        if changed {
            self.bump_and_assign(image, cfg);
        } else if self.group_epoch > self.assignment_epoch {
            self.compute_target(image, cfg);
        }
        self.reconcile(&id, p.owned.as_ref(), now_ms);

        let Some(m) = self.members.get(&id) else {
            return HeartbeatOutcome::error(E::UnknownMemberId, "member vanished");
        };
        let full = p.rebalance_timeout_ms != -1
            && (p.subscribed_topic_names.is_some() || p.subscribed_topic_regex.is_some())
            && p.owned.is_some();
        let send = p.member_epoch == 0 || full || m.assigned != before;
        HeartbeatOutcome {
            error: None,
            error_message: None,
            member_id: id,
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            assignment: send.then(|| m.assigned.clone()),
        }
    }

    /// The member a heartbeat or leave (epoch != 0) comes from, as Kafka
    /// finds it: a static member by its instance id (unknown id:
    /// UNKNOWN_MEMBER_ID; held by another member id: FENCED_INSTANCE_ID, the
    /// sender was replaced), a dynamic one by its member id.
    fn identify(
        &self,
        id: &str,
        instance: Option<&str>,
    ) -> Result<&ConsumerMember, HeartbeatOutcome> {
        let Some(inst) = instance else {
            return self.members.get(id).ok_or_else(|| {
                HeartbeatOutcome::error(
                    ResponseError::UnknownMemberId,
                    format!("Member {id} is not a member of group {}.", self.id),
                )
            });
        };
        let holder = self
            .static_members
            .get(inst)
            .and_then(|h| self.members.get(h))
            .ok_or_else(|| {
                HeartbeatOutcome::error(
                    ResponseError::UnknownMemberId,
                    format!("Instance id {inst} is unknown."),
                )
            })?;
        if holder.member_id != id {
            return Err(HeartbeatOutcome::error(
                ResponseError::FencedInstanceId,
                format!(
                    "Static member {id} with instance id {inst} was fenced by member {}.",
                    holder.member_id
                ),
            ));
        }
        Ok(holder)
    }

    /// A heartbeat with epoch 0: a new member, a static member coming back
    /// under a new member id, or a member rejoining after being fenced.
    fn join(
        &mut self,
        p: &HeartbeatParams,
        cfg: &ConsumerConfig,
        now_ms: i64,
        changed: &mut bool,
    ) -> Result<(), HeartbeatOutcome> {
        let id = p.member_id.clone();
        if let Some(inst) = &p.instance_id {
            if let Some(old) = self.static_members.get(inst).cloned().filter(|o| *o != id) {
                let old_epoch = self.members.get(&old).map(|m| m.member_epoch);
                match old_epoch {
                    Some(LEAVE_GROUP_STATIC_MEMBER_EPOCH) => {
                        // KIP-848 static membership: the new incarnation
                        // takes over the old one's assignment and epoch.
                        if let Some(mut m) = self.members.remove(&old) {
                            m.member_id = id.clone();
                            m.member_epoch = m.previous_member_epoch.max(0);
                            for o in self.owners.values_mut() {
                                if *o == old {
                                    o.clone_from(&id);
                                }
                            }
                            if let Some(t) = self.target.remove(&old) {
                                self.target.insert(id.clone(), t);
                            }
                            self.members.insert(id.clone(), m);
                            self.static_members.insert(inst.clone(), id.clone());
                            self.changes.removed.insert(old.clone());
                            self.changes.members.remove(&old);
                            self.changes.members.insert(id.clone());
                        }
                        return Ok(());
                    }
                    Some(_) => {
                        return Err(HeartbeatOutcome::error(
                            ResponseError::UnreleasedInstanceId,
                            format!("Static member with instance id {inst} is still in use."),
                        ))
                    }
                    None => {}
                }
            }
        }
        if let Some(m) = self.members.get_mut(&id) {
            // A fenced or restarted member rejoins with its id: it owns
            // nothing now, so its partitions are free (and come back to it
            // at once if its target still holds them).
            m.assigned.clear();
            m.pending_revocation.clear();
            m.revoking_since_ms = None;
            m.state = MemberState::Stable;
            m.previous_member_epoch = m.member_epoch.max(0);
            m.member_epoch = 0;
            self.owners.retain(|_, o| *o != id);
            self.changes.members.insert(id);
            return Ok(());
        }
        if self.members.len() >= cfg.max_size {
            return Err(HeartbeatOutcome::error(
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    cfg.max_size
                ),
            ));
        }
        let mut m = ConsumerMember::new(id.clone(), now_ms);
        m.instance_id = p.instance_id.clone();
        if let Some(inst) = &p.instance_id {
            self.static_members.insert(inst.clone(), id.clone());
        }
        self.changes.removed.remove(&id);
        self.changes.members.insert(id.clone());
        self.members.insert(id, m);
        *changed = true;
        Ok(())
    }

    fn leave(
        &mut self,
        p: &HeartbeatParams,
        image: &MetadataImage,
        cfg: &ConsumerConfig,
        now_ms: i64,
    ) -> HeartbeatOutcome {
        let id = p.member_id.clone();
        if let Err(o) = self.identify(&id, p.instance_id.as_deref()) {
            return o;
        }
        let Some(m) = self.members.get_mut(&id) else {
            return HeartbeatOutcome::error(ResponseError::UnknownMemberId, "member vanished");
        };
        let out = HeartbeatOutcome {
            error: None,
            error_message: None,
            member_id: id.clone(),
            member_epoch: p.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        if p.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH && m.instance_id.is_some() {
            // Leaves temporarily: keeps its partitions until it returns or
            // its session expires.
            m.previous_member_epoch = m.member_epoch.max(0);
            m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            m.last_heartbeat_ms = now_ms;
            self.changes.members.insert(id);
            return out;
        }
        self.remove_member(&id, image, cfg, now_ms);
        out
    }

    /// Moves a member towards its target (Kafka's CurrentAssignmentBuilder).
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now_ms: i64) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        match m.state {
            MemberState::UnrevokedPartitions => {
                let acked = owned.is_some_and(|o| {
                    !assignor::partitions(&m.pending_revocation)
                        .any(|(t, p)| assignor::contains(o, &t, p))
                });
                if acked {
                    let released: Vec<(Uuid, i32)> =
                        assignor::partitions(&m.pending_revocation).collect();
                    m.pending_revocation.clear();
                    m.revoking_since_ms = None;
                    for k in released {
                        if self.owners.get(&k).map(String::as_str) == Some(id) {
                            self.owners.remove(&k);
                        }
                    }
                    self.compute_next(id, &target, epoch, now_ms);
                } else {
                    // The target may have moved on while it revokes: give
                    // up more if needed, never take anything new yet.
                    let drop: Vec<(Uuid, i32)> = assignor::partitions(&m.assigned)
                        .filter(|(t, p)| !assignor::contains(&target, t, *p))
                        .collect();
                    if !drop.is_empty() {
                        self.changes.members.insert(id.to_string());
                    }
                    for (t, p) in drop {
                        assignor::remove(&mut m.assigned, &t, p);
                        assignor::insert(&mut m.pending_revocation, t, p);
                    }
                }
            }
            MemberState::Stable | MemberState::UnreleasedPartitions => {
                if m.member_epoch != epoch || m.state == MemberState::UnreleasedPartitions {
                    self.compute_next(id, &target, epoch, now_ms);
                }
            }
        }
    }

    fn compute_next(&mut self, id: &str, target: &Assignment, epoch: i32, now_ms: i64) {
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        for (t, p) in assignor::partitions(&m.assigned) {
            if assignor::contains(target, &t, p) {
                assignor::insert(&mut keep, t, p);
            } else {
                assignor::insert(&mut revoke, t, p);
            }
        }
        if !revoke.is_empty() {
            // Revocation first: the member keeps its epoch and gets only
            // what it may keep; new partitions wait for its confirmation.
            m.assigned = keep;
            for (t, p) in assignor::partitions(&revoke) {
                assignor::insert(&mut m.pending_revocation, t, p);
            }
            m.state = MemberState::UnrevokedPartitions;
            m.revoking_since_ms.get_or_insert(now_ms);
            self.changes.members.insert(id.to_string());
            return;
        }
        let mut unreleased = false;
        for (t, p) in assignor::partitions(target) {
            if assignor::contains(&m.assigned, &t, p) {
                continue;
            }
            match self.owners.get(&(t, p)) {
                Some(o) if o != id => unreleased = true,
                _ => {
                    assignor::insert(&mut m.assigned, t, p);
                    self.owners.insert((t, p), id.to_string());
                }
            }
        }
        if m.member_epoch != epoch {
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = epoch;
        }
        m.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        self.changes.members.insert(id.to_string());
    }

    /// Timers: members whose session expired, and members that did not
    /// confirm a revocation within their rebalance timeout, are fenced.
    /// True when the group changed.
    pub fn tick(&mut self, image: &MetadataImage, cfg: &ConsumerConfig, now_ms: i64) -> bool {
        let session = i64::from(cfg.session_timeout_ms);
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.last_heartbeat_ms.saturating_add(session) <= now_ms
                    || m.revoking_since_ms.is_some_and(|s| {
                        s.saturating_add(i64::from(m.rebalance_timeout_ms.max(0))) <= now_ms
                    })
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &gone {
            tracing::info!(group = %self.id, member = %id, "consumer group member fenced (session or rebalance timeout)");
            self.remove_member(id, image, cfg, now_ms);
        }
        !gone.is_empty()
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit` (KIP-848): a commit
    /// with a negative epoch is accepted while the group has no members,
    /// whatever member id it carries (librdkafka sends its own member id
    /// with manually assigned partitions); a transactional commit without
    /// any identity is accepted too; otherwise the member must exist
    /// (UNKNOWN_MEMBER_ID), use OffsetCommit v9+ (UNSUPPORTED_VERSION) and
    /// carry its current epoch (STALE_MEMBER_EPOCH; the transactional path
    /// turns that into ILLEGAL_GENERATION).
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        member_epoch: i32,
        transactional: bool,
        api_version: i16,
    ) -> Result<(), ResponseError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        if transactional && member_epoch == -1 && member_id.is_empty() && instance.is_none() {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if !transactional && api_version < 9 {
            return Err(ResponseError::UnsupportedVersion);
        }
        if member_epoch != m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// OffsetFetch v9+ by a member: the same identity checks.
    pub fn validate_fetch(&self, member_id: &str, member_epoch: i32) -> Result<(), ResponseError> {
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if member_epoch != m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// The topic names members subscribe to (OffsetDelete refuses them).
    pub fn subscribed_topic_names(&self) -> BTreeSet<String> {
        self.subscribed.keys().cloned().collect()
    }

    /// Restores a member from the records at load time (its partitions are
    /// owned again, so nothing is handed out twice after a restart).
    pub fn restore_member(&mut self, m: ConsumerMember) {
        let id = m.member_id.clone();
        if self.members.contains_key(&id) {
            self.owners.retain(|_, o| *o != id);
        }
        if let Some(inst) = &m.instance_id {
            self.static_members.insert(inst.clone(), id.clone());
        }
        if let Some(re) = m.subscribed_topic_regex.clone() {
            let _ = self.regex(&re);
        }
        for k in
            assignor::partitions(&m.assigned).chain(assignor::partitions(&m.pending_revocation))
        {
            self.owners.insert(k, id.clone());
        }
        self.members.insert(id, m);
    }

    /// Drops a member at load time (a tombstone).
    pub fn forget_member(&mut self, id: &str) {
        self.drop_member(id);
    }

    /// After load, as Kafka's coordinator does when it loads a group:
    /// sessions (and rebalance timeouts of members revoking) restart now,
    /// and no epoch changes, so members keep committing with the epoch they
    /// have. The subscribed topics are the ones last written (`subscribed`);
    /// the first heartbeat compares them with the metadata and bumps the
    /// epoch only if they differ. A log without that record (written
    /// before oxka stored it) takes the current metadata as the last seen.
    pub fn after_load(
        &mut self,
        subscribed: Option<BTreeMap<String, (Uuid, i32)>>,
        image: &MetadataImage,
        now_ms: i64,
    ) {
        for m in self.members.values_mut() {
            m.last_heartbeat_ms = now_ms;
        }
        match subscribed {
            Some(s) => self.subscribed = s,
            None => {
                self.refresh_subscribed(image);
            }
        }
    }
}

/// A record of `__consumer_offsets`: key and value (`None`: tombstone).
pub type Record = (Vec<u8>, Option<Vec<u8>>);

impl ConsumerGroup {
    /// The records for what changed since the last call, in Kafka's
    /// schemas (member metadata and current assignment per changed member,
    /// the target assignment when recomputed, the group epoch, tombstones
    /// for members gone).
    pub fn take_records(&mut self) -> Vec<Record> {
        let ch = std::mem::take(&mut self.changes);
        let group = &self.id;
        let mut out = Vec::new();
        for id in &ch.removed {
            for key in [
                CoordinatorKey::ConsumerGroupCurrentMemberAssignment {
                    group: group.clone(),
                    member: id.clone(),
                },
                CoordinatorKey::ConsumerGroupTargetAssignmentMember {
                    group: group.clone(),
                    member: id.clone(),
                },
                CoordinatorKey::ConsumerGroupMemberMetadata {
                    group: group.clone(),
                    member: id.clone(),
                },
            ] {
                out.push((key.encode(), None));
            }
        }
        for id in &ch.members {
            let Some(m) = self.members.get(id) else {
                continue;
            };
            out.push((
                CoordinatorKey::ConsumerGroupMemberMetadata {
                    group: group.clone(),
                    member: id.clone(),
                }
                .encode(),
                Some(
                    ConsumerValue::Member(ConsumerMemberMetadataValue {
                        instance_id: m.instance_id.clone(),
                        rack_id: m.rack_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        subscribed_topic_names: m.subscribed_topic_names.clone(),
                        subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        server_assignor: m.server_assignor.clone(),
                    })
                    .encode(),
                ),
            ));
            out.push((
                CoordinatorKey::ConsumerGroupCurrentMemberAssignment {
                    group: group.clone(),
                    member: id.clone(),
                }
                .encode(),
                Some(
                    ConsumerValue::CurrentAssignment(CurrentMemberAssignmentValue {
                        member_epoch: m.member_epoch,
                        previous_member_epoch: m.previous_member_epoch,
                        state: m.state.value(),
                        assigned: m.assigned.clone(),
                        pending_revocation: m.pending_revocation.clone(),
                    })
                    .encode(),
                ),
            ));
        }
        if ch.target {
            for (id, a) in &self.target {
                out.push((
                    CoordinatorKey::ConsumerGroupTargetAssignmentMember {
                        group: group.clone(),
                        member: id.clone(),
                    }
                    .encode(),
                    Some(ConsumerValue::TargetAssignmentMember(a.clone()).encode()),
                ));
            }
            out.push((
                CoordinatorKey::ConsumerGroupTargetAssignmentMetadata {
                    group: group.clone(),
                }
                .encode(),
                Some(
                    ConsumerValue::TargetAssignmentMetadata {
                        assignment_epoch: self.assignment_epoch,
                    }
                    .encode(),
                ),
            ));
        }
        if ch.subscribed {
            out.push((
                CoordinatorKey::ConsumerGroupPartitionMetadata {
                    group: group.clone(),
                }
                .encode(),
                Some(ConsumerValue::PartitionMetadata(self.subscribed.clone()).encode()),
            ));
        }
        if ch.epoch {
            out.push((
                CoordinatorKey::ConsumerGroupMetadata {
                    group: group.clone(),
                }
                .encode(),
                Some(
                    ConsumerValue::GroupMetadata {
                        epoch: self.group_epoch,
                    }
                    .encode(),
                ),
            ));
        }
        out
    }

    /// Tombstones for the whole group (deletion, expiry, or conversion to
    /// a classic group).
    pub fn tombstones(&self) -> Vec<Record> {
        let group = &self.id;
        let mut out: Vec<Record> = Vec::new();
        for id in self.members.keys().chain(self.target.keys()) {
            for key in [
                CoordinatorKey::ConsumerGroupCurrentMemberAssignment {
                    group: group.clone(),
                    member: id.clone(),
                },
                CoordinatorKey::ConsumerGroupTargetAssignmentMember {
                    group: group.clone(),
                    member: id.clone(),
                },
                CoordinatorKey::ConsumerGroupMemberMetadata {
                    group: group.clone(),
                    member: id.clone(),
                },
            ] {
                out.push((key.encode(), None));
            }
        }
        out.push((
            CoordinatorKey::ConsumerGroupTargetAssignmentMetadata {
                group: group.clone(),
            }
            .encode(),
            None,
        ));
        out.push((
            CoordinatorKey::ConsumerGroupPartitionMetadata {
                group: group.clone(),
            }
            .encode(),
            None,
        ));
        out.push((
            CoordinatorKey::ConsumerGroupMetadata {
                group: group.clone(),
            }
            .encode(),
            None,
        ));
        out
    }

    /// Rebuilds a group from its replayed records (last value per key);
    /// the caller then runs [`ConsumerGroup::after_load`].
    pub fn from_records(
        id: &str,
        epoch: i32,
        assignment_epoch: i32,
        members: BTreeMap<
            String,
            (
                ConsumerMemberMetadataValue,
                Option<CurrentMemberAssignmentValue>,
            ),
        >,
        target: BTreeMap<String, Assignment>,
        now_ms: i64,
    ) -> ConsumerGroup {
        let mut g = ConsumerGroup::new(id, now_ms);
        g.group_epoch = epoch;
        g.assignment_epoch = assignment_epoch.min(epoch);
        for (mid, (md, cur)) in members {
            let mut m = ConsumerMember::new(mid.clone(), now_ms);
            m.instance_id = md.instance_id;
            m.rack_id = md.rack_id;
            m.client_id = md.client_id;
            m.client_host = md.client_host;
            m.subscribed_topic_names = md.subscribed_topic_names;
            m.subscribed_topic_regex = md.subscribed_topic_regex;
            m.rebalance_timeout_ms = md.rebalance_timeout_ms;
            m.server_assignor = md.server_assignor;
            if let Some(c) = cur {
                m.member_epoch = c.member_epoch;
                m.previous_member_epoch = c.previous_member_epoch;
                m.state = MemberState::from_value(c.state);
                if m.state == MemberState::UnrevokedPartitions {
                    m.revoking_since_ms = Some(now_ms);
                }
                m.assigned = c.assigned;
                m.pending_revocation = c.pending_revocation;
            }
            g.restore_member(m);
        }
        g.target = target
            .into_iter()
            .filter(|(m, _)| g.members.contains_key(m))
            .collect();
        g.changes = Changes::default();
        g
    }
}

/// Kafka's member epoch check: a newer epoch than ours is fenced; an older
/// one is accepted only if it is the previous epoch and the member reports
/// owning nothing beyond its current assignment (it missed one response).
fn check_epoch(
    m: &ConsumerMember,
    received: i32,
    owned: Option<&Assignment>,
) -> Result<(), ResponseError> {
    if received == m.member_epoch {
        return Ok(());
    }
    if received > m.member_epoch {
        return Err(ResponseError::FencedMemberEpoch);
    }
    let subset = owned.is_some_and(|o| {
        assignor::partitions(o).all(|(t, p)| assignor::contains(&m.assigned, &t, p))
    });
    if received == m.previous_member_epoch && subset {
        Ok(())
    } else {
        Err(ResponseError::FencedMemberEpoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxka_controller::image::{PartitionInfo, TopicInfo};

    fn image(topics: &[(&str, u8, usize)]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for (name, id, n) in topics {
            img.upsert(TopicInfo {
                name: name.to_string(),
                id: Uuid::from_bytes([*id; 16]),
                partitions: vec![
                    PartitionInfo {
                        replicas: vec![1],
                        isr: vec![1],
                        leader: 1,
                        leader_epoch: 0,
                        partition_epoch: 0,
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new(),
                    };
                    *n
                ],
                configs: BTreeMap::new(),
            });
        }
        img
    }

    fn join(id: &str, topics: &[&str]) -> HeartbeatParams {
        HeartbeatParams {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
            owned: Some(Assignment::new()),
            ..Default::default()
        }
    }

    fn hb(id: &str, epoch: i32, owned: &Assignment) -> HeartbeatParams {
        HeartbeatParams {
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            ..Default::default()
        }
    }

    /// A client that does what librdkafka does with each answer: adopt the
    /// assignment (revoking what is gone) and report what it owns.
    struct Client {
        id: String,
        epoch: i32,
        owned: Assignment,
    }

    impl Client {
        fn apply(&mut self, o: &HeartbeatOutcome) {
            assert_eq!(o.error, None, "{o:?}");
            self.epoch = o.member_epoch;
            if let Some(a) = &o.assignment {
                self.owned = a.clone();
            }
        }
    }

    /// No partition is owned by two members, and a member's owned set (from
    /// the coordinator's view) never overlaps another's.
    fn check_exclusive(g: &ConsumerGroup, clients: &[&Client]) {
        let mut seen: HashMap<(Uuid, i32), &str> = HashMap::new();
        for m in g.members.values() {
            for k in
                assignor::partitions(&m.assigned).chain(assignor::partitions(&m.pending_revocation))
            {
                if let Some(o) = seen.insert(k, &m.member_id) {
                    panic!("{k:?} owned by {o} and {}", m.member_id);
                }
                assert_eq!(g.owner(&k.0, k.1), Some(m.member_id.as_str()));
            }
        }
        let mut client_seen: HashMap<(Uuid, i32), &str> = HashMap::new();
        for c in clients {
            for k in assignor::partitions(&c.owned) {
                if let Some(o) = client_seen.insert(k, &c.id) {
                    panic!("clients {o} and {} both consume {k:?}", c.id);
                }
            }
        }
    }

    #[test]
    fn revocation_before_reassignment() {
        let img = image(&[("t", 1, 6)]);
        let cfg = ConsumerConfig::default();
        let mut g = ConsumerGroup::new("g", 0);
        let mut a = Client {
            id: "a".into(),
            epoch: 0,
            owned: Assignment::new(),
        };
        let o = g.heartbeat(join("a", &["t"]), &img, &cfg, 0);
        a.apply(&o);
        assert_eq!(a.epoch, 1);
        assert_eq!(assignor::count(&a.owned), 6);
        assert_eq!(g.state(), ConsumerGroupState::Stable);

        // b joins: the group epoch moves to 2; b gets nothing until a revokes
        let mut b = Client {
            id: "b".into(),
            epoch: 0,
            owned: Assignment::new(),
        };
        let o = g.heartbeat(join("b", &["t"]), &img, &cfg, 10);
        b.apply(&o);
        assert_eq!(b.epoch, 2);
        assert_eq!(assignor::count(&b.owned), 0, "a still owns everything");
        assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
        check_exclusive(&g, &[&a, &b]);

        // a's heartbeat: told to keep 3, epoch unchanged (must revoke first)
        let o = g.heartbeat(hb("a", a.epoch, &a.owned), &img, &cfg, 20);
        a.apply(&o);
        assert_eq!(a.epoch, 1);
        assert_eq!(assignor::count(&a.owned), 3);
        assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
        // b still gets nothing: a has not confirmed
        let o = g.heartbeat(hb("b", b.epoch, &b.owned), &img, &cfg, 25);
        b.apply(&o);
        assert_eq!(assignor::count(&b.owned), 0);
        check_exclusive(&g, &[&a, &b]);

        // a confirms (heartbeats owning only 3): it reaches epoch 2
        let o = g.heartbeat(hb("a", a.epoch, &a.owned), &img, &cfg, 30);
        a.apply(&o);
        assert_eq!(a.epoch, 2);
        let o = g.heartbeat(hb("b", b.epoch, &b.owned), &img, &cfg, 35);
        b.apply(&o);
        assert_eq!(assignor::count(&b.owned), 3);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        check_exclusive(&g, &[&a, &b]);

        // a leaves: b takes everything at epoch 3
        let o = g.heartbeat(hb("a", LEAVE_GROUP_MEMBER_EPOCH, &a.owned), &img, &cfg, 40);
        assert_eq!(o.member_epoch, -1);
        a.owned.clear();
        let o = g.heartbeat(hb("b", b.epoch, &b.owned), &img, &cfg, 45);
        b.apply(&o);
        assert_eq!((b.epoch, assignor::count(&b.owned)), (3, 6));
    }

    #[test]
    fn random_churn_never_double_assigns() {
        // A deterministic pseudo-random schedule of joins, heartbeats
        // (clients adopt answers faithfully) and leaves.
        let img = image(&[("t", 1, 12), ("u", 2, 5)]);
        let cfg = ConsumerConfig::default();
        let mut g = ConsumerGroup::new("g", 0);
        let mut clients: Vec<Client> = Vec::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut n = 0;
        for step in 0..2000i64 {
            let r = next() % 10;
            if (r == 0 && clients.len() < 6) || clients.is_empty() {
                n += 1;
                let id = format!("m{n}");
                let mut c = Client {
                    id: id.clone(),
                    epoch: 0,
                    owned: Assignment::new(),
                };
                let o = g.heartbeat(join(&id, &["t", "u"]), &img, &cfg, step);
                c.apply(&o);
                clients.push(c);
            } else if r == 1 && clients.len() > 1 {
                let i = (next() % clients.len() as u64) as usize;
                let c = clients.remove(i);
                let o = g.heartbeat(hb(&c.id, -1, &c.owned), &img, &cfg, step);
                assert_eq!(o.error, None);
            } else {
                let i = (next() % clients.len() as u64) as usize;
                let c = &mut clients[i];
                let o = g.heartbeat(hb(&c.id, c.epoch, &c.owned), &img, &cfg, step);
                c.apply(&o);
            }
            let refs: Vec<&Client> = clients.iter().collect();
            check_exclusive(&g, &refs);
        }
        // settle: everyone heartbeats a few rounds; full coverage follows
        for round in 0..6 {
            for c in clients.iter_mut() {
                let o = g.heartbeat(hb(&c.id, c.epoch, &c.owned), &img, &cfg, 3000 + round);
                c.apply(&o);
            }
        }
        let total: usize = clients.iter().map(|c| assignor::count(&c.owned)).sum();
        assert_eq!(total, 17);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
    }

    #[test]
    fn fencing_session_timeout_and_epochs() {
        let img = image(&[("t", 1, 2)]);
        let cfg = ConsumerConfig::default();
        let mut g = ConsumerGroup::new("g", 0);
        let o = g.heartbeat(join("a", &["t"]), &img, &cfg, 0);
        assert_eq!(o.member_epoch, 1);
        let owned = o.assignment.clone().unwrap();
        // a newer epoch than the coordinator's is fenced
        let o = g.heartbeat(hb("a", 5, &owned), &img, &cfg, 1);
        assert_eq!(o.error, Some(ResponseError::FencedMemberEpoch));
        // unknown member
        let o = g.heartbeat(hb("zz", 1, &owned), &img, &cfg, 1);
        assert_eq!(o.error, Some(ResponseError::UnknownMemberId));
        // commits check the member, the API version, then the epoch
        // (Kafka's ConsumerGroup.validateOffsetCommit)
        let commit =
            |g: &ConsumerGroup, id: &str, epoch: i32| g.validate_commit(id, None, epoch, false, 9);
        assert_eq!(commit(&g, "a", 1), Ok(()));
        assert_eq!(commit(&g, "a", 0), Err(ResponseError::StaleMemberEpoch));
        assert_eq!(commit(&g, "", -1), Err(ResponseError::UnknownMemberId));
        assert_eq!(commit(&g, "a", -1), Err(ResponseError::StaleMemberEpoch));
        assert_eq!(commit(&g, "zz", 1), Err(ResponseError::UnknownMemberId));
        assert_eq!(
            g.validate_commit("a", None, 1, false, 8),
            Err(ResponseError::UnsupportedVersion)
        );
        // transactional: no identity at all is accepted; the version is not checked
        assert_eq!(g.validate_commit("", None, -1, true, 3), Ok(()));
        assert_eq!(g.validate_commit("a", None, 1, true, 3), Ok(()));
        // silence beyond the session timeout: fenced, then UNKNOWN_MEMBER_ID
        assert!(g.tick(&img, &cfg, 1 + i64::from(cfg.session_timeout_ms)));
        assert!(g.is_empty());
        let o = g.heartbeat(hb("a", 1, &owned), &img, &cfg, 50_000);
        assert_eq!(o.error, Some(ResponseError::UnknownMemberId));
        // no members: an epoch -1 commit is accepted whatever member id it
        // carries (librdkafka's own id with manually assigned partitions)
        assert_eq!(commit(&g, "", -1), Ok(()));
        assert_eq!(commit(&g, "a", -1), Ok(()));
        assert_eq!(commit(&g, "librdkafka-generated", -1), Ok(()));
        assert_eq!(commit(&g, "a", 1), Err(ResponseError::UnknownMemberId));
    }

    #[test]
    fn static_member_leaves_temporarily_and_comes_back() {
        let img = image(&[("t", 1, 4)]);
        let cfg = ConsumerConfig::default();
        let mut g = ConsumerGroup::new("g", 0);
        let mut p = join("a1", &["t"]);
        p.instance_id = Some("i".into());
        let o = g.heartbeat(p.clone(), &img, &cfg, 0);
        let owned = o.assignment.clone().unwrap();
        let epoch = g.group_epoch;
        let o = g.heartbeat(hb("a1", -2, &owned), &img, &cfg, 10);
        assert_eq!(o.member_epoch, -2);
        assert_eq!(g.group_epoch, epoch, "no rebalance");
        // another process with the same instance id while it is in use
        let mut busy = join("a3", &["t"]);
        busy.instance_id = Some("i".into());
        // the restarted process takes over
        p.member_id = "a2".into();
        let o = g.heartbeat(p, &img, &cfg, 20);
        assert_eq!(o.error, None);
        assert_eq!(o.assignment.as_ref().map(assignor::count), Some(4));
        assert_eq!(g.group_epoch, epoch, "no rebalance");
        assert!(!g.members.contains_key("a1"));
        let o = g.heartbeat(busy, &img, &cfg, 30);
        assert_eq!(o.error, Some(ResponseError::UnreleasedInstanceId));
        // the replaced incarnation is fenced by instance id (Kafka's
        // throwIfInstanceIdIsFenced), on heartbeats and on leaving
        let mut old = hb("a1", epoch, &owned);
        old.instance_id = Some("i".into());
        let o = g.heartbeat(old.clone(), &img, &cfg, 40);
        assert_eq!(o.error, Some(ResponseError::FencedInstanceId));
        old.member_epoch = -1;
        let o = g.heartbeat(old, &img, &cfg, 40);
        assert_eq!(o.error, Some(ResponseError::FencedInstanceId));
        assert!(g.members.contains_key("a2"), "the holder stays");
        let mut unknown = hb("a2", epoch, &owned);
        unknown.instance_id = Some("j".into());
        let o = g.heartbeat(unknown, &img, &cfg, 40);
        assert_eq!(o.error, Some(ResponseError::UnknownMemberId));
    }

    #[test]
    fn regex_subscription_picks_up_new_topics() {
        let mut img = image(&[("orders-1", 1, 2), ("other", 2, 2)]);
        let cfg = ConsumerConfig::default();
        let mut g = ConsumerGroup::new("g", 0);
        let p = HeartbeatParams {
            member_id: "a".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_regex: Some("orders-.*".into()),
            owned: Some(Assignment::new()),
            ..Default::default()
        };
        let o = g.heartbeat(p.clone(), &img, &cfg, 0);
        let owned = o.assignment.clone().unwrap();
        assert_eq!(assignor::count(&owned), 2);
        img = image(&[("orders-1", 1, 2), ("other", 2, 2), ("orders-2", 3, 3)]);
        let o = g.heartbeat(hb("a", o.member_epoch, &owned), &img, &cfg, 10);
        assert_eq!(o.assignment.as_ref().map(assignor::count), Some(5));
        let mut bad = p;
        bad.member_id = "b".into();
        bad.subscribed_topic_regex = Some("(".into());
        assert_eq!(
            g.heartbeat(bad, &img, &cfg, 20).error,
            Some(ResponseError::InvalidRegularExpression)
        );
    }
}
