//! Sync benchmarks (prints a table; run with `cargo bench --bench sync`):
//! bytes on the wire per telemetry event and per heartbeat (request bodies as sent, measured
//! by the SDK's request observer), and time from "new rollout" to "active on device" against
//! the real control plane on loopback over HTTPS.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use edgekeep::store::{RawKeyProvider, Store};
use edgekeep::sync::{OutgoingRequest, RequestObserver, SyncClient};
use edgekeep::telemetry::{ErrorKind, metrics};
use edgekeep_protocol::artifact::{ArtifactSpec, ModelFormat, SemVer, build_artifact};
use edgekeep_protocol::signing::SigningKey;
use ring::rand::SystemRandom;

#[derive(Default)]
struct Sizes(Mutex<Vec<(String, usize, usize)>>);

impl RequestObserver for Sizes {
    fn on_request(&self, r: &OutgoingRequest) {
        let headers: usize = r.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        self.0
            .lock()
            .unwrap()
            .push((r.url.clone(), r.body.as_ref().map_or(0, Vec::len), headers));
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let created = edgekeep_server::init(data.path(), "Bench").unwrap();
    let server = runtime
        .block_on(edgekeep_server::Server::start(
            edgekeep_server::ServerConfig::new(data.path(), "127.0.0.1:0".parse().unwrap()),
        ))
        .unwrap();
    let ca = server.ca_cert_pem().unwrap().to_owned();
    let base = server.base_url();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let owner = created.owner_api_key.clone();
    let call = |method: reqwest::Method,
                path: &str,
                body: Option<serde_json::Value>,
                raw: Option<Vec<u8>>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&owner);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(raw) = raw {
            request = request
                .header("content-type", "application/octet-stream")
                .body(raw);
        }
        let response = runtime.block_on(request.send()).unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        runtime
            .block_on(response.json::<serde_json::Value>())
            .unwrap_or_default()
    };
    let publisher = SigningKey::generate(&SystemRandom::new()).unwrap();
    call(
        reqwest::Method::POST,
        "/v1/publisher-keys",
        Some(serde_json::json!({"name": "bench", "public_key": publisher.public_key().to_text()})),
        None,
    );
    let token = call(
        reqwest::Method::POST,
        "/v1/bootstrap-tokens",
        Some(serde_json::json!({})),
        None,
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::builder(dir.path().join("s.db"))
            .key_provider(Arc::new(RawKeyProvider::new([3u8; 32])))
            .open()
            .unwrap(),
    );
    let sizes = Arc::new(Sizes::default());
    let client = SyncClient::builder(&base)
        .store(store)
        .root_certificate_pem(ca.as_bytes().to_vec())
        .publisher_key(publisher.public_key())
        .request_observer(sizes.clone())
        .build()
        .unwrap();
    client.enroll(&created.org_id, &token).unwrap();

    // Heartbeat: a batch with only the health snapshot.
    client.sync().unwrap();
    let heartbeat = sizes.0.lock().unwrap().last().cloned().unwrap();
    // Telemetry events: N error counts of distinct kinds in one batch.
    for kind in ErrorKind::ALL {
        client
            .telemetry()
            .add_labeled(metrics::ERRORS, *kind, None, 1);
    }
    client.sync().unwrap();
    let batch = sizes.0.lock().unwrap().last().cloned().unwrap();
    let events = ErrorKind::ALL.len();

    // Rollout to active.
    let model = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/logreg.onnx")).unwrap();
    let mut timings = Vec::new();
    for version in 1..=5u64 {
        let spec = ArtifactSpec {
            model: "classifier".into(),
            version,
            format: ModelFormat::Onnx,
            min_sdk_version: SemVer::new(0, 1, 0),
            tract_version: SemVer::new(0, 23, 9),
            opset: 17,
            created_at: now() - 10,
            expires_at: now() + 86_400,
        };
        let built = build_artifact(&model, &spec, &publisher, &SystemRandom::new()).unwrap();
        call(
            reqwest::Method::POST,
            "/v1/artifacts",
            None,
            Some(built.to_bundle()),
        );
        call(
            reqwest::Method::POST,
            &format!("/v1/models/classifier/versions/{version}/approve"),
            None,
            None,
        );
        call(
            reqwest::Method::POST,
            "/v1/rollouts",
            Some(
                serde_json::json!({"model": "classifier", "version": version, "device_group": null, "basis_points": 10000}),
            ),
            None,
        );
        let started = Instant::now();
        client.update_models().unwrap();
        timings.push(started.elapsed());
        assert_eq!(
            client
                .active_model("classifier")
                .unwrap()
                .unwrap()
                .version
                .version(),
            version
        );
    }
    timings.sort();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| heartbeat body bytes | {} |", heartbeat.1);
    println!(
        "| heartbeat header bytes (auth + proof) | {} |",
        heartbeat.2
    );
    println!(
        "| bytes per telemetry event (marginal, {events} events) | {:.1} |",
        (batch.1 as f64 - heartbeat.1 as f64) / events as f64
    );
    println!(
        "| rollout → active (logreg, loopback), median of 5 | {:.1} ms |",
        timings[2].as_secs_f64() * 1e3
    );
    println!(
        "| rollout → active, min / max | {:.1} / {:.1} ms |",
        timings[0].as_secs_f64() * 1e3,
        timings[4].as_secs_f64() * 1e3
    );
    drop(client);
    runtime.block_on(server.shutdown());
}
