//! Records and storage calls of the model registry, rollouts, device status and telemetry.

use edgekeep_protocol::artifact::SemVer;
use edgekeep_protocol::fleet::DeviceCounts;
use edgekeep_protocol::rollout::{ProgressState, RolloutStatus};
use edgekeep_protocol::telemetry::{
    HealthSignal, LATENCY_BUCKETS, ModelRef, QualityMetric, TelemetryAck, TelemetryBatch,
};

use super::{AuditEvent, StorageError};

/// A registered publisher key of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherKeyRecord {
    /// Org id.
    pub org_id: String,
    /// Key id (`ed25519:...`).
    pub key_id: String,
    /// Display name.
    pub name: String,
    /// Raw 32-byte Ed25519 public key.
    pub public_key: [u8; 32],
    /// Registration time.
    pub created_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
}

/// An uploaded model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersionRecord {
    /// Org id.
    pub org_id: String,
    /// Model name.
    pub model: String,
    /// Version.
    pub version: u64,
    /// Artifact id (ciphertext SHA-256, hex).
    pub artifact_id: String,
    /// The signed manifest, as JSON text.
    pub manifest_json: String,
    /// The content key, sealed with the server secret.
    pub sealed_content_key: Vec<u8>,
    /// Upload time.
    pub uploaded_at: i64,
    /// Uploader (`member:<id>`).
    pub uploaded_by: String,
    /// Approval time.
    pub approved_at: Option<i64>,
    /// Approver.
    pub approved_by: Option<String>,
}

/// A rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRecord {
    /// Rollout id (the bucketing salt).
    pub id: String,
    /// Org id.
    pub org_id: String,
    /// Model name.
    pub model: String,
    /// Target version.
    pub version: u64,
    /// Version the newest earlier rollout of the same model and target assigned.
    pub previous_version: Option<u64>,
    /// Target group; whole org when `None`.
    pub device_group: Option<String>,
    /// Share in basis points.
    pub basis_points: u32,
    /// State.
    pub status: RolloutStatus,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A device's last reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatusRecord {
    /// Device id.
    pub device_id: String,
    /// Device group.
    pub device_group: Option<String>,
    /// Whether the device is revoked.
    pub revoked: bool,
    /// Last seen.
    pub last_seen_at: Option<i64>,
    /// SDK version last reported.
    pub sdk_version: Option<SemVer>,
    /// Active models last reported.
    pub active_models: Vec<ModelRef>,
    /// Last health.
    pub health: Option<HealthSignal>,
}

/// How long device-count snapshots are kept, seconds (90 days).
pub const FLEET_HISTORY_SECS: i64 = 90 * 86_400;

/// A change of a rollout's percentage and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutChange {
    /// New share in basis points.
    pub basis_points: u32,
    /// New status.
    pub status: RolloutStatus,
    /// The statuses the change applies from.
    pub from: &'static [RolloutStatus],
    /// Time of the change.
    pub at: i64,
}

/// Latency of one model version since a time: each device's counts merged over the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionLatency {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: u64,
    /// One merged histogram per reporting device, in device id order.
    pub per_device: Vec<[u64; LATENCY_BUCKETS]>,
}

/// One quality measure of one model version since a time, per device.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionQuality {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: u64,
    /// The measure.
    pub metric: QualityMetric,
    /// `(sum, count)` per reporting device, in device id order.
    pub per_device: Vec<(f64, u64)>,
}

/// Telemetry of one org since a time, kept per device so that aggregates can weigh devices
/// rather than samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryWindow {
    /// Latency per model version, in (model, version) order.
    pub latency: Vec<VersionLatency>,
    /// Quality per model version and metric, in (model, version, metric) order.
    pub quality: Vec<VersionQuality>,
}

