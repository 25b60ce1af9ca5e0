//! Upgrading a frozen version-1 store (`src/store/testdata/store_v1.sqlite`, written by
//! the version-1 code) reads back its data and ends with the same schema as a fresh store.

use std::path::Path;
use std::sync::Arc;

use edgekeep::store::{Namespace, RawKeyProvider, Store};
use rusqlite::Connection;

const NS: Namespace = Namespace::new("fixture");
const FIXTURE_KEK: [u8; 32] = [0x76; 32];

fn schema(path: &Path) -> Vec<(String, String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn frozen_v1_store_upgrades_to_the_fresh_schema() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/store_v1.sqlite");
    std::fs::copy(&fixture, &old).unwrap();
    assert_eq!(user_version(&old), 1);

    let store = Store::builder(&old)
        .key_provider(Arc::new(RawKeyProvider::new(FIXTURE_KEK)))
        .open()
        .unwrap();
    assert_eq!(
        store.kv().get(NS, b"greeting").unwrap().unwrap().as_bytes(),
        b"hello from schema v1"
    );
    assert_eq!(
        store.kv().get(NS, b"device").unwrap().unwrap().as_bytes(),
        b"credential v1"
    );
    let events = store.events().scan(NS, None, 10).unwrap();
    let payloads: Vec<_> = events
        .iter()
        .map(|e| e.payload.as_bytes().to_vec())
        .collect();
    assert_eq!(
        payloads,
        vec![
            b"event one".to_vec(),
            b"event two".to_vec(),
            b"event three".to_vec()
        ]
    );
    assert!(
        store.events().stored_bytes(NS).unwrap() > 0,
        "byte_len was backfilled"
    );
    let model: Vec<u8> = (0..3000u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(
        store
            .artifacts()
            .read(NS, b"model")
            .unwrap()
            .unwrap()
            .as_bytes(),
        &model[..]
    );
    let next = store.events().append(NS, b"after upgrade").unwrap();
    assert_eq!(next.get(), 4);
    store.close().unwrap();

    let fresh = dir.path().join("fresh.db");
    Store::builder(&fresh)
        .key_provider(Arc::new(RawKeyProvider::generate().unwrap()))
        .open()
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(user_version(&old), user_version(&fresh));
    assert_eq!(schema(&old), schema(&fresh));
}

#[test]
fn fixture_is_unchanged_by_tests() {
    // The fixture itself is never opened in place.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/store_v1.sqlite");
    assert_eq!(user_version(&fixture), 1);
}
