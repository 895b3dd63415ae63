//! Kafka's connection quotas (`ConnectionQuotas`):
//! - `max.connections` (broker-wide) and `listener.name.<l>.max.connections`
//!   (KIP-402; a listener without its own limit has the broker's): an
//!   acceptor at a limit holds its accepted connection until a slot frees,
//!   so further connections wait in the listen backlog. The inter-broker
//!   listener, when there are other listeners, counts only against its own
//!   limit; when it takes the broker over `max.connections`, the least
//!   recently active connection of another listener is closed (Kafka's
//!   processors close their least recently used one).
//! - `max.connections.per.ip` and `max.connections.per.ip.overrides`: a
//!   connection over its address's limit is closed at once.
//! - `max.connection.creation.rate` and its `listener.name.<l>.` form
//!   (KIP-612): every accepted connection is recorded in the broker's and
//!   its listener's rate (the inter-broker listener's in its listener's
//!   only); over a bound, the acceptor delays the connection by the
//!   throttle time (at most one quota window) instead of refusing it.
//!
//! Limits are read at every accept, so dynamic changes (AlterConfigs)
//! apply to the next connection.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::KafkaConfig;
use crate::rate::{RateWindows, SampledRate};

#[derive(Debug, thiserror::Error)]
#[error("too many connections from {ip} (max.connections.per.ip {limit})")]
pub struct TooManyConnections {
    pub ip: IpAddr,
    pub limit: usize,
}

/// A connection of a listener that may be closed for the inter-broker
/// listener's sake.
struct Closable {
    close: Arc<Notify>,
    activity: Activity,
}

/// When a connection last read a request, in ms on the quotas' clock:
/// the least recently active one is closed first.
#[derive(Clone)]
pub struct Activity {
    started: std::time::Instant,
    last_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Activity {
    fn new(started: std::time::Instant) -> Activity {
        let a = Activity {
            started,
            last_ms: Arc::default(),
        };
        a.touch();
        a
    }

    /// Notes a request read now.
    pub fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    fn last_ms(&self) -> u64 {
        self.last_ms.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    per_listener: HashMap<String, usize>,
    broker_rate: SampledRate,
    listener_rates: HashMap<String, SampledRate>,
    /// Open connections of unprotected listeners, oldest first.
    closable: BTreeMap<u64, Closable>,
    /// Connections told to close that have not closed yet.
    closing: usize,
    next_id: u64,
}

pub struct ConnectionQuotas {
    config: Arc<KafkaConfig>,
    windows: RateWindows,
    /// The inter-broker listener, exempt from `max.connections` and the
    /// broker-wide creation rate when there are other listeners (KIP-402).
    protected: Option<String>,
    state: Mutex<State>,
    /// The rates' clock.
    started: std::time::Instant,
    /// Woken when a connection closes, for acceptors at a limit.
    freed: Notify,
}

/// Held for the life of a connection; gives its place back on drop.
pub struct ConnectionGuard {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
    listener: String,
    id: u64,
    close: Arc<Notify>,
    activity: Activity,
}

impl ConnectionGuard {
    /// What the connection stamps at every request it reads.
    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }

    /// Completes when the quotas close this connection (the inter-broker
    /// listener needed its place under `max.connections`).
    pub async fn closed_by_quotas(&self) {
        self.close.notified().await
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut s = self.quotas.state.lock();
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
        if let Some(n) = s.per_listener.get_mut(&self.listener) {
            *n = n.saturating_sub(1);
        }
        let protected = self.quotas.is_protected(&self.listener);
        if !protected && s.closable.remove(&self.id).is_none() {
            // it was told to close
            s.closing = s.closing.saturating_sub(1);
        }
        drop(s);
        self.quotas.freed.notify_waiters();
    }
}

fn int_limit(value: Option<String>) -> usize {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(usize::MAX, |n| n.max(0) as usize)
}

/// `max.connections.per.ip.overrides`: `host:limit,...`; a host name is
/// resolved to its addresses. Entries that do not parse were refused by
/// validation; here they are skipped.
fn override_for(value: &str, ip: IpAddr) -> Option<usize> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .find_map(|entry| {
            let (host, n) = entry.rsplit_once(':')?;
            let n = n.trim().parse::<usize>().ok()?;
            let host = host.trim().trim_start_matches('[').trim_end_matches(']');
            let matches = match host.parse::<IpAddr>() {
                Ok(addr) => addr == ip,
                Err(_) => (host, 0)
                    .to_socket_addrs()
                    .map(|mut addrs| addrs.any(|a| a.ip() == ip))
                    .unwrap_or(false),
            };
            matches.then_some(n)
        })
}

