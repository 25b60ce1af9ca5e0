//! Role and cross-tenant matrix of the registry, rollout and fleet endpoints: each endpoint ×
//! {Member, Admin, Owner} in its own org gets the expected status; every endpoint aimed at
//! another org's resources answers exactly like a missing resource; no response carries
//! another org's ids or names.

mod common;

use common::{TestServer, publisher_key};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn key_for(t: &TestServer, role: &str) -> String {
    let (_, member) = t
        .call(
            Method::POST,
            "/v1/members",
            &t.owner_key,
            Some(json!({"name": role, "role": role})),
        )
        .await;
    let (_, key) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &t.owner_key,
            Some(json!({"member_id": member["id"], "name": role})),
        )
        .await;
    key["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn roles_and_tenants() {
    let t = TestServer::start().await;
    let keys = [
        ("member", key_for(&t, "member").await),
        ("admin", key_for(&t, "admin").await),
        ("owner", t.owner_key.clone()),
    ];
    let publisher = publisher_key();
    t.register_publisher(&t.owner_key, &publisher).await;
    t.publish(&t.owner_key, &publisher, "base", 1, b"a").await;
    t.enroll_many(1, None).await;

    // Org B with a model, a rollout and a device.
    let b = t.server.create_org("Org B hidden").await.unwrap();
    let b_publisher = publisher_key();
    t.register_publisher(&b.owner_api_key, &b_publisher).await;
    t.publish(&b.owner_api_key, &b_publisher, "b-secret-model", 3, b"b")
        .await;
    let b_rollout = t
        .rollout(&b.owner_api_key, "b-secret-model", 3, None, 5000)
        .await;
    let token = t.bootstrap(&b.owner_api_key, None).await;
    let b_device = t.enroll(&b.org_id, &token).await;
    let b_secrets = [
        b.org_id.clone(),
        "Org B hidden".to_owned(),
        "b-secret-model".to_owned(),
        b_rollout.id.clone(),
        b_publisher.key_id(),
        b_device.id.clone(),
    ];

    let mut cells = 0;
    for (index, (role, key)) in keys.iter().enumerate() {
        let expect = |member: u16, admin: u16, owner: u16| [member, admin, owner][index];
        let model = format!("m-{role}");
        let role_publisher = publisher_key();
        let mut check = |name: &str, status: StatusCode, body: &Value, want: u16| {
            assert_eq!(status.as_u16(), want, "{name} as {role}: {body}");
            let text = body.to_string();
            for secret in &b_secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{name} as {role} leaks org B"
                );
            }
            cells += 1;
        };

        let (s, v) = t.call(Method::GET, "/v1/publisher-keys", key, None).await;
        check("list publisher keys", s, &v, 200);
        let body = json!({"name": "k", "public_key": role_publisher.public_key().to_text()});
        let (s, v) = t
            .call(Method::POST, "/v1/publisher-keys", key, Some(body))
            .await;
        check("register publisher key", s, &v, expect(403, 403, 201));
        let upload = t
            .upload(key, common::build(&publisher, &model, 1, b"x").to_bundle())
            .await;
        let s = upload.status();
        let v: Value = upload.json().await.unwrap();
        check("upload", s, &v, 201);
        let (s, v) = t.call(Method::GET, "/v1/models", key, None).await;
        check("list models", s, &v, 200);
        let approve = format!("/v1/models/{model}/versions/1/approve");
        let (s, v) = t.call(Method::POST, &approve, key, None).await;
        check("approve", s, &v, expect(403, 200, 200));
        let rollout = json!({"model": "base", "version": 1, "basis_points": 100});
        let (s, v) = t
            .call(Method::POST, "/v1/rollouts", key, Some(rollout))
            .await;
        check("create rollout", s, &v, expect(403, 201, 201));
        let (s, v) = t.call(Method::GET, "/v1/rollouts", key, None).await;
        check("list rollouts", s, &v, 200);
        let (s, v) = t.call(Method::GET, "/v1/fleet/health", key, None).await;
        check("fleet health", s, &v, 200);
        let (s, v) = t.call(Method::GET, "/v1/fleet/devices", key, None).await;
        check("fleet devices", s, &v, 200);

        // Aimed at org B: indistinguishable from missing, whatever the role allows.
        let not_found_or_forbidden = expect(403, 404, 404);
        let path = format!("/v1/rollouts/{}/pause", b_rollout.id);
        let (s, v) = t.call(Method::POST, &path, key, None).await;
        check("pause B's rollout", s, &v, not_found_or_forbidden);
        let path = format!("/v1/rollouts/{}", b_rollout.id);
        let (s, v) = t.call(Method::GET, &path, key, None).await;
        check("read B's rollout", s, &v, 404);
        let (s, v) = t
            .call(
                Method::POST,
                "/v1/models/b-secret-model/versions/3/approve",
                key,
                None,
            )
            .await;
        check("approve B's version", s, &v, not_found_or_forbidden);
        let rollout = json!({"model": "b-secret-model", "version": 3, "basis_points": 100});
        let (s, v) = t
            .call(Method::POST, "/v1/rollouts", key, Some(rollout))
            .await;
        check("roll out B's version", s, &v, not_found_or_forbidden);
        let path = format!("/v1/publisher-keys/{}", b_publisher.key_id());
        let (s, v) = t.call(Method::DELETE, &path, key, None).await;
        check("revoke B's publisher key", s, &v, expect(403, 403, 404));
    }
    assert_eq!(cells, 42);

    // A device of org A cannot download org B's artifact or get its key.
    let a_device = t.enroll_many(1, None).await.remove(0);
    let (_, b_models) = t
        .call(Method::GET, "/v1/models", &b.owner_api_key, None)
        .await;
    let artifact = b_models[0]["artifact_id"].as_str().unwrap().to_owned();
    let response = t
        .device_get(&a_device, &format!("/v1/device/artifacts/{artifact}"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = t
        .device_get(&a_device, &format!("/v1/device/artifacts/{artifact}/key"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
