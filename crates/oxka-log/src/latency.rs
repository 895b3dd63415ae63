//! A latency histogram in atomics, and the log's own flush timer.
//!
//! Recording is a few relaxed adds, no lock (the Prometheus client's own
//! histogram takes a lock per observation, too much for every request).
//! The broker's request metrics use it too; it lives here so the log can
//! time its flushes without knowing about metrics.
//!
//! Kafka exposes its times as Yammer histograms that the JMX exporter turns
//! into quantile gauges (`{quantile="0.99"}`): each histogram here also
//! keeps [`RecentQuantiles`], Yammer's recent-biased view, for those.
//! Fixed buckets are what Prometheus can aggregate across brokers
//! (`histogram_quantile` over the sum of `_bucket`); both are fed by the
//! same `observe`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::Instant;

/// Upper bounds in milliseconds (+Inf follows), from sub-millisecond local
/// appends to the longest long polls.
pub const BUCKETS_MS: [f64; 16] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
    30000.0, 60000.0,
];

/// Observations in [`BUCKETS_MS`] plus their sum.
#[derive(Debug)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last is +Inf.
    counts: [AtomicU64; BUCKETS_MS.len() + 1],
    /// Sum of the observations in nanoseconds.
    sum_ns: AtomicU64,
    /// The same observations, for quantiles of the last minutes.
    recent: RecentQuantiles,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// A histogram read at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Milliseconds.
    pub sum: f64,
    /// Observations.
    pub count: u64,
    /// (upper bound, count in that bucket alone); the last bound is
    /// `f64::MAX`, which the Prometheus encoder writes as +Inf.
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// An empty histogram (`const`, for statics).
    pub const fn new() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS_MS.len() + 1],
            sum_ns: AtomicU64::new(0),
            recent: RecentQuantiles::new(),
        }
    }

    /// Records one observation of `ms` milliseconds, made now.
    pub fn observe(&self, ms: f64) {
        self.observe_at(ms, Instant::now());
    }

    /// Records one observation of `ms` milliseconds made at `at` (a time
    /// the caller already read, so recording reads no clock).
    pub fn observe_at(&self, ms: f64, at: Instant) {
        self.recent.record(ms, at);
        let i = BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BUCKETS_MS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add((ms.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = BUCKETS_MS
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e6,
            count: buckets.iter().map(|(_, c)| c).sum(),
            buckets,
        }
    }
}

impl Histogram {
    /// Quantiles (each in 0..=1) of the recent observations in ms, as
    /// [`RecentQuantiles::quantiles`] gives them.
    pub fn recent_quantiles(&self, qs: &[f64]) -> Vec<f64> {
        self.recent.quantiles(qs, Instant::now())
    }
}

/// The quantiles Kafka's Yammer histograms publish and the JMX exporter
/// turns into `quantile` labels (`50thPercentile` gives `"0.50"`).
pub const YAMMER_QUANTILES: [(f64, &str); 6] = [
    (0.50, "0.50"),
    (0.75, "0.75"),
    (0.95, "0.95"),
    (0.98, "0.98"),
    (0.99, "0.99"),
    (0.999, "0.999"),
];

/// Seconds per window of [`RecentQuantiles`].
const WINDOW_SECS: u64 = 15;
/// Windows kept: 20 of 15 s, the last 5 minutes.
const WINDOWS: usize = 20;
/// Yammer's forward-decay factor per second (ExponentiallyDecayingReservoir's
/// default alpha): an observation `age` seconds old weighs `exp(-0.015 age)`,
/// half as much after 46 s.
const DECAY_PER_SEC: f64 = 0.015;
/// Sub-buckets per power of two: bucket width at most 1/16 of its values.
const SUB_BUCKETS: u64 = 16;
/// Highest power of two kept (2^27 µs = 134 s); longer goes to the last bucket.
const MAX_POW: u32 = 27;
/// Exact buckets for 0..16 µs, then 16 per power of two from 2^4, then
/// one for anything longer.
const RECENT_BUCKETS: usize = (SUB_BUCKETS + (MAX_POW as u64 - 4) * SUB_BUCKETS + 1) as usize;

