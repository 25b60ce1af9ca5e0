//! Shared helpers for the sync tests: a real control plane on loopback over HTTPS, an
//! operator client, stores, and a request recorder. Included by the `sync_*` tests with
//! `#[path = "sync_harness.rs"] mod harness;`.
#![allow(dead_code)]

#[path = "sync_proxy.rs"]
pub mod proxy;

use std::sync::{Arc, Mutex};

use edgekeep::store::{RawKeyProvider, Store};
use edgekeep::sync::{OutgoingRequest, RequestObserver, SyncClient, SyncClientBuilder};
use edgekeep_protocol::api::{BootstrapTokenResponse, CreateBootstrapTokenRequest};
use edgekeep_protocol::artifact::{
    ArtifactSpec, BuiltArtifact, ModelFormat, SemVer, build_artifact,
};
use edgekeep_protocol::fleet::RolloutInfo;
use edgekeep_protocol::signing::SigningKey;
use edgekeep_server::{RunningServer, Server, ServerConfig};
use ring::rand::SystemRandom;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn publisher_key() -> SigningKey {
    SigningKey::generate(&SystemRandom::new()).unwrap()
}

pub fn spec(model: &str, version: u64) -> ArtifactSpec {
    ArtifactSpec {
        model: model.to_owned(),
        version,
        format: ModelFormat::Onnx,
        min_sdk_version: SemVer::new(0, 1, 0),
        tract_version: SemVer::new(0, 23, 9),
        opset: 17,
        created_at: now() - 10,
        expires_at: now() + 86_400,
    }
}

/// A real ONNX model from `models/`.
pub fn model_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/models/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub struct Harness {
    pub server: RunningServer,
    pub http: reqwest::Client,
    pub org_id: String,
    pub owner_key: String,
    pub ca_pem: String,
    pub data: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let created = edgekeep_server::init(data.path(), "Org A").unwrap();
        let mut config = ServerConfig::new(data.path(), "127.0.0.1:0".parse().unwrap());
        adjust(&mut config);
        let server = Server::start(config).await.unwrap();
        let ca_pem = server.ca_cert_pem().unwrap().to_owned();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        Self {
            server,
            http,
            org_id: created.org_id,
            owner_key: created.owner_api_key,
            ca_pem,
            data,
        }
    }

    /// A server whose device traffic goes through a man-in-the-middle proxy (the SDK talks
    /// to the proxy; proofs name the proxy's URL).
    pub async fn start_behind(proxy: &proxy::Mitm) -> Self {
        let public = proxy.base_url();
        let h = Self::start_with(|c| c.public_url = Some(public)).await;
        proxy.set_upstream(&h.server.base_url(), &h.ca_pem);
        h
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Registers a publisher key, publishes and approves `version` of `model`, and rolls it
    /// out to the whole org.
    pub async fn publish_and_roll_out(
        &self,
        publisher: &SigningKey,
        model: &str,
        version: u64,
        bytes: &[u8],
    ) {
        let built = build_artifact(
            bytes,
            &spec(model, version),
            publisher,
            &SystemRandom::new(),
        )
        .unwrap();
        self.upload_approve(&built, model, version).await;
        self.roll_out(model, version).await;
    }

    pub async fn register_publisher(&self, publisher: &SigningKey) {
        let response = self
            .owner_post("/v1/publisher-keys")
            .json(
                &serde_json::json!({"name": "ci", "public_key": publisher.public_key().to_text()}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }

    pub async fn upload_approve(&self, built: &BuiltArtifact, model: &str, version: u64) {
        let response = self
            .owner_post("/v1/artifacts")
            .header("content-type", "application/octet-stream")
            .body(built.to_bundle())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "{}",
            response.text().await.unwrap()
        );
        let response = self
            .owner_post(&format!("/v1/models/{model}/versions/{version}/approve"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }

    /// Rolls `version` out to the whole org; returns the rollout.
    pub async fn roll_out(&self, model: &str, version: u64) -> RolloutInfo {
        let response = self
            .owner_post("/v1/rollouts")
            .json(&serde_json::json!({"model": model, "version": version,
                "device_group": null, "basis_points": 10000}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        response.json().await.unwrap()
    }

    /// The operator rolls a rollout back.
    pub async fn roll_back(&self, rollout_id: &str) {
        let response = self
            .owner_post(&format!("/v1/rollouts/{rollout_id}/rollback"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.owner_get(path).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }

    pub async fn bootstrap(&self) -> String {
        let response = self
            .owner_post("/v1/bootstrap-tokens")
            .json(&CreateBootstrapTokenRequest::default())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        response
            .json::<BootstrapTokenResponse>()
            .await
            .unwrap()
            .token
    }

    pub async fn revoke(&self, device_id: &str) {
        let response = self
            .owner_post(&format!("/v1/devices/{device_id}/revoke"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// A POST to `path` with the Owner's API key.
    fn owner_post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base_url()))
            .bearer_auth(&self.owner_key)
    }

    /// A GET of `path` with the Owner's API key.
    fn owner_get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base_url()))
            .bearer_auth(&self.owner_key)
    }

    /// Builds the client and enrolls it with a fresh bootstrap token.
    pub async fn enroll(&self, builder: SyncClientBuilder) -> SyncClient {
        let client = builder.build().unwrap();
        client
            .enroll_async(&self.org_id, &self.bootstrap().await)
            .await
            .unwrap();
        client
    }

    /// A client builder trusting this server's CA, over a fresh store in `dir`.
    pub fn client_builder(&self, store: Arc<Store>) -> SyncClientBuilder {
        SyncClient::builder(&self.base_url())
            .store(store)
            .root_certificate_pem(self.ca_pem.as_bytes().to_vec())
    }
}

pub fn open_store(dir: &std::path::Path) -> Arc<Store> {
    let key = RawKeyProvider::new([7u8; 32]);
    Arc::new(
        Store::builder(dir.join("edgekeep.db"))
            .key_provider(Arc::new(key))
            .open()
            .unwrap(),
    )
}

/// Records every request the SDK sends, as built (plaintext, before TLS).
#[derive(Default)]
pub struct RequestLog(Mutex<Vec<OutgoingRequest>>);

impl RequestLog {
    pub fn requests(&self) -> Vec<OutgoingRequest> {
        self.0.lock().unwrap().clone()
    }

    pub fn count_path(&self, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.url.ends_with(path))
            .count()
    }
}

impl RequestObserver for RequestLog {
    fn on_request(&self, request: &OutgoingRequest) {
        self.0.lock().unwrap().push(request.clone());
    }
}