impl ConnectionQuotas {
    pub fn new(config: Arc<KafkaConfig>) -> Arc<Self> {
        let windows = RateWindows::from_config(&config);
        // Kafka protects the inter-broker listener only beside others
        let protected = config
            .inter_broker_listener
            .clone()
            .filter(|_| config.listeners.len() > 1);
        Arc::new(ConnectionQuotas {
            config,
            windows,
            protected,
            state: Mutex::new(State {
                total: 0,
                per_ip: HashMap::new(),
                per_listener: HashMap::new(),
                broker_rate: SampledRate::new(windows),
                listener_rates: HashMap::new(),
                closable: BTreeMap::new(),
                closing: 0,
                next_id: 0,
            }),
            started: std::time::Instant::now(),
            freed: Notify::new(),
        })
    }

    fn is_protected(&self, listener: &str) -> bool {
        self.protected.as_deref() == Some(listener)
    }

    fn broker_max(&self) -> usize {
        int_limit(self.config.value("max.connections"))
    }

    fn listener_max(&self, listener: &str) -> usize {
        int_limit(self.config.listener_value(listener, "max.connections"))
    }

    fn slot_available(&self, s: &State, listener: &str) -> bool {
        let on_listener = s.per_listener.get(listener).copied().unwrap_or(0);
        if on_listener >= self.listener_max(listener) {
            false
        } else if self.is_protected(listener) {
            true
        } else {
            s.total < self.broker_max()
        }
    }

    /// KIP-612: records a connection accepted on `listener` in the
    /// creation rates and returns how long the acceptor delays it. The
    /// listener's rate (`listener.name.<l>.max.connection.creation.rate`,
    /// else the broker's value) always; the broker-wide rate unless the
    /// listener is the protected inter-broker listener; the longer delay.
    pub fn creation_delay(&self, listener: &str) -> Duration {
        self.creation_delay_at(listener, self.started.elapsed().as_millis() as u64)
    }

    fn creation_delay_at(&self, listener: &str, now_ms: u64) -> Duration {
        let bound = |v: Option<String>| {
            v.and_then(|v| v.trim().parse::<i64>().ok())
                .map_or(f64::from(i32::MAX), |n| n as f64)
        };
        let max_ms = self.windows.window_ms;
        let broker_bound = bound(self.config.value("max.connection.creation.rate"));
        let listener_bound = bound(
            self.config
                .listener_value(listener, "max.connection.creation.rate"),
        );
        let mut s = self.state.lock();
        let broker_ms = if self.is_protected(listener) {
            0
        } else {
            s.broker_rate
                .record_and_throttle_ms(broker_bound, now_ms, max_ms)
        };
        let windows = self.windows;
        let listener_ms = s
            .listener_rates
            .entry(listener.to_string())
            .or_insert_with(|| SampledRate::new(windows))
            .record_and_throttle_ms(listener_bound, now_ms, max_ms);
        Duration::from_millis(broker_ms.max(listener_ms))
    }

    /// Counts a connection accepted on `listener` from `ip`: waits until
    /// the listener and the broker have a slot (`max.connections`, checked
    /// again at least every second so a raised dynamic limit frees room
    /// without any connection closing), then refuses it when `ip` is at
    /// its limit.
    pub async fn acquire(
        self: &Arc<Self>,
        listener: &str,
        ip: IpAddr,
    ) -> Result<ConnectionGuard, TooManyConnections> {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.try_register(listener, ip) {
                return r;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
        }
    }

    /// `None` while there is no slot for `listener`.
    fn try_register(
        self: &Arc<Self>,
        listener: &str,
        ip: IpAddr,
    ) -> Option<Result<ConnectionGuard, TooManyConnections>> {
        let per_ip = self
            .config
            .value("max.connections.per.ip.overrides")
            .and_then(|v| override_for(&v, ip))
            .unwrap_or_else(|| int_limit(self.config.value("max.connections.per.ip")));
        let mut s = self.state.lock();
        if !self.slot_available(&s, listener) {
            return None;
        }
        let n = s.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= per_ip {
            return Some(Err(TooManyConnections { ip, limit: per_ip }));
        }
        s.per_ip.insert(ip, n + 1);
        s.total += 1;
        *s.per_listener.entry(listener.to_string()).or_default() += 1;
        let id = s.next_id;
        s.next_id += 1;
        let close = Arc::new(Notify::new());
        let activity = Activity::new(self.started);
        if !self.is_protected(listener) {
            s.closable.insert(
                id,
                Closable {
                    close: close.clone(),
                    activity: activity.clone(),
                },
            );
        }
        self.close_excess(&mut s);
        Some(Ok(ConnectionGuard {
            quotas: self.clone(),
            ip,
            listener: listener.to_string(),
            id,
            close,
            activity,
        }))
    }

