//! The operator's side of the demo: the control plane's HTTP API called with the Owner's
//! API key, as a dashboard or CI job would.

use edgekeep_protocol::api::{BootstrapTokenResponse, CreateBootstrapTokenRequest, DeviceInfo};
use edgekeep_protocol::fleet::{FleetHealth, RolloutInfo};
use edgekeep_protocol::signing::VerifyingKey;
use serde::de::DeserializeOwned;

/// A failed operator call, with the server's answer.
pub type OpResult<T> = Result<T, String>;

/// An API client for one org.
pub struct Operator {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl Operator {
    /// A client trusting the control plane's CA.
    pub fn new(base_url: String, api_key: String, ca_pem: &str) -> OpResult<Self> {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base_url,
            api_key,
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> OpResult<T> {
        let response = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("{what}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{what}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{what}: unexpected answer: {e}"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Registers the publisher's public key (Owner only).
    pub async fn register_publisher(&self, name: &str, key: &VerifyingKey) -> OpResult<()> {
        let body = serde_json::json!({ "name": name, "public_key": key.to_text() });
        let _: serde_json::Value = self
            .send(
                "register publisher key",
                self.http.post(self.url("/v1/publisher-keys")).json(&body),
            )
            .await?;
        Ok(())
    }

    /// Uploads a signed, encrypted artifact bundle built on the publisher's machine.
    pub async fn upload(&self, bundle: Vec<u8>) -> OpResult<()> {
        let _: serde_json::Value = self
            .send(
                "upload artifact",
                self.http
                    .post(self.url("/v1/artifacts"))
                    .header("content-type", "application/octet-stream")
                    .body(bundle),
            )
            .await?;
        Ok(())
    }

    /// Approves a version for rollout (Admin+).
    pub async fn approve(&self, model: &str, version: u64) -> OpResult<()> {
        let path = format!("/v1/models/{model}/versions/{version}/approve");
        let _: serde_json::Value = self
            .send("approve version", self.http.post(self.url(&path)))
            .await?;
        Ok(())
    }

    /// Rolls a version out to a share of the whole org.
    pub async fn roll_out(
        &self,
        model: &str,
        version: u64,
        basis_points: u32,
    ) -> OpResult<RolloutInfo> {
        let body = serde_json::json!({
            "model": model, "version": version, "device_group": null, "basis_points": basis_points
        });
        self.send(
            "create rollout",
            self.http.post(self.url("/v1/rollouts")).json(&body),
        )
        .await
    }

    /// Raises a rollout's share.
    pub async fn promote(&self, rollout_id: &str, basis_points: u32) -> OpResult<RolloutInfo> {
        let path = format!("/v1/rollouts/{rollout_id}/promote");
        self.send(
            "promote rollout",
            self.http
                .post(self.url(&path))
                .json(&serde_json::json!({ "basis_points": basis_points })),
        )
        .await
    }

    /// A single-use, short-lived enrollment token for one device.
    pub async fn bootstrap_token(&self) -> OpResult<String> {
        let answer: BootstrapTokenResponse = self
            .send(
                "create bootstrap token",
                self.http
                    .post(self.url("/v1/bootstrap-tokens"))
                    .json(&CreateBootstrapTokenRequest::default()),
            )
            .await?;
        Ok(answer.token)
    }

    /// Revokes a device's credentials, effective at its next call.
    pub async fn revoke(&self, device_id: &str) -> OpResult<()> {
        let path = format!("/v1/devices/{device_id}/revoke");
        let _: serde_json::Value = self
            .send("revoke device", self.http.post(self.url(&path)))
            .await?;
        Ok(())
    }

    /// One device's record.
    pub async fn device(&self, device_id: &str) -> OpResult<DeviceInfo> {
        let path = format!("/v1/devices/{device_id}");
        self.send("get device", self.http.get(self.url(&path)))
            .await
    }

    /// The fleet health summary.
    pub async fn fleet_health(&self) -> OpResult<FleetHealth> {
        self.send("fleet health", self.http.get(self.url("/v1/fleet/health")))
            .await
    }
}
