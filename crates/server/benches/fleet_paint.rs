//! Time to first paint of the dashboard's fleet page with 10,000 devices in the database
//! (issue 14): a benchmark, not a test. Seeds a server over HTTPS (enrollments in three groups,
//! a health report from every tenth device, two days of hourly device counts), then has Debian's chromium
//! (tests/fixtures/browser/paint.mjs) sign the Owner up and load `/fleet` repeatedly; prints the
//! medians of the first contentful paint and of the server's time to the last byte.
//!
//! `cargo bench -p edgekeep-server --bench fleet_paint` (`EDGEKEEP_PAINT_DEVICES`, default
//! 10000; `EDGEKEEP_PAINT_RUNS`, default 20).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use edgekeep_protocol::key_agreement::EphemeralAgreement;
use edgekeep_protocol::proof::{self, SoftwareDeviceKey};
use edgekeep_server::{RateLimits, Server, ServerConfig};
use serde_json::{Value, json};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[path = "../examples/support/enrollment.rs"]
mod enrollment;

use enrollment::now;

/// Enrolls one device and, for every tenth, sends a health report.
async fn seed_device(
    client: &reqwest::Client,
    origin: &str,
    org_id: &str,
    owner_key: &str,
    index: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let group = ["eu", "us", "apac"][index % 3];
    let bootstrap = enrollment::mint_bootstrap(client, origin, owner_key, Some(group)).await?;
    let (key, _) = SoftwareDeviceKey::generate()?;
    let agreement = EphemeralAgreement::generate()?;
    let enrolled =
        enrollment::enroll(client, origin, origin, org_id, &bootstrap, &key, &agreement).await?;
    if !index.is_multiple_of(10) {
        return Ok(());
    }
    let access = enrolled.credentials.access_token.as_str();
    let url = format!("{origin}/v1/device/telemetry");
    let batch = json!({"seq": 1, "recorded_at": now(), "events": [
        {"type": "health", "battery_percent": index % 100, "charging": false,
         "network": "wifi", "free_storage": "under10_gb", "thermal": "nominal",
         "completion": "completed"}]});
    client
        .post(&url)
        .header("authorization", proof::authorization_value(access))
        .header(
            proof::PROOF_HEADER,
            proof::build_proof(&key, "POST", &url, access, now())?,
        )
        .header("content-type", "application/json")
        .body(batch.to_string())
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let devices = env_number("EDGEKEEP_PAINT_DEVICES", 10_000);
    let runs = env_number("EDGEKEEP_PAINT_RUNS", 20);
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser");
    let chromium =
        std::env::var("EDGEKEEP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let origin = format!("https://localhost:{port}");
    let data = tempfile::tempdir()?;
    let created = edgekeep_server::init(data.path(), "Paint org")?;
    let mut config = ServerConfig::new(data.path(), format!("127.0.0.1:{port}").parse()?);
    config.public_url = Some(origin.clone());
    config.rate_limits = RateLimits {
        enrollments_per_org: u32::MAX / 2,
        ..RateLimits::default()
    };
    let server = Server::start(config).await?;
    let ca = reqwest::Certificate::from_pem(server.ca_cert_pem().unwrap_or_default().as_bytes())?;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build()?;

    let started = std::time::Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, origin, org, key, next) = (
            client.clone(),
            origin.clone(),
            created.org_id.clone(),
            created.owner_api_key.clone(),
            Arc::clone(&next),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= devices {
                    return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(());
                }
                seed_device(&client, &origin, &org, &key, index).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let storage = server.storage();
    for hours_ago in (0..48).rev() {
        edgekeep_server::fleet_history::record_snapshots(
            storage.as_ref(),
            900,
            now() - hours_ago * 3600,
        )?;
    }
    eprintln!(
        "seeded {devices} devices in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let paint = json!({"base": origin, "invitation": created.owner_invitation, "runs": runs,
        "chromium": chromium});
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(fixture.join("paint.mjs"))
            .env("EDGEKEEP_PAINT", paint.to_string())
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?;
    if report["ok"] != true {
        return Err(format!(
            "the paint script failed: {report} {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let loads = report["loads"].as_array().cloned().unwrap_or_default();
    let mut paints: Vec<f64> = loads
        .iter()
        .filter_map(|l| l["first_contentful_paint_ms"].as_f64())
        .collect();
    let mut responses: Vec<f64> = loads
        .iter()
        .filter_map(|l| l["response_end_ms"].as_f64())
        .collect();
    let bytes = loads.first().and_then(|l| l["bytes"].as_u64()).unwrap_or(0);
    println!(
        "fleet page with {devices} devices, {} loads: first contentful paint median {:.1} ms \
         (min {:.1}, max {:.1}); server to last byte median {:.1} ms; {bytes} bytes",
        paints.len(),
        median(&mut paints),
        paints.first().copied().unwrap_or(f64::NAN),
        paints.last().copied().unwrap_or(f64::NAN),
        median(&mut responses),
    );
    server.shutdown().await;
    Ok(())
}