/// The base of the windows' clock (the first time any histogram is used).
static CLOCK_BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Quantiles of the last minutes, weighted toward the newest as Yammer's
/// exponentially decaying reservoir (what Kafka's request and flush
/// times use) weighs them: observations land in log-linear buckets (at
/// most 1/16 of a value wide, so a quantile is within about 3%) of
/// 15-second windows, 20 of them in a ring; a quantile sums the windows
/// of the last 5 minutes, each weighted by `exp(-0.015 * age)`.
///
/// Recording is two relaxed atomic operations (a load and an add) once
/// the windows exist, no lock: the first observation allocates them
/// (about 31 KB), so a histogram never used costs a pointer. The first
/// observation of a new window resets that window's counts; an
/// observation racing that reset can be lost, one in a window at most.
#[derive(Debug)]
pub struct RecentQuantiles {
    windows: OnceLock<Box<[Window]>>,
}

#[derive(Debug)]
struct Window {
    /// Which 15-second period (since [`CLOCK_BASE`]) the counts are of.
    epoch: AtomicU64,
    counts: Box<[AtomicU32]>,
}

impl Default for RecentQuantiles {
    fn default() -> Self {
        RecentQuantiles::new()
    }
}

impl RecentQuantiles {
    /// Empty, with no windows yet (`const`, for statics).
    pub const fn new() -> RecentQuantiles {
        RecentQuantiles {
            windows: OnceLock::new(),
        }
    }

    fn windows(&self) -> &[Window] {
        self.windows.get_or_init(|| {
            (0..WINDOWS)
                .map(|i| Window {
                    epoch: AtomicU64::new(i as u64),
                    counts: (0..RECENT_BUCKETS).map(|_| AtomicU32::new(0)).collect(),
                })
                .collect()
        })
    }

    /// Records `ms` milliseconds observed at `at`.
    pub fn record(&self, ms: f64, at: Instant) {
        let epoch = at.saturating_duration_since(*CLOCK_BASE).as_secs() / WINDOW_SECS;
        let w = &self.windows()[(epoch % WINDOWS as u64) as usize];
        let held = w.epoch.load(Ordering::Acquire);
        if held != epoch {
            if held > epoch {
                // older than the ring: no longer counted anyway
                return;
            }
            if w.epoch
                .compare_exchange(held, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                for c in w.counts.iter() {
                    c.store(0, Ordering::Relaxed);
                }
            }
        }
        // `as` saturates: NaN and negatives are 0, huge values u64::MAX
        let us = (ms * 1000.0) as u64;
        w.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// The quantiles `qs` (each in 0..=1) in milliseconds of what was
    /// recorded in the 5 minutes before `now`, each window weighted by
    /// its age; 0 for each when nothing was (Yammer's empty snapshot).
    pub fn quantiles(&self, qs: &[f64], now: Instant) -> Vec<f64> {
        let Some(windows) = self.windows.get() else {
            return vec![0.0; qs.len()];
        };
        let now_secs = now.saturating_duration_since(*CLOCK_BASE).as_secs_f64();
        let current = now_secs as u64 / WINDOW_SECS;
        let mut weighted = vec![0.0f64; RECENT_BUCKETS];
        let mut total = 0.0;
        for w in windows {
            let epoch = w.epoch.load(Ordering::Acquire);
            if epoch > current || epoch + (WINDOWS as u64) <= current {
                continue;
            }
            let middle = ((epoch * WINDOW_SECS) as f64 + WINDOW_SECS as f64 / 2.0).min(now_secs);
            let weight = (-DECAY_PER_SEC * (now_secs - middle)).exp();
            for (sum, c) in weighted.iter_mut().zip(w.counts.iter()) {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    *sum += n as f64 * weight;
                    total += n as f64 * weight;
                }
            }
        }
        qs.iter()
            .map(|q| {
                if total <= 0.0 {
                    return 0.0;
                }
                let target = q.clamp(0.0, 1.0) * total;
                let mut below = 0.0;
                for (i, n) in weighted.iter().enumerate() {
                    if *n > 0.0 && below + n >= target {
                        let (low, width) = bucket_bounds(i);
                        let within = ((target - below) / n).clamp(0.0, 1.0);
                        return (low + within * width) / 1000.0;
                    }
                    below += n;
                }
                bucket_bounds(RECENT_BUCKETS - 1).0 / 1000.0
            })
            .collect()
    }
}

