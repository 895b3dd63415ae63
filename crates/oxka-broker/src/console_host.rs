//! The broker's side of the web console (`oxka-console`): its
//! [`ConsoleSource`] over this node's state.
//!
//! Reads come from this node: the metadata image (topics, partitions,
//! brokers, ISR), the replica manager (offsets and sizes of the replicas
//! here), the group coordinator and [`crate::group_lag`] (the same lag
//! `/metrics` exports). What only other brokers know (their configs, the
//! offsets of partitions they lead, records for the message browser) and
//! every change the console makes go through this node's inter-broker
//! listener with `oxka-client` ([`crate::internal_client`]: the broker's
//! security and principal), a client like any other: the actions run
//! the very handlers and controller commands a Kafka admin client reaches
//! (CreateTopics, CreatePartitions, IncrementalAlterConfigs, DeleteTopics,
//! OffsetCommit), with their validation and errors, never a second copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxka_client::admin::{AlterConfigOp, ConfigResource, NewTopic, OffsetSpec};
use oxka_client::{Admin, ClientConfig, Consumer};
use oxka_console::model::*;
use oxka_console::ConsoleSource;
use oxka_log::TopicPartition;

use crate::group_lag;
use crate::internal_client;
use crate::server::BrokerState;

/// The console's clients' `client.id`.
const CLIENT_ID: &str = "oxka-console";
/// How long one console call may wait for other brokers.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The message browser reads at most this many bytes per partition fetch.
const BROWSE_FETCH_BYTES: &str = "1048576";

/// The console's routes for the HTTP listener (`http.console.*` keys
/// read here).
pub fn routes(state: Arc<BrokerState>) -> oxka_console::Router {
    let settings = BrokerConsole::settings(&state);
    oxka_console::console(BrokerConsole::new(state), settings)
}

pub struct BrokerConsole {
    state: Arc<BrokerState>,
    /// The internal admin client, built once this node has registered.
    admin: tokio::sync::Mutex<Option<Admin>>,
}

impl BrokerConsole {
    pub fn new(state: Arc<BrokerState>) -> BrokerConsole {
        BrokerConsole {
            state,
            admin: tokio::sync::Mutex::new(None),
        }
    }

    /// The console's settings from the broker config.
    pub fn settings(state: &BrokerState) -> oxka_console::ConsoleSettings {
        let mut allowed_hosts: Vec<String> = state
            .config
            .value("http.console.allowed.hosts")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(e) = crate::http::HttpSettings::from_config(&state.config).endpoint {
            allowed_hosts.push(e.host);
        }
        oxka_console::ConsoleSettings {
            actions_enabled: state
                .config
                .value("http.console.actions.enable")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            allowed_hosts,
            ..Default::default()
        }
    }

    async fn admin(&self) -> Result<Admin, String> {
        let mut cached = self.admin.lock().await;
        if let Some(a) = cached.as_ref() {
            return Ok(a.clone());
        }
        let a = internal_client::admin(&self.state, CLIENT_ID, CALL_TIMEOUT)
            .map_err(|e| e.to_string())?;
        *cached = Some(a.clone());
        Ok(a)
    }

    fn client_config(&self) -> Result<ClientConfig, String> {
        internal_client::client_config(&self.state, CLIENT_ID, CALL_TIMEOUT)
            .map_err(|e| e.to_string())
    }

