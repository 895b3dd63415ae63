//! The consumer: manual assignment or group membership with the classic
//! protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup), client-side
//! `range` and `cooperative-sticky` assignors, commits, auto-commit,
//! rebalance callbacks, seek, pause/resume, `isolation.level`; regex
//! subscriptions; and the KIP-848 protocol (`group.protocol=consumer`),
//! whose heartbeats `poll` sends (poll within the session timeout).
//!
//! Like the Java consumer, `poll` drives everything (joins, position
//! resets, fetches, auto-commit) on the caller's task; only heartbeats run
//! on a background task, so a slow record handler does not get the member
//! kicked out before `max.poll.interval.ms`.
//!
//! Fetched records wait in per-partition buffers; a partition is fetched
//! again only once its buffer is empty, so buffered memory is bounded by
//! `max.partition.fetch.bytes` × assigned partitions (and by
//! `fetch.max.bytes` per response).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, Metadata};
use crate::config::{ClientConfig, CommonConfig};
use crate::connection::Connection;
use crate::error::{check, Error, KafkaCode, Result};
use crate::records::{decode_batches, Header};
use crate::{sb, tn, TopicPartition};

/// A record as the consumer returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch (create time or log append time).
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// Called from inside `poll` when a group rebalance changes the assignment.
///
/// With the `range` (eager) assignor every partition is revoked before a
/// rebalance and the new set assigned after it; with `cooperative-sticky`
/// only partitions that move are revoked.
pub trait RebalanceListener: Send {
    /// Partitions taken away; commit their offsets here if not auto-committing.
    fn on_partitions_revoked(&mut self, _partitions: &[TopicPartition]) {}
    /// Partitions newly given to this member.
    fn on_partitions_assigned(&mut self, _partitions: &[TopicPartition]) {}
    /// Partitions lost without a chance to commit (membership expired).
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions)
    }
}

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    None,
}

#[derive(Debug, Clone)]
struct ConsumerConfig {
    group_id: Option<String>,
    group_instance_id: Option<String>,
    reset: OffsetReset,
    isolation: i8,
    auto_commit: bool,
    auto_commit_interval: Duration,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    heartbeat_interval: Duration,
    fetch_min_bytes: i32,
    fetch_max_bytes: i32,
    fetch_max_wait: Duration,
    partition_max_bytes: i32,
    max_poll_records: usize,
    assignors: Vec<String>,
    /// `group.protocol=consumer`: KIP-848 (ConsumerGroupHeartbeat).
    consumer_protocol: bool,
    /// `group.remote.assignor` (KIP-848 only; the broker's default when unset).
    remote_assignor: Option<String>,
}

impl ConsumerConfig {
    fn parse(cfg: &ClientConfig) -> Result<ConsumerConfig> {
        let reset = match cfg
            .get_str("auto.offset.reset", "latest")
            .to_ascii_lowercase()
            .as_str()
        {
            "earliest" => OffsetReset::Earliest,
            "latest" => OffsetReset::Latest,
            "none" => OffsetReset::None,
            _ => return Err(cfg.bad("auto.offset.reset", "expected earliest, latest or none")),
        };
        let isolation = match cfg
            .get_str("isolation.level", "read_uncommitted")
            .to_ascii_lowercase()
            .as_str()
        {
            "read_uncommitted" => 0,
            "read_committed" => 1,
            _ => {
                return Err(cfg.bad(
                    "isolation.level",
                    "expected read_uncommitted or read_committed",
                ))
            }
        };
        let mut assignors = Vec::new();
        for a in cfg.get_list("partition.assignment.strategy") {
            // Java accepts class names; map the built-in ones.
            let name = match a.rsplit('.').next().unwrap_or(&a) {
                "RangeAssignor" | "range" => "range",
                "CooperativeStickyAssignor" | "cooperative-sticky" => "cooperative-sticky",
                _ => {
                    return Err(cfg.bad(
                        "partition.assignment.strategy",
                        "supported: range, cooperative-sticky",
                    ))
                }
            };
            assignors.push(name.to_string());
        }
        if assignors.is_empty() {
            assignors = vec!["range".into(), "cooperative-sticky".into()];
        }
        let consumer_protocol = match cfg
            .get_str("group.protocol", "classic")
            .to_ascii_lowercase()
            .as_str()
        {
            "classic" => false,
            "consumer" => true,
            _ => return Err(cfg.bad("group.protocol", "expected classic or consumer")),
        };
        let i32ms = |k: &str, d: i64| {
            cfg.get_i64(k, d, 0, i32::MAX as i64)
                .map(|v| Duration::from_millis(v as u64))
        };
        Ok(ConsumerConfig {
            group_id: cfg
                .get("group.id")
                .filter(|g| !g.is_empty())
                .map(str::to_string),
            group_instance_id: cfg
                .get("group.instance.id")
                .filter(|g| !g.is_empty())
                .map(str::to_string),
            reset,
            isolation,
            auto_commit: cfg.get_bool("enable.auto.commit", true)?,
            auto_commit_interval: i32ms("auto.commit.interval.ms", 5_000)?,
            session_timeout: i32ms("session.timeout.ms", 45_000)?,
            rebalance_timeout: i32ms("max.poll.interval.ms", 300_000)?,
            heartbeat_interval: i32ms("heartbeat.interval.ms", 3_000)?,
            fetch_min_bytes: cfg.get_i64("fetch.min.bytes", 1, 0, i32::MAX as i64)? as i32,
            fetch_max_bytes: cfg.get_i64("fetch.max.bytes", 52_428_800, 0, i32::MAX as i64)? as i32,
            fetch_max_wait: i32ms("fetch.max.wait.ms", 500)?,
            partition_max_bytes: cfg.get_i64(
                "max.partition.fetch.bytes",
                1_048_576,
                0,
                i32::MAX as i64,
            )? as i32,
            max_poll_records: cfg.get_i64("max.poll.records", 500, 1, i32::MAX as i64)? as usize,
            assignors,
            consumer_protocol,
            remote_assignor: cfg
                .get("group.remote.assignor")
                .filter(|a| !a.is_empty())
                .map(str::to_string),
        })
    }
}

#[derive(Debug, Default)]
struct PartState {
    /// Next offset to hand to the user; `None` until resolved.
    position: Option<i64>,
    /// Where the next fetch starts once the buffer is drained.
    next_fetch: Option<i64>,
    paused: bool,
    high_watermark: i64,
    buffer: VecDeque<ConsumerRecord>,
}

#[derive(Default)]
struct HeartbeatFlags {
    rejoin: AtomicBool,
    /// The coordinator no longer knows us: start over with no member id.
    reset_member: AtomicBool,
}

struct GroupState {
    coordinator: Option<Arc<Connection>>,
    member_id: String,
    /// The classic generation, or the KIP-848 member epoch.
    generation: i32,
    /// KIP-848: when the next ConsumerGroupHeartbeat is due (`None`: now).
    next_heartbeat: Option<Instant>,
    /// KIP-848: a target assignment from the coordinator not yet reconciled.
    pending: Option<Vec<(uuid::Uuid, Vec<i32>)>>,
    /// KIP-848: the owned partitions changed; tell the coordinator now.
    ack_needed: bool,
    /// KIP-848: topic ids of the assigned topics (for reporting owned partitions).
    topic_ids: HashMap<String, uuid::Uuid>,
    protocol: Option<String>,
    joined: bool,
    flags: Arc<HeartbeatFlags>,
    heartbeat: Option<JoinHandle<()>>,
}

