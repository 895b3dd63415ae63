//! Kafka's connection quotas: `max.connections` (broker-wide; the accept
//! loops stop accepting while the broker is at the limit, so new
//! connections wait in the listen backlog as with Kafka's acceptor) and
//! `max.connections.per.ip` with `max.connections.per.ip.overrides` (a
//! connection over its address's limit is closed at once, as Kafka does).
//! Limits are read at every accept, so dynamic changes (AlterConfigs,
//! cluster-wide in Kafka) apply to the next connection.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::KafkaConfig;

#[derive(Debug, thiserror::Error)]
#[error("too many connections from {ip} (max.connections.per.ip {limit})")]
pub struct TooManyConnections {
    pub ip: IpAddr,
    pub limit: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

pub struct ConnectionQuotas {
    config: Arc<KafkaConfig>,
    counts: Mutex<Counts>,
    /// Woken when a connection closes, for accept loops at the limit.
    freed: Notify,
}

/// Held for the life of a connection; gives its place back on drop.
pub struct ConnectionGuard {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut c = self.quotas.counts.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
        drop(c);
        self.quotas.freed.notify_waiters();
    }
}

fn limit(config: &KafkaConfig, key: &str) -> usize {
    config
        .value(key)
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
        Arc::new(ConnectionQuotas {
            config,
            counts: Mutex::new(Counts::default()),
            freed: Notify::new(),
        })
    }

    /// Returns once the broker is below `max.connections`: when a
    /// connection closes, or at the latest a second later (a raised
    /// dynamic limit frees room without any connection closing).
    pub async fn wait_for_room(&self) {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.counts.lock().total < limit(&self.config, "max.connections") {
                return;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notified).await;
        }
    }

    /// Counts a new connection from `ip`, or refuses it when `ip` is at
    /// its limit.
    pub fn register(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionGuard, TooManyConnections> {
        let per_ip = self
            .config
            .value("max.connections.per.ip.overrides")
            .and_then(|v| override_for(&v, ip))
            .unwrap_or_else(|| limit(&self.config, "max.connections.per.ip"));
        let mut c = self.counts.lock();
        let n = c.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= per_ip {
            return Err(TooManyConnections { ip, limit: per_ip });
        }
        c.per_ip.insert(ip, n + 1);
        c.total += 1;
        Ok(ConnectionGuard {
            quotas: self.clone(),
            ip,
        })
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

    fn is_ready(f: impl std::future::Future<Output = ()>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn per_ip_limit_and_overrides() {
        let q = quotas(&[
            ("max.connections.per.ip", "2"),
            (
                "max.connections.per.ip.overrides",
                "127.0.0.2:0,127.0.0.3:3",
            ),
        ]);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let g1 = q.register(a).unwrap();
        let _g2 = q.register(a).unwrap();
        assert!(q.register(a).is_err());
        drop(g1);
        let _g3 = q.register(a).unwrap();
        assert!(q.register("127.0.0.2".parse().unwrap()).is_err());
        let c: IpAddr = "127.0.0.3".parse().unwrap();
        let _c: Vec<_> = (0..3).map(|_| q.register(c).unwrap()).collect();
        assert!(q.register(c).is_err());
    }

    #[tokio::test]
    async fn accept_waits_at_max_connections() {
        let q = quotas(&[("max.connections", "1")]);
        assert!(is_ready(q.wait_for_room()));
        let g = q.register("127.0.0.1".parse().unwrap()).unwrap();
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.wait_for_room().await }
        });
        assert!(!is_ready(q.wait_for_room()));
        drop(g);
        waiting.await.unwrap();
    }
}
