//! What the server instances of one database must agree on: which proof ids were used (a
//! captured proof replayed to another instance is refused) and how much of each rate budget is
//! spent. One instance on SQLite keeps them in memory; on PostgreSQL they are tables every
//! instance shares (ADR 0018).

use std::sync::Arc;

use crate::ratelimit::{Buckets, Budget};
use crate::replay::ReplayCache;
use crate::storage::{PgStorage, StorageError};

/// Where the counters live.
#[derive(Debug, Clone)]
pub enum Counters {
    /// In this process: one instance.
    Memory(Arc<MemoryCounters>),
    /// In the shared database.
    Postgres(Arc<PgStorage>),
}

/// The counters of one process.
#[derive(Debug)]
pub struct MemoryCounters {
    proofs: ReplayCache,
    buckets: Buckets,
}

impl Default for MemoryCounters {
    fn default() -> Self {
        Self {
            // Every call names its own expiry; the default keep is unused.
            proofs: ReplayCache::new(0),
            buckets: Buckets::default(),
        }
    }
}

impl Counters {
    /// Counters in this process.
    pub fn in_memory() -> Self {
        Self::Memory(Arc::new(MemoryCounters::default()))
    }

    /// Whether a call blocks on the database (and so belongs on a blocking thread).
    pub fn blocks(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Records that `jti` was used in `scope` until `expires_at`; `false` when it was recorded
    /// before and has not expired.
    pub fn first_use(
        &self,
        scope: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Memory(memory) => Ok(memory.proofs.first_use_until(scope, jti, expires_at, now)),
            Self::Postgres(pg) => pg.first_use(scope, jti, expires_at, now),
        }
    }

    /// Takes `n` tokens from `key`'s bucket of `budget`; whether the events are allowed.
    pub fn take(&self, budget: &Budget, key: &str, n: u64) -> Result<bool, StorageError> {
        match self {
            Self::Memory(memory) => Ok(memory.buckets.take(budget, key, n)),
            Self::Postgres(pg) => pg.take_tokens(budget, key, n, unix_seconds()),
        }
    }

    /// Forgets proof ids past their expiry and buckets that have refilled; how many.
    pub fn prune(&self, now: i64) -> Result<u64, StorageError> {
        match self {
            Self::Memory(_) => Ok(0),
            Self::Postgres(pg) => pg.prune_counters(now),
        }
    }
}

/// The time as fractional Unix seconds (buckets refill continuously).
fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
