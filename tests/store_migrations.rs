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

fn all_rows(conn: &Connection, table: &str) -> Vec<Vec<(String, rusqlite::types::Value)>> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_map([], |r| {
        (0..names.len())
            .map(|i| Ok((names[i].clone(), r.get(i)?)))
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn write_back(conn: &Connection, table: &str, saved: &[Vec<(String, rusqlite::types::Value)>]) {
    for row in saved {
        let cols: Vec<&str> = row.iter().map(|(c, _)| c.as_str()).collect();
        let marks: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
        let values: Vec<&rusqlite::types::Value> = row.iter().map(|(_, v)| v).collect();
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO {table} ({}) VALUES ({})",
                cols.join(", "),
                marks.join(", ")
            ),
            rusqlite::params_from_iter(values),
        )
        .unwrap();
    }
}

fn open_fixture_copy(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("old.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/store_v1.sqlite");
    std::fs::copy(&fixture, &path).unwrap();
    path
}

fn open(path: &Path) -> Result<Store, edgekeep::store::StoreError> {
    Store::builder(path)
        .key_provider(Arc::new(RawKeyProvider::new(FIXTURE_KEK)))
        .open()
}

fn is_row_set_changed(result: Result<Store, edgekeep::store::StoreError>) -> bool {
    matches!(
        result,
        Err(edgekeep::store::StoreError::Tampered {
            kind: edgekeep::store::TamperKind::RowSetChanged,
            ..
        })
    )
}

#[test]
fn upgrade_authenticates_old_rows_once_then_detects_their_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = open_fixture_copy(dir.path());
    let legacy_kv = all_rows(&Connection::open(&path).unwrap(), "kv");
    open(&path).unwrap().close().unwrap();
    let upgraded_kv = all_rows(&Connection::open(&path).unwrap(), "kv");

    // The upgraded store reopens with its data intact.
    let store = open(&path).unwrap();
    assert_eq!(
        store.kv().get(NS, b"device").unwrap().unwrap().as_bytes(),
        b"credential v1"
    );
    store.kv().put(NS, b"device", b"credential v2").unwrap();
    store.close().unwrap();
    let current_kv = all_rows(&Connection::open(&path).unwrap(), "kv");

    // The upgraded copy of the old credential, written back: refused.
    write_back(&Connection::open(&path).unwrap(), "kv", &upgraded_kv);
    assert!(is_row_set_changed(open(&path)), "replay of an upgraded row");

    // The pre-upgrade ciphertext from the old file, written back: refused too.
    write_back(&Connection::open(&path).unwrap(), "kv", &legacy_kv);
    assert!(
        is_row_set_changed(open(&path)),
        "replay of a pre-upgrade row"
    );

    // The current rows back in place: the store opens with the newest value.
    write_back(&Connection::open(&path).unwrap(), "kv", &current_kv);
    let store = open(&path).unwrap();
    assert_eq!(
        store.kv().get(NS, b"device").unwrap().unwrap().as_bytes(),
        b"credential v2"
    );
    store.close().unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        for table in ["kv", "events", "artifact_chunks", "artifacts"] {
            let unversioned: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE ver = 0"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(unversioned, 0, "{table} rows were given versions");
        }
    }
}
