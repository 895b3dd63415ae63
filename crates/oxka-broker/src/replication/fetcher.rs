//! The follower side of replication (Kafka's ReplicaFetcherManager and
//! ReplicaFetcherThread): partitions this broker follows are fetched from
//! their leaders with Fetch v15 carrying this replica's id and broker epoch
//! (KIP-903's ReplicaState), by `num.replica.fetchers` tasks per leader
//! broker, each with one connection and one request in flight. Batches are
//! appended as the leader wrote them; a diverging epoch in the answer
//! (KIP-320) truncates the log first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use oxka_client::Connection;
use oxka_log::TopicPartition;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::truncation::{truncation_for, Truncation};
use crate::replica_manager::{Partition, ReplicaManager};

/// Kafka's replica fetcher settings.
#[derive(Debug, Clone)]
pub struct FetcherSettings {
    pub num_fetchers: usize,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub partition_max_bytes: i32,
    pub response_max_bytes: i32,
    pub backoff: Duration,
    pub socket_timeout: Duration,
    /// The listener followers connect to (`inter.broker.listener.name`).
    pub listener: Option<String>,
    /// Its TLS and SASL client settings.
    pub security: oxka_client::security::ClientSecurity,
}

impl Default for FetcherSettings {
    fn default() -> Self {
        FetcherSettings {
            num_fetchers: 1,
            max_wait_ms: 500,
            min_bytes: 1,
            partition_max_bytes: 1 << 20,
            response_max_bytes: 10 << 20,
            backoff: Duration::from_millis(1000),
            socket_timeout: Duration::from_millis(30_000),
            listener: None,
            security: Default::default(),
        }
    }
}

