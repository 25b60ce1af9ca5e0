//! A raw TLS client for tests that must control bytes and timing (slow bodies, idle
//! connections, requests cut short), which an HTTP client library hides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A TLS connector trusting the server's development CA, speaking HTTP/1.1.
pub fn connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Opens a TLS connection to `addr`.
pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await.unwrap()
}

/// The head of an HTTP/1.1 request with a declared body length: a JSON body, or an octet
/// stream for uploads.
pub fn request_head(method: &str, path: &str, bearer: Option<&str>, content_length: u64) -> String {
    let content_type = if path == "/v1/artifacts" {
        "application/octet-stream"
    } else {
        "application/json"
    };
    let auth = bearer
        .map(|key| format!("authorization: Bearer {key}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\n{auth}content-type: {content_type}\r\ncontent-length: {content_length}\r\n\r\n"
    )
}

/// Writes `bytes`.
pub async fn send<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

/// Reads until the peer closes or `within` passes; returns what was read and whether the
/// connection was closed.
pub async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response head (up to the blank line) within `within`; `None` if none arrived.
pub async fn read_head<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// Keeps a request body trickling: one byte every `every` until `total` bytes or the
/// connection breaks.
pub async fn trickle<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    total: u64,
    every: Duration,
) {
    for _ in 0..total {
        if stream.write_all(b"x").await.is_err() || stream.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}
