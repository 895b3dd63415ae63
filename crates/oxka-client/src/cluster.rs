//! The part every client shares: bootstrap, the connection pool and the
//! metadata cache.
//!
//! Metadata is an immutable snapshot behind an `Arc` swapped on refresh, so
//! readers never wait for a refresh in progress. Refreshes are
//! single-flight (one request at a time, later callers reuse its result
//! when it is fresh enough) so a burst of NOT_LEADER_OR_FOLLOWER errors
//! does not become a burst of Metadata requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    metadata_request::MetadataRequestTopic, ApiKey, BrokerId, FindCoordinatorRequest,
    MetadataRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use uuid::Uuid;

use crate::config::CommonConfig;
use crate::connection::Connection;
use crate::error::{Error, KafkaCode, Result};

/// One broker as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: i32,
    /// -1 while no leader is available.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    pub error: Option<KafkaCode>,
}

/// One topic as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    pub error: Option<KafkaCode>,
    /// Sorted by partition id.
    pub partitions: Vec<PartitionInfo>,
}

/// A metadata snapshot.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    pub topics: BTreeMap<String, TopicInfo>,
    /// When the snapshot was fetched, per topic (for `metadata.max.age.ms`).
    fetched: HashMap<String, Instant>,
    all_fetched: Option<Instant>,
}

impl Metadata {
    /// The topic, if it exists and has no topic-level error.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name).filter(|t| t.error.is_none())
    }
}

pub(crate) struct Cluster {
    pub cfg: CommonConfig,
    conns: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    meta: RwLock<Arc<Metadata>>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Producers ask brokers to auto-create topics, as Java's producer does.
    pub auto_create: bool,
}

impl Cluster {
    pub fn new(cfg: CommonConfig, auto_create: bool) -> Cluster {
        Cluster {
            cfg,
            conns: Default::default(),
            meta: RwLock::new(Arc::new(Metadata::default())),
            refresh_lock: Default::default(),
            auto_create,
        }
    }

    /// The current snapshot (possibly empty or stale).
    pub fn metadata(&self) -> Arc<Metadata> {
        match self.meta.read() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Installs metadata without a broker (unit tests of the accumulator).
    #[cfg(test)]
    pub fn set_test_metadata(&self, topics: &[(&str, i32)]) {
        let now = Instant::now();
        let mut m = Metadata {
            controller_id: 1,
            ..Default::default()
        };
        m.brokers.insert(
            1,
            BrokerInfo {
                id: 1,
                host: "127.0.0.1".into(),
                port: 1,
                rack: None,
            },
        );
        for (name, n) in topics {
            m.fetched.insert(name.to_string(), now);
            m.topics.insert(
                name.to_string(),
                TopicInfo {
                    name: name.to_string(),
                    id: Uuid::nil(),
                    internal: false,
                    error: None,
                    partitions: (0..*n)
                        .map(|id| PartitionInfo {
                            id,
                            leader: 1,
                            leader_epoch: 0,
                            replicas: vec![1],
                            isr: vec![1],
                            offline: vec![],
                            error: None,
                        })
                        .collect(),
                },
            );
        }
        if let Ok(mut g) = self.meta.write() {
            *g = Arc::new(m);
        }
    }

    /// A live connection to `addr`, opened if needed.
    pub async fn conn_to_addr(&self, addr: &str) -> Result<Arc<Connection>> {
        if let Some(c) = self.conns.lock().await.get(addr) {
            if c.is_alive() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(
            Connection::connect_secure(
                addr,
                &self.cfg.client_id,
                &self.cfg.security,
                self.cfg.connect_timeout,
                self.cfg.request_timeout,
                self.cfg.max_response_size,
            )
            .await?,
        );
        self.conns.lock().await.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// A connection to broker `id`, refreshing metadata once if the broker
    /// is unknown.
    pub async fn conn_to_broker(&self, id: i32) -> Result<Arc<Connection>> {
        let mut addr = self.metadata().brokers.get(&id).map(|b| b.addr());
        if addr.is_none() {
            self.refresh(None).await?;
            addr = self.metadata().brokers.get(&id).map(|b| b.addr());
        }
        let addr = addr.ok_or_else(|| {
            Error::Protocol(format!("broker {id} is not in the cluster metadata"))
        })?;
        self.conn_to_addr(&addr).await
    }

    /// Any reachable broker: known brokers first, then the bootstrap list.
    pub async fn any_conn(&self) -> Result<Arc<Connection>> {
        let meta = self.metadata();
        let mut candidates: Vec<String> = meta.brokers.values().map(|b| b.addr()).collect();
        for b in &self.cfg.bootstrap {
            if !candidates.contains(b) {
                candidates.push(b.clone());
            }
        }
        let mut last = None;
        for addr in candidates {
            match self.conn_to_addr(&addr).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "broker unreachable");
                    last = Some(e);
                }
            }
        }
        Err(match last {
            Some(Error::Connect { reason, .. }) => {
                Error::NoBrokers(format!("{} ({reason})", self.cfg.bootstrap.join(",")))
            }
            Some(e) => e,
            None => Error::NoBrokers(self.cfg.bootstrap.join(",")),
        })
    }

