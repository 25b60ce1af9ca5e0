//! Large blobs (delivered model artifacts) stored as sealed chunks, written incrementally
//! as a download progresses and resumable from the stored length.
//!
//! Each chunk's associated data binds namespace, artifact lookup hash, chunk number and the
//! chunk's version, so chunks cannot be reordered or moved between artifacts. Finishing
//! seals a manifest (length and chunk count) that [`Artifacts::read`] checks, so dropped
//! trailing chunks are detected too; the ledger refuses the chunks and manifest of a deleted
//! or replaced artifact written back.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use zeroize::Zeroizing;

use super::Store;
use super::cipher::Cipher;
use super::error::{Result, StoreError, TamperKind};
use super::keys::now_millis;
use super::ledger::{self, Changes, Ledger, Table};
use super::types::{Namespace, SecretBytes};

pub(crate) const TABLE: &str = "artifacts";
pub(crate) const MANIFEST_COLUMN: &str = "manifest";
pub(crate) const CHUNK_TABLE: &str = "artifact_chunks";
pub(crate) const CHUNK_COLUMN: &str = "data";

const MAX_CHUNK_LEN: usize = Artifacts::MAX_CHUNK_LEN;
const MAX_ARTIFACT_LEN: u64 = Artifacts::MAX_ARTIFACT_LEN;

/// How much of an artifact is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactProgress {
    /// Total length announced by [`Artifacts::begin`].
    pub expected_len: u64,
    /// Bytes stored so far: the offset of the next [`Artifacts::append`].
    pub stored_len: u64,
    /// Whether [`Artifacts::finish`] sealed the artifact.
    pub complete: bool,
}

/// Row key of an artifact's manifest.
pub(crate) fn manifest_row(ns: &str, lookup: &[u8]) -> Vec<u8> {
    let mut row = Vec::with_capacity(1 + ns.len() + lookup.len());
    row.push(ns.len() as u8);
    row.extend_from_slice(ns.as_bytes());
    row.extend_from_slice(lookup);
    row
}

/// Row key of one chunk.
pub(crate) fn chunk_row(ns: &str, lookup: &[u8], seq: i64) -> Vec<u8> {
    let mut row = manifest_row(ns, lookup);
    row.extend_from_slice(&seq.to_be_bytes());
    row
}

fn manifest_bytes(len: u64, chunks: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&len.to_be_bytes());
    out[8..].copy_from_slice(&chunks.to_be_bytes());
    out
}

struct Row {
    id: i64,
    expected_len: u64,
    stored_len: u64,
    chunk_count: i64,
    manifest: Option<Vec<u8>>,
    manifest_version: i64,
}

impl Row {
    fn progress(&self) -> ArtifactProgress {
        ArtifactProgress {
            expected_len: self.expected_len,
            stored_len: self.stored_len,
            complete: self.manifest.is_some(),
        }
    }
}

