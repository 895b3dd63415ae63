//! The broker's metrics, named as the Prometheus JMX exporter's Kafka rules
//! name Kafka's MBeans, so existing dashboards and alerts work unchanged
//! (`docs/metrics.md` lists them all with the MBean each mirrors).
//!
//! Two kinds, kept apart on purpose:
//!
//! * Events on the request path (requests, their latency, bytes and
//!   messages in and out, connections) are counted here, in plain atomics
//!   reached without a lookup: per-API handles sit in an array indexed by
//!   API key ([`RequestMetrics`]), per-topic handles ([`TopicStats`]) in
//!   each hosted [`crate::replica_manager::Partition`]. Recording takes no
//!   lock and allocates nothing (but once: an API's first request
//!   allocates the windows of its recent quantiles).
//! * Everything that is state (log sizes and offsets, partition and leader
//!   counts, under-replicated partitions, the controller's view, groups and
//!   their lag, the process) is read from the broker when `/metrics` is
//!   scraped ([`collect`]), never kept up to date on the hot path.
//!
//! `metrics.instrumentation.enable=false` turns the first kind off (every
//! record call returns at once); it exists to measure what they cost.

pub mod collect;
pub mod errors;
pub mod histogram;
pub mod process;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use parking_lot::RwLock;

pub use histogram::Histogram;

/// Kafka's BrokerTopicMetrics meters (as cumulative counts), for one topic
/// or for all topics together.
#[derive(Debug, Default)]
pub struct TopicCounters {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_rejected: AtomicU64,
    pub failed_produce_requests: AtomicU64,
    pub failed_fetch_requests: AtomicU64,
    pub total_produce_requests: AtomicU64,
    pub total_fetch_requests: AtomicU64,
    pub replication_bytes_in: AtomicU64,
    pub replication_bytes_out: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// One topic's counters, shared by the topic's hosted partitions; every
/// update also goes to the all-topics counters.
#[derive(Debug)]
pub struct TopicStats {
    enabled: bool,
    topic: TopicCounters,
    all: Arc<TopicCounters>,
}

impl TopicStats {
    pub fn counters(&self) -> &TopicCounters {
        &self.topic
    }

    fn both(&self, f: impl Fn(&TopicCounters)) {
        if self.enabled {
            f(&self.topic);
            f(&self.all);
        }
    }

    /// A produce request's records for one partition, appended as leader.
    pub fn produced(&self, messages: u64, bytes: u64) {
        self.both(|c| {
            add(&c.total_produce_requests, 1);
            add(&c.messages_in, messages);
            add(&c.bytes_in, bytes);
        });
    }

    /// A produce to one partition that the log refused; `rejected_bytes`
    /// when the records themselves were refused (invalid, too large).
    pub fn produce_failed(&self, rejected_bytes: Option<u64>) {
        self.both(|c| {
            add(&c.total_produce_requests, 1);
            add(&c.failed_produce_requests, 1);
            if let Some(b) = rejected_bytes {
                add(&c.bytes_rejected, b);
            }
        });
    }

    /// One partition of a Fetch answered with `bytes` of records.
    pub fn fetched(&self, from_follower: bool, bytes: u64, failed: bool) {
        self.both(|c| {
            add(&c.total_fetch_requests, 1);
            if failed {
                add(&c.failed_fetch_requests, 1);
            }
            if from_follower {
                add(&c.replication_bytes_out, bytes);
            } else {
                add(&c.bytes_out, bytes);
            }
        });
    }

    /// A follower appended `bytes` fetched from its leader.
    pub fn replicated_in(&self, bytes: u64) {
        self.both(|c| add(&c.replication_bytes_in, bytes));
    }
}

/// The per-topic stats of this broker (Kafka's BrokerTopicStats): a topic
/// gets its entry when its first partition is hosted here and loses it
/// when the topic is deleted.
#[derive(Debug)]
pub struct BrokerTopicStats {
    enabled: bool,
    all: Arc<TopicCounters>,
    topics: RwLock<HashMap<String, Arc<TopicStats>>>,
}

impl BrokerTopicStats {
    pub fn new(enabled: bool) -> BrokerTopicStats {
        BrokerTopicStats {
            enabled,
            all: Arc::new(TopicCounters::default()),
            topics: RwLock::new(HashMap::new()),
        }
    }

