//! Client quotas as Kafka enforces them (KIP-13, KIP-55, KIP-124,
//! KIP-219, KIP-599): per (user, client id) the bytes produced, the bytes
//! fetched by consumers, the share of request-handling time and the
//! partitions created or deleted are measured against the quota the
//! metadata gives them (`oxka_controller::quota`, Kafka's precedence). A
//! client over its quota is not failed: its response carries
//! `throttle_time_ms` and the connection reads nothing more from it for
//! that time (the network loop mutes it; see [`throttle`]), so it slows
//! down to its quota.
//!
//! Usage is kept per quota "sensor" (the user and client id of the entity
//! that matched): only for clients that have a quota, forgotten after an
//! hour without use as Kafka's sensors are, and never more than
//! [`MAX_SENSORS`] per quota type. With no quota in the metadata at all a
//! request costs one check of an empty map and takes no lock.

pub mod throttle;
pub mod token_bucket;

use std::collections::HashMap;
use std::time::Instant;

use oxka_controller::quota::{
    ClientQuotas, QuotaTags, CONSUMER_BYTE_RATE, CONTROLLER_MUTATION_RATE, PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
};
use parking_lot::Mutex;

use crate::config::KafkaConfig;
use crate::rate::{RateWindows, SampledRate};
use token_bucket::TokenBucket;

/// Kafka purges a client's sensors after an hour without activity.
const INACTIVE_EXPIRATION_MS: u64 = 3_600_000;
/// How often idle sensors are looked for.
const PURGE_INTERVAL_MS: u64 = 30_000;
/// Sensors kept per quota type at most; past it the longest-idle one is
/// dropped (its client starts over with an empty window).
pub const MAX_SENSORS: usize = 20_000;

/// Usage measures by what they count for: the tags of the quota, or an
/// address.
struct Sensors<S, K = QuotaTags> {
    inner: Mutex<SensorMap<S, K>>,
}

struct SensorMap<S, K> {
    map: HashMap<K, (S, u64)>,
    next_purge_ms: u64,
}

impl<S, K: std::hash::Hash + Eq + Clone> Sensors<S, K> {
    fn new() -> Self {
        Sensors {
            inner: Mutex::new(SensorMap {
                map: HashMap::new(),
                next_purge_ms: 0,
            }),
        }
    }

    /// Runs `f` on the sensor of `tags`, made by `make` if missing.
    fn with<R>(
        &self,
        tags: K,
        now: u64,
        make: impl FnOnce() -> S,
        f: impl FnOnce(&mut S) -> R,
    ) -> R {
        let mut m = self.inner.lock();
        if now >= m.next_purge_ms {
            m.map
                .retain(|_, (_, used)| now.saturating_sub(*used) < INACTIVE_EXPIRATION_MS);
            m.next_purge_ms = now + PURGE_INTERVAL_MS;
        }
        if !m.map.contains_key(&tags) && m.map.len() >= MAX_SENSORS {
            if let Some(idle) = m
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                m.map.remove(&idle);
            }
        }
        let entry = m.map.entry(tags).or_insert_with(|| (make(), now));
        entry.1 = now;
        f(&mut entry.0)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map.len()
    }
}

/// One rate quota (Kafka's ClientQuotaManager / ClientRequestQuotaManager):
/// bytes produced, bytes fetched, or request time.
pub struct ClientQuotaManager {
    key: &'static str,
    windows: RateWindows,
    /// The request quota's throttle is capped at one window (Kafka's
    /// ClientRequestQuotaManager); the byte rates' are not.
    max_throttle_ms: u64,
    sensors: Sensors<SampledRate>,
}

impl ClientQuotaManager {
    fn new(key: &'static str, windows: RateWindows, max_throttle_ms: u64) -> Self {
        ClientQuotaManager {
            key,
            windows,
            max_throttle_ms,
            sensors: Sensors::new(),
        }
    }

    /// Records `value` for the client and returns how long it must wait
    /// for its rate to be back within its quota (0: within it, or no
    /// quota applies). The value counts either way, as in Kafka.
    pub fn record(
        &self,
        quotas: &ClientQuotas,
        user: &str,
        client_id: &str,
        value: f64,
        now: u64,
    ) -> u64 {
        let Some((bound, tags)) = quotas.quota_for(user, client_id, self.key) else {
            return 0;
        };
        let (windows, max) = (self.windows, self.max_throttle_ms);
        self.sensors.with(
            tags,
            now,
            || SampledRate::new(windows),
            |r| r.record_value_and_throttle_ms(value, bound, now, max),
        )
    }

