//! Artifact ciphertexts on PostgreSQL: chunks of [`ARTIFACT_CHUNK`] bytes per artifact, under
//! the tenant policies, written once in one transaction and read chunk by chunk.

use std::io::Read;

use super::store::{PgStorage, Scope, Tx, exec, get, one, opt};
use crate::storage::StorageError;

/// Bytes per stored chunk (the last chunk of an artifact is shorter).
pub const ARTIFACT_CHUNK: u64 = 1024 * 1024;

impl PgStorage {
    /// Stores the `len` bytes `source` yields as `org_id`'s ciphertext `artifact_id`; nothing
    /// when it is already stored (content addressed). A source shorter than `len` stores
    /// nothing and is an error.
    pub fn put_artifact(
        &self,
        org_id: &str,
        artifact_id: &str,
        source: impl Read,
        len: u64,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            put_artifact_tx(tx, org_id, artifact_id, source, len)
        })
    }

    /// Chunk `chunk` of `org_id`'s ciphertext `artifact_id`, if stored.
    pub fn artifact_chunk(
        &self,
        org_id: &str,
        artifact_id: &str,
        chunk: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let chunk = i32::try_from(chunk).map_err(|_| StorageError::Conflict("chunk index"))?;
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                "SELECT bytes FROM artifact_chunks WHERE org_id = $1 AND artifact_id = $2 \
                 AND chunk = $3",
                &[&org_id, &artifact_id, &chunk],
                |row| get(row, 0),
            )
        })
    }
}

/// [`PgStorage::put_artifact`] inside a transaction scoped to `org_id`.
pub(super) fn put_artifact_tx(
    tx: &mut Tx<'_>,
    org_id: &str,
    artifact_id: &str,
    mut source: impl Read,
    len: u64,
) -> Result<(), StorageError> {
    let held: bool = get(
        &one(
            tx,
            "SELECT EXISTS (SELECT 1 FROM artifact_chunks WHERE artifact_id = $1)",
            &[&artifact_id],
        )?,
        0,
    )?;
    if held {
        return Ok(());
    }
    let insert = tx
        .prepare(
            "INSERT INTO artifact_chunks (org_id, artifact_id, chunk, bytes) \
             VALUES ($1, $2, $3, $4)",
        )
        .map_err(|e| super::schema::from_pg(&e))?;
    let (mut written, mut chunk) = (0u64, 0i32);
    let mut buffer = Vec::new();
    while written < len {
        let want = ARTIFACT_CHUNK.min(len - written);
        buffer.clear();
        let got = (&mut source)
            .take(want)
            .read_to_end(&mut buffer)
            .map_err(|e| StorageError::Io(e.to_string()))?;
        if got as u64 != want {
            return Err(StorageError::Io(
                "the artifact is shorter than its manifest".to_owned(),
            ));
        }
        tx.execute(&insert, &[&org_id, &artifact_id, &chunk, &buffer])
            .map_err(|e| super::schema::from_pg(&e))?;
        written += want;
        chunk += 1;
    }
    if len == 0 {
        exec(
            tx,
            "INSERT INTO artifact_chunks (org_id, artifact_id, chunk, bytes) \
             VALUES ($1, $2, 0, '')",
            &[&org_id, &artifact_id],
        )?;
    }
    Ok(())
}
