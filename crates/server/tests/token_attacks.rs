//! Attacks on device and bootstrap credentials, each rejected with its code and audited where
//! it is a security event.

mod common;

use common::{TestServer, assert_error, now};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::key_agreement::EphemeralAgreement;
use edgekeep_protocol::proof::{self, ProofClaims, ProofHeader, SoftwareDeviceKey};
use edgekeep_protocol::token::access_token_hash_claim;
use reqwest::{Method, StatusCode};

const ME: &str = "/v1/device/me";

fn audited(
    entries: &[edgekeep_protocol::api::AuditEntry],
    action: &str,
    outcome: ErrorCode,
) -> bool {
    entries
        .iter()
        .any(|e| e.action == action && e.outcome == outcome.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_attacks_are_rejected_and_audited() {
    let t = TestServer::start().await;
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let device = t.enroll(&t.org_id, &bootstrap).await;
    let url = t.url(ME);

    // Replayed proof.
    let proof = proof::build_proof(&device.key, "GET", &url, &device.access, now()).unwrap();
    let first = t
        .device_request(Method::GET, ME, &device.access, Some(&proof))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = t
        .device_request(Method::GET, ME, &device.access, Some(&proof))
        .await;
    assert_error(again, ErrorCode::ProofReplayed).await;

    // Proof for another URL, another method.
    let other_url = proof::build_proof(
        &device.key,
        "GET",
        &t.url("/v1/devices"),
        &device.access,
        now(),
    )
    .unwrap();
    assert_error(
        t.device_request(Method::GET, ME, &device.access, Some(&other_url))
            .await,
        ErrorCode::ProofMismatch,
    )
    .await;
    let other_method =
        proof::build_proof(&device.key, "POST", &url, &device.access, now()).unwrap();
    assert_error(
        t.device_request(Method::GET, ME, &device.access, Some(&other_method))
            .await,
        ErrorCode::ProofMismatch,
    )
    .await;

    // Proof bound to another token.
    let other_token =
        proof::build_proof(&device.key, "GET", &url, "eka_not_this_one", now()).unwrap();
    assert_error(
        t.device_request(Method::GET, ME, &device.access, Some(&other_token))
            .await,
        ErrorCode::ProofMismatch,
    )
    .await;

    // Proof from another key.
    let (thief, _) = SoftwareDeviceKey::generate().unwrap();
    let stolen = proof::build_proof(&thief, "GET", &url, &device.access, now()).unwrap();
    assert_error(
        t.device_request(Method::GET, ME, &device.access, Some(&stolen))
            .await,
        ErrorCode::ProofInvalid,
    )
    .await;

    // Stale and future time.
    for iat in [now() - 120, now() + 120] {
        let stale = proof::build_proof(&device.key, "GET", &url, &device.access, iat).unwrap();
        assert_error(
            t.device_request(Method::GET, ME, &device.access, Some(&stale))
                .await,
            ErrorCode::ProofStale,
        )
        .await;
    }

    // Token without proof.
    assert_error(
        t.device_request(Method::GET, ME, &device.access, None)
            .await,
        ErrorCode::ProofMissing,
    )
    .await;

    // Tampered token.
    let mut tampered = device.access.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let proof = proof::build_proof(&device.key, "GET", &url, &tampered, now()).unwrap();
    assert_error(
        t.device_request(Method::GET, ME, &tampered, Some(&proof))
            .await,
        ErrorCode::InvalidCredentials,
    )
    .await;

    // `alg: none` and HMAC downgrades, signed or with the signature stripped.
    for alg in ["none", "HS256", "es256"] {
        let header = ProofHeader {
            typ: proof::PROOF_TYP.into(),
            alg: alg.into(),
        };
        let claims = ProofClaims {
            htm: "GET".into(),
            htu: url.clone(),
            iat: now(),
            jti: format!("downgrade-attempt-{alg}-0001"),
            ath: access_token_hash_claim(&device.access),
        };
        let signed = proof::sign_parts(&device.key, &header, &claims).unwrap();
        let unsigned = format!("{}.", signed.rsplit_once('.').unwrap().0);
        for forged in [signed, unsigned] {
            assert_error(
                t.device_request(Method::GET, ME, &device.access, Some(&forged))
                    .await,
                ErrorCode::ProofUnsupportedAlgorithm,
            )
            .await;
        }
    }

    // The legitimate device still works after all that.
    assert_eq!(t.device_get(&device, ME).await.status(), StatusCode::OK);

    let audit = t.audit(&t.owner_key).await;
    for code in [
        ErrorCode::ProofReplayed,
        ErrorCode::ProofMismatch,
        ErrorCode::ProofInvalid,
        ErrorCode::ProofStale,
        ErrorCode::ProofMissing,
        ErrorCode::ProofUnsupportedAlgorithm,
    ] {
        assert!(
            audited(&audit, "device.auth.rejected", code),
            "{code} not audited"
        );
    }
    assert!(
        audit
            .iter()
            .all(|e| !e.target.contains(&device.access) && !e.actor.contains(&device.access))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_revokes_the_family() {
    let t = TestServer::start().await;
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let mut device = t.enroll(&t.org_id, &bootstrap).await;
    let first_refresh = device.refresh.clone();

    let rotated = t.refresh_raw(&device, &first_refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let credentials: edgekeep_protocol::api::DeviceCredentials = rotated.json().await.unwrap();
    assert_ne!(credentials.refresh_token, first_refresh);

    // The old refresh token comes back: reuse.
    assert_error(
        t.refresh_raw(&device, &first_refresh).await,
        ErrorCode::RefreshTokenReused,
    )
    .await;
    // The whole family is gone: the new refresh token and the new access token fail.
    assert_error(
        t.refresh_raw(&device, &credentials.refresh_token).await,
        ErrorCode::InvalidCredentials,
    )
    .await;
    device.access = credentials.access_token;
    assert_error(
        t.device_get(&device, ME).await,
        ErrorCode::InvalidCredentials,
    )
    .await;

    let audit = t.audit(&t.owner_key).await;
    assert!(audited(
        &audit,
        "device.refresh.reuse_detected",
        ErrorCode::RefreshTokenReused
    ));

    // A refresh token with a proof from another key is refused without burning the family.
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let device = t.enroll(&t.org_id, &bootstrap).await;
    let (thief, _) = SoftwareDeviceKey::generate().unwrap();
    let url = t.url("/v1/device/refresh");
    let proof = proof::build_proof(&thief, "POST", &url, &device.refresh, now()).unwrap();
    let response = t
        .client
        .post(url)
        .header(proof::PROOF_HEADER, proof)
        .json(&serde_json::json!({ "refresh_token": device.refresh }))
        .send()
        .await
        .unwrap();
    assert_error(response, ErrorCode::ProofInvalid).await;
    assert_eq!(
        t.refresh_raw(&device, &device.refresh).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_devices_and_groups_fail_on_next_request() {
    let t = TestServer::start().await;
    let lone = t
        .enroll(&t.org_id, &t.bootstrap(&t.owner_key, None).await)
        .await;
    let grouped = t
        .enroll(&t.org_id, &t.bootstrap(&t.owner_key, Some("canary")).await)
        .await;
    let other = t
        .enroll(&t.org_id, &t.bootstrap(&t.owner_key, Some("stable")).await)
        .await;
    for device in [&lone, &grouped, &other] {
        assert_eq!(t.device_get(device, ME).await.status(), StatusCode::OK);
    }

    let (status, _) = t
        .call(
            Method::POST,
            &format!("/v1/devices/{}/revoke", lone.id),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(t.device_get(&lone, ME).await, ErrorCode::DeviceRevoked).await;
    assert_error(
        t.refresh_raw(&lone, &lone.refresh).await,
        ErrorCode::DeviceRevoked,
    )
    .await;

    let (status, body) = t
        .call(
            Method::POST,
            "/v1/device-groups/canary/revoke",
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["revoked"], 1);
    assert_error(t.device_get(&grouped, ME).await, ErrorCode::DeviceRevoked).await;
    assert_eq!(t.device_get(&other, ME).await.status(), StatusCode::OK);

    let audit = t.audit(&t.owner_key).await;
    assert!(audit.iter().any(|e| e.action == "device.revoke"));
    assert!(audit.iter().any(|e| e.action == "device_group.revoke"));
    assert!(audited(
        &audit,
        "device.auth.rejected",
        ErrorCode::DeviceRevoked
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_token_reuse_expiry_and_cross_org_fail_and_are_audited() {
    let t = TestServer::start().await;
    let org_b = t.server.create_org("Org B").await.unwrap();

    // Reuse.
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    t.enroll(&t.org_id, &bootstrap).await;
    let (key, _) = SoftwareDeviceKey::generate().unwrap();
    let response = t
        .enroll_raw(
            &t.org_id,
            &bootstrap,
            &key,
            &EphemeralAgreement::generate().unwrap(),
        )
        .await;
    assert_error(response, ErrorCode::BootstrapTokenUsed).await;

    // Cross-org: a token of org A presented for org B.
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let response = t
        .enroll_raw(
            &org_b.org_id,
            &bootstrap,
            &key,
            &EphemeralAgreement::generate().unwrap(),
        )
        .await;
    assert_error(response, ErrorCode::BootstrapTokenInvalid).await;
    // The token is not burnt by the failed attempt.
    t.enroll(&t.org_id, &bootstrap).await;

    // Unknown token.
    let response = t
        .enroll_raw(
            &t.org_id,
            "ekb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &key,
            &EphemeralAgreement::generate().unwrap(),
        )
        .await;
    assert_error(response, ErrorCode::BootstrapTokenInvalid).await;

    // Proof by another key than the one enrolled.
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let url = t.url("/v1/device/enroll");
    let (thief, _) = SoftwareDeviceKey::generate().unwrap();
    let proof = proof::build_proof(&thief, "POST", &url, &bootstrap, now()).unwrap();
    let body = edgekeep_protocol::api::EnrollRequest {
        org_id: t.org_id.clone(),
        bootstrap_token: bootstrap.clone(),
        identity_public_key: edgekeep_protocol::b64_encode(&proof::ProofSigner::public_key(&key)),
        agreement_public_key: edgekeep_protocol::b64_encode(
            EphemeralAgreement::generate().unwrap().public_key(),
        ),
    };
    let response = t
        .client
        .post(&url)
        .header(proof::PROOF_HEADER, proof)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(response, ErrorCode::ProofInvalid).await;

    // Expiry.
    let (status, value) = t
        .call(
            Method::POST,
            "/v1/bootstrap-tokens",
            &t.owner_key,
            Some(serde_json::json!({ "ttl_seconds": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let short = value["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let response = t
        .enroll_raw(
            &t.org_id,
            &short,
            &key,
            &EphemeralAgreement::generate().unwrap(),
        )
        .await;
    assert_error(response, ErrorCode::BootstrapTokenExpired).await;

    // TTL above 10 minutes is refused.
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/bootstrap-tokens",
            &t.owner_key,
            Some(serde_json::json!({ "ttl_seconds": 601 })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let audit = t.audit(&t.owner_key).await;
    for code in [
        ErrorCode::BootstrapTokenUsed,
        ErrorCode::BootstrapTokenInvalid,
        ErrorCode::BootstrapTokenExpired,
        ErrorCode::ProofInvalid,
    ] {
        assert!(
            audited(&audit, "device.enroll.rejected", code),
            "{code} not audited"
        );
    }
    // Nothing about org A's attempt lands in org B's trail.
    let audit_b = t.audit(&org_b.owner_api_key).await;
    assert!(
        audit_b
            .iter()
            .all(|e| e.org_id == org_b.org_id && !e.action.starts_with("device."))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_and_enrollments_are_rate_limited() {
    let t = TestServer::start_with(|config| {
        config.rate_limits.auth_failures_per_address = 5;
        config.rate_limits.enrollments_per_org = 3;
    })
    .await;
    for _ in 0..5 {
        let (status, _) = t
            .call(
                Method::GET,
                "/v1/org",
                "ek_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = t
        .call(
            Method::GET,
            "/v1/org",
            "ek_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "rate_limited");
    // The address's failure budget throttles failing attempts only: a valid key still works.
    let (status, _) = t.call(Method::GET, "/v1/org", &t.owner_key, None).await;
    assert_eq!(status, StatusCode::OK);

    // Failures attributed to one org (bad proofs with a real token) are budgeted per org.
    let t = TestServer::start_with(|config| {
        config.rate_limits.auth_failures_per_org = 3;
        config.rate_limits.auth_failures_per_address = 1000;
    })
    .await;
    let device = t
        .enroll(&t.org_id, &t.bootstrap(&t.owner_key, None).await)
        .await;
    for _ in 0..3 {
        assert_error(
            t.device_request(Method::GET, ME, &device.access, None)
                .await,
            ErrorCode::ProofMissing,
        )
        .await;
    }
    assert_error(
        t.device_request(Method::GET, ME, &device.access, None)
            .await,
        ErrorCode::RateLimited,
    )
    .await;
    // Successful requests of that org are not blocked by its failure budget.
    assert_eq!(t.device_get(&device, ME).await.status(), StatusCode::OK);

    let t = TestServer::start_with(|config| config.rate_limits.enrollments_per_org = 3).await;
    for _ in 0..3 {
        let bootstrap = t.bootstrap(&t.owner_key, None).await;
        t.enroll(&t.org_id, &bootstrap).await;
    }
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let (key, _) = SoftwareDeviceKey::generate().unwrap();
    let response = t
        .enroll_raw(
            &t.org_id,
            &bootstrap,
            &key,
            &EphemeralAgreement::generate().unwrap(),
        )
        .await;
    assert_error(response, ErrorCode::RateLimited).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_enrollments_with_one_token_yield_one_device() {
    let t = std::sync::Arc::new(TestServer::start().await);
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (t, bootstrap) = (t.clone(), bootstrap.clone());
        tasks.push(tokio::spawn(async move {
            let (key, _) = SoftwareDeviceKey::generate().unwrap();
            let agreement = EphemeralAgreement::generate().unwrap();
            t.enroll_raw(&t.org_id, &bootstrap, &key, &agreement)
                .await
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED)
    );
    let (_, devices) = t.call(Method::GET, "/v1/devices", &t.owner_key, None).await;
    assert_eq!(devices.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_refreshes_with_one_token_rotate_once_then_revoke() {
    let t = std::sync::Arc::new(TestServer::start().await);
    let bootstrap = t.bootstrap(&t.owner_key, None).await;
    let device = std::sync::Arc::new(t.enroll(&t.org_id, &bootstrap).await);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (t, device) = (t.clone(), device.clone());
        tasks.push(tokio::spawn(async move {
            let response = t.refresh_raw(&device, &device.refresh).await;
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let rotated = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(rotated, 1, "{results:?}");
    // The first repeat revokes the family; later repeats find it revoked.
    let codes: Vec<&str> = results
        .iter()
        .filter(|(s, _)| *s != StatusCode::OK)
        .map(|(_, body)| body["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"refresh_token_reused"), "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| *c == "refresh_token_reused" || *c == "invalid_credentials")
    );
    // Racing uses of one refresh token count as reuse: the rotated credentials die too.
    let winner = &results
        .iter()
        .find(|(s, _)| *s == StatusCode::OK)
        .unwrap()
        .1;
    let new_refresh = winner["refresh_token"].as_str().unwrap();
    assert_error(
        t.refresh_raw(&device, new_refresh).await,
        ErrorCode::InvalidCredentials,
    )
    .await;
}