impl GroupState {
    fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// A consumer's group membership, for offsets committed within a
/// transaction (Java's `ConsumerGroupMetadata`): from
/// [`Consumer::group_metadata`], or from a bare group id (generation -1,
/// no member id: the coordinator checks no membership).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// A group id alone (generation -1, no member id).
    pub fn new(group_id: impl Into<String>) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

impl From<&str> for ConsumerGroupMetadata {
    fn from(group_id: &str) -> Self {
        ConsumerGroupMetadata::new(group_id)
    }
}

impl From<String> for ConsumerGroupMetadata {
    fn from(group_id: String) -> Self {
        ConsumerGroupMetadata::new(group_id)
    }
}

impl From<&ConsumerGroupMetadata> for ConsumerGroupMetadata {
    fn from(m: &ConsumerGroupMetadata) -> Self {
        m.clone()
    }
}

/// The consumer. Not `Clone`: one owner drives `poll`.
///
/// ```no_run
/// # async fn demo() -> Result<(), oxka_client::Error> {
/// use oxka_client::{ClientConfig, Consumer, TopicPartition};
/// let mut cfg = ClientConfig::with_bootstrap("localhost:9092");
/// cfg.set("auto.offset.reset", "earliest");
/// let mut consumer = Consumer::new(&cfg)?;
/// consumer.assign(vec![TopicPartition::new("orders", 0)])?;
/// consumer.seek(&TopicPartition::new("orders", 0), 42)?;
/// let records = consumer.poll(std::time::Duration::from_secs(1)).await?;
/// # Ok(()) }
/// ```
pub struct Consumer {
    cluster: Arc<Cluster>,
    cfg: ConsumerConfig,
    assignment: BTreeMap<TopicPartition, PartState>,
    /// The topics joined with: the named topics plus, with a pattern, the
    /// topics it currently matches.
    subscription: Vec<String>,
    /// Topics named in `subscribe` (not patterns).
    literal_topics: Vec<String>,
    /// A regex subscription; the matched set is re-evaluated whenever the
    /// all-topics metadata is older than `metadata.max.age.ms`.
    pattern: Option<regex::Regex>,
    group: GroupState,
    listener: Option<Box<dyn RebalanceListener>>,
    last_auto_commit: Instant,
    metadata_stale: bool,
    closed: bool,
}

impl Consumer {
    /// Builds a consumer; connects lazily on the first call.
    pub fn new(cfg: &ClientConfig) -> Result<Consumer> {
        let common = CommonConfig::parse(cfg, "oxka-consumer")?;
        let auto_create = cfg.get_bool("allow.auto.create.topics", true)?;
        let ccfg = ConsumerConfig::parse(cfg)?;
        Ok(Consumer {
            cluster: Arc::new(Cluster::new(common, auto_create)),
            cfg: ccfg,
            assignment: BTreeMap::new(),
            subscription: Vec::new(),
            literal_topics: Vec::new(),
            pattern: None,
            group: GroupState {
                coordinator: None,
                member_id: String::new(),
                generation: -1,
                next_heartbeat: None,
                pending: None,
                ack_needed: false,
                topic_ids: HashMap::new(),
                protocol: None,
                joined: false,
                flags: Arc::default(),
                heartbeat: None,
            },
            listener: None,
            last_auto_commit: Instant::now(),
            metadata_stale: false,
            closed: false,
        })
    }