/// Storage of the registry, rollouts and telemetry; every method is scoped to an org.
pub trait FleetStorage {
    /// Registers a publisher key. `Conflict` if the org already has it.
    fn insert_publisher_key(
        &self,
        key: &PublisherKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;
    /// The org's publisher keys, revoked ones included.
    fn publisher_keys(&self, org_id: &str) -> Result<Vec<PublisherKeyRecord>, StorageError>;
    /// Revokes a publisher key; false if it was unknown or already revoked.
    fn revoke_publisher_key(
        &self,
        org_id: &str,
        key_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Stores an uploaded version. `Conflict` if the version is not above every stored
    /// version of the model, or the artifact exists.
    fn insert_model_version(
        &self,
        version: &ModelVersionRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;
    /// The org's model versions, by model then version.
    fn model_versions(&self, org_id: &str) -> Result<Vec<ModelVersionRecord>, StorageError>;
    /// One model version.
    fn model_version(
        &self,
        org_id: &str,
        model: &str,
        version: u64,
    ) -> Result<Option<ModelVersionRecord>, StorageError>;
    /// The model version of an artifact.
    fn model_version_by_artifact(
        &self,
        org_id: &str,
        artifact_id: &str,
    ) -> Result<Option<ModelVersionRecord>, StorageError>;
    /// Approves a version; false if it was already approved (nothing written).
    fn approve_model_version(
        &self,
        org_id: &str,
        model: &str,
        version: u64,
        by: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;

    /// Stores a new rollout.
    fn insert_rollout(
        &self,
        rollout: &RolloutRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;
    /// The org's rollouts, oldest first.
    fn rollouts(&self, org_id: &str) -> Result<Vec<RolloutRecord>, StorageError>;
    /// Applies `change` to a rollout if its status is one of `change.from`; false if not.
    fn update_rollout(
        &self,
        org_id: &str,
        rollout_id: &str,
        change: &RolloutChange,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError>;
    /// Device counts per rollout and progress state.
    fn rollout_progress(
        &self,
        org_id: &str,
    ) -> Result<Vec<(String, ProgressState, u64)>, StorageError>;
    /// Records that a desired state assigned a rollout's version to a device (kept if the
    /// device already reported further progress). Returns whether a row was added.
    fn record_assignment(
        &self,
        org_id: &str,
        rollout_id: &str,
        device_id: &str,
        at: i64,
    ) -> Result<bool, StorageError>;
    /// Whether an assignment or later progress is recorded.
    fn has_progress(
        &self,
        org_id: &str,
        rollout_id: &str,
        device_id: &str,
    ) -> Result<bool, StorageError>;
    /// The SDK version a device last reported, if any.
    fn device_sdk_version(
        &self,
        org_id: &str,
        device_id: &str,
    ) -> Result<Option<SemVer>, StorageError>;
    /// The model versions a device last reported serving (empty if it never reported).
    fn device_active_models(
        &self,
        org_id: &str,
        device_id: &str,
    ) -> Result<Vec<ModelRef>, StorageError>;
    /// Records that a device was seen.
    fn touch_device(&self, org_id: &str, device_id: &str, at: i64) -> Result<(), StorageError>;

    /// Stores a telemetry batch once: a batch whose sequence is at or below the acknowledged
    /// one, or already held, is a duplicate and changes nothing but the last-seen time.
    /// Sequences more than `window` above the acknowledged one are refused (`Conflict`).
    fn ingest_telemetry(
        &self,
        org_id: &str,
        device_id: &str,
        batch: &TelemetryBatch,
        now: i64,
        window: u64,
    ) -> Result<TelemetryAck, StorageError>;
    /// Every device of the org with its last reported status.
    fn device_statuses(&self, org_id: &str) -> Result<Vec<DeviceStatusRecord>, StorageError>;
    /// Latency and quality aggregated since `since`.
    fn telemetry_window(&self, org_id: &str, since: i64) -> Result<TelemetryWindow, StorageError>;
    /// Records the org's device counts at `at` (and forgets snapshots older than
    /// [`FLEET_HISTORY_SECS`]).
    fn record_fleet_snapshot(
        &self,
        org_id: &str,
        at: i64,
        counts: &DeviceCounts,
    ) -> Result<(), StorageError>;
    /// The org's device counts recorded since `since`, oldest first.
    fn fleet_snapshots(
        &self,
        org_id: &str,
        since: i64,
    ) -> Result<Vec<(i64, DeviceCounts)>, StorageError>;
    /// When the last telemetry batch of any org was accepted (for the public status page: a
    /// time, nothing about whose).
    fn last_ingest_at(&self) -> Result<Option<i64>, StorageError>;
    /// A round trip to the database.
    fn ping(&self) -> Result<(), StorageError>;
    /// Deletes telemetry older than `before`; returns the rows deleted.
    fn purge_telemetry(&self, before: i64) -> Result<u64, StorageError>;
}