impl FetcherSettings {
    pub fn from_config(config: &crate::config::KafkaConfig) -> Self {
        let d = FetcherSettings::default();
        let int = |k: &str, default: i64| {
            config
                .value(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        FetcherSettings {
            num_fetchers: int("num.replica.fetchers", 1).clamp(1, 64) as usize,
            max_wait_ms: int("replica.fetch.wait.max.ms", 500).clamp(0, 60_000) as i32,
            min_bytes: int("replica.fetch.min.bytes", 1).clamp(1, i32::MAX.into()) as i32,
            partition_max_bytes: int("replica.fetch.max.bytes", 1 << 20)
                .clamp(1024, i32::MAX.into()) as i32,
            response_max_bytes: int("replica.fetch.response.max.bytes", 10 << 20)
                .clamp(1024, i32::MAX.into()) as i32,
            backoff: Duration::from_millis(
                int("replica.fetch.backoff.ms", 1000).clamp(0, 60_000) as u64
            ),
            socket_timeout: Duration::from_millis(
                int("replica.socket.timeout.ms", 30_000).clamp(1000, 600_000) as u64,
            ),
            listener: config.inter_broker_listener.clone().or(d.listener),
            security: config.inter_broker_security(),
        }
    }
}

/// One partition a fetcher task fetches.
#[derive(Clone)]
struct FetchEntry {
    partition: Arc<Partition>,
    topic_id: Uuid,
    leader_epoch: i32,
    /// Not fetched before this (after an error).
    retry_at: Option<Instant>,
}

type Entries = Arc<Mutex<HashMap<TopicPartition, FetchEntry>>>;

struct FetcherHandle {
    entries: Entries,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

pub struct ReplicaFetcherManager {
    node_id: i32,
    settings: FetcherSettings,
    runtime: Option<tokio::runtime::Handle>,
    /// Where each broker listens for followers, from the metadata.
    endpoints: Arc<RwLock<HashMap<i32, String>>>,
    /// This broker's epoch (its registration), sent in every fetch.
    broker_epoch: Arc<AtomicI64>,
    /// The replica manager, set once it exists (it owns this manager).
    replicas: Arc<RwLock<std::sync::Weak<ReplicaManager>>>,
    fetchers: Mutex<HashMap<(i32, usize), FetcherHandle>>,
}

impl ReplicaFetcherManager {
    /// Fetcher tasks run on the runtime current here, if any (a broker
    /// always has one; unit tests of a single node need none).
    pub fn new(node_id: i32, settings: FetcherSettings) -> Self {
        ReplicaFetcherManager {
            node_id,
            settings,
            runtime: tokio::runtime::Handle::try_current().ok(),
            endpoints: Arc::default(),
            broker_epoch: Arc::new(AtomicI64::new(-1)),
            replicas: Arc::new(RwLock::new(std::sync::Weak::new())),
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    pub fn set_replica_manager(&self, rm: &Arc<ReplicaManager>) {
        *self.replicas.write() = Arc::downgrade(rm);
    }

    /// Takes the brokers' endpoints and this broker's epoch from a new
    /// metadata image.
    pub fn update_brokers(&self, image: &oxka_controller::image::MetadataImage) {
        let mut map = HashMap::new();
        for b in image.brokers.values() {
            if let Some(e) = b.endpoint(self.settings.listener.as_deref()) {
                map.insert(b.id, format!("{}:{}", e.host, e.port));
            }
            if b.id == self.node_id {
                self.broker_epoch.store(b.epoch, Ordering::Release);
            }
        }
        *self.endpoints.write() = map;
    }

    /// Starts fetching `partition` from `leader` in `leader_epoch`.
    pub fn add_partition(&self, partition: Arc<Partition>, leader: i32, leader_epoch: i32) {
        let tp = partition.tp.clone();
        self.remove_partition(&tp);
        let Some(runtime) = &self.runtime else {
            tracing::error!(partition = %tp, "no runtime to fetch on");
            return;
        };
        let idx = fetcher_index(&tp, self.settings.num_fetchers);
        let mut fetchers = self.fetchers.lock();
        let handle = fetchers.entry((leader, idx)).or_insert_with(|| {
            let entries: Entries = Arc::default();
            let wake = Arc::new(Notify::new());
            let task = ReplicaFetcher {
                node_id: self.node_id,
                leader,
                settings: self.settings.clone(),
                endpoints: self.endpoints.clone(),
                broker_epoch: self.broker_epoch.clone(),
                replicas: self.replicas.clone(),
                entries: entries.clone(),
                wake: wake.clone(),
            };
            FetcherHandle {
                entries,
                wake,
                task: runtime.spawn(task.run()),
            }
        });
        handle.entries.lock().insert(
            tp,
            FetchEntry {
                topic_id: partition.topic_id,
                partition,
                leader_epoch,
                retry_at: None,
            },
        );
        handle.wake.notify_one();
    }

    /// Stops fetching `tp` (this broker leads it now, or no longer hosts
    /// it); a fetcher left with nothing to fetch stops.
    pub fn remove_partition(&self, tp: &TopicPartition) {
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|_, h| {
            let mut entries = h.entries.lock();
            entries.remove(tp);
            if entries.is_empty() {
                h.task.abort();
                false
            } else {
                true
            }
        });
    }

    /// How many partitions are being fetched (tests, metrics).
    pub fn fetched_partitions(&self) -> usize {
        self.fetchers
            .lock()
            .values()
            .map(|h| h.entries.lock().len())
            .sum()
    }

    pub fn shutdown(&self) {
        for (_, h) in self.fetchers.lock().drain() {
            h.task.abort();
        }
    }
}

impl Drop for ReplicaFetcherManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Kafka spreads partitions over the fetchers of one leader by hash.
fn fetcher_index(tp: &TopicPartition, n: usize) -> usize {
    let mut h: u32 = 17;
    for b in tp.topic.bytes() {
        h = h.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    h = h.wrapping_mul(31).wrapping_add(tp.partition as u32);
    (h as usize) % n.max(1)
}

struct ReplicaFetcher {
    node_id: i32,
    leader: i32,
    settings: FetcherSettings,
    endpoints: Arc<RwLock<HashMap<i32, String>>>,
    broker_epoch: Arc<AtomicI64>,
    replicas: Arc<RwLock<std::sync::Weak<ReplicaManager>>>,
    entries: Entries,
    wake: Arc<Notify>,
}

/// How soon a partition is fetched again when its leader is behind this
/// follower on metadata (a new topic or leader epoch not applied there
/// yet): Kafka waits `replica.fetch.backoff.ms` (1 s), which made the
/// first acks=all write to a new topic take a second.
const LEADER_BEHIND_RETRY: Duration = Duration::from_millis(50);

/// Why a partition's fetch answer was not taken.
enum Failure {
    /// The leader does not know the topic, partition or epoch yet.
    LeaderBehind(ResponseError),
    Other(String),
}

/// The Fetch version followers send: ReplicaState (KIP-903) is v15+.
const REPLICA_FETCH_VERSION: i16 = 15;

impl ReplicaFetcher {
    async fn run(self) {
        let mut conn: Option<Connection> = None;
        loop {
            let now = Instant::now();
            let ready: Vec<(TopicPartition, FetchEntry)> = self
                .entries
                .lock()
                .iter()
                .filter(|(_, e)| e.retry_at.is_none_or(|t| t <= now))
                .map(|(tp, e)| (tp.clone(), e.clone()))
                .collect();
            if ready.is_empty() {
                // until the first partition's back-off ends, or a new one
                let next = self
                    .entries
                    .lock()
                    .values()
                    .filter_map(|e| e.retry_at)
                    .min()
                    .map_or(self.settings.backoff, |t| t.saturating_duration_since(now));
                let pause = next.clamp(
                    Duration::from_millis(1),
                    self.settings.backoff.max(Duration::from_millis(50)),
                );
                let _ = tokio::time::timeout(pause, self.wake.notified()).await;
                continue;
            }
            let Some(rm) = self.replicas.read().upgrade() else {
                return;
            };
            let c = match conn.take().filter(Connection::is_alive) {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(leader = self.leader, error = %e, "cannot reach the leader");
                        tokio::time::sleep(self.settings.backoff).await;
                        continue;
                    }
                },
            };
            let req = self.request(&ready);
            let timeout = self.settings.socket_timeout
                + Duration::from_millis(self.settings.max_wait_ms.max(0) as u64);
            let resp = tokio::time::timeout(timeout, c.send_at(req, REPLICA_FETCH_VERSION)).await;
            let resp = match resp {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::debug!(leader = self.leader, error = %e, "replica fetch failed");
                    tokio::time::sleep(self.settings.backoff).await;
                    continue;
                }
                Err(_) => {
                    tracing::debug!(leader = self.leader, "replica fetch timed out");
                    continue;
                }
            };
            conn = Some(c);
            if resp.error_code != 0 {
                tracing::debug!(
                    leader = self.leader,
                    code = resp.error_code,
                    "replica fetch refused"
                );
                self.back_off_all(&ready);
                continue;
            }
            let by_id: HashMap<(Uuid, i32), &(TopicPartition, FetchEntry)> = ready
                .iter()
                .map(|r| ((r.1.topic_id, r.0.partition), r))
                .collect();
            for topic in resp.responses {
                for p in topic.partitions {
                    let Some((tp, sent)) = by_id.get(&(topic.topic_id, p.partition_index)) else {
                        continue;
                    };
                    if !self.still_fetching(tp, sent.leader_epoch) {
                        continue;
                    }
                    match self.process(&rm, conn.as_ref(), tp, sent, p).await {
                        Ok(()) => {}
                        Err(Failure::LeaderBehind(err)) => {
                            // the leader has not applied the metadata this
                            // follower acts on yet: milliseconds, usually
                            tracing::debug!(partition = %tp, error = ?err, "the leader is behind on metadata; retrying soon");
                            self.back_off_for(tp, LEADER_BEHIND_RETRY.min(self.settings.backoff));
                        }
                        Err(Failure::Other(e)) => {
                            tracing::warn!(partition = %tp, error = %e, "replica fetch of the partition failed; backing off");
                            self.back_off(tp);
                        }
                    }
                }
            }
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let addr = self
            .endpoints
            .read()
            .get(&self.leader)
            .cloned()
            .ok_or_else(|| format!("no endpoint known for broker {}", self.leader))?;
        Connection::connect_secure(
            &addr,
            &format!("oxka-replica-fetcher-{}", self.node_id),
            &self.settings.security,
            Duration::from_secs(5),
            self.settings.socket_timeout,
            (self.settings.response_max_bytes as usize).saturating_add(1 << 20),
        )
        .await
        .map_err(|e| e.to_string())
    }

    fn request(&self, ready: &[(TopicPartition, FetchEntry)]) -> FetchRequest {
        let mut topics: HashMap<Uuid, FetchTopic> = HashMap::new();
        for (tp, e) in ready {
            let (fetch_offset, last_epoch, log_start) = {
                let log = e.partition.log.lock();
                (
                    log.log_end_offset(),
                    log.latest_epoch().unwrap_or(-1),
                    log.log_start_offset(),
                )
            };
            topics
                .entry(e.topic_id)
                .or_insert_with(|| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                        .with_topic_id(e.topic_id)
                })
                .partitions
                .push(
                    FetchPartition::default()
                        .with_partition(tp.partition)
                        .with_current_leader_epoch(e.leader_epoch)
                        .with_fetch_offset(fetch_offset)
                        .with_last_fetched_epoch(last_epoch)
                        .with_log_start_offset(log_start)
                        .with_partition_max_bytes(self.settings.partition_max_bytes),
                );
        }
        FetchRequest::default()
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(self.node_id))
                    .with_replica_epoch(self.broker_epoch.load(Ordering::Acquire)),
            )
            .with_max_wait_ms(self.settings.max_wait_ms)
            .with_min_bytes(self.settings.min_bytes)
            .with_max_bytes(self.settings.response_max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics.into_values().collect())
    }

