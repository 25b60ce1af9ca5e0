//! The sync types the app sees: policies, the device's state with the control plane, and
//! what a sync or a model update did. The calls themselves are methods of `EdgeKeep`.

use std::sync::Arc;

use edgekeep::sync as core;
use edgekeep::telemetry::SecurityEvent as CoreSecurityEvent;

use crate::model::Model;

/// When telemetry may be uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct UploadPolicy {
    /// Upload over cellular too (default false: Wi-Fi / wired only).
    #[uniffi(default = false)]
    pub allow_cellular: bool,
    /// Wait until at least this many batches are queued (default 1).
    #[uniffi(default = 1)]
    pub min_batches: u64,
}

impl From<UploadPolicy> for core::UploadPolicy {
    fn from(p: UploadPolicy) -> Self {
        Self {
            allow_cellular: p.allow_cellular,
            min_batches: p.min_batches,
        }
    }
}

/// When model artifacts may be downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DownloadPolicy {
    /// Only on Wi-Fi / wired (default true).
    #[uniffi(default = true)]
    pub wifi_only: bool,
    /// Only while charging (default false).
    #[uniffi(default = false)]
    pub charging_only: bool,
    /// Least battery percent unless charging (default 20).
    #[uniffi(default = 20)]
    pub min_battery_percent: u8,
    /// Least free storage left after the download, in bytes (default 200 MiB).
    #[uniffi(default = 209715200)]
    pub min_free_storage_bytes: u64,
}

impl From<DownloadPolicy> for core::DownloadPolicy {
    fn from(p: DownloadPolicy) -> Self {
        Self {
            wifi_only: p.wifi_only,
            charging_only: p.charging_only,
            min_battery_percent: p.min_battery_percent,
            min_free_storage_bytes: p.min_free_storage_bytes,
        }
    }
}

/// When a verified model version starts serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ActivationPolicy {
    /// As soon as it passes its health check.
    Immediate,
    /// At the next start of the SDK.
    NextLaunch,
    /// When the app calls `activate_staged`.
    Manual,
}

impl From<ActivationPolicy> for core::ActivationPolicy {
    fn from(p: ActivationPolicy) -> Self {
        match p {
            ActivationPolicy::Immediate => Self::Immediate,
            ActivationPolicy::NextLaunch => Self::NextLaunch,
            ActivationPolicy::Manual => Self::Manual,
        }
    }
}

/// Where the device stands with the control plane.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SyncState {
    /// No credentials: enroll with a bootstrap token.
    Unenrolled,
    /// Enrolled as `device_id`.
    Enrolled {
        /// The id the control plane assigned.
        device_id: String,
    },
    /// Revoked by the control plane; only a new enrollment brings it back.
    Revoked,
}

