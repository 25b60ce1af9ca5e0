//! A device enrolling over HTTPS, as the load generator (`examples/loadgen.rs`) and the fleet
//! paint benchmark (`benches/fleet_paint.rs`) both do it: a bootstrap token minted with an API
//! key, then the enrollment request with its proof. Included by `#[path]`: examples and benches
//! share no crate.

use edgekeep_protocol::api::{BootstrapTokenResponse, EnrollRequest, EnrollResponse};
use edgekeep_protocol::key_agreement::EphemeralAgreement;
use edgekeep_protocol::proof::{self, ProofSigner as _, SoftwareDeviceKey};

/// What these helpers fail with.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Mints a bootstrap token with `api_key`, for `group` when given.
pub async fn mint_bootstrap(
    client: &reqwest::Client,
    base: &str,
    api_key: &str,
    group: Option<&str>,
) -> Result<String, Error> {
    let body = match group {
        Some(group) => serde_json::json!({ "device_group": group }),
        None => serde_json::json!({}),
    };
    let minted: BootstrapTokenResponse = client
        .post(format!("{base}/v1/bootstrap-tokens"))
        .bearer_auth(api_key)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(minted.token)
}

/// Enrolls the device holding `key` and `agreement` into `org_id` with `bootstrap`, calling the
/// server at `base`; the proof names `public_url`, the address the server knows itself by.
pub async fn enroll(
    client: &reqwest::Client,
    base: &str,
    public_url: &str,
    org_id: &str,
    bootstrap: &str,
    key: &SoftwareDeviceKey,
    agreement: &EphemeralAgreement,
) -> Result<EnrollResponse, Error> {
    let proof = proof::build_proof(
        key,
        "POST",
        &format!("{public_url}/v1/device/enroll"),
        bootstrap,
        now(),
    )?;
    let body = EnrollRequest {
        org_id: org_id.to_owned(),
        bootstrap_token: bootstrap.to_owned(),
        identity_public_key: edgekeep_protocol::b64_encode(&key.public_key()),
        agreement_public_key: edgekeep_protocol::b64_encode(agreement.public_key()),
    };
    Ok(client
        .post(format!("{base}/v1/device/enroll"))
        .header(proof::PROOF_HEADER, proof)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}
