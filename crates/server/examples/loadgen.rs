//! Load generator against an in-process server on loopback over HTTPS (client and server share
//! the machine): enrollments per second, authenticated requests per second, signed
//! desired-state requests per second, telemetry ingest (batches and events per second), and
//! people: passkey sign-ins (begin + finish, a software authenticator signing ES256), session
//! requests, SCIM user creations and SCIM `userName eq` lookups.
//!
//! ```text
//! cargo run --release -p edgekeep-server --example loadgen -- --enrollments 500 --seconds 5 --concurrency 16
//! cargo run --release -p edgekeep-server --example loadgen -- --postgres                 # one instance on PostgreSQL
//! cargo run --release -p edgekeep-server --example loadgen -- --postgres --instances 3   # three behind nginx
//! ```
//!
//! `--postgres` starts a throwaway cluster of Debian's PostgreSQL on loopback (as the tests do);
//! `--instances N` runs N servers in this process on that one database behind Debian's nginx.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use edgekeep_protocol::key_agreement::EphemeralAgreement;
use edgekeep_protocol::proof::{self, SoftwareDeviceKey};
use edgekeep_server::storage::postgres::cluster::TestCluster;
use edgekeep_server::{Database, RateLimits, Server, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[path = "../tests/common/authenticator.rs"]
mod authenticator;
#[path = "support/balancer.rs"]
mod balancer;
#[path = "support/enrollment.rs"]
mod enrollment;

use enrollment::now;

use authenticator::SoftAuthenticator;

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
    /// Keep the records in a throwaway PostgreSQL cluster instead of SQLite.
    #[arg(long)]
    postgres: bool,
    /// Servers on the one database, behind nginx (needs `--postgres` beyond 1).
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    DeviceMe,
    ApiKey,
    DesiredState,
    Telemetry,
    PasskeySignIn,
    Session,
    ScimCreate,
    ScimLookup,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::DeviceMe => "device requests (GET /v1/device/me, DPoP proof)",
            Self::ApiKey => "API key requests (GET /v1/org)",
            Self::DesiredState => "desired states (GET /v1/device/desired-state, signed)",
            Self::Telemetry => "telemetry batches (POST /v1/device/telemetry)",
            Self::PasskeySignIn => "passkey sign-ins (begin + finish, ES256, session written)",
            Self::Session => "session requests (GET /v1/me, cookie)",
            Self::ScimCreate => "SCIM user creations (POST /scim/v2/Users)",
            Self::ScimLookup => "SCIM lookups (GET /scim/v2/Users?filter=userName eq)",
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

/// The public URL the server is told it has: passkeys are bound to it, sign-in requests name it
/// as their `Origin`, and device proofs name it in `htu` (the client connects to loopback).
const ORIGIN: &str = "https://localhost:8443";

/// What the people phases need: a person's passkey (one copy per worker), their session
/// cookie, and a SCIM token.
struct People {
    devices: Vec<Mutex<SoftAuthenticator>>,
    cookie: String,
    scim_token: String,
}

async fn post_json(
    client: &reqwest::Client,
    url: String,
    body: &Value,
) -> Result<(reqwest::header::HeaderMap, Value), Box<dyn std::error::Error>> {
    let response = client
        .post(url)
        .header("origin", ORIGIN)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let value: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{status}: {value}").into());
    }
    Ok((headers, value))
}