    /// Above `max.connections` (the protected listener took a place, or
    /// the limit was lowered), closes the least recently active
    /// connections of the other listeners (the oldest among equals) until
    /// the broker is back at the limit.
    fn close_excess(&self, s: &mut State) {
        let max = self.broker_max();
        while s.total.saturating_sub(s.closing) > max {
            let Some(id) = s
                .closable
                .iter()
                .min_by_key(|(id, c)| (c.activity.last_ms(), **id))
                .map(|(id, _)| *id)
            else {
                return;
            };
            let Some(c) = s.closable.remove(&id) else {
                return;
            };
            s.closing += 1;
            // a stored permit: the connection sees it even if not yet waiting
            c.close.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn quotas(kv: &[(&str, &str)]) -> Arc<ConnectionQuotas> {
        let props: BTreeMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConnectionQuotas::new(Arc::new(KafkaConfig::from_props(props).unwrap().0))
    }

    fn ready<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    const LOCAL: &str = "127.0.0.1";

    fn take(q: &Arc<ConnectionQuotas>, l: &str, ip: &str) -> Option<ConnectionGuard> {
        ready(q.acquire(l, ip.parse().unwrap())).map(|r| r.unwrap())
    }

    #[tokio::test]
    async fn per_ip_limit_and_overrides() {
        let q = quotas(&[
            ("max.connections.per.ip", "2"),
            (
                "max.connections.per.ip.overrides",
                "127.0.0.2:0,127.0.0.3:3",
            ),
        ]);
        let register = |ip: &str| ready(q.acquire("PLAINTEXT", ip.parse().unwrap())).unwrap();
        let g1 = register(LOCAL).unwrap();
        let _g2 = register(LOCAL).unwrap();
        assert!(register(LOCAL).is_err());
        drop(g1);
        let _g3 = register(LOCAL).unwrap();
        assert!(register("127.0.0.2").is_err());
        let _c: Vec<_> = (0..3).map(|_| register("127.0.0.3").unwrap()).collect();
        assert!(register("127.0.0.3").is_err());
    }

    #[tokio::test]
    async fn accept_waits_at_max_connections() {
        let q = quotas(&[("max.connections", "1")]);
        let g = take(&q, "PLAINTEXT", LOCAL).unwrap();
        assert!(take(&q, "PLAINTEXT", LOCAL).is_none());
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.acquire("PLAINTEXT", LOCAL.parse().unwrap()).await.is_ok() }
        });
        drop(g);
        assert!(waiting.await.unwrap());
    }

    const TWO_LISTENERS: [(&str, &str); 3] = [
        ("listeners", "PLAINTEXT://:9092,INTERNAL://:9094"),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        ),
        ("inter.broker.listener.name", "INTERNAL"),
    ];

    #[tokio::test]
    async fn listener_limits_apart_from_the_broker_limit() {
        let mut kv = TWO_LISTENERS.to_vec();
        kv.push(("listener.name.plaintext.max.connections", "1"));
        let q = quotas(&kv);
        let _a = take(&q, "PLAINTEXT", LOCAL).unwrap();
        assert!(take(&q, "PLAINTEXT", LOCAL).is_none());
        // the other listener still accepts
        let _b = take(&q, "INTERNAL", LOCAL).unwrap();
    }

    #[tokio::test]
    async fn inter_broker_listener_goes_past_max_connections() {
        let mut kv = TWO_LISTENERS.to_vec();
        kv.push(("max.connections", "2"));
        let q = quotas(&kv);
        let a = take(&q, "PLAINTEXT", LOCAL).unwrap();
        let b = take(&q, "PLAINTEXT", LOCAL).unwrap();
        assert!(take(&q, "PLAINTEXT", LOCAL).is_none());
        // b reads a request later than a
        tokio::time::sleep(Duration::from_millis(5)).await;
        b.activity().touch();
        // KIP-402: accepted, and the least recently active client
        // connection is closed
        let _c = take(&q, "INTERNAL", LOCAL).unwrap();
        assert!(ready(a.closed_by_quotas()).is_some());
        assert!(ready(b.closed_by_quotas()).is_none());
        drop(a);
        assert!(take(&q, "PLAINTEXT", LOCAL).is_none());
    }

    #[test]
    fn creation_rate_delays_past_the_bound() {
        let mut kv = TWO_LISTENERS.to_vec();
        kv.extend([
            ("max.connection.creation.rate", "5"),
            ("quota.window.num", "2"),
        ]);
        let q = quotas(&kv);
        let delays: Vec<Duration> = (0..7)
            .map(|_| q.creation_delay_at("PLAINTEXT", 0))
            .collect();
        assert!(delays[..5].iter().all(|d| d.is_zero()));
        assert!(delays[5] > Duration::ZERO && delays[6] > delays[5]);
        // the inter-broker listener is exempt from the broker-wide rate...
        assert!(q.creation_delay_at("INTERNAL", 0).is_zero());
        // ...but not from its own
        let mut kv = TWO_LISTENERS.to_vec();
        kv.extend([
            ("listener.name.internal.max.connection.creation.rate", "1"),
            ("quota.window.num", "2"),
        ]);
        let q = quotas(&kv);
        assert!(q.creation_delay_at("INTERNAL", 0).is_zero());
        assert!(!q.creation_delay_at("INTERNAL", 0).is_zero());
        assert!(q.creation_delay_at("PLAINTEXT", 0).is_zero());
    }
}
