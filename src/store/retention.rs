//! Retention limits: maximum age and maximum sealed bytes per namespace, enforced by
//! deleting the oldest records first.

use std::ops::AddAssign;
use std::time::Duration;

use rusqlite::{Transaction, params};

use super::cipher::Cipher;
use super::error::Result;
use super::events;
use super::kv;
use super::ledger::{Changes, Table};

/// Limits on what a namespace keeps. Each limit applies to the namespace's kv values and,
/// separately, to its events; the oldest records (by event time or kv update time) go first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
}

impl RetentionPolicy {
    /// No limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records older than `age` are deleted.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// The oldest records are deleted while the sealed bytes exceed `bytes`.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
}

/// How many records a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Events deleted.
    pub events_deleted: u64,
    /// Kv values deleted.
    pub kv_deleted: u64,
}

impl RetentionReport {
    /// Total records deleted.
    pub fn deleted(&self) -> u64 {
        self.events_deleted + self.kv_deleted
    }
}

impl AddAssign for RetentionReport {
    fn add_assign(&mut self, other: Self) {
        self.events_deleted += other.events_deleted;
        self.kv_deleted += other.kv_deleted;
    }
}

/// Applies `policy` to namespace `ns` at time `now_ms` (Unix milliseconds), retiring the
/// deleted rows from the ledger.
pub(crate) fn enforce(
    tx: &Transaction<'_>,
    cipher: &Cipher,
    changes: &mut Changes<'_>,
    ns: &str,
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Result<RetentionReport> {
    let mut report = RetentionReport::default();
    let mut delete_events = |sql: &str, bound: i64| -> Result<u64> {
        let deleted: Vec<(i64, i64)> = tx
            .prepare_cached(sql)?
            .query_map(params![ns, bound], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (id, at) in &deleted {
            changes.remove(cipher, Table::Events, &events::row_key(ns, *id, *at));
        }
        Ok(deleted.len() as u64)
    };
    if let Some(age) = policy.max_age {
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(age_ms);
        report.events_deleted += delete_events(
            "DELETE FROM events WHERE namespace = ?1 AND recorded_at < ?2
             RETURNING id, recorded_at",
            cutoff,
        )?;
    }
    if let Some(max) = policy.max_bytes {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        report.events_deleted += delete_events(
            "DELETE FROM events WHERE id IN (
               SELECT id FROM (
                 SELECT id, SUM(byte_len) OVER (ORDER BY id DESC) AS newer_bytes
                 FROM events WHERE namespace = ?1)
               WHERE newer_bytes > ?2)
             RETURNING id, recorded_at",
            max,
        )?;
    }
    let mut delete_kv = |sql: &str, bound: i64| -> Result<u64> {
        let deleted: Vec<Vec<u8>> = tx
            .prepare_cached(sql)?
            .query_map(params![ns, bound], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for lookup in &deleted {
            changes.remove(cipher, Table::Kv, &kv::row_key(ns, lookup));
        }
        Ok(deleted.len() as u64)
    };
    if let Some(age) = policy.max_age {
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(age_ms);
        report.kv_deleted += delete_kv(
            "DELETE FROM kv WHERE namespace = ?1 AND updated_at < ?2 RETURNING lookup",
            cutoff,
        )?;
    }
    if let Some(max) = policy.max_bytes {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        report.kv_deleted += delete_kv(
            "DELETE FROM kv WHERE id IN (
               SELECT id FROM (
                 SELECT id, SUM(byte_len) OVER (ORDER BY updated_at DESC, id DESC)
                        AS newer_bytes
                 FROM kv WHERE namespace = ?1)
               WHERE newer_bytes > ?2)
             RETURNING lookup",
            max,
        )?;
    }
    Ok(report)
}
