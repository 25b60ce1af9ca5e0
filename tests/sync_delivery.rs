//! Model delivery end to end against the real control plane over HTTPS, through a
//! man-in-the-middle proxy that plays a compromised control plane or a bad network:
//! publish → roll out → pull → verify → activate → infer → report telemetry → fleet health;
//! then every attack is rejected with the old model still serving and the event counted.

#[path = "sync_harness.rs"]
mod harness;
use harness::proxy;

use std::sync::Arc;

use edgekeep::inference::Model;
use edgekeep::inference::Tensor;
use edgekeep::sync::{
    ActivationPolicy, ModelHealthCheck, Rejection, SlotChange, SyncClient, SyncError,
};
use edgekeep::telemetry::ModelVersion;
use edgekeep::telemetry::{SecurityEvent, metrics};
use edgekeep_protocol::desired_state::{DesiredState, ModelAssignment, SignedDesiredState};
use edgekeep_protocol::fleet::FleetHealth;
use harness::{Harness, model_bytes, open_store, publisher_key};
use proxy::Mitm;

const SLOT: &str = "classifier";

struct Setup {
    h: Harness,
    mitm: Mitm,
    publisher: edgekeep_protocol::signing::SigningKey,
    client: SyncClient,
    _dir: tempfile::TempDir,
}

async fn setup(policy: ActivationPolicy) -> Setup {
    let mitm = Mitm::start().await;
    let h = Harness::start_behind(&mitm).await;
    let publisher = publisher_key();
    h.register_publisher(&publisher).await;
    let dir = tempfile::tempdir().unwrap();
    let client = h
        .enroll(
            SyncClient::builder(&mitm.base_url())
                .store(open_store(dir.path()))
                .root_certificate_pem(mitm.ca_pem.as_bytes().to_vec())
                .publisher_key(publisher.public_key())
                .model_slot(SLOT)
                .activation_policy(policy),
        )
        .await;
    Setup {
        h,
        mitm,
        publisher,
        client,
        _dir: dir,
    }
}

fn serving_version(client: &SyncClient) -> Option<u64> {
    client
        .active_model(SLOT)
        .unwrap()
        .map(|m| m.version.version())
}

