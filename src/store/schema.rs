//! Schema migrations: numbered, append-only steps. Step `n` (1-based) moves a database
//! from `user_version = n - 1` to `n`. A fresh database runs every step, so a fresh store
//! and an upgraded one have the same schema (tested against a frozen version-1 file).
//! A step that needs the keys (re-sealing values) runs right after the SQL, in the same
//! transaction, from `Store::open`.
//!
//! Never edit a released step; append a new one.

use rusqlite::{Connection, Transaction};

use super::error::{Result, StoreError};

const V1: &str = "
CREATE TABLE keyset (
    key_id         INTEGER PRIMARY KEY,
    purpose        INTEGER NOT NULL,
    status         INTEGER NOT NULL,
    wrapped        BLOB    NOT NULL,
    canary         BLOB    NOT NULL,
    nonce_reserved INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE kv (
    id         INTEGER PRIMARY KEY,
    namespace  TEXT    NOT NULL,
    lookup     BLOB    NOT NULL,
    key_id     INTEGER NOT NULL,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (namespace, lookup)
) STRICT;
CREATE INDEX kv_key_id ON kv (key_id);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace   TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    key_id      INTEGER NOT NULL,
    payload     BLOB    NOT NULL
) STRICT;
CREATE INDEX events_namespace ON events (namespace, id);
CREATE INDEX events_key_id ON events (key_id);

CREATE TABLE artifacts (
    id           INTEGER PRIMARY KEY,
    namespace    TEXT    NOT NULL,
    lookup       BLOB    NOT NULL,
    expected_len INTEGER NOT NULL,
    stored_len   INTEGER NOT NULL,
    chunk_count  INTEGER NOT NULL,
    key_id       INTEGER,
    manifest     BLOB,
    created_at   INTEGER NOT NULL,
    UNIQUE (namespace, lookup)
) STRICT;

CREATE TABLE artifact_chunks (
    artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    key_id      INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (artifact_id, seq)
) STRICT;
CREATE INDEX artifact_chunks_key_id ON artifact_chunks (key_id);
";

/// Sizes for retention: sealed byte length of kv values and events, and the indexes that
/// let retention delete the oldest records of a namespace.
const V2: &str = "
ALTER TABLE kv ADD COLUMN byte_len INTEGER NOT NULL DEFAULT 0;
UPDATE kv SET byte_len = length(value);
CREATE INDEX kv_namespace_updated ON kv (namespace, updated_at);

ALTER TABLE events ADD COLUMN byte_len INTEGER NOT NULL DEFAULT 0;
UPDATE events SET byte_len = length(payload);
CREATE INDEX events_namespace_time ON events (namespace, recorded_at);
";

/// Rollback protection: each sealed value's version (bound into its associated data) and
/// the authenticated ledger of live versions (`ledger.rs`). The versions are filled in, and
/// every value re-sealed, by `ledger::authenticate_existing` in the same transaction, since
/// that needs the keys.
const V3: &str = "
ALTER TABLE kv ADD COLUMN ver INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN ver INTEGER NOT NULL DEFAULT 0;
ALTER TABLE artifact_chunks ADD COLUMN ver INTEGER NOT NULL DEFAULT 0;
ALTER TABLE artifacts ADD COLUMN ver INTEGER NOT NULL DEFAULT 0;

CREATE TABLE ledger (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB    NOT NULL,
    tag   BLOB    NOT NULL
) STRICT;
";

/// Every migration step, in order.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The schema version this build writes.
pub(crate) const LATEST: u32 = MIGRATIONS.len() as u32;

/// The database's `user_version`.
pub(crate) fn version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt)
}

/// Fails with [`StoreError::UnsupportedVersion`] when the file is newer than this build.
pub(crate) fn check_supported(conn: &Connection) -> Result<u32> {
    let found = version(conn)?;
    if found > LATEST {
        return Err(StoreError::UnsupportedVersion {
            found,
            supported: LATEST,
        });
    }
    Ok(found)
}

/// Applies every step above the database's version, inside `tx`.
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<()> {
    migrate_to(tx, LATEST)
}

