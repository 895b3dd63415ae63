//! One classic group: members, generations and Kafka's state machine
//! (Empty → PreparingRebalance → CompletingRebalance → Stable, Dead when
//! deleted). Pure logic over a clock passed in, so it is unit-testable; the
//! coordinator adds locking, persistence and timers.
//!
//! Responses that must wait (JoinGroup until the rebalance completes,
//! SyncGroup until the leader's assignment arrives) are oneshot channels held
//! by the member: at most one of each per member, so waiting is bounded by
//! the group size.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::offsets::OffsetAndMetadata;
use super::records::{GroupMetadataValue, MemberMetadataValue};

/// Limits and timings of the group coordinator (Kafka's `group.*` configs).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: usize,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i64,
    /// How long a write to `__consumer_offsets` may wait for its
    /// replication before the request fails (`offsets.commit.timeout.ms`).
    pub offsets_commit_timeout_ms: i64,
    /// The KIP-848 consumer protocol (`group.consumer.*`).
    pub consumer: super::consumer::ConsumerConfig,
}

impl Default for GroupConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: i32::MAX as usize,
            offsets_retention_ms: 10080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
            offsets_commit_timeout_ms: 5000,
            consumer: super::consumer::ConsumerConfig::default(),
        }
    }
}

/// Member ids handed out with MEMBER_ID_REQUIRED and not yet used, per
/// group: bounds what clients that never come back can make us hold
/// (each also expires after its session timeout).
const MAX_PENDING_MEMBERS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka reports in ListGroups / DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One member of a JoinGroup response's member list (the leader's only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// What a JoinGroup answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOutcome {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinMember>,
}