fn security_count(client: &SyncClient, event: SecurityEvent) -> u64 {
    client
        .telemetry()
        .labeled_value(metrics::SECURITY_EVENTS, event, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_roll_out_pull_activate_infer_report() {
    let s = setup(ActivationPolicy::Immediate).await;
    let logreg = model_bytes("logreg.onnx");
    s.h.publish_and_roll_out(&s.publisher, SLOT, 1, &logreg)
        .await;

    let report = s.client.update_models_async().await.unwrap();
    assert_eq!(
        report.changes,
        vec![(SLOT.to_owned(), SlotChange::Activated(1))]
    );
    let active = s.client.active_model(SLOT).unwrap().unwrap();
    assert_eq!(active.version.version(), 1);
    assert_eq!(
        active.model_sha256.as_slice(),
        ring::digest::digest(&ring::digest::SHA256, &logreg).as_ref()
    );
    let input = active.model.inputs()[0].clone();
    let shape = input.concrete_shape(1);
    let values = Tensor::from_shape_vec(&shape, vec![0.5f32; shape.iter().product()]).unwrap();
    let started = std::time::Instant::now();
    let outputs = active.model.run([(input.name.as_str(), values)]).unwrap();
    assert!(!outputs.is_empty());
    let telemetry = s.client.telemetry();
    telemetry.observe(
        metrics::INFERENCE_LATENCY_MS,
        &active.version,
        started.elapsed().as_secs_f64() * 1e3,
    );
    telemetry.record(metrics::QUALITY_ACCURACY, &active.version, 0.92);

    // Nothing changes on a second update.
    let again = s.client.update_models_async().await.unwrap();
    assert!(again.changes.is_empty());

    let upload = s.client.sync_async().await.unwrap();
    assert_eq!(upload.queued, 0, "{upload:?}");
    assert!(upload.acked_through.is_some());

    let health: FleetHealth =
        serde_json::from_value(s.h.get_json("/v1/fleet/health").await).unwrap();
    assert_eq!(
        health
            .sdk_versions
            .iter()
            .map(|v| (v.sdk_version.to_string(), v.devices))
            .collect::<Vec<_>>(),
        vec![(env!("CARGO_PKG_VERSION").to_owned(), 1)]
    );
    assert_eq!(devices_active(&health, 1), 1, "{health:?}");

    // A second version replaces it; the first is kept as previous and a crash loop rolls
    // back to it.
    s.h.publish_and_roll_out(&s.publisher, SLOT, 2, &logreg)
        .await;
    let report = s.client.update_models_async().await.unwrap();
    assert_eq!(
        report.changes,
        vec![(SLOT.to_owned(), SlotChange::Activated(2))]
    );
    assert_eq!(serving_version(&s.client), Some(2));
    let back = s.client.report_crash_loop(SLOT).unwrap();
    assert_eq!(
        back,
        SlotChange::RolledBack {
            failed: 2,
            serving: Some(1)
        }
    );
    assert_eq!(serving_version(&s.client), Some(1));
    s.client.sync_async().await.unwrap();
    let health: FleetHealth =
        serde_json::from_value(s.h.get_json("/v1/fleet/health").await).unwrap();
    assert_eq!(devices_active(&health, 1), 1, "{health:?}");
    assert_eq!(devices_active(&health, 2), 0, "{health:?}");
}

/// Devices that last reported `SLOT` at `version` serving.
fn devices_active(health: &FleetHealth, version: u64) -> u64 {
    health
        .model_versions
        .iter()
        .find(|m| m.model == SLOT && m.version == version)
        .map_or(0, |m| m.devices_active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_activation_waits_for_the_app() {
    let s = setup(ActivationPolicy::Manual).await;
    s.h.publish_and_roll_out(&s.publisher, SLOT, 1, &model_bytes("logreg.onnx"))
        .await;
    let report = s.client.update_models_async().await.unwrap();
    assert_eq!(
        report.changes,
        vec![(SLOT.to_owned(), SlotChange::Staged(1))]
    );
    assert_eq!(serving_version(&s.client), None);
    assert_eq!(
        s.client.activate_staged(SLOT).unwrap(),
        SlotChange::Activated(1)
    );
    assert_eq!(serving_version(&s.client), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_launch_activation_waits_for_a_new_client() {
    let Setup {
        h,
        mitm,
        publisher,
        client,
        _dir: dir,
    } = setup(ActivationPolicy::NextLaunch).await;
    h.publish_and_roll_out(&publisher, SLOT, 1, &model_bytes("logreg.onnx"))
        .await;
    let report = client.update_models_async().await.unwrap();
    assert_eq!(
        report.changes,
        vec![(SLOT.to_owned(), SlotChange::Staged(1))]
    );
    assert_eq!(serving_version(&client), None);
    drop(client);

    let relaunched = SyncClient::builder(&mitm.base_url())
        .store(open_store(dir.path()))
        .root_certificate_pem(mitm.ca_pem.as_bytes().to_vec())
        .publisher_key(publisher.public_key())
        .activation_policy(ActivationPolicy::NextLaunch)
        .build()
        .unwrap();
    assert_eq!(serving_version(&relaunched), Some(1));
    let again = relaunched.update_models_async().await.unwrap();
    assert!(again.changes.is_empty(), "{again:?}");
}

/// Refuses one version: the app's probe on its own data found it worse.
struct RefuseVersion(u64);

impl ModelHealthCheck for RefuseVersion {
    fn is_healthy(&self, version: &ModelVersion, model: &Model) -> bool {
        assert!(!model.inputs().is_empty());
        version.version() != self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_health_check_refusal_rolls_back_once_and_is_reported() {
    let h = Harness::start().await;
    let publisher = publisher_key();
    h.register_publisher(&publisher).await;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(harness::RequestLog::default());
    let client = h
        .enroll(
            h.client_builder(open_store(dir.path()))
                .publisher_key(publisher.public_key())
                .health_check(Arc::new(RefuseVersion(2)))
                .request_observer(log.clone()),
        )
        .await;
    let logreg = model_bytes("logreg.onnx");
    h.publish_and_roll_out(&publisher, SLOT, 1, &logreg).await;
    client.update_models_async().await.unwrap();
    h.publish_and_roll_out(&publisher, SLOT, 2, &logreg).await;
    let report = client.update_models_async().await.unwrap();
    assert_eq!(
        report.changes,
        vec![(
            SLOT.to_owned(),
            SlotChange::RolledBack {
                failed: 2,
                serving: Some(1)
            }
        )]
    );
    assert_eq!(serving_version(&client), Some(1));
    let downloads = log.count_path("/key");
    let again = client.update_models_async().await.unwrap();
    assert!(again.changes.is_empty(), "{again:?}");
    assert_eq!(
        log.count_path("/key"),
        downloads,
        "a refused version is not fetched again"
    );

    client.sync_async().await.unwrap();
    let health: FleetHealth = serde_json::from_value(h.get_json("/v1/fleet/health").await).unwrap();
    let rollout = health
        .rollouts
        .iter()
        .find(|r| r.version == 2)
        .expect("rollout of version 2");
    assert_eq!(rollout.progress.rolled_back, 1, "{rollout:?}");
    assert_eq!(devices_active(&health, 1), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rollback_leaves_upgraded_devices_alone_without_alarms() {
    let s = setup(ActivationPolicy::Immediate).await;
    let logreg = model_bytes("logreg.onnx");
    s.h.publish_and_roll_out(&s.publisher, SLOT, 1, &logreg)
        .await;
    s.client.update_models_async().await.unwrap();
    let built = edgekeep_protocol::artifact::build_artifact(
        &logreg,
        &harness::spec(SLOT, 2),
        &s.publisher,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    s.h.upload_approve(&built, SLOT, 2).await;
    let rollout = s.h.roll_out(SLOT, 2).await;
    s.client.update_models_async().await.unwrap();
    s.client.sync_async().await.unwrap();
    assert_eq!(serving_version(&s.client), Some(2));

    s.h.roll_back(&rollout.id).await;
    let report = s.client.update_models_async().await.unwrap();
    assert!(
        report.changes.is_empty() && report.rejected.is_empty(),
        "{report:?}"
    );
    assert_eq!(serving_version(&s.client), Some(2));
    assert_eq!(security_count(&s.client, SecurityEvent::Rollback), 0);
}

/// The control plane's online desired-state key, read from its data folder: the tests
/// play a compromised control plane that holds it (but not the publisher's key).
fn server_state_key(h: &Harness) -> edgekeep_protocol::signing::SigningKey {
    let text = std::fs::read_to_string(h.data.path().join("desired-state.key")).unwrap();
    edgekeep_protocol::signing::SigningKey::from_text(&text).unwrap()
}

type StateEdit = Box<dyn Fn(&mut DesiredState) + Send + Sync>;

/// Re-signs every desired state after `edit` (a compromised control plane).
fn compromise(s: &Setup, edit: StateEdit) {
    let key = server_state_key(&s.h);
    s.mitm.set_hook(move |c, a| {
        if !c.path.starts_with("/v1/device/desired-state") || a.status != 200 {
            return a;
        }
        let signed: SignedDesiredState = serde_json::from_slice(&a.body).unwrap();
        let mut state: DesiredState = serde_json::from_str(&signed.payload).unwrap();
        edit(&mut state);
        let signed = SignedDesiredState::sign(&state, &key);
        proxy::Answer {
            body: serde_json::to_vec(&signed).unwrap(),
            ..a
        }
    });
}

/// The assignment of `SLOT` in the device's current desired state, as the server sends it.
async fn current_assignment(s: &Setup) -> ModelAssignment {
    let captured: Arc<std::sync::Mutex<Option<ModelAssignment>>> = Arc::default();
    let keep = captured.clone();
    s.mitm.set_hook(move |c, a| {
        if c.path.starts_with("/v1/device/desired-state") && a.status == 200 {
            let signed: SignedDesiredState = serde_json::from_slice(&a.body).unwrap();
            let state: DesiredState = serde_json::from_str(&signed.payload).unwrap();
            *keep.lock().unwrap() = state.slots.into_iter().find(|x| x.model == SLOT);
        }
        a
    });
    let _ = s.client.update_models_async().await.unwrap();
    s.mitm.clear_hook();
    let found = captured.lock().unwrap().clone();
    found.unwrap()
}

fn assert_rejected(
    outcome: Result<edgekeep::sync::DeliveryReport, SyncError>,
    event: SecurityEvent,
) {
    let rejected = match outcome {
        Ok(report) => report
            .rejected
            .iter()
            .any(|(_, r)| *r == Rejection::Security(event)),
        Err(SyncError::Security(e)) => e == event,
        Err(other) => panic!("{event:?}: unexpected {other:?}"),
    };
    assert!(rejected, "{event:?} was not reported");
}

/// Installs v1 and returns the setup plus v1's assignment.
async fn installed_v1() -> (Setup, ModelAssignment) {
    let s = setup(ActivationPolicy::Immediate).await;
    s.h.publish_and_roll_out(&s.publisher, SLOT, 1, &model_bytes("logreg.onnx"))
        .await;
    let v1 = current_assignment(&s).await;
    assert_eq!(serving_version(&s.client), Some(1));
    (s, v1)
}

async fn expect_attack(s: &Setup, event: SecurityEvent, serving: u64) {
    let outcome = s.client.update_models_async().await;
    assert_rejected(outcome, event);
    assert_eq!(
        serving_version(&s.client),
        Some(serving),
        "{event:?}: old model must serve"
    );
    assert_eq!(security_count(&s.client, event), 1, "{event:?} not counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_rejected() {
    let (s, v1) = installed_v1().await;
    s.h.publish_and_roll_out(&s.publisher, SLOT, 2, &model_bytes("logreg.onnx"))
        .await;
    s.client.update_models_async().await.unwrap();
    assert_eq!(serving_version(&s.client), Some(2));
    compromise(
        &s,
        Box::new(move |state| {
            state.slots = vec![v1.clone()];
        }),
    );
    expect_attack(&s, SecurityEvent::Rollback, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_is_rejected() {
    let (s, _) = installed_v1().await;
    s.h.publish_and_roll_out(&s.publisher, SLOT, 2, &model_bytes("logreg.onnx"))
        .await;
    compromise(
        &s,
        Box::new(|state| {
            state.issued_at -= 7200;
            state.expires_at = state.issued_at + 60;
        }),
    );
    expect_attack(&s, SecurityEvent::Freeze, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mix_and_match_is_rejected() {
    let (s, _) = installed_v1().await;
    // A genuine, publisher-signed manifest of another model, served in this slot.
    s.h.publish_and_roll_out(&s.publisher, "other-model", 5, &model_bytes("logreg.onnx"))
        .await;
    compromise(
        &s,
        Box::new(|state| {
            let other = state
                .slots
                .iter()
                .find(|x| x.model == "other-model")
                .cloned();
            state.slots.retain(|x| x.model != "other-model");
            if let (Some(other), Some(slot)) =
                (other, state.slots.iter_mut().find(|x| x.model == SLOT))
            {
                slot.version = other.version;
                slot.artifact_id = other.artifact_id;
                slot.manifest = other.manifest;
            }
        }),
    );
    expect_attack(&s, SecurityEvent::MixAndMatch, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_data_is_rejected() {
    let (s, _) = installed_v1().await;
    s.h.publish_and_roll_out(&s.publisher, SLOT, 2, &model_bytes("logreg.onnx"))
        .await;
    s.mitm.set_hook(|c, mut a| {
        if c.path.starts_with("/v1/device/artifacts/") && !c.path.ends_with("/key") {
            a.body.extend(std::iter::repeat_n(0u8, 1 << 20));
        }
        a
    });
    expect_attack(&s, SecurityEvent::EndlessData, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_publisher_key_is_rejected() {
    let (s, _) = installed_v1().await;
    // The control plane accepts an attacker's key; the device pins only the real one.
    let attacker = publisher_key();
    s.h.register_publisher(&attacker).await;
    s.h.publish_and_roll_out(&attacker, SLOT, 2, &model_bytes("logreg.onnx"))
        .await;
    expect_attack(&s, SecurityEvent::WrongPublisherKey, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_ciphertext_is_rejected() {
    let (s, _) = installed_v1().await;
    s.h.publish_and_roll_out(&s.publisher, SLOT, 2, &model_bytes("logreg.onnx"))
        .await;
    s.mitm.set_hook(|c, mut a| {
        if c.path.starts_with("/v1/device/artifacts/") && !c.path.ends_with("/key") {
            let mid = a.body.len() / 2;
            a.body[mid] ^= 0x40;
        }
        a
    });
    expect_attack(&s, SecurityEvent::TamperedCiphertext, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_plaintext_is_rejected() {
    let (s, _) = installed_v1().await;
    s.h.publish_and_roll_out(&s.publisher, SLOT, 2, &model_bytes("logreg.onnx"))
        .await;
    // A publisher-signed manifest whose plaintext hash does not match what the (matching)
    // ciphertext decrypts to: caught only after decryption.
    let publisher =
        edgekeep_protocol::signing::SigningKey::from_text(&s.publisher.to_text()).unwrap();
    compromise(
        &s,
        Box::new(move |state| {
            for slot in &mut state.slots {
                let mut manifest = slot.manifest.manifest.clone();
                manifest.plaintext_sha256 = "0".repeat(64);
                slot.manifest =
                    edgekeep_protocol::artifact::SignedManifest::sign(manifest, &publisher);
            }
        }),
    );
    expect_attack(&s, SecurityEvent::TamperedPlaintext, 1).await;
}