fn find(conn: &Connection, ns: &str, lookup: &[u8]) -> Result<Option<Row>> {
    let row = conn
        .prepare_cached(
            "SELECT id, expected_len, stored_len, chunk_count, manifest, ver
             FROM artifacts WHERE namespace = ?1 AND lookup = ?2",
        )?
        .query_row(params![ns, lookup], |r| {
            Ok(Row {
                id: r.get(0)?,
                expected_len: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                stored_len: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                chunk_count: r.get(3)?,
                manifest: r.get(4)?,
                manifest_version: r.get(5)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// Chunked artifacts of a [`Store`]. Obtained from [`Store::artifacts`].
#[derive(Debug, Clone, Copy)]
pub struct Artifacts<'a> {
    store: &'a Store,
}

impl<'a> Artifacts<'a> {
    /// Largest plaintext stored in one chunk row; longer appends are split.
    pub const MAX_CHUNK_LEN: usize = 1 << 20;
    /// Largest artifact accepted by [`begin`](Self::begin).
    pub const MAX_ARTIFACT_LEN: u64 = 4 << 30;

    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Starts storing artifact `name` of `expected_len` bytes, or returns the progress of
    /// an existing one with the same length (resume). Fails with
    /// [`StoreError::ArtifactState`] if it exists with another length: delete it first.
    pub fn begin(
        &self,
        namespace: Namespace,
        name: &[u8],
        expected_len: u64,
    ) -> Result<ArtifactProgress> {
        let ns = namespace.checked()?;
        if expected_len > MAX_ARTIFACT_LEN {
            return Err(StoreError::InvalidInput("artifact too large"));
        }
        self.store.write(0, |tx, cipher, _| {
            let lookup = cipher.lookup(TABLE, ns, name);
            if let Some(row) = find(tx, ns, &lookup)? {
                if row.expected_len != expected_len {
                    return Err(StoreError::ArtifactState("exists with another length"));
                }
                return Ok(row.progress());
            }
            tx.prepare_cached(
                "INSERT INTO artifacts
                   (namespace, lookup, expected_len, stored_len, chunk_count, created_at)
                 VALUES (?1, ?2, ?3, 0, 0, ?4)",
            )?
            .execute(params![ns, lookup, expected_len as i64, now_millis()])?;
            Ok(ArtifactProgress {
                expected_len,
                stored_len: 0,
                complete: false,
            })
        })
    }

    /// Appends `bytes` at `offset`, which must equal the stored length (so a retried or
    /// duplicated download step is refused, not stored twice). One transaction.
    pub fn append(
        &self,
        namespace: Namespace,
        name: &[u8],
        offset: u64,
        bytes: &[u8],
    ) -> Result<ArtifactProgress> {
        let ns = namespace.checked()?;
        let pieces = bytes.len().div_ceil(MAX_CHUNK_LEN) as u64;
        self.store.write(pieces, |tx, cipher, changes| {
            append(tx, cipher, changes, ns, name, offset, bytes)
        })
    }

    /// Progress of artifact `name`, or `None` if it was never begun.
    pub fn progress(&self, namespace: Namespace, name: &[u8]) -> Result<Option<ArtifactProgress>> {
        let ns = namespace.checked()?;
        self.store.read(|conn, cipher, _| {
            Ok(find(conn, ns, &cipher.lookup(TABLE, ns, name))?.map(|r| r.progress()))
        })
    }

    /// Marks a fully stored artifact complete by sealing its manifest. Fails with
    /// [`StoreError::ArtifactState`] if bytes are missing.
    pub fn finish(&self, namespace: Namespace, name: &[u8]) -> Result<()> {
        let ns = namespace.checked()?;
        self.store.write(1, |tx, cipher, changes| {
            let lookup = cipher.lookup(TABLE, ns, name);
            let row = find(tx, ns, &lookup)?.ok_or(StoreError::ArtifactState("not begun"))?;
            if row.manifest.is_some() {
                return Ok(());
            }
            if row.stored_len != row.expected_len {
                return Err(StoreError::ArtifactState("incomplete"));
            }
            let chunks = u64::try_from(row.chunk_count).unwrap_or(0);
            let slot_row = manifest_row(ns, &lookup);
            let version = changes.assign(cipher, Table::Manifests, &slot_row)?;
            let manifest = cipher.seal(
                Table::Manifests.slot(&slot_row, version),
                &manifest_bytes(row.expected_len, chunks),
            )?;
            tx.prepare_cached(
                "UPDATE artifacts SET manifest = ?1, key_id = ?2, ver = ?3 WHERE id = ?4",
            )?
            .execute(params![
                manifest,
                cipher.primary_id(),
                ledger::to_sql(version)?,
                row.id
            ])?;
            Ok(())
        })
    }

    /// Reads a complete artifact into one zeroizing buffer (to hand to the model loader).
    /// Fails with [`StoreError::ArtifactState`] if it is incomplete and with
    /// [`StoreError::Tampered`] if any chunk or the manifest was altered, moved or dropped,
    /// or belongs to a deleted or replaced artifact written back.
    pub fn read(&self, namespace: Namespace, name: &[u8]) -> Result<Option<SecretBytes>> {
        let ns = namespace.checked()?;
        self.store.read(|conn, cipher, ledger| {
            let tx = conn.unchecked_transaction()?;
            let out = read(&tx, cipher, ledger, ns, name);
            tx.finish()?;
            out
        })
    }

    /// Deletes artifact `name` and its chunks; returns whether it existed.
    pub fn delete(&self, namespace: Namespace, name: &[u8]) -> Result<bool> {
        let ns = namespace.checked()?;
        self.store.write(0, |tx, cipher, changes| {
            let lookup = cipher.lookup(TABLE, ns, name);
            let slot_row = manifest_row(ns, &lookup);
            changes.remove(cipher, Table::Manifests, &slot_row);
            changes.remove_matching(cipher, Table::Chunks, &slot_row, |seq| seq.len() == 8);
            let n = tx
                .prepare_cached("DELETE FROM artifacts WHERE namespace = ?1 AND lookup = ?2")?
                .execute(params![ns, lookup])?;
            Ok(n > 0)
        })
    }
}

fn append(
    tx: &Transaction<'_>,
    cipher: &Cipher,
    changes: &mut Changes<'_>,
    ns: &str,
    name: &[u8],
    offset: u64,
    bytes: &[u8],
) -> Result<ArtifactProgress> {
    let lookup = cipher.lookup(TABLE, ns, name);
    let row = find(tx, ns, &lookup)?.ok_or(StoreError::ArtifactState("not begun"))?;
    if row.manifest.is_some() {
        return Err(StoreError::ArtifactState("already complete"));
    }
    if offset != row.stored_len {
        return Err(StoreError::ArtifactState(
            "offset differs from stored length",
        ));
    }
    let new_len = row.stored_len.saturating_add(bytes.len() as u64);
    if new_len > row.expected_len {
        return Err(StoreError::ArtifactState("longer than announced"));
    }
    let mut seq = row.chunk_count;
    for piece in bytes.chunks(MAX_CHUNK_LEN) {
        let slot_row = chunk_row(ns, &lookup, seq);
        let version = changes.assign(cipher, Table::Chunks, &slot_row)?;
        let sealed = cipher.seal(Table::Chunks.slot(&slot_row, version), piece)?;
        tx.prepare_cached(
            "INSERT INTO artifact_chunks (artifact_id, seq, key_id, data, ver)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            row.id,
            seq,
            cipher.primary_id(),
            sealed,
            ledger::to_sql(version)?
        ])?;
        seq += 1;
    }
    tx.prepare_cached("UPDATE artifacts SET stored_len = ?1, chunk_count = ?2 WHERE id = ?3")?
        .execute(params![new_len as i64, seq, row.id])?;
    Ok(ArtifactProgress {
        expected_len: row.expected_len,
        stored_len: new_len,
        complete: false,
    })
}

fn read(
    conn: &Connection,
    cipher: &Cipher,
    ledger: &Ledger,
    ns: &str,
    name: &[u8],
) -> Result<Option<SecretBytes>> {
    let lookup = cipher.lookup(TABLE, ns, name);
    let manifest_slot_row = manifest_row(ns, &lookup);
    let Some(row) = find(conn, ns, &lookup)? else {
        ledger.check_absent(Table::Manifests, &manifest_slot_row)?;
        return Ok(None);
    };
    let Some(manifest) = &row.manifest else {
        ledger.check_absent(Table::Manifests, &manifest_slot_row)?;
        return Err(StoreError::ArtifactState("incomplete"));
    };
    let manifest = cipher.open(
        Table::Manifests.slot(&manifest_slot_row, ledger::from_sql(row.manifest_version)),
        manifest,
    )?;
    ledger.check(Table::Manifests, &manifest_slot_row, row.manifest_version)?;
    let tampered = StoreError::Tampered {
        table: CHUNK_TABLE,
        column: CHUNK_COLUMN,
        kind: TamperKind::AuthenticationFailed,
    };
    if manifest.len() != 16 {
        return Err(tampered);
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&manifest[..8]);
    let len = u64::from_be_bytes(len);
    let mut chunks = [0u8; 8];
    chunks.copy_from_slice(&manifest[8..]);
    let chunks = u64::from_be_bytes(chunks);

    let capacity = usize::try_from(len.min(MAX_ARTIFACT_LEN)).unwrap_or(0);
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    let mut stmt = conn.prepare_cached(
        "SELECT seq, data, ver FROM artifact_chunks WHERE artifact_id = ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([row.id])?;
    let mut expected_seq = 0i64;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        if seq != expected_seq {
            return Err(tampered);
        }
        let sealed = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        let version: i64 = r.get(2)?;
        let slot_row = chunk_row(ns, &lookup, seq);
        let piece = cipher.open(
            Table::Chunks.slot(&slot_row, ledger::from_sql(version)),
            sealed,
        )?;
        ledger.check(Table::Chunks, &slot_row, version)?;
        out.extend_from_slice(&piece);
        expected_seq += 1;
    }
    if u64::try_from(expected_seq).ok() != Some(chunks) || out.len() as u64 != len {
        return Err(tampered);
    }
    Ok(Some(SecretBytes::from(out)))
}
