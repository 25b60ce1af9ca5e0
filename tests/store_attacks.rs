//! Attacks on the stored bytes: bit flips, swapped rows, truncation, relabelled versions
//! and key ids, and a wrong key at open. The attacker edits the SQLite file directly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgekeep::store::{KeyProvider, Namespace, RawKeyProvider, Store, StoreError, TamperKind};
use ring::digest;
use rusqlite::types::Value;
use rusqlite::{Connection, params};

const NS: Namespace = Namespace::new("attack.test");
const KEK: [u8; 32] = [0x11; 32];

fn provider() -> Arc<dyn KeyProvider> {
    Arc::new(RawKeyProvider::new(KEK))
}

fn setup() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = Store::builder(&path)
        .key_provider(provider())
        .open()
        .unwrap();
    (dir, path, store)
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn kv_blob(conn: &Connection, id: i64) -> Vec<u8> {
    conn.query_row("SELECT value FROM kv WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn set_kv_blob(conn: &Connection, id: i64, blob: &[u8]) {
    conn.execute("UPDATE kv SET value = ?1 WHERE id = ?2", params![blob, id])
        .unwrap();
}

fn tamper_kind(result: Result<impl std::fmt::Debug, StoreError>) -> TamperKind {
    match result {
        Err(StoreError::Tampered { kind, .. }) => kind,
        other => panic!("expected a tamper error, got {other:?}"),
    }
}

#[test]
fn every_single_bit_flip_of_a_value_is_detected() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"k", &[0xA5; 100]).unwrap();
    let conn = raw(&path);
    let original = kv_blob(&conn, 1);
    for bit in 0..original.len() * 8 {
        let mut flipped = original.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        set_kv_blob(&conn, 1, &flipped);
        let err = store.kv().get(NS, b"k").unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Tampered {
                    table: "kv",
                    column: "value",
                    ..
                }
            ),
            "bit {bit}: {err:?}"
        );
    }
    set_kv_blob(&conn, 1, &original);
    assert_eq!(
        store.kv().get(NS, b"k").unwrap().unwrap().as_bytes(),
        &[0xA5; 100]
    );
}

#[test]
fn swapped_rows_both_fail() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"alice", b"alice's value").unwrap();
    store.kv().put(NS, b"bob", b"bob's value").unwrap();
    let conn = raw(&path);
    let (a, b) = (kv_blob(&conn, 1), kv_blob(&conn, 2));
    set_kv_blob(&conn, 1, &b);
    set_kv_blob(&conn, 2, &a);
    assert_eq!(
        tamper_kind(store.kv().get(NS, b"alice")),
        TamperKind::AuthenticationFailed
    );
    assert_eq!(
        tamper_kind(store.kv().get(NS, b"bob")),
        TamperKind::AuthenticationFailed
    );

    // Moving a value to another namespace or into an event fails too.
    set_kv_blob(&conn, 1, &a);
    set_kv_blob(&conn, 2, &b);
    conn.execute("UPDATE kv SET namespace = 'attack.other' WHERE id = 1", [])
        .unwrap();
    // Lookup hashes bind the namespace, so the moved row is not found; the ledger knows it
    // was never deleted.
    assert_eq!(
        tamper_kind(store.kv().get(NS, b"alice")),
        TamperKind::RowSetChanged
    );
    store.events().append(NS, b"an event").unwrap();
    conn.execute("UPDATE events SET payload = ?1", [&b])
        .unwrap();
    assert_eq!(
        tamper_kind(store.events().scan(NS, None, 10)),
        TamperKind::AuthenticationFailed
    );
}