fn migrate_to(tx: &Transaction<'_>, target: u32) -> Result<()> {
    let current = check_supported(tx)?;
    for (index, step) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(current as usize)
    {
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_reaches_latest() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        migrate(&tx).unwrap();
        tx.commit().unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
        let tx = conn.transaction().unwrap();
        migrate(&tx).unwrap();
        tx.commit().unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
    }

    /// Writes `testdata/store_v1.sqlite`, the frozen version-1 store that
    /// `tests/store_migrations.rs` upgrades. Run once, when version 1 was current; kept to
    /// show how the file was made (values of that time carry no version). Its KEK is
    /// `[0x76; 32]`.
    #[test]
    #[ignore = "regenerates a frozen fixture"]
    fn write_v1_fixture() {
        use crate::store::cipher::{Mode, Slot};
        use crate::store::{artifacts, events, keys, kv};
        use rusqlite::params;

        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/store/testdata/store_v1.sqlite");
        let _ = std::fs::remove_file(&path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut conn = Connection::open(&path).unwrap();
        let provider = keys::RawKeyProvider::new([0x76; 32]);
        let tx = conn.transaction().unwrap();
        migrate_to(&tx, 1).unwrap();
        keys::create_keyset(&tx, &provider).unwrap();
        let cipher = keys::load_cipher(&tx, &provider, Mode::Sealed).unwrap();
        let ns = "fixture";
        for (key, value) in [
            ("greeting", "hello from schema v1"),
            ("device", "credential v1"),
        ] {
            let lookup = cipher.lookup(kv::TABLE, ns, key.as_bytes());
            let row = kv::row_key(ns, &lookup);
            let sealed = cipher
                .seal(
                    Slot {
                        table: kv::TABLE,
                        column: kv::COLUMN,
                        row: &row,
                        version: None,
                    },
                    value.as_bytes(),
                )
                .unwrap();
            tx.execute(
                "INSERT INTO kv (namespace, lookup, key_id, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![ns, lookup, cipher.primary_id(), sealed, 1_700_000_000_000i64],
            )
            .unwrap();
        }
        for (id, payload) in [(1i64, "event one"), (2, "event two"), (3, "event three")] {
            let at = 1_700_000_000_000 + id;
            let row = events::row_key(ns, id, at);
            let sealed = cipher
                .seal(
                    Slot {
                        table: events::TABLE,
                        column: events::COLUMN,
                        row: &row,
                        version: None,
                    },
                    payload.as_bytes(),
                )
                .unwrap();
            tx.execute(
                "INSERT INTO events (id, namespace, recorded_at, key_id, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, ns, at, cipher.primary_id(), sealed],
            )
            .unwrap();
        }
        let body: Vec<u8> = (0..3000u32).map(|i| (i % 256) as u8).collect();
        let lookup = cipher.lookup(artifacts::TABLE, ns, b"model");
        let chunk_row = artifacts::chunk_row(ns, &lookup, 0);
        let chunk = cipher
            .seal(
                Slot {
                    table: artifacts::CHUNK_TABLE,
                    column: artifacts::CHUNK_COLUMN,
                    row: &chunk_row,
                    version: None,
                },
                &body,
            )
            .unwrap();
        let mut manifest = (body.len() as u64).to_be_bytes().to_vec();
        manifest.extend_from_slice(&1u64.to_be_bytes());
        let manifest_row = artifacts::manifest_row(ns, &lookup);
        let manifest = cipher
            .seal(
                Slot {
                    table: artifacts::TABLE,
                    column: artifacts::MANIFEST_COLUMN,
                    row: &manifest_row,
                    version: None,
                },
                &manifest,
            )
            .unwrap();
        tx.execute(
            "INSERT INTO artifacts (id, namespace, lookup, expected_len, stored_len, chunk_count, key_id, manifest, created_at)
             VALUES (1, ?1, ?2, ?3, ?3, 1, ?4, ?5, 0)",
            params![ns, lookup, body.len() as i64, cipher.primary_id(), manifest],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO artifact_chunks (artifact_id, seq, key_id, data) VALUES (1, 0, ?1, ?2)",
            params![cipher.primary_id(), chunk],
        )
        .unwrap();
        tx.commit().unwrap();
        conn.execute_batch("VACUUM").unwrap();
    }

    #[test]
    fn newer_database_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        assert!(matches!(
            check_supported(&conn),
            Err(StoreError::UnsupportedVersion { found, supported }) if found == LATEST + 1 && supported == LATEST
        ));
    }
}
