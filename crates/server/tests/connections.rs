//! Connection exhaustion (issue 12, finding 3): idle, half-open and slow clients cannot hold
//! the server's connections, a full server makes room or refuses cleanly, and shutdown is
//! bounded.

mod common;

use std::time::Duration;

use common::TestServer;
use common::raw::{self, connect, connector, read_head, read_until_closed, request_head, send};
use edgekeep_protocol::ErrorCode;
use reqwest::{Method, StatusCode};

async fn server_with(adjust: impl FnOnce(&mut edgekeep_server::ConnectionLimits)) -> TestServer {
    TestServer::start_with(|config| adjust(&mut config.connections)).await
}

fn tls(server: &TestServer) -> tokio_rustls::TlsConnector {
    connector(server.server.ca_cert_pem().unwrap())
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_a_request_and_before_any() {
    let server = server_with(|l| l.idle_timeout = Duration::from_secs(1)).await;
    let connector = tls(&server);
    let mut never_asked = connect(&connector, server.server.addr()).await;
    let mut asked_once = connect(&connector, server.server.addr()).await;
    send(
        &mut asked_once,
        b"GET /v1/health HTTP/1.1\r\nhost: localhost\r\n\r\n",
    )
    .await;
    let head = read_head(&mut asked_once, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    let (_, closed) = read_until_closed(&mut never_asked, Duration::from_secs(6)).await;
    assert!(closed, "a connection that never sent a request stays open");
    let (_, closed) = read_until_closed(&mut asked_once, Duration::from_secs(6)).await;
    assert!(
        closed,
        "a keep-alive connection with nothing in flight stays open"
    );
    assert!(server.server.connection_stats().idle_closed >= 2);
}

#[tokio::test]
async fn a_connection_that_never_completes_tls_is_closed() {
    let server = server_with(|l| l.handshake_timeout = Duration::from_secs(1)).await;
    let mut tcp = tokio::net::TcpStream::connect(server.server.addr())
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut tcp, Duration::from_secs(6)).await;
    assert!(closed);
}

#[tokio::test]
async fn a_slow_body_on_an_unauthenticated_route_is_answered_408_at_its_deadline() {
    let server = server_with(|l| l.body_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&tls(&server), server.server.addr()).await;
    send(
        &mut stream,
        request_head("POST", "/v1/device/enroll", None, 1000).as_bytes(),
    )
    .await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let trickling = tokio::spawn(async move {
        raw::trickle(&mut writer, 1000, Duration::from_millis(200)).await;
    });
    let head = read_head(&mut reader, Duration::from_secs(8)).await;
    trickling.abort();
    let head = head.expect("the server keeps waiting for a slow body");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}

#[tokio::test]
async fn a_body_declared_over_the_route_limit_is_refused_before_it_is_sent() {
    let server = TestServer::start().await;
    let mut stream = connect(&tls(&server), server.server.addr()).await;
    let head = request_head("POST", "/v1/rollouts", Some(&server.owner_key), 10_000_000);
    send(&mut stream, head.as_bytes()).await;
    let answer = read_head(&mut stream, Duration::from_secs(5))
        .await
        .expect("no answer before the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let big = serde_json::json!({ "model": "x".repeat(100 * 1024), "version": 1 });
    let (status, body) = server
        .call(Method::POST, "/v1/rollouts", &server.owner_key, Some(big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], ErrorCode::PayloadTooLarge.as_str());
}

#[tokio::test]
async fn at_the_cap_idle_connections_make_room_and_busy_ones_refuse_newcomers() {
    let server = server_with(|l| {
        l.max_connections = Some(4);
        l.body_timeout = Duration::from_secs(30);
    })
    .await;
    let connector = tls(&server);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(&connector, server.server.addr()).await);
    }
    let (status, _) = server
        .call(Method::GET, "/v1/org", &server.owner_key, None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a full server of idle connections admits a client"
    );
    assert!(server.server.connection_stats().evicted >= 1);
    drop(idle);

    let fresh = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(server.server.ca_cert_pem().unwrap().as_bytes())
                .unwrap(),
        )
        .build()
        .unwrap();
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&connector, server.server.addr()).await;
        send(
            &mut stream,
            request_head("POST", "/v1/device/enroll", None, 1000).as_bytes(),
        )
        .await;
        send(&mut stream, b"{").await;
        busy.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = fresh.get(server.url("/v1/health")).send().await;
    assert!(
        refused.is_err(),
        "every connection busy: a newcomer is refused"
    );
    assert!(server.server.connection_stats().refused >= 1);

    drop(busy);
    let mut answered = false;
    for _ in 0..50 {
        if fresh.get(server.url("/v1/health")).send().await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answered,
        "once busy connections end, the server admits again"
    );
}

#[tokio::test]
async fn shutdown_ends_within_its_grace_while_a_slow_client_holds_a_request() {
    let server = server_with(|l| {
        l.shutdown_grace = Duration::from_secs(1);
        l.body_timeout = Duration::from_secs(120);
    })
    .await;
    let mut stream = connect(&tls(&server), server.server.addr()).await;
    send(
        &mut stream,
        request_head("POST", "/v1/device/enroll", None, 1000).as_bytes(),
    )
    .await;
    send(&mut stream, b"{").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let TestServer { server, .. } = server;
    let stopped = tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown waits on a slow client");
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert!(closed);
}
