//! A token bucket that makes callers wait for their turn instead of being throttled.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    /// Below zero when callers have reserved tokens that are still to come.
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// `per_second` must be positive and `burst` at least 1; the caller checks.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Waits until this caller may send one request.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token now, possibly one that only exists in the future, and says how long until
    /// it does. Reserving keeps concurrent callers in arrival order without holding the lock.
    fn reserve(&self, now: Instant) -> Duration {
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        bucket.refilled_at = now;
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-bucket.tokens / self.per_second).unwrap_or(Duration::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_and_the_rest_is_spaced_by_the_rate() {
        let limiter = RateLimiter::new(5.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.reserve(start), Duration::ZERO);
        }
        assert_eq!(limiter.reserve(start), Duration::from_millis(200));
        assert_eq!(limiter.reserve(start), Duration::from_millis(400));
        // A second later five more tokens have come, of which two were already promised.
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.reserve(later), Duration::ZERO);
        assert_eq!(limiter.reserve(later), Duration::ZERO);
        assert_eq!(limiter.reserve(later), Duration::ZERO);
        assert_eq!(limiter.reserve(later), Duration::from_millis(200));
    }
}
