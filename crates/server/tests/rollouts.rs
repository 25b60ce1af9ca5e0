//! Rollouts through the real server: deterministic bucketing, promote/pause/resume/rollback
//! change desired state for exactly the devices they should, approval gates, key access
//! only for assigned devices, and progress counts from device reports.

mod common;

use common::{TestServer, assert_error, publisher_key};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::artifact::{open_artifact, unwrap_content_key};
use edgekeep_protocol::desired_state::{SignedDesiredState, WrappedContentKey};
use edgekeep_protocol::fleet::RolloutInfo;
use edgekeep_protocol::rollout::{RolloutBucket, RolloutStatus};
use edgekeep_server::desired::resolve;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn ten_percent_of_ten_thousand_simulated_devices_and_stable_buckets() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    server.publish(&owner, &publisher, "kws", 1, b"v1").await;
    server.publish(&owner, &publisher, "kws", 2, b"v2").await;
    server.rollout(&owner, "kws", 1, None, 10_000).await;
    let rollout = server.rollout(&owner, "kws", 2, None, 1_000).await;
    assert_eq!(rollout.previous_version, Some(1));

    let org = server.org_id.clone();
    let stored = server.stored(move |s| s.rollouts(&org)).await.unwrap();
    let ids: Vec<String> = (0..10_000).map(|i| format!("dev_sim_{i}")).collect();
    let on_new: Vec<bool> = ids
        .iter()
        .map(|id| resolve(&stored, id, None)[0].version == 2)
        .collect();
    let count = on_new.iter().filter(|b| **b).count();
    assert!(
        (900..=1_100).contains(&count),
        "10% rollout assigned {count}"
    );
    // Same device, same bucket, every time; and what the SDK computes matches.
    for (id, new) in ids.iter().zip(&on_new).take(500) {
        assert_eq!(resolve(&stored, id, None)[0].version == 2, *new);
        assert_eq!(RolloutBucket::of(&rollout.id, id).is_within(1_000), *new);
    }
    // Promotion only adds devices.
    let (status, _) = server
        .rollout_action(
            &owner,
            &rollout.id,
            "promote",
            Some(json!({"basis_points": 5_000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let org = server.org_id.clone();
    let stored = server.stored(move |s| s.rollouts(&org)).await.unwrap();
    let promoted: Vec<bool> = ids
        .iter()
        .map(|id| resolve(&stored, id, None)[0].version == 2)
        .collect();
    assert!(
        on_new
            .iter()
            .zip(&promoted)
            .all(|(before, after)| !before || *after)
    );
    let count = promoted.iter().filter(|b| **b).count();
    assert!((4_800..=5_200).contains(&count), "{count}");
}

#[tokio::test]
async fn pause_and_rollback_change_desired_state_for_exactly_the_right_devices() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    server.publish(&owner, &publisher, "kws", 1, b"v1").await;
    let base = server.rollout(&owner, "kws", 1, None, 10_000).await;
    assert_eq!(base.previous_version, None);

    // Version 2 uploaded but not approved: no rollout.
    let built = common::build(&publisher, "kws", 2, b"v2");
    assert_eq!(
        server.upload(&owner, built.to_bundle()).await.status(),
        StatusCode::CREATED
    );
    let (status, value) = server
        .call(
            reqwest::Method::POST,
            "/v1/rollouts",
            &owner,
            Some(json!({"model": "kws", "version": 2, "basis_points": 5000})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{value}");
    assert_eq!(value["code"], "version_not_approved");
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/v1/models/kws/versions/2/approve",
            &owner,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let devices = server.enroll_many(24, None).await;
    let rollout = server.rollout(&owner, "kws", 2, None, 5_000).await;
    let covered: Vec<bool> = devices
        .iter()
        .map(|d| RolloutBucket::of(&rollout.id, &d.id).is_within(5_000))
        .collect();
    assert!(covered.iter().any(|c| *c) && covered.iter().any(|c| !*c));
    let mut before = Vec::new();
    for (device, in_rollout) in devices.iter().zip(&covered) {
        let version = server.desired_version(device, "kws").await;
        assert_eq!(version, Some(if *in_rollout { 2 } else { 1 }));
        before.push(version);
    }

    // Pause: nobody changes, promotion is refused, resume works.
    let (status, body) = server
        .rollout_action(&owner, &rollout.id, "pause", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "paused");
    for (device, old) in devices.iter().zip(&before) {
        assert_eq!(server.desired_version(device, "kws").await, *old);
    }
    let (status, _) = server
        .rollout_action(
            &owner,
            &rollout.id,
            "promote",
            Some(json!({"basis_points": 9000})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .rollout_action(&owner, &rollout.id, "resume", None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Rollback: exactly the covered devices go back to version 1.
    let (status, body) = server
        .rollout_action(&owner, &rollout.id, "rollback", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let info: RolloutInfo = serde_json::from_value(body).unwrap();
    assert_eq!(info.status, RolloutStatus::RolledBack);
    for ((device, old), in_rollout) in devices.iter().zip(&before).zip(&covered) {
        let now = server.desired_version(device, "kws").await;
        assert_eq!(now, Some(1));
        assert_eq!(now != *old, *in_rollout);
    }
    // Rolled back is final.
    let (status, _) = server
        .rollout_action(&owner, &rollout.id, "resume", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let actions: Vec<String> = server
        .audit(&owner)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "rollout.create",
        "rollout.pause",
        "rollout.resume",
        "rollout.rollback",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}");
    }
}

/// After a rollback, a device that reports serving the rolled-back version is not told to go
/// down a version (it would refuse that as an attack); a device that never installed it is
/// told to stay on the older one.
#[tokio::test]
async fn a_rollback_never_names_a_lower_version_than_a_device_serves() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    server.publish(&owner, &publisher, "kws", 1, b"v1").await;
    server.rollout(&owner, "kws", 1, None, 10_000).await;
    server.publish(&owner, &publisher, "kws", 2, b"v2").await;
    let rollout = server.rollout(&owner, "kws", 2, None, 10_000).await;
    let devices = server.enroll_many(2, None).await;
    let (upgraded, idle) = (&devices[0], &devices[1]);
    assert_eq!(server.desired_version(upgraded, "kws").await, Some(2));
    let batch = json!({"seq": 1, "recorded_at": common::now(), "events": [
        {"type": "versions", "sdk": {"major": 0, "minor": 1, "patch": 0},
         "active": [{"model": "kws", "version": 2}]}
    ]});
    let response = server
        .device_post(
            upgraded,
            "/v1/device/telemetry",
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let (status, _) = server
        .rollout_action(&owner, &rollout.id, "rollback", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.desired_version(upgraded, "kws").await, None);
    assert_eq!(server.desired_version(idle, "kws").await, Some(1));
}

#[tokio::test]
async fn only_assigned_devices_get_the_key_and_it_decrypts_the_model() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    let model_bytes = b"the real model bytes".repeat(100);
    let version = server
        .publish(&owner, &publisher, "kws", 1, &model_bytes)
        .await;
    let beta = server.enroll_many(1, Some("beta")).await.remove(0);
    let other = server.enroll_many(1, None).await.remove(0);
    server.rollout(&owner, "kws", 1, Some("beta"), 10_000).await;

    // The device outside the group has no slot and cannot get the key.
    assert!(server.desired_state(&other).await.slots.is_empty());
    let key_path = format!("/v1/device/artifacts/{}/key", version.artifact_id);
    assert_error(
        server.device_get(&other, &key_path).await,
        ErrorCode::NotAssigned,
    )
    .await;

    // The assigned device verifies the state, downloads, unwraps and decrypts.
    let state = server.desired_state(&beta).await;
    let slot = &state.slots[0];
    slot.manifest
        .verify(&[publisher.public_key()], common::now())
        .unwrap();
    let wrapped: WrappedContentKey = server
        .device_get(&beta, &key_path)
        .await
        .json()
        .await
        .unwrap();
    let key =
        unwrap_content_key(&beta.kwk, &slot.artifact_id, &beta.id, &wrapped.wrapped_key).unwrap();
    // Another device's wrapping key cannot unwrap it.
    assert!(
        unwrap_content_key(
            &other.kwk,
            &slot.artifact_id,
            &beta.id,
            &wrapped.wrapped_key
        )
        .is_err()
    );
    let ciphertext = server
        .device_get(&beta, &format!("/v1/device/artifacts/{}", slot.artifact_id))
        .await
        .bytes()
        .await
        .unwrap();
    let plain = open_artifact(&slot.manifest.manifest, &key, &ciphertext).unwrap();
    assert_eq!(plain.as_slice(), model_bytes.as_slice());

    // A device of another org cannot see the artifact at all.
    let org_b = server.server.create_org("Org B").await.unwrap();
    let token = server.bootstrap(&org_b.owner_api_key, None).await;
    let stranger = server.enroll(&org_b.org_id, &token).await;
    let response = server
        .device_get(
            &stranger,
            &format!("/v1/device/artifacts/{}", slot.artifact_id),
        )
        .await;
    assert_error(response, ErrorCode::NotFound).await;
    assert_error(
        server.device_get(&stranger, &key_path).await,
        ErrorCode::NotAssigned,
    )
    .await;

    // Progress: assigned on fetch.
    let (_, rollouts) = server
        .call(reqwest::Method::GET, "/v1/rollouts", &owner, None)
        .await;
    assert_eq!(rollouts[0]["progress"]["assigned"], 1);
    assert!(
        server
            .audit(&owner)
            .await
            .iter()
            .any(|e| e.action == "artifact.key.denied")
    );
}

#[tokio::test]
async fn desired_state_is_signed_short_lived_and_bound_to_the_device() {
    let server = TestServer::start_with(|c| c.desired_state_ttl_secs = 120).await;
    let devices = server.enroll_many(2, None).await;
    let response = server
        .device_get(&devices[0], "/v1/device/desired-state")
        .await;
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let signed: SignedDesiredState = response.json().await.unwrap();
    let key = server.desired_state_key().await;
    let state = signed.verify(&key, &devices[0].id, common::now()).unwrap();
    assert!(state.expires_at - state.issued_at == 120);
    assert!(signed.verify(&key, &devices[1].id, common::now()).is_err());
    assert!(
        signed
            .verify(&key, &devices[0].id, common::now() + 121)
            .is_err()
    );
    // Without a device credential there is no desired state.
    let response = server
        .client
        .get(server.url("/v1/device/desired-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_version_needing_a_newer_sdk_is_withheld_until_the_device_reports_it() {
    use edgekeep_protocol::artifact::{SemVer, build_artifact};
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    server.publish(&owner, &publisher, "kws", 1, b"v1").await;
    let mut spec = common::spec("kws", 2);
    spec.min_sdk_version = SemVer::new(0, 5, 0);
    let built = build_artifact(b"v2", &spec, &publisher, &ring::rand::SystemRandom::new()).unwrap();
    assert_eq!(
        server.upload(&owner, built.to_bundle()).await.status(),
        StatusCode::CREATED
    );
    server
        .call(
            reqwest::Method::POST,
            "/v1/models/kws/versions/2/approve",
            &owner,
            None,
        )
        .await;
    server.rollout(&owner, "kws", 1, None, 10_000).await;
    server.rollout(&owner, "kws", 2, None, 10_000).await;
    let device = server.enroll_many(1, None).await.remove(0);
    // Unknown SDK version: assigned (the SDK checks the manifest itself).
    assert_eq!(server.desired_version(&device, "kws").await, Some(2));
    let report = |patch: u16, seq: u64| {
        json!({"seq": seq, "recorded_at": common::now(), "events": [
            {"type": "versions", "sdk": {"major": 0, "minor": if patch == 0 { 1 } else { 5 }, "patch": 0},
             "active": [{"model": "kws", "version": 1}]}]})
        .to_string()
        .into_bytes()
    };
    let response = server
        .device_post(&device, "/v1/device/telemetry", report(0, 1))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.desired_version(&device, "kws").await, Some(1));
    let response = server
        .device_post(&device, "/v1/device/telemetry", report(1, 2))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.desired_version(&device, "kws").await, Some(2));
}
