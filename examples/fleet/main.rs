//! The whole fleet loop on one machine, with nothing to set up.
//!
//! Starts the real control plane in-process on loopback HTTPS (embedded SQLite in a temporary
//! folder); an operator registers a publisher key, publishes, approves and rolls out
//! `models/mobilenet_tiny.onnx` to 10 % then 100 % of a simulated fleet. Each device has its
//! own encrypted store and credentials; it pulls the signed, encrypted model, verifies and
//! activates it, runs it on images from its own "camera", personalizes it on its user's
//! photos, and sends only declared telemetry. A second version (the same network converted
//! once to NNEF) rolls out; one device's health check is made to fail and it rolls back on
//! its own; one device is revoked. The fleet health API then tells the story, and the demo
//! checks every step: it exits non-zero with the reason when something did not go as
//! expected.
//!
//! Run: `cargo run --release --example fleet [-- --devices N]`

mod device;
#[path = "../../tests/support/drift.rs"]
mod drift;
mod operator;
mod progress;
mod report;
mod wire_log;

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use edgekeep::inference::{ModelLoader, Tensor, convert_to_nnef};
use edgekeep::personalize::train::{self, TrainConfig};
use edgekeep::personalize::{Backbone, SoftmaxHead};
use edgekeep::sync::{SlotChange, SyncError, SyncState};
use edgekeep_protocol::artifact::{ArtifactSpec, ModelFormat, SemVer, build_artifact};
use edgekeep_protocol::rollout::RolloutBucket;
use edgekeep_protocol::signing::SigningKey;
use edgekeep_server::{Server, ServerConfig};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use ring::rand::SystemRandom;

use device::{Device, DeviceFactory, EMBEDDING, LocalWork, SLOT};
use operator::Operator;
use progress::Progress;

/// Personal photos per class on each device.
const PER_CLASS: usize = 10;
/// Inferences each device runs on each version.
const INFERENCES: usize = 8;

