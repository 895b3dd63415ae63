//! A latency histogram in atomics, and the log's own flush timer.
//!
//! Recording is a few relaxed adds, no lock (the Prometheus client's own
//! histogram takes a lock per observation, too much for every request).
//! The broker's request metrics use it too; it lives here so the log can
//! time its flushes without knowing about metrics.
//!
//! Kafka exposes its times as Yammer histograms that the JMX exporter turns
//! into quantile gauges; fixed buckets are what Prometheus can aggregate
//! across brokers (`histogram_quantile` over the sum of `_bucket`).

use std::sync::atomic::{AtomicU64, Ordering};

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
        }
    }

    /// Records one observation of `ms` milliseconds.
    pub fn observe(&self, ms: f64) {
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
}
