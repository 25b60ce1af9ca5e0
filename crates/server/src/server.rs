//! Starting and stopping a server: opens the data folder and storage, loads keys and TLS, binds
//! the address and runs the listener ([`crate::net`]) and the telemetry purge.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::config::ServerConfig;
use crate::data_dir::{DataDir, OrgCreated, create_org_in};
use crate::error::ServerError;
use crate::net::{ConnectionStats, ConnectionTracker};
use crate::storage::Storage;

/// Entry point: starts a server.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the data folder, binds `config.listen` and serves until [`RunningServer::shutdown`]
    /// (or until the value is dropped). Must be called inside a tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let dir = DataDir::new(&config.data_dir);
        let connections = match config.database {
            crate::config::Database::Embedded => config.sqlite_readers,
            crate::config::Database::Postgres(_) => config.postgres_connections as usize,
        };
        let crate::data_dir::Records {
            storage,
            counters,
            artifacts,
        } = {
            let (dir, database) = (dir.clone(), config.database.clone());
            // Opening connects and migrates: blocking work.
            tokio::task::spawn_blocking(move || dir.open_records(&database, connections))
                .await
                .map_err(|_| ServerError::InvalidArgument("opening the database failed"))??
        };
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
        let retention = config.telemetry_retention_secs;
        let online_window = config.online_window_secs;
        let limits = config.connections;
        let tracker = Arc::new(ConnectionTracker::new(limits.connection_cap()));
        let idp_http = crate::identity::oidc::IdpHttp::new(&config.idp_extra_roots)?;
        let state = AppState::new(
            Arc::clone(&storage),
            counters.clone(),
            config,
            secret,
            desired_state_key,
            artifacts,
            idp_http,
        );
        let app = router(state);
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(housekeeping(
            Arc::clone(&storage),
            counters,
            retention,
            online_window,
            stop_rx.clone(),
        ));
        let task = tokio::spawn(crate::net::accept_loop(
            listener,
            tls,
            app,
            limits,
            Arc::clone(&tracker),
            stop_rx,
        ));
        tracing::info!(%addr, "edgekeep-server listening");
        Ok(RunningServer {
            addr,
            ca_cert_pem,
            storage,
            tracker,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// How often the housekeeping runs: telemetry past its retention is deleted and every org's
/// device counts are recorded ([`crate::fleet_history`]).
const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

async fn housekeeping(
    storage: Arc<dyn Storage>,
    counters: crate::counters::Counters,
    retention_secs: i64,
    online_window: i64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (storage, counters) = (Arc::clone(&storage), counters.clone());
        let now = crate::now();
        let work = move || {
            let rows = storage.purge_telemetry(now - retention_secs)? + counters.prune(now)?;
            let orgs =
                crate::fleet_history::record_snapshots(storage.as_ref(), online_window, now)?;
            Ok::<_, crate::storage::StorageError>((rows, orgs))
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(Ok((rows, orgs))) => {
                tracing::debug!(rows, orgs, "telemetry purged, fleet counts recorded");
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "housekeeping failed"),
            Err(_) => tracing::warn!("housekeeping task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
            _ = stop.changed() => break,
        }
    }
}

/// A server running in this process.
pub struct RunningServer {
    addr: SocketAddr,
    ca_cert_pem: Option<String>,
    storage: Arc<dyn Storage>,
    tracker: Arc<ConnectionTracker>,
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

    /// What the listener has done so far: open, accepted, refused, evicted and idle-closed
    /// connections.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.tracker.stats()
    }

    /// Creates another org with its first Owner (an operator action).
    pub async fn create_org(&self, name: &str) -> Result<OrgCreated, ServerError> {
        let storage = Arc::clone(&self.storage);
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || create_org_in(storage.as_ref(), &name))
            .await
            .map_err(|_| ServerError::InvalidArgument("operator task failed"))?
    }

    /// Stops accepting, lets open requests finish within the shutdown grace
    /// ([`crate::ConnectionLimits::shutdown_grace`]), closes what remains, and returns.
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
