//! Upload buffering (issue 12, finding 4): uploads stream to a temporary file, are refused
//! early on `Content-Length`, one org's uploads are bounded without blocking another org's,
//! and nothing is left behind.

mod common;

use std::time::Duration;

use common::raw::{connect, connector, read_head, request_head, send};
use common::{TestServer, build, publisher_key};
use reqwest::StatusCode;

fn incoming_files(server: &TestServer) -> usize {
    std::fs::read_dir(server.data.path().join("artifacts").join(".incoming"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_upload_declared_over_the_limit_is_refused_before_its_body() {
    let server = TestServer::start_with(|c| c.max_artifact_bytes = 1 << 20).await;
    let mut stream = connect(
        &connector(server.server.ca_cert_pem().unwrap()),
        server.server.addr(),
    )
    .await;
    let head = request_head("POST", "/v1/artifacts", Some(&server.owner_key), 100 << 20);
    send(&mut stream, head.as_bytes()).await;
    let answer = read_head(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server waits for a body it will refuse");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn an_upload_larger_than_declared_limits_is_cut_off_while_streaming() {
    let server = TestServer::start_with(|c| c.max_artifact_bytes = 64 * 1024).await;
    let body = chunked(vec![0u8; 512 * 1024]);
    let response = server
        .client
        .post(server.url("/v1/artifacts"))
        .bearer_auth(&server.owner_key)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = server
        .audit(&server.owner_key)
        .await
        .into_iter()
        .any(|entry| {
            entry.action == "model_version.upload.rejected" && entry.outcome == "payload_too_large"
        });
    assert!(
        refused,
        "the stream is cut off at the limit, not read to its end"
    );
    assert_eq!(
        incoming_files(&server),
        0,
        "a refused upload leaves no file"
    );
}

/// A body without `Content-Length` (chunked), so only the streaming bound can refuse it.
fn chunked(bytes: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn an_org_holds_at_most_two_uploads_and_another_org_is_unaffected() {
    let server = TestServer::start().await;
    let publisher = publisher_key();
    server
        .register_publisher(&server.owner_key, &publisher)
        .await;
    let bundle = build(&publisher, "kws", 1, b"model bytes").to_bundle();
    let connector = connector(server.server.ca_cert_pem().unwrap());

    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&connector, server.server.addr()).await;
        let head = request_head(
            "POST",
            "/v1/artifacts",
            Some(&server.owner_key),
            bundle.len() as u64,
        );
        send(&mut stream, head.as_bytes()).await;
        send(&mut stream, &bundle[..10]).await;
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = server.upload(&server.owner_key, bundle.clone()).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);

    let other = server.server.create_org("Org B").await.unwrap();
    let other_publisher = publisher_key();
    server
        .register_publisher(&other.owner_api_key, &other_publisher)
        .await;
    let theirs = build(&other_publisher, "kws", 1, b"their model").to_bundle();
    let response = server.upload(&other.owner_api_key, theirs).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "another org's upload waits on ours"
    );

    drop(slow);
    let mut status = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..50 {
        status = server
            .upload(&server.owner_key, bundle.clone())
            .await
            .status();
        if status != StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        StatusCode::CREATED,
        "slots come back when uploads end"
    );
    assert_eq!(
        incoming_files(&server),
        0,
        "abandoned uploads leave no file"
    );
}

#[tokio::test]
async fn accepted_and_rejected_uploads_leave_no_temporary_file() {
    let server = TestServer::start().await;
    let publisher = publisher_key();
    server
        .register_publisher(&server.owner_key, &publisher)
        .await;
    let mut bundle = build(&publisher, "kws", 1, &vec![3u8; 300_000]).to_bundle();
    let response = server.upload(&server.owner_key, bundle.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let last = bundle.len() - 1;
    bundle[last] ^= 1;
    let response = server.upload(&server.owner_key, bundle).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(incoming_files(&server), 0);
}
