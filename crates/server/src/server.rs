//! The HTTPS listener: accepts TCP, completes TLS (rustls) and serves HTTP/1.1 or HTTP/2
//! (hyper) with the `/v1` router, tagging each connection's requests with the peer address.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

use crate::api::{AppState, router};
use crate::artifact_store::ArtifactStore;
use crate::auth::ClientAddr;
use crate::config::ServerConfig;
use crate::data_dir::{DataDir, OrgCreated, create_org_in};
use crate::error::ServerError;
use crate::storage::Storage;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a client may take to send a request's headers (slow-loris guard).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Entry point: starts a server.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the data folder, binds `config.listen` and serves until [`RunningServer::shutdown`]
    /// (or until the value is dropped). Must be called inside a tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let dir = DataDir::new(&config.data_dir);
        let storage: Arc<dyn Storage> = Arc::new(dir.open_storage(config.sqlite_readers)?);
        let secret = dir.load_secret()?;
        let cert = config.tls_cert.clone().unwrap_or_else(|| dir.cert());
        let key = config.tls_key.clone().unwrap_or_else(|| dir.key());
        let tls = crate::tls::load_server_config(&cert, &key)?;
        let ca_cert_pem = match config.tls_cert {
            None => std::fs::read_to_string(dir.ca_cert()).ok(),
            Some(_) => None,
        };

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(ServerError::io("binding the listen address"))?;
        let addr = listener
            .local_addr()
            .map_err(ServerError::io("reading the bound address"))?;
        let desired_state_key = dir.load_or_create_desired_state_key()?;
        let artifacts = ArtifactStore::open(dir.artifacts())?;
        let retention = config.telemetry_retention_secs;
        let state = AppState::new(
            Arc::clone(&storage),
            config,
            secret,
            desired_state_key,
            artifacts,
        );
        let app = router(state);
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(purge_loop(Arc::clone(&storage), retention, stop_rx.clone()));
        let task = tokio::spawn(accept_loop(listener, tls, app, stop_rx));
        tracing::info!(%addr, "edgekeep-server listening");
        Ok(RunningServer {
            addr,
            ca_cert_pem,
            storage,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// How often telemetry past its retention is deleted.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

async fn purge_loop(
    storage: Arc<dyn Storage>,
    retention_secs: i64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let storage = Arc::clone(&storage);
        let before = crate::now() - retention_secs;
        match tokio::task::spawn_blocking(move || storage.purge_telemetry(before)).await {
            Ok(Ok(rows)) => tracing::debug!(rows, "telemetry past retention deleted"),
            Ok(Err(err)) => tracing::warn!(error = %err, "telemetry purge failed"),
            Err(_) => tracing::warn!("telemetry purge task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PURGE_INTERVAL) => {}
            _ = stop.changed() => break,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ClientAddr(peer));
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A server running in this process.
pub struct RunningServer {
    addr: SocketAddr,
    ca_cert_pem: Option<String>,
    storage: Arc<dyn Storage>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>` (or the bound address), without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The development CA certificate (PEM) from `init`, to trust in clients; `None` when the
    /// operator supplied the certificate.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca_cert_pem.as_deref()
    }

    /// The storage the server uses (for operator actions and tests).
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.storage)
    }

    /// Creates another org with its first Owner (an operator action).
    pub async fn create_org(&self, name: &str) -> Result<OrgCreated, ServerError> {
        let storage = Arc::clone(&self.storage);
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || create_org_in(storage.as_ref(), &name))
            .await
            .map_err(|_| ServerError::InvalidArgument("operator task failed"))?
    }

    /// Stops accepting, lets open connections finish their requests, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (it only stops through [`RunningServer::shutdown`]).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
