//! Append-only event records with time: personalization examples, the telemetry queue.
//!
//! Each payload is sealed; the associated data binds namespace, event id, time and the
//! payload's version, so a payload cannot be moved to another event and the time cannot be
//! altered unnoticed; the ledger refuses a deleted event written back and notices a
//! missing one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Transaction, params};

use super::Store;
use super::cipher::Cipher;
use super::error::{Result, StoreError};
use super::ledger::{self, Changes, Ledger, Table};
use super::retention;
use super::types::{Namespace, SecretBytes};

pub(crate) const TABLE: &str = "events";
pub(crate) const COLUMN: &str = "payload";

/// Identifier of an event: increasing in append order, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(i64);

impl EventId {
    /// The numeric id.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The id whose numeric value is `id` (as returned by [`get`](Self::get)), e.g. to resume
    /// a [`scan`](Events::scan) where a caller across an FFI boundary left off.
    pub fn from_raw(id: i64) -> Self {
        Self(id)
    }
}

/// One event read back from the store.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its id.
    pub id: EventId,
    /// When it was recorded.
    pub recorded_at: SystemTime,
    /// The opened payload (wiped on drop).
    pub payload: SecretBytes,
}

/// Row key bound into an event payload's associated data.
pub(crate) fn row_key(ns: &str, id: i64, recorded_at: i64) -> Vec<u8> {
    let mut row = Vec::with_capacity(17 + ns.len());
    row.push(ns.len() as u8);
    row.extend_from_slice(ns.as_bytes());
    row.extend_from_slice(&id.to_be_bytes());
    row.extend_from_slice(&recorded_at.to_be_bytes());
    row
}

/// The start of every event row key of namespace `ns`; an event id follows it.
pub(crate) fn namespace_prefix(ns: &str) -> Vec<u8> {
    let mut row = Vec::with_capacity(1 + ns.len());
    row.push(ns.len() as u8);
    row.extend_from_slice(ns.as_bytes());
    row
}

/// The event id of a row key's suffix after [`namespace_prefix`].
pub(crate) fn id_in_row_suffix(suffix: &[u8]) -> Option<i64> {
    let id: [u8; 8] = suffix.get(..8)?.try_into().ok()?;
    (suffix.len() == 16).then(|| i64::from_be_bytes(id))
}

fn to_millis(t: SystemTime) -> Result<i64> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| StoreError::InvalidInput("event time before 1970"))?;
    i64::try_from(d.as_millis()).map_err(|_| StoreError::InvalidInput("event time too far ahead"))
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Event records of a [`Store`]. Obtained from [`Store::events`].
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    store: &'a Store,
}

