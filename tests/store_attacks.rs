//! Attacks on the stored bytes: bit flips, swapped rows, truncation, relabelled versions
//! and key ids, and a wrong key at open. The attacker edits the SQLite file directly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgekeep::store::{KeyProvider, Namespace, RawKeyProvider, Store, StoreError, TamperKind};
use ring::digest;
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
    assert_eq!(
        store.kv().get(NS, b"alice").unwrap(),
        None,
        "lookup hashes bind the namespace"
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