    /// Manually assigns partitions (no group membership). Replaces any
    /// previous assignment; positions resolve from committed offsets (when
    /// `group.id` is set) or `auto.offset.reset`.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        if self.subscribed() {
            return Err(Error::InvalidArgument(
                "assign() after subscribe(): call unsubscribe() first".into(),
            ));
        }
        let keep: BTreeSet<_> = partitions.into_iter().collect();
        self.assignment.retain(|tp, _| keep.contains(tp));
        for tp in keep {
            self.assignment.entry(tp).or_default();
        }
        Ok(())
    }

    /// Joins `group.id` and consumes the topics the group assigns.
    ///
    /// As in librdkafka, a name starting with `^` is a regex (searched in
    /// each topic name, so `^orders-` matches every topic starting with
    /// `orders-`); the subscription then follows the topics it matches (see
    /// [`subscribe_pattern`](Self::subscribe_pattern)).
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        if self.cfg.group_id.is_none() {
            return Err(Error::InvalidArgument(
                "subscribe() needs group.id; use assign() without a group".into(),
            ));
        }
        if topics.is_empty() {
            return Err(Error::InvalidArgument(
                "subscribe() to no topics: call unsubscribe()".into(),
            ));
        }
        let patterns: Vec<&str> = topics
            .iter()
            .copied()
            .filter(|t| t.starts_with('^'))
            .collect();
        let pattern = if patterns.is_empty() {
            None
        } else {
            let joined = patterns
                .iter()
                .map(|p| format!("(?:{p})"))
                .collect::<Vec<_>>()
                .join("|");
            Some(compile_pattern(&joined)?)
        };
        let literals = topics
            .iter()
            .filter(|t| !t.starts_with('^'))
            .map(|t| t.to_string())
            .collect();
        self.set_subscription(literals, pattern)
    }

    /// Subscribes to every topic whose whole name matches `regex` (Java's
    /// `subscribe(Pattern)`; Rust's `regex` syntax). Internal topics never
    /// match. The matched set is re-evaluated on each metadata refresh
    /// (`metadata.max.age.ms`); a change rejoins the group with the new
    /// topics.
    pub fn subscribe_pattern(&mut self, regex: &str) -> Result<()> {
        let pattern = compile_pattern(&format!("^(?:{regex})$"))?;
        self.set_subscription(Vec::new(), Some(pattern))
    }

    /// Like [`subscribe_pattern`](Self::subscribe_pattern), with rebalance callbacks.
    pub fn subscribe_pattern_with_listener(
        &mut self,
        regex: &str,
        listener: Box<dyn RebalanceListener>,
    ) -> Result<()> {
        self.listener = Some(listener);
        self.subscribe_pattern(regex)
    }

    fn set_subscription(
        &mut self,
        literals: Vec<String>,
        pattern: Option<regex::Regex>,
    ) -> Result<()> {
        if self.cfg.group_id.is_none() {
            return Err(Error::InvalidArgument(
                "subscribe() needs group.id; use assign() without a group".into(),
            ));
        }
        if !self.subscribed() && !self.assignment.is_empty() {
            return Err(Error::InvalidArgument(
                "subscribe() after assign(): call unsubscribe() first".into(),
            ));
        }
        self.subscription = literals.clone();
        self.literal_topics = literals;
        self.pattern = pattern;
        if self.pattern.is_some() {
            // Evaluate against the current snapshot now (even a stale one);
            // `poll` refreshes it when older than metadata.max.age.ms.
            let meta = self.cluster.metadata();
            self.subscription = self.subscription_from(&meta);
        }
        self.group.flags.rejoin.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Whether this consumer is a group member by subscription.
    fn subscribed(&self) -> bool {
        !self.subscription.is_empty() || self.pattern.is_some()
    }

    /// The named topics plus the pattern's matches in `meta`, sorted.
    fn subscription_from(&self, meta: &Metadata) -> Vec<String> {
        let mut set: BTreeSet<String> = self.literal_topics.iter().cloned().collect();
        if let Some(re) = &self.pattern {
            set.extend(matching_topics(re, meta));
        }
        set.into_iter().collect()
    }

    /// With a pattern: refreshes all-topics metadata when older than
    /// `metadata.max.age.ms` and rejoins if the matched set changed.
    async fn update_pattern_subscription(&mut self) -> Result<()> {
        if self.pattern.is_none() {
            return Ok(());
        }
        let meta = match self.cluster.refresh_if_stale(None).await {
            Ok(m) => m,
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "metadata refresh for the pattern failed");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let next = self.subscription_from(&meta);
        if next != self.subscription {
            tracing::debug!(topics = ?next, "pattern subscription changed: rejoining");
            self.subscription = next;
            self.group.flags.rejoin.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Like [`subscribe`](Self::subscribe), with rebalance callbacks.
    pub fn subscribe_with_listener(
        &mut self,
        topics: &[&str],
        listener: Box<dyn RebalanceListener>,
    ) -> Result<()> {
        self.listener = Some(listener);
        self.subscribe(topics)
    }

    /// Leaves the group (committing first with auto-commit) and drops the assignment.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        if self.subscribed() {
            self.revoke_all(false).await;
            self.leave_group().await;
            self.subscription.clear();
            self.literal_topics.clear();
            self.pattern = None;
        }
        self.assignment.clear();
        Ok(())
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    /// The next offset `poll` returns for a partition, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment.get(tp).and_then(|s| s.position)
    }

    /// The last high watermark seen for a partition (for lag).
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment
            .get(tp)
            .map(|s| s.high_watermark)
            .filter(|h| *h >= 0)
    }

    /// Moves the position of an assigned partition.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let s = self.assignment.get_mut(tp).ok_or_else(|| {
            Error::InvalidArgument(format!("seek on {tp}, which is not assigned"))
        })?;
        s.position = Some(offset);
        s.next_fetch = Some(offset);
        s.buffer.clear();
        Ok(())
    }

    /// Seeks to the earliest offset of each partition.
    pub async fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let offs = list_offsets(&self.cluster, tps, -2, self.cfg.isolation).await?;
        for (tp, o) in offs {
            self.seek(&tp, o)?;
        }
        Ok(())
    }

    /// Seeks to the log end of each partition.
    pub async fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let offs = list_offsets(&self.cluster, tps, -1, self.cfg.isolation).await?;
        for (tp, o) in offs {
            self.seek(&tp, o)?;
        }
        Ok(())
    }

    /// Seeks each partition to the first offset with a timestamp at or
    /// after `ts_ms` (the log end when there is none).
    pub async fn seek_to_timestamp(&mut self, tps: &[TopicPartition], ts_ms: i64) -> Result<()> {
        let offs = list_offsets(&self.cluster, tps, ts_ms, self.cfg.isolation).await?;
        let missing: Vec<TopicPartition> = offs
            .iter()
            .filter(|(_, o)| **o < 0)
            .map(|(t, _)| t.clone())
            .collect();
        let ends = if missing.is_empty() {
            BTreeMap::new()
        } else {
            list_offsets(&self.cluster, &missing, -1, self.cfg.isolation).await?
        };
        for (tp, o) in offs {
            let o = if o < 0 {
                ends.get(&tp).copied().unwrap_or(0)
            } else {
                o
            };
            self.seek(&tp, o)?;
        }
        Ok(())
    }

    /// Stops fetching from the partitions (they stay assigned).
    pub fn pause(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(s) = self.assignment.get_mut(tp) {
                s.paused = true;
            }
        }
    }

    /// Resumes paused partitions.
    pub fn resume(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(s) = self.assignment.get_mut(tp) {
                s.paused = false;
            }
        }
    }

    /// Partitions currently paused.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assignment
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Waits up to `timeout` for records; returns at most `max.poll.records`.
    /// An empty vector means nothing arrived in time.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if self.closed {
            return Err(Error::Closed);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.subscribed() {
                self.update_pattern_subscription().await?;
                if self.cfg.consumer_protocol {
                    self.ensure_group_848().await?;
                } else {
                    self.ensure_group(deadline).await?;
                }
            }
            self.maybe_auto_commit();
            let out = self.drain_buffers();
            if !out.is_empty() {
                return Ok(out);
            }
            self.resolve_positions().await?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wait = self.cfg.fetch_max_wait.min(deadline - now);
            if self.fetchable().is_empty() {
                // Nothing to fetch (no assignment yet, or all paused).
                tokio::time::sleep(wait.min(Duration::from_millis(100))).await;
                continue;
            }
            self.fetch_once(wait).await?;
        }
    }

    fn drain_buffers(&mut self) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        let max = self.cfg.max_poll_records;
        for s in self.assignment.values_mut() {
            if s.paused {
                continue;
            }
            while out.len() < max {
                let Some(r) = s.buffer.pop_front() else { break };
                s.position = Some(r.offset + 1);
                out.push(r);
            }
            if s.buffer.is_empty() {
                if let Some(n) = s.next_fetch {
                    s.position = Some(s.position.map_or(n, |p| p.max(n)));
                }
            }
            if out.len() >= max {
                break;
            }
        }
        out
    }

    fn fetchable(&self) -> Vec<(TopicPartition, i64)> {
        self.assignment
            .iter()
            .filter(|(_, s)| !s.paused && s.buffer.is_empty())
            .filter_map(|(tp, s)| s.position.map(|p| (tp.clone(), p)))
            .collect()
    }

    async fn resolve_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|(_, s)| s.position.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut unresolved = missing.clone();
        if let Some(group) = self.cfg.group_id.clone() {
            let conn = self.coordinator().await?;
            let committed = fetch_committed(&conn, &group, Some(&missing)).await?;
            unresolved.clear();
            for tp in missing {
                match committed.get(&tp) {
                    Some(o) if *o >= 0 => {
                        if let Some(s) = self.assignment.get_mut(&tp) {
                            s.position = Some(*o);
                            s.next_fetch = Some(*o);
                        }
                    }
                    _ => unresolved.push(tp),
                }
            }
        }
        if !unresolved.is_empty() {
            self.reset_positions(&unresolved).await?;
        }
        Ok(())
    }

    async fn reset_positions(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let ts = match self.cfg.reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::None => {
                return Err(Error::InvalidArgument(format!(
                    "no committed offset for {} and auto.offset.reset=none; seek first or set auto.offset.reset",
                    tps.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
                )))
            }
        };
        let offs = list_offsets(&self.cluster, tps, ts, self.cfg.isolation).await?;
        for (tp, o) in offs {
            if let Some(s) = self.assignment.get_mut(&tp) {
                s.position = Some(o);
                s.next_fetch = Some(o);
                s.buffer.clear();
            }
        }
        Ok(())
    }

    async fn fetch_once(&mut self, wait: Duration) -> Result<()> {
        let parts = self.fetchable();
        let topics: Vec<String> = parts
            .iter()
            .map(|(tp, _)| tp.topic.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let meta = if self.metadata_stale {
            self.metadata_stale = false;
            self.cluster.refresh(Some(&topics)).await?
        } else {
            self.cluster.refresh_if_stale(Some(&topics)).await?
        };
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        for (tp, pos) in parts {
            match crate::admin::leader_of(&meta, &tp) {
                Ok(l) => by_leader.entry(l).or_default().push((tp, pos)),
                Err(e) => {
                    tracing::debug!(%tp, error = %e, "no leader; refreshing metadata");
                    self.metadata_stale = true;
                }
            }
        }
        if by_leader.is_empty() {
            tokio::time::sleep(self.cluster.cfg.retry_backoff).await;
            return Ok(());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (leader, parts) in by_leader {
            let cluster = self.cluster.clone();
            let req = self.fetch_request(&parts, wait);
            tasks.spawn(async move {
                let r = async { cluster.conn_to_broker(leader).await?.send(req).await }.await;
                (leader, r)
            });
        }
        let mut reset = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let Ok((leader, result)) = joined else {
                continue;
            };
            let resp = match result {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(leader, error = %e, "fetch failed; will retry");
                    self.metadata_stale = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if resp.error_code != 0 {
                check(resp.error_code, None, || "fetch".into())?;
            }
            for t in resp.responses {
                let topic = t.topic.0.to_string();
                for p in t.partitions {
                    let tp = TopicPartition::new(topic.clone(), p.partition_index);
                    match p.error_code {
                        0 => self.absorb(&tp, &p)?,
                        KafkaCode::OFFSET_OUT_OF_RANGE => reset.push(tp),
                        code if KafkaCode(code).is_retriable() => self.metadata_stale = true,
                        code => return Err(Error::kafka(code, None, format!("fetching {tp}"))),
                    }
                }
            }
        }
        if !reset.is_empty() {
            self.reset_positions(&reset).await?;
        }
        Ok(())
    }

    fn fetch_request(&self, parts: &[(TopicPartition, i64)], wait: Duration) -> FetchRequest {
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = wait.as_millis().min(i32::MAX as u128) as i32;
        req.min_bytes = self.cfg.fetch_min_bytes;
        req.max_bytes = self.cfg.fetch_max_bytes;
        req.isolation_level = self.cfg.isolation;
        req.session_id = 0;
        req.session_epoch = -1;
        let mut by_topic: BTreeMap<&str, Vec<fetch_request::FetchPartition>> = BTreeMap::new();
        for (tp, pos) in parts {
            let mut fp = fetch_request::FetchPartition::default();
            fp.partition = tp.partition;
            fp.current_leader_epoch = -1;
            fp.fetch_offset = *pos;
            fp.last_fetched_epoch = -1;
            fp.log_start_offset = -1;
            fp.partition_max_bytes = self.cfg.partition_max_bytes;
            by_topic.entry(&tp.topic).or_default().push(fp);
        }
        for (t, ps) in by_topic {
            let mut ft = fetch_request::FetchTopic::default();
            ft.topic = tn(t);
            ft.partitions = ps;
            req.topics.push(ft);
        }
        req
    }

    /// Decodes one partition's records into its buffer, dropping records
    /// before the position (a compressed batch starts earlier), control
    /// batches, and aborted transactions under read_committed.
    fn absorb(&mut self, tp: &TopicPartition, p: &fetch_response::PartitionData) -> Result<()> {
        let Some(state) = self.assignment.get_mut(tp) else {
            return Ok(());
        };
        let Some(position) = state.position else {
            return Ok(());
        };
        state.high_watermark = p.high_watermark;
        let Some(records) = &p.records else {
            return Ok(());
        };
        let batches = decode_batches(records).map_err(|e| match e {
            Error::Records(m) => Error::Records(format!("{tp}: {m}")),
            e => e,
        })?;
        let mut aborted: Vec<(i64, i64)> = if self.cfg.isolation == 1 {
            p.aborted_transactions
                .iter()
                .flatten()
                .map(|a| (a.first_offset, a.producer_id.0))
                .collect()
        } else {
            Vec::new()
        };
        aborted.sort();
        let mut aborted = aborted.into_iter().peekable();
        let mut active_aborts: HashSet<i64> = HashSet::new();
        let mut next = position;
        for b in batches {
            while let Some((first, pid)) = aborted.peek().copied() {
                if first <= b.last_offset {
                    active_aborts.insert(pid);
                    aborted.next();
                } else {
                    break;
                }
            }
            next = next.max(b.last_offset + 1);
            if b.control {
                active_aborts.remove(&b.producer_id);
                continue;
            }
            if b.transactional && active_aborts.contains(&b.producer_id) {
                continue;
            }
            for r in b.records {
                if r.offset < position {
                    continue;
                }
                state.buffer.push_back(ConsumerRecord {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
            }
        }
        state.next_fetch = Some(next);
        if state.buffer.is_empty() {
            state.position = Some(next);
        }
        Ok(())
    }

    /// A JoinGroup or SyncGroup, which may wait for the whole rebalance:
    /// `None` after a transport error, with the coordinator forgotten so
    /// that the caller's loop looks it up again.
    async fn rebalance_call<R: kafka_protocol::protocol::Request>(
        &mut self,
        conn: &Connection,
        req: R,
    ) -> Result<Option<R::Response>> {
        match conn
            .send_with_timeout(req, self.cfg.rebalance_timeout + Duration::from_secs(5))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_retriable() => {
                self.group.coordinator = None;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn coordinator(&mut self) -> Result<Arc<Connection>> {
        if let Some(c) = &self.group.coordinator {
            if c.is_alive() {
                return Ok(c.clone());
            }
        }
        let group = self
            .cfg
            .group_id
            .clone()
            .ok_or_else(|| Error::InvalidArgument("this operation needs group.id".into()))?;
        let (_, c) = self.cluster.find_coordinator(&group).await?;
        self.group.coordinator = Some(c.clone());
        Ok(c)
    }

    /// Offsets to commit: the position of every assigned partition.
    fn current_offsets(&self) -> BTreeMap<TopicPartition, i64> {
        self.assignment
            .iter()
            .filter_map(|(tp, s)| s.position.map(|p| (tp.clone(), p)))
            .collect()
    }

    /// The positions of `tps` only: what is committed before giving them up.
    fn offsets_of(&self, tps: &[TopicPartition]) -> BTreeMap<TopicPartition, i64> {
        self.current_offsets()
            .into_iter()
            .filter(|(tp, _)| tps.contains(tp))
            .collect()
    }

    /// (revoked, added) going from the current assignment to `new`.
    fn assignment_change(
        &self,
        new: &BTreeSet<TopicPartition>,
    ) -> (Vec<TopicPartition>, Vec<TopicPartition>) {
        let old: BTreeSet<TopicPartition> = self.assignment.keys().cloned().collect();
        (
            old.difference(new).cloned().collect(),
            new.difference(&old).cloned().collect(),
        )
    }

    fn commit_identity(&self) -> (i32, String) {
        if !self.subscribed() {
            (-1, String::new())
        } else {
            (self.group.generation, self.group.member_id.clone())
        }
    }

    /// The group membership a transactional producer commits this
    /// consumer's offsets under (`Producer::send_offsets_to_transaction`),
    /// as Java's `groupMetadata()`: the coordinator then refuses the
    /// commit of a member a rebalance has fenced. `None` without
    /// `group.id`; generation -1 and no member id with manual assignment.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group_id = self.cfg.group_id.clone()?;
        let (generation_id, member_id) = self.commit_identity();
        Some(ConsumerGroupMetadata {
            group_id,
            generation_id,
            member_id,
            group_instance_id: self.cfg.group_instance_id.clone(),
        })
    }

    /// Commits offsets (the current positions when `None`) and waits.
    pub async fn commit_sync(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, i64>>,
    ) -> Result<()> {
        let offsets = offsets.unwrap_or_else(|| self.current_offsets());
        if offsets.is_empty() {
            return Ok(());
        }
        let group = self
            .cfg
            .group_id
            .clone()
            .ok_or_else(|| Error::InvalidArgument("commit needs group.id".into()))?;
        let conn = self.coordinator().await?;
        let (generation, member) = self.commit_identity();
        let r = commit_offsets(&conn, &group, generation, &member, &offsets).await;
        if let Err(e) = &r {
            self.note_group_error(e);
        }
        r
    }

    /// Commits in the background; the handle yields the outcome.
    pub fn commit_async(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, i64>>,
    ) -> JoinHandle<Result<()>> {
        let offsets = offsets.unwrap_or_else(|| self.current_offsets());
        let group = self.cfg.group_id.clone();
        let conn = self.group.coordinator.clone().filter(|c| c.is_alive());
        let cluster = self.cluster.clone();
        let (generation, member) = self.commit_identity();
        tokio::spawn(async move {
            let group =
                group.ok_or_else(|| Error::InvalidArgument("commit needs group.id".into()))?;
            if offsets.is_empty() {
                return Ok(());
            }
            let conn = match conn {
                Some(c) => c,
                None => cluster.find_coordinator(&group).await?.1,
            };
            commit_offsets(&conn, &group, generation, &member, &offsets).await
        })
    }

    /// The group's committed offsets for the given partitions.
    pub async fn committed(
        &mut self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let group = self
            .cfg
            .group_id
            .clone()
            .ok_or_else(|| Error::InvalidArgument("committed() needs group.id".into()))?;
        let conn = self.coordinator().await?;
        fetch_committed(&conn, &group, Some(tps)).await
    }

    fn maybe_auto_commit(&mut self) {
        if self.cfg.auto_commit
            && self.cfg.group_id.is_some()
            && self.last_auto_commit.elapsed() >= self.cfg.auto_commit_interval
        {
            self.last_auto_commit = Instant::now();
            let handle = self.commit_async(None);
            let flags = self.group.flags.clone();
            tokio::spawn(async move {
                if let Ok(Err(e)) = handle.await {
                    tracing::warn!(error = %e, "auto-commit failed");
                    if matches!(
                        e.kafka_code().map(|c| c.0),
                        Some(
                            KafkaCode::ILLEGAL_GENERATION
                                | KafkaCode::UNKNOWN_MEMBER_ID
                                | KafkaCode::REBALANCE_IN_PROGRESS
                        )
                    ) {
                        flags.rejoin.store(true, Ordering::SeqCst);
                    }
                }
            });
        }
    }

    fn note_group_error(&mut self, e: &Error) {
        match e.kafka_code().map(|c| c.0) {
            Some(KafkaCode::NOT_COORDINATOR | KafkaCode::COORDINATOR_NOT_AVAILABLE) => {
                self.group.coordinator = None
            }
            Some(KafkaCode::UNKNOWN_MEMBER_ID) => {
                self.group.flags.reset_member.store(true, Ordering::SeqCst);
                self.group.flags.rejoin.store(true, Ordering::SeqCst);
            }
            Some(KafkaCode::ILLEGAL_GENERATION | KafkaCode::REBALANCE_IN_PROGRESS) => {
                self.group.flags.rejoin.store(true, Ordering::SeqCst)
            }
            _ => {}
        }
        if matches!(e, Error::Disconnected { .. }) {
            self.group.coordinator = None;
        }
    }

    fn current_protocol_is_cooperative(&self) -> bool {
        match &self.group.protocol {
            Some(p) => p == "cooperative-sticky",
            None => self.cfg.assignors.iter().all(|a| a == "cooperative-sticky"),
        }
    }

    async fn revoke_all(&mut self, lost: bool) {
        let owned: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        if owned.is_empty() {
            return;
        }
        if !lost && self.cfg.auto_commit {
            if let Err(e) = self.commit_sync(None).await {
                tracing::warn!(error = %e, "commit before revocation failed");
            }
        }
        if let Some(l) = self.listener.as_mut() {
            if lost {
                l.on_partitions_lost(&owned);
            } else {
                l.on_partitions_revoked(&owned);
            }
        }
        self.assignment.clear();
    }

    async fn ensure_group(&mut self, deadline: Instant) -> Result<()> {
        let flags = self.group.flags.clone();
        if self.group.joined && !flags.rejoin.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.group.stop_heartbeat();
        if flags.reset_member.swap(false, Ordering::SeqCst) {
            self.group.member_id.clear();
            self.group.generation = -1;
            self.revoke_all(true).await;
        } else if !self.current_protocol_is_cooperative() {
            self.revoke_all(false).await;
        }
        flags.rejoin.store(false, Ordering::SeqCst);
        self.group.joined = false;
        let group = self.cfg.group_id.clone().unwrap_or_default();
        // A join may wait for every member (the rebalance timeout); give it
        // that long regardless of the poll timeout, as Java does.
        let join_deadline = deadline.max(Instant::now() + self.cfg.rebalance_timeout);
        loop {
            if Instant::now() >= join_deadline {
                return Err(Error::Timeout(format!("joining group `{group}`")));
            }
            let conn = match self.coordinator().await {
                Ok(c) => c,
                Err(e) if e.is_retriable() => {
                    tokio::time::sleep(self.cluster.cfg.retry_backoff).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let owned: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
            let mut req = JoinGroupRequest::default();
            req.group_id = GroupId(sb(&group));
            req.session_timeout_ms = self.cfg.session_timeout.as_millis() as i32;
            req.rebalance_timeout_ms = self.cfg.rebalance_timeout.as_millis() as i32;
            req.member_id = sb(&self.group.member_id);
            req.group_instance_id = self.cfg.group_instance_id.clone().map(sb);
            req.protocol_type = sb("consumer");
            if conn.version_for(ApiKey::JoinGroup).unwrap_or(0) >= 8 {
                req.reason = Some(sb("oxka-client joining"));
            }
            let metadata = encode_subscription(&self.subscription, &owned, self.group.generation);
            for a in &self.cfg.assignors {
                let mut p = join_group_request::JoinGroupRequestProtocol::default();
                p.name = sb(a);
                p.metadata = metadata.clone();
                req.protocols.push(p);
            }
            let Some(resp) = self.rebalance_call(&conn, req).await? else {
                continue;
            };
            match resp.error_code {
                0 => {}
                KafkaCode::MEMBER_ID_REQUIRED => {
                    self.group.member_id = resp.member_id.to_string();
                    continue;
                }
                KafkaCode::UNKNOWN_MEMBER_ID => {
                    self.group.member_id.clear();
                    continue;
                }
                KafkaCode::NOT_COORDINATOR | KafkaCode::COORDINATOR_NOT_AVAILABLE => {
                    self.group.coordinator = None;
                    continue;
                }
                code if KafkaCode(code).is_retriable() => {
                    tokio::time::sleep(self.cluster.cfg.retry_backoff).await;
                    continue;
                }
                code => return Err(Error::kafka(code, None, format!("joining group `{group}`"))),
            }
            self.group.member_id = resp.member_id.to_string();
            self.group.generation = resp.generation_id;
            let protocol = resp
                .protocol_name
                .clone()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "range".into());
            self.group.protocol = Some(protocol.clone());
            let assignments = if resp.leader == resp.member_id && !resp.skip_assignment {
                self.lead_assignment(&protocol, &resp.members).await?
            } else {
                Vec::new()
            };
            let mut sreq = SyncGroupRequest::default();
            sreq.group_id = GroupId(sb(&group));
            sreq.generation_id = resp.generation_id;
            sreq.member_id = resp.member_id.clone();
            sreq.group_instance_id = self.cfg.group_instance_id.clone().map(sb);
            if conn.version_for(ApiKey::SyncGroup).unwrap_or(0) >= 5 {
                sreq.protocol_type = Some(sb("consumer"));
                sreq.protocol_name = Some(sb(&protocol));
            }
            sreq.assignments = assignments
                .into_iter()
                .map(|(m, a)| {
                    let mut x = sync_group_request::SyncGroupRequestAssignment::default();
                    x.member_id = sb(m);
                    x.assignment = encode_assignment(&a);
                    x
                })
                .collect();
            let Some(sresp) = self.rebalance_call(&conn, sreq).await? else {
                continue;
            };
            match sresp.error_code {
                0 => {}
                KafkaCode::UNKNOWN_MEMBER_ID => {
                    self.group.member_id.clear();
                    continue;
                }
                KafkaCode::REBALANCE_IN_PROGRESS | KafkaCode::ILLEGAL_GENERATION => continue,
                KafkaCode::NOT_COORDINATOR | KafkaCode::COORDINATOR_NOT_AVAILABLE => {
                    self.group.coordinator = None;
                    continue;
                }
                code => return Err(Error::kafka(code, None, format!("syncing group `{group}`"))),
            }
            let new: BTreeSet<TopicPartition> =
                decode_assignment(&sresp.assignment)?.into_iter().collect();
            let (revoked, added) = self.assignment_change(&new);
            if !revoked.is_empty() {
                // Cooperative: give these up now, then rebalance again so
                // their new owner can take them.
                if self.cfg.auto_commit {
                    let offs = self.offsets_of(&revoked);
                    if let Err(e) = commit_offsets(
                        &conn,
                        &group,
                        self.group.generation,
                        &self.group.member_id,
                        &offs,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "commit before revocation failed");
                    }
                }
                if let Some(l) = self.listener.as_mut() {
                    l.on_partitions_revoked(&revoked);
                }
                for tp in &revoked {
                    self.assignment.remove(tp);
                }
                flags.rejoin.store(true, Ordering::SeqCst);
            }
            for tp in &added {
                self.assignment.entry(tp.clone()).or_default();
            }
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_assigned(&added);
            }
            self.group.joined = true;
            self.start_heartbeat(conn, group.clone());
            tracing::debug!(generation = self.group.generation, member = %self.group.member_id, assigned = new.len(), "joined group");
            return Ok(());
        }
    }

    /// KIP-848: reconciles a pending target assignment (revoked partitions
    /// stop fetching and are committed before the heartbeat that omits
    /// them), then heartbeats when due or when something changed.
    async fn ensure_group_848(&mut self) -> Result<()> {
        self.reconcile_848().await?;
        let due = match self.group.next_heartbeat {
            None => true,
            Some(t) => Instant::now() >= t,
        };
        if !(due || self.group.ack_needed || self.group.flags.rejoin.load(Ordering::SeqCst)) {
            return Ok(());
        }
        self.heartbeat_848().await?;
        // An assignment that arrived with this heartbeat is applied now and
        // acknowledged by the next heartbeat, sent at once.
        self.reconcile_848().await
    }

    async fn heartbeat_848(&mut self) -> Result<()> {
        let group = self.cfg.group_id.clone().unwrap_or_default();
        let backoff = Instant::now() + self.cluster.cfg.retry_backoff;
        let flags = self.group.flags.clone();
        if flags.reset_member.swap(false, Ordering::SeqCst) {
            self.revoke_all(true).await;
            self.group.member_id.clear();
            self.group.generation = 0;
        }
        let conn = match self.coordinator().await {
            Ok(c) => c,
            Err(e) if e.is_retriable() => {
                self.group.next_heartbeat = Some(backoff);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        flags.rejoin.store(false, Ordering::SeqCst);
        if self.group.member_id.is_empty() {
            // KIP-1082: the member generates its id and keeps it across rejoins.
            self.group.member_id = uuid::Uuid::new_v4().simple().to_string();
            self.group.generation = 0;
        }
        let mut owned: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
        for tp in self.assignment.keys() {
            if let Some(id) = self.group.topic_ids.get(&tp.topic) {
                owned.entry(*id).or_default().push(tp.partition);
            }
        }
        // Every field on every heartbeat: the coordinator treats equal
        // values as unchanged, and a full request is always valid.
        let mut req = ConsumerGroupHeartbeatRequest::default();
        req.group_id = GroupId(sb(&group));
        req.member_id = sb(&self.group.member_id);
        req.member_epoch = self.group.generation.max(0);
        req.instance_id = self.cfg.group_instance_id.clone().map(sb);
        req.rebalance_timeout_ms = self.cfg.rebalance_timeout.as_millis() as i32;
        req.subscribed_topic_names = Some(self.subscription.iter().map(tn).collect());
        req.server_assignor = self.cfg.remote_assignor.clone().map(sb);
        req.topic_partitions = Some(
            owned
                .into_iter()
                .map(|(id, ps)| {
                    let mut x = consumer_group_heartbeat_request::TopicPartitions::default();
                    x.topic_id = id;
                    x.partitions = ps;
                    x
                })
                .collect(),
        );
        let resp = match conn.send(req).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "heartbeat failed; retrying");
                self.group.coordinator = None;
                self.group.next_heartbeat = Some(backoff);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match resp.error_code {
            0 => {}
            KafkaCode::UNKNOWN_MEMBER_ID | KafkaCode::FENCED_MEMBER_EPOCH => {
                // Fenced: the partitions are lost (no commit); rejoin at epoch 0.
                tracing::debug!(code = %KafkaCode(resp.error_code), "fenced: rejoining");
                self.revoke_all(true).await;
                if resp.error_code == KafkaCode::UNKNOWN_MEMBER_ID {
                    self.group.member_id.clear();
                }
                self.group.generation = 0;
                self.group.pending = None;
                self.group.next_heartbeat = None;
                return Ok(());
            }
            KafkaCode::NOT_COORDINATOR | KafkaCode::COORDINATOR_NOT_AVAILABLE => {
                self.group.coordinator = None;
                self.group.next_heartbeat = Some(backoff);
                return Ok(());
            }
            code if KafkaCode(code).is_retriable() => {
                self.group.next_heartbeat = Some(backoff);
                return Ok(());
            }
            code => {
                return Err(Error::kafka(
                    code,
                    resp.error_message.map(|m| m.to_string()),
                    format!("heartbeating group `{group}` (group.protocol=consumer)"),
                ))
            }
        }
        if let Some(m) = resp.member_id {
            self.group.member_id = m.to_string();
        }
        self.group.generation = resp.member_epoch;
        let interval = Duration::from_millis(resp.heartbeat_interval_ms.max(1) as u64);
        self.group.next_heartbeat = Some(Instant::now() + interval);
        self.group.ack_needed = false;
        self.group.joined = true;
        if let Some(a) = resp.assignment {
            self.group.pending = Some(
                a.topic_partitions
                    .into_iter()
                    .map(|t| (t.topic_id, t.partitions))
                    .collect(),
            );
        }
        Ok(())
    }

    async fn reconcile_848(&mut self) -> Result<()> {
        let Some(target) = self.group.pending.take() else {
            return Ok(());
        };
        let mut meta = self.cluster.metadata();
        let known = |m: &Metadata, id: &uuid::Uuid| m.topics.values().any(|t| t.id == *id);
        if target.iter().any(|(id, _)| !known(&meta, id)) {
            meta = self.cluster.refresh(Some(&self.subscription)).await?;
        }
        if target.iter().any(|(id, _)| !known(&meta, id)) {
            // Not in metadata yet (just created): try again on the next poll.
            self.group.pending = Some(target);
            return Ok(());
        }
        let mut new = BTreeSet::new();
        for (id, ps) in &target {
            if let Some(t) = meta.topics.values().find(|t| t.id == *id) {
                self.group.topic_ids.insert(t.name.clone(), *id);
                new.extend(ps.iter().map(|p| TopicPartition::new(t.name.clone(), *p)));
            }
        }
        let (revoked, added) = self.assignment_change(&new);
        if !revoked.is_empty() {
            // Stop fetching and commit before the heartbeat that omits them.
            if self.cfg.auto_commit {
                let offs = self.offsets_of(&revoked);
                if let Err(e) = self.commit_sync(Some(offs)).await {
                    tracing::warn!(error = %e, "commit before revocation failed");
                }
            }
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_revoked(&revoked);
            }
            for tp in &revoked {
                self.assignment.remove(tp);
            }
        }
        for tp in &added {
            self.assignment.entry(tp.clone()).or_default();
        }
        if !added.is_empty() {
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_assigned(&added);
            }
        }
        if !revoked.is_empty() || !added.is_empty() {
            self.group.ack_needed = true;
            tracing::debug!(
                epoch = self.group.generation,
                revoked = revoked.len(),
                added = added.len(),
                "reconciled assignment"
            );
        }
        Ok(())
    }

    async fn lead_assignment(
        &mut self,
        protocol: &str,
        members: &[join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<(String, Vec<TopicPartition>)>> {
        let mut subs = Vec::new();
        let mut topics = BTreeSet::new();
        for m in members {
            let s = decode_subscription(&m.metadata)?;
            topics.extend(s.topics.iter().cloned());
            subs.push(MemberSubscription {
                member_id: m.member_id.to_string(),
                topics: s.topics,
                owned: s.owned,
                generation: s.generation,
            });
        }
        let topics: Vec<String> = topics.into_iter().collect();
        let meta = self.cluster.refresh(Some(&topics)).await?;
        let partitions: BTreeMap<String, i32> = topics
            .iter()
            .filter_map(|t| {
                meta.topic(t)
                    .map(|ti| (t.clone(), ti.partitions.len() as i32))
            })
            .collect();
        Ok(match protocol {
            "cooperative-sticky" => assign_cooperative_sticky(&subs, &partitions),
            _ => assign_range(&subs, &partitions),
        }
        .into_iter()
        .collect())
    }

    fn start_heartbeat(&mut self, conn: Arc<Connection>, group: String) {
        let flags = self.group.flags.clone();
        let member = self.group.member_id.clone();
        let generation = self.group.generation;
        let instance = self.cfg.group_instance_id.clone();
        let interval = self.cfg.heartbeat_interval;
        self.group.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let mut req = HeartbeatRequest::default();
                req.group_id = GroupId(sb(&group));
                req.generation_id = generation;
                req.member_id = sb(&member);
                req.group_instance_id = instance.clone().map(sb);
                match conn.send(req).await {
                    Ok(r) if r.error_code == 0 => {}
                    // Keep the session alive until the application's next
                    // poll rejoins (as Java's heartbeat thread does), so a
                    // slow handler is bounded by max.poll.interval.ms, not
                    // session.timeout.ms.
                    Ok(r) if r.error_code == KafkaCode::REBALANCE_IN_PROGRESS => {
                        flags.rejoin.store(true, Ordering::SeqCst);
                    }
                    Ok(r) => {
                        if matches!(r.error_code, KafkaCode::UNKNOWN_MEMBER_ID) {
                            flags.reset_member.store(true, Ordering::SeqCst);
                        }
                        tracing::debug!(code = %KafkaCode(r.error_code), "heartbeat: rejoining");
                        flags.rejoin.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "heartbeat failed: rejoining");
                        flags.rejoin.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }));
    }

    async fn leave_group(&mut self) {
        self.group.stop_heartbeat();
        if self.group.member_id.is_empty() {
            return;
        }
        let group = self.cfg.group_id.clone().unwrap_or_default();
        if self.cfg.consumer_protocol {
            if let Ok(conn) = self.coordinator().await {
                let mut req = ConsumerGroupHeartbeatRequest::default();
                req.group_id = GroupId(sb(&group));
                req.member_id = sb(&self.group.member_id);
                // -1 leaves; -2 leaves temporarily as a static member.
                req.member_epoch = if self.cfg.group_instance_id.is_some() {
                    -2
                } else {
                    -1
                };
                req.instance_id = self.cfg.group_instance_id.clone().map(sb);
                req.rebalance_timeout_ms = -1;
                match conn.send(req).await {
                    Err(e) => tracing::debug!(error = %e, "leaving the group failed"),
                    Ok(r) if r.error_code != 0 => {
                        tracing::debug!(code = %KafkaCode(r.error_code), "leaving the group refused")
                    }
                    Ok(_) => {}
                }
            }
            self.group.member_id.clear();
            self.group.generation = -1;
            self.group.joined = false;
            self.group.pending = None;
            self.group.next_heartbeat = None;
            return;
        }
        if let Ok(conn) = self.coordinator().await {
            let mut req = LeaveGroupRequest::default();
            req.group_id = GroupId(sb(&group));
            // v3+ names members in a list; the top-level field is v0-2 only.
            if conn.version_for(ApiKey::LeaveGroup).unwrap_or(0) < 3 {
                req.member_id = sb(&self.group.member_id);
            }
            let mut m = leave_group_request::MemberIdentity::default();
            m.member_id = sb(&self.group.member_id);
            m.group_instance_id = self.cfg.group_instance_id.clone().map(sb);
            if conn.version_for(ApiKey::LeaveGroup).unwrap_or(0) >= 5 {
                m.reason = Some(sb("consumer closing"));
            }
            req.members = vec![m];
            match conn.send(req).await {
                Err(e) => tracing::debug!(error = %e, "LeaveGroup failed"),
                Ok(r) => {
                    let code = r
                        .members
                        .iter()
                        .map(|m| m.error_code)
                        .find(|c| *c != 0)
                        .unwrap_or(r.error_code);
                    if code != 0 {
                        tracing::debug!(code = %KafkaCode(code), "LeaveGroup refused");
                    }
                }
            }
        }
        self.group.member_id.clear();
        self.group.generation = -1;
        self.group.joined = false;
    }

    /// Commits (with auto-commit), leaves the group and stops background work.
    pub async fn close(&mut self) -> Result<()> {
        self.close_inner(self.cfg.auto_commit).await
    }

    /// Leaves the group without committing: for callers that committed
    /// exactly what they processed and must not commit records `poll`
    /// returned but they did not handle.
    pub async fn close_without_commit(&mut self) -> Result<()> {
        self.close_inner(false).await
    }

    async fn close_inner(&mut self, commit: bool) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut result = Ok(());
        if commit && self.cfg.group_id.is_some() {
            result = self.commit_sync(None).await;
        }
        if self.subscribed() {
            if let Some(l) = self.listener.as_mut() {
                let owned: Vec<_> = self.assignment.keys().cloned().collect();
                l.on_partitions_revoked(&owned);
            }
            self.leave_group().await;
        }
        self.closed = true;
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.group.stop_heartbeat();
    }
}

// ---------------------------------------------------------------- helpers

fn compile_pattern(re: &str) -> Result<regex::Regex> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| Error::InvalidArgument(format!("bad topic regex `{re}`: {e}")))
}