impl JoinOutcome {
    pub fn error(error: ResponseError, member_id: impl Into<String>) -> Self {
        JoinOutcome {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// What a SyncGroup answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(error: ResponseError) -> Self {
        SyncOutcome {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Either an answer now or a channel the answer arrives on.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// KIP-394 (JoinGroup v4+): a new dynamic member first gets its id.
    pub require_known_member_id: bool,
}

pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Join order: the first member to join leads.
    seq: u64,
    awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
    last_heartbeat_ms: i64,
}

impl Member {
    /// The member's metadata for `protocol`, empty if it does not support it.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: HashMap<String, Member>,
    /// group.instance.id → member id of static members.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pending_members: HashMap<String, i64>,
    pub offsets: HashMap<(String, i32), OffsetAndMetadata>,
    join_deadline_ms: Option<i64>,
    initial_delay_until_ms: Option<i64>,
    next_seq: u64,
    /// The group metadata record must be (re)written.
    pub metadata_dirty: bool,
    /// Set while the group is a KIP-848 consumer group (type "consumer"):
    /// the classic fields above then stay Empty, and only the offsets are
    /// shared. A group keeps its type until it is empty.
    pub consumer: Option<super::consumer::ConsumerGroup>,
    /// Rebalances completed (a join phase ending with members) while
    /// coordinated here: the broker's rebalance metric.
    pub completed_rebalances: u64,
}

impl Group {
    pub fn new(id: impl Into<String>, now_ms: i64) -> Group {
        Group {
            id: id.into(),
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            offsets: HashMap::new(),
            join_deadline_ms: None,
            initial_delay_until_ms: None,
            next_seq: 0,
            metadata_dirty: false,
            consumer: None,
            completed_rebalances: 0,
        }
    }

    fn transition(&mut self, to: GroupState, now_ms: i64) {
        tracing::debug!(
            group = %self.id,
            from = ?self.state,
            to = ?to,
            generation = self.generation_id,
            members = self.members.len(),
            pending = self.pending_members.len(),
            "group state"
        );
        self.state = to;
        self.state_timestamp_ms = now_ms;
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members in join order.
    pub fn members_in_order(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    /// Protocols every member supports, in the first member's preference.
    fn candidate_protocols(&self) -> Vec<String> {
        let ordered = self.members_in_order();
        let Some(first) = ordered.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                ordered
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect()
    }

    /// Kafka's vote: every member votes for its most preferred protocol
    /// among those all members support; the most votes wins (ties go to the
    /// earlier member's preference).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((p, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(p)) {
                *votes.entry(p.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for c in &candidates {
            let n = votes.get(c.as_str()).copied().unwrap_or(0);
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((c.as_str(), n));
            }
        }
        best.map(|(p, _)| p.to_string())
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates: HashSet<String> = self.candidate_protocols().into_iter().collect();
        protocols.iter().any(|(p, _)| candidates.contains(p))
    }

    fn new_member_id(client_id: &str) -> String {
        format!("{}-{}", client_id, uuid::Uuid::new_v4())
    }

    pub fn join(&mut self, p: JoinParams, cfg: &GroupConfig, now_ms: i64) -> Reply<JoinOutcome> {
        tracing::debug!(
            group = %self.id,
            member = %p.member_id,
            instance = ?p.group_instance_id,
            state = ?self.state,
            "JoinGroup"
        );
        let err = |e, id: &str| Reply::Now(JoinOutcome::error(e, id));
        if self.state == GroupState::Dead {
            return err(ResponseError::CoordinatorNotAvailable, &p.member_id);
        }
        if p.session_timeout_ms < cfg.min_session_timeout_ms
            || p.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return err(ResponseError::InvalidSessionTimeout, &p.member_id);
        }
        if !self.supports_protocols(&p.protocol_type, &p.protocols) {
            return err(ResponseError::InconsistentGroupProtocol, &p.member_id);
        }
        if p.member_id.is_empty() {
            if let Some(instance) = &p.group_instance_id {
                if let Some(old) = self.static_members.get(instance).cloned() {
                    if self.members.contains_key(&old) {
                        return self.replace_static_member(&old, p, cfg, now_ms);
                    }
                }
            }
            if self.members.len() >= cfg.max_size {
                return err(ResponseError::GroupMaxSizeReached, "");
            }
            let id = Self::new_member_id(&p.client_id);
            if p.group_instance_id.is_none() && p.require_known_member_id {
                if self.pending_members.len() >= MAX_PENDING_MEMBERS {
                    return err(ResponseError::GroupMaxSizeReached, "");
                }
                let expiry = now_ms.saturating_add(i64::from(p.session_timeout_ms));
                self.pending_members.insert(id.clone(), expiry);
                return err(ResponseError::MemberIdRequired, &id);
            }
            return self.add_member_and_rebalance(id, p, cfg, now_ms);
        }
        if self.pending_members.remove(&p.member_id).is_some() {
            if self.members.len() >= cfg.max_size {
                return err(ResponseError::GroupMaxSizeReached, &p.member_id);
            }
            let id = p.member_id.clone();
            return self.add_member_and_rebalance(id, p, cfg, now_ms);
        }
        if let Err(e) = self.check_member(&p.member_id, p.group_instance_id.as_deref()) {
            return err(e, &p.member_id);
        }
        let Some(member) = self.members.get(&p.member_id) else {
            return err(ResponseError::UnknownMemberId, &p.member_id);
        };
        let same_protocols = member.protocols == p.protocols;
        let is_leader = self.leader_id.as_deref() == Some(p.member_id.as_str());
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                err(ResponseError::UnknownMemberId, &p.member_id)
            }
            GroupState::PreparingRebalance => {
                let rx = self.update_member_awaiting_join(&p, now_ms);
                self.try_complete_join(now_ms);
                Reply::Later(rx)
            }
            GroupState::CompletingRebalance if same_protocols => {
                // a retried join of the current generation: answer it again
                Reply::Now(self.current_join_outcome(&p.member_id, is_leader))
            }
            GroupState::Stable if same_protocols && !is_leader => {
                Reply::Now(self.current_join_outcome(&p.member_id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let rx = self.update_member_awaiting_join(&p, now_ms);
                self.prepare_rebalance(cfg, now_ms);
                self.try_complete_join(now_ms);
                Reply::Later(rx)
            }
        }
    }

    fn current_join_outcome(&self, member_id: &str, with_members: bool) -> JoinOutcome {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinOutcome {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.join_members(&protocol)
            } else {
                Vec::new()
            },
        }
    }

    fn join_members(&self, protocol: &str) -> Vec<JoinMember> {
        self.members_in_order()
            .into_iter()
            .map(|m| JoinMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    fn update_member_awaiting_join(
        &mut self,
        p: &JoinParams,
        now_ms: i64,
    ) -> oneshot::Receiver<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(&p.member_id) {
            m.protocols = p.protocols.clone();
            m.rebalance_timeout_ms = p.rebalance_timeout_ms;
            m.session_timeout_ms = p.session_timeout_ms;
            m.client_id = p.client_id.clone();
            m.client_host = p.client_host.clone();
            m.last_heartbeat_ms = now_ms;
            if let Some(old) = m.awaiting_join.replace(tx) {
                let _ = old.send(JoinOutcome::error(
                    ResponseError::RebalanceInProgress,
                    &p.member_id,
                ));
            }
        }
        rx
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        p: JoinParams,
        cfg: &GroupConfig,
        now_ms: i64,
    ) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        if let Some(instance) = &p.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.next_seq += 1;
        self.members.insert(
            id.clone(),
            Member {
                member_id: id,
                group_instance_id: p.group_instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                rebalance_timeout_ms: p.rebalance_timeout_ms,
                session_timeout_ms: p.session_timeout_ms,
                protocol_type: p.protocol_type,
                protocols: p.protocols,
                assignment: Bytes::new(),
                seq: self.next_seq,
                awaiting_join: Some(tx),
                awaiting_sync: None,
                last_heartbeat_ms: now_ms,
            },
        );
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(cfg, now_ms);
        }
        self.try_complete_join(now_ms);
        Reply::Later(rx)
    }

