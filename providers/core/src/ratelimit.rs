//! A token bucket per provider account, which a 429 or Retry-After pauses, and whose budget
//! the supervisors sharing a database split between them ([`RateLimiter::share`]).
//!
//! Hand-written rather than taken from a crate: besides a steady rate it needs "nobody calls
//! this account until T" when the provider says Retry-After, which the usual limiters lack.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Bounds the calls per second to one provider account.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
    /// How many calls had to wait (for the metrics).
    waits: AtomicU64,
    /// How many processes share this account's budget (this one included): each takes an
    /// equal part of the rate and the burst.
    sharers: AtomicU32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
    /// Set by a Retry-After: no call before this.
    paused_until: Option<Instant>,
}

impl RateLimiter {
    /// `per_second` calls on average, up to `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second: per_second.max(0.001),
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                refilled_at: Instant::now(),
                paused_until: None,
            }),
            waits: AtomicU64::new(0),
            sharers: AtomicU32::new(1),
        }
    }

    /// Shares the account's budget among `sharers` processes (this one included), each
    /// taking an equal part. Returns whether that changed anything.
    pub fn share(&self, sharers: u32) -> bool {
        self.sharers.swap(sharers.max(1), Ordering::Relaxed) != sharers.max(1)
    }

    /// This process's part of the rate, in calls per second.
    pub fn per_second_share(&self) -> f64 {
        self.part().0
    }

    /// This process's part: (calls per second, burst).
    fn part(&self) -> (f64, f64) {
        let n = f64::from(self.sharers.load(Ordering::Relaxed).max(1));
        (self.per_second / n, (self.burst / n).max(1.0))
    }

    /// Waits until a call may be made, and takes its token.
    pub async fn acquire(&self) {
        let mut waited = false;
        loop {
            let wait = {
                let mut b = self.bucket.lock().expect("rate limiter mutex poisoned");
                let now = Instant::now();
                let (per_second, burst) = self.part();
                let elapsed = now.saturating_duration_since(b.refilled_at).as_secs_f64();
                b.tokens = (b.tokens + elapsed * per_second).min(burst);
                b.refilled_at = now;
                match b.paused_until {
                    Some(until) if until > now => until - now,
                    _ if b.tokens >= 1.0 => {
                        b.tokens -= 1.0;
                        if waited {
                            self.waits.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                    _ => Duration::from_secs_f64((1.0 - b.tokens) / per_second),
                }
            };
            waited = true;
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every call to this account back for `delay` (a 429 or Retry-After), and empties
    /// the bucket so that calls resume at the steady rate, not in a burst.
    pub fn pause(&self, delay: Duration) {
        let mut b = self.bucket.lock().expect("rate limiter mutex poisoned");
        let until = Instant::now() + delay;
        b.paused_until = Some(b.paused_until.map_or(until, |u| u.max(until)));
        b.tokens = 0.0;
    }

    /// How many calls have waited for a token or a pause so far.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn steady_rate_after_burst() {
        let limiter = RateLimiter::new(2.0, 2);
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        // 2 at once, then 4 more at 2 per second.
        assert_eq!(start.elapsed().as_millis(), 2000);
        assert_eq!(limiter.waits(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_budget_is_split() {
        let limiter = RateLimiter::new(4.0, 4);
        assert!(limiter.share(2));
        assert!(!limiter.share(2));
        // Burst 2 now, then 2 per second: 6 calls take 2 s.
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed().as_millis(), 2000);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_calls_back() {
        let limiter = RateLimiter::new(100.0, 10);
        limiter.pause(Duration::from_secs(7));
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }
}
