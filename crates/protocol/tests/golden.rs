//! Golden files for the wire format: a change to any of them shows in review and must be
//! deliberate, because devices in the field speak the old format.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p edgekeep-protocol --test golden`.

use std::path::PathBuf;

use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{
    AuditEntry, DeviceCredentials, EnrollRequest, EnrollResponse, Permission, Role,
};
use edgekeep_protocol::proof::{
    self, ExpectedRequest, ProofClaims, ProofError, ProofHeader, ProofSigner, SoftwareDeviceKey,
};
use serde_json::{Value, json};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
    // JSON is compared as values: the order of object keys depends on whether some crate in
    // the build enables serde_json's `preserve_order`, and is not part of the format.
    let same = match (
        serde_json::from_str::<serde_json::Value>(&expected),
        serde_json::from_str::<serde_json::Value>(actual),
    ) {
        (Ok(expected), Ok(actual)) => expected == actual,
        _ => expected == actual,
    };
    assert!(same, "wire format of {name} changed");
}

#[test]
fn error_codes_roles_and_permissions() {
    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|c| json!({ "code": c, "status": c.http_status() }))
        .collect();
    let roles: Vec<Value> = [Role::Member, Role::Admin, Role::Owner]
        .iter()
        .map(|r| json!({ "role": r, "permissions": r.permissions() }))
        .collect();
    let doc = json!({ "error_codes": codes, "roles": roles, "permissions": Permission::ALL });
    golden("codes.json", &serde_json::to_string_pretty(&doc).unwrap());
}

#[test]
fn enrollment_and_audit_bodies() {
    let enroll = EnrollRequest {
        org_id: "org_AAAAAAAAAAAAAAAA".into(),
        bootstrap_token: "ekb_lookuplookupsecret".into(),
        identity_public_key: "BPUB".into(),
        agreement_public_key: "XPUB".into(),
    };
    let response = EnrollResponse {
        device_id: "dev_AAAAAAAAAAAAAAAA".into(),
        org_id: "org_AAAAAAAAAAAAAAAA".into(),
        device_group: Some("beta".into()),
        server_agreement_public_key: "SPUB".into(),
        credentials: DeviceCredentials {
            access_token: "eka_x".into(),
            access_expires_at: 1_700_000_900,
            refresh_token: "ekr_x".into(),
            refresh_expires_at: 1_702_592_000,
        },
    };
    let entry = AuditEntry {
        seq: 7,
        at: 1_700_000_000,
        org_id: "org_AAAAAAAAAAAAAAAA".into(),
        actor: "member:mem_A".into(),
        action: "api_key.rotate".into(),
        target: "api_key:key_A->api_key:key_B".into(),
        outcome: "ok".into(),
        request_id: "req_A".into(),
        prev_hash: "00".into(),
        hash: "11".into(),
    };
    let doc =
        json!({ "enroll_request": enroll, "enroll_response": response, "audit_entry": entry });
    golden("bodies.json", &serde_json::to_string_pretty(&doc).unwrap());
}

struct FixedSigner;

impl ProofSigner for FixedSigner {
    fn public_key(&self) -> Vec<u8> {
        vec![4; 65]
    }
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, ProofError> {
        Ok(vec![0xAB; 64])
    }
}

#[test]
fn proof_encoding() {
    let header = ProofHeader {
        typ: proof::PROOF_TYP.into(),
        alg: proof::ALG_ES256.into(),
    };
    let claims = ProofClaims {
        htm: "GET".into(),
        htu: "https://127.0.0.1:8443/v1/device/me".into(),
        iat: 1_700_000_000,
        jti: "AAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ath: edgekeep_protocol::token::access_token_hash_claim("eka_example"),
    };
    let text = proof::sign_parts(&FixedSigner, &header, &claims).unwrap();
    golden("proof_encoding.txt", &format!("{text}\n"));
}

