//! The dashboard in a real browser: Debian's `chromium` driven by `playwright-core`
//! (tests/fixtures/browser, installed by scripts/test-deps; nothing downloaded at run time)
//! against a real server. The first Owner signs up with a passkey through Chromium's virtual
//! authenticator, signs out and in again; every page carries the CSP, the console shows no CSP
//! violation, and axe-core finds no serious or critical accessibility violation. The Owner
//! promotes and rolls back a rollout, revokes a device and rotates an API key (its new secret
//! shown once) from the pages, verifies the audit chain, and the API and the audit trail show
//! what was done. An invited person signs in through the real OpenID Provider (the OIDC
//! fixture) as a Member: she is offered no Admin action and the API refuses the one she sends
//! by hand. The Owner of org A types org B's ids into URLs and sees nothing of B; a form on
//! another site posting to the API, and a write without the CSRF token, are refused and end
//! nothing. With a step-up window of 1 s, Owner-level changes ask for the passkey again; the
//! Owner adds a passkey, renames and removes the first, cannot remove the last, and the removed
//! one no longer signs in. Screenshots of every page go to `target/dashboard-screenshots/`.
//!
//! Skipped with a message only when chromium, node or the fixture's packages are missing and
//! `EDGEKEEP_REQUIRE_BROWSER` is unset; scripts/test (and so CI) sets it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::oidc_provider::{Client, Provider, SECRET, provider_available};
use common::{TestServer, publisher_key};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("EDGEKEEP_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Whether the browser tests can run here; panics when they cannot but must.
fn browser_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = fixture_dir().join("node_modules/playwright-core").is_dir();
    if node && installed && chromium().exists() {
        return true;
    }
    assert!(
        std::env::var_os("EDGEKEEP_REQUIRE_BROWSER").is_none(),
        "EDGEKEEP_REQUIRE_BROWSER is set but chromium, node or the browser fixture is missing \
         (run scripts/test-deps)"
    );
    eprintln!("SKIPPED: chromium, node or the browser fixture is missing; run scripts/test-deps");
    false
}

/// How long the browser script may take before it is killed (it takes about 15 s).
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(150);