/// Non-internal, error-free topics of `meta` that `re` matches, sorted.
fn matching_topics(re: &regex::Regex, meta: &Metadata) -> Vec<String> {
    meta.topics
        .values()
        .filter(|t| !t.internal && t.error.is_none())
        .filter(|t| re.is_match(&t.name))
        .map(|t| t.name.clone())
        .collect()
}

/// A member's subscription as the consumer protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    pub topics: Vec<String>,
    pub owned: Vec<TopicPartition>,
    pub generation: i32,
}

struct DecodedSubscription {
    topics: Vec<String>,
    owned: Vec<TopicPartition>,
    generation: i32,
}

const SUBSCRIPTION_VERSION: i16 = 2;

fn group_tps(tps: &[TopicPartition]) -> Vec<(String, Vec<i32>)> {
    let mut m: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        m.entry(&tp.topic).or_default().push(tp.partition);
    }
    m.into_iter().map(|(t, p)| (t.to_string(), p)).collect()
}

fn encode_subscription(topics: &[String], owned: &[TopicPartition], generation: i32) -> Bytes {
    let mut s = ConsumerProtocolSubscription::default();
    s.topics = topics.iter().map(sb).collect();
    s.owned_partitions = group_tps(owned)
        .into_iter()
        .map(|(t, p)| {
            let mut x = consumer_protocol_subscription::TopicPartition::default();
            x.topic = tn(t);
            x.partitions = p;
            x
        })
        .collect();
    s.generation_id = generation;
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    // Encoding a default-filled message into a BytesMut cannot fail.
    if let Err(e) = s.encode(&mut buf, SUBSCRIPTION_VERSION) {
        tracing::error!(error = %e, "encoding subscription");
    }
    buf.freeze()
}

