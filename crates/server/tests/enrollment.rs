//! Enrollment end to end: credentials work, the key-wrapping key agrees on both sides and is
//! stored sealed, the OpenAPI document is served.

mod common;

use common::{TestServer, assert_error};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::DeviceInfo;
use edgekeep_server::data_dir::DataDir;
use edgekeep_server::secret::{ServerSecret, kwk_context};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_device_authenticates_and_shares_a_wrapping_key() {
    let t = TestServer::start().await;
    let bootstrap = t.bootstrap(&t.owner_key, Some("beta")).await;
    let device = t.enroll(&t.org_id, &bootstrap).await;

    let response = t.device_get(&device, "/v1/device/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let me: DeviceInfo = response.json().await.unwrap();
    assert_eq!(me.id, device.id);
    assert_eq!(me.device_group.as_deref(), Some("beta"));

    let (org, id) = (t.org_id.clone(), device.id.clone());
    let stored = t
        .stored(move |s| s.device(&org, &id))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored
            .sealed_kwk
            .windows(32)
            .any(|w| w == device.kwk.as_bytes())
    );
    let secret =
        ServerSecret::from_bytes(&std::fs::read(DataDir::new(t.data.path()).secret()).unwrap())
            .unwrap();
    let opened = secret
        .open(&kwk_context(&t.org_id, &device.id), &stored.sealed_kwk)
        .unwrap();
    assert_eq!(opened.as_slice(), device.kwk.as_bytes());

    let refreshed = t.refresh_raw(&device, &device.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed_json_and_openapi_is_served() {
    let t = TestServer::start().await;
    let response = t
        .client
        .get(t.url("/v1/no-such-thing"))
        .send()
        .await
        .unwrap();
    assert_error(response, ErrorCode::NotFound).await;
    let response = t
        .client
        .delete(t.url("/v1/org"))
        .bearer_auth(&t.owner_key)
        .send()
        .await
        .unwrap();
    assert_error(response, ErrorCode::MethodNotAllowed).await;
    let response = t.client.get(t.url("/v1/org")).send().await.unwrap();
    assert_error(response, ErrorCode::Unauthenticated).await;
    let response = t
        .client
        .post(t.url("/v1/bootstrap-tokens"))
        .bearer_auth(&t.owner_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(response, ErrorCode::BadRequest).await;

    let doc: serde_json::Value = t
        .client
        .get(t.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/device/enroll",
        "/v1/api-keys/{id}/rotate",
        "/v1/audit",
        "/v1/bootstrap-tokens",
    ] {
        assert!(paths.contains_key(path), "{path} missing from OpenAPI");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_an_operator_supplied_certificate() {
    let data = tempfile::tempdir().unwrap();
    let created = edgekeep_server::init(data.path(), "Org").unwrap();
    let certs = edgekeep_server::tls::generate_dev_certificates().unwrap();
    let pki = tempfile::tempdir().unwrap();
    std::fs::write(pki.path().join("chain.pem"), &certs.cert_pem).unwrap();
    std::fs::write(pki.path().join("key.pem"), &certs.key_pem).unwrap();
    let mut config =
        edgekeep_server::ServerConfig::new(data.path(), "127.0.0.1:0".parse().unwrap());
    config.tls_cert = Some(pki.path().join("chain.pem"));
    config.tls_key = Some(pki.path().join("key.pem"));
    let server = edgekeep_server::Server::start(config).await.unwrap();
    assert!(server.ca_cert_pem().is_none());

    let trusting = |pem: &str| {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    };
    let url = format!("{}/v1/org", server.base_url());
    let ok = trusting(&certs.ca_pem)
        .get(&url)
        .bearer_auth(&created.owner_api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // The init CA does not vouch for the operator's certificate: TLS fails, nothing is served.
    let init_ca = std::fs::read_to_string(DataDir::new(data.path()).ca_cert()).unwrap();
    assert!(trusting(&init_ca).get(&url).send().await.is_err());
    server.shutdown().await;
}