    /// Takes back a recorded value: a throttled Fetch returns no data, so
    /// what it would have returned does not count (Kafka's
    /// `unrecordQuotaSensor`).
    pub fn unrecord(
        &self,
        quotas: &ClientQuotas,
        user: &str,
        client_id: &str,
        value: f64,
        now: u64,
    ) {
        if let Some((_, tags)) = quotas.quota_for(user, client_id, self.key) {
            let windows = self.windows;
            self.sensors.with(
                tags,
                now,
                || SampledRate::new(windows),
                |r| r.record(-value, now),
            );
        }
    }

    /// The most that can be recorded at once without a certain throttle
    /// (`None`: no quota): what one Fetch may return (Kafka's
    /// `getMaxValueInQuotaWindow`).
    pub fn max_value_in_window(
        &self,
        quotas: &ClientQuotas,
        user: &str,
        client_id: &str,
    ) -> Option<f64> {
        let (bound, _) = quotas.quota_for(user, client_id, self.key)?;
        let w = self.windows;
        Some(bound * w.samples.saturating_sub(1) as f64 * (w.window_ms as f64 / 1000.0))
    }
}

/// KIP-599's controller mutation quota: partitions created or deleted per
/// second, as a token bucket.
pub struct ControllerMutationQuotaManager {
    windows: RateWindows,
    sensors: Sensors<TokenBucket>,
}

/// A mutation refused by the strict quota: the time until the bucket is
/// back above zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlingQuotaExceeded {
    pub throttle_ms: u64,
}

impl ControllerMutationQuotaManager {
    /// Records `permits` mutations. `strict` (CreateTopics v6+,
    /// CreatePartitions v3+, DeleteTopics v5+) refuses them while the
    /// bucket is below zero, without recording; otherwise they are
    /// recorded and the throttle returned. `Ok(throttle)` otherwise.
    pub fn record(
        &self,
        quotas: &ClientQuotas,
        user: &str,
        client_id: &str,
        permits: f64,
        strict: bool,
        now: u64,
    ) -> Result<u64, ThrottlingQuotaExceeded> {
        let Some((quota, tags)) = quotas.quota_for(user, client_id, CONTROLLER_MUTATION_RATE)
        else {
            return Ok(0);
        };
        let w = self.windows;
        self.sensors.with(tags, now, TokenBucket::default, |b| {
            if strict {
                let tokens = b.measure(&w, quota, now);
                if tokens < 0.0 {
                    return Err(ThrottlingQuotaExceeded {
                        throttle_ms: token_bucket::throttle_time_ms(tokens, quota),
                    });
                }
                b.record(&w, quota, permits, now);
                Ok(0)
            } else {
                b.record(&w, quota, permits, now);
                Ok(token_bucket::throttle_time_ms(
                    b.measure(&w, quota, now),
                    quota,
                ))
            }
        })
    }

    /// The throttle a mutation request gets in its response: the time the
    /// bucket needs to be back at zero (0 without a quota).
    pub fn throttle_ms(&self, quotas: &ClientQuotas, user: &str, client_id: &str, now: u64) -> u64 {
        let Some((quota, tags)) = quotas.quota_for(user, client_id, CONTROLLER_MUTATION_RATE)
        else {
            return 0;
        };
        let w = self.windows;
        self.sensors.with(tags, now, TokenBucket::default, |b| {
            token_bucket::throttle_time_ms(b.measure(&w, quota, now), quota)
        })
    }
}

/// KIP-612's `connection_creation_rate` per IP address (Kafka's
/// ConnectionQuotas for IP entities): a connection from an address over
/// its rate is closed after the throttle time (at most one window)
/// instead of being served.
pub struct IpConnectionQuotaManager {
    windows: RateWindows,
    sensors: Sensors<SampledRate, std::net::IpAddr>,
}