    /// One partition's answer.
    async fn process(
        &self,
        rm: &ReplicaManager,
        conn: Option<&Connection>,
        tp: &TopicPartition,
        e: &FetchEntry,
        p: kafka_protocol::messages::fetch_response::PartitionData,
    ) -> Result<(), Failure> {
        let partition = &e.partition;
        match ResponseError::try_from_code(p.error_code) {
            None => {}
            Some(ResponseError::OffsetOutOfRange) => {
                let conn = conn.ok_or(Failure::Other("no connection".into()))?;
                return self
                    .reset_out_of_range(rm, conn, tp, e)
                    .await
                    .map_err(Failure::Other);
            }
            Some(
                err @ (ResponseError::UnknownTopicId
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::UnknownLeaderEpoch
                | ResponseError::NotLeaderOrFollower),
            ) => return Err(Failure::LeaderBehind(err)),
            Some(err) => {
                // a leader change in flight: the metadata will move or
                // re-epoch this partition
                return Err(Failure::Other(format!("the leader answered {err:?}")));
            }
        }
        if p.diverging_epoch.epoch >= 0 || p.diverging_epoch.end_offset >= 0 {
            let (own, leo) = {
                let log = partition.log.lock();
                (
                    log.end_offset_for_epoch(p.diverging_epoch.epoch),
                    log.log_end_offset(),
                )
            };
            let t = truncation_for(
                (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
                own,
                leo,
                partition.high_watermark(),
            );
            return rm
                .truncate_follower(partition, t)
                .map_err(|err| Failure::Other(err.to_string()));
        }
        let records = p.records.unwrap_or_default();
        let whole = whole_batches(&records);
        rm.append_as_follower(
            partition,
            &records[..whole],
            p.high_watermark,
            p.log_start_offset,
        )
        .map_err(|err| Failure::Other(err.to_string()))
    }

    /// The fetch offset is outside the leader's log: below its start (the
    /// leader deleted records this follower never had) start over there;
    /// above its end (only after an unclean election) cut to it.
    async fn reset_out_of_range(
        &self,
        rm: &ReplicaManager,
        conn: &Connection,
        tp: &TopicPartition,
        e: &FetchEntry,
    ) -> Result<(), String> {
        let earliest = self.list_offset(conn, tp, e.leader_epoch, -2).await?;
        let latest = self.list_offset(conn, tp, e.leader_epoch, -1).await?;
        let leo = e.partition.log.lock().log_end_offset();
        let t = if leo > latest {
            tracing::warn!(partition = %tp, leo, leader_end = latest, "the leader's log is shorter than this replica's (unclean election?)");
            Truncation::To(latest)
        } else {
            Truncation::Fully { start: earliest }
        };
        rm.truncate_follower(&e.partition, t)
            .map_err(|err| err.to_string())
    }

    async fn list_offset(
        &self,
        conn: &Connection,
        tp: &TopicPartition,
        leader_epoch: i32,
        timestamp: i64,
    ) -> Result<i64, String> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(self.node_id))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_current_leader_epoch(leader_epoch)
                    .with_timestamp(timestamp)])]);
        let resp = conn.send_at(req, 4).await.map_err(|e| e.to_string())?;
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or("empty ListOffsets answer")?;
        if p.error_code != 0 {
            return Err(format!("ListOffsets answered error {}", p.error_code));
        }
        Ok(p.offset)
    }

    fn still_fetching(&self, tp: &TopicPartition, epoch: i32) -> bool {
        self.entries
            .lock()
            .get(tp)
            .is_some_and(|e| e.leader_epoch == epoch)
    }

    fn back_off(&self, tp: &TopicPartition) {
        self.back_off_for(tp, self.settings.backoff);
    }

    fn back_off_for(&self, tp: &TopicPartition, pause: Duration) {
        if let Some(e) = self.entries.lock().get_mut(tp) {
            e.retry_at = Some(Instant::now() + pause);
        }
    }

    fn back_off_all(&self, ready: &[(TopicPartition, FetchEntry)]) {
        for (tp, _) in ready {
            self.back_off(tp);
        }
    }
}

/// The length of the whole batches at the front of `records` (a leader may
/// cut the last one short at the byte limit).
fn whole_batches(records: &Bytes) -> usize {
    let mut pos = 0usize;
    while records.len() >= pos + 12 {
        let len = i32::from_be_bytes([
            records[pos + 8],
            records[pos + 9],
            records[pos + 10],
            records[pos + 11],
        ]);
        if len < 0 {
            break;
        }
        let end = pos + 12 + len as usize;
        if end > records.len() {
            break;
        }
        pos = end;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_trailing_batches_are_left_out() {
        let mut b = Vec::new();
        for len in [20i32, 30] {
            b.extend_from_slice(&0i64.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b.extend(std::iter::repeat_n(0u8, len as usize));
        }
        let full = Bytes::from(b.clone());
        assert_eq!(whole_batches(&full), full.len());
        let cut = Bytes::from(b[..full.len() - 5].to_vec());
        assert_eq!(whole_batches(&cut), 32);
        assert_eq!(whole_batches(&Bytes::new()), 0);
    }
}