fn main() -> ExitCode {
    let devices = match parse_devices(std::env::args().skip(1)) {
        Ok(n) => n,
        Err(message) => {
            eprintln!("{message}\nusage: fleet [--devices N]   (N from 4 to 500, default 20)");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match run(devices) {
        Ok(()) => {
            println!(
                "\nfleet demo passed: every step went as expected ({:.1} s).",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("\nfleet demo FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_devices(mut args: impl Iterator<Item = String>) -> Result<usize, String> {
    let mut devices = 20;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--devices" => args.next().ok_or("--devices needs a number")?,
            other => match other.strip_prefix("--devices=") {
                Some(value) => value.to_owned(),
                None => return Err(format!("unknown argument `{other}`")),
            },
        };
        devices = value
            .parse()
            .map_err(|_| format!("--devices: `{value}` is not a number"))?;
    }
    if !(4..=500).contains(&devices) {
        return Err(format!("--devices: {devices} is out of range"));
    }
    Ok(devices)
}

/// Fails the demo with `message` unless `condition` holds.
fn expect(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

/// Runs `work` on every device, two at a time (this machine's cores), with a progress line.
fn on_each<T: Send>(
    devices: &[Device],
    label: &'static str,
    work: impl Fn(&Device) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    let progress = Progress::start(label, devices.len());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let mut results: Vec<Option<Result<T, String>>> = (0..devices.len()).map(|_| None).collect();
    let done: Vec<Vec<(usize, Result<T, String>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let at = next.fetch_add(1, Ordering::Relaxed);
                        let Some(device) = devices.get(at) else { break };
                        mine.push((at, work(device)));
                        progress.tick();
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    progress.finish();
    for (at, result) in done.into_iter().flatten() {
        results[at] = Some(result);
    }
    results
        .into_iter()
        .enumerate()
        .map(|(at, r)| {
            r.unwrap_or_else(|| Err("worker stopped".into()))
                .map_err(|e| format!("device {at}: {e}"))
        })
        .collect()
}

fn spec(version: u64, format: ModelFormat) -> ArtifactSpec {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    ArtifactSpec {
        model: SLOT.to_owned(),
        version,
        format,
        min_sdk_version: SemVer::new(0, 1, 0),
        tract_version: SemVer::new(0, 23, 9),
        opset: 13,
        created_at: now - 60,
        expires_at: now + 30 * 86_400,
    }
}

/// The app vendor's base head: trained once on population photos, shipped in the app.
fn vendor_base_head(model: &[u8]) -> Result<(SoftmaxHead, usize), String> {
    let backbone = Backbone::from_bytes(model, EMBEDDING, ModelLoader::new())
        .map_err(|e| format!("backbone: {e}"))?;
    let per_class = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut x = Array2::zeros((per_class * drift::CLASSES, backbone.dim()));
    let mut y = Vec::new();
    for i in 0..per_class * drift::CLASSES {
        let pattern = i % drift::CLASSES;
        let image = Tensor::from(drift::scene(pattern, false, &mut rng));
        let e = backbone
            .embed([("image", image)])
            .map_err(|e| format!("embedding: {e}"))?;
        x.row_mut(i).assign(&e.row(0));
        y.push(pattern);
    }
    let config = TrainConfig {
        epochs: 60,
        ..TrainConfig::default()
    };
    let zero = SoftmaxHead::zeros(drift::CLASSES, backbone.dim());
    let head = train::fit(&zero, &zero, x.view(), &y, &config).map_err(|e| e.to_string())?;
    Ok((head, backbone.dim()))
}

/// The first characters of an id, for display.
fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

fn activated(report: &edgekeep::sync::DeliveryReport) -> Option<u64> {
    report
        .changes
        .iter()
        .find_map(|(slot, change)| match change {
            SlotChange::Activated(v) if slot == SLOT => Some(*v),
            _ => None,
        })
}

fn run(count: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let root = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;

    println!("edgekeep fleet demo: {count} devices, one control plane, all on this machine\n");
    println!("1. control plane");
    let data = root.path().join("control-plane");
    let org = edgekeep_server::init(&data, "Demo Health Co").map_err(|e| e.to_string())?;
    let server = runtime
        .block_on(Server::start(ServerConfig::new(
            &data,
            "127.0.0.1:0".parse().expect("loopback address"),
        )))
        .map_err(|e| format!("starting the control plane: {e}"))?;
    let base_url = server.base_url();
    let ca_pem = server
        .ca_cert_pem()
        .ok_or("the control plane has no development CA")?
        .to_owned();
    println!("   {base_url}  (HTTPS, self-signed CA, embedded SQLite in a temporary folder)");
    println!(
        "   org {}  · Owner API key {}…  (shown once)",
        org.org_id,
        &org.owner_api_key[..10.min(org.owner_api_key.len())]
    );
    let op = Operator::new(base_url.clone(), org.owner_api_key.clone(), &ca_pem)?;

    println!("\n2. publish, approve, roll out");
    let rng = SystemRandom::new();
    let publisher = SigningKey::generate(&rng).map_err(|_| "generating the publisher key")?;
    runtime.block_on(op.register_publisher("release-signing", &publisher.public_key()))?;
    let model_path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/mobilenet_tiny.onnx");
    let model = std::fs::read(model_path).map_err(|e| format!("{model_path}: {e}"))?;
    let v1 = build_artifact(&model, &spec(1, ModelFormat::Onnx), &publisher, &rng)
        .map_err(|e| format!("building the v1 artifact: {e}"))?;
    runtime.block_on(op.upload(v1.to_bundle()))?;
    runtime.block_on(op.approve(SLOT, 1))?;
    println!(
        "   {SLOT} v1: mobilenet_tiny.onnx, {} KB, encrypted + signed on the publisher's machine; approved",
        model.len() / 1024
    );
    let (base_head, width) = vendor_base_head(&model)?;

    let factory = DeviceFactory {
        base_url: base_url.clone(),
        ca_pem,
        publisher: publisher.public_key(),
        canary: format!(
            "CANARY-{}",
            edgekeep_protocol::hex(&{
                let mut b = [0u8; 8];
                ring::rand::SecureRandom::fill(&rng, &mut b).map_err(|_| "randomness")?;
                b
            })
        ),
        root: root.path().join("devices"),
        embedding_width: width,
    };
    let faulty_index = 1;
    let revoked_index = count - 1;

    println!("\n3. devices enroll (each: own encrypted store, own P-256 identity key)");
    let tokens = (0..count)
        .map(|_| runtime.block_on(op.bootstrap_token()))
        .collect::<Result<Vec<_>, _>>()?;
    let devices: Vec<Device> = (0..count)
        .map(|i| factory.create(i, i == faulty_index))
        .collect::<Result<_, _>>()?;
    on_each(&devices, "enrolling", |d| {
        d.enroll(&org.org_id, &tokens[d.index])
    })?;

    let rollout = runtime.block_on(op.roll_out(SLOT, 1, 1_000))?;
    let in_bucket = devices
        .iter()
        .filter(|d| RolloutBucket::of(&rollout.id, d.id()).is_within(1_000))
        .count();
    let reports = on_each(&devices, "v1 at 10%: devices check in", Device::update)?;
    let first = reports.iter().filter(|r| activated(r) == Some(1)).count();
    println!("   10%: {first} of {count} devices activated v1 (bucketing predicts {in_bucket})");
    expect(first == in_bucket, || {
        format!("{first} devices activated v1 at 10 %, bucketing says {in_bucket}")
    })?;
    runtime.block_on(op.promote(&rollout.id, 10_000))?;
    on_each(&devices, "v1 at 100%: devices check in", Device::update)?;
    let on_v1 = devices.iter().filter(|d| d.serving() == Some(1)).count();
    println!("   100%: {on_v1} of {count} devices serve v1");
    expect(on_v1 == count, || {
        format!("only {on_v1} of {count} devices serve v1")
    })?;

    println!(
        "\n4. on each device: inference on local images, personalization on the user's photos"
    );
    let work: Vec<LocalWork> = on_each(&devices, "inference + personalization", |d| {
        let seed = 1_000 + d.index as u64;
        let inferences = d.infer(INFERENCES, seed)?;
        let work = d.personalize(&base_head, PER_CLASS, seed)?;
        d.sync().map_err(|e| format!("sync: {e}"))?;
        Ok(LocalWork { inferences, ..work })
    })?;
    let personalized = work.iter().filter(|w| w.quality.is_some()).count();
    expect(personalized == count, || {
        format!("only {personalized} of {count} devices could evaluate personalization")
    })?;

    println!("\n5. v2 (the same network, converted once to NNEF for faster loads) rolls out");
    let nnef = convert_to_nnef(&ModelLoader::new(), &model).map_err(|e| e.to_string())?;
    let v2 = build_artifact(&nnef, &spec(2, ModelFormat::Nnef), &publisher, &rng)
        .map_err(|e| format!("building the v2 artifact: {e}"))?;
    runtime.block_on(op.upload(v2.to_bundle()))?;
    runtime.block_on(op.approve(SLOT, 2))?;
    let rollout2 = runtime.block_on(op.roll_out(SLOT, 2, 10_000))?;
    let reports = on_each(&devices, "v2 at 100%: devices check in", |d| {
        let report = d.update()?;
        d.infer(INFERENCES, 2_000 + d.index as u64)?;
        d.sync().map_err(|e| format!("sync: {e}"))?;
        Ok(report)
    })?;
    let faulty = &devices[faulty_index];
    expect(
        reports[faulty_index].changes
            == vec![(
                SLOT.to_owned(),
                SlotChange::RolledBack {
                    failed: 2,
                    serving: Some(1),
                },
            )],
        || {
            format!(
                "device {faulty_index} did not roll back: {:?}",
                reports[faulty_index]
            )
        },
    )?;
    println!(
        "   device {faulty_index} ({}…): its health check refused v2 (injected fault) → rolled back to v1 on its own",
        short(faulty.id())
    );
    let on_v2 = devices.iter().filter(|d| d.serving() == Some(2)).count();
    expect(on_v2 == count - 1, || {
        format!("{on_v2} of {count} devices serve v2")
    })?;

    println!("\n6. the operator revokes a device");
    let revoked = &devices[revoked_index];
    runtime.block_on(op.revoke(revoked.id()))?;
    match revoked.sync() {
        Err(SyncError::Revoked) => {}
        other => return Err(format!("the revoked device's sync answered {other:?}")),
    }
    expect(revoked.state()? == SyncState::Revoked, || {
        "the revoked device does not report Revoked".into()
    })?;
    let record = runtime.block_on(op.device(revoked.id()))?;
    expect(record.revoked_at.is_some(), || {
        "the control plane does not list the device as revoked".into()
    })?;
    println!(
        "   device {revoked_index} ({}…): next sync → typed Revoked state; credentials wiped, syncing stopped",
        short(revoked.id())
    );

    let health = runtime.block_on(op.fleet_health())?;
    let wire = wire_log::merge(devices.iter().map(|d| d.wire.totals()));
    report::print(&report::Summary {
        health: &health,
        rollouts: [&rollout.id, &rollout2.id],
        revoked: revoked.id(),
        work: &work,
        wire: &wire,
    });
    report::check(&health, &rollout2.id, count, &wire)?;
    runtime.block_on(server.shutdown());
    Ok(())
}