impl IpConnectionQuotaManager {
    /// Records a connection from `ip`; the time to hold it before closing
    /// it when over the address's rate, 0 to serve it (or no rate).
    pub fn record(&self, quotas: &ClientQuotas, ip: std::net::IpAddr, now: u64) -> u64 {
        let Some(bound) = quotas.connection_rate_for_ip(ip) else {
            return 0;
        };
        let w = self.windows;
        self.sensors.with(
            ip,
            now,
            || SampledRate::new(w),
            |r| r.record_value_and_throttle_ms(1.0, bound, now, w.window_ms),
        )
    }
}

/// The broker's quota managers, one per quota type.
pub struct QuotaManagers {
    pub produce: ClientQuotaManager,
    pub fetch: ClientQuotaManager,
    pub request: ClientQuotaManager,
    pub controller_mutation: ControllerMutationQuotaManager,
    pub ip_connections: IpConnectionQuotaManager,
    epoch: Instant,
}

impl QuotaManagers {
    pub fn new(config: &KafkaConfig) -> QuotaManagers {
        let client = RateWindows::from_config(config);
        let controller = RateWindows::controller_from_config(config);
        QuotaManagers {
            produce: ClientQuotaManager::new(PRODUCER_BYTE_RATE, client, u64::MAX),
            fetch: ClientQuotaManager::new(CONSUMER_BYTE_RATE, client, u64::MAX),
            request: ClientQuotaManager::new(REQUEST_PERCENTAGE, client, client.window_ms),
            controller_mutation: ControllerMutationQuotaManager {
                windows: controller,
                sensors: Sensors::new(),
            },
            ip_connections: IpConnectionQuotaManager {
                windows: client,
                sensors: Sensors::new(),
            },
            epoch: Instant::now(),
        }
    }

    /// Milliseconds on a monotonic clock: quota windows must not jump with
    /// the wall clock.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// KIP-599 for one topic of CreateTopics, CreatePartitions or
/// DeleteTopics: `permits` partitions created or deleted. From the
/// request's `strict_since` version a client over its
/// `controller_mutation_rate` gets THROTTLING_QUOTA_EXCEEDED for the topic
/// (and the throttle); older versions are let through and throttled.
pub fn record_mutation(
    ctx: &crate::request::RequestContext<'_>,
    permits: usize,
    strict_since: i16,
) -> Result<(), crate::controller::ApiError> {
    let image = ctx.state.controller.image();
    if image.client_quotas.is_empty() || permits == 0 {
        return Ok(());
    }
    let managers = &ctx.state.quotas;
    let hold = !throttle::client_throttles(ctx.api_key, ctx.version);
    match managers.controller_mutation.record(
        &image.client_quotas,
        &ctx.conn.principal.name,
        ctx.client_id(),
        permits as f64,
        ctx.version >= strict_since,
        managers.now_ms(),
    ) {
        Ok(ms) => {
            if ms > 0 {
                ctx.slot.throttle(ms, hold);
            }
            Ok(())
        }
        Err(ThrottlingQuotaExceeded { throttle_ms }) => {
            ctx.slot.throttle(throttle_ms, hold);
            Err(crate::controller::ApiError::new(
                kafka_protocol::error::ResponseError::ThrottlingQuotaExceeded,
                "The throttling quota has been exceeded.",
            ))
        }
    }
}

/// The request-time share of a handling time (Kafka's
/// `nanosToPercentage`: 100 % is one thread busy for the whole second).
pub fn time_to_percentage(elapsed: std::time::Duration) -> f64 {
    elapsed.as_nanos() as f64 * 100.0 / 1e9
}

#[cfg(test)]
mod tests {
    use oxka_controller::quota::{ClientQuotaEntity, EntityName};

    use super::*;

    fn quotas(key: &str, client: &str, value: f64) -> ClientQuotas {
        let mut q = ClientQuotas::default();
        q.apply(
            &ClientQuotaEntity {
                client_id: Some(EntityName::Named(client.into())),
                ..ClientQuotaEntity::default()
            },
            key,
            Some(value),
        );
        q
    }