fn decode_subscription(b: &Bytes) -> Result<DecodedSubscription> {
    let mut buf = b.clone();
    if buf.remaining() < 2 {
        return Err(Error::Protocol(
            "member subscription shorter than its version".into(),
        ));
    }
    let v = buf.get_i16().clamp(0, 3);
    let s = ConsumerProtocolSubscription::decode(&mut buf, v)
        .map_err(|e| Error::Protocol(format!("member subscription: {e}")))?;
    Ok(DecodedSubscription {
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| TopicPartition::new(t.topic.0.to_string(), *p))
            })
            .collect(),
        generation: if v >= 2 { s.generation_id } else { -1 },
    })
}

fn encode_assignment(tps: &[TopicPartition]) -> Bytes {
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = group_tps(tps)
        .into_iter()
        .map(|(t, p)| {
            let mut x = consumer_protocol_assignment::TopicPartition::default();
            x.topic = tn(t);
            x.partitions = p;
            x
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    if let Err(e) = a.encode(&mut buf, 0) {
        tracing::error!(error = %e, "encoding assignment");
    }
    buf.freeze()
}

/// Decodes a consumer protocol assignment (empty bytes: nothing assigned).
pub fn decode_assignment(b: &Bytes) -> Result<Vec<TopicPartition>> {
    let mut buf = b.clone();
    if buf.remaining() < 2 {
        return Ok(Vec::new());
    }
    let v = buf.get_i16().clamp(0, 3);
    let a = ConsumerProtocolAssignment::decode(&mut buf, v)
        .map_err(|e| Error::Protocol(format!("assignment: {e}")))?;
    Ok(a.assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| TopicPartition::new(t.topic.0.to_string(), *p))
        })
        .collect())
}

