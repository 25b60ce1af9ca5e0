//! Load generator against an in-process server on loopback over HTTPS (client and server share
//! the machine): enrollments per second, authenticated requests per second, signed
//! desired-state requests per second, and telemetry ingest (batches and events per second).
//!
//! ```text
//! cargo run --release -p edgekeep-server --example loadgen -- --enrollments 500 --seconds 5 --concurrency 16
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use edgekeep_protocol::api::{BootstrapTokenResponse, EnrollRequest, EnrollResponse};
use edgekeep_protocol::key_agreement::EphemeralAgreement;
use edgekeep_protocol::proof::{self, ProofSigner, SoftwareDeviceKey};
use edgekeep_server::{RateLimits, Server, ServerConfig};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Number of devices to enroll.
    #[arg(long, default_value_t = 500)]
    enrollments: usize,
    /// Duration of each authenticated-request phase, seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Telemetry events per batch in the ingest phase (at most 256).
    #[arg(long, default_value_t = 64)]
    events_per_batch: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    DeviceMe,
    ApiKey,
    DesiredState,
    Telemetry,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::DeviceMe => "device requests (GET /v1/device/me, DPoP proof)",
            Self::ApiKey => "API key requests (GET /v1/org)",
            Self::DesiredState => "desired states (GET /v1/device/desired-state, signed)",
            Self::Telemetry => "telemetry batches (POST /v1/device/telemetry)",
        }
    }
}

/// A telemetry batch of `events` declared events about model `kws` version 1.
fn telemetry_body(seq: u64, events: usize) -> Vec<u8> {
    let kinds = [
        serde_json::json!({"type": "latency", "model": {"model": "kws", "version": 1},
            "counts": [3, 9, 20, 4, 1, 0, 0, 0, 0, 0, 0, 0]}),
        serde_json::json!({"type": "quality", "model": {"model": "kws", "version": 1},
            "metric": "accuracy", "sum": 9.0, "count": 10}),
        serde_json::json!({"type": "events", "code": "inference_failed", "count": 1}),
        serde_json::json!({"type": "health", "battery_percent": 64, "charging": false,
            "network": "wifi", "free_storage": "under10_gb", "thermal": "nominal",
            "completion": "completed"}),
    ];
    let list: Vec<_> = (0..events)
        .map(|i| kinds[i % kinds.len()].clone())
        .collect();
    serde_json::to_vec(&serde_json::json!({"seq": seq, "recorded_at": now(), "events": list}))
        .unwrap_or_default()
}

