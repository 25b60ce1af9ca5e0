//! Online data-key rotation: after [`Store::rotate_data_key`](super::Store::rotate_data_key)
//! new values are sealed with the new primary key at once (lazy part), and
//! [`reencrypt_batch`] re-seals older values in bounded transactions (batched part). A data
//! key is destroyed in the same transaction that proves no value uses it any more, so a
//! crash at any point leaves every value readable. Re-sealing keeps each value's version:
//! the plaintext is the same, so the ledger does not change.

use rusqlite::{Transaction, params};

use super::artifacts;
use super::cipher::{Cipher, KeyId, Slot};
use super::error::Result;
use super::events;
use super::keys;
use super::kv;
use super::ledger;

/// Outcome of one re-encryption batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    /// Values re-sealed by this batch.
    pub reencrypted: u64,
    /// Values still sealed under an older key.
    pub remaining: u64,
    /// Older data keys destroyed by this batch.
    pub destroyed_keys: u32,
}

impl RotationProgress {
    /// Whether every value is sealed under the primary key and older keys are gone.
    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }
}

/// Re-seals up to `max` values under the primary key and destroys unused older keys.
pub(crate) fn reencrypt_batch(
    tx: &Transaction<'_>,
    cipher: &Cipher,
    max: usize,
) -> Result<RotationProgress> {
    let primary = cipher.primary_id();
    let mut budget = i64::try_from(max).unwrap_or(i64::MAX);
    let mut done = 0u64;
    for pass in [kv_pass, event_pass, chunk_pass, manifest_pass] {
        if budget <= 0 {
            break;
        }
        let n = pass(tx, cipher, primary, budget)?;
        budget -= n as i64;
        done += n;
    }
    let remaining = remaining(tx, primary)?;
    let mut destroyed = 0;
    for id in keys::decrypt_only_keys(tx)? {
        if uses(tx, id)? == 0 {
            keys::destroy_key(tx, id)?;
            destroyed += 1;
        }
    }
    Ok(RotationProgress {
        reencrypted: done,
        remaining,
        destroyed_keys: destroyed,
    })
}

/// A value waiting to be re-sealed: where it is and its current envelope.
struct Pending {
    id: i64,
    seq: i64,
    row: Vec<u8>,
    version: u64,
    sealed: Vec<u8>,
}

/// Opens each pending value, seals it under the primary key and writes it back with
/// `update(pending, new envelope)`.
fn reseal(
    cipher: &Cipher,
    table: &'static str,
    column: &'static str,
    pending: Vec<Pending>,
    update: impl Fn(&Pending, &[u8]) -> rusqlite::Result<usize>,
) -> Result<u64> {
    for p in &pending {
        let slot = Slot {
            table,
            column,
            row: &p.row,
            version: Some(p.version),
        };
        let resealed = cipher.seal(slot, &cipher.open(slot, &p.sealed)?)?;
        update(p, &resealed)?;
    }
    Ok(pending.len() as u64)
}

