//! [`EdgeKeepError`], the one error type of the bindings, and the `From` conversions from
//! every SDK error, in one place.
//!
//! Messages are log-safe: they name a reason in words, codes and model-defined names, never
//! user data, keys, tokens or tensor values.

use edgekeep::inference::InferenceError;
use edgekeep::personalize::PersonalizeError;
use edgekeep::store::{KeyProviderError, StoreError};
use edgekeep::sync::SyncError;

/// Why an edgekeep call failed. Each variant is something an app would handle differently.
///
/// Swift sees it as `EdgeKeepError`, Kotlin as `EdgeKeepException`, Python as
/// `EdgeKeepError`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum EdgeKeepError {
    /// The configuration or an argument is invalid (bad URL, unknown publisher key format,
    /// malformed tensor, ...). Fix the call.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong, in words.
        reason: String,
    },
    /// The store's data key cannot be unwrapped with this key provider. Nothing was changed;
    /// ask for the right key (never delete the data because of this).
    #[error("wrong key for the encrypted store")]
    WrongKey,
    /// The key provider cannot reach its key now (device locked, keystore busy). Retry later.
    #[error("the key is unavailable")]
    KeyUnavailable,
    /// The key provider failed with a platform status (`-1`: it threw an unexpected
    /// exception).
    #[error("key provider failed (status {status})")]
    KeyProviderFailed {
        /// The platform status the provider reported.
        status: i64,
    },
    /// The store file is damaged, tampered with or from a newer SDK.
    #[error("the encrypted store is damaged: {reason}")]
    StoreDamaged {
        /// What failed its check.
        reason: String,
    },
    /// The store is locked by another process or the disk is full. Retry later.
    #[error("the encrypted store is unavailable: {reason}")]
    StoreUnavailable {
        /// Busy or disk full.
        reason: String,
    },
    /// Any other store failure (I/O, database).
    #[error("store failure: {reason}")]
    Store {
        /// The failure, in words.
        reason: String,
    },
    /// The model file cannot be read or is not a model this SDK can run.
    #[error("model cannot be loaded: {reason}")]
    ModelLoad {
        /// The reason (format, operator, analysis).
        reason: String,
    },
    /// The inputs do not match the model (unknown, missing or repeated name, element type,
    /// shape). Fix the call; the message names the input and the expected type or shape.
    #[error("inputs do not match the model: {reason}")]
    InvalidInput {
        /// Which input and what it expects.
        reason: String,
    },
    /// The model failed while running.
    #[error("model execution failed: {reason}")]
    Inference {
        /// The runtime's reason.
        reason: String,
    },
    /// Personalization cannot do this (no classifier yet, unknown class, too few examples,
    /// stored data from another base model, ...).
    #[error("personalization: {reason}")]
    Personalization {
        /// The reason.
        reason: String,
    },
    /// No control plane is configured (`control_plane_url` is empty).
    #[error("sync is not configured")]
    SyncNotConfigured,
    /// The device is not enrolled yet: call `enroll` with a bootstrap token.
    #[error("device is not enrolled")]
    NotEnrolled,
    /// The control plane revoked this device; only a new enrollment brings it back.
    #[error("device was revoked")]
    Revoked,
    /// The network failed after all retries (offline, TLS, timeout). Retry later.
    #[error("network failure: {reason}")]
    Network {
        /// What failed (connect, TLS, timeout, ...).
        reason: String,
    },
    /// The control plane refused the request.
    #[error("control plane error {code} (HTTP {status})")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The protocol error code (`invalid_token`, `rate_limited`, ...).
        code: String,
        /// Whether retrying later may succeed.
        transient: bool,
    },
    /// The upload or download policy does not allow this now (cellular, battery, ...).
    #[error("deferred by policy: {reason}")]
    Deferred {
        /// Which condition is not met.
        reason: String,
    },
    /// Telemetry is switched off by the user.
    #[error("telemetry is switched off")]
    TelemetryOff,
    /// Model delivery rejected an update as an attack or integrity failure; the installed
    /// model keeps serving.
    #[error("model delivery rejected: {event:?}")]
    Security {
        /// What was detected.
        event: crate::sync::SecurityEvent,
    },
    /// A delivered model failed to load or its health check.
    #[error("model rejected: {reason}")]
    ModelRejected {
        /// The reason.
        reason: String,
    },
    /// The device identity key could not sign (hardware key locked or gone). Retry later.
    #[error("the device key could not sign")]
    DeviceKeyFailed,
    /// A callback the app implements threw something other than an `EdgeKeepError`.
    #[error("an app callback failed")]
    CallbackFailed,
    /// A bug in the SDK (a caught panic, a failed runtime). Report it; the SDK object stays
    /// usable where it can.
    #[error("internal error: {reason}")]
    Internal {
        /// Where it happened.
        reason: String,
    },
}