impl From<core::SyncState> for SyncState {
    fn from(s: core::SyncState) -> Self {
        match s {
            core::SyncState::Unenrolled => Self::Unenrolled,
            core::SyncState::Enrolled { device_id } => Self::Enrolled { device_id },
            core::SyncState::Revoked => Self::Revoked,
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UploadReport {
    /// Telemetry batches sent.
    pub sent: u64,
    /// Highest sequence number the control plane acknowledged, if it answered.
    pub acked_through: Option<u64>,
    /// Batches still queued.
    pub queued: u64,
    /// Why nothing was sent, if the upload policy said no (`cellular`, `offline`, ...).
    pub deferred: Option<String>,
}

impl From<core::UploadReport> for UploadReport {
    fn from(r: core::UploadReport) -> Self {
        Self {
            sent: r.sent,
            acked_through: r.acked_through,
            queued: r.queued,
            deferred: r.deferred.map(str::to_owned),
        }
    }
}

/// An attack or integrity failure model delivery rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SecurityEvent {
    /// The desired state's server signature did not verify.
    BadStateSignature,
    /// The desired state was expired (freeze attack).
    Freeze,
    /// A version lower than the installed one was offered.
    Rollback,
    /// A manifest was for another model slot.
    MixAndMatch,
    /// The server sent more bytes than declared.
    EndlessData,
    /// A manifest was not signed by a pinned publisher key.
    WrongPublisherKey,
    /// The downloaded ciphertext did not match its hash.
    TamperedCiphertext,
    /// The decrypted model did not match its hash.
    TamperedPlaintext,
    /// The content key could not be unwrapped.
    KeyUnwrap,
    /// The server certificate did not match a pinned key.
    PinMismatch,
}

impl From<CoreSecurityEvent> for SecurityEvent {
    fn from(e: CoreSecurityEvent) -> Self {
        match e {
            CoreSecurityEvent::BadStateSignature => Self::BadStateSignature,
            CoreSecurityEvent::Freeze => Self::Freeze,
            CoreSecurityEvent::Rollback => Self::Rollback,
            CoreSecurityEvent::MixAndMatch => Self::MixAndMatch,
            CoreSecurityEvent::EndlessData => Self::EndlessData,
            CoreSecurityEvent::WrongPublisherKey => Self::WrongPublisherKey,
            CoreSecurityEvent::TamperedCiphertext => Self::TamperedCiphertext,
            CoreSecurityEvent::TamperedPlaintext => Self::TamperedPlaintext,
            CoreSecurityEvent::KeyUnwrap => Self::KeyUnwrap,
            CoreSecurityEvent::PinMismatch => Self::PinMismatch,
        }
    }
}

/// What happened to a model slot.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SlotChange {
    /// `version` now serves.
    Activated {
        /// The version.
        version: u64,
    },
    /// `version` is staged and waits for the activation policy.
    Staged {
        /// The version.
        version: u64,
    },
    /// Activating `failed` failed; `serving` (if any) still serves.
    RolledBack {
        /// The version that failed.
        failed: u64,
        /// The version serving now.
        serving: Option<u64>,
    },
}

impl From<core::SlotChange> for SlotChange {
    fn from(c: core::SlotChange) -> Self {
        match c {
            core::SlotChange::Activated(version) => Self::Activated { version },
            core::SlotChange::Staged(version) => Self::Staged { version },
            core::SlotChange::RolledBack { failed, serving } => {
                Self::RolledBack { failed, serving }
            }
        }
    }
}

/// Why a slot was left as it was.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SlotRejection {
    /// A security event.
    Security {
        /// What was detected.
        event: SecurityEvent,
    },
    /// The download policy said no.
    Deferred {
        /// Which condition is not met.
        reason: String,
    },
    /// The model failed to load or its health check.
    Unhealthy,
    /// A transient failure; the next update resumes.
    Transient,
}

impl From<core::Rejection> for SlotRejection {
    fn from(r: core::Rejection) -> Self {
        match r {
            core::Rejection::Security(event) => Self::Security {
                event: event.into(),
            },
            core::Rejection::Deferred(reason) => Self::Deferred {
                reason: reason.to_owned(),
            },
            core::Rejection::Unhealthy => Self::Unhealthy,
            core::Rejection::Transient => Self::Transient,
        }
    }
}

/// A slot's change in a model update.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SlotUpdate {
    /// The model slot.
    pub slot: String,
    /// What happened.
    pub change: SlotChange,
}

/// A slot that was not updated, and why.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SlotRefusal {
    /// The model slot.
    pub slot: String,
    /// Why.
    pub reason: SlotRejection,
}

/// What one model update did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeliveryReport {
    /// Slots whose version changed.
    pub changes: Vec<SlotUpdate>,
    /// Slots left as they were.
    pub rejected: Vec<SlotRefusal>,
    /// Ciphertext bytes received.
    pub bytes_downloaded: u64,
}

impl From<core::DeliveryReport> for DeliveryReport {
    fn from(r: core::DeliveryReport) -> Self {
        Self {
            changes: r
                .changes
                .into_iter()
                .map(|(slot, change)| SlotUpdate {
                    slot,
                    change: change.into(),
                })
                .collect(),
            rejected: r
                .rejected
                .into_iter()
                .map(|(slot, reason)| SlotRefusal {
                    slot,
                    reason: reason.into(),
                })
                .collect(),
            bytes_downloaded: r.bytes_downloaded,
        }
    }
}

/// The model serving in a slot, delivered by the control plane.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ActiveModel {
    /// The slot.
    pub slot: String,
    /// The version serving.
    pub version: u64,
    /// The loaded model.
    pub model: Arc<Model>,
}

impl From<core::ActiveModel> for ActiveModel {
    fn from(a: core::ActiveModel) -> Self {
        Self {
            slot: a.version.slot().to_owned(),
            version: a.version.version(),
            model: Model::new(a.model),
        }
    }
}
