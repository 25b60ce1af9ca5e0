//! Key/value blobs: device credentials, personalization head weights, embedding caches.
//!
//! Keys are stored only as HMAC lookup hashes, so they can be looked up but not listed.
//! Values are sealed; the associated data binds namespace, lookup hash and the value's
//! version, which the ledger checks is the live one.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::Store;
use super::cipher::Cipher;
use super::error::Result;
use super::keys::now_millis;
use super::ledger::{self, Changes, Ledger, Table};
use super::retention;
use super::types::{Namespace, SecretBytes};

pub(crate) const TABLE: &str = "kv";
pub(crate) const COLUMN: &str = "value";

/// Row key bound into a kv value's associated data.
pub(crate) fn row_key(namespace: &str, lookup: &[u8]) -> Vec<u8> {
    let mut row = Vec::with_capacity(1 + namespace.len() + lookup.len());
    row.push(namespace.len() as u8);
    row.extend_from_slice(namespace.as_bytes());
    row.extend_from_slice(lookup);
    row
}

/// The start of every kv row key of namespace `ns`.
pub(crate) fn namespace_prefix(ns: &str) -> Vec<u8> {
    row_key(ns, &[])
}

/// Key/value blobs of a [`Store`]. Obtained from [`Store::kv`].
#[derive(Debug, Clone, Copy)]
pub struct Kv<'a> {
    store: &'a Store,
}

impl<'a> Kv<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Stores `value` under `key`, replacing any previous value. One transaction; applies
    /// the namespace's retention policy.
    pub fn put(&self, namespace: Namespace, key: &[u8], value: &[u8]) -> Result<()> {
        let ns = namespace.checked()?;
        let policy = self.store.retention_for(&namespace).cloned();
        self.store.write(1, |tx, cipher, changes| {
            put(tx, cipher, changes, ns, key, value, now_millis())?;
            if let Some(policy) = &policy {
                retention::enforce(tx, cipher, changes, ns, policy, now_millis())?;
            }
            Ok(())
        })
    }

    /// The value under `key`, or `None`. Fails with
    /// [`StoreError::Tampered`](super::StoreError::Tampered) if the stored value was altered,
    /// is older than the last one written under `key`, was written back after a delete, or
    /// is missing from the file although it was never deleted.
    pub fn get(&self, namespace: Namespace, key: &[u8]) -> Result<Option<SecretBytes>> {
        let ns = namespace.checked()?;
        self.store
            .read(|conn, cipher, ledger| get(conn, cipher, ledger, ns, key))
    }

    /// Whether a value is stored under `key` (the value is not opened, its version is
    /// checked against the ledger).
    pub fn contains(&self, namespace: Namespace, key: &[u8]) -> Result<bool> {
        let ns = namespace.checked()?;
        self.store.read(|conn, cipher, ledger| {
            let lookup = cipher.lookup(TABLE, ns, key);
            let row = row_key(ns, &lookup);
            let found: Option<i64> = conn
                .prepare_cached("SELECT ver FROM kv WHERE namespace = ?1 AND lookup = ?2")?
                .query_row(params![ns, lookup], |r| r.get(0))
                .optional()?;
            match found {
                Some(version) => ledger.check(Table::Kv, &row, version).map(|()| true),
                None => ledger.check_absent(Table::Kv, &row).map(|()| false),
            }
        })
    }

    /// Deletes the value under `key`; returns whether there was one.
    pub fn delete(&self, namespace: Namespace, key: &[u8]) -> Result<bool> {
        let ns = namespace.checked()?;
        self.store.write(0, |tx, cipher, changes| {
            let lookup = cipher.lookup(TABLE, ns, key);
            changes.remove(cipher, Table::Kv, &row_key(ns, &lookup));
            let n = tx
                .prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND lookup = ?2")?
                .execute(params![ns, lookup])?;
            Ok(n > 0)
        })
    }

    /// Number of values in `namespace`.
    pub fn len(&self, namespace: Namespace) -> Result<u64> {
        let ns = namespace.checked()?;
        self.store.read(|conn, _, _| {
            let n: i64 =
                conn.query_row("SELECT COUNT(*) FROM kv WHERE namespace = ?1", [ns], |r| {
                    r.get(0)
                })?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Deletes every value in `namespace` and checkpoints; returns how many there were.
    pub fn clear(&self, namespace: Namespace) -> Result<u64> {
        let ns = namespace.checked()?;
        let n = self.store.write(0, |tx, cipher, changes| {
            changes.remove_matching(cipher, Table::Kv, &namespace_prefix(ns), |_| true);
            Ok(tx.execute("DELETE FROM kv WHERE namespace = ?1", [ns])?)
        })?;
        self.store.checkpoint()?;
        Ok(n as u64)
    }
}

/// Inserts or replaces one value.
pub(crate) fn put(
    tx: &Transaction<'_>,
    cipher: &Cipher,
    changes: &mut Changes<'_>,
    ns: &str,
    key: &[u8],
    value: &[u8],
    now: i64,
) -> Result<()> {
    let lookup = cipher.lookup(TABLE, ns, key);
    let row = row_key(ns, &lookup);
    let version = changes.assign(cipher, Table::Kv, &row)?;
    let sealed = cipher.seal(Table::Kv.slot(&row, version), value)?;
    tx.prepare_cached(
        "INSERT INTO kv (namespace, lookup, key_id, value, updated_at, byte_len, ver)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (namespace, lookup) DO UPDATE SET
           key_id = excluded.key_id, value = excluded.value,
           updated_at = excluded.updated_at, byte_len = excluded.byte_len,
           ver = excluded.ver",
    )?
    .execute(params![
        ns,
        lookup,
        cipher.primary_id(),
        sealed,
        now,
        sealed.len() as i64,
        ledger::to_sql(version)?
    ])?;
    Ok(())
}

/// Reads and opens one value.
pub(crate) fn get(
    conn: &Connection,
    cipher: &Cipher,
    ledger: &Ledger,
    ns: &str,
    key: &[u8],
) -> Result<Option<SecretBytes>> {
    let lookup = cipher.lookup(TABLE, ns, key);
    let row = row_key(ns, &lookup);
    let found: Option<(Vec<u8>, i64)> = conn
        .prepare_cached("SELECT value, ver FROM kv WHERE namespace = ?1 AND lookup = ?2")?
        .query_row(params![ns, lookup], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((sealed, version)) = found else {
        ledger.check_absent(Table::Kv, &row)?;
        return Ok(None);
    };
    let value = cipher.open(Table::Kv.slot(&row, ledger::from_sql(version)), &sealed)?;
    ledger.check(Table::Kv, &row, version)?;
    Ok(Some(SecretBytes::from(value)))
}