/// Kafka's RangeAssignor: per topic, members subscribed to it sorted by id,
/// each a contiguous range, the first `n % m` one partition more.
pub fn assign_range(
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out: BTreeMap<String, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    for (topic, &n) in partitions {
        let mut subs: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id.as_str())
            .collect();
        subs.sort();
        if subs.is_empty() {
            continue;
        }
        let m = subs.len() as i32;
        let (per, extra) = (n / m, n % m);
        for (i, member) in subs.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + if i < extra { 1 } else { 0 };
            if let Some(v) = out.get_mut(*member) {
                v.extend((start..start + len).map(|p| TopicPartition::new(topic.clone(), p)));
            }
        }
    }
    out
}

/// A cooperative sticky assignment: members keep what they own up to a
/// balanced quota, the rest goes to the least-loaded subscribers, and a
/// partition that changes owner is withheld for one round (its old owner
/// revokes it first, then the follow-up rebalance hands it over), which is
/// what makes the protocol safe without stopping the world.
pub fn assign_cooperative_sticky(
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out: BTreeMap<String, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    if members.is_empty() {
        return out;
    }
    let all: Vec<TopicPartition> = partitions
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect();
    let exists: HashSet<&TopicPartition> = all.iter().collect();
    // Previous owner of each partition (highest generation wins a conflict).
    let mut prev: HashMap<TopicPartition, (&str, i32)> = HashMap::new();
    for m in members {
        for tp in &m.owned {
            if !exists.contains(tp) || !m.topics.contains(&tp.topic) {
                continue;
            }
            match prev.get(tp) {
                Some((_, g)) if *g >= m.generation => {}
                _ => {
                    prev.insert(tp.clone(), (m.member_id.as_str(), m.generation));
                }
            }
        }
    }
    let quota = all.len().div_ceil(members.len());
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut assigned: HashMap<TopicPartition, String> = HashMap::new();
    for m in &sorted {
        let mut keep: Vec<&TopicPartition> = m
            .owned
            .iter()
            .filter(|tp| prev.get(*tp).is_some_and(|(o, _)| *o == m.member_id))
            .collect();
        keep.sort();
        for tp in keep.into_iter().take(quota) {
            assigned.insert(tp.clone(), m.member_id.clone());
            if let Some(v) = out.get_mut(&m.member_id) {
                v.push(tp.clone());
            }
        }
    }
    for tp in &all {
        if assigned.contains_key(tp) {
            continue;
        }
        let target = sorted
            .iter()
            .filter(|m| m.topics.contains(&tp.topic))
            .min_by_key(|m| {
                (
                    out.get(&m.member_id).map_or(0, |v| v.len()),
                    m.member_id.clone(),
                )
            });
        if let Some(m) = target {
            assigned.insert(tp.clone(), m.member_id.clone());
            if let Some(v) = out.get_mut(&m.member_id) {
                v.push(tp.clone());
            }
        }
    }
    // Withhold partitions whose previous owner is still a member and is not the new owner.
    let live: HashSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    for (member, tps) in out.iter_mut() {
        tps.retain(|tp| !matches!(prev.get(tp), Some((owner, _)) if *owner != member && live.contains(owner)));
        tps.sort();
    }
    out
}

