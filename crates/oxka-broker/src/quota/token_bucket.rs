//! Kafka's `TokenBucket` for the controller mutation quota (KIP-599), with
//! Kafka's arithmetic so a client sees the throttle times Kafka would give.
//! (The byte and request-time quotas use the broker's one sampled rate,
//! `crate::rate`.)

use crate::rate::RateWindows;

/// Tokens refill at the quota's rate up to a burst of
/// `samples × window × quota`; a mutation takes its count of tokens and
/// may drive them below zero, after which strict mutations wait until they
/// are back above zero.
#[derive(Debug, Clone, Default)]
pub struct TokenBucket {
    tokens: Option<f64>,
    last_update_ms: u64,
}

impl TokenBucket {
    fn burst(w: &RateWindows, quota: f64) -> f64 {
        w.samples as f64 * (w.window_ms as f64 / 1000.0) * quota
    }

    fn refill(&mut self, w: &RateWindows, quota: f64, now: u64) -> f64 {
        let burst = Self::burst(w, quota);
        // a new bucket starts full, as Kafka's (whose clock starts at 0)
        let tokens = match self.tokens {
            None => burst,
            Some(t) => {
                let elapsed = now.saturating_sub(self.last_update_ms) as f64 / 1000.0;
                burst.min(t + quota * elapsed)
            }
        };
        self.tokens = Some(tokens);
        self.last_update_ms = now;
        tokens
    }

    pub fn measure(&mut self, w: &RateWindows, quota: f64, now: u64) -> f64 {
        self.refill(w, quota, now)
    }

    pub fn record(&mut self, w: &RateWindows, quota: f64, value: f64, now: u64) {
        let tokens = self.refill(w, quota, now);
        self.tokens = Some(Self::burst(w, quota).min(tokens - value));
    }
}

/// The time until a bucket `tokens` below zero is back at zero (Kafka's
/// `ControllerMutationQuotaManager.throttleTimeMs`).
pub fn throttle_time_ms(tokens: f64, quota: f64) -> u64 {
    if tokens >= 0.0 || quota <= 0.0 {
        return 0;
    }
    (-tokens / quota * 1000.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_bucket_starts_full_and_refills_at_the_quota() {
        let w = RateWindows::DEFAULT;
        let mut b = TokenBucket::default();
        // 2 mutations/s: a burst of 22
        assert_eq!(b.measure(&w, 2.0, 0), 22.0);
        b.record(&w, 2.0, 30.0, 0);
        assert_eq!(b.measure(&w, 2.0, 0), -8.0);
        assert_eq!(throttle_time_ms(-8.0, 2.0), 4_000);
        assert_eq!(b.measure(&w, 2.0, 4_000), 0.0);
        assert_eq!(b.measure(&w, 2.0, 100_000), 22.0, "never above the burst");
    }
}
