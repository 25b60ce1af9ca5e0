//! Errors of the telemetry module. Log-safe: never a recorded value.

use crate::store::StoreError;

/// Why a telemetry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The encrypted store failed (the queue lives there).
    #[error("telemetry store: {0}")]
    Store(#[from] StoreError),
    /// A queued batch could not be encoded or decoded.
    #[error("telemetry batch encoding failed")]
    Encoding,
}
