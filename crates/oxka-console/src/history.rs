//! The broker's recent history for the live charts: a sampler reads the
//! source's counters every few seconds into fixed-size ring buffers, so
//! the charts need no database and memory stays bounded however long the
//! broker runs (points × series, groups capped).

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use serde::Serialize;

use crate::model::Sample;

/// Throughput points kept (30 minutes at the default 5 s interval).
pub const THROUGHPUT_POINTS: usize = 360;
/// Lag points kept per group (10 minutes at 5 s).
pub const LAG_POINTS: usize = 120;
/// Groups whose lag history is kept; further groups have no chart.
pub const MAX_GROUPS: usize = 1000;

/// One point of the cluster's throughput, per second over the interval
/// that ends at `t` (seconds since the epoch, as uPlot wants).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ThroughputPoint {
    pub t: f64,
    pub messages_in: Option<f64>,
    pub bytes_in: Option<f64>,
    pub bytes_out: Option<f64>,
}

#[derive(Default)]
struct Inner {
    last: Option<(f64, Sample)>,
    throughput: VecDeque<ThroughputPoint>,
    /// Messages per second per topic over the last interval.
    topic_rates: HashMap<String, f64>,
    lag: HashMap<String, VecDeque<(f64, i64)>>,
}

#[derive(Default)]
pub struct History {
    inner: Mutex<Inner>,
}

fn rate(now: Option<u64>, before: Option<u64>, secs: f64) -> Option<f64> {
    Some(now?.saturating_sub(before?) as f64 / secs)
}

impl History {
    /// Folds a sample taken at `t` (seconds since the epoch).
    pub fn record(&self, t: f64, sample: Sample) {
        let mut inner = self.inner.lock();
        if let Some((t0, before)) = &inner.last {
            let secs = t - t0;
            if secs > 0.0 {
                let point = ThroughputPoint {
                    t,
                    messages_in: rate(sample.messages_in, before.messages_in, secs),
                    bytes_in: rate(sample.bytes_in, before.bytes_in, secs),
                    bytes_out: rate(sample.bytes_out, before.bytes_out, secs),
                };
                let previous: HashMap<&str, u64> = before
                    .topic_messages
                    .iter()
                    .map(|(n, m)| (n.as_str(), *m))
                    .collect();
                let rates = sample
                    .topic_messages
                    .iter()
                    .map(|(n, m)| {
                        let d = previous.get(n.as_str()).map_or(0, |b| m.saturating_sub(*b));
                        (n.clone(), d as f64 / secs)
                    })
                    .collect();
                inner.topic_rates = rates;
                if inner.throughput.len() == THROUGHPUT_POINTS {
                    inner.throughput.pop_front();
                }
                inner.throughput.push_back(point);
            }
        }
        // groups that are gone lose their history
        let present: std::collections::HashSet<&str> =
            sample.group_lags.iter().map(|(g, _)| g.as_str()).collect();
        inner.lag.retain(|g, _| present.contains(g.as_str()));
        for (g, lag) in &sample.group_lags {
            let full = inner.lag.len() >= MAX_GROUPS;
            let series = match inner.lag.get_mut(g) {
                Some(s) => s,
                None if full => continue,
                None => inner.lag.entry(g.clone()).or_default(),
            };
            if series.len() == LAG_POINTS {
                series.pop_front();
            }
            series.push_back((t, *lag));
        }
        inner.last = Some((t, sample));
    }

    pub fn throughput(&self) -> Vec<ThroughputPoint> {
        self.inner.lock().throughput.iter().copied().collect()
    }

    /// The latest throughput point, if two samples were taken.
    pub fn now(&self) -> Option<ThroughputPoint> {
        self.inner.lock().throughput.back().copied()
    }

    pub fn topic_rate(&self, topic: &str) -> Option<f64> {
        self.inner.lock().topic_rates.get(topic).copied()
    }

    pub fn topic_rates(&self) -> HashMap<String, f64> {
        self.inner.lock().topic_rates.clone()
    }

    pub fn group_lag(&self, group: &str) -> Vec<(f64, i64)> {
        self.inner
            .lock()
            .lag
            .get(group)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(messages: u64, bytes_in: u64, groups: &[(&str, i64)]) -> Sample {
        Sample {
            messages_in: Some(messages),
            bytes_in: Some(bytes_in),
            bytes_out: None,
            topic_messages: vec![("t".into(), messages)],
            group_lags: groups.iter().map(|(g, l)| (g.to_string(), *l)).collect(),
        }
    }

    #[test]
    fn rates_are_differences_over_time() {
        let h = History::default();
        h.record(100.0, sample(10, 1000, &[("g", 5)]));
        assert!(h.now().is_none());
        h.record(105.0, sample(60, 6000, &[("g", 3)]));
        let p = h.now().unwrap();
        assert_eq!(p.messages_in, Some(10.0));
        assert_eq!(p.bytes_in, Some(1000.0));
        assert_eq!(p.bytes_out, None);
        assert_eq!(h.topic_rate("t"), Some(10.0));
        assert_eq!(h.group_lag("g"), vec![(100.0, 5), (105.0, 3)]);
        // a counter that went back (restart) is no negative rate
        h.record(110.0, sample(0, 0, &[]));
        assert_eq!(h.now().unwrap().messages_in, Some(0.0));
        assert_eq!(h.now().unwrap().bytes_in, Some(0.0));
        assert!(
            h.group_lag("g").is_empty(),
            "a gone group drops its history"
        );
    }

    #[test]
    fn buffers_are_bounded() {
        let h = History::default();
        let groups: Vec<(String, i64)> =
            (0..MAX_GROUPS + 10).map(|i| (format!("g{i}"), 1)).collect();
        for i in 0..(THROUGHPUT_POINTS + 50) {
            let mut s = sample(i as u64, 0, &[]);
            s.group_lags = groups.clone();
            h.record(i as f64, s);
        }
        assert_eq!(h.throughput().len(), THROUGHPUT_POINTS);
        assert_eq!(h.group_lag("g0").len(), LAG_POINTS);
        assert!(h.group_lag(&format!("g{}", MAX_GROUPS + 5)).is_empty());
        assert_eq!(h.inner.lock().lag.len(), MAX_GROUPS);
    }
}
