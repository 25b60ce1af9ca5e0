//! Three `edgekeep-server` processes on one PostgreSQL, behind Debian's nginx (TLS terminated
//! there and again at each instance, round robin), serving devices that run the SDK's sync
//! client. Each instance has its own copy of the data folder (keys and TLS files), so what they
//! share goes through the database: a model uploaded through one is downloaded from the others.
//! Enrollment goes to the first instance, token refresh to the second, the rest round robin; a
//! captured proof replayed to every instance is refused by each; the third instance is killed
//! (SIGKILL) while the devices upload, and nothing they saw acknowledged is lost, nothing is
//! counted twice, and every org's audit chain verifies.

#[path = "../crates/server/examples/support/balancer.rs"]
mod balancer;
#[path = "sync_harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use balancer::Balancer;
use edgekeep::sync::{ActivationPolicy, RetryPolicy, SyncClient};
use edgekeep::telemetry::{ModelVersion, metrics};
use edgekeep_protocol::api::{BootstrapTokenResponse, CreateBootstrapTokenRequest};
use edgekeep_protocol::artifact::build_artifact;
use edgekeep_server::Database;
use edgekeep_server::data_dir::DataDir;
use edgekeep_server::storage::postgres::cluster::TestCluster;
use edgekeep_server::storage::{FleetStorage as _, PgStorage, Storage as _};
use harness::{RequestLog, open_store};
use ring::rand::SystemRandom;

const DEVICES: usize = 4;
const ROUNDS: usize = 12;

/// A child process killed when the test ends, whatever happens.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx() -> Option<PathBuf> {
    if let Some(path) = balancer::nginx() {
        return Some(path);
    }
    assert!(
        std::env::var_os("EDGEKEEP_REQUIRE_NGINX").is_none(),
        "nginx is not installed: run scripts/test-deps"
    );
    eprintln!("SKIPPED: nginx is not installed; run scripts/test-deps");
    None
}

/// The server binary, built beside this test (by the workspace's build, or here).
fn server_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let binary = deps
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("edgekeep-server");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let built = Command::new(cargo)
            .args(["build", "-p", "edgekeep-server", "--bin", "edgekeep-server"])
            .status()
            .unwrap();
        assert!(built.success(), "building edgekeep-server failed");
    }
    binary
}

