//! Shared helpers: a real server on loopback over HTTPS, API and device clients.
#![allow(dead_code)]

use edgekeep_protocol::api::{
    BootstrapTokenResponse, CreateBootstrapTokenRequest, EnrollRequest, EnrollResponse,
};
use edgekeep_protocol::key_agreement::{EphemeralAgreement, WrappingKey};
use edgekeep_protocol::proof::{self, ProofSigner, SoftwareDeviceKey};
use edgekeep_protocol::{ErrorBody, ErrorCode};
use edgekeep_server::storage::postgres::cluster::TestCluster;
use edgekeep_server::{Database, RunningServer, Server, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct TestServer {
    pub server: RunningServer,
    pub client: reqwest::Client,
    pub base: String,
    pub org_id: String,
    pub owner_key: String,
    pub owner_invitation: String,
    /// The origin browsers of this server's pages report (its public URL, or its address).
    pub origin: String,
    pub data: tempfile::TempDir,
    /// Where the server keeps its records.
    pub database: Database,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The records a test server keeps: the embedded default, or, with
/// `EDGEKEEP_TEST_BACKEND=postgres` (`scripts/test` runs the server suites a second time so), a
/// fresh database on the test process's PostgreSQL cluster.
pub fn test_database() -> Database {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if std::env::var("EDGEKEEP_TEST_BACKEND").as_deref() != Ok("postgres") {
        return Database::Embedded;
    }
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let cluster = TestCluster::for_process()
        .expect("EDGEKEEP_TEST_BACKEND=postgres needs PostgreSQL: run scripts/test-deps");
    let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    Database::Postgres(cluster.fresh_database(&name).unwrap())
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(data.path(), "127.0.0.1:0".parse().unwrap());
        // Blocking work (PostgreSQL's client blocks on a runtime of its own).
        config.database = tokio::task::spawn_blocking(test_database).await.unwrap();
        adjust(&mut config);
        let (path, database) = (data.path().to_owned(), config.database.clone());
        let created = tokio::task::spawn_blocking(move || {
            edgekeep_server::init_with(&path, &database, "Org A").unwrap()
        })
        .await
        .unwrap();
        let database = config.database.clone();
        let public_origin = config.public_url.clone();
        let server = Server::start(config).await.unwrap();
        let ca = reqwest::Certificate::from_pem(server.ca_cert_pem().unwrap().as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(ca)
            .build()
            .unwrap();
        let base = server.base_url();
        let origin = public_origin.unwrap_or_else(|| base.clone());
        Self {
            server,
            client,
            base,
            org_id: created.org_id,
            owner_key: created.owner_api_key,
            owner_invitation: created.owner_invitation,
            origin,
            data,
            database,
        }
    }

    /// Runs `body` on the server's storage from a blocking thread, as the server does (the
    /// PostgreSQL client must not block inside an async task).
    pub async fn stored<T: Send + 'static>(
        &self,
        body: impl FnOnce(&dyn edgekeep_server::storage::Storage) -> T + Send + 'static,
    ) -> T {
        let storage = self.server.storage();
        tokio::task::spawn_blocking(move || body(storage.as_ref()))
            .await
            .unwrap()
    }

    /// Marks a person deactivated behind the server's back, in its database (as a directory
    /// sync or an operator would).
    pub async fn deactivate_user(&self, user_id: &str, at: i64) {
        let sql = "UPDATE users SET deactivated_at = $1 WHERE id = $2";
        let (database, path, user_id) = (
            self.database.clone(),
            self.data.path().join("edgekeep.db"),
            user_id.to_owned(),
        );
        tokio::task::spawn_blocking(move || match database {
            Database::Embedded => {
                let db = rusqlite::Connection::open(path).unwrap();
                db.execute(sql, rusqlite::params![at, user_id]).unwrap();
            }
            Database::Postgres(url) => {
                let mut db = edgekeep_server::storage::postgres::schema::connect(&url).unwrap();
                db.execute(sql, &[&at, &user_id]).unwrap();
            }
        })
        .await
        .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Calls the API with an API key; returns status and parsed body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn bootstrap(&self, key: &str, group: Option<&str>) -> String {
        let body = CreateBootstrapTokenRequest {
            device_group: group.map(str::to_owned),
            ttl_seconds: None,
        };
        let (status, value) = self
            .call(
                Method::POST,
                "/v1/bootstrap-tokens",
                key,
                Some(serde_json::to_value(body).unwrap()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
        serde_json::from_value::<BootstrapTokenResponse>(value)
            .unwrap()
            .token
    }

    /// Sends an enrollment with a correct proof; returns the raw response.
    pub async fn enroll_raw(
        &self,
        org_id: &str,
        bootstrap: &str,
        key: &SoftwareDeviceKey,
        agreement: &EphemeralAgreement,
    ) -> reqwest::Response {
        let url = self.url("/v1/device/enroll");
        let proof = proof::build_proof(key, "POST", &url, bootstrap, now()).unwrap();
        let body = EnrollRequest::new(org_id, bootstrap, &key.public_key(), agreement.public_key());
        self.client
            .post(url)
            .header(proof::PROOF_HEADER, proof)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn enroll(&self, org_id: &str, bootstrap: &str) -> Device {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let agreement = EphemeralAgreement::generate().unwrap();
        let response = self.enroll_raw(org_id, bootstrap, &key, &agreement).await;
        assert_eq!(response.status(), StatusCode::OK);
        let enrolled: EnrollResponse = response.json().await.unwrap();
        let server_public =
            edgekeep_protocol::b64_decode(&enrolled.server_agreement_public_key).unwrap();
        let kwk = agreement
            .derive(&server_public, &enrolled.org_id, &enrolled.device_id)
            .unwrap();
        Device {
            key,
            id: enrolled.device_id,
            org_id: enrolled.org_id,
            access: enrolled.credentials.access_token,
            refresh: enrolled.credentials.refresh_token,
            kwk,
        }
    }

    /// A device GET with a correct, fresh proof.
    pub async fn device_get(&self, device: &Device, path: &str) -> reqwest::Response {
        let url = self.url(path);
        let proof = proof::build_proof(&device.key, "GET", &url, &device.access, now()).unwrap();
        self.device_request(Method::GET, path, &device.access, Some(&proof))
            .await
    }

    /// A device request with an explicit token and proof.
    pub async fn device_request(
        &self,
        method: Method,
        path: &str,
        token: &str,
        proof: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("authorization", proof::authorization_value(token));
        if let Some(proof) = proof {
            request = request.header(proof::PROOF_HEADER, proof);
        }
        request.send().await.unwrap()
    }

    /// Refreshes with a correct proof; returns the raw response.
    pub async fn refresh_raw(&self, device: &Device, refresh_token: &str) -> reqwest::Response {
        let url = self.url("/v1/device/refresh");
        let proof = proof::build_proof(&device.key, "POST", &url, refresh_token, now()).unwrap();
        self.client
            .post(url)
            .header(proof::PROOF_HEADER, proof)
            .json(&serde_json::json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .unwrap()
    }

    /// Every audit entry of the org the key belongs to.
    pub async fn audit(&self, key: &str) -> Vec<edgekeep_protocol::api::AuditEntry> {
        let response = self
            .client
            .get(self.url("/v1/audit"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response
            .text()
            .await
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

pub struct Device {
    pub key: SoftwareDeviceKey,
    pub id: String,
    pub org_id: String,
    pub access: String,
    pub refresh: String,
    pub kwk: WrappingKey,
}

/// Asserts a response is the given error code with its status; returns its message.
pub async fn assert_error(response: reqwest::Response, code: ErrorCode) -> String {
    let status = response.status();
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(
        body.code, code,
        "expected {code}, got {} ({status}): {}",
        body.code, body.message
    );
    assert_eq!(status.as_u16(), code.http_status());
    body.message
}

/// The `Location` header of a redirect.
pub fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
}

impl TestServer {
    /// A browser: trusts the server (and the PEM roots in `extra_roots`), keeps cookies,
    /// follows no redirect by itself.
    pub fn browser(&self, extra_roots: &[&[u8]]) -> reqwest::Client {
        let ca = self.server.ca_cert_pem().unwrap();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none());
        for root in extra_roots {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(root).unwrap());
        }
        builder.build().unwrap()
    }
}

// ---- model registry, rollouts, delivery and telemetry helpers (issue 5) ----

use edgekeep_protocol::artifact::{
    ArtifactSpec, BuiltArtifact, ModelFormat, SemVer, build_artifact,
};
use edgekeep_protocol::desired_state::{DesiredState, DesiredStateKeyInfo, SignedDesiredState};
use edgekeep_protocol::fleet::{ModelVersionInfo, RolloutInfo};
use edgekeep_protocol::signing::{SigningKey, VerifyingKey};

/// A fresh publisher key.
pub fn publisher_key() -> SigningKey {
    SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap()
}

/// The spec of a test model version valid for a day.
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

/// Builds an artifact of `model_bytes`.
pub fn build(key: &SigningKey, model: &str, version: u64, model_bytes: &[u8]) -> BuiltArtifact {
    build_artifact(
        model_bytes,
        &spec(model, version),
        key,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap()
}

impl TestServer {
    /// Registers a publisher key with an Owner key.
    pub async fn register_publisher(&self, owner_key: &str, key: &SigningKey) {
        let (status, value) = self
            .call(
                Method::POST,
                "/v1/publisher-keys",
                owner_key,
                Some(serde_json::json!({"name": "ci", "public_key": key.public_key().to_text()})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }

    /// Uploads raw bundle bytes.
    pub async fn upload(&self, api_key: &str, bundle: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/artifacts"))
            .bearer_auth(api_key)
            .header("content-type", "application/octet-stream")
            .body(bundle)
            .send()
            .await
            .unwrap()
    }

    /// Builds, uploads and approves a version; returns it.
    pub async fn publish(
        &self,
        api_key: &str,
        publisher: &SigningKey,
        model: &str,
        version: u64,
        model_bytes: &[u8],
    ) -> ModelVersionInfo {
        let built = build(publisher, model, version, model_bytes);
        let response = self.upload(api_key, built.to_bundle()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let (status, value) = self
            .call(
                Method::POST,
                &format!("/v1/models/{model}/versions/{version}/approve"),
                api_key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{value}");
        serde_json::from_value(value).unwrap()
    }

    /// Starts a rollout.
    pub async fn rollout(
        &self,
        api_key: &str,
        model: &str,
        version: u64,
        group: Option<&str>,
        basis_points: u32,
    ) -> RolloutInfo {
        let (status, value) = self
            .call(
                Method::POST,
                "/v1/rollouts",
                api_key,
                Some(serde_json::json!({"model": model, "version": version,
                    "device_group": group, "basis_points": basis_points})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
        serde_json::from_value(value).unwrap()
    }

    /// Calls a rollout action (`promote`, `pause`, `resume`, `rollback`).
    pub async fn rollout_action(
        &self,
        api_key: &str,
        id: &str,
        action: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/v1/rollouts/{id}/{action}"),
            api_key,
            Some(body.unwrap_or(serde_json::json!({}))),
        )
        .await
    }

    /// The server's desired-state key.
    pub async fn desired_state_key(&self) -> VerifyingKey {
        let info: DesiredStateKeyInfo = self
            .client
            .get(self.url("/v1/desired-state-key"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        VerifyingKey::from_text(&info.public_key).unwrap()
    }

    /// Fetches and verifies a device's desired state.
    pub async fn desired_state(&self, device: &Device) -> DesiredState {
        let response = self.device_get(device, "/v1/device/desired-state").await;
        assert_eq!(response.status(), StatusCode::OK);
        let signed: SignedDesiredState = response.json().await.unwrap();
        let key = self.desired_state_key().await;
        signed.verify(&key, &device.id, now()).unwrap()
    }

    /// The version a device's desired state names for `model`.
    pub async fn desired_version(&self, device: &Device, model: &str) -> Option<u64> {
        self.desired_state(device)
            .await
            .slots
            .iter()
            .find(|s| s.model == model)
            .map(|s| s.version)
    }

    /// A device POST of raw bytes with a correct proof.
    pub async fn device_post(
        &self,
        device: &Device,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let url = self.url(path);
        let proof = proof::build_proof(&device.key, "POST", &url, &device.access, now()).unwrap();
        self.client
            .post(url)
            .header("authorization", proof::authorization_value(&device.access))
            .header(proof::PROOF_HEADER, proof)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A device GET with extra headers.
    pub async fn device_get_with(
        &self,
        device: &Device,
        path: &str,
        headers: &[(&str, String)],
    ) -> reqwest::Response {
        let url = self.url(path);
        let proof = proof::build_proof(&device.key, "GET", &url, &device.access, now()).unwrap();
        let mut request = self
            .client
            .get(url)
            .header("authorization", proof::authorization_value(&device.access))
            .header(proof::PROOF_HEADER, proof);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    /// Enrolls `count` devices (optionally in a group).
    pub async fn enroll_many(&self, count: usize, group: Option<&str>) -> Vec<Device> {
        let mut devices = Vec::with_capacity(count);
        for _ in 0..count {
            let token = self.bootstrap(&self.owner_key, group).await;
            devices.push(self.enroll(&self.org_id, &token).await);
        }
        devices
    }
}
pub mod authenticator;
pub mod oidc_provider;
pub mod people;
pub mod raw;
