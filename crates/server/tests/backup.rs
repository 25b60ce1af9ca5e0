//! An online backup of a serving control plane is a data folder the server can serve from,
//! with every org, member key, model version, artifact and audit entry intact.

mod common;

use common::{TestServer, publisher_key};
use edgekeep_server::backup::backup;
use edgekeep_server::{Server, ServerConfig};
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_serves_the_same_fleet() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    let published = server
        .publish(&owner, &publisher, "kws", 1, b"model one")
        .await;
    let device = server
        .enroll(&server.org_id, &server.bootstrap(&owner, None).await)
        .await;

    let out = tempfile::tempdir().unwrap();
    let copy = out.path().join("backup");
    let report = backup(server.data.path(), &copy).unwrap();
    assert_eq!(report.artifacts, 1);
    assert!(report.database_bytes > 0);
    assert!(
        backup(server.data.path(), &copy).is_err(),
        "an existing folder is never overwritten"
    );

    let restored = Server::start(ServerConfig::new(&copy, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(restored.ca_cert_pem().unwrap().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let get = |path: &str| {
        client
            .request(Method::GET, format!("{}{path}", restored.base_url()))
            .bearer_auth(&owner)
            .send()
    };
    let models: serde_json::Value = get("/v1/models").await.unwrap().json().await.unwrap();
    assert_eq!(
        models[0]["artifact_id"].as_str(),
        Some(published.artifact_id.as_str()),
        "{models}"
    );
    let devices: serde_json::Value = get("/v1/devices").await.unwrap().json().await.unwrap();
    assert!(devices.to_string().contains(&device.id), "{devices}");
    let verified: serde_json::Value = get("/v1/audit/verify").await.unwrap().json().await.unwrap();
    assert_eq!(verified["intact"], true, "{verified}");
    let artifact = std::fs::read(copy.join("artifacts").join(&published.artifact_id)).unwrap();
    let original = std::fs::read(
        server
            .data
            .path()
            .join("artifacts")
            .join(&published.artifact_id),
    )
    .unwrap();
    assert_eq!(artifact, original);
    restored.shutdown().await;
}