fn kv_pass(tx: &Transaction<'_>, cipher: &Cipher, primary: KeyId, limit: i64) -> Result<u64> {
    let pending: Vec<Pending> = tx
        .prepare("SELECT id, namespace, lookup, value, ver FROM kv WHERE key_id != ?1 LIMIT ?2")?
        .query_map(params![primary, limit], |r| {
            let (ns, lookup): (String, Vec<u8>) = (r.get(1)?, r.get(2)?);
            Ok(Pending {
                id: r.get(0)?,
                seq: 0,
                row: kv::row_key(&ns, &lookup),
                version: ledger::from_sql(r.get(4)?),
                sealed: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let primary = cipher.primary_id();
    reseal(cipher, kv::TABLE, kv::COLUMN, pending, |p, sealed| {
        tx.prepare_cached("UPDATE kv SET value = ?1, key_id = ?2, byte_len = ?3 WHERE id = ?4")?
            .execute(params![sealed, primary, sealed.len() as i64, p.id])
    })
}

fn event_pass(tx: &Transaction<'_>, cipher: &Cipher, primary: KeyId, limit: i64) -> Result<u64> {
    let pending: Vec<Pending> = tx
        .prepare(
            "SELECT id, namespace, recorded_at, payload, ver FROM events
             WHERE key_id != ?1 LIMIT ?2",
        )?
        .query_map(params![primary, limit], |r| {
            let (id, ns, at): (i64, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(Pending {
                id,
                seq: 0,
                row: events::row_key(&ns, id, at),
                version: ledger::from_sql(r.get(4)?),
                sealed: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let primary = cipher.primary_id();
    reseal(
        cipher,
        events::TABLE,
        events::COLUMN,
        pending,
        |p, sealed| {
            tx.prepare_cached(
                "UPDATE events SET payload = ?1, key_id = ?2, byte_len = ?3 WHERE id = ?4",
            )?
            .execute(params![sealed, primary, sealed.len() as i64, p.id])
        },
    )
}

fn chunk_pass(tx: &Transaction<'_>, cipher: &Cipher, primary: KeyId, limit: i64) -> Result<u64> {
    let pending: Vec<Pending> = tx
        .prepare(
            "SELECT c.artifact_id, c.seq, a.namespace, a.lookup, c.data, c.ver
             FROM artifact_chunks c JOIN artifacts a ON a.id = c.artifact_id
             WHERE c.key_id != ?1 LIMIT ?2",
        )?
        .query_map(params![primary, limit], |r| {
            let (seq, ns, lookup): (i64, String, Vec<u8>) = (r.get(1)?, r.get(2)?, r.get(3)?);
            Ok(Pending {
                id: r.get(0)?,
                seq,
                row: artifacts::chunk_row(&ns, &lookup, seq),
                version: ledger::from_sql(r.get(5)?),
                sealed: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let primary = cipher.primary_id();
    reseal(
        cipher,
        artifacts::CHUNK_TABLE,
        artifacts::CHUNK_COLUMN,
        pending,
        |p, sealed| {
            tx.prepare_cached(
            "UPDATE artifact_chunks SET data = ?1, key_id = ?2 WHERE artifact_id = ?3 AND seq = ?4",
        )?
        .execute(params![sealed, primary, p.id, p.seq])
        },
    )
}

fn manifest_pass(tx: &Transaction<'_>, cipher: &Cipher, primary: KeyId, limit: i64) -> Result<u64> {
    let pending: Vec<Pending> = tx
        .prepare(
            "SELECT id, namespace, lookup, manifest, ver FROM artifacts
             WHERE manifest IS NOT NULL AND key_id != ?1 LIMIT ?2",
        )?
        .query_map(params![primary, limit], |r| {
            let (ns, lookup): (String, Vec<u8>) = (r.get(1)?, r.get(2)?);
            Ok(Pending {
                id: r.get(0)?,
                seq: 0,
                row: artifacts::manifest_row(&ns, &lookup),
                version: ledger::from_sql(r.get(4)?),
                sealed: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let primary = cipher.primary_id();
    reseal(
        cipher,
        artifacts::TABLE,
        artifacts::MANIFEST_COLUMN,
        pending,
        |p, sealed| {
            tx.prepare_cached("UPDATE artifacts SET manifest = ?1, key_id = ?2 WHERE id = ?3")?
                .execute(params![sealed, primary, p.id])
        },
    )
}

fn remaining(tx: &Transaction<'_>, primary: KeyId) -> Result<u64> {
    let n: i64 = tx.query_row(
        "SELECT (SELECT COUNT(*) FROM kv WHERE key_id != ?1)
              + (SELECT COUNT(*) FROM events WHERE key_id != ?1)
              + (SELECT COUNT(*) FROM artifact_chunks WHERE key_id != ?1)
              + (SELECT COUNT(*) FROM artifacts WHERE manifest IS NOT NULL AND key_id != ?1)",
        [primary],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn uses(tx: &Transaction<'_>, id: KeyId) -> Result<u64> {
    let n: i64 = tx.query_row(
        "SELECT (SELECT COUNT(*) FROM kv WHERE key_id = ?1)
              + (SELECT COUNT(*) FROM events WHERE key_id = ?1)
              + (SELECT COUNT(*) FROM artifact_chunks WHERE key_id = ?1)
              + (SELECT COUNT(*) FROM artifacts WHERE manifest IS NOT NULL AND key_id = ?1)",
        [id],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}