    /// Sends to any broker, retrying once on another connection if the
    /// first one breaks.
    pub async fn send_any<R: Request + Clone>(&self, req: R) -> Result<R::Response> {
        let conn = self.any_conn().await?;
        match conn.send(req.clone()).await {
            Err(Error::Disconnected { .. }) => self.any_conn().await?.send(req).await,
            r => r,
        }
    }

    /// Sends to the controller (admin requests that change topics).
    pub async fn send_controller<R: Request + Clone>(&self, req: R) -> Result<R::Response> {
        let meta = self.refresh_if_stale(None).await?;
        if meta.controller_id >= 0 {
            if let Ok(c) = self.conn_to_broker(meta.controller_id).await {
                return c.send(req).await;
            }
        }
        self.send_any(req).await
    }

    /// Fetches metadata for `topics` (all topics for `None`) and merges it
    /// into the snapshot.
    pub async fn refresh(&self, topics: Option<&[String]>) -> Result<Arc<Metadata>> {
        let started = Instant::now();
        let _guard = self.refresh_lock.lock().await;
        // Someone else refreshed what we need while we waited.
        {
            let m = self.metadata();
            let covered = match topics {
                None => m.all_fetched.is_some_and(|t| t >= started),
                Some(ts) => ts
                    .iter()
                    .all(|t| m.fetched.get(t).is_some_and(|f| *f >= started)),
            };
            if covered {
                return Ok(m);
            }
        }
        let mut req = MetadataRequest::default();
        req.allow_auto_topic_creation = self.auto_create;
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut mt = MetadataRequestTopic::default();
                    mt.name = Some(TopicName(StrBytes::from_string(t.clone())));
                    mt
                })
                .collect()
        });
        let resp = self.send_any(req).await?;
        let now = Instant::now();
        let mut next = (*self.metadata()).clone();
        next.cluster_id = resp.cluster_id.map(|s| s.to_string());
        next.controller_id = resp.controller_id.0;
        next.brokers = resp
            .brokers
            .into_iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerInfo {
                        id: b.node_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        if topics.is_none() {
            next.topics.clear();
            next.fetched.clear();
            next.all_fetched = Some(now);
        }
        for t in resp.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else {
                continue;
            };
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    id: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                    error: KafkaCode::from_code(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            next.fetched.insert(name.clone(), now);
            next.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    id: t.topic_id,
                    internal: t.is_internal,
                    error: KafkaCode::from_code(t.error_code),
                    partitions,
                },
            );
        }
        let next = Arc::new(next);
        match self.meta.write() {
            Ok(mut m) => *m = next.clone(),
            Err(p) => *p.into_inner() = next.clone(),
        }
        Ok(next)
    }

    /// Refreshes when the snapshot lacks the topics or is older than
    /// `metadata.max.age.ms`.
    pub async fn refresh_if_stale(&self, topics: Option<&[String]>) -> Result<Arc<Metadata>> {
        let m = self.metadata();
        let max_age = self.cfg.metadata_max_age;
        let fresh = |t: Option<&Instant>| t.is_some_and(|t| t.elapsed() < max_age);
        let ok = match topics {
            None => fresh(m.all_fetched.as_ref()),
            Some(ts) => ts.iter().all(|t| {
                fresh(m.fetched.get(t).or(m.all_fetched.as_ref())) && m.topics.contains_key(t)
            }),
        };
        if ok && !m.brokers.is_empty() {
            Ok(m)
        } else {
            self.refresh(topics).await
        }
    }

    /// A topic's metadata, failing with the broker's error when it does
    /// not exist.
    pub async fn topic(&self, name: &str) -> Result<TopicInfo> {
        let names = [name.to_string()];
        let m = self.refresh_if_stale(Some(&names)).await?;
        match m.topics.get(name) {
            Some(t) => match t.error {
                None => Ok(t.clone()),
                Some(code) => Err(Error::kafka(code.0, None, format!("topic `{name}`"))),
            },
            None => Err(Error::kafka(
                KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                None,
                format!("topic `{name}`"),
            )),
        }
    }

    /// Finds the coordinator of a consumer group.
    pub async fn find_coordinator(&self, group: &str) -> Result<(i32, Arc<Connection>)> {
        let deadline = Instant::now() + self.cfg.request_timeout;
        self.find_coordinator_of(CoordinatorType::Group, group, deadline)
            .await
    }

    /// Finds the coordinator of `key` (a group id or a transactional id),
    /// retrying retriable errors until `deadline`.
    pub async fn find_coordinator_of(
        &self,
        kind: CoordinatorType,
        key: &str,
        deadline: Instant,
    ) -> Result<(i32, Arc<Connection>)> {
        loop {
            let err = match self.find_coordinator_once(kind, key).await {
                Ok(found) => return Ok(found),
                Err(e) => e,
            };
            if !err.is_retriable() || Instant::now() >= deadline {
                return Err(err);
            }
            tokio::time::sleep(self.cfg.retry_backoff.max(Duration::from_millis(50))).await;
        }
    }

    /// One FindCoordinator exchange (key type 0: group, 1: transaction).
    pub async fn find_coordinator_once(
        &self,
        kind: CoordinatorType,
        key: &str,
    ) -> Result<(i32, Arc<Connection>)> {
        let conn = self.any_conn().await?;
        let v = conn.version_for(ApiKey::FindCoordinator)?;
        if kind == CoordinatorType::Transaction && v < 1 {
            return Err(Error::UnsupportedApi {
                api: "FindCoordinator (transaction key type)".into(),
                addr: conn.addr.clone(),
                min: 1,
                max: 4,
            });
        }
        let mut req = FindCoordinatorRequest::default();
        req.key_type = kind as i8;
        if v >= 4 {
            req.coordinator_keys = vec![StrBytes::from_string(key.to_string())];
        } else {
            req.key = StrBytes::from_string(key.to_string());
        }
        let resp = conn.send_at(req, v).await?;
        let (code, msg, node, host, port) = if v >= 4 {
            let c =
                resp.coordinators.into_iter().next().ok_or_else(|| {
                    Error::Protocol("FindCoordinator returned no coordinator".into())
                })?;
            (c.error_code, c.error_message, c.node_id, c.host, c.port)
        } else {
            (
                resp.error_code,
                resp.error_message,
                resp.node_id,
                resp.host,
                resp.port,
            )
        };
        if code == 0 {
            let addr = format!("{host}:{port}");
            let BrokerId(id) = node;
            return Ok((id, self.conn_to_addr(&addr).await?));
        }
        let what = match kind {
            CoordinatorType::Group => "group",
            CoordinatorType::Transaction => "transactional id",
        };
        Err(Error::kafka(
            code,
            msg.map(|m| m.to_string()),
            format!("finding the coordinator of {what} `{key}`"),
        ))
    }
}

/// FindCoordinator's key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoordinatorType {
    Group = 0,
    Transaction = 1,
}