/// Accepts the owner invitation with a software passkey and creates a SCIM token.
async fn people(
    client: &reqwest::Client,
    base: &str,
    created: &edgekeep_server::data_dir::OrgCreated,
    workers: usize,
) -> Result<People, Box<dyn std::error::Error>> {
    let mut device = SoftAuthenticator::new(&url::Url::parse(ORIGIN)?);
    let (_, started) = post_json(
        client,
        format!("{base}/v1/auth/invitations/begin"),
        &json!({"token": created.owner_invitation, "display_name": "Load Owner"}),
    )
    .await?;
    let response = device.register(&started["options"]).await?;
    let (headers, _) = post_json(
        client,
        format!("{base}/v1/auth/invitations/finish"),
        &json!({"ceremony": started["ceremony"], "response": response, "name": "loadgen"}),
    )
    .await?;
    let cookie = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(edgekeep_protocol::people::SESSION_COOKIE))
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?
        .to_owned();
    let token: Value = client
        .post(format!("{base}/v1/scim-tokens"))
        .bearer_auth(&created.owner_api_key)
        .json(&json!({"name": "loadgen"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(People {
        devices: (0..workers)
            .map(|_| Mutex::new(device.clone_device()))
            .collect(),
        cookie,
        scim_token: token["secret"].as_str().ok_or("no SCIM secret")?.to_owned(),
    })
}

/// One passkey sign-in: begin, the authenticator's assertion, finish.
async fn passkey_sign_in(
    client: &reqwest::Client,
    base: &str,
    device: &Mutex<SoftAuthenticator>,
) -> Result<reqwest::Response, Box<dyn std::error::Error>> {
    let (_, started) =
        post_json(client, format!("{base}/v1/auth/passkey/begin"), &json!({})).await?;
    let response = device
        .lock()
        .await
        .authenticate(&started["options"])
        .await?;
    Ok(client
        .post(format!("{base}/v1/auth/passkey/finish"))
        .header("origin", ORIGIN)
        .json(&json!({"ceremony": started["ceremony"], "response": response}))
        .send()
        .await?)
}

fn scim_user(n: u64) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("user{n}@example.com"), "externalId": format!("ext-{n}"),
        "name": {"givenName": "Load", "familyName": format!("User {n}")},
        "emails": [{"value": format!("user{n}@example.com"), "primary": true}], "active": true})
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.instances > 1 && !args.postgres {
        return Err("several instances share a PostgreSQL database: add --postgres".into());
    }
    let data = tempfile::tempdir()?;
    let (cluster, database) = if args.postgres {
        tokio::task::spawn_blocking(|| {
            let cluster = TestCluster::start().map_err(|e| e.to_string())?;
            let url = cluster
                .fresh_database("loadgen")
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((Some(cluster), Database::Postgres(url)))
        })
        .await??
    } else {
        (None, Database::Embedded)
    };
    let created = {
        let (path, database) = (data.path().to_owned(), database.clone());
        tokio::task::spawn_blocking(move || edgekeep_server::init_with(&path, &database, "loadgen"))
            .await??
    };
    let mut servers = Vec::new();
    for _ in 0..args.instances.max(1) {
        let mut config = ServerConfig::new(data.path(), "127.0.0.1:0".parse()?);
        config.database = database.clone();
        config.public_url = Some(ORIGIN.to_owned());
        config.trusted_proxies = vec!["127.0.0.1".parse()?];
        config.rate_limits = RateLimits {
            enrollments_per_org: u32::MAX / 2,
            sign_in_starts_per_address: u32::MAX / 2,
            ..RateLimits::default()
        };
        servers.push(Server::start(config).await?);
    }
    let ca_pem = servers[0].ca_cert_pem().unwrap_or_default().to_owned();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())?;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let lb_dir = tempfile::tempdir()?;
    let lb = if servers.len() > 1 {
        let nginx = balancer::nginx().ok_or("nginx is not installed (scripts/test-deps)")?;
        let ports: Vec<u16> = servers.iter().map(|s| s.addr().port()).collect();
        let port = balancer::free_port();
        Some(balancer::Balancer::start(
            &nginx,
            lb_dir.path(),
            data.path(),
            port,
            &ports,
            &[],
        )?)
    } else {
        None
    };
    let base = match &lb {
        Some(lb) => lb.base_url(),
        None => servers[0].base_url(),
    };
    println!(
        "backend: {}, {} instance(s){}",
        if args.postgres {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        servers.len(),
        if lb.is_some() { " behind nginx" } else { "" }
    );
    let owner_key = created.owner_api_key.clone();

    let mut tokens = Vec::with_capacity(args.enrollments);
    for _ in 0..args.enrollments {
        tokens.push(
            enrollment::mint_bootstrap(&client, &base, &owner_key, None)
                .await
                .map_err(|e| -> Box<dyn std::error::Error> { e })?,
        );
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
                let began = Instant::now();
                let enrolled =
                    enrollment::enroll(&client, &base, ORIGIN, &org, &bootstrap, &key, &agreement)
                        .await
                        .unwrap_or_else(|e| panic!("enroll failed: {e}"));
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
    let people = Arc::new(people(&client, &base, &created, args.concurrency).await?);
    let scim_users = Arc::new(AtomicU64::new(0));
    for phase in [
        Phase::DeviceMe,
        Phase::ApiKey,
        Phase::DesiredState,
        Phase::Telemetry,
        Phase::PasskeySignIn,
        Phase::Session,
        Phase::ScimCreate,
        Phase::ScimLookup,
    ] {
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..args.concurrency {
            let (people, scim_users) = (people.clone(), scim_users.clone());
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
                        let htu = format!("{ORIGIN}{path}");
                        let proof =
                            proof::build_proof(&device.key, method, &htu, &device.access, now())
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
                        Phase::PasskeySignIn => {
                            let device = &people.devices[worker];
                            Ok(passkey_sign_in(&client, &base, device)
                                .await
                                .expect("sign-in"))
                        }
                        Phase::Session => {
                            client
                                .get(format!("{base}/v1/me"))
                                .header("cookie", &people.cookie)
                                .send()
                                .await
                        }
                        Phase::ScimCreate => {
                            let n = scim_users.fetch_add(1, Ordering::Relaxed);
                            client
                                .post(format!("{base}/scim/v2/Users"))
                                .bearer_auth(&people.scim_token)
                                .header("content-type", "application/scim+json")
                                .body(scim_user(n).to_string())
                                .send()
                                .await
                        }
                        Phase::ScimLookup => {
                            let created = scim_users.load(Ordering::Relaxed).max(1);
                            let filter =
                                format!("userName eq \"user{}@example.com\"", i as u64 % created);
                            client
                                .get(format!("{base}/scim/v2/Users"))
                                .query(&[("filter", filter)])
                                .bearer_auth(&people.scim_token)
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
    drop(lb);
    for server in servers {
        server.shutdown().await;
    }
    if let Some(cluster) = cluster {
        tokio::task::spawn_blocking(move || drop(cluster)).await?;
    }
    Ok(())
}