/// A proof recorded once (written only if the file is missing) must keep verifying in every
/// later version.
#[test]
fn recorded_proof_still_verifies() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/recorded_proof.json");
    if !path.exists() {
        let (key, pkcs8) = SoftwareDeviceKey::generate().unwrap();
        let proof = proof::build_proof(
            &key,
            "POST",
            "https://api.example.com/v1/device/refresh",
            "ekr_example",
            1_700_000_000,
        )
        .unwrap();
        let doc = json!({
            "public_key": edgekeep_protocol::b64_encode(&key.public_key()),
            "pkcs8_for_tests_only": edgekeep_protocol::b64_encode(&pkcs8),
            "proof": proof,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let public_key = edgekeep_protocol::b64_decode(doc["public_key"].as_str().unwrap()).unwrap();
    let expected = ExpectedRequest {
        method: "POST",
        url: "https://api.example.com/v1/device/refresh?ignored=1",
        token: "ekr_example",
        now: 1_700_000_030,
        freshness_secs: proof::DEFAULT_FRESHNESS_SECS,
    };
    let verified =
        proof::verify_proof(doc["proof"].as_str().unwrap(), &public_key, &expected).unwrap();
    assert_eq!(verified.iat, 1_700_000_000);
    let signer = SoftwareDeviceKey::from_pkcs8(
        &edgekeep_protocol::b64_decode(doc["pkcs8_for_tests_only"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(signer.public_key(), public_key);
}

mod artifact_and_telemetry {
    use super::golden;
    use edgekeep_protocol::artifact::{ArtifactManifest, ModelFormat, SemVer, SignedManifest};
    use edgekeep_protocol::desired_state::{DesiredState, ModelAssignment, SignedDesiredState};
    use edgekeep_protocol::rollout::RolloutBucket;
    use edgekeep_protocol::signing::SigningKey;
    use edgekeep_protocol::telemetry::TelemetryBatch;
    use std::path::PathBuf;

    /// A fixed test key (Ed25519 signatures are deterministic, so golden signatures are stable).
    fn test_key() -> SigningKey {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/test_publisher.key");
        if !path.exists() {
            let key = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
            std::fs::write(&path, key.to_text().as_str()).unwrap();
        }
        SigningKey::from_text(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn manifest(key: &SigningKey) -> ArtifactManifest {
        ArtifactManifest {
            ciphertext_len: 1028,
            ciphertext_sha256: "ab".repeat(32),
            created_at: 1_700_000_000,
            expires_at: 1_800_000_000,
            format: ModelFormat::Onnx,
            format_version: 1,
            min_sdk_version: SemVer::new(0, 1, 0),
            model: "kws".into(),
            opset: 17,
            plaintext_len: 1000,
            plaintext_sha256: "cd".repeat(32),
            publisher_key_id: key.key_id(),
            tract_version: SemVer::new(0, 23, 9),
            version: 3,
        }
    }

    #[test]
    fn manifest_canonical_bytes_and_signature() {
        let key = test_key();
        let signed = SignedManifest::sign(manifest(&key), &key);
        let text = format!(
            "public_key {}\ncanonical {}\nsigned {}\n",
            key.public_key().to_text(),
            String::from_utf8(signed.manifest.canonical_bytes()).unwrap(),
            serde_json::to_string(&signed).unwrap()
        );
        golden("manifest.txt", &text);
        signed.verify(&[key.public_key()], 1_700_000_001).unwrap();
    }

    #[test]
    fn desired_state_and_buckets() {
        let key = test_key();
        let state = DesiredState {
            device_id: "dev_AAAA".into(),
            org_id: "org_AAAA".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_000_300,
            slots: vec![ModelAssignment {
                model: "kws".into(),
                version: 3,
                artifact_id: "ab".repeat(32),
                rollout_id: Some("rol_AAAA".into()),
                manifest: SignedManifest::sign(manifest(&key), &key),
            }],
        };
        let signed = SignedDesiredState::sign(&state, &key);
        golden(
            "desired_state.json",
            &serde_json::to_string_pretty(&signed).unwrap(),
        );
        let buckets: Vec<u32> = (0..8)
            .map(|i| RolloutBucket::of("rol_golden", &format!("dev_{i}")).value())
            .collect();
        golden("buckets.json", &serde_json::to_string(&buckets).unwrap());
    }

    #[test]
    fn telemetry_batch() {
        let text = r#"{"seq":7,"abandoned_through":3,"recorded_at":1700000000,"events":[{"type":"health","battery_percent":80,"charging":false,"network":"wifi","free_storage":"under10_gb","thermal":"fair","completion":"completed"},{"type":"versions","sdk":{"major":0,"minor":1,"patch":0},"active":[{"model":"kws","version":3}]},{"type":"latency","model":{"model":"kws","version":3},"counts":[0,4,9,1,0,0,0,0,0,0,0,0]},{"type":"quality","model":{"model":"kws","version":3},"metric":"accuracy","sum":41.5,"count":50},{"type":"events","code":"security_rollback","count":1},{"type":"rollout_progress","model":{"model":"kws","version":3},"state":"active"}]}"#;
        let batch = TelemetryBatch::parse(text.as_bytes()).unwrap();
        let again = serde_json::to_string(&batch).unwrap();
        assert_eq!(again, text);
        golden("telemetry_batch.json", &again);
    }
}