    #[test]
    fn only_clients_with_a_quota_are_throttled_or_tracked() {
        let m = QuotaManagers::new(&KafkaConfig::defaults());
        let q = quotas(PRODUCER_BYTE_RATE, "slow", 1_048_576.0);
        // 22 MB over the ten-window minimum: 2.2 MB/s, 12 s to get back to 1 MB/s
        let t = m
            .produce
            .record(&q, "ANONYMOUS", "slow", 22.0 * 1_048_576.0, 1_000);
        assert_eq!(t, 12_000);
        assert_eq!(m.produce.record(&q, "ANONYMOUS", "fast", 1e9, 1_000), 0);
        assert_eq!(m.produce.sensors.len(), 1, "no sensor without a quota");
        assert_eq!(m.fetch.record(&q, "ANONYMOUS", "slow", 1e9, 1_000), 0);
        assert_eq!(
            m.produce.max_value_in_window(&q, "u", "slow"),
            Some(10.0 * 1_048_576.0)
        );
        // a throttled fetch's bytes are taken back
        let q = quotas(CONSUMER_BYTE_RATE, "c", 100.0);
        assert!(m.fetch.record(&q, "u", "c", 5_000.0, 0) > 0);
        m.fetch.unrecord(&q, "u", "c", 5_000.0, 0);
        assert_eq!(m.fetch.record(&q, "u", "c", 1.0, 0), 0);
    }

    #[test]
    fn the_request_quota_is_capped_at_one_window() {
        let m = QuotaManagers::new(&KafkaConfig::defaults());
        let q = quotas(REQUEST_PERCENTAGE, "busy", 1.0);
        let t = m.request.record(&q, "u", "busy", 1_000.0, 0);
        assert_eq!(t, 1_000);
    }

    #[test]
    fn strict_mutations_are_refused_below_zero_permissive_ones_throttled() {
        let m = QuotaManagers::new(&KafkaConfig::defaults());
        let q = quotas(CONTROLLER_MUTATION_RATE, "admin", 1.0);
        let cm = &m.controller_mutation;
        // burst of 11: 20 partitions at once are accepted, leaving -9
        assert_eq!(cm.record(&q, "u", "admin", 20.0, true, 0), Ok(0));
        assert_eq!(cm.throttle_ms(&q, "u", "admin", 0), 9_000);
        assert_eq!(
            cm.record(&q, "u", "admin", 1.0, true, 0),
            Err(ThrottlingQuotaExceeded { throttle_ms: 9_000 })
        );
        assert_eq!(cm.record(&q, "u", "admin", 1.0, false, 0), Ok(10_000));
        assert_eq!(cm.record(&q, "u", "admin", 1.0, true, 10_000), Ok(0));
    }

    #[test]
    fn an_address_over_its_connection_rate_is_throttled_up_to_a_window() {
        let m = QuotaManagers::new(&KafkaConfig::defaults());
        let mut q = ClientQuotas::default();
        q.apply(
            &ClientQuotaEntity {
                ip: Some(EntityName::Named("127.0.0.1".into())),
                ..ClientQuotaEntity::default()
            },
            oxka_controller::quota::CONNECTION_CREATION_RATE,
            Some(2.0),
        );
        let local = "127.0.0.1".parse().unwrap();
        // 2/s over ten windows: twenty at once, then throttled
        let delays: Vec<u64> = (0..22)
            .map(|_| m.ip_connections.record(&q, local, 0))
            .collect();
        assert!(delays[..20].iter().all(|d| *d == 0), "{delays:?}");
        assert_eq!(delays[20], 500);
        assert_eq!(
            m.ip_connections.record(&q, "10.0.0.1".parse().unwrap(), 0),
            0
        );
        for _ in 0..100 {
            m.ip_connections.record(&q, local, 0);
        }
        assert_eq!(
            m.ip_connections.record(&q, local, 0),
            1000,
            "at most one window"
        );
    }

    #[test]
    fn sensors_are_bounded_and_expire() {
        let s: Sensors<u8> = Sensors::new();
        let tags = |i: usize| QuotaTags {
            user: String::new(),
            client_id: i.to_string(),
        };
        for i in 0..MAX_SENSORS + 10 {
            s.with(tags(i), i as u64, || 0, |_| ());
        }
        assert_eq!(s.len(), MAX_SENSORS);
        // an hour later the next use purges them all
        s.with(tags(0), INACTIVE_EXPIRATION_MS + 1_000_000, || 0, |_| ());
        assert_eq!(s.len(), 1);
    }
}