/// Runs the browser script, killing it past [`DEADLINE`] so a stuck browser fails the test
/// with the steps it reached (on stderr) instead of hanging it.
/// `ca` is the server's CA certificate file: the script's own requests (Playwright's
/// `route.fetch`) trust it through `NODE_EXTRA_CA_CERTS`, as the browser trusts the server's key.
fn run_with_deadline(config: Value, ca: &std::path::Path) -> std::process::Output {
    let mut child = Command::new("node")
        .arg(fixture_dir().join("dashboard.mjs"))
        .env("EDGEKEEP_BROWSER_TEST", config.to_string())
        .env("NODE_EXTRA_CA_CERTS", ca)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

#[tokio::test]
async fn an_owner_signs_up_with_a_passkey_signs_out_and_in_under_the_csp() {
    if !browser_available() || !provider_available() {
        return;
    }
    // Passkeys are bound to the public origin, which must be `localhost` (a secure context with
    // a name the development certificate carries) on a port known before the server starts.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let origin = format!("https://localhost:{port}");
    let provider = Provider::start(
        &format!("{origin}/v1/auth/oidc/callback"),
        &[Client {
            id: "edgekeep",
            tamper: None,
        }],
    );
    let provider_ca = provider.ca_path.clone();
    let mut t = TestServer::start_with(|config| {
        config.listen = format!("127.0.0.1:{port}").parse().unwrap();
        config.public_url = Some(origin.clone());
        config.idp_extra_roots = vec![provider_ca];
        // Owner-level changes ask for a step-up once a second has passed since the last one.
        config.sessions.step_up_window = std::time::Duration::from_secs(1);
    })
    .await;
    // Devices sign their proofs for the public URL: call the server by that name too.
    t.base.clone_from(&origin);
    let owner = t.owner_key.clone();
    let publisher = publisher_key();
    t.register_publisher(&owner, &publisher).await;
    t.publish(&owner, &publisher, "kws", 1, b"v1").await;
    let rollout = t.rollout(&owner, "kws", 1, None, 1_000).await;
    let mut devices = t.enroll_many(4, Some("eu")).await;
    for (seq, device) in devices.iter().enumerate() {
        let batch = json!({"seq": seq + 1, "recorded_at": common::now(), "events": [
            {"type": "latency", "model": {"model": "kws", "version": 1},
             "counts": [1, 6 + seq, 14, 7, 3, 1, 0, 0, 0, 0, 0, 0]},
            {"type": "quality", "model": {"model": "kws", "version": 1},
             "metric": "accuracy", "sum": 8.0 + seq as f64 / 4.0, "count": 10},
            {"type": "health", "battery_percent": 30 + 20 * seq, "charging": false,
             "network": if seq % 2 == 0 { "wifi" } else { "cellular" },
             "free_storage": "under10_gb", "thermal": "nominal", "completion": "completed"}]});
        let sent = t
            .device_post(
                device,
                "/v1/device/telemetry",
                batch.to_string().into_bytes(),
            )
            .await;
        assert_eq!(sent.status(), StatusCode::OK);
    }
    let device = devices.remove(0);
    // Org B, whose ids org A's Owner will type into URLs.
    let other = t.server.create_org("Org B").await.unwrap();
    let other_publisher = publisher_key();
    t.register_publisher(&other.owner_api_key, &other_publisher)
        .await;
    t.publish(&other.owner_api_key, &other_publisher, "kws", 1, b"b1")
        .await;
    let other_rollout = t.rollout(&other.owner_api_key, "kws", 1, None, 1_000).await;
    let bootstrap = t.bootstrap(&other.owner_api_key, None).await;
    let other_device = t.enroll(&other.org_id, &bootstrap).await;
    let (status, key) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &owner,
            Some(json!({"name": "ci-publisher"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (status, idp) = t
        .call(
            Method::PUT,
            "/v1/org/idp",
            &owner,
            Some(json!({"issuer": provider.issuer, "client_id": "edgekeep",
                "client_secret": SECRET, "allowed_email_domains": ["example.com"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{idp}");
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/invitations",
            &owner,
            Some(json!({"email": "alice@example.com", "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let config = json!({
        "issuer": provider.issuer,
        "org_id": t.org_id,
        "device": device.id,
        "rollout": rollout.id,
        "other_device": other_device.id,
        "other_rollout": other_rollout.id,
        "base": origin,
        "invitation": t.owner_invitation,
        "screenshots": screenshots(),
        "chromium": chromium(),
    });
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, t.server.ca_cert_pem().unwrap()).unwrap();
    let browser = tokio::task::spawn_blocking(move || run_with_deadline(config, &ca))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&browser.stdout);
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "the browser test printed no report ({:?}):\n{stdout}\n{}",
                browser.status,
                String::from_utf8_lossy(&browser.stderr)
            )
        });
    assert_eq!(
        report["ok"],
        true,
        "{report:#}\n{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    assert!(browser.status.success());
    let pages: Vec<&str> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        pages,
        [
            "invite", "fleet", "login", "models", "rollouts", "devices", "people", "audit",
            "status"
        ]
    );
    assert_eq!(report["csp_violations"], json!([]));
    for page in &pages {
        assert!(
            screenshots().join(format!("{page}.png")).is_file(),
            "{page}.png"
        );
    }

    // What the browser did is what the API and the audit trail say.
    let (status, members) = t.call(Method::GET, "/v1/members", &t.owner_key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "Ada Owner" && m["role"] == "owner"),
        "{members}"
    );
    let (_, after) = t
        .call(
            Method::GET,
            &format!("/v1/rollouts/{}", rollout.id),
            &owner,
            None,
        )
        .await;
    assert_eq!(after["basis_points"], 5_000, "{after}");
    assert_eq!(after["status"], "rolled_back", "{after}");
    let actions: Vec<String> = t
        .audit(&t.owner_key)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    let (_, revoked) = t
        .call(
            Method::GET,
            &format!("/v1/devices/{}", device.id),
            &owner,
            None,
        )
        .await;
    assert!(revoked["revoked_at"].is_i64(), "{revoked}");
    let (_, keys) = t.call(Method::GET, "/v1/api-keys", &owner, None).await;
    let rotated = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key["key"]["id"])
        .unwrap();
    assert!(
        rotated["expires_at"].is_i64(),
        "the old key expires after the overlap: {rotated}"
    );
    let (_, members) = t.call(Method::GET, "/v1/members", &owner, None).await;
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "admin" && m["name"] == "Alice Example"),
        "alice joined through the provider and the Owner made her an Admin: {members}"
    );
    // Nothing of org B changed, and the cross-site post made no key.
    let (_, b_device) = t
        .call(
            Method::GET,
            &format!("/v1/devices/{}", other_device.id),
            &other.owner_api_key,
            None,
        )
        .await;
    assert!(b_device["revoked_at"].is_null(), "{b_device}");
    let (_, b_rollout) = t
        .call(
            Method::GET,
            &format!("/v1/rollouts/{}", other_rollout.id),
            &other.owner_api_key,
            None,
        )
        .await;
    assert_eq!(b_rollout["status"], "active", "{b_rollout}");
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["name"] != "forged"),
        "{keys}"
    );
    assert!(
        [401, 403].contains(&report["cross_site_status"].as_u64().unwrap_or(0)),
        "{report}"
    );
    assert!(
        actions.iter().filter(|a| *a == "session.step_up").count() >= 2,
        "setting a role and adding a passkey each asked for a step-up: {actions:?}"
    );
    for action in [
        "passkey.add",
        "passkey.rename",
        "passkey.remove",
        "login.oidc.ok",
        "member.role.member_to_admin",
        "rollout.promote",
        "rollout.rollback",
        "device.revoke",
        "api_key.rotate",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    assert!(
        actions.iter().any(|a| a == "invitation.accept"),
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "session.logout").count(),
        2,
        "only the Owner's own two sign-outs ended a session: {actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "session.csrf.rejected"),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .filter(|a| a.starts_with("session.start"))
            .count()
            >= 2,
        "{actions:?}"
    );
}