/// The bucket of `us` microseconds.
fn bucket_of(us: u64) -> usize {
    if us < SUB_BUCKETS {
        return us as usize;
    }
    let pow = 63 - us.leading_zeros();
    if pow >= MAX_POW {
        return RECENT_BUCKETS - 1;
    }
    let sub = (us >> (pow - 4)) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + u64::from(pow - 4) * SUB_BUCKETS + sub) as usize
}

/// (lowest value, width) of bucket `i`, in microseconds.
fn bucket_bounds(i: usize) -> (f64, f64) {
    let i = i as u64;
    if i < SUB_BUCKETS {
        return (i as f64, 1.0);
    }
    let pow = (i - SUB_BUCKETS) / SUB_BUCKETS + 4;
    if pow >= u64::from(MAX_POW) {
        return ((1u64 << MAX_POW) as f64, 0.0);
    }
    let sub = (i - SUB_BUCKETS) % SUB_BUCKETS;
    let width = 1u64 << (pow - 4);
    (((SUB_BUCKETS + sub) * width) as f64, width as f64)
}

/// Every [`crate::Log::flush`] of this process, timed (Kafka's
/// `LogFlushStats.LogFlushRateAndTimeMs`, also one per process).
pub static LOG_FLUSH_TIME: Histogram = Histogram::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = Histogram::default();
        h.observe(0.2);
        h.observe(0.5);
        h.observe(7.0);
        h.observe(1e9);
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], (0.5, 2));
        assert_eq!(s.buckets[4], (10.0, 1));
        assert_eq!(s.buckets.last(), Some(&(f64::MAX, 1)));
        assert!((s.sum - (0.2 + 0.5 + 7.0 + 1e9)).abs() < 1e-3);
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for us in (0..5000u64).chain((12..40).map(|p| (1u64 << p) + 12345)) {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            last = b;
            let (low, width) = bucket_bounds(b);
            if b < RECENT_BUCKETS - 1 {
                assert!(low <= us as f64 && (us as f64) < low + width, "{us} in {b}");
                assert!(width <= (low / 16.0).max(1.0), "{b} too wide");
            }
        }
        assert_eq!(bucket_of(u64::MAX), RECENT_BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let r = RecentQuantiles::new();
        let now = Instant::now();
        assert_eq!(r.quantiles(&[0.5], now), vec![0.0]);
        // 1..=1000 ms, once each
        for ms in 1..=1000 {
            r.record(ms as f64, now);
        }
        let got = r.quantiles(&[0.5, 0.99, 0.999, 1.0], now);
        for (q, g) in [0.5, 0.99, 0.999, 1.0].iter().zip(&got) {
            let want = q * 1000.0;
            assert!((g - want).abs() <= want * 0.07, "q{q}: {g} vs {want}");
        }
    }

    #[test]
    fn old_windows_weigh_less_then_leave() {
        let r = RecentQuantiles::new();
        let t0 = *CLOCK_BASE + std::time::Duration::from_secs(1000 * WINDOW_SECS);
        // 100 slow observations, then, two minutes later, 100 fast ones
        for _ in 0..100 {
            r.record(500.0, t0);
        }
        let t1 = t0 + std::time::Duration::from_secs(120);
        for _ in 0..100 {
            r.record(1.0, t1);
        }
        // the old ones weigh exp(-0.015 * 120) ~ 1/6: the median is fast,
        // the 90th percentile still slow
        let q = r.quantiles(&[0.5, 0.9], t1);
        assert!(q[0] < 1.1, "{q:?}");
        assert!(q[1] > 450.0, "{q:?}");
        // six minutes on, only the fast ones are left
        let t2 = t0 + std::time::Duration::from_secs(360);
        let q = r.quantiles(&[0.99], t2);
        assert!(q[0] < 1.1, "{q:?}");
        // and nine minutes on, nothing
        let t3 = t0 + std::time::Duration::from_secs(600);
        assert_eq!(r.quantiles(&[0.99], t3), vec![0.0]);
        // a window reused by a newer period starts from zero
        r.record(7.0, t3);
        let q = r.quantiles(&[0.5, 1.0], t3);
        assert!(q.iter().all(|v| (6.5..=7.5).contains(v)), "{q:?}");
    }
}
