//! The shared counters on PostgreSQL: used proof ids and rate buckets, one row each, outside
//! the tenant policies (they hold random ids and counter keys, no tenant data).

use super::store::{PgStorage, Scope, exec, opt};
use crate::ratelimit::Budget;
use crate::storage::StorageError;

/// A bucket idle this long has refilled under every budget (at most per hour): its row can go.
const IDLE_BUCKET_SECS: f64 = 2.0 * 3600.0;

impl PgStorage {
    /// Records `jti` in `scope` until `expires_at`: one statement, so of two instances
    /// recording the same id at once exactly one succeeds.
    pub fn first_use(
        &self,
        scope: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        self.run(Scope::Global, |tx| {
            Ok(opt(
                tx,
                "INSERT INTO used_proofs AS u (scope, jti, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope, jti) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE u.expires_at <= $4 RETURNING 1",
                &[&scope, &jti, &expires_at, &now],
                |_| Ok(()),
            )?
            .is_some())
        })
    }

    /// Takes `n` tokens from the shared bucket of `budget` and `key` at time `now` (Unix
    /// seconds): one statement that refills, checks and spends, under the row's lock. Blocking,
    /// like every call of the storage.
    pub fn take_tokens(
        &self,
        budget: &Budget,
        key: &str,
        n: u64,
        now: f64,
    ) -> Result<bool, StorageError> {
        let n = n as f64;
        if n > budget.capacity {
            return Ok(false);
        }
        let key = format!("{}:{key}", budget.name);
        self.run(Scope::Global, |tx| {
            Ok(opt(
                tx,
                "INSERT INTO rate_buckets AS b (key, tokens, updated_at) \
                 VALUES ($1, $2::float8 - $3::float8, $5::float8) \
                 ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at, \
                 tokens = LEAST($2::float8, b.tokens \
                 + GREATEST($5::float8 - b.updated_at, 0) * $4::float8) - $3::float8 \
                 WHERE LEAST($2::float8, b.tokens \
                 + GREATEST($5::float8 - b.updated_at, 0) * $4::float8) >= $3::float8 \
                 RETURNING 1",
                &[&key, &budget.capacity, &n, &budget.per_second, &now],
                |_| Ok(()),
            )?
            .is_some())
        })
    }

    /// Forgets expired proof ids and idle buckets.
    pub fn prune_counters(&self, now: i64) -> Result<u64, StorageError> {
        self.run(Scope::Global, |tx| {
            let proofs = exec(
                tx,
                "DELETE FROM used_proofs WHERE expires_at <= $1",
                &[&now],
            )?;
            let idle = now as f64 - IDLE_BUCKET_SECS;
            let buckets = exec(
                tx,
                "DELETE FROM rate_buckets WHERE updated_at < $1",
                &[&idle],
            )?;
            Ok(proofs + buckets)
        })
    }
}
