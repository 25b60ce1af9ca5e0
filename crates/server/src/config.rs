//! Server configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Limits on enrollment and on authentication failures, as token buckets refilled per minute
/// (the burst equals the per-minute figure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Successful enrollments per org per minute (refused attempts never spend it).
    pub enrollments_per_org: u32,
    /// Failed authentications per org per minute.
    pub auth_failures_per_org: u32,
    /// Failed authentications per source address per minute. Only failing attempts are
    /// counted and refused: valid credentials from the same address keep working.
    pub auth_failures_per_address: u32,
    /// Failed authentications per known credential (API key, device, bootstrap token) per
    /// minute.
    pub auth_failures_per_credential: u32,
    /// Latency and quality samples one device may report per hour (burst the same).
    pub telemetry_samples_per_device_hour: u64,
    /// Sign-in starts (passkey and invitation ceremonies, OIDC and SAML redirects) per source
    /// address per minute: each one stores a ceremony, and an OIDC start may ask the provider.
    pub sign_in_starts_per_address: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enrollments_per_org: 600,
            auth_failures_per_org: 300,
            auth_failures_per_address: 60,
            auth_failures_per_credential: 30,
            telemetry_samples_per_device_hour: 1 << 22,
            sign_in_starts_per_address: 60,
        }
    }
}

/// Limits on connections and request bodies: what one client may hold open and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most (TLS handshakes included). When full, the connection idle the
    /// longest is closed to admit a new one; when none is idle, the new one is refused. `None`:
    /// three quarters of the process's file limit, at most 4,096.
    pub max_connections: Option<usize>,
    /// How long a client may take to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// How long a client may take to send a whole JSON request body.
    pub body_timeout: Duration,
    /// Slowest accepted artifact upload, bytes per second: an upload of `n` bytes may take
    /// `body_timeout + n / min_upload_rate` seconds.
    pub min_upload_rate: u64,
    /// Largest JSON request body, bytes (refused early on `Content-Length`).
    pub max_json_body: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams_per_connection: u32,
    /// Uploads one org may have in progress at once.
    pub uploads_per_org: usize,
    /// Uploads checked (decrypted and hashed, one ciphertext in memory each) at once.
    pub concurrent_upload_checks: usize,
    /// How long shutdown waits for open requests before closing their connections.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: None,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            min_upload_rate: 256 * 1024,
            max_json_body: 64 * 1024,
            max_streams_per_connection: 32,
            uploads_per_org: 2,
            concurrent_upload_checks: 2,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ConnectionLimits {
    /// The connection cap in force: the configured one, or three quarters of the file limit
    /// (at most 4,096, at least 16).
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let files = rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024);
            usize::try_from(files / 4 * 3)
                .unwrap_or(4096)
                .clamp(16, 4096)
        })
    }
}

/// Where the control plane keeps its records.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Database {
    /// The data folder's SQLite file: one instance, no set-up.
    #[default]
    Embedded,
    /// A PostgreSQL database (`postgres://user:password@host:port/name`), which several
    /// instances may share.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded => f.write_str("Embedded"),
            // The URL may carry the password.
            Self::Postgres(_) => f.write_str("Postgres(<url>)"),
        }
    }
}

impl std::str::FromStr for Database {
    type Err = &'static str;

    /// `postgres://…` or `postgresql://…`; `sqlite` (or an empty value) for the embedded
    /// default.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() || text == "sqlite" {
            Ok(Self::Embedded)
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Self::Postgres(text.to_owned()))
        } else {
            Err("the database is `sqlite` or a postgres:// URL")
        }
    }
}

/// How to run a server. Build with [`ServerConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data folder prepared by [`crate::init`].
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Certificate chain PEM; `<data>/tls/cert.pem` when absent.
    pub tls_cert: Option<PathBuf>,
    /// Private key PEM; `<data>/tls/key.pem` when absent.
    pub tls_key: Option<PathBuf>,
    /// Public base URL (`https://api.example.com`) that device proofs must name; when absent
    /// the request's own authority is used.
    pub public_url: Option<String>,
    /// Lifetime of device access tokens, seconds.
    pub access_token_ttl_secs: i64,
    /// Lifetime of device refresh tokens, seconds.
    pub refresh_token_ttl_secs: i64,
    /// Allowed clock difference for proofs, seconds.
    pub proof_freshness_secs: i64,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Where the records are kept.
    pub database: Database,
    /// Number of read-only SQLite connections.
    pub sqlite_readers: usize,
    /// Most pooled connections to PostgreSQL.
    pub postgres_connections: u32,
    /// Largest artifact ciphertext accepted on upload, bytes.
    pub max_artifact_bytes: u64,
    /// Lifetime of a signed desired state, seconds (short: freshness).
    pub desired_state_ttl_secs: i64,
    /// How long telemetry and health history are kept, seconds.
    pub telemetry_retention_secs: i64,
    /// A device seen within this many seconds counts as online.
    pub online_window_secs: i64,
    /// How far above its acknowledged sequence a device's batch may be.
    pub telemetry_seq_window: u64,
    /// Peers whose `X-Forwarded-For` header names the client address for rate limits (load
    /// balancers, reverse proxies). Empty: the header is ignored and the peer address counts.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Connection, timeout and body limits.
    pub connections: ConnectionLimits,
    /// Session timeouts and the step-up window.
    pub sessions: crate::identity::session::SessionLimits,
    /// PEM files of extra root certificates trusted for orgs' identity providers (a private
    /// CA), besides the built-in web roots.
    pub idp_extra_roots: Vec<PathBuf>,
}

impl ServerConfig {
    /// Defaults: 15-minute access tokens, 30-day refresh tokens, ±60 s proof window, 256 MiB
    /// artifacts, 5-minute desired states, 30-day telemetry retention, 15-minute online window.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            tls_cert: None,
            tls_key: None,
            public_url: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            proof_freshness_secs: edgekeep_protocol::proof::DEFAULT_FRESHNESS_SECS,
            rate_limits: RateLimits::default(),
            database: Database::Embedded,
            sqlite_readers: 4,
            postgres_connections: 16,
            max_artifact_bytes: 256 * 1024 * 1024,
            desired_state_ttl_secs: 300,
            telemetry_retention_secs: 30 * 24 * 3600,
            online_window_secs: 15 * 60,
            telemetry_seq_window: 10_000,
            trusted_proxies: Vec::new(),
            connections: ConnectionLimits::default(),
            sessions: crate::identity::session::SessionLimits::default(),
            idp_extra_roots: Vec::new(),
        }
    }
}