#[test]
fn swapped_events_and_altered_times_fail() {
    let (_dir, path, store) = setup();
    let first = store.events().append(NS, b"first").unwrap();
    let second = store.events().append(NS, b"second").unwrap();
    let conn = raw(&path);
    let get = |id: i64| -> Vec<u8> {
        conn.query_row("SELECT payload FROM events WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let (a, b) = (get(first.get()), get(second.get()));
    conn.execute(
        "UPDATE events SET payload = ?1 WHERE id = ?2",
        params![b, first.get()],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET payload = ?1 WHERE id = ?2",
        params![a, second.get()],
    )
    .unwrap();
    assert!(store.events().scan(NS, None, 1).is_err());
    assert!(store.events().scan(NS, Some(first), 1).is_err());
    conn.execute(
        "UPDATE events SET payload = ?1 WHERE id = ?2",
        params![a, first.get()],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET payload = ?1 WHERE id = ?2",
        params![b, second.get()],
    )
    .unwrap();
    assert_eq!(store.events().scan(NS, None, 10).unwrap().len(), 2);
    conn.execute(
        "UPDATE events SET recorded_at = recorded_at + 1 WHERE id = ?1",
        [first.get()],
    )
    .unwrap();
    assert_eq!(
        tamper_kind(store.events().scan(NS, None, 10)),
        TamperKind::AuthenticationFailed
    );
}

#[test]
fn truncation_version_byte_and_key_id_give_clean_errors() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"k", b"some value").unwrap();
    let conn = raw(&path);
    let original = kv_blob(&conn, 1);

    for keep in [0, 1, 5, 16, 17, 20, original.len() - 1] {
        set_kv_blob(&conn, 1, &original[..keep]);
        let kind = tamper_kind(store.kv().get(NS, b"k"));
        assert!(
            matches!(
                kind,
                TamperKind::Truncated | TamperKind::AuthenticationFailed
            ),
            "{keep}: {kind:?}"
        );
    }
    let mut wrong_version = original.clone();
    wrong_version[0] = 2;
    set_kv_blob(&conn, 1, &wrong_version);
    assert_eq!(
        tamper_kind(store.kv().get(NS, b"k")),
        TamperKind::UnknownFormat
    );

    let mut wrong_key = original.clone();
    wrong_key[1..5].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
    set_kv_blob(&conn, 1, &wrong_key);
    assert_eq!(
        tamper_kind(store.kv().get(NS, b"k")),
        TamperKind::UnknownKeyId
    );

    set_kv_blob(&conn, 1, &original);
    assert_eq!(
        store.kv().get(NS, b"k").unwrap().unwrap().as_bytes(),
        b"some value"
    );
}

#[test]
fn artifact_chunks_cannot_be_reordered_dropped_or_moved() {
    let (_dir, path, store) = setup();
    let arts = store.artifacts();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
    for name in [&b"a"[..], b"b"] {
        arts.begin(NS, name, body.len() as u64).unwrap();
        arts.append(NS, name, 0, &body).unwrap();
        arts.finish(NS, name).unwrap();
    }
    let conn = raw(&path);
    let chunk = |artifact: i64, seq: i64| -> Vec<u8> {
        conn.query_row(
            "SELECT data FROM artifact_chunks WHERE artifact_id = ?1 AND seq = ?2",
            params![artifact, seq],
            |r| r.get(0),
        )
        .unwrap()
    };
    let set = |artifact: i64, seq: i64, data: &[u8]| {
        conn.execute(
            "UPDATE artifact_chunks SET data = ?1 WHERE artifact_id = ?2 AND seq = ?3",
            params![data, artifact, seq],
        )
        .unwrap();
    };
    let (a0, a1, b0) = (chunk(1, 0), chunk(1, 1), chunk(2, 0));
    set(1, 0, &a1);
    set(1, 1, &a0);
    assert!(matches!(
        arts.read(NS, b"a"),
        Err(StoreError::Tampered {
            table: "artifact_chunks",
            ..
        })
    ));
    set(1, 0, &b0);
    set(1, 1, &a1);
    assert!(matches!(
        arts.read(NS, b"a"),
        Err(StoreError::Tampered { .. })
    ));
    set(1, 0, &a0);
    assert_eq!(arts.read(NS, b"a").unwrap().unwrap().len(), body.len());
    conn.execute(
        "DELETE FROM artifact_chunks WHERE artifact_id = 1 AND seq = 2",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE artifacts SET chunk_count = 2, stored_len = 2097152 WHERE id = 1",
        [],
    )
    .unwrap();
    assert!(matches!(
        arts.read(NS, b"a"),
        Err(StoreError::Tampered { .. })
    ));
    assert_eq!(arts.read(NS, b"b").unwrap().unwrap().len(), body.len());
}

fn file_hash(path: &Path) -> Vec<u8> {
    digest::digest(&digest::SHA256, &std::fs::read(path).unwrap())
        .as_ref()
        .to_vec()
}

#[test]
fn wrong_key_is_typed_and_leaves_the_file_untouched() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"k", b"precious").unwrap();
    store.events().append(NS, b"precious event").unwrap();
    store.close().unwrap();
    let before = file_hash(&path);
    for _ in 0..3 {
        let wrong = Arc::new(RawKeyProvider::new([0x22; 32]));
        let err = Store::builder(&path)
            .key_provider(wrong)
            .open()
            .unwrap_err();
        assert!(matches!(err, StoreError::WrongKey), "{err:?}");
    }
    assert_eq!(file_hash(&path), before);
    let store = Store::builder(&path)
        .key_provider(provider())
        .open()
        .unwrap();
    assert_eq!(
        store.kv().get(NS, b"k").unwrap().unwrap().as_bytes(),
        b"precious"
    );
}