/// Starts one instance; returns it and its port.
fn instance(binary: &Path, data: &Path, url: &str, public_url: &str) -> (Killed, u16) {
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--trusted-proxy",
            "127.0.0.1",
        ])
        .arg("--public-url")
        .arg(public_url)
        .arg("--data")
        .arg(data)
        .env("EDGEKEEP_DATABASE", url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (Killed(child), port)
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_share_one_database() {
    let Some(nginx) = nginx() else { return };
    let Some(cluster) = tokio::task::spawn_blocking(TestCluster::start_unless_absent)
        .await
        .unwrap()
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (url, created, cluster) = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            let url = cluster.fresh_database("instances").unwrap();
            let created =
                edgekeep_server::init_with(&data, &Database::Postgres(url.clone()), "Fleet Org")
                    .unwrap();
            (url, created, cluster)
        })
        .await
        .unwrap()
    };

    let nginx_port = balancer::free_port();
    let public_url = format!("https://127.0.0.1:{nginx_port}");
    let binary = server_binary();
    let mut instances: Vec<(Killed, u16)> = (0..3)
        .map(|n| {
            // Each instance its own copy of the folder (keys and TLS files): ciphertexts,
            // counters and records reach the others through the database alone.
            let own = work.path().join(format!("instance{n}"));
            copy_folder(&data, &own);
            instance(&binary, &own, &url, &public_url)
        })
        .collect();
    let ports: Vec<u16> = instances.iter().map(|(_, port)| *port).collect();
    let _lb = Balancer::start(
        &nginx,
        &work.path().join("nginx"),
        &data,
        nginx_port,
        &ports,
        &[("/v1/device/enroll", 0), ("/v1/device/refresh", 1)],
    )
    .unwrap();

    let ca_pem = std::fs::read(data.join("tls/ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .build()
        .unwrap();
    // The model version the devices report on, published through the balancer.
    let owner = |request: reqwest::RequestBuilder| request.bearer_auth(&created.owner_api_key);
    let publisher = harness::publisher_key();
    let registered = owner(http.post(format!("{public_url}/v1/publisher-keys")))
        .json(&serde_json::json!({"name": "ci", "public_key": publisher.public_key().to_text()}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status().as_u16(), 201);
    let built = build_artifact(
        &harness::model_bytes("logreg.onnx"),
        &harness::spec("classifier", 1),
        &publisher,
        &SystemRandom::new(),
    )
    .unwrap();
    let uploaded = owner(http.post(format!("{public_url}/v1/artifacts")))
        .header("content-type", "application/octet-stream")
        .body(built.to_bundle())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status().as_u16(), 201);
    for (path, body) in [
        (
            "/v1/models/classifier/versions/1/approve",
            serde_json::json!({}),
        ),
        (
            "/v1/rollouts",
            serde_json::json!({"model": "classifier", "version": 1, "device_group": null,
                "basis_points": 10000}),
        ),
    ] {
        let answer = owner(http.post(format!("{public_url}{path}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
    }

    let log = Arc::new(RequestLog::default());
    let mut devices: Vec<SyncClient> = Vec::new();
    for index in 0..DEVICES {
        let bootstrap: BootstrapTokenResponse = http
            .post(format!("{public_url}/v1/bootstrap-tokens"))
            .bearer_auth(&created.owner_api_key)
            .json(&CreateBootstrapTokenRequest::default())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut builder = SyncClient::builder(&public_url)
            .store(open_store(&work.path().join(format!("device{index}"))))
            .root_certificate_pem(ca_pem.clone())
            .publisher_key(publisher.public_key())
            .activation_policy(ActivationPolicy::Immediate)
            // Refresh before every call: each round also rotates the refresh token.
            .refresh_margin(Duration::from_secs(3600))
            .retry_policy(RetryPolicy {
                max_attempts: 8,
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(400),
            });
        if index == 0 {
            builder = builder.request_observer(log.clone());
        }
        let client = builder.build().unwrap();
        client
            .enroll_async(&created.org_id, &bootstrap.token)
            .await
            .unwrap();
        // The model, downloaded (by ranges, round robin) from instances that never saw the
        // upload's folder.
        client.update_models_async().await.unwrap();
        assert!(client.active_model("classifier").unwrap().is_some());
        devices.push(client);
    }

    let version = ModelVersion::new("classifier", 1).unwrap();
    let devices = Arc::new(devices);
    let done = Arc::new(AtomicUsize::new(0));
    let mut rounds = Vec::new();
    for index in 0..DEVICES {
        let (devices, version, done) = (Arc::clone(&devices), version.clone(), Arc::clone(&done));
        rounds.push(tokio::spawn(async move {
            let client = &devices[index];
            for round in 0..ROUNDS {
                client.telemetry().observe(
                    metrics::INFERENCE_LATENCY_MS,
                    &version,
                    (round + 1) as f64,
                );
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match client.sync_async().await {
                        Ok(report) if report.queued == 0 => break,
                        Ok(_) => {}
                        Err(err) if err.is_transient() && attempts < 20 => {}
                        Err(err) => panic!("device {index} round {round}: {err}"),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                done.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }));
    }
    // Kill the third instance while the devices upload.
    while done.load(Ordering::SeqCst) < DEVICES {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut victim, _) = instances.remove(2);
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    let done_at_kill = done.load(Ordering::SeqCst);
    assert!(
        done_at_kill > 0 && done_at_kill < DEVICES * ROUNDS / 2,
        "the kill came mid-run ({done_at_kill} rounds done)"
    );
    for round in rounds {
        round.await.unwrap();
    }

    // A proof the first device sent, replayed to each instance directly: refused by all,
    // whichever one first took it.
    let sent = log.requests();
    let captured = sent
        .iter()
        .rev()
        .find(|r| r.url.ends_with("/v1/device/telemetry"))
        .expect("the first device uploaded");
    for port in &ports[..2] {
        let path = captured.url.strip_prefix(&public_url).unwrap();
        let mut replay = http.request(
            captured.method.clone(),
            format!("https://127.0.0.1:{port}{path}"),
        );
        for (name, value) in &captured.headers {
            replay = replay.header(*name, value);
        }
        if let Some(body) = &captured.body {
            replay = replay.body(body.clone());
        }
        let answer = replay.send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 401, "instance on port {port}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(
            body["code"], "proof_replayed",
            "instance on port {port}: {body}"
        );
    }

    // Nothing acknowledged was lost, nothing counted twice: every device's latency samples
    // are all there, once; the audit chain verifies; every enrollment is audited.
    let org = created.org_id.clone();
    let dir = DataDir::new(&data);
    let key = dir.load_secret().unwrap().audit_key();
    let (window, reports, enrollments) = tokio::task::spawn_blocking(move || {
        let storage = PgStorage::open(&url, 2, key.clone()).unwrap();
        let window = storage.telemetry_window(&org, 0).unwrap();
        let reports = edgekeep_server::audit::verify_all(&storage, &key, &[]).unwrap();
        let enrollments = storage
            .audit_entries(&org, None, None)
            .unwrap()
            .iter()
            .filter(|e| e.action == "device.enroll")
            .count();
        (window, reports, enrollments)
    })
    .await
    .unwrap();
    let latency = window
        .latency
        .iter()
        .find(|v| v.model == "classifier" && v.version == 1)
        .expect("latency arrived");
    assert_eq!(latency.per_device.len(), DEVICES);
    for counts in &latency.per_device {
        assert_eq!(counts.iter().sum::<u64>(), ROUNDS as u64, "{counts:?}");
    }
    assert!(reports.iter().all(|r| r.result.is_ok()), "{reports:?}");
    assert_eq!(enrollments, DEVICES);
    drop(instances);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}
