//! Attack tests for the findings of the outside security review (issue 12): each test names
//! the finding it covers and fails on the code the review attacked.

mod common;

use common::{TestServer, assert_error, publisher_key};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::fleet::FleetHealth;
use edgekeep_protocol::key_agreement::EphemeralAgreement;
use edgekeep_protocol::proof::SoftwareDeviceKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BAD_KEY: &str = "ek_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

async fn create_key(t: &TestServer, with: &str, body: Value) -> (StatusCode, Value) {
    t.call(Method::POST, "/v1/api-keys", with, Some(body)).await
}

/// Finding 1: a narrow key rotating a wider key of the same member would receive the wider
/// scope (and from there every permission). It is refused; rotating itself keeps its scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_key_never_yields_a_wider_key() {
    let t = TestServer::start().await;
    let (status, narrow) = create_key(
        &t,
        &t.owner_key,
        json!({ "name": "narrow", "scopes": ["keys:write"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{narrow}");
    let narrow_secret = narrow["secret"].as_str().unwrap().to_owned();
    let narrow_id = narrow["key"]["id"].as_str().unwrap().to_owned();
    let (status, wide) = create_key(&t, &t.owner_key, json!({ "name": "wide" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let wide_id = wide["key"]["id"].as_str().unwrap();

    let (status, body) = t
        .call(
            Method::POST,
            &format!("/v1/api-keys/{wide_id}/rotate"),
            &narrow_secret,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The wide key was not rotated by the refused attempt.
    let (status, _) = t
        .call(
            Method::POST,
            &format!("/v1/api-keys/{wide_id}/rotate"),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = create_key(
        &t,
        &narrow_secret,
        json!({ "name": "escalate", "scopes": ["roles:grant"] }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = create_key(&t, &narrow_secret, json!({ "name": "default" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["key"]["scopes"], json!(["keys:write"]));

    let (status, rotated) = t
        .call(
            Method::POST,
            &format!("/v1/api-keys/{narrow_id}/rotate"),
            &narrow_secret,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    assert_eq!(rotated["key"]["scopes"], json!(["keys:write"]));
}

/// Finding 2: bad requests from one address used to make every valid credential from that
/// address answer 429. Only the failing attempts are throttled now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_an_address_do_not_lock_out_its_valid_callers() {
    let t = TestServer::start_with(|config| {
        config.rate_limits.auth_failures_per_address = 5;
    })
    .await;
    let device = t
        .enroll(&t.org_id, &t.bootstrap(&t.owner_key, None).await)
        .await;
    let mut limited = false;
    for _ in 0..20 {
        let (status, _) = t.call(Method::GET, "/v1/org", BAD_KEY, None).await;
        limited |= status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "failing attempts are throttled");
    let (status, _) = t.call(Method::GET, "/v1/org", &t.owner_key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        t.device_get(&device, "/v1/device/me").await.status(),
        StatusCode::OK
    );
    let refreshed = t.refresh_raw(&device, &device.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let token = t.bootstrap(&t.owner_key, None).await;
    t.enroll(&t.org_id, &token).await;
}

async fn bad_call_from(t: &TestServer, forwarded_for: &str) -> StatusCode {
    t.client
        .get(t.url("/v1/org"))
        .bearer_auth(BAD_KEY)
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
}

/// Finding 2: `X-Forwarded-For` names the client only when the peer is a configured proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let behind_proxy = TestServer::start_with(|config| {
        config.rate_limits.auth_failures_per_address = 3;
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            bad_call_from(&behind_proxy, "192.0.2.1, 198.51.100.7").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        bad_call_from(&behind_proxy, "198.51.100.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        bad_call_from(&behind_proxy, "198.51.100.8").await,
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy has its own budget"
    );

    let direct = TestServer::start_with(|config| {
        config.rate_limits.auth_failures_per_address = 3;
    })
    .await;
    for n in 0..3 {
        assert_eq!(
            bad_call_from(&direct, &format!("198.51.100.{n}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        bad_call_from(&direct, "198.51.100.99").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged header from an untrusted peer changes nothing"
    );
}

/// Finding 5: replaying a used bootstrap token spent the org's enrollment budget (blocking
/// real enrollments) and wrote one audit row per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_bootstrap_tokens_neither_starve_enrollments_nor_flood_the_audit() {
    let t = TestServer::start_with(|config| config.rate_limits.enrollments_per_org = 3).await;
    let used = t.bootstrap(&t.owner_key, None).await;
    t.enroll(&t.org_id, &used).await;
    for _ in 0..40 {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let agreement = EphemeralAgreement::generate().unwrap();
        let response = t.enroll_raw(&t.org_id, &used, &key, &agreement).await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&response.status())
        );
    }
    for _ in 0..2 {
        let token = t.bootstrap(&t.owner_key, None).await;
        t.enroll(&t.org_id, &token).await;
    }
    let rejected = t
        .audit(&t.owner_key)
        .await
        .into_iter()
        .filter(|e| e.action == "device.enroll.rejected")
        .count();
    assert!(
        (1..=2).contains(&rejected),
        "{rejected} audit rows for one replayed token"
    );
}

fn latency(counts: [u64; 12]) -> Value {
    json!({"type": "latency", "model": {"model": "kws", "version": 1}, "counts": counts})
}

fn batch(seq: u64, events: Vec<Value>) -> Vec<u8> {
    json!({"seq": seq, "recorded_at": common::now(), "events": events})
        .to_string()
        .into_bytes()
}

/// Finding 6: one device reporting 2^40 samples in the top bucket turned a version's
/// percentiles into null. Batches are bounded, a device's samples per hour too, and each device
/// weighs once in the percentiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_device_cannot_skew_fleet_health() {
    let t = TestServer::start().await;
    let owner = t.owner_key.clone();
    let publisher = publisher_key();
    t.register_publisher(&owner, &publisher).await;
    t.publish(&owner, &publisher, "kws", 1, b"v1").await;
    t.rollout(&owner, "kws", 1, None, 10_000).await;
    let devices = t.enroll_many(12, None).await;
    let mut honest = [0u64; 12];
    honest[3] = 90;
    honest[5] = 10;
    for device in &devices[1..] {
        let response = t
            .device_post(
                device,
                "/v1/device/telemetry",
                batch(1, vec![latency(honest)]),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let flooder = &devices[0];
    let mut flood = [0u64; 12];
    flood[11] = 1 << 40;
    assert_error(
        t.device_post(
            flooder,
            "/v1/device/telemetry",
            batch(1, vec![latency(flood)]),
        )
        .await,
        ErrorCode::TelemetryInvalid,
    )
    .await;
    flood[11] = 1 << 22;
    let response = t
        .device_post(
            flooder,
            "/v1/device/telemetry",
            batch(1, vec![latency(flood)]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_error(
        t.device_post(
            flooder,
            "/v1/device/telemetry",
            batch(2, vec![latency(flood)]),
        )
        .await,
        ErrorCode::RateLimited,
    )
    .await;

    let (status, value) = t.call(Method::GET, "/v1/fleet/health", &owner, None).await;
    assert_eq!(status, StatusCode::OK);
    let health: FleetHealth = serde_json::from_value(value).unwrap();
    let latency = &health.model_versions[0].latency;
    assert_eq!(latency.samples, 11 * 100 + (1 << 22));
    // The honest devices' own figures (p50 ≤ 10 ms, p90 at their 50 ms tail), not null.
    assert_eq!(latency.p50_le_ms, Some(10));
    assert_eq!(latency.p90_le_ms, Some(50));
}

/// Finding 7: the target of an audited refusal carried 64 characters of the request path, so a
/// device wrote its own text (a newline and an RTL override) into the trail. Names shown to
/// people refuse such characters too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_text_never_reaches_the_audit_trail() {
    let t = TestServer::start().await;
    let device = t
        .enroll(&t.org_id, &t.bootstrap(&t.owner_key, None).await)
        .await;
    let response = t
        .device_get(&device, "/v1/device/artifacts/x%0Aforged%E2%80%AEtxt/key")
        .await;
    assert_error(response, ErrorCode::NotAssigned).await;
    let export = t
        .client
        .get(t.url("/v1/audit"))
        .bearer_auth(&t.owner_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!export.contains('\u{202e}'), "{export}");
    assert!(!export.contains("forged"), "{export}");
    let denied = t
        .audit(&t.owner_key)
        .await
        .into_iter()
        .find(|e| e.action == "artifact.key.denied")
        .unwrap();
    assert_eq!(denied.target, "artifact:(malformed id)");

    for name in ["evil\u{202e}gpj.exe", "zero\u{200b}width", "line\nbreak"] {
        let (status, body) = t
            .call(
                Method::POST,
                "/v1/members",
                &t.owner_key,
                Some(json!({ "name": name, "role": "member" })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
        let (status, _) = create_key(&t, &t.owner_key, json!({ "name": name })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}");
    }
}

/// Smaller finding: unknown fields on write routes were ignored, so a typo (`scope` for
/// `scopes`) silently minted a key with the default, widest scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_on_write_routes_are_refused() {
    let t = TestServer::start().await;
    let (status, body) = create_key(
        &t,
        &t.owner_key,
        json!({ "name": "typo", "scope": ["keys:read"] }),
    )
    .await;
    assert!(status.is_client_error(), "{status} {body}");
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/bootstrap-tokens",
            &t.owner_key,
            Some(json!({ "device_group": null, "ttl_secs": 60 })),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Smaller finding: the database and the backup's database were 0644 inside a 0700 folder.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_readable_by_the_owner_only() {
    let t = TestServer::start().await;
    if t.database != edgekeep_server::Database::Embedded {
        eprintln!("SKIPPED: the records are in PostgreSQL, not in the data folder");
        return;
    }
    let db = edgekeep_server::data_dir::DataDir::new(t.data.path()).database();
    assert_eq!(mode(&db), 0o600);
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
    let out = tempfile::tempdir().unwrap();
    let backup = out.path().join("backup");
    edgekeep_server::backup::backup(t.data.path(), &backup).unwrap();
    let snapshot = edgekeep_server::data_dir::DataDir::new(&backup).database();
    assert_eq!(mode(&snapshot), 0o600);
}

/// A server whose PostgreSQL goes away answers `503 unavailable` (and `/status.json` says the
/// database is unreachable), never panics, and serves again once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_a_503_until_it_returns() {
    use edgekeep_server::storage::postgres::cluster::TestCluster;
    let Some(cluster) = tokio::task::spawn_blocking(TestCluster::start_unless_absent)
        .await
        .unwrap()
    else {
        return;
    };
    let cluster = std::sync::Arc::new(std::sync::Mutex::new(cluster));
    let url = {
        let cluster = std::sync::Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.lock().unwrap().fresh_database("lost"))
            .await
            .unwrap()
            .unwrap()
    };
    let t = TestServer::start_with(|config| {
        config.database = edgekeep_server::Database::Postgres(url);
    })
    .await;
    let owner = t.owner_key.clone();
    let org = || t.call(Method::GET, "/v1/org", &owner, None);
    let status_json = || t.client.get(t.url("/status.json")).send();
    assert_eq!(org().await.0, StatusCode::OK);

    let suspend = std::sync::Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || suspend.lock().unwrap().suspend().unwrap())
        .await
        .unwrap();
    let (status, body) = org().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable", "{body}");
    let health = status_json().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["database"], "unreachable");

    let resume = std::sync::Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || resume.lock().unwrap().resume().unwrap())
        .await
        .unwrap();
    assert_eq!(org().await.0, StatusCode::OK);
    assert_eq!(status_json().await.unwrap().status(), StatusCode::OK);
}