impl<'a> Events<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Appends an event recorded now. One transaction; applies the namespace's retention
    /// policy.
    pub fn append(&self, namespace: Namespace, payload: &[u8]) -> Result<EventId> {
        self.append_at(namespace, SystemTime::now(), payload)
    }

    /// Appends an event with an explicit time (for example when importing).
    pub fn append_at(
        &self,
        namespace: Namespace,
        recorded_at: SystemTime,
        payload: &[u8],
    ) -> Result<EventId> {
        let ns = namespace.checked()?;
        let at = to_millis(recorded_at)?;
        let policy = self.store.retention_for(&namespace).cloned();
        self.store.write(1, |tx, cipher, changes| {
            let id = append(tx, cipher, changes, ns, at, payload)?;
            if let Some(policy) = &policy {
                retention::enforce(tx, cipher, changes, ns, policy, super::keys::now_millis())?;
            }
            Ok(id)
        })
    }

    /// Up to `limit` events with ids greater than `after` (all when `None`), oldest first.
    /// Fails with [`StoreError::Tampered`] if any of them was altered or written back after
    /// being deleted, or if one is missing from the file.
    pub fn scan(
        &self,
        namespace: Namespace,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let ns = namespace.checked()?;
        let after = after.map_or(0, |id| id.0);
        self.store
            .read(|conn, cipher, ledger| scan(conn, cipher, ledger, ns, after, limit))
    }

    /// Deletes events up to and including `through` (acknowledged telemetry, consumed
    /// examples); returns how many.
    pub fn delete_through(&self, namespace: Namespace, through: EventId) -> Result<u64> {
        let ns = namespace.checked()?;
        self.store.write(0, |tx, cipher, changes| {
            changes.remove_matching(cipher, Table::Events, &namespace_prefix(ns), |suffix| {
                id_in_row_suffix(suffix).is_some_and(|id| id <= through.0)
            });
            let n = tx
                .prepare_cached("DELETE FROM events WHERE namespace = ?1 AND id <= ?2")?
                .execute(params![ns, through.0])?;
            Ok(n as u64)
        })
    }

    /// Deletes one event; returns whether it existed.
    pub fn delete(&self, namespace: Namespace, id: EventId) -> Result<bool> {
        let ns = namespace.checked()?;
        self.store.write(0, |tx, cipher, changes| {
            let mut prefix = namespace_prefix(ns);
            prefix.extend_from_slice(&id.0.to_be_bytes());
            changes.remove_matching(cipher, Table::Events, &prefix, |time| time.len() == 8);
            let n = tx
                .prepare_cached("DELETE FROM events WHERE namespace = ?1 AND id = ?2")?
                .execute(params![ns, id.0])?;
            Ok(n > 0)
        })
    }

    /// Number of events in `namespace`.
    pub fn count(&self, namespace: Namespace) -> Result<u64> {
        let ns = namespace.checked()?;
        self.store.read(|conn, _, _| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM events WHERE namespace = ?1")?
                .query_row([ns], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Bytes the events of `namespace` occupy, sealed (what retention counts).
    pub fn stored_bytes(&self, namespace: Namespace) -> Result<u64> {
        let ns = namespace.checked()?;
        self.store.read(|conn, _, _| {
            let n: i64 = conn.query_row(
                "SELECT COALESCE(SUM(byte_len), 0) FROM events WHERE namespace = ?1",
                [ns],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

/// Appends one event inside `tx`.
pub(crate) fn append(
    tx: &Transaction<'_>,
    cipher: &Cipher,
    changes: &mut Changes<'_>,
    ns: &str,
    at: i64,
    payload: &[u8],
) -> Result<EventId> {
    let id: i64 = tx
        .prepare_cached(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                        COALESCE((SELECT MAX(id) FROM events), 0)) + 1",
        )?
        .query_row([], |r| r.get(0))?;
    let row = row_key(ns, id, at);
    let version = changes.assign(cipher, Table::Events, &row)?;
    let sealed = cipher.seal(Table::Events.slot(&row, version), payload)?;
    tx.prepare_cached(
        "INSERT INTO events (id, namespace, recorded_at, key_id, payload, byte_len, ver)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        ns,
        at,
        cipher.primary_id(),
        sealed,
        sealed.len() as i64,
        ledger::to_sql(version)?
    ])?;
    Ok(EventId(id))
}

fn scan(
    conn: &Connection,
    cipher: &Cipher,
    ledger: &Ledger,
    ns: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, recorded_at, payload, ver FROM events
         WHERE namespace = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![ns, after, sql_limit])?;
    let mut out = Vec::new();
    let mut ids = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let at: i64 = r.get(1)?;
        let sealed = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        let version: i64 = r.get(3)?;
        let row = row_key(ns, id, at);
        let payload = cipher.open(Table::Events.slot(&row, ledger::from_sql(version)), sealed)?;
        ledger.check(Table::Events, &row, version)?;
        ids.push(id);
        out.push(Event {
            id: EventId(id),
            recorded_at: from_millis(at),
            payload: payload.into(),
        });
    }
    ledger.check_event_ids(ns, after, limit, &ids)?;
    Ok(out)
}