/// A host provider that hands back garbage instead of failing (a misbehaving keystore):
/// the canary still reports a wrong key.
struct GarbageProvider;

impl KeyProvider for GarbageProvider {
    fn wrap_key(&self, _: u32, key: &[u8]) -> Result<Vec<u8>, edgekeep::store::KeyProviderError> {
        Ok(key.to_vec())
    }

    fn unwrap_key(
        &self,
        _: u32,
        _: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, edgekeep::store::KeyProviderError> {
        Ok(zeroize::Zeroizing::new(vec![0u8; 32]))
    }
}

#[test]
fn canary_catches_a_provider_that_returns_the_wrong_key() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"k", b"v").unwrap();
    store.close().unwrap();
    let before = file_hash(&path);
    let err = Store::builder(&path)
        .key_provider(Arc::new(GarbageProvider))
        .open()
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongKey), "{err:?}");
    assert_eq!(file_hash(&path), before);
}

// Rollback and resurrection (issue 12, finding 9). The attacker keeps whole rows (every
// column, as read from the file) and writes them back later.

/// Every column of the rows of `table` selected by `filter`, as stored.
fn rows(conn: &Connection, table: &str, filter: &str) -> Vec<Vec<(String, Value)>> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} WHERE {filter}"))
        .unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_map([], |r| {
        (0..names.len())
            .map(|i| Ok((names[i].clone(), r.get::<_, Value>(i)?)))
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Writes `saved` rows back into `table`, replacing any row with the same primary key.
fn write_back(conn: &Connection, table: &str, saved: &[Vec<(String, Value)>]) {
    for row in saved {
        let cols: Vec<&str> = row.iter().map(|(c, _)| c.as_str()).collect();
        let marks: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT OR REPLACE INTO {table} ({}) VALUES ({})",
            cols.join(", "),
            marks.join(", ")
        );
        let values: Vec<&Value> = row.iter().map(|(_, v)| v).collect();
        conn.execute(&sql, rusqlite::params_from_iter(values))
            .unwrap();
    }
}

fn reopen(path: &Path) -> Result<Store, StoreError> {
    Store::builder(path).key_provider(provider()).open()
}

fn expect_tampered<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) -> TamperKind {
    match result {
        Err(StoreError::Tampered { kind, .. }) => kind,
        other => panic!("{what}: expected a tamper error, got {other:?}"),
    }
}

#[test]
fn an_older_kv_value_written_back_is_tampered() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"access", b"granted").unwrap();
    store.kv().put(NS, b"other", b"unrelated").unwrap();
    let conn = raw(&path);
    let granted = rows(&conn, "kv", "id = 1");
    store.kv().put(NS, b"access", b"revoked").unwrap();
    write_back(&conn, "kv", &granted);

    let kind = expect_tampered("get after replay", store.kv().get(NS, b"access"));
    assert_eq!(kind, TamperKind::Replayed);
    assert_eq!(
        expect_tampered("contains after replay", store.kv().contains(NS, b"access")),
        TamperKind::Replayed
    );
    assert_eq!(
        store.kv().get(NS, b"other").unwrap().unwrap().as_bytes(),
        b"unrelated",
        "other rows stay readable"
    );
    drop(store);
    // Offline, the replayed row no longer matches the authenticated ledger.
    assert_eq!(
        expect_tampered("reopen after replay", reopen(&path)),
        TamperKind::RowSetChanged
    );
}

#[test]
fn a_deleted_kv_row_written_back_is_tampered() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"session", b"live token").unwrap();
    let conn = raw(&path);
    let saved = rows(&conn, "kv", "id = 1");
    assert!(store.kv().delete(NS, b"session").unwrap());
    write_back(&conn, "kv", &saved);
    assert_eq!(
        expect_tampered("get after resurrection", store.kv().get(NS, b"session")),
        TamperKind::Replayed
    );
    drop(store);
    assert_eq!(
        expect_tampered("reopen after resurrection", reopen(&path)),
        TamperKind::RowSetChanged
    );

    // A row cleared with its namespace cannot come back either.
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"a", b"1").unwrap();
    store.kv().put(NS, b"b", b"2").unwrap();
    let conn = raw(&path);
    let saved = rows(&conn, "kv", "1");
    assert_eq!(store.kv().clear(NS).unwrap(), 2);
    write_back(&conn, "kv", &saved);
    assert_eq!(
        expect_tampered("get after clear and resurrection", store.kv().get(NS, b"a")),
        TamperKind::Replayed
    );
}

