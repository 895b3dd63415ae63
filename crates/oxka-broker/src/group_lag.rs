//! Consumer lag computed by the broker itself: for every group this node
//! coordinates (classic and KIP-848 alike), each committed offset beside
//! its partition's end offset. This is what Burrow and kafka_exporter
//! compute from outside; the console and `/metrics`
//! (`kafka_consumergroup_lag`) both call [`group_lags`], so they never
//! disagree.
//!
//! Which end offset: the partition's high watermark, the offset a
//! `read_uncommitted` ListOffsets(latest) answers. `kafka-consumer-groups.sh`,
//! Burrow and kafka_exporter all use it, also for groups of `read_committed`
//! consumers (whose position can stop at the last stable offset, so an open
//! transaction shows as lag until it ends — as in those tools).
//!
//! Where it comes from: a partition led here is read from the replica
//! manager (an atomic load); a partition led by another broker is asked of
//! its leader with ListOffsets through `oxka-client` (the internal admin
//! client, `crate::internal_client`, bootstrapped at this node's own
//! inter-broker endpoint, routes each partition to its leader), one request per leader at once, cached for
//! [`END_OFFSET_TTL`], one refresh at a time, each bounded by
//! [`LOOKUP_TIMEOUT`]; a partition whose leader does not answer has no end
//! offset (and no lag) rather than a stale or invented one, and is not
//! asked again before the TTL.
//!
//! In a cluster each node reports the groups it coordinates, so the union
//! over the nodes is every group once (no double counting when Prometheus
//! sums them).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use oxka_log::TopicPartition;
use parking_lot::Mutex;

use crate::server::BrokerState;

/// How long an end offset asked of another broker is reused.
pub const END_OFFSET_TTL: Duration = Duration::from_secs(5);
/// How long one ListOffsets round to other leaders may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// At most this many remote end offsets are cached (older entries are
/// dropped when it is reached).
const MAX_CACHED: usize = 100_000;

/// One committed offset and how far behind the partition's end it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// The high watermark; `None` when the leader could not be asked or
    /// the partition no longer exists.
    pub end_offset: Option<i64>,
    /// `end_offset - committed_offset`, never below 0 (a commit past the
    /// end, e.g. after an unclean election truncated the log, is no lag).
    pub lag: Option<i64>,
}

/// A group with its state and the lag of every partition it committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub group_id: String,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
    /// Kafka's state name (Stable, Empty, PreparingRebalance, ...).
    pub state: &'static str,
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// The sum of the known partition lags.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

/// Every group this node coordinates with its lag, sorted by group id
/// (partitions by topic then partition). Groups whose coordinator
/// partition is still loading are left out until loaded.
pub async fn group_lags(state: &BrokerState) -> Vec<GroupLag> {
    lags_of(state, |_| true).await
}

/// One group's lag, if this node coordinates it.
pub async fn group_lag(state: &BrokerState, group_id: &str) -> Option<GroupLag> {
    lags_of(state, |g| g == group_id).await.pop()
}

async fn lags_of(state: &BrokerState, wanted: impl Fn(&str) -> bool) -> Vec<GroupLag> {
    let groups = state.group_coordinator.list_groups().unwrap_or_default();
    let mut out = Vec::new();
    for g in groups.into_iter().filter(|g| wanted(&g.group_id)) {
        let Ok(offsets) = state.group_coordinator.fetch_offsets(&g.group_id, None) else {
            continue;
        };
        let partitions = offsets
            .into_iter()
            .flat_map(|(topic, parts)| {
                parts.into_iter().filter_map(move |(p, o)| {
                    o.map(|o| PartitionLag {
                        topic: topic.clone(),
                        partition: p,
                        committed_offset: o.offset,
                        end_offset: None,
                        lag: None,
                    })
                })
            })
            .collect();
        out.push(GroupLag {
            group_id: g.group_id,
            group_type: g.group_type,
            state: g.state,
            partitions,
        });
    }
    let partitions: Vec<TopicPartition> = out
        .iter()
        .flat_map(|g| g.partitions.iter())
        .map(|p| TopicPartition::new(p.topic.clone(), p.partition))
        .collect();
    let ends = state.end_offsets.end_offsets(state, &partitions).await;
    for g in &mut out {
        for p in &mut g.partitions {
            let tp = TopicPartition::new(p.topic.clone(), p.partition);
            p.end_offset = ends.get(&tp).copied();
            p.lag = p.end_offset.map(|e| (e - p.committed_offset).max(0));
        }
    }
    out
}