impl EdgeKeepError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            reason: reason.into(),
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for EdgeKeepError {
    fn from(_: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // The foreign exception's text may hold anything; it is not carried over.
        Self::CallbackFailed
    }
}

impl From<KeyProviderError> for EdgeKeepError {
    fn from(err: KeyProviderError) -> Self {
        match err {
            KeyProviderError::Rejected => Self::WrongKey,
            KeyProviderError::Unavailable => Self::KeyUnavailable,
            KeyProviderError::Platform(status) => Self::KeyProviderFailed { status },
            KeyProviderError::MalformedWrappedKey => Self::StoreDamaged {
                reason: err.to_string(),
            },
            KeyProviderError::InvalidConfiguration(_) => Self::invalid(err.to_string()),
        }
    }
}

impl From<StoreError> for EdgeKeepError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::WrongKey => Self::WrongKey,
            StoreError::KeyProvider(inner) => inner.into(),
            StoreError::Tampered { .. }
            | StoreError::Corrupt
            | StoreError::UnsupportedVersion { .. }
            | StoreError::KeySet(_) => Self::StoreDamaged {
                reason: err.to_string(),
            },
            StoreError::Busy | StoreError::DiskFull => Self::StoreUnavailable {
                reason: err.to_string(),
            },
            StoreError::InvalidInput(reason) => Self::invalid(reason),
            // `Database` prints no SQL values; `Io` names the OS error only.
            other => Self::Store {
                reason: other.to_string(),
            },
        }
    }
}

impl From<InferenceError> for EdgeKeepError {
    fn from(err: InferenceError) -> Self {
        let reason = err.to_string();
        match err {
            InferenceError::Io(_)
            | InferenceError::InvalidModel { .. }
            | InferenceError::UnsupportedOperator { .. }
            | InferenceError::Analysis { .. }
            | InferenceError::Conversion { .. }
            | InferenceError::StateBinding { .. } => Self::ModelLoad { reason },
            InferenceError::UnknownInput(_)
            | InferenceError::UnknownTensor(_)
            | InferenceError::MissingInput(_)
            | InferenceError::DuplicateInput(_)
            | InferenceError::UnknownOutput(_)
            | InferenceError::DTypeMismatch { .. }
            | InferenceError::ShapeMismatch { .. }
            | InferenceError::WrongElementType { .. }
            | InferenceError::ElementCount { .. } => Self::InvalidInput { reason },
            _ => Self::Inference { reason },
        }
    }
}

impl From<PersonalizeError> for EdgeKeepError {
    fn from(err: PersonalizeError) -> Self {
        match err {
            PersonalizeError::Inference(inner) => inner.into(),
            PersonalizeError::Store(inner) => inner.into(),
            other => Self::Personalization {
                reason: other.to_string(),
            },
        }
    }
}

impl From<SyncError> for EdgeKeepError {
    fn from(err: SyncError) -> Self {
        let transient = err.is_transient();
        match err {
            SyncError::Config(reason) => Self::invalid(reason),
            SyncError::NotEnrolled => Self::NotEnrolled,
            SyncError::Revoked => Self::Revoked,
            SyncError::Server { status, code } => Self::Server {
                status,
                code: code.as_str().to_owned(),
                transient,
            },
            SyncError::Protocol { status } => Self::Server {
                status,
                code: "protocol".to_owned(),
                transient,
            },
            SyncError::Network(reason) => Self::Network {
                reason: reason.to_owned(),
            },
            SyncError::DeviceKey => Self::DeviceKeyFailed,
            SyncError::Store(inner) => inner.into(),
            SyncError::Telemetry(inner) => Self::Store {
                reason: inner.to_string(),
            },
            SyncError::Policy(reason) => Self::Deferred {
                reason: reason.to_owned(),
            },
            SyncError::OptedOut => Self::TelemetryOff,
            SyncError::Security(event) => Self::Security {
                event: event.into(),
            },
            SyncError::Integrity(reason) => Self::StoreDamaged {
                reason: reason.to_owned(),
            },
            SyncError::ModelRejected(reason) => Self::ModelRejected {
                reason: reason.to_owned(),
            },
            SyncError::BlockingInAsync | SyncError::Runtime => Self::Internal {
                reason: err.to_string(),
            },
        }
    }
}

/// Result of every exported call.
pub type Result<T, E = EdgeKeepError> = std::result::Result<T, E>;
