//! Golden files: the OpenAPI document and the database schema. A change shows in review.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p edgekeep-server --test golden_files`.

use std::path::PathBuf;

use edgekeep_server::storage::SqliteStorage;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
    // JSON is compared as values: the order of object keys depends on whether some crate in
    // the build enables serde_json's `preserve_order`, and is not part of the format.
    let same = match (
        serde_json::from_str::<serde_json::Value>(&expected),
        serde_json::from_str::<serde_json::Value>(actual),
    ) {
        (Ok(expected), Ok(actual)) => expected == actual,
        _ => expected == actual,
    };
    assert!(same, "{name} changed; review and regenerate");
}

#[test]
fn openapi_document() {
    golden(
        "openapi.json",
        &edgekeep_server::api::openapi_document()
            .to_pretty_json()
            .unwrap(),
    );
}

/// The schema a fresh database gets. Migrations are append-only: editing an old one changes
/// this file without a new migration, which review must refuse.
#[test]
fn database_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    drop(
        SqliteStorage::open(&path, 1, edgekeep_server::audit::AuditKey::derive(&[3; 32])).unwrap(),
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
        .unwrap();
    let mut schema = format!("-- user_version = {version}\n");
    for sql in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        schema.push_str(&sql.unwrap());
        schema.push_str(";\n");
    }
    golden("schema.sql", &schema);
}