    /// The handle a partition keeps (looked up once, when it is hosted).
    pub fn topic(&self, topic: &str) -> Arc<TopicStats> {
        if let Some(s) = self.topics.read().get(topic) {
            return s.clone();
        }
        self.topics
            .write()
            .entry(topic.to_string())
            .or_insert_with(|| {
                Arc::new(TopicStats {
                    enabled: self.enabled,
                    topic: TopicCounters::default(),
                    all: self.all.clone(),
                })
            })
            .clone()
    }

    pub fn remove_topic(&self, topic: &str) {
        self.topics.write().remove(topic);
    }

    pub fn all_topics(&self) -> &TopicCounters {
        &self.all
    }

    /// (topic, stats), sorted by topic (scrape time).
    pub fn snapshot(&self) -> Vec<(String, Arc<TopicStats>)> {
        let mut v: Vec<(String, Arc<TopicStats>)> = self
            .topics
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Highest request version counted per API (higher ones share the last
/// slot; no API is near it).
pub const MAX_VERSION: usize = 31;
/// Error codes counted: -1 (UNKNOWN_SERVER_ERROR) up to this.
pub const MAX_ERROR_CODE: i16 = 159;

/// Kafka's RequestMetrics for one API: RequestsPerSec by version,
/// ErrorsPerSec by error code, and the time a request spends in each stage.
#[derive(Debug)]
pub struct ApiMetrics {
    pub requests: [AtomicU64; MAX_VERSION + 1],
    /// Index `code + 1`.
    pub errors: Box<[AtomicU64]>,
    pub request_queue_time: Histogram,
    pub local_time: Histogram,
    pub remote_time: Histogram,
    pub response_queue_time: Histogram,
    pub response_send_time: Histogram,
    pub total_time: Histogram,
}

impl ApiMetrics {
    fn new() -> ApiMetrics {
        ApiMetrics {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: (-1..=MAX_ERROR_CODE).map(|_| AtomicU64::new(0)).collect(),
            request_queue_time: Histogram::default(),
            local_time: Histogram::default(),
            remote_time: Histogram::default(),
            response_queue_time: Histogram::default(),
            response_send_time: Histogram::default(),
            total_time: Histogram::default(),
        }
    }
}

/// When a request passed each stage (Kafka's RequestChannel.Request
/// timestamps), to split its total time.
#[derive(Debug, Clone, Copy)]
pub struct RequestTiming {
    pub api_key: i16,
    /// Its whole frame was read.
    pub received: Instant,
    /// It got a `queued.max.requests` slot and went to its handler.
    pub dequeued: Instant,
    /// It was parked (acks=all, a long poll, a join): local time ends and
    /// remote time begins.
    pub parked: Option<Instant>,
    /// Its handler returned.
    pub handled: Instant,
    /// A follower's Fetch (FetchFollower rather than FetchConsumer).
    pub follower_fetch: bool,
}

/// Every API's [`ApiMetrics`], indexed by API key. Fetch is split as
/// Kafka splits it: `FetchConsumer` and `FetchFollower`, no `Fetch`.
#[derive(Debug)]
pub struct RequestMetrics {
    enabled: bool,
    apis: Box<[Option<ApiMetrics>]>,
    fetch_consumer: ApiMetrics,
    fetch_follower: ApiMetrics,
}

impl RequestMetrics {
    fn new(enabled: bool) -> RequestMetrics {
        let max = crate::request::SUPPORTED_APIS
            .iter()
            .map(|k| *k as i16)
            .max()
            .unwrap_or(0) as usize;
        let mut apis: Vec<Option<ApiMetrics>> = (0..=max).map(|_| None).collect();
        for k in crate::request::SUPPORTED_APIS {
            if *k != ApiKey::Fetch {
                apis[*k as i16 as usize] = Some(ApiMetrics::new());
            }
        }
        RequestMetrics {
            enabled,
            apis: apis.into_boxed_slice(),
            fetch_consumer: ApiMetrics::new(),
            fetch_follower: ApiMetrics::new(),
        }
    }

    /// The metrics of a request of `api_key` (for Fetch, by who fetches).
    pub fn api(&self, api_key: i16, follower_fetch: bool) -> Option<&ApiMetrics> {
        if !self.enabled || api_key < 0 {
            return None;
        }
        if api_key == ApiKey::Fetch as i16 {
            return Some(if follower_fetch {
                &self.fetch_follower
            } else {
                &self.fetch_consumer
            });
        }
        self.apis.get(api_key as usize).and_then(Option::as_ref)
    }

    /// (Kafka's request name, its metrics) for every API oxka serves
    /// (scrape time).
    pub fn all(&self) -> impl Iterator<Item = (String, &ApiMetrics)> {
        crate::request::SUPPORTED_APIS
            .iter()
            .filter_map(|k| {
                Some((
                    format!("{k:?}"),
                    self.apis.get(*k as i16 as usize)?.as_ref()?,
                ))
            })
            .chain([
                ("FetchConsumer".to_string(), &self.fetch_consumer),
                ("FetchFollower".to_string(), &self.fetch_follower),
            ])
    }

    fn count_request(m: &ApiMetrics, version: i16) {
        let v = (version.max(0) as usize).min(MAX_VERSION);
        m.requests[v].fetch_add(1, Ordering::Relaxed);
    }

    /// A request of a served API arrived (Fetch is counted by its handler,
    /// which knows whether a follower sent it).
    pub fn received(&self, api_key: i16, version: i16) {
        if api_key == ApiKey::Fetch as i16 {
            return;
        }
        if let Some(m) = self.api(api_key, false) {
            Self::count_request(m, version);
        }
    }

    /// A Fetch arrived.
    pub fn fetch_received(&self, from_follower: bool, version: i16) {
        if let Some(m) = self.api(ApiKey::Fetch as i16, from_follower) {
            Self::count_request(m, version);
        }
    }

    fn count_error(m: &ApiMetrics, code: i16) {
        let i = (code.clamp(-1, MAX_ERROR_CODE) + 1) as usize;
        m.errors[i].fetch_add(1, Ordering::Relaxed);
    }

    /// An error code the response carries (Kafka counts NONE too).
    pub fn error(&self, api_key: ApiKey, code: i16) {
        if let Some(m) = self.api(api_key as i16, false) {
            Self::count_error(m, code);
        }
    }

    /// An error code a Fetch response carries.
    pub fn fetch_error(&self, from_follower: bool, code: i16) {
        if let Some(m) = self.api(ApiKey::Fetch as i16, from_follower) {
            Self::count_error(m, code);
        }
    }

    /// The request's response was written (`picked`: taken from the
    /// connection's response queue; `sent`: written), or it had none
    /// (both `None`).
    pub fn completed(&self, t: &RequestTiming, picked: Option<Instant>, sent: Option<Instant>) {
        let Some(m) = self.api(t.api_key, t.follower_fetch) else {
            return;
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let picked = picked.unwrap_or(t.handled);
        let sent = sent.unwrap_or(picked);
        // every stage is stamped with the request's end: no clock read here
        m.request_queue_time
            .observe_at(ms(t.dequeued.saturating_duration_since(t.received)), sent);
        let local_end = t.parked.unwrap_or(t.handled);
        m.local_time
            .observe_at(ms(local_end.saturating_duration_since(t.dequeued)), sent);
        m.remote_time.observe_at(
            ms(t.parked
                .map_or(Duration::ZERO, |p| t.handled.saturating_duration_since(p))),
            sent,
        );
        m.response_queue_time
            .observe_at(ms(picked.saturating_duration_since(t.handled)), sent);
        m.response_send_time
            .observe_at(ms(sent.saturating_duration_since(picked)), sent);
        m.total_time
            .observe_at(ms(sent.saturating_duration_since(t.received)), sent);
    }
}

/// One Kafka listener's connection counts (Kafka's socket-server-metrics).
#[derive(Debug)]
pub struct ListenerStats {
    pub name: String,
    pub created: AtomicU64,
    pub closed: AtomicU64,
}

/// Network metrics that are events.
#[derive(Debug)]
pub struct NetworkMetrics {
    enabled: bool,
    listeners: RwLock<Vec<Arc<ListenerStats>>>,
    /// Requests read and waiting for a `queued.max.requests` slot.
    pub request_queue_size: AtomicI64,
}

impl NetworkMetrics {
    /// The handle a listener's accept loop keeps.
    pub fn listener(&self, name: &str) -> Arc<ListenerStats> {
        let mut l = self.listeners.write();
        if let Some(s) = l.iter().find(|s| s.name == name) {
            return s.clone();
        }
        let s = Arc::new(ListenerStats {
            name: name.to_string(),
            created: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        });
        l.push(s.clone());
        s
    }

    pub fn listeners(&self) -> Vec<Arc<ListenerStats>> {
        self.listeners.read().clone()
    }

    pub fn opened(&self, l: &ListenerStats) {
        if self.enabled {
            l.created.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn closed(&self, l: &ListenerStats) {
        if self.enabled {
            l.closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request waits for a slot (only called when it must wait).
    pub fn queued(&self, delta: i64) {
        if self.enabled {
            self.request_queue_size.fetch_add(delta, Ordering::Relaxed);
        }
    }
}

/// The event metrics of one broker.
#[derive(Debug)]
pub struct BrokerMetrics {
    pub enabled: bool,
    pub requests: RequestMetrics,
    pub network: NetworkMetrics,
    /// The log cleaner, once started (its totals are read at scrape time).
    pub cleaner: std::sync::OnceLock<Arc<oxka_log::cleaner::LogCleaner>>,
    pub started: std::time::SystemTime,
    /// The runtime's idle share, for the idle-percent gauges.
    pub runtime_idle: RuntimeIdle,
}

/// How much of the last minute the tokio runtime's worker threads spent
/// parked with nothing to run: oxka's stand-in for Kafka's
/// NetworkProcessorAvgIdlePercent and RequestHandlerAvgIdlePercent. Kafka
/// has a pool of network threads and one of request handler threads and
/// reports each one's idle share; oxka runs sockets, requests and
/// handlers as tasks on one pool of workers, so both gauges report that
/// pool's. Time in the blocking pool (file deletion, metadata commits)
/// is not in it.
///
/// Sampled at scrapes, not on the request path: each scrape notes the
/// workers' total busy time (at most one note a second, the last 60 s
/// kept) and the share is taken against the oldest note of the last
/// minute, or against the broker's start at the first scrape.
#[derive(Debug)]
pub struct RuntimeIdle {
    started: Instant,
    /// (when, the workers' summed busy time then), oldest first.
    samples: parking_lot::Mutex<std::collections::VecDeque<(Instant, Duration)>>,
}

/// How far back the idle share looks.
const IDLE_WINDOW: Duration = Duration::from_secs(60);

impl RuntimeIdle {
    fn new() -> RuntimeIdle {
        RuntimeIdle {
            started: Instant::now(),
            samples: Default::default(),
        }
    }

    /// The idle share (0 to 1) of `runtime`'s workers over the last
    /// minute, as of `now`.
    pub fn share(&self, runtime: &tokio::runtime::RuntimeMetrics, now: Instant) -> f64 {
        let workers = runtime.num_workers();
        let busy: Duration = (0..workers)
            .map(|w| runtime.worker_total_busy_duration(w))
            .sum();
        self.share_of(workers, busy, now)
    }

    fn share_of(&self, workers: usize, busy: Duration, now: Instant) -> f64 {
        let mut samples = self.samples.lock();
        while samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > IDLE_WINDOW)
        {
            samples.pop_front();
        }
        let (since, busy_then) = samples
            .front()
            .copied()
            .unwrap_or((self.started, Duration::ZERO));
        if samples
            .back()
            .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= Duration::from_secs(1))
        {
            samples.push_back((now, busy));
        }
        let capacity = now.saturating_duration_since(since).as_secs_f64() * workers as f64;
        if capacity <= 0.0 {
            return 1.0;
        }
        let used = busy.saturating_sub(busy_then).as_secs_f64();
        (1.0 - used / capacity).clamp(0.0, 1.0)
    }
}

impl BrokerMetrics {
    pub fn new(enabled: bool) -> BrokerMetrics {
        BrokerMetrics {
            enabled,
            requests: RequestMetrics::new(enabled),
            network: NetworkMetrics {
                enabled,
                listeners: RwLock::new(Vec::new()),
                request_queue_size: AtomicI64::new(0),
            },
            cleaner: std::sync::OnceLock::new(),
            started: std::time::SystemTime::now(),
            runtime_idle: RuntimeIdle::new(),
        }
    }

    /// `metrics.instrumentation.enable` (default true).
    pub fn enabled_in(config: &crate::config::KafkaConfig) -> bool {
        config
            .value("metrics.instrumentation.enable")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_share_looks_back_a_minute() {
        let idle = RuntimeIdle::new();
        let t0 = idle.started;
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        // 2 workers, 10 s: 5 s busy in all is a quarter of their time
        assert_eq!(idle.share_of(2, Duration::from_secs(5), s(10)), 0.75);
        // from that note on: 20 s more, 20 s busy more: half
        assert_eq!(idle.share_of(2, Duration::from_secs(25), s(30)), 0.5);
        // a scrape within the second adds no note
        idle.share_of(
            2,
            Duration::from_secs(25),
            s(30) + Duration::from_millis(10),
        );
        assert_eq!(idle.samples.lock().len(), 2);
        // at 90 s the note of 10 s is past the minute: from the one at
        // 30 s, 120 s busy of 120: no idle time
        assert_eq!(idle.share_of(2, Duration::from_secs(145), s(90)), 0.0);
        // at 100 s, from the note at 90 s: nothing busy since
        assert_eq!(idle.share_of(2, Duration::from_secs(145), s(100)), 1.0);
        assert_eq!(idle.samples.lock().len(), 2);
    }

    #[test]
    fn topic_updates_reach_the_all_topics_counters() {
        let stats = BrokerTopicStats::new(true);
        let a = stats.topic("a");
        let b = stats.topic("b");
        assert!(Arc::ptr_eq(&a, &stats.topic("a")));
        a.produced(3, 300);
        b.produced(2, 200);
        b.produce_failed(Some(50));
        a.fetched(false, 100, false);
        a.fetched(true, 40, false);
        let all = stats.all_topics();
        assert_eq!(all.messages_in.load(Ordering::Relaxed), 5);
        assert_eq!(all.bytes_in.load(Ordering::Relaxed), 500);
        assert_eq!(all.bytes_rejected.load(Ordering::Relaxed), 50);
        assert_eq!(all.total_produce_requests.load(Ordering::Relaxed), 3);
        assert_eq!(all.bytes_out.load(Ordering::Relaxed), 100);
        assert_eq!(all.replication_bytes_out.load(Ordering::Relaxed), 40);
        assert_eq!(a.counters().messages_in.load(Ordering::Relaxed), 3);
        stats.remove_topic("a");
        assert_eq!(stats.snapshot().len(), 1);
    }

    #[test]
    fn disabled_records_nothing() {
        let stats = BrokerTopicStats::new(false);
        stats.topic("a").produced(3, 300);
        assert_eq!(stats.all_topics().messages_in.load(Ordering::Relaxed), 0);
        let m = BrokerMetrics::new(false);
        m.requests.received(ApiKey::Produce as i16, 9);
        assert!(m.requests.api(ApiKey::Produce as i16, false).is_none());
    }

    #[test]
    fn request_stages_add_up() {
        let m = BrokerMetrics::new(true);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let t = RequestTiming {
            api_key: ApiKey::Produce as i16,
            received: t0,
            dequeued: t0 + ms(1),
            parked: Some(t0 + ms(3)),
            handled: t0 + ms(10),
            follower_fetch: false,
        };
        m.requests.received(ApiKey::Produce as i16, 9);
        m.requests
            .completed(&t, Some(t0 + ms(11)), Some(t0 + ms(15)));
        let p = m.requests.api(ApiKey::Produce as i16, false).unwrap();
        assert_eq!(p.requests[9].load(Ordering::Relaxed), 1);
        let sum = |h: &Histogram| h.snapshot().sum;
        let parts = sum(&p.request_queue_time)
            + sum(&p.local_time)
            + sum(&p.remote_time)
            + sum(&p.response_queue_time)
            + sum(&p.response_send_time);
        assert!((parts - sum(&p.total_time)).abs() < 1e-6, "{parts}");
        assert!((sum(&p.total_time) - 15.0).abs() < 1e-6);
        assert!((sum(&p.remote_time) - 7.0).abs() < 1e-6);
    }
}
