//! Telemetry ingest: replayed batches count once, gaps are acknowledged correctly, undeclared
//! fields and wrong types are rejected, a device cannot write another org's models, and the
//! fleet health API merges what devices sent.

mod common;

use common::{Device, TestServer, assert_error, publisher_key};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::fleet::{DeviceStatus, FleetHealth};
use edgekeep_protocol::telemetry::TelemetryAck;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn latency(version: u64, counts: [u64; 12]) -> Value {
    json!({"type": "latency", "model": {"model": "kws", "version": version}, "counts": counts})
}

fn batch(seq: u64, events: Vec<Value>) -> Value {
    json!({"seq": seq, "recorded_at": common::now(), "events": events})
}

async fn send(server: &TestServer, device: &Device, body: &Value) -> reqwest::Response {
    server
        .device_post(
            device,
            "/v1/device/telemetry",
            body.to_string().into_bytes(),
        )
        .await
}

async fn ack(server: &TestServer, device: &Device, body: &Value) -> TelemetryAck {
    let response = send(server, device, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn fleet(server: &TestServer) -> FleetHealth {
    let (status, value) = server
        .call(Method::GET, "/v1/fleet/health", &server.owner_key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    serde_json::from_value(value).unwrap()
}

async fn setup() -> (TestServer, Vec<Device>) {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    server.publish(&owner, &publisher, "kws", 1, b"v1").await;
    let rollout = server.rollout(&owner, "kws", 1, None, 10_000).await;
    assert_eq!(rollout.basis_points, 10_000);
    let devices = server.enroll_many(2, None).await;
    (server, devices)
}

#[tokio::test]
async fn replays_count_once_and_gaps_are_acknowledged_correctly() {
    let (server, devices) = setup().await;
    let device = &devices[0];
    let mut one = [0u64; 12];
    one[2] = 10;
    let first = batch(1, vec![latency(1, one)]);
    assert_eq!(
        ack(&server, device, &first).await,
        TelemetryAck {
            acked_through: 1,
            duplicate: false
        }
    );
    // Replayed: acknowledged, not counted.
    assert_eq!(
        ack(&server, device, &first).await,
        TelemetryAck {
            acked_through: 1,
            duplicate: true
        }
    );
    assert_eq!(fleet(&server).await.model_versions[0].latency.samples, 10);

    // Gap: 3 arrives before 2.
    let third = batch(3, vec![latency(1, one)]);
    assert_eq!(
        ack(&server, device, &third).await,
        TelemetryAck {
            acked_through: 1,
            duplicate: false
        }
    );
    assert!(ack(&server, device, &third).await.duplicate);
    let second = batch(2, vec![latency(1, one)]);
    assert_eq!(
        ack(&server, device, &second).await,
        TelemetryAck {
            acked_through: 3,
            duplicate: false
        }
    );
    assert_eq!(fleet(&server).await.model_versions[0].latency.samples, 30);

    // The device gave up on 4 (its queue dropped it): 5 settles everything.
    let mut fifth = batch(5, vec![]);
    fifth["abandoned_through"] = json!(4);
    assert_eq!(ack(&server, device, &fifth).await.acked_through, 5);

    // Sequences are per device.
    assert_eq!(ack(&server, &devices[1], &first).await.acked_through, 1);
    assert_eq!(fleet(&server).await.model_versions[0].latency.samples, 40);

    // A sequence absurdly far ahead is refused.
    let response = send(&server, device, &batch(1_000_000, vec![])).await;
    assert_error(response, ErrorCode::TelemetryInvalid).await;
}

#[tokio::test]
async fn undeclared_fields_wrong_types_and_oversize_are_rejected() {
    let (server, devices) = setup().await;
    let device = &devices[0];
    let health = json!({"type": "health", "battery_percent": 50, "charging": true,
        "network": "wifi", "free_storage": "over10_gb", "thermal": "nominal",
        "completion": "completed"});
    let mut extra = health.clone();
    extra["user_email"] = json!("someone@example.com");
    let mut wrong_type = health.clone();
    wrong_type["battery_percent"] = json!("fifty");
    let mut top_extra = batch(1, vec![]);
    top_extra["debug"] = json!("free text");
    let cases = [
        batch(1, vec![extra]),
        batch(1, vec![wrong_type]),
        top_extra,
        batch(1, vec![json!({"type": "log", "message": "hello"})]),
        batch(
            1,
            vec![json!({"type": "events", "code": "custom text", "count": 1})],
        ),
        json!({"seq": "one", "recorded_at": 1, "events": []}),
    ];
    for case in &cases {
        let response = send(&server, device, case).await;
        assert_error(response, ErrorCode::TelemetryInvalid).await;
    }
    let huge = batch(1, vec![health.clone(); 2_000]);
    let response = send(&server, device, &huge).await;
    assert_error(response, ErrorCode::PayloadTooLarge).await;
    let many = batch(
        1,
        vec![json!({"type": "events", "code": "store_failed", "count": 1}); 300],
    );
    let response = send(&server, device, &many).await;
    assert_error(response, ErrorCode::PayloadTooLarge).await;
    // Nothing was stored, and seq 1 is still free.
    assert_eq!(
        ack(&server, device, &batch(1, vec![health]))
            .await
            .acked_through,
        1
    );
}

#[tokio::test]
async fn a_device_of_org_a_cannot_write_to_org_b() {
    let (server, devices) = setup().await;
    let org_b = server.server.create_org("Org B").await.unwrap();
    let publisher_b = publisher_key();
    server
        .register_publisher(&org_b.owner_api_key, &publisher_b)
        .await;
    server
        .publish(&org_b.owner_api_key, &publisher_b, "secret-model", 7, b"b")
        .await;
    let body = batch(
        1,
        vec![
            json!({"type": "latency", "model": {"model": "secret-model", "version": 7},
            "counts": [1,0,0,0,0,0,0,0,0,0,0,0]}),
        ],
    );
    let response = send(&server, &devices[0], &body).await;
    assert_error(response, ErrorCode::TelemetryInvalid).await;
    // An unknown version of a known model is refused too.
    let response = send(&server, &devices[0], &batch(1, vec![latency(9, [0; 12])])).await;
    assert_error(response, ErrorCode::TelemetryInvalid).await;
    let (_, b_health) = server
        .call(Method::GET, "/v1/fleet/health", &org_b.owner_api_key, None)
        .await;
    let b_health: FleetHealth = serde_json::from_value(b_health).unwrap();
    assert!(b_health.model_versions.is_empty());
    assert_eq!(b_health.devices.enrolled, 0);
}

#[tokio::test]
async fn fleet_health_merges_histograms_quality_versions_and_progress() {
    let (server, devices) = setup().await;
    for (i, device) in devices.iter().enumerate() {
        let mut counts = [0u64; 12];
        counts[1] = 50; // ≤ 2 ms
        counts[5] = 45; // ≤ 50 ms
        counts[8] = 5; // ≤ 500 ms
        let events = vec![
            json!({"type": "health", "battery_percent": 40 + i, "charging": false,
                "network": "cellular", "free_storage": "under1_gb", "thermal": "fair",
                "completion": "partial"}),
            json!({"type": "versions", "sdk": {"major": 0, "minor": 1, "patch": i},
                "active": [{"model": "kws", "version": 1}]}),
            latency(1, counts),
            json!({"type": "quality", "model": {"model": "kws", "version": 1},
                "metric": "accuracy", "sum": 45.0, "count": 50}),
            json!({"type": "rollout_progress", "model": {"model": "kws", "version": 1},
                "state": "active"}),
            json!({"type": "events", "code": "security_rollback", "count": 1}),
        ];
        ack(&server, device, &batch(1, events)).await;
    }
    let health = fleet(&server).await;
    assert_eq!(health.devices.enrolled, 2);
    assert_eq!(health.devices.online, 2);
    assert_eq!(health.sdk_versions.len(), 2);
    let kws = &health.model_versions[0];
    assert_eq!(
        (kws.model.as_str(), kws.version, kws.devices_active),
        ("kws", 1, 2)
    );
    assert_eq!(kws.latency.samples, 200);
    assert_eq!(kws.latency.p50_le_ms, Some(2));
    assert_eq!(kws.latency.p90_le_ms, Some(50));
    assert_eq!(kws.latency.p99_le_ms, Some(500));
    assert!((kws.quality[0].mean - 0.9).abs() < 1e-9);
    assert_eq!(kws.quality[0].count, 100);
    assert_eq!(health.rollouts[0].progress.active, 2);

    let (status, value) = server
        .call(Method::GET, "/v1/fleet/devices", &server.owner_key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<DeviceStatus> = serde_json::from_value(value).unwrap();
    assert!(statuses.iter().all(|s| s.online && s.health.is_some()));
}
