//! The audit chain detects rows edited or deleted directly in SQLite, and says where.

mod common;

use common::TestServer;
use edgekeep_server::audit::{ChainBreak, verify_all};
use edgekeep_server::data_dir::DataDir;
use reqwest::{Method, StatusCode};

fn verify_cli(data: &std::path::Path) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgekeep-server"))
        .args(["audit", "verify", "--data"])
        .arg(data)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
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
    assert!(
        verify_all(storage.as_ref())
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
        verify_all(storage)
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