#[test]
fn a_deleted_kv_row_is_reported_missing() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"pin", b"publisher key").unwrap();
    let conn = raw(&path);
    conn.execute("DELETE FROM kv", []).unwrap();
    assert_eq!(
        expect_tampered("get after deletion", store.kv().get(NS, b"pin")),
        TamperKind::RowSetChanged
    );
    drop(store);
    assert_eq!(
        expect_tampered("reopen after deletion", reopen(&path)),
        TamperKind::RowSetChanged
    );
}

#[test]
fn acknowledged_events_written_back_are_tampered() {
    let (_dir, path, store) = setup();
    let first = store.events().append(NS, b"sent once").unwrap();
    store.events().append(NS, b"pending").unwrap();
    let conn = raw(&path);
    let saved = rows(&conn, "events", &format!("id = {}", first.get()));
    assert_eq!(store.events().delete_through(NS, first).unwrap(), 1);
    write_back(&conn, "events", &saved);
    assert_eq!(
        expect_tampered("scan after resurrection", store.events().scan(NS, None, 10)),
        TamperKind::Replayed
    );
    drop(store);
    assert_eq!(
        expect_tampered("reopen after resurrection", reopen(&path)),
        TamperKind::RowSetChanged
    );
}

#[test]
fn a_deleted_event_is_reported_missing() {
    let (_dir, path, store) = setup();
    for i in 0..3u8 {
        store.events().append(NS, &[i; 10]).unwrap();
    }
    let conn = raw(&path);
    conn.execute("DELETE FROM events WHERE id = 2", []).unwrap();
    assert_eq!(
        expect_tampered("scan after deletion", store.events().scan(NS, None, 10)),
        TamperKind::RowSetChanged
    );
}

#[test]
fn a_replaced_artifact_cannot_be_rolled_back() {
    let (_dir, path, store) = setup();
    let arts = store.artifacts();
    let old: Vec<u8> = vec![1; 1_500_000];
    let new: Vec<u8> = vec![2; 1_500_000];
    arts.begin(NS, b"model", old.len() as u64).unwrap();
    arts.append(NS, b"model", 0, &old).unwrap();
    arts.finish(NS, b"model").unwrap();
    let conn = raw(&path);
    let saved_artifact = rows(&conn, "artifacts", "1");
    let saved_chunks = rows(&conn, "artifact_chunks", "1");
    assert!(arts.delete(NS, b"model").unwrap());
    arts.begin(NS, b"model", new.len() as u64).unwrap();
    arts.append(NS, b"model", 0, &new).unwrap();
    arts.finish(NS, b"model").unwrap();

    conn.execute("DELETE FROM artifacts", []).unwrap();
    write_back(&conn, "artifacts", &saved_artifact);
    write_back(&conn, "artifact_chunks", &saved_chunks);
    assert_eq!(
        expect_tampered("read after rollback", arts.read(NS, b"model")),
        TamperKind::Replayed
    );
    drop(store);
    assert_eq!(
        expect_tampered("reopen after rollback", reopen(&path)),
        TamperKind::RowSetChanged
    );
}

#[test]
fn whole_rows_swapped_between_keys_are_tampered() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"alice", b"alice's value").unwrap();
    store.kv().put(NS, b"bob", b"bob's value").unwrap();
    let conn = raw(&path);
    // Swap everything but the row's identity (id, namespace and lookup hash).
    let (alice, bob) = (rows(&conn, "kv", "id = 1"), rows(&conn, "kv", "id = 2"));
    let swapped = |contents: &[(String, Value)], identity: &[(String, Value)]| {
        let keep = ["id", "namespace", "lookup"];
        let mut row: Vec<(String, Value)> = identity
            .iter()
            .filter(|(c, _)| keep.contains(&c.as_str()))
            .cloned()
            .collect();
        row.extend(
            contents
                .iter()
                .filter(|(c, _)| !keep.contains(&c.as_str()))
                .cloned(),
        );
        row
    };
    let (new_alice, new_bob) = (swapped(&bob[0], &alice[0]), swapped(&alice[0], &bob[0]));
    conn.execute("DELETE FROM kv", []).unwrap();
    write_back(&conn, "kv", &[new_alice, new_bob]);
    assert_eq!(
        expect_tampered("alice", store.kv().get(NS, b"alice")),
        TamperKind::AuthenticationFailed
    );
    assert_eq!(
        expect_tampered("bob", store.kv().get(NS, b"bob")),
        TamperKind::AuthenticationFailed
    );
}