/// End offsets (high watermarks) of any partitions: local ones from the
/// replica manager, others from their leaders, cached (see the module
/// docs). One per broker, in [`BrokerState`].
#[derive(Default)]
pub struct EndOffsetCache {
    /// `None`: the leader was asked and did not answer (not asked again
    /// before the TTL, so a dead leader costs one timeout per TTL, not
    /// one per caller).
    cached: Mutex<HashMap<TopicPartition, (Option<i64>, Instant)>>,
    /// Held while asking the leaders: one lookup at a time, so callers
    /// arriving meanwhile find the cache fresh instead of asking again.
    lookup: tokio::sync::Mutex<Option<oxka_client::Admin>>,
}

impl EndOffsetCache {
    /// The high watermark of each partition in `partitions` that exists
    /// and whose leader answered.
    pub async fn end_offsets(
        &self,
        state: &BrokerState,
        partitions: &[TopicPartition],
    ) -> HashMap<TopicPartition, i64> {
        let image = state.controller.image();
        let mut out = HashMap::with_capacity(partitions.len());
        let mut remote = Vec::new();
        for tp in partitions {
            if out.contains_key(tp) {
                continue;
            }
            let Some(info) = image
                .topic(&tp.topic)
                .and_then(|t| t.partitions.get(usize::try_from(tp.partition).ok()?))
            else {
                continue;
            };
            if info.leader == state.config.node_id {
                if let Some(p) = state.replica_manager.get_partition(tp) {
                    if p.is_leader() {
                        out.insert(tp.clone(), p.high_watermark());
                        continue;
                    }
                }
            }
            if info.leader >= 0 {
                remote.push(tp.clone());
            }
        }
        if remote.is_empty() {
            return out;
        }
        let stale = self.fresh_into(&remote, &mut out);
        if stale.is_empty() {
            return out;
        }
        let mut admin = self.lookup.lock().await;
        // another caller may have refreshed them while we waited
        let stale = self.fresh_into(&stale, &mut out);
        if stale.is_empty() {
            return out;
        }
        if admin.is_none() {
            let client_id = format!("oxka-broker-{}", state.config.node_id);
            match crate::internal_client::admin(state, &client_id, LOOKUP_TIMEOUT) {
                Ok(a) => *admin = Some(a),
                Err(e) => tracing::debug!(error = %e, "end offsets of other leaders unavailable"),
            }
        }
        let Some(client) = admin.as_ref() else {
            return out;
        };
        // one ListOffsets per leader, all at once: a leader that does not
        // answer costs only its own partitions
        let mut by_leader: HashMap<i32, Vec<oxka_client::TopicPartition>> = HashMap::new();
        for tp in &stale {
            let leader = image
                .topic(&tp.topic)
                .and_then(|t| t.partitions.get(tp.partition as usize))
                .map_or(-1, |p| p.leader);
            by_leader
                .entry(leader)
                .or_default()
                .push(oxka_client::TopicPartition::new(
                    tp.topic.clone(),
                    tp.partition,
                ));
        }
        let mut lookups = tokio::task::JoinSet::new();
        for (leader, tps) in by_leader {
            let client = client.clone();
            lookups.spawn(async move {
                let r = tokio::time::timeout(
                    LOOKUP_TIMEOUT,
                    client.list_offsets(&tps, oxka_client::admin::OffsetSpec::Latest),
                )
                .await;
                match r {
                    Ok(Ok(found)) => found,
                    Ok(Err(e)) => {
                        tracing::debug!(leader, error = %e, "end offsets unavailable");
                        Default::default()
                    }
                    Err(_) => {
                        tracing::debug!(leader, "end offsets timed out");
                        Default::default()
                    }
                }
            });
        }
        let mut found = HashMap::new();
        while let Some(r) = lookups.join_next().await {
            for (tp, end) in r.unwrap_or_default() {
                found.insert(TopicPartition::new(tp.topic, tp.partition), end);
            }
        }
        let now = Instant::now();
        let mut cached = self.cached.lock();
        if cached.len() + stale.len() > MAX_CACHED {
            cached.retain(|_, (_, at)| now.duration_since(*at) < END_OFFSET_TTL);
            if cached.len() + stale.len() > MAX_CACHED {
                cached.clear();
            }
        }
        for tp in stale {
            let end = found.get(&tp).copied();
            if let Some(end) = end {
                out.insert(tp.clone(), end);
            }
            cached.insert(tp, (end, now));
        }
        out
    }

    /// Copies the fresh cached offsets of `tps` into `out`; returns the
    /// partitions that still need asking.
    fn fresh_into(
        &self,
        tps: &[TopicPartition],
        out: &mut HashMap<TopicPartition, i64>,
    ) -> Vec<TopicPartition> {
        let cached = self.cached.lock();
        let now = Instant::now();
        tps.iter()
            .filter(|tp| match cached.get(*tp) {
                Some((end, at)) if now.duration_since(*at) < END_OFFSET_TTL => {
                    if let Some(end) = end {
                        out.insert((*tp).clone(), *end);
                    }
                    false
                }
                _ => true,
            })
            .cloned()
            .collect()
    }
}
