//! The edgekeep control plane: orgs, members, API keys, device enrollment and credentials, a
//! hash-chained audit trail, the model registry, rollouts, signed desired state, artifact
//! delivery, telemetry ingest and fleet health, served as a versioned JSON API over HTTPS.
//!
//! Start it in-process with [`Server::start`]; prepare a data folder with [`init`]. Files:
//!
//! - [`config`]: [`ServerConfig`], rate limits and connection limits.
//! - [`data_dir`]: the layout of the data folder, [`init`] and [`create_org`].
//! - [`server`]: starting and stopping, [`RunningServer`].
//! - [`net`]: the TLS listener: connection cap, timeouts, idle closing, bounded shutdown.
//! - [`api`]: the `/v1` router, handlers and the OpenAPI document.
//! - [`auth`]: the API key, session and device (proof-of-possession) extractors.
//! - [`identity`]: people's sessions (cookies, CSRF, step-up), invitations and passkeys.
//! - [`scim`]: SCIM 2.0 provisioning at `/scim/v2` and its `/v1` administration.
//! - [`storage`]: the [`storage::Storage`] trait and its SQLite implementation.
//! - [`audit`]: audit chain hashing and verification.
//! - [`audit_throttle`]: aggregation of repeated identical rejections in the audit trail.
//! - [`ratelimit`], [`replay`]: in-memory token buckets and the proof `jti` cache.
//! - [`desired`]: which version each model slot of a device should run (rollout resolution).
//! - [`artifact_store`]: artifact ciphertexts on disk, content addressed, read by range.
//! - [`upload`]: uploads streamed to a temporary file, per-org upload slots, bounded checks.
//! - [`secret`]: the server secret that seals per-device key-wrapping keys at rest.
//! - [`tls`]: development certificate generation and loading.

#![warn(missing_docs)]

pub mod api;
pub mod artifact_store;
pub mod audit;
pub mod audit_throttle;
pub mod auth;
pub mod backup;
pub mod config;
pub mod counters;
pub mod dashboard;
pub mod data_dir;
pub mod desired;
pub mod error;
pub mod fleet_history;
pub mod identity;
pub mod net;
pub mod ratelimit;
pub mod replay;
pub mod scim;
pub mod secret;
pub mod server;
pub mod storage;
pub mod tls;
pub mod upload;

pub use config::{ConnectionLimits, Database, RateLimits, ServerConfig};
pub use data_dir::{OrgCreated, create_org, init, init_with};
pub use error::{ApiError, ServerError};
pub use net::ConnectionStats;
pub use server::{RunningServer, Server};

/// Current unix time in seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