#[test]
fn an_old_value_replayed_across_an_interrupted_rotation_is_tampered() {
    let (_dir, path, store) = setup();
    for i in 0..20u32 {
        store
            .kv()
            .put(NS, &i.to_be_bytes(), b"before rotation")
            .unwrap();
    }
    let conn = raw(&path);
    let old = rows(&conn, "kv", "id = 1");
    store.kv().put(NS, &0u32.to_be_bytes(), b"newer").unwrap();
    store.rotate_data_key().unwrap();
    let progress = store.reencrypt_batch(5).unwrap();
    assert!(!progress.is_complete());
    // The process stops mid-rotation; the old key still opens the values it sealed.
    drop(store);
    let store = reopen(&path).unwrap();
    for i in 1..20u32 {
        assert_eq!(
            store
                .kv()
                .get(NS, &i.to_be_bytes())
                .unwrap()
                .unwrap()
                .as_bytes(),
            b"before rotation"
        );
    }
    write_back(&conn, "kv", &old);
    assert_eq!(
        expect_tampered(
            "replay under the old key",
            store.kv().get(NS, &0u32.to_be_bytes())
        ),
        TamperKind::Replayed
    );
    // Rotation still completes; the replayed row stays refused.
    while !store.reencrypt_batch(7).unwrap().is_complete() {}
    assert_eq!(
        expect_tampered(
            "replay after rotation",
            store.kv().get(NS, &0u32.to_be_bytes())
        ),
        TamperKind::Replayed
    );
}

#[test]
fn the_ledger_row_cannot_be_altered_removed_or_rolled_back() {
    let (_dir, path, store) = setup();
    store.kv().put(NS, b"k", b"v1").unwrap();
    let conn = raw(&path);
    let ledger = rows(&conn, "ledger", "1");
    let kv_before = rows(&conn, "kv", "1");
    store.kv().put(NS, b"k", b"v2").unwrap();

    // Rolling back the ledger together with the row, while the store is open.
    write_back(&conn, "ledger", &ledger);
    write_back(&conn, "kv", &kv_before);
    assert_eq!(
        expect_tampered(
            "write after ledger rollback",
            store.kv().put(NS, b"x", b"y")
        ),
        TamperKind::RowSetChanged
    );
    assert!(store.kv().get(NS, b"k").is_err());
    drop(store);

    let (_dir, path, store) = setup();
    store.kv().put(NS, b"k", b"v").unwrap();
    drop(store);
    let conn = raw(&path);
    let state: Vec<u8> = conn
        .query_row("SELECT state FROM ledger", [], |r| r.get(0))
        .unwrap();
    let mut flipped = state.clone();
    flipped[0] ^= 1;
    conn.execute("UPDATE ledger SET state = ?1", [&flipped])
        .unwrap();
    assert!(matches!(
        reopen(&path),
        Err(StoreError::Tampered {
            table: "ledger",
            kind: TamperKind::AuthenticationFailed,
            ..
        })
    ));
    conn.execute("UPDATE ledger SET state = ?1", [&state])
        .unwrap();
    drop(reopen(&path).unwrap());

    // Deleting the ledger does not make the store authenticate its rows again.
    conn.execute("DELETE FROM ledger", []).unwrap();
    assert_eq!(
        expect_tampered("reopen without a ledger", reopen(&path)),
        TamperKind::RowSetChanged
    );
}

#[test]
fn a_wrong_key_leaves_an_old_schema_store_unmigrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/store_v1.sqlite");
    std::fs::copy(&fixture, &path).unwrap();
    let before = file_hash(&path);
    let err = Store::builder(&path)
        .key_provider(Arc::new(RawKeyProvider::new([0x22; 32])))
        .open()
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongKey), "{err:?}");
    assert_eq!(file_hash(&path), before);
}

/// Documents the residual risk of `docs/threat-model.md`: a copy of the whole file taken
/// earlier is a consistent older store, and without state outside the file it opens.
#[test]
fn a_whole_file_rolled_back_between_sessions_opens_residual_risk() {
    let (dir, path, store) = setup();
    store.kv().put(NS, b"access", b"granted").unwrap();
    store.close().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let store = reopen(&path).unwrap();
    store.kv().put(NS, b"access", b"revoked").unwrap();
    store.close().unwrap();
    std::fs::copy(&copy, &path).unwrap();
    let store = reopen(&path).unwrap();
    assert_eq!(
        store.kv().get(NS, b"access").unwrap().unwrap().as_bytes(),
        b"granted"
    );
}