/// Registers a publisher key, publishes and approves model `kws` v1, rolls it out to all.
async fn publish_model(
    client: &reqwest::Client,
    base: &str,
    owner_key: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use edgekeep_protocol::artifact::{ArtifactSpec, ModelFormat, SemVer, build_artifact};
    let rng = ring::rand::SystemRandom::new();
    let publisher = edgekeep_protocol::signing::SigningKey::generate(&rng)?;
    client
        .post(format!("{base}/v1/publisher-keys"))
        .bearer_auth(owner_key)
        .json(
            &serde_json::json!({"name": "loadgen", "public_key": publisher.public_key().to_text()}),
        )
        .send()
        .await?
        .error_for_status()?;
    let spec = ArtifactSpec {
        model: "kws".into(),
        version: 1,
        format: ModelFormat::Onnx,
        min_sdk_version: SemVer::new(0, 1, 0),
        tract_version: SemVer::new(0, 23, 9),
        opset: 17,
        created_at: now(),
        expires_at: now() + 86_400,
    };
    let built = build_artifact(&vec![1u8; 64 * 1024], &spec, &publisher, &rng)?;
    client
        .post(format!("{base}/v1/artifacts"))
        .bearer_auth(owner_key)
        .body(built.to_bundle())
        .send()
        .await?
        .error_for_status()?;
    client
        .post(format!("{base}/v1/models/kws/versions/1/approve"))
        .bearer_auth(owner_key)
        .send()
        .await?
        .error_for_status()?;
    client
        .post(format!("{base}/v1/rollouts"))
        .bearer_auth(owner_key)
        .json(&serde_json::json!({"model": "kws", "version": 1, "basis_points": 10000}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

struct Device {
    key: SoftwareDeviceKey,
    access: String,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn report(name: &str, count: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{name}: {count} in {:.2}s = {:.0}/s (p50 {:.2} ms, p99 {:.2} ms)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let data = tempfile::tempdir()?;
    let created = edgekeep_server::init(data.path(), "loadgen")?;
    let mut config = ServerConfig::new(data.path(), "127.0.0.1:0".parse()?);
    config.rate_limits = RateLimits {
        enrollments_per_org: u32::MAX / 2,
        ..RateLimits::default()
    };
    let server = Server::start(config).await?;
    let ca = reqwest::Certificate::from_pem(server.ca_cert_pem().unwrap_or_default().as_bytes())?;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let base = server.base_url();
    let owner_key = created.owner_api_key.clone();

    let mut tokens = Vec::with_capacity(args.enrollments);
    for _ in 0..args.enrollments {
        let minted: BootstrapTokenResponse = client
            .post(format!("{base}/v1/bootstrap-tokens"))
            .bearer_auth(&owner_key)
            .json(&serde_json::json!({}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        tokens.push(minted.token);
    }

    let queue = Arc::new(Mutex::new(tokens));
    let devices = Arc::new(Mutex::new(Vec::with_capacity(args.enrollments)));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (queue, devices, latencies, client, base, org) = (
            queue.clone(),
            devices.clone(),
            latencies.clone(),
            client.clone(),
            base.clone(),
            created.org_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(bootstrap) = queue.lock().await.pop() else {
                    break;
                };
                let (key, _) = SoftwareDeviceKey::generate().expect("key");
                let agreement = EphemeralAgreement::generate().expect("agreement");
                let url = format!("{base}/v1/device/enroll");
                let began = Instant::now();
                let proof =
                    proof::build_proof(&key, "POST", &url, &bootstrap, now()).expect("proof");
                let body = EnrollRequest {
                    org_id: org.clone(),
                    bootstrap_token: bootstrap,
                    identity_public_key: edgekeep_protocol::b64_encode(&key.public_key()),
                    agreement_public_key: edgekeep_protocol::b64_encode(agreement.public_key()),
                };
                let response = client
                    .post(&url)
                    .header(proof::PROOF_HEADER, proof)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                assert!(
                    response.status().is_success(),
                    "enroll failed: {}",
                    response.status()
                );
                let enrolled: EnrollResponse = response.json().await.expect("json");
                latencies.lock().await.push(began.elapsed());
                devices.lock().await.push(Device {
                    key,
                    access: enrolled.credentials.access_token,
                });
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = start.elapsed();
    report(
        "enrollments",
        args.enrollments,
        elapsed,
        std::mem::take(&mut *latencies.lock().await),
    );

    let devices: Arc<Vec<Device>> = Arc::new(std::mem::take(&mut *devices.lock().await));
    publish_model(&client, &base, &owner_key).await?;
    let seqs: Arc<Vec<AtomicU64>> =
        Arc::new((0..devices.len()).map(|_| AtomicU64::new(0)).collect());
    let events_per_batch = args.events_per_batch.clamp(1, 256);
    for phase in [
        Phase::DeviceMe,
        Phase::ApiKey,
        Phase::DesiredState,
        Phase::Telemetry,
    ] {
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..args.concurrency {
            let (devices, seqs, count, client, base, key, latencies) = (
                devices.clone(),
                seqs.clone(),
                count.clone(),
                client.clone(),
                base.clone(),
                owner_key.clone(),
                latencies.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut local = Vec::new();
                let mut i = worker;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    let index = i % devices.len();
                    let device = &devices[index];
                    let device_call = |method: &str, path: &str| {
                        let url = format!("{base}{path}");
                        let proof =
                            proof::build_proof(&device.key, method, &url, &device.access, now())
                                .expect("proof");
                        let request = if method == "GET" {
                            client.get(&url)
                        } else {
                            client.post(&url)
                        };
                        request
                            .header("authorization", format!("DPoP {}", device.access))
                            .header(proof::PROOF_HEADER, proof)
                    };
                    let response = match phase {
                        Phase::DeviceMe => device_call("GET", "/v1/device/me").send().await,
                        Phase::DesiredState => {
                            device_call("GET", "/v1/device/desired-state").send().await
                        }
                        Phase::Telemetry => {
                            let seq = seqs[index].fetch_add(1, Ordering::Relaxed) + 1;
                            device_call("POST", "/v1/device/telemetry")
                                .header("content-type", "application/json")
                                .body(telemetry_body(seq, events_per_batch))
                                .send()
                                .await
                        }
                        Phase::ApiKey => {
                            client
                                .get(format!("{base}/v1/org"))
                                .bearer_auth(&key)
                                .send()
                                .await
                        }
                    };
                    let response = response.expect("send");
                    assert!(
                        response.status().is_success(),
                        "request failed: {}",
                        response.status()
                    );
                    let _ = response.bytes().await;
                    local.push(began.elapsed());
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 7;
                }
                latencies.lock().await.extend(local);
            }));
        }
        for task in tasks {
            task.await?;
        }
        let elapsed = start.elapsed();
        let done = count.load(Ordering::Relaxed) as usize;
        report(
            phase.name(),
            done,
            elapsed,
            std::mem::take(&mut *latencies.lock().await),
        );
        if phase == Phase::Telemetry {
            println!(
                "telemetry events ({events_per_batch} per batch): {} in {:.2}s = {:.0}/s",
                done * events_per_batch,
                elapsed.as_secs_f64(),
                (done * events_per_batch) as f64 / elapsed.as_secs_f64()
            );
        }
    }
    server.shutdown().await;
    Ok(())
}