    /// KIP-345: a static member restarted (same group.instance.id, new
    /// process). It takes over the old member's place and assignment; a
    /// Stable group with unchanged protocols does not rebalance.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        p: JoinParams,
        cfg: &GroupConfig,
        now_ms: i64,
    ) -> Reply<JoinOutcome> {
        let Some(mut m) = self.members.remove(old_id) else {
            return Reply::Now(JoinOutcome::error(ResponseError::UnknownMemberId, ""));
        };
        if let Some(tx) = m.awaiting_join.take() {
            let _ = tx.send(JoinOutcome::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(tx) = m.awaiting_sync.take() {
            let _ = tx.send(SyncOutcome::error(ResponseError::FencedInstanceId));
        }
        let new_id = Self::new_member_id(&p.client_id);
        let protocols_changed = m.protocols != p.protocols;
        m.member_id = new_id.clone();
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.session_timeout_ms = p.session_timeout_ms;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        m.protocols = p.protocols.clone();
        m.last_heartbeat_ms = now_ms;
        if let Some(instance) = &p.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        let old_leader = self.leader_id.clone();
        if old_leader.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), m);
        match self.state {
            GroupState::Stable if !protocols_changed => {
                self.metadata_dirty = true;
                // The old leader id is returned so the restarted member does
                // not run the assignor: it just syncs and gets its partitions.
                let mut out = self.current_join_outcome(&new_id, false);
                out.leader = old_leader.unwrap_or_default();
                Reply::Now(out)
            }
            GroupState::PreparingRebalance => {
                let rx = self.update_member_awaiting_join(
                    &JoinParams {
                        member_id: new_id,
                        ..p
                    },
                    now_ms,
                );
                self.try_complete_join(now_ms);
                Reply::Later(rx)
            }
            _ => {
                let rx = self.update_member_awaiting_join(
                    &JoinParams {
                        member_id: new_id,
                        ..p
                    },
                    now_ms,
                );
                self.prepare_rebalance(cfg, now_ms);
                self.try_complete_join(now_ms);
                Reply::Later(rx)
            }
        }
    }

    fn prepare_rebalance(&mut self, cfg: &GroupConfig, now_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms.max(0)))
            .max()
            .unwrap_or(0);
        if self.state == GroupState::Empty && cfg.initial_rebalance_delay_ms > 0 {
            let delay = i64::from(cfg.initial_rebalance_delay_ms).min(rebalance_timeout);
            self.initial_delay_until_ms = Some(now_ms.saturating_add(delay));
        }
        self.join_deadline_ms = Some(now_ms.saturating_add(rebalance_timeout));
        self.transition(GroupState::PreparingRebalance, now_ms);
    }

    fn try_complete_join(&mut self, now_ms: i64) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay_until_ms.is_some() {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some());
        if all_joined && self.pending_members.is_empty() {
            self.complete_join(now_ms);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the
    /// generation advances, the protocol is chosen and every member gets its
    /// JoinGroup answer (the leader with the members' metadata).
    fn complete_join(&mut self, now_ms: i64) {
        self.initial_delay_until_ms = None;
        self.join_deadline_ms = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.drop_member(&id);
        }
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty, now_ms);
            self.metadata_dirty = true;
            return;
        }
        self.completed_rebalances += 1;
        self.protocol_name = self.select_protocol();
        let leader_ok = self
            .leader_id
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l));
        if !leader_ok {
            self.leader_id = self.members_in_order().first().map(|m| m.member_id.clone());
        }
        self.transition(GroupState::CompletingRebalance, now_ms);
        let leader = self.leader_id.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let all = self.join_members(&protocol);
        for m in self.members.values_mut() {
            m.last_heartbeat_ms = now_ms;
            if let Some(tx) = m.awaiting_join.take() {
                let is_leader = m.member_id == leader;
                let _ = tx.send(JoinOutcome {
                    error: None,
                    generation_id: self.generation_id,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: m.member_id.clone(),
                    members: if is_leader { all.clone() } else { Vec::new() },
                });
            }
        }
    }

    /// Removes a member without reacting (the caller rebalances).
    fn drop_member(&mut self, id: &str) -> bool {
        let Some(mut m) = self.members.remove(id) else {
            return false;
        };
        if let Some(instance) = &m.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        if let Some(tx) = m.awaiting_join.take() {
            let _ = tx.send(JoinOutcome::error(ResponseError::UnknownMemberId, id));
        }
        if let Some(tx) = m.awaiting_sync.take() {
            let _ = tx.send(SyncOutcome::error(ResponseError::UnknownMemberId));
        }
        true
    }

    /// Removes a member (left or expired) and rebalances the rest.
    pub fn remove_member(&mut self, id: &str, cfg: &GroupConfig, now_ms: i64) {
        if !self.drop_member(id) {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(cfg, now_ms);
                self.try_complete_join(now_ms);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Kafka's `ClassicGroup.validateMember`: a request naming an instance
    /// id is judged by who holds that id (KIP-345): nobody is
    /// UNKNOWN_MEMBER_ID, another member id is FENCED_INSTANCE_ID (the
    /// member was replaced by a newer incarnation, which librdkafka and the
    /// Java client treat as fatal); then the member id must be known.
    fn check_member(&self, member_id: &str, instance: Option<&str>) -> Result<(), ResponseError> {
        if let Some(instance) = instance {
            match self.static_members.get(instance) {
                None => return Err(ResponseError::UnknownMemberId),
                Some(holder) if holder != member_id => {
                    tracing::info!(
                        group = %self.id,
                        member = %member_id,
                        instance,
                        by = %holder,
                        "static member fenced by a newer member with its instance id"
                    );
                    return Err(ResponseError::FencedInstanceId);
                }
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// Kafka's `ClassicGroup.validateOffsetCommit`, check for check: a
    /// commit without member identity (generation < 0) is accepted while
    /// the group is empty; any member identity is validated (member, then
    /// generation) before the state is looked at, so a stale generation is
    /// ILLEGAL_GENERATION in every state; a current member committing while
    /// the group completes a rebalance gets REBALANCE_IN_PROGRESS (not for
    /// transactional commits, whose older versions carry no identity).
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        transactional: bool,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance.is_some() {
            self.check_member(member_id, instance)?;
            if generation_id != self.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if !transactional && self.state != GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        if !transactional && self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
    ) -> Reply<SyncOutcome> {
        tracing::debug!(
            group = %self.id,
            member = %member_id,
            generation_id,
            state = ?self.state,
            "SyncGroup"
        );
        let err = |e| Reply::Now(SyncOutcome::error(e));
        if self.state == GroupState::Dead {
            return err(ResponseError::CoordinatorNotAvailable);
        }
        if let Err(e) = self.check_member(member_id, instance) {
            return err(e);
        }
        if generation_id != self.generation_id {
            return err(ResponseError::IllegalGeneration);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return err(ResponseError::InconsistentGroupProtocol);
        }
        let ok = |g: &Group, assignment: Bytes| SyncOutcome {
            error: None,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            assignment,
        };
        match self.state {
            GroupState::Empty | GroupState::Dead => err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => err(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let a = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat_ms = now_ms;
                }
                Reply::Now(ok(self, a))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat_ms = now_ms;
                    if let Some(old) = m.awaiting_sync.replace(tx) {
                        let _ = old.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                    }
                }
                if self.leader_id.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = by_member.remove(&m.member_id).unwrap_or_default();
                    }
                    self.transition(GroupState::Stable, now_ms);
                    self.metadata_dirty = true;
                    let (pt, pn) = (self.protocol_type.clone(), self.protocol_name.clone());
                    for m in self.members.values_mut() {
                        if let Some(tx) = m.awaiting_sync.take() {
                            let _ = tx.send(SyncOutcome {
                                error: None,
                                protocol_type: pt.clone(),
                                protocol_name: pn.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Option<ResponseError> {
        let e = self.heartbeat_error(member_id, instance, generation_id, now_ms);
        if e.is_some() {
            tracing::debug!(
                group = %self.id,
                member = %member_id,
                generation_id,
                error = ?e,
                "Heartbeat refused"
            );
        }
        e
    }

    fn heartbeat_error(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Option<ResponseError> {
        match self.state {
            GroupState::Dead => return Some(ResponseError::CoordinatorNotAvailable),
            GroupState::Empty => return Some(ResponseError::UnknownMemberId),
            _ => {}
        }
        if let Err(e) = self.check_member(member_id, instance) {
            return Some(e);
        }
        if generation_id != self.generation_id {
            return Some(ResponseError::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat_ms = now_ms;
        }
        if self.state == GroupState::PreparingRebalance {
            return Some(ResponseError::RebalanceInProgress);
        }
        None
    }

    /// One LeaveGroup member identity; an empty member id with an instance
    /// id leaves by instance (KIP-345 admin removal).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        cfg: &GroupConfig,
        now_ms: i64,
    ) -> (String, Option<ResponseError>) {
        tracing::debug!(group = %self.id, member = %member_id, instance = ?instance, "LeaveGroup");
        let id = match (member_id.is_empty(), instance) {
            (true, Some(inst)) => match self.static_members.get(inst) {
                Some(id) => id.clone(),
                None => return (String::new(), Some(ResponseError::UnknownMemberId)),
            },
            _ => member_id.to_string(),
        };
        if let Some(inst) = instance {
            match self.static_members.get(inst) {
                Some(owner) if *owner != id => return (id, Some(ResponseError::FencedInstanceId)),
                None if !self.pending_members.contains_key(&id) => {
                    return (id, Some(ResponseError::UnknownMemberId))
                }
                _ => {}
            }
        }
        if self.pending_members.remove(&id).is_some() {
            self.try_complete_join(now_ms);
            return (id, None);
        }
        if !self.members.contains_key(&id) {
            return (id, Some(ResponseError::UnknownMemberId));
        }
        self.remove_member(&id, cfg, now_ms);
        (id, None)
    }

    /// Timers: expired sessions and pending member ids, the end of the
    /// initial delay and of the rebalance timeout.
    pub fn tick(&mut self, cfg: &GroupConfig, now_ms: i64) {
        let before = self.pending_members.len();
        self.pending_members.retain(|_, expiry| *expiry > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.last_heartbeat_ms
                        .saturating_add(i64::from(m.session_timeout_ms))
                        <= now_ms
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(&id, cfg, now_ms);
        }
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(until) = self.initial_delay_until_ms {
            if now_ms >= until {
                self.complete_join(now_ms);
            }
        } else if self.join_deadline_ms.is_some_and(|d| now_ms >= d) {
            self.complete_join(now_ms);
        } else if before != self.pending_members.len() {
            self.try_complete_join(now_ms);
        }
    }

    /// The subscribed topics of every member (consumer protocol only).
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") || self.members.is_empty() {
            return None;
        }
        let protocol = self.protocol_name.clone()?;
        let mut out = HashSet::new();
        for m in self.members.values() {
            if let Some(t) = super::offsets::subscribed_topics(&m.metadata(&protocol)) {
                out.extend(t);
            }
        }
        Some(out)
    }

    pub fn to_metadata_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: self
                .members_in_order()
                .into_iter()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its last metadata record at load time: with
    /// members it is Stable (they keep heartbeating with their generation),
    /// without it is Empty.
    pub fn from_metadata_value(id: &str, v: GroupMetadataValue, now_ms: i64) -> Group {
        let mut g = Group::new(id, now_ms);
        g.protocol_type = Some(v.protocol_type).filter(|t| !t.is_empty());
        g.generation_id = v.generation;
        g.protocol_name = v.protocol.clone();
        g.leader_id = v.leader;
        if v.current_state_timestamp >= 0 {
            g.state_timestamp_ms = v.current_state_timestamp;
        }
        let protocol = v.protocol.unwrap_or_default();
        for m in v.members {
            g.next_seq += 1;
            if let Some(inst) = &m.group_instance_id {
                g.static_members.insert(inst.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    rebalance_timeout_ms: m.rebalance_timeout,
                    session_timeout_ms: m.session_timeout,
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    seq: g.next_seq,
                    awaiting_join: None,
                    awaiting_sync: None,
                    last_heartbeat_ms: now_ms,
                },
            );
        }
        if !g.members.is_empty() {
            g.state = GroupState::Stable;
        }
        g
    }

    /// Answers every waiting request (broker shutdown or group deletion).
    pub fn fail_waiters(&mut self, error: ResponseError) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(JoinOutcome::error(error, m.member_id.clone()));
            }
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(SyncOutcome::error(error));
            }
        }
    }
}

/// The wire code of an optional error (0: none).
pub fn code(e: Option<ResponseError>) -> i16 {
    e.map_or(0, |e| e.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        }
    }

    fn params(member_id: &str, protocols: &[&str]) -> JoinParams {
        JoinParams {
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(p.to_string())))
                .collect(),
            require_known_member_id: true,
        }
    }

    fn now<T: std::fmt::Debug>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Later(_) => panic!("expected an immediate answer"),
        }
    }

    /// The answer, whether immediate or already sent on the channel.
    fn done<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Later(mut rx) => rx.try_recv().expect("answered"),
        }
    }

    fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
        match r {
            Reply::Later(rx) => rx,
            Reply::Now(_) => panic!("expected a deferred answer"),
        }
    }

    /// Joins a new dynamic member through the KIP-394 round trip.
    fn join_new(
        g: &mut Group,
        c: &GroupConfig,
        t: i64,
    ) -> (String, oneshot::Receiver<JoinOutcome>) {
        let first = now(g.join(params("", &["range"]), c, t));
        assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
        let id = first.member_id.clone();
        assert!(id.starts_with("client-"));
        (id.clone(), later(g.join(params(&id, &["range"]), c, t)))
    }

    #[test]
    fn single_member_join_sync_heartbeat() {
        let c = cfg();
        let mut g = Group::new("g", 0);
        let (id, mut rx) = join_new(&mut g, &c, 0);
        let j = rx.try_recv().expect("join completes at once without delay");
        assert_eq!(j.error, None);
        assert_eq!(j.generation_id, 1);
        assert_eq!(j.leader, id);
        assert_eq!(j.members.len(), 1);
        assert_eq!(j.protocol_name.as_deref(), Some("range"));
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert_eq!(g.heartbeat(&id, None, 1, 1), None);
        let mut srx = later(g.sync(
            &id,
            None,
            1,
            None,
            None,
            vec![(id.clone(), Bytes::from_static(b"A"))],
            1,
        ));
        let s = srx.try_recv().unwrap();
        assert_eq!(s.assignment, Bytes::from_static(b"A"));
        assert_eq!(g.state, GroupState::Stable);
        assert!(g.metadata_dirty);
        assert_eq!(
            g.heartbeat(&id, None, 0, 2),
            Some(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.heartbeat("nope", None, 1, 2),
            Some(ResponseError::UnknownMemberId)
        );
        // follower-style sync in Stable returns the stored assignment
        let s = done(g.sync(&id, None, 1, None, None, vec![], 3));
        assert_eq!(s.assignment, Bytes::from_static(b"A"));
    }

    #[test]
    fn second_member_triggers_rebalance_and_session_expiry_removes() {
        let c = cfg();
        let mut g = Group::new("g", 0);
        let (a, mut rx) = join_new(&mut g, &c, 0);
        rx.try_recv().unwrap();
        done(g.sync(&a, None, 1, None, None, vec![(a.clone(), Bytes::new())], 0));
        let (b, mut brx) = join_new(&mut g, &c, 10);
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert!(brx.try_recv().is_err(), "waits for the existing member");
        assert_eq!(
            g.heartbeat(&a, None, 1, 20),
            Some(ResponseError::RebalanceInProgress)
        );
        let mut arx = later(g.join(params(&a, &["range"]), &c, 30));
        let ja = arx.try_recv().unwrap();
        let jb = brx.try_recv().unwrap();
        assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
        assert_eq!(ja.leader, a, "the first member keeps leading");
        assert_eq!(ja.members.len(), 2);
        assert!(jb.members.is_empty());
        // b never syncs nor heartbeats: its session expires
        let mut s = later(g.sync(&a, None, 2, None, None, vec![], 40));
        assert!(s.try_recv().is_ok());
        assert_eq!(g.heartbeat(&a, None, 2, 9_000), None);
        g.tick(&c, 40 + 10_000);
        assert!(!g.members.contains_key(&b));
        assert!(g.members.contains_key(&a));
        assert_eq!(g.state, GroupState::PreparingRebalance);
        // a rejoins: gen 3 with a alone
        let mut arx = later(g.join(params(&a, &["range"]), &c, 10_050));
        assert_eq!(arx.try_recv().unwrap().generation_id, 3);
    }

    #[test]
    fn rebalance_timeout_drops_members_that_do_not_rejoin() {
        let c = cfg();
        let mut g = Group::new("g", 0);
        let (a, mut rx) = join_new(&mut g, &c, 0);
        rx.try_recv().unwrap();
        done(g.sync(&a, None, 1, None, None, vec![], 0));
        let (_b, mut brx) = join_new(&mut g, &c, 100);
        // a keeps heartbeating but never rejoins
        for t in (1000..30_000).step_by(1000) {
            g.heartbeat(&a, None, 1, t);
            g.tick(&c, t);
        }
        assert!(brx.try_recv().is_err());
        g.tick(&c, 100 + 30_000);
        let jb = brx.try_recv().unwrap();
        assert_eq!(jb.generation_id, 2);
        assert_eq!(g.members.len(), 1);
        assert_eq!(
            g.heartbeat(&a, None, 1, 30_200),
            Some(ResponseError::UnknownMemberId)
        );
    }

    #[test]
    fn initial_delay_holds_the_first_join() {
        let c = GroupConfig {
            initial_rebalance_delay_ms: 3000,
            ..GroupConfig::default()
        };
        let mut g = Group::new("g", 0);
        let (_a, mut arx) = join_new(&mut g, &c, 0);
        let (_b, mut brx) = join_new(&mut g, &c, 500);
        g.tick(&c, 2900);
        assert!(arx.try_recv().is_err());
        g.tick(&c, 3000);
        let (ja, jb) = (arx.try_recv().unwrap(), brx.try_recv().unwrap());
        assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
        assert_eq!(ja.members.len() + jb.members.len(), 2);
    }

    #[test]
    fn leave_rebalances_and_last_leave_empties() {
        let c = cfg();
        let mut g = Group::new("g", 0);
        let (a, mut rx) = join_new(&mut g, &c, 0);
        rx.try_recv().unwrap();
        done(g.sync(&a, None, 1, None, None, vec![], 0));
        let (_, e) = g.leave(&a, None, &c, 5);
        assert_eq!(e, None);
        assert_eq!(g.state, GroupState::Empty);
        assert_eq!(g.generation_id, 2);
        assert!(g.metadata_dirty);
        let (_, e) = g.leave(&a, None, &c, 6);
        assert_eq!(e, Some(ResponseError::UnknownMemberId));
        // a known id on an empty group is unknown
        let r = now(g.join(params(&a, &["range"]), &c, 7));
        assert_eq!(r.error, Some(ResponseError::UnknownMemberId));
    }

    #[test]
    fn errors_session_timeout_protocol_and_size() {
        let c = GroupConfig {
            max_size: 1,
            ..cfg()
        };
        let mut g = Group::new("g", 0);
        let mut p = params("", &["range"]);
        p.session_timeout_ms = 1000;
        assert_eq!(
            now(g.join(p, &c, 0)).error,
            Some(ResponseError::InvalidSessionTimeout)
        );
        let (_a, mut rx) = join_new(&mut g, &c, 0);
        rx.try_recv().unwrap();
        let r = now(g.join(params("", &["roundrobin"]), &c, 1));
        assert_eq!(r.error, Some(ResponseError::InconsistentGroupProtocol));
        let r = now(g.join(params("", &["range"]), &c, 1));
        assert_eq!(r.error, Some(ResponseError::GroupMaxSizeReached));
        let mut p = params("", &["range"]);
        p.protocol_type = "connect".into();
        assert_eq!(
            now(g.join(p, &c, 1)).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
    }

    #[test]
    fn protocol_vote_picks_the_most_preferred_common_protocol() {
        let c = GroupConfig {
            initial_rebalance_delay_ms: 1000,
            ..GroupConfig::default()
        };
        let mut g = Group::new("g", 0);
        let mut ids = Vec::new();
        for prefs in [
            &["cooperative-sticky", "range"][..],
            &["range", "cooperative-sticky"],
            &["range", "cooperative-sticky", "roundrobin"],
        ] {
            let id = now(g.join(params("", prefs), &c, 0)).member_id;
            drop(g.join(params(&id, prefs), &c, 0));
            ids.push(id);
        }
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
    }

    #[test]
    fn static_member_rejoin_keeps_assignment_without_rebalance() {
        let c = cfg();
        let mut g = Group::new("g", 0);
        let mut p = params("", &["range"]);
        p.group_instance_id = Some("inst-1".into());
        // static members skip MEMBER_ID_REQUIRED
        let mut rx = later(g.join(p.clone(), &c, 0));
        let j = rx.try_recv().unwrap();
        let old = j.member_id.clone();
        done(g.sync(
            &old,
            Some("inst-1"),
            1,
            None,
            None,
            vec![(old.clone(), Bytes::from_static(b"P0"))],
            0,
        ));
        // restart: unknown member id, same instance id
        let j = now(g.join(p.clone(), &c, 100));
        assert_eq!(j.error, None);
        assert_eq!(j.generation_id, 1, "no new generation");
        assert_ne!(j.member_id, old);
        assert_eq!(
            j.leader, old,
            "the old leader id: the new member does not assign"
        );
        assert_eq!(g.state, GroupState::Stable);
        let s = done(g.sync(&j.member_id, Some("inst-1"), 1, None, None, vec![], 100));
        assert_eq!(s.assignment, Bytes::from_static(b"P0"));
        // the old incarnation is fenced (KIP-345: FENCED_INSTANCE_ID, fatal
        // for the client, so the two do not keep replacing each other)
        assert_eq!(
            g.heartbeat(&old, Some("inst-1"), 1, 200),
            Some(ResponseError::FencedInstanceId)
        );
        assert_eq!(
            done(g.sync(&old, Some("inst-1"), 1, None, None, vec![], 200)).error,
            Some(ResponseError::FencedInstanceId)
        );
        assert_eq!(
            g.validate_offset_commit(&old, Some("inst-1"), 1, false),
            Err(ResponseError::FencedInstanceId)
        );
        let mut rejoin = params(&old, &["range"]);
        rejoin.group_instance_id = Some("inst-1".into());
        assert_eq!(
            now(g.join(rejoin, &c, 200)).error,
            Some(ResponseError::FencedInstanceId)
        );
        // an instance id nobody holds: the member is unknown
        let mut unknown = params(&j.member_id, &["range"]);
        unknown.group_instance_id = Some("other".into());
        assert_eq!(
            now(g.join(unknown, &c, 200)).error,
            Some(ResponseError::UnknownMemberId)
        );
    }

    #[test]
    fn metadata_round_trip_restores_a_stable_group() {
        let c = cfg();
        let mut g = Group::new("g", 0);
        let (a, mut rx) = join_new(&mut g, &c, 0);
        rx.try_recv().unwrap();
        done(g.sync(
            &a,
            None,
            1,
            None,
            None,
            vec![(a.clone(), Bytes::from_static(b"X"))],
            0,
        ));
        let v = g.to_metadata_value();
        let mut back = Group::from_metadata_value("g", v, 1000);
        assert_eq!(back.state, GroupState::Stable);
        assert_eq!(back.generation_id, 1);
        assert_eq!(back.heartbeat(&a, None, 1, 1001), None);
        let s = done(back.sync(&a, None, 1, None, None, vec![], 1002));
        assert_eq!(s.assignment, Bytes::from_static(b"X"));
    }

    /// Every state x member identity against Kafka's
    /// `ClassicGroup.validateOffsetCommit`: identity first (member, then
    /// generation), state after.
    #[test]
    fn offset_commit_validation_matches_kafka_in_every_state() {
        use GroupState as S;
        use ResponseError as E;
        let c = cfg();
        let mut g = Group::new("g", 0);
        let mut p = params("", &["range"]);
        p.group_instance_id = Some("i".into());
        let j = done(g.join(p, &c, 0));
        let m = j.member_id.clone();
        assert_eq!((g.state, g.generation_id), (S::CompletingRebalance, 1));
        // (what, member id, instance, generation) of each commit
        let commits: [(&str, &str, Option<&str>, i32); 7] = [
            ("no identity", "", None, -1),
            ("member id, generation -1", &m, None, -1),
            ("unknown member", "unknown", None, 1),
            ("stale generation", &m, None, 0),
            ("current generation", &m, None, 1),
            ("replaced static member", "old", Some("i"), 1),
            ("unknown instance", &m, Some("j"), 1),
        ];
        let check = |g: &Group, expect: [Option<E>; 7], txn_no_identity: Option<E>| {
            for ((what, id, inst, gen), want) in commits.iter().zip(expect) {
                assert_eq!(
                    g.validate_offset_commit(id, *inst, *gen, false).err(),
                    want,
                    "{:?}: {what}",
                    g.state
                );
            }
            assert_eq!(
                g.validate_offset_commit("", None, -1, true).err(),
                txn_no_identity,
                "{:?}: transactional commit without identity",
                g.state
            );
        };
        let (unknown, stale, fenced) = (
            Some(E::UnknownMemberId),
            Some(E::IllegalGeneration),
            Some(E::FencedInstanceId),
        );
        check(
            &g,
            [
                unknown,
                stale,
                unknown,
                stale,
                Some(E::RebalanceInProgress),
                fenced,
                unknown,
            ],
            None,
        );
        let _ = done(g.sync(&m, None, 1, None, None, vec![], 1));
        assert_eq!(g.state, S::Stable);
        check(
            &g,
            [unknown, stale, unknown, stale, None, fenced, unknown],
            None,
        );
        let (_other, _rx) = join_new(&mut g, &c, 2);
        assert_eq!(g.state, S::PreparingRebalance);
        check(
            &g,
            [unknown, stale, unknown, stale, None, fenced, unknown],
            None,
        );
        let mut empty = Group::new("e", 0);
        empty.generation_id = 3;
        // an empty group takes any commit without a generation; with one,
        // nobody is a member
        check(
            &empty,
            [None, None, unknown, unknown, unknown, unknown, unknown],
            None,
        );
        g.state = S::Dead;
        let cna = Some(E::CoordinatorNotAvailable);
        check(&g, [cna; 7], cna);
    }
}
