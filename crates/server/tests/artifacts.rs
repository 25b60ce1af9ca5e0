//! Artifact attacks against the server: every bad upload is rejected with a clear code and
//! audited; publisher keys are Owner-only and audited.

mod common;

use common::{TestServer, assert_error, build, publisher_key};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::artifact::{ArtifactManifest, SignedManifest};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Rebuilds a bundle around a changed signed manifest (ciphertext and key unchanged).
fn with_manifest(bundle: &[u8], manifest: &SignedManifest) -> Vec<u8> {
    let old_len = u32::from_be_bytes(bundle[8..12].try_into().unwrap()) as usize;
    let json = serde_json::to_vec(manifest).unwrap();
    let mut out = bundle[..8].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bundle[12 + old_len..]);
    out
}

fn resign(
    manifest: ArtifactManifest,
    key: &edgekeep_protocol::signing::SigningKey,
) -> SignedManifest {
    SignedManifest::sign(manifest, key)
}

#[tokio::test]
async fn bad_artifacts_are_rejected_with_clear_codes() {
    let server = TestServer::start_with(|c| c.max_artifact_bytes = 64 * 1024).await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;

    // Another org registers its own key.
    let other = server.server.create_org("Org B").await.unwrap();
    let other_publisher = publisher_key();
    server
        .register_publisher(&other.owner_api_key, &other_publisher)
        .await;

    let good = build(&publisher, "kws", 1, b"model one");
    let bundle = good.to_bundle();

    // Unsigned: empty signature.
    let mut unsigned = good.manifest.clone();
    unsigned.signature = String::new();
    let response = server
        .upload(&owner, with_manifest(&bundle, &unsigned))
        .await;
    assert_error(response, ErrorCode::ArtifactSignatureInvalid).await;

    // Signed by a key nobody registered.
    let stranger = publisher_key();
    let response = server
        .upload(&owner, build(&stranger, "kws", 1, b"m").to_bundle())
        .await;
    assert_error(response, ErrorCode::PublisherKeyUnknown).await;

    // Signed by another org's registered key.
    let response = server
        .upload(&owner, build(&other_publisher, "kws", 1, b"m").to_bundle())
        .await;
    assert_error(response, ErrorCode::PublisherKeyUnknown).await;

    // A forged signature that names the registered key.
    let mut forged = resign(good.manifest.manifest.clone(), &stranger);
    forged.manifest.publisher_key_id = publisher.key_id();
    let response = server.upload(&owner, with_manifest(&bundle, &forged)).await;
    assert_error(response, ErrorCode::ArtifactSignatureInvalid).await;

    // Manifest edited after signing (version bumped).
    let mut edited = good.manifest.clone();
    edited.manifest.version = 9;
    let response = server.upload(&owner, with_manifest(&bundle, &edited)).await;
    assert_error(response, ErrorCode::ArtifactSignatureInvalid).await;

    // Tampered ciphertext byte (hash no longer matches the signed manifest).
    let mut tampered = bundle.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let response = server.upload(&owner, tampered).await;
    assert_error(response, ErrorCode::ArtifactTampered).await;

    // Wrong content key: ciphertext matches, but it does not decrypt to the signed plaintext.
    let mut wrong_key = bundle.clone();
    let key_at = bundle.len() - good.ciphertext.len() - 32;
    wrong_key[key_at] ^= 0x01;
    let response = server.upload(&owner, wrong_key).await;
    assert_error(response, ErrorCode::ArtifactTampered).await;

    // Truncated / garbage.
    let response = server.upload(&owner, bundle[..20].to_vec()).await;
    assert_error(response, ErrorCode::ArtifactMalformed).await;
    let response = server
        .upload(&owner, b"not an artifact at all".to_vec())
        .await;
    assert_error(response, ErrorCode::ArtifactMalformed).await;

    // Expired manifest, validly signed.
    let mut expired_spec = common::spec("kws", 1);
    expired_spec.created_at = common::now() - 100;
    expired_spec.expires_at = common::now() - 50;
    let expired = edgekeep_protocol::artifact::build_artifact(
        b"m",
        &expired_spec,
        &publisher,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let response = server.upload(&owner, expired.to_bundle()).await;
    assert_error(response, ErrorCode::ArtifactExpired).await;

    // Oversize (server bound 64 KiB).
    let big = build(&publisher, "kws", 1, &vec![7u8; 200 * 1024]);
    let response = server.upload(&owner, big.to_bundle()).await;
    assert_error(response, ErrorCode::PayloadTooLarge).await;

    // The good one is accepted; its version cannot be reused or lowered.
    let response = server.upload(&owner, bundle.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = server
        .upload(&owner, build(&publisher, "kws", 1, b"again").to_bundle())
        .await;
    assert_error(response, ErrorCode::Conflict).await;

    // Nothing rejected was stored; every rejection is audited with its code.
    let (_, models) = server.call(Method::GET, "/v1/models", &owner, None).await;
    assert_eq!(models.as_array().unwrap().len(), 1);
    let audit = server.audit(&owner).await;
    let rejected: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "model_version.upload.rejected")
        .map(|e| e.outcome.as_str())
        .collect();
    for code in [
        "artifact_signature_invalid",
        "publisher_key_unknown",
        "artifact_tampered",
        "artifact_malformed",
        "artifact_expired",
        "payload_too_large",
        "conflict",
    ] {
        assert!(rejected.contains(&code), "{code} not audited: {rejected:?}");
    }
    assert!(audit.iter().any(|e| e.action == "model_version.upload"));
    // Org B sees none of it.
    let (_, b_models) = server
        .call(Method::GET, "/v1/models", &other.owner_api_key, None)
        .await;
    assert_eq!(b_models, json!([]));
}

#[tokio::test]
async fn publisher_keys_are_owner_only_audited_and_revocable() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (_, admin) = server
        .call(
            Method::POST,
            "/v1/members",
            &owner,
            Some(json!({"name": "admin", "role": "admin"})),
        )
        .await;
    let (_, admin_key) = server
        .call(
            Method::POST,
            "/v1/api-keys",
            &owner,
            Some(json!({"member_id": admin["id"], "name": "k"})),
        )
        .await;
    let admin_key = admin_key["secret"].as_str().unwrap().to_owned();
    let publisher = publisher_key();
    let body = json!({"name": "ci", "public_key": publisher.public_key().to_text()});
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/publisher-keys",
            &admin_key,
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/publisher-keys",
            &owner,
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .call(Method::POST, "/v1/publisher-keys", &owner, Some(body))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/publisher-keys",
            &owner,
            Some(json!({"name": "x", "public_key": "AAAA"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Admins approve; Members may upload but not approve.
    let version = server
        .publish(&admin_key, &publisher, "kws", 1, b"m1")
        .await;
    assert!(version.approved_at.is_some());

    // After revocation, the key's artifacts are refused.
    let path = format!("/v1/publisher-keys/{}", publisher.key_id());
    let (status, _) = server.call(Method::DELETE, &path, &owner, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let response = server
        .upload(&owner, build(&publisher, "kws", 2, b"m2").to_bundle())
        .await;
    assert_error(response, ErrorCode::PublisherKeyUnknown).await;

    let actions: Vec<String> = server
        .audit(&owner)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "publisher_key.register",
        "publisher_key.revoke",
        "model_version.upload",
        "model_version.approve",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}");
    }
}
