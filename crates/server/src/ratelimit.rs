//! Rate budgets as token buckets: a [`Budget`] says how many events a key may have in a burst
//! and how fast it refills; [`Buckets`] holds one process's buckets in memory.
//!
//! Several instances on one PostgreSQL share their buckets in the database instead
//! ([`crate::counters::Counters`], ADR 0018).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

const PRUNE_ABOVE: usize = 10_000;

/// A rate budget: bursts of `capacity` events per key, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Names the budget's buckets (keys of different budgets never meet).
    pub name: &'static str,
    /// Most tokens a bucket holds.
    pub capacity: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

impl Budget {
    /// Bursts of `per_minute`, and `per_minute` events per minute after that.
    pub fn per_minute(name: &'static str, per_minute: u32) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            name,
            capacity,
            per_second: capacity / 60.0,
        }
    }

    /// Bursts of `per_hour`, and `per_hour` events per hour after that.
    pub fn per_hour(name: &'static str, per_hour: u64) -> Self {
        let capacity = per_hour.max(1) as f64;
        Self {
            name,
            capacity,
            per_second: capacity / 3600.0,
        }
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets of one process, keyed by budget and key.
#[derive(Default)]
pub struct Buckets {
    buckets: Mutex<HashMap<(&'static str, String), Bucket>>,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets").finish_non_exhaustive()
    }
}

impl Buckets {
    /// Takes `n` tokens from `key`'s bucket of `budget` if there are that many; returns
    /// whether the events are allowed.
    pub fn take(&self, budget: &Budget, key: &str, n: u64) -> bool {
        let now = Instant::now();
        let n = n as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            // A bucket idle for an hour has refilled under every budget: forgetting it changes
            // nothing.
            buckets.retain(|_, b| now.duration_since(b.updated).as_secs() < 3600);
        }
        let bucket = buckets
            .entry((budget.name, key.to_owned()))
            .or_insert(Bucket {
                tokens: budget.capacity,
                updated: now,
            });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * budget.per_second).min(budget.capacity);
        bucket.updated = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_per_key_and_budget() {
        let buckets = Buckets::default();
        let budget = Budget::per_minute("a", 3);
        assert!((0..3).all(|_| buckets.take(&budget, "k", 1)));
        assert!(!buckets.take(&budget, "k", 1));
        assert!(buckets.take(&budget, "other", 1));
        assert!(buckets.take(&Budget::per_minute("b", 3), "k", 1));
    }

    #[test]
    fn several_tokens_at_once() {
        let buckets = Buckets::default();
        let budget = Budget::per_hour("samples", 1000);
        assert!(buckets.take(&budget, "d", 600));
        assert!(!buckets.take(&budget, "d", 600));
        assert!(buckets.take(&budget, "d", 400));
        assert!(buckets.take(&budget, "e", 1000));
        assert!(!buckets.take(&budget, "f", 1001));
    }
}
