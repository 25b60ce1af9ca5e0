//! The audit chain detects rows edited or deleted directly in SQLite, and says where.

mod common;

use common::TestServer;
use edgekeep_server::audit::{AuditKey, ChainBreak, entry_hash, verify_all};
use edgekeep_server::data_dir::DataDir;
use edgekeep_server::storage::AuditEvent;
use reqwest::{Method, StatusCode};

fn verify_cli(data: &std::path::Path) -> (bool, String) {
    verify_cli_with(data, &[])
}

fn verify_cli_with(data: &std::path::Path, extra: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgekeep-server"))
        .args(["audit", "verify", "--data"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn audit_key(t: &TestServer) -> AuditKey {
    DataDir::new(t.data.path())
        .load_secret()
        .unwrap()
        .audit_key()
}

fn unguarded_db(t: &TestServer) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(DataDir::new(t.data.path()).database()).unwrap();
    db.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    db
}

async fn add_keys(t: &TestServer, n: usize) {
    for i in 0..n {
        let (status, _) = t
            .call(
                Method::POST,
                "/v1/api-keys",
                &t.owner_key,
                Some(serde_json::json!({ "name": format!("k{i}") })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
}

/// Finding 8: with write access to the database alone, an edited chain recomputed end to end
/// (entries and head) no longer verifies, and neither does a truncated one with a copied head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recomputed_or_truncated_chain_is_caught_without_the_server_secret() {
    let t = TestServer::start().await;
    add_keys(&t, 4).await;
    let storage = t.server.storage();
    let org = t.org_id.clone();
    let db = unguarded_db(&t);
    let mut entries = storage.audit_entries(&org, None, None).unwrap();
    entries[2].target = "api_key:someone-else".into();
    let mut prev = entries[1].hash.clone();
    for entry in &mut entries[2..] {
        let event = AuditEvent {
            org_id: entry.org_id.clone(),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            outcome: entry.outcome.clone(),
            request_id: entry.request_id.clone(),
            at: entry.at,
        };
        entry.prev_hash = prev.clone();
        entry.hash = entry_hash(&prev, entry.seq, &event);
        prev = entry.hash.clone();
        db.execute(
            "UPDATE audit_log SET target = ?3, prev_hash = ?4, hash = ?5 \
             WHERE org_id = ?1 AND seq = ?2",
            rusqlite::params![org, entry.seq, entry.target, entry.prev_hash, entry.hash],
        )
        .unwrap();
    }
    let last = entries.last().unwrap();
    let forged_mac = AuditKey::derive(&[0; 32]).head_mac(&org, last.seq, &last.hash);
    db.execute(
        "UPDATE audit_heads SET hash = ?2, mac = ?3 WHERE org_id = ?1",
        rusqlite::params![org, last.hash, forged_mac],
    )
    .unwrap();
    let report = || {
        verify_all(storage.as_ref(), &audit_key(&t), &[])
            .unwrap()
            .into_iter()
            .find(|r| r.org_id == org)
            .unwrap()
            .result
    };
    assert_eq!(report(), Err(ChainBreak::HeadForged { seq: last.seq }));
    let (ok, out) = verify_cli(t.data.path());
    assert!(!ok && out.contains("not authentic"), "{out}");

    // Truncate to entry 2 and point the head at it, keeping the head's old code.
    db.execute(
        "DELETE FROM audit_log WHERE org_id = ?1 AND seq > 2",
        [&org],
    )
    .unwrap();
    db.execute(
        "UPDATE audit_heads SET seq = 2, hash = ?2 WHERE org_id = ?1",
        rusqlite::params![org, entries[1].hash],
    )
    .unwrap();
    assert_eq!(report(), Err(ChainBreak::HeadForged { seq: 2 }));

    // Delete the whole chain and its head: an org without a chain lost it.
    db.execute("DELETE FROM audit_log WHERE org_id = ?1", [&org])
        .unwrap();
    db.execute("DELETE FROM audit_heads WHERE org_id = ?1", [&org])
        .unwrap();
    assert_eq!(report(), Err(ChainBreak::ChainMissing));
    let (ok, out) = verify_cli(t.data.path());
    assert!(!ok && !out.contains("ok (0 entries)"), "{out}");
}

/// Finding 8: a signed checkpoint kept outside the server catches a rollback to an older,
/// genuine state of the database (older rows and their authentic head restored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_checkpoint_catches_a_rolled_back_chain() {
    let t = TestServer::start().await;
    add_keys(&t, 1).await;
    let org = t.org_id.clone();
    let db = unguarded_db(&t);
    let (seq, hash, mac): (i64, String, String) = db
        .query_row(
            "SELECT seq, hash, mac FROM audit_heads WHERE org_id = ?1",
            [&org],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    add_keys(&t, 3).await;
    let (status, checkpoint) = t
        .call(Method::GET, "/v1/audit/checkpoint", &t.owner_key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{checkpoint}");
    let (status, verdict) = t
        .call(
            Method::POST,
            "/v1/audit/verify-checkpoint",
            &t.owner_key,
            Some(checkpoint.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verdict["intact"], true, "{verdict}");

    // A checkpoint whose numbers were changed is refused.
    let mut moved = checkpoint.clone();
    moved["seq"] = serde_json::json!(seq);
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/audit/verify-checkpoint",
            &t.owner_key,
            Some(moved),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Roll the chain back to the earlier genuine head: it verifies on its own...
    db.execute(
        "DELETE FROM audit_log WHERE org_id = ?1 AND seq > ?2",
        rusqlite::params![org, seq],
    )
    .unwrap();
    db.execute(
        "UPDATE audit_heads SET seq = ?2, hash = ?3, mac = ?4 WHERE org_id = ?1",
        rusqlite::params![org, seq, hash, mac],
    )
    .unwrap();
    let (_, alone) = t
        .call(Method::GET, "/v1/audit/verify", &t.owner_key, None)
        .await;
    assert_eq!(alone["intact"], true, "{alone}");
    // ...but not against the checkpoint, through the API or the CLI.
    let (_, verdict) = t
        .call(
            Method::POST,
            "/v1/audit/verify-checkpoint",
            &t.owner_key,
            Some(checkpoint.clone()),
        )
        .await;
    assert_eq!(verdict["intact"], false);
    assert!(
        verdict["problem"].as_str().unwrap().contains("rolled back"),
        "{verdict}"
    );
    let file = t.data.path().join("checkpoints.jsonl");
    std::fs::write(&file, format!("{checkpoint}\n")).unwrap();
    let (ok, out) = verify_cli_with(t.data.path(), &["--checkpoints".as_ref(), file.as_os_str()]);
    assert!(!ok && out.contains("rolled back"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletions_are_located() {
    let t = TestServer::start().await;
    for i in 0..4 {
        let (status, _) = t
            .call(
                Method::POST,
                "/v1/api-keys",
                &t.owner_key,
                Some(serde_json::json!({ "name": format!("k{i}") })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let storage = t.server.storage();
    let key = audit_key(&t);
    assert!(
        verify_all(storage.as_ref(), &key, &[])
            .unwrap()
            .iter()
            .all(|r| r.result.is_ok())
    );
    let (ok, out) = verify_cli(t.data.path());
    assert!(ok, "{out}");

    let db = rusqlite::Connection::open(DataDir::new(t.data.path()).database()).unwrap();
    // The log refuses edits through SQL until the guard triggers are dropped.
    assert!(
        db.execute("UPDATE audit_log SET target = 'x' WHERE seq = 3", [])
            .is_err()
    );
    db.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    let org = t.org_id.as_str();
    let report = |storage: &dyn edgekeep_server::storage::Storage| {
        verify_all(storage, &key, &[])
            .unwrap()
            .into_iter()
            .find(|r| r.org_id == org)
            .unwrap()
            .result
    };

    // Edit entry 3.
    let original: String = db
        .query_row(
            "SELECT target FROM audit_log WHERE org_id = ?1 AND seq = 3",
            [org],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE audit_log SET target = 'api_key:someone-else' WHERE org_id = ?1 AND seq = 3",
        [org],
    )
    .unwrap();
    assert_eq!(report(storage.as_ref()), Err(ChainBreak::Edited { seq: 3 }));
    let (ok, out) = verify_cli(t.data.path());
    assert!(!ok);
    assert!(out.contains("entry 3 was edited"), "{out}");
    db.execute(
        "UPDATE audit_log SET target = ?2 WHERE org_id = ?1 AND seq = 3",
        [org, &original],
    )
    .unwrap();
    assert!(report(storage.as_ref()).is_ok());

    // Delete entry 5 (a middle one).
    db.execute("DELETE FROM audit_log WHERE org_id = ?1 AND seq = 5", [org])
        .unwrap();
    assert_eq!(
        report(storage.as_ref()),
        Err(ChainBreak::Missing {
            expected: 5,
            found: 6
        })
    );
    let (ok, out) = verify_cli(t.data.path());
    assert!(!ok);
    assert!(out.contains("entries 5 to 5 are missing"), "{out}");

    // Delete the newest entry too: still reported at the first break (5); after re-chaining
    // the middle, the truncated tail is caught by the head.
    let last: i64 = db
        .query_row(
            "SELECT MAX(seq) FROM audit_log WHERE org_id = ?1",
            [org],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "DELETE FROM audit_log WHERE org_id = ?1 AND seq >= 5",
        [org],
    )
    .unwrap();
    assert_eq!(
        report(storage.as_ref()),
        Err(ChainBreak::HeadMismatch {
            head: last,
            last: 4
        })
    );

    // Through the API as well.
    let (status, body) = t
        .call(Method::GET, "/v1/audit/verify", &t.owner_key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["intact"], false);
    assert!(body["problem"].as_str().unwrap().contains("tail deleted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_a_time_range_of_the_callers_org_only() {
    let t = TestServer::start().await;
    let other = t.server.create_org("Org B").await.unwrap();
    let entries = t.audit(&t.owner_key).await;
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e.org_id == t.org_id));
    assert!(
        entries
            .windows(2)
            .all(|w| w[1].prev_hash == w[0].hash && w[1].seq == w[0].seq + 1)
    );
    for e in &entries {
        assert!(!e.target.contains(&other.org_id) && !e.actor.contains(&other.owner_member_id));
    }
    let future = common::now() + 3600;
    let response = t
        .client
        .get(t.url(&format!("/v1/audit?from={future}")))
        .bearer_auth(&t.owner_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/jsonl");
    assert!(response.text().await.unwrap().is_empty());
}
