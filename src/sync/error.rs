//! Errors of the sync module. Log-safe: they name reasons and codes, never tokens, keys,
//! URLs with secrets, response bodies or user data.

use edgekeep_protocol::ErrorCode;

use crate::store::StoreError;
use crate::telemetry::{SecurityEvent, TelemetryError};

/// Why a sync operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The client was configured wrongly (bad URL, unreadable root certificate, ...).
    #[error("sync configuration: {0}")]
    Config(&'static str),
    /// The device is not enrolled yet: call `enroll` with a bootstrap token.
    #[error("device is not enrolled")]
    NotEnrolled,
    /// The device was revoked by the control plane. Credentials are wiped; syncing stopped.
    #[error("device was revoked")]
    Revoked,
    /// The control plane answered with an error code.
    #[error("control plane error: {code} (HTTP {status})")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The protocol error code.
        code: ErrorCode,
    },
    /// The control plane answered with something that is not the protocol.
    #[error("unexpected response from control plane (HTTP {status})")]
    Protocol {
        /// The HTTP status.
        status: u16,
    },
    /// The network failed (connect, TLS, timeout, cut connection) after all retries.
    #[error("network failure: {0}")]
    Network(&'static str),
    /// The device identity key could not sign.
    #[error("device key failure")]
    DeviceKey,
    /// The encrypted store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The telemetry queue failed.
    #[error("telemetry: {0}")]
    Telemetry(#[from] TelemetryError),
    /// The upload or download policy does not allow this now (e.g. on cellular).
    #[error("not allowed by policy now: {0}")]
    Policy(&'static str),
    /// Telemetry is switched off by the user.
    #[error("telemetry is opted out")]
    OptedOut,
    /// Model delivery rejected what the control plane offered: a typed security event
    /// (also counted in telemetry). The installed model keeps serving.
    #[error("model delivery rejected: {0:?}")]
    Security(SecurityEvent),
    /// Stored data failed its integrity check.
    #[error("integrity check failed: {0}")]
    Integrity(&'static str),
    /// A model failed to load or failed its health check.
    #[error("model rejected: {0}")]
    ModelRejected(&'static str),
    /// A blocking method was called from inside an async runtime; use the async method.
    #[error("blocking sync method called from an async context")]
    BlockingInAsync,
    /// The SDK's runtime is gone or a task failed.
    #[error("sync runtime failure")]
    Runtime,
}

impl SyncError {
    /// Whether retrying later may succeed (network trouble, server overload).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
