//! API key rotation under load: a client keeps calling while its key rotates; nothing fails.
//! Revocation and the end of the overlap take effect immediately.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::TestServer;
use reqwest::{Method, StatusCode};
use tokio::sync::RwLock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_has_zero_failures() {
    let t = Arc::new(TestServer::start().await);
    let (status, created) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &t.owner_key,
            Some(serde_json::json!({ "name": "backend" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let current = Arc::new(RwLock::new((
        created["key"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));

    let mut clients = Vec::new();
    for _ in 0..4 {
        let (t, current, stop, ok, failed) = (
            t.clone(),
            current.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let secret = current.read().await.1.clone();
                let (status, _) = t.call(Method::GET, "/v1/org", &secret, None).await;
                if status == StatusCode::OK {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let mut rotated_ids = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let (id, secret) = current.read().await.clone();
        let (status, body) = t
            .call(
                Method::POST,
                &format!("/v1/api-keys/{id}/rotate"),
                &secret,
                Some(serde_json::json!({ "overlap_seconds": 30 })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        rotated_ids.push(id);
        *current.write().await = (
            body["key"]["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) > 20,
        "too few requests to mean anything"
    );

    let (_, keys) = t
        .call(Method::GET, "/v1/api-keys", &t.owner_key, None)
        .await;
    let keys = keys.as_array().unwrap();
    for id in &rotated_ids {
        let key = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
        assert!(key["expires_at"].is_i64() && key["replaced_by"].is_string());
        assert!(key["last_used_at"].is_i64());
        assert!(key.get("secret").is_none() && key.get("hash").is_none());
    }
    let audit = t.audit(&t.owner_key).await;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "api_key.rotate")
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_zero_overlap_take_effect_immediately() {
    let t = TestServer::start().await;
    let (_, created) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &t.owner_key,
            Some(serde_json::json!({ "name": "a" })),
        )
        .await;
    let (id, secret) = (
        created["key"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    let (status, rotated) = t
        .call(
            Method::POST,
            &format!("/v1/api-keys/{id}/rotate"),
            &secret,
            Some(serde_json::json!({ "overlap_seconds": 0 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        t.call(Method::GET, "/v1/org", &secret, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_eq!(
        t.call(Method::GET, "/v1/org", new_secret, None).await.0,
        StatusCode::OK
    );
    // Rotating an already rotated key conflicts.
    let (status, body) = t
        .call(
            Method::POST,
            &format!("/v1/api-keys/{id}/rotate"),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");

    let new_id = rotated["key"]["id"].as_str().unwrap();
    let (status, _) = t
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{new_id}"),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = t.call(Method::GET, "/v1/org", new_secret, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_credentials");
    let audit = t.audit(&t.owner_key).await;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "api_key.revoke" && e.target == format!("api_key:{new_id}"))
    );
}
