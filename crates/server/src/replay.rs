//! The proof replay cache: every accepted proof id (`jti`) is remembered, per device, for
//! longer than a proof stays fresh, so a captured proof cannot be sent twice.

use std::collections::HashMap;
use std::sync::Mutex;

const PRUNE_EVERY: u64 = 4096;

struct Seen {
    entries: HashMap<String, i64>,
    inserts: u64,
}

/// Remembers proof ids until they could no longer pass the freshness check.
pub struct ReplayCache {
    seen: Mutex<Seen>,
    keep_secs: i64,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("keep_secs", &self.keep_secs)
            .finish_non_exhaustive()
    }
}

impl ReplayCache {
    /// A cache for proofs fresh within `freshness_secs` of the server clock.
    pub fn new(freshness_secs: i64) -> Self {
        Self {
            seen: Mutex::new(Seen {
                entries: HashMap::new(),
                inserts: 0,
            }),
            keep_secs: 2 * freshness_secs + 1,
        }
    }

    /// Records `jti` for `scope` (a device id or token hash). Returns false if it was seen.
    pub fn first_use(&self, scope: &str, jti: &str, now: i64) -> bool {
        self.first_use_until(scope, jti, now + self.keep_secs, now)
    }

    /// Records `jti` for `scope` until `expires_at`. Returns false if it was recorded before
    /// and has not expired.
    pub fn first_use_until(&self, scope: &str, jti: &str, expires_at: i64, now: i64) -> bool {
        let key = format!("{scope}\0{jti}");
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.inserts += 1;
        if seen.inserts.is_multiple_of(PRUNE_EVERY) {
            seen.entries.retain(|_, expires| *expires > now);
        }
        match seen.entries.get(&key) {
            Some(expires) if *expires > now => false,
            _ => {
                seen.entries.insert(key, expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_refused_per_scope() {
        let cache = ReplayCache::new(60);
        assert!(cache.first_use("dev1", "j1", 100));
        assert!(!cache.first_use("dev1", "j1", 150));
        assert!(cache.first_use("dev2", "j1", 150));
        assert!(cache.first_use("dev1", "j1", 100 + 121 + 1));
    }
}