    async fn bounded<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = oxka_client::Result<T>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => Err(format!("{what}: no answer within {CALL_TIMEOUT:?}")),
        }
    }

    /// Start offsets of partitions led elsewhere (ListOffsets earliest).
    async fn remote_start_offsets(&self, tps: &[TopicPartition]) -> HashMap<TopicPartition, i64> {
        if tps.is_empty() {
            return HashMap::new();
        }
        let Ok(admin) = self.admin().await else {
            return HashMap::new();
        };
        let ctps: Vec<oxka_client::TopicPartition> = tps
            .iter()
            .map(|tp| oxka_client::TopicPartition::new(tp.topic.clone(), tp.partition))
            .collect();
        self.bounded(
            "start offsets",
            admin.list_offsets(&ctps, OffsetSpec::Earliest),
        )
        .await
        .map(|m| {
            m.into_iter()
                .map(|(tp, o)| (TopicPartition::new(tp.topic, tp.partition), o))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Every broker's groups (ListGroups to each); empty when they
    /// cannot be asked.
    async fn listed_groups(&self) -> Vec<oxka_client::admin::GroupListing> {
        let Ok(admin) = self.admin().await else {
            return Vec::new();
        };
        self.bounded("list groups", admin.list_groups())
            .await
            .unwrap_or_else(|e| {
                tracing::debug!(error = %e, "groups of other coordinators");
                Vec::new()
            })
    }

    fn members(&self, group_id: &str) -> Vec<MemberRow> {
        let gc = &self.state.group_coordinator;
        if gc.is_consumer_group(group_id) {
            let Ok(g) = gc.describe_consumer_group(group_id) else {
                return Vec::new();
            };
            let image = self.state.controller.image();
            return g
                .members
                .into_iter()
                .map(|m| {
                    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for (id, p) in
                        crate::coordinator::group::assignor::partitions(&m.member.assigned)
                    {
                        let name = image
                            .topic_by_id(&id)
                            .map_or_else(|| id.to_string(), |t| t.name.clone());
                        by_topic.entry(name).or_default().push(p);
                    }
                    MemberRow {
                        member_id: m.member.member_id,
                        instance_id: m.member.instance_id,
                        client_id: m.member.client_id,
                        client_host: m.member.client_host,
                        assignment: by_topic.into_iter().collect(),
                    }
                })
                .collect();
        }
        let Ok(Some(g)) = gc.describe_group(group_id) else {
            return Vec::new();
        };
        g.members
            .into_iter()
            .map(|m| MemberRow {
                assignment: if g.protocol_type == "consumer" {
                    decode_assignment(&m.assignment)
                } else {
                    Vec::new()
                },
                member_id: m.member_id,
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
            })
            .collect()
    }
}

/// A classic consumer group's assignment bytes by topic (the client's
/// decoder of Kafka's ConsumerProtocolAssignment); nothing for bytes that
/// do not parse.
fn decode_assignment(bytes: &bytes::Bytes) -> Vec<(String, Vec<i32>)> {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in oxka_client::consumer::decode_assignment(bytes).unwrap_or_default() {
        by_topic.entry(tp.topic).or_default().push(tp.partition);
    }
    by_topic.into_iter().collect()
}

impl ConsoleSource for BrokerConsole {
    fn overview(&self) -> ClusterOverview {
        let image = self.state.controller.image();
        let mut o = ClusterOverview {
            cluster_id: self.state.cluster_id.clone(),
            node_id: self.state.config.node_id,
            controller_id: self.state.controller.active_controller(),
            brokers: image.brokers.len(),
            live_brokers: image.live_brokers().count(),
            topics: image.topics.len(),
            ..Default::default()
        };
        for t in image.topics.values() {
            for p in &t.partitions {
                o.partitions += 1;
                if p.isr.len() < p.replicas.len() {
                    o.under_replicated += 1;
                }
                if p.leader < 0 || !image.is_live(p.leader) {
                    o.offline += 1;
                }
            }
        }
        o
    }

    fn brokers(&self) -> Vec<BrokerRow> {
        let image = self.state.controller.image();
        let controller = self.state.controller.active_controller();
        image
            .brokers
            .values()
            .map(|b| {
                let e = b.endpoint(None);
                BrokerRow {
                    id: b.id,
                    host: e.map(|e| e.host.clone()).unwrap_or_default(),
                    port: e.map_or(-1, |e| e.port as i32),
                    rack: b.rack.clone(),
                    fenced: b.fenced,
                    is_controller: controller == Some(b.id),
                    is_this_node: b.id == self.state.config.node_id,
                }
            })
            .collect()
    }

    async fn broker_configs(&self, id: i32) -> Result<Vec<ConfigRow>, String> {
        let admin = self.admin().await?;
        let rows = self
            .bounded(
                "describe configs",
                admin.describe_configs(&ConfigResource::Broker(id.to_string()), &[]),
            )
            .await?;
        Ok(rows.into_iter().map(config_row).collect())
    }

    fn topics(&self) -> Vec<TopicRow> {
        let image = self.state.controller.image();
        let rm = &self.state.replica_manager;
        image
            .topics
            .values()
            .map(|t| {
                let size_here = (0..t.partitions.len() as i32)
                    .filter_map(|p| rm.get_partition(&TopicPartition::new(t.name.clone(), p)))
                    .map(|p| p.log.lock().size_in_bytes())
                    .sum();
                TopicRow {
                    name: t.name.clone(),
                    internal: t.is_internal(),
                    partitions: t.partitions.len(),
                    replication_factor: t.replication_factor(),
                    size_here,
                    under_replicated: t
                        .partitions
                        .iter()
                        .filter(|p| p.isr.len() < p.replicas.len())
                        .count(),
                }
            })
            .collect()
    }

    async fn topic(&self, name: &str) -> Option<TopicDetail> {
        let image = self.state.controller.image();
        let t = image.topic(name)?.clone();
        let rm = &self.state.replica_manager;
        let tps: Vec<TopicPartition> = (0..t.partitions.len() as i32)
            .map(|p| TopicPartition::new(name, p))
            .collect();
        let mut starts = HashMap::new();
        let mut sizes = HashMap::new();
        let mut remote = Vec::new();
        for tp in &tps {
            match rm.get_partition(tp) {
                Some(p) => {
                    let log = p.log.lock();
                    sizes.insert(tp.partition, log.size_in_bytes());
                    if p.is_leader() {
                        starts.insert(tp.clone(), log.log_start_offset());
                    } else {
                        remote.push(tp.clone());
                    }
                }
                None => remote.push(tp.clone()),
            }
        }
        // other leaders are asked for both ends at once
        let (ends, remote_starts) = tokio::join!(
            self.state.end_offsets.end_offsets(&self.state, &tps),
            self.remote_start_offsets(&remote)
        );
        starts.extend(remote_starts);
        Some(TopicDetail {
            name: t.name.clone(),
            id: t.id.to_string(),
            internal: t.is_internal(),
            partitions: t
                .partitions
                .iter()
                .zip(&tps)
                .map(|(p, tp)| PartitionRow {
                    partition: tp.partition,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    start_offset: starts.get(tp).copied(),
                    end_offset: ends.get(tp).copied(),
                    size_here: sizes.get(&tp.partition).copied(),
                })
                .collect(),
        })
    }

    async fn topic_configs(&self, name: &str) -> Result<Vec<ConfigRow>, String> {
        let admin = self.admin().await?;
        let rows = self
            .bounded(
                "describe configs",
                admin.describe_configs(&ConfigResource::Topic(name.to_string()), &[]),
            )
            .await?;
        Ok(rows.into_iter().map(config_row).collect())
    }

    async fn browse(&self, req: BrowseRequest) -> Result<Vec<BrowsedRecord>, String> {
        let image = self.state.controller.image();
        let count = image
            .topic(&req.topic)
            .map(|t| t.partitions.len() as i32)
            .ok_or_else(|| format!("no topic {}", req.topic))?;
        let limit = req.limit.clamp(1, oxka_console::MAX_BROWSE_RECORDS);
        let tps: Vec<oxka_client::TopicPartition> = match req.partition {
            Some(p) if p < 0 || p >= count => return Err(format!("no partition {p}")),
            Some(p) => vec![oxka_client::TopicPartition::new(req.topic.clone(), p)],
            None => (0..count)
                .map(|p| oxka_client::TopicPartition::new(req.topic.clone(), p))
                .collect(),
        };
        let admin = self.admin().await?;
        let ends = self
            .bounded("end offsets", admin.list_offsets(&tps, OffsetSpec::Latest))
            .await?;
        let mut cfg = self.client_config()?;
        cfg.set("enable.auto.commit", "false");
        cfg.set("allow.auto.create.topics", "false");
        cfg.set("max.partition.fetch.bytes", BROWSE_FETCH_BYTES);
        cfg.set("fetch.max.bytes", BROWSE_FETCH_BYTES);
        let mut consumer = Consumer::new(&cfg).map_err(|e| e.to_string())?;
        consumer.assign(tps.clone()).map_err(|e| e.to_string())?;
        let starts = self
            .bounded(
                "start offsets",
                admin.list_offsets(&tps, OffsetSpec::Earliest),
            )
            .await?;
        for tp in &tps {
            let end = ends.get(tp).copied().unwrap_or(0);
            let start = starts.get(tp).copied().unwrap_or(0).min(end);
            // an offset outside the log starts at its nearest end rather
            // than being reset by `auto.offset.reset`
            match req.from {
                BrowseFrom::Latest => consumer.seek(tp, (end - limit as i64).max(start)),
                BrowseFrom::Offset(o) => consumer.seek(tp, o.clamp(start, end)),
                BrowseFrom::Timestamp(_) => Ok(()),
            }
            .map_err(|e| e.to_string())?;
        }
        if let BrowseFrom::Timestamp(ts) = req.from {
            self.bounded("seek to time", consumer.seek_to_timestamp(&tps, ts))
                .await?;
        }
        // read until every partition reached its end offset, the limit
        // per partition, or the time is up
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut per_partition: HashMap<i32, usize> = HashMap::new();
        let mut out: Vec<BrowsedRecord> = Vec::new();
        loop {
            let pending = tps.iter().any(|tp| {
                let end = ends.get(tp).copied().unwrap_or(0);
                let pos = consumer.position(tp).unwrap_or(-1);
                (pos < 0 || pos < end)
                    && per_partition.get(&tp.partition).copied().unwrap_or(0) < limit
            });
            let left = deadline.saturating_duration_since(Instant::now());
            if !pending || left.is_zero() {
                break;
            }
            let records = match consumer.poll(left.min(Duration::from_millis(500))).await {
                Ok(r) => r,
                Err(e) => return Err(e.to_string()),
            };
            for r in records {
                let n = per_partition.entry(r.partition).or_default();
                if *n >= limit {
                    continue;
                }
                *n += 1;
                out.push(BrowsedRecord {
                    partition: r.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key.map(|b| b.to_vec()),
                    value: r.value.map(|b| b.to_vec()),
                    headers: r
                        .headers
                        .into_iter()
                        .map(|h| (h.key, h.value.map(|v| v.to_vec())))
                        .collect(),
                });
            }
        }
        let _ = consumer.close_without_commit().await;
        if req.from == BrowseFrom::Latest {
            // the newest first, across partitions
            out.sort_by_key(|r| std::cmp::Reverse((r.timestamp, r.offset)));
        } else {
            out.sort_by(|a, b| {
                (a.timestamp, a.partition, a.offset).cmp(&(b.timestamp, b.partition, b.offset))
            });
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn groups(&self) -> Vec<GroupRow> {
        let node = self.state.config.node_id;
        let mut rows: BTreeMap<String, GroupRow> = group_lag::group_lags(&self.state)
            .await
            .into_iter()
            .map(|g| {
                let row = GroupRow {
                    members: Some(self.members(&g.group_id).len()),
                    partitions: Some(g.partitions.len()),
                    total_lag: Some(g.total_lag()),
                    group_type: g.group_type.to_string(),
                    state: g.state.to_string(),
                    coordinator: node,
                    group_id: g.group_id.clone(),
                };
                (g.group_id, row)
            })
            .collect();
        // the other coordinators' groups: ListGroups to every broker
        for g in self.listed_groups().await {
            if g.coordinator != node {
                rows.entry(g.group_id.clone()).or_insert(GroupRow {
                    group_type: match g.group_type {
                        oxka_client::admin::GroupType::Consumer => "consumer",
                        _ => "classic",
                    }
                    .to_string(),
                    state: g.state,
                    coordinator: g.coordinator,
                    group_id: g.group_id,
                    ..Default::default()
                });
            }
        }
        rows.into_values().collect()
    }

    async fn group_coordinator(&self, id: &str) -> Option<i32> {
        self.listed_groups()
            .await
            .into_iter()
            .find(|g| g.group_id == id)
            .map(|g| g.coordinator)
    }

    async fn group(&self, id: &str) -> Option<GroupDetail> {
        let g = group_lag::group_lag(&self.state, id).await?;
        let members = self.members(id);
        let mut owner: HashMap<(&str, i32), &str> = HashMap::new();
        for m in &members {
            for (t, ps) in &m.assignment {
                for p in ps {
                    owner.insert((t.as_str(), *p), m.member_id.as_str());
                }
            }
        }
        let lags = g
            .partitions
            .iter()
            .map(|p| LagRow {
                topic: p.topic.clone(),
                partition: p.partition,
                committed_offset: p.committed_offset,
                end_offset: p.end_offset,
                lag: p.lag,
                member_id: owner
                    .get(&(p.topic.as_str(), p.partition))
                    .map(|m| m.to_string()),
            })
            .collect();
        Some(GroupDetail {
            group_id: g.group_id.clone(),
            group_type: g.group_type.to_string(),
            state: g.state.to_string(),
            lags,
            members,
        })
    }

    async fn sample(&self) -> Sample {
        // the request counters `/metrics` exports (Kafka's
        // BrokerTopicMetrics): one count of what was produced and fetched
        let stats = self.state.replica_manager.topic_stats();
        let counting = self.state.metrics.enabled;
        let all = stats.all_topics();
        let count = |c: &std::sync::atomic::AtomicU64| {
            counting.then(|| c.load(std::sync::atomic::Ordering::Relaxed))
        };
        let group_lags = group_lag::group_lags(&self.state)
            .await
            .into_iter()
            .map(|g| (g.group_id.clone(), g.total_lag()))
            .collect();
        Sample {
            messages_in: count(&all.messages_in),
            bytes_in: count(&all.bytes_in),
            bytes_out: count(&all.bytes_out),
            topic_messages: if counting {
                stats
                    .snapshot()
                    .into_iter()
                    .map(|(t, s)| {
                        let n = s
                            .counters()
                            .messages_in
                            .load(std::sync::atomic::Ordering::Relaxed);
                        (t, n)
                    })
                    .collect()
            } else {
                Vec::new()
            },
            group_lags,
        }
    }

    async fn act(&self, action: Action) -> Result<String, String> {
        let admin = self.admin().await?;
        match action {
            Action::CreateTopic {
                name,
                partitions,
                replication_factor,
            } => {
                self.bounded(
                    "create topic",
                    admin.create_topic(NewTopic::new(&name, partitions, replication_factor)),
                )
                .await?;
                Ok(format!("Created topic {name}."))
            }
            Action::AddPartitions { topic, total } => {
                self.bounded("add partitions", admin.create_partitions(&topic, total))
                    .await?;
                Ok(format!("{topic} now has {total} partitions."))
            }
            Action::SetTopicConfig { topic, key, value } => {
                let op = match &value {
                    Some(v) => AlterConfigOp::Set(key.clone(), v.clone()),
                    None => AlterConfigOp::Delete(key.clone()),
                };
                self.bounded(
                    "alter config",
                    admin.incremental_alter_configs(&ConfigResource::Topic(topic.clone()), &[op]),
                )
                .await?;
                Ok(match value {
                    Some(v) => format!("Set {key}={v} on {topic}."),
                    None => format!("Removed the override of {key} on {topic}."),
                })
            }
            Action::ResetOffsets { group, topic, to } => {
                let count = self
                    .state
                    .controller
                    .image()
                    .topic(&topic)
                    .map(|t| t.partitions.len() as i32)
                    .ok_or_else(|| format!("no topic {topic}"))?;
                let tps: Vec<oxka_client::TopicPartition> = (0..count)
                    .map(|p| oxka_client::TopicPartition::new(topic.clone(), p))
                    .collect();
                let offsets: BTreeMap<oxka_client::TopicPartition, i64> = match to {
                    ResetTo::Earliest => {
                        self.bounded("offsets", admin.list_offsets(&tps, OffsetSpec::Earliest))
                            .await?
                    }
                    ResetTo::Latest => {
                        self.bounded("offsets", admin.list_offsets(&tps, OffsetSpec::Latest))
                            .await?
                    }
                    ResetTo::Offset(o) => tps.into_iter().map(|tp| (tp, o)).collect(),
                };
                self.bounded(
                    "commit offsets",
                    admin.alter_group_offsets(&group, &offsets),
                )
                .await?;
                Ok(format!(
                    "Reset the offsets of group {group} on {topic} ({} partitions).",
                    offsets.len()
                ))
            }
            Action::DeleteTopic { name } => {
                let results = self
                    .bounded(
                        "delete topic",
                        admin.delete_topics(std::slice::from_ref(&name)),
                    )
                    .await?;
                for (_, r) in results {
                    r.map_err(|e| e.to_string())?;
                }
                Ok(format!("Deleted topic {name}."))
            }
        }
    }
}

fn config_row(c: oxka_client::admin::ConfigEntry) -> ConfigRow {
    ConfigRow {
        name: c.name,
        value: c.value,
        source: c.source,
        sensitive: c.sensitive,
        read_only: c.read_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTp;
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn classic_assignments_decode() {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            AssignedTp::default()
                .with_topic(StrBytes::from_static_str("t").into())
                .with_partitions(vec![0, 2]),
        ]);
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, 1);
        a.encode(&mut buf, 1).unwrap();
        assert_eq!(
            decode_assignment(&buf.freeze()),
            vec![("t".to_string(), vec![0, 2])]
        );
        assert!(decode_assignment(&bytes::Bytes::from_static(b"\x00")).is_empty());
        assert!(decode_assignment(&bytes::Bytes::from_static(b"\x00\x01\xff")).is_empty());
    }
}
