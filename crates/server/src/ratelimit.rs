//! In-memory token buckets keyed by org or source address.
//!
//! Buckets live in this process only; several server instances behind a balancer each enforce
//! their own limits (see ADR 0003).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

const PRUNE_ABOVE: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A set of token buckets, each holding up to `per_minute` tokens and refilling at that rate.
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    capacity: f64,
    per_second: f64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter allowing bursts of `per_minute` and `per_minute` events per minute after that.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            capacity: f64::from(per_minute.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
        }
    }

    fn with_bucket<T>(&self, key: &str, body: impl FnOnce(&mut Bucket) -> T) -> T {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let (capacity, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
        body(bucket)
    }

    /// A limiter allowing bursts of `per_hour` and `per_hour` events per hour after that.
    pub fn per_hour(per_hour: u64) -> Self {
        let capacity = per_hour.max(1) as f64;
        Self {
            buckets: Mutex::new(HashMap::new()),
            capacity,
            per_second: capacity / 3600.0,
        }
    }

    /// Takes one token if there is one; returns whether the event is allowed.
    pub fn try_acquire(&self, key: &str) -> bool {
        self.try_acquire_n(key, 1)
    }

    /// Takes `n` tokens if there are that many; returns whether the events are allowed.
    pub fn try_acquire_n(&self, key: &str, n: u64) -> bool {
        let n = n as f64;
        self.with_bucket(key, |b| {
            if b.tokens >= n {
                b.tokens -= n;
                true
            } else {
                false
            }
        })
    }

    /// Whether the bucket is empty, without taking anything.
    pub fn is_exhausted(&self, key: &str) -> bool {
        self.with_bucket(key, |b| b.tokens < 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_per_key() {
        let limiter = RateLimiter::per_minute(3);
        assert!(!limiter.is_exhausted("a"));
        assert!((0..3).all(|_| limiter.try_acquire("a")));
        assert!(!limiter.try_acquire("a"));
        assert!(limiter.is_exhausted("a"));
        assert!(limiter.try_acquire("b"));
    }

    #[test]
    fn several_tokens_at_once() {
        let limiter = RateLimiter::per_hour(1000);
        assert!(limiter.try_acquire_n("d", 600));
        assert!(!limiter.try_acquire_n("d", 600));
        assert!(limiter.try_acquire_n("d", 400));
        assert!(limiter.try_acquire_n("e", 1000));
    }
}