/// ListOffsets for each partition (grouped by leader); `ts` -2 earliest,
/// -1 latest, or a timestamp (offset -1 when no record is that new).
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    tps: &[TopicPartition],
    ts: i64,
    isolation: i8,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<TopicPartition> = tps.to_vec();
    let deadline = Instant::now() + cluster.cfg.request_timeout;
    let mut force = false;
    while !todo.is_empty() {
        let topics: Vec<String> = todo
            .iter()
            .map(|t| t.topic.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let meta = if force {
            cluster.refresh(Some(&topics)).await?
        } else {
            cluster.refresh_if_stale(Some(&topics)).await?
        };
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut retry = Vec::new();
        let mut last_err = None;
        for tp in todo.drain(..) {
            match crate::admin::leader_of(&meta, &tp) {
                Ok(l) => by_leader.entry(l).or_default().push(tp),
                Err(e) if e.is_retriable() => {
                    last_err = Some(e);
                    retry.push(tp)
                }
                Err(e) => return Err(e),
            }
        }
        for (leader, parts) in by_leader {
            let mut req = ListOffsetsRequest::default();
            req.replica_id = BrokerId(-1);
            req.isolation_level = isolation;
            req.timeout_ms = cluster.cfg.request_timeout.as_millis() as i32;
            for (t, ps) in group_tps(&parts) {
                let mut lt = list_offsets_request::ListOffsetsTopic::default();
                lt.name = tn(t);
                lt.partitions = ps
                    .into_iter()
                    .map(|p| {
                        let mut lp = list_offsets_request::ListOffsetsPartition::default();
                        lp.partition_index = p;
                        lp.current_leader_epoch = -1;
                        lp.timestamp = ts;
                        lp
                    })
                    .collect();
                req.topics.push(lt);
            }
            let resp = match cluster.conn_to_broker(leader).await {
                Ok(c) => c.send(req).await,
                Err(e) => Err(e),
            };
            let resp = match resp {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    last_err = Some(e);
                    retry.extend(parts);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for t in resp.topics {
                for p in t.partitions {
                    let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                    match p.error_code {
                        0 => {
                            out.insert(tp, p.offset);
                        }
                        c if KafkaCode(c).is_retriable() => {
                            last_err =
                                Some(Error::kafka(c, None, format!("listing offsets of {tp}")));
                            retry.push(tp);
                        }
                        c => return Err(Error::kafka(c, None, format!("listing offsets of {tp}"))),
                    }
                }
            }
        }
        if !retry.is_empty() {
            if Instant::now() >= deadline {
                return Err(last_err.unwrap_or_else(|| Error::Timeout("listing offsets".into())));
            }
            tokio::time::sleep(cluster.cfg.retry_backoff).await;
            force = true;
        }
        todo = retry;
    }
    Ok(out)
}

/// OffsetCommit for a group (generation -1 and no member: an admin or
/// manually-assigned commit).
pub(crate) async fn commit_offsets(
    conn: &Connection,
    group: &str,
    generation: i32,
    member: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(sb(group));
    req.generation_id_or_member_epoch = generation;
    req.member_id = sb(member);
    req.retention_time_ms = -1;
    let mut by_topic: BTreeMap<&str, Vec<offset_commit_request::OffsetCommitRequestPartition>> =
        BTreeMap::new();
    for (tp, off) in offsets {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = tp.partition;
        p.committed_offset = *off;
        p.committed_leader_epoch = -1;
        p.committed_metadata = Some(sb(""));
        by_topic.entry(&tp.topic).or_default().push(p);
    }
    for (t, ps) in by_topic {
        let mut ct = offset_commit_request::OffsetCommitRequestTopic::default();
        ct.name = tn(t);
        ct.partitions = ps;
        req.topics.push(ct);
    }
    let resp = conn.send(req).await?;
    for t in resp.topics {
        for p in t.partitions {
            check(p.error_code, None, || {
                format!(
                    "committing offsets of group `{group}` for {}-{}",
                    t.name.0, p.partition_index
                )
            })?;
        }
    }
    Ok(())
}

/// OffsetFetch: committed offsets of a group (all when `tps` is `None`).
pub(crate) async fn fetch_committed(
    conn: &Connection,
    group: &str,
    tps: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let v = conn.version_for(ApiKey::OffsetFetch)?;
    let mut req = OffsetFetchRequest::default();
    let grouped = tps.map(group_tps);
    if v >= 8 {
        let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
        g.group_id = GroupId(sb(group));
        g.member_epoch = -1;
        g.topics = grouped.map(|ts| {
            ts.into_iter()
                .map(|(t, ps)| {
                    let mut x = offset_fetch_request::OffsetFetchRequestTopics::default();
                    x.name = tn(t);
                    x.partition_indexes = ps;
                    x
                })
                .collect()
        });
        req.groups = vec![g];
    } else {
        req.group_id = GroupId(sb(group));
        req.topics = grouped.map(|ts| {
            ts.into_iter()
                .map(|(t, ps)| {
                    let mut x = offset_fetch_request::OffsetFetchRequestTopic::default();
                    x.name = tn(t);
                    x.partition_indexes = ps;
                    x
                })
                .collect()
        });
    }
    let resp = conn.send_at(req, v).await?;
    let mut out = BTreeMap::new();
    if v >= 8 {
        for g in resp.groups {
            check(g.error_code, None, || {
                format!("fetching offsets of group `{group}`")
            })?;
            for t in g.topics {
                for p in t.partitions {
                    if p.error_code == 0 && p.committed_offset >= 0 {
                        out.insert(
                            TopicPartition::new(t.name.0.to_string(), p.partition_index),
                            p.committed_offset,
                        );
                    }
                }
            }
        }
    } else {
        check(resp.error_code, None, || {
            format!("fetching offsets of group `{group}`")
        })?;
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    out.insert(
                        TopicPartition::new(t.name.0.to_string(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            generation: 1,
        }
    }

    fn topic(name: &str, internal: bool) -> crate::cluster::TopicInfo {
        crate::cluster::TopicInfo {
            name: name.into(),
            id: uuid::Uuid::nil(),
            internal,
            error: None,
            partitions: Vec::new(),
        }
    }

    #[test]
    fn pattern_matches_whole_names_and_skips_internal() {
        let mut meta = Metadata::default();
        for (n, internal) in [
            ("orders-eu", false),
            ("orders-us", false),
            ("xorders-eu", false),
            ("orders", false),
            ("__consumer_offsets", true),
        ] {
            meta.topics.insert(n.into(), topic(n, internal));
        }
        // Java's subscribe(Pattern): the whole name must match.
        let re = compile_pattern("^(?:orders-.*)$").unwrap();
        assert_eq!(matching_topics(&re, &meta), ["orders-eu", "orders-us"]);
        // Internal topics never match, even with a catch-all.
        let all = compile_pattern("^(?:.*)$").unwrap();
        assert!(!matching_topics(&all, &meta).contains(&"__consumer_offsets".to_string()));
        assert_eq!(matching_topics(&all, &meta).len(), 4);
        assert!(compile_pattern("(").is_err());
    }

    #[test]
    fn range_matches_kafka() {
        let parts: BTreeMap<String, i32> = [("t0".to_string(), 3), ("t1".to_string(), 3)]
            .into_iter()
            .collect();
        let a = assign_range(
            &[
                member("c0", &["t0", "t1"], &[]),
                member("c1", &["t0", "t1"], &[]),
            ],
            &parts,
        );
        let names = |m: &str| a[m].iter().map(|t| t.to_string()).collect::<Vec<_>>();
        // Kafka's RangeAssignor javadoc example.
        assert_eq!(names("c0"), ["t0-0", "t0-1", "t1-0", "t1-1"]);
        assert_eq!(names("c1"), ["t0-2", "t1-2"]);
    }

    #[test]
    fn cooperative_sticky_keeps_owned_and_withholds_moves() {
        let parts: BTreeMap<String, i32> = [("t".to_string(), 4)].into_iter().collect();
        // Generation 1: c0 owns everything, c1 joins.
        let owned = [("t", 0), ("t", 1), ("t", 2), ("t", 3)];
        let a = assign_cooperative_sticky(
            &[member("c0", &["t"], &owned), member("c1", &["t"], &[])],
            &parts,
        );
        assert_eq!(a["c0"].len(), 2, "c0 keeps its quota");
        assert!(a["c1"].is_empty(), "moved partitions wait for revocation");
        // Follow-up round: c0 now owns only its quota.
        let kept: Vec<(&str, i32)> = a["c0"].iter().map(|tp| ("t", tp.partition)).collect();
        let b = assign_cooperative_sticky(
            &[member("c0", &["t"], &kept), member("c1", &["t"], &[])],
            &parts,
        );
        assert_eq!(b["c0"], a["c0"]);
        assert_eq!(b["c1"].len(), 2);
        let all: BTreeSet<_> = b.values().flatten().cloned().collect();
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let owned = vec![TopicPartition::new("a", 1), TopicPartition::new("b", 0)];
        let b = encode_subscription(&["a".into(), "b".into()], &owned, 7);
        let s = decode_subscription(&b).unwrap();
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.owned, owned);
        assert_eq!(s.generation, 7);
        let a = encode_assignment(&owned);
        assert_eq!(decode_assignment(&a).unwrap(), owned);
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
    }
}
