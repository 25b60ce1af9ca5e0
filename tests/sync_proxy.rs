//! A man-in-the-middle HTTPS proxy for the sync tests: it terminates TLS with its own
//! certificate (which the SDK under test trusts), records every request in plaintext and
//! every raw byte the client sent, forwards to the real control plane, and lets a test
//! rewrite, cut or slow the answer. Included with `#[path = "sync_proxy.rs"] mod proxy;`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

/// A request as the proxy received it, after TLS.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The upstream answer, which a hook may change.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this many body bytes.
    pub cut_after: Option<usize>,
    /// Send the body in pieces of this size with this pause between them.
    pub drip: Option<(usize, Duration)>,
}

pub type Hook = Arc<dyn Fn(&Captured, Answer) -> Answer + Send + Sync>;

pub struct Mitm {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub captured: Arc<Mutex<Vec<Captured>>>,
    /// Raw bytes the client wrote on the TCP connections (TLS records).
    pub raw_from_client: Arc<Mutex<Vec<u8>>>,
    /// Body bytes the proxy sent to the client.
    pub body_bytes_sent: Arc<AtomicU64>,
    hook: Arc<Mutex<Option<Hook>>>,
    upstream: Arc<Mutex<Option<String>>>,
}

impl Mitm {
    /// Binds and starts serving; call [`set_upstream`](Self::set_upstream) before use.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let ca_pem = cert.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let mitm = Self {
            addr,
            ca_pem,
            captured: Arc::default(),
            raw_from_client: Arc::default(),
            body_bytes_sent: Arc::default(),
            hook: Arc::default(),
            upstream: Arc::default(),
        };
        let state = Shared {
            captured: mitm.captured.clone(),
            body_bytes_sent: mitm.body_bytes_sent.clone(),
            hook: mitm.hook.clone(),
            upstream: mitm.upstream.clone(),
            client: Arc::new(Mutex::new(None)),
        };
        let raw = mitm.raw_from_client.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = state.clone();
                let raw = raw.clone();
                tokio::spawn(async move {
                    let tapped = Tap {
                        inner: tcp,
                        log: raw,
                    };
                    let Ok(tls) = acceptor.accept(tapped).await else {
                        return;
                    };
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        mitm
    }

    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Where to forward, with the CA of the real server.
    pub fn set_upstream(&self, base_url: &str, ca_pem: &str) {
        *self.upstream.lock().unwrap() = Some(format!("{base_url}|{ca_pem}"));
    }

    pub fn set_hook(&self, hook: impl Fn(&Captured, Answer) -> Answer + Send + Sync + 'static) {
        *self.hook.lock().unwrap() = Some(Arc::new(hook));
    }

    pub fn clear_hook(&self) {
        *self.hook.lock().unwrap() = None;
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Shared {
    captured: Arc<Mutex<Vec<Captured>>>,
    body_bytes_sent: Arc<AtomicU64>,
    hook: Arc<Mutex<Option<Hook>>>,
    upstream: Arc<Mutex<Option<String>>>,
    client: Arc<Mutex<Option<reqwest::Client>>>,
}

type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

impl Shared {
    fn client_and_base(&self) -> (reqwest::Client, String) {
        let upstream = self.upstream.lock().unwrap().clone().expect("upstream set");
        let (base, ca) = upstream.split_once('|').unwrap();
        let mut client = self.client.lock().unwrap();
        let client = client.get_or_insert_with(|| {
            reqwest::Client::builder()
                .use_rustls_tls()
                .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
                .build()
                .unwrap()
        });
        (client.clone(), base.to_owned())
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        let captured = Captured {
            method: method.as_str().to_owned(),
            path: path.clone(),
            headers: headers.clone(),
            body: body.clone(),
        };
        self.captured.lock().unwrap().push(captured.clone());

        let (client, base) = self.client_and_base();
        let mut forward = client.request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            format!("{base}{path}"),
        );
        for (name, value) in &headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                forward = forward.header(name, value);
            }
        }
        let answer = match forward.body(body).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "content-length" | "transfer-encoding" | "connection"
                        )
                    })
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let body = response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                Answer {
                    status,
                    headers,
                    body,
                    cut_after: None,
                    drip: None,
                }
            }
            Err(_) => Answer {
                status: 502,
                headers: vec![],
                body: vec![],
                cut_after: None,
                drip: None,
            },
        };
        let hook = self.hook.lock().unwrap().clone();
        let answer = match hook {
            Some(hook) => hook(&captured, answer),
            None => answer,
        };
        self.respond(answer)
    }

    fn respond(&self, answer: Answer) -> Response<ProxyBody> {
        let mut builder = Response::builder().status(answer.status);
        for (name, value) in &answer.headers {
            builder = builder.header(name, value);
        }
        builder = builder.header("content-length", answer.body.len().to_string());
        let sent = self.body_bytes_sent.clone();
        let body: ProxyBody = match (answer.cut_after, answer.drip) {
            (None, None) => {
                sent.fetch_add(answer.body.len() as u64, Ordering::Relaxed);
                Full::new(Bytes::from(answer.body))
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }
            (cut, drip) => {
                let keep = cut.unwrap_or(answer.body.len()).min(answer.body.len());
                let piece = drip.map_or(16 << 10, |(n, _)| n.max(1));
                let pause = drip.map(|(_, d)| d);
                let mut chunks: Vec<Result<Frame<Bytes>, std::io::Error>> = answer.body[..keep]
                    .chunks(piece)
                    .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                    .collect();
                sent.fetch_add(keep as u64, Ordering::Relaxed);
                if cut.is_some() {
                    chunks.push(Err(std::io::Error::other("cut")));
                }
                let s = stream::unfold((chunks.into_iter(), pause), |(mut it, pause)| async move {
                    let next = it.next()?;
                    if let Some(pause) = pause {
                        tokio::time::sleep(pause).await;
                    }
                    Some((next, (it, pause)))
                });
                StreamBody::new(s).boxed_unsync()
            }
        };
        builder.body(body).unwrap()
    }
}

/// A TCP stream that copies what the client writes.
struct Tap<S> {
    inner: S,
    log: Arc<Mutex<Vec<u8>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let fresh = buf.filled()[before..].to_vec();
        self.log.lock().unwrap().extend_from_slice(&fresh);
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
