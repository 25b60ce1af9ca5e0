//! A normal client's request rate while an attacker holds 2,000 idle TLS connections and 50
//! slow-body requests open (issue 12, finding 3). The server runs with the connection cap it
//! would pick under a 1,024-file limit (768); the attacker reconnects whatever is closed.
//!
//! `cargo bench -p edgekeep-server --bench connection_flood`: compare the medians of `quiet`
//! and `under_flood` (time per request; the ratio quiet/under_flood is the throughput kept).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::AsyncWriteExt as _;
use tokio::runtime::Runtime;

const IDLE_CONNECTIONS: usize = 2_000;
const SLOW_BODIES: usize = 50;
const CAP_UNDER_1024_FILES: usize = 768;

struct Target {
    _data: tempfile::TempDir,
    _server: edgekeep_server::RunningServer,
    addr: SocketAddr,
    ca_pem: String,
    owner_key: String,
}

fn start_server(runtime: &Runtime) -> Target {
    let data = tempfile::tempdir().unwrap();
    let created = edgekeep_server::init(data.path(), "Bench org").unwrap();
    let mut config =
        edgekeep_server::ServerConfig::new(data.path(), "127.0.0.1:0".parse().unwrap());
    config.connections.max_connections = Some(CAP_UNDER_1024_FILES);
    let server = runtime
        .block_on(edgekeep_server::Server::start(config))
        .unwrap();
    Target {
        addr: server.addr(),
        ca_pem: server.ca_cert_pem().unwrap().to_owned(),
        owner_key: created.owner_api_key,
        _server: server,
        _data: data,
    }
}

fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Holds one attacker connection open (idle, or trickling a body one byte a second), and
/// opens another whenever the server closes it.
async fn hold(connector: tokio_rustls::TlsConnector, addr: SocketAddr, slow_body: bool) {
    loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            if let Ok(mut tls) = connector.connect(name, tcp).await {
                if slow_body {
                    let head = "POST /v1/device/enroll HTTP/1.1\r\nhost: x\r\n\
                                content-type: application/json\r\ncontent-length: 60000\r\n\r\n";
                    let _ = tls.write_all(head.as_bytes()).await;
                    while tls.write_all(b" ").await.is_ok() && tls.flush().await.is_ok() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                } else {
                    let mut buf = [0u8; 64];
                    let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn normal_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// Failed requests of the normal client (each is retried: only answered requests count).
static FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn requests(
    runtime: &Runtime,
    client: &reqwest::Client,
    url: &str,
    key: &str,
    iters: u64,
) -> Duration {
    runtime.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            loop {
                match client.get(url).bearer_auth(key).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        break;
                    }
                    _ => {
                        FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
        started.elapsed()
    })
}

fn connection_flood(c: &mut Criterion) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target = start_server(&server_runtime);
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = normal_client(&target.ca_pem);
    let url = format!("https://{}/v1/org", target.addr);

    let mut group = c.benchmark_group("normal_client");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("quiet", |b| {
        b.iter_custom(|iters| requests(&client_runtime, &client, &url, &target.owner_key, iters))
    });

    let attacker = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let connector = tls_connector(&target.ca_pem);
    for i in 0..IDLE_CONNECTIONS + SLOW_BODIES {
        attacker.spawn(hold(connector.clone(), target.addr, i >= IDLE_CONNECTIONS));
    }
    std::thread::sleep(Duration::from_secs(5));
    group.bench_function("under_flood", |b| {
        b.iter_custom(|iters| requests(&client_runtime, &client, &url, &target.owner_key, iters))
    });
    group.finish();
    eprintln!(
        "listener: {:?}; normal client failures: {}",
        target._server.connection_stats(),
        FAILURES.load(std::sync::atomic::Ordering::Relaxed)
    );
    attacker.shutdown_background();
}

criterion_group!(benches, connection_flood);
criterion_main!(benches);
