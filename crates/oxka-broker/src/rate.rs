//! Kafka's quota rate: a `Rate` over a `SampledStat` (windowed sum) with
//! an upper bound, and the throttle time that brings an observed rate
//! back under its bound (`QuotaUtils.throttleTime`). The one rate measure
//! for the broker's quotas, so a limit of N per second behaves as in
//! Kafka: bursts are averaged over `quota.window.num` windows of
//! `quota.window.size.seconds`, and the delay is what makes the average
//! fall back to the bound.

/// `quota.window.num` and `quota.window.size.seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindows {
    pub samples: usize,
    pub window_ms: u64,
}

impl RateWindows {
    /// Kafka's defaults: 11 samples of 1 s.
    pub const DEFAULT: RateWindows = RateWindows {
        samples: 11,
        window_ms: 1000,
    };

    /// From the broker config's `quota.window.num` and
    /// `quota.window.size.seconds` (validated at start-up: at least 1).
    pub fn from_config(config: &crate::config::KafkaConfig) -> RateWindows {
        Self::from_keys(config, "quota.window.num", "quota.window.size.seconds")
    }

    /// The controller mutation quota's `controller.quota.window.num` and
    /// `controller.quota.window.size.seconds` (KIP-599).
    pub fn controller_from_config(config: &crate::config::KafkaConfig) -> RateWindows {
        Self::from_keys(
            config,
            "controller.quota.window.num",
            "controller.quota.window.size.seconds",
        )
    }

    fn from_keys(config: &crate::config::KafkaConfig, num: &str, size: &str) -> RateWindows {
        let int = |key: &str| {
            config
                .value(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n >= 1)
        };
        RateWindows {
            samples: int(num).map_or(Self::DEFAULT.samples, |n| n as usize),
            window_ms: int(size).map_or(Self::DEFAULT.window_ms, |s| s.saturating_mul(1000)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: u64,
    last_event_ms: u64,
    value: f64,
}

impl Sample {
    fn new(now_ms: u64) -> Sample {
        Sample {
            start_ms: now_ms,
            last_event_ms: now_ms,
            value: 0.0,
        }
    }
}

/// A rate per second over sampled windows, as Kafka's `Rate` measures it.
#[derive(Debug, Clone)]
pub struct SampledRate {
    windows: RateWindows,
    /// At most `samples + 1` (Kafka keeps one for the sample overlapping
    /// the start of the monitored window).
    samples: Vec<Sample>,
    current: usize,
}

impl SampledRate {
    pub fn new(windows: RateWindows) -> SampledRate {
        SampledRate {
            windows,
            samples: Vec::new(),
            current: 0,
        }
    }

    /// Records `value` (1 for an event; -1 takes one back) at `now_ms`.
    pub fn record(&mut self, value: f64, now_ms: u64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
            self.current = 0;
        }
        if now_ms.saturating_sub(self.samples[self.current].start_ms) >= self.windows.window_ms {
            self.advance(now_ms);
        }
        let s = &mut self.samples[self.current];
        s.value += value;
        s.last_event_ms = now_ms;
    }

    fn advance(&mut self, now_ms: u64) {
        let max = self.windows.samples + 1;
        self.current = (self.current + 1) % max;
        if self.current >= self.samples.len() {
            self.samples.push(Sample::new(now_ms));
        } else {
            self.samples[self.current] = Sample::new(now_ms);
        }
    }

    /// Samples with no event within the monitored window start afresh.
    fn purge(&mut self, now_ms: u64) {
        let expire = (self.windows.samples as u64).saturating_mul(self.windows.window_ms);
        for s in &mut self.samples {
            if now_ms.saturating_sub(s.last_event_ms) >= expire {
                *s = Sample::new(now_ms);
            }
        }
    }

    /// The time the rate is taken over: from the oldest sample, but never
    /// less than `samples - 1` full windows (a young rate is not inflated).
    pub fn window_size_ms(&mut self, now_ms: u64) -> u64 {
        self.purge(now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / self.windows.window_ms;
        let min_full = self.windows.samples.saturating_sub(1) as u64;
        if full < min_full {
            elapsed += (min_full - full) * self.windows.window_ms;
        }
        elapsed.max(1)
    }

    /// Events per second.
    pub fn measure(&mut self, now_ms: u64) -> f64 {
        let window = self.window_size_ms(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (window as f64 / 1000.0)
    }

    /// Records one event against `bound` (per second); returns how long
    /// to delay it so the rate falls back to the bound, at most `max_ms`
    /// (Kafka's `QuotaUtils.boundedThrottleTime`), 0 within the bound.
    pub fn record_and_throttle_ms(&mut self, bound: f64, now_ms: u64, max_ms: u64) -> u64 {
        self.record_value_and_throttle_ms(1.0, bound, now_ms, max_ms)
    }

    /// [`Self::record_and_throttle_ms`] for `value` (bytes, a share of
    /// request time) instead of one event: what the client quotas record.
    pub fn record_value_and_throttle_ms(
        &mut self,
        value: f64,
        bound: f64,
        now_ms: u64,
        max_ms: u64,
    ) -> u64 {
        self.record(value, now_ms);
        let observed = self.measure(now_ms);
        if bound <= 0.0 || observed <= bound {
            return 0;
        }
        let window = self.window_size_ms(now_ms) as f64;
        let delay = ((observed - bound) / bound * window).round();
        (delay.max(0.0) as u64).min(max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_rate_is_taken_over_the_full_windows() {
        let mut r = SampledRate::new(RateWindows::DEFAULT);
        for _ in 0..20 {
            r.record(1.0, 1_000);
        }
        // 20 events over the minimum of 10 full windows
        assert!((r.measure(1_000) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn throttle_brings_the_rate_back_to_the_bound() {
        let w = RateWindows {
            samples: 2,
            window_ms: 1000,
        };
        let mut r = SampledRate::new(w);
        // within a 1 s window, 5 per second are let through at once
        let delays: Vec<u64> = (0..7)
            .map(|_| r.record_and_throttle_ms(5.0, 10_000, 1000))
            .collect();
        assert_eq!(&delays[..5], &[0; 5]);
        // the 6th: 6/s over 1 s, (6-5)/5 * 1000 ms
        assert_eq!(delays[5], 200);
        assert_eq!(delays[6], 400);
        // bounded by the caller's maximum
        let mut r = SampledRate::new(w);
        let last = (0..100)
            .map(|_| r.record_and_throttle_ms(1.0, 10_000, 1000))
            .last();
        assert_eq!(last, Some(1000));
    }

    #[test]
    fn old_samples_expire() {
        let w = RateWindows {
            samples: 2,
            window_ms: 1000,
        };
        let mut r = SampledRate::new(w);
        for _ in 0..10 {
            r.record(1.0, 0);
        }
        assert!(r.measure(500) > 5.0);
        assert_eq!(r.measure(5_000), 0.0);
    }
}
