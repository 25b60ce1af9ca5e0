//! Operator-facing bodies of the model registry, rollouts and fleet health (`/v1`, API key).

use serde::{Deserialize, Serialize};

use crate::artifact::{SemVer, SignedManifest};
use crate::rollout::{ProgressState, RolloutStatus};
use crate::telemetry::{
    HealthSignal, LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKETS, ModelRef, QualityMetric,
};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// `POST /v1/publisher-keys` (Owner only): registers a publisher's Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterPublisherKeyRequest {
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// Base64url Ed25519 public key (32 bytes), as `edgekeep keygen` writes it.
    pub public_key: String,
}

/// A registered publisher key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PublisherKeyInfo {
    /// Key id ([`crate::signing::key_id`]); manifests name it.
    pub key_id: String,
    /// Display name.
    pub name: String,
    /// Base64url public key.
    pub public_key: String,
    /// Registration time.
    pub created_at: i64,
    /// Revocation time; artifacts signed by a revoked key are no longer accepted.
    pub revoked_at: Option<i64>,
}

/// One uploaded model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ModelVersionInfo {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: u64,
    /// Artifact id (ciphertext SHA-256, hex).
    pub artifact_id: String,
    /// The publisher-signed manifest.
    pub manifest: SignedManifest,
    /// Upload time.
    pub uploaded_at: i64,
    /// Who uploaded it (`member:<id>`).
    pub uploaded_by: String,
    /// Approval time; a version rolls out only once approved.
    pub approved_at: Option<i64>,
    /// Who approved it.
    pub approved_by: Option<String>,
}

/// `POST /v1/rollouts` (Admin+): roll a model version out to a group or the whole org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRolloutRequest {
    /// Model name.
    pub model: String,
    /// Approved version to roll out.
    pub version: u64,
    /// Device group; the whole org when absent.
    #[serde(default)]
    pub device_group: Option<String>,
    /// Share of the targeted devices, in basis points (0 to 10 000; 1 000 = 10 %).
    pub basis_points: u32,
}

/// `POST /v1/rollouts/{id}/promote`: raise the percentage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PromoteRolloutRequest {
    /// New share in basis points; must be above the current one.
    pub basis_points: u32,
}

/// Devices per progress state of one rollout, from device reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RolloutProgress {
    /// Fetched a desired state naming the version.
    pub assigned: u64,
    /// Downloaded it.
    pub downloaded: u64,
    /// Verified it.
    pub verified: u64,
    /// Serving it.
    pub active: u64,
    /// Failed.
    pub failed: u64,
    /// Went back to the previous version.
    pub rolled_back: u64,
}

impl RolloutProgress {
    /// Adds `count` devices in `state`.
    pub fn add(&mut self, state: ProgressState, count: u64) {
        let slot = match state {
            ProgressState::Assigned => &mut self.assigned,
            ProgressState::Downloaded => &mut self.downloaded,
            ProgressState::Verified => &mut self.verified,
            ProgressState::Active => &mut self.active,
            ProgressState::Failed => &mut self.failed,
            ProgressState::RolledBack => &mut self.rolled_back,
        };
        *slot += count;
    }
}

/// A rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RolloutInfo {
    /// Rollout id (also the bucketing salt).
    pub id: String,
    /// Model name.
    pub model: String,
    /// Target version.
    pub version: u64,
    /// The version the newest earlier rollout of this model and target assigned (what most
    /// targeted devices ran before; informational — resolution layers rollouts, see
    /// `edgekeep_server::desired`).
    pub previous_version: Option<u64>,
    /// Device group; the whole org when absent.
    pub device_group: Option<String>,
    /// Share in basis points.
    pub basis_points: u32,
    /// State.
    pub status: RolloutStatus,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Devices per state.
    pub progress: RolloutProgress,
}

/// A device's last reported status, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeviceStatus {
    /// Device id.
    pub device_id: String,
    /// Device group.
    pub device_group: Option<String>,
    /// Last authenticated desired-state or telemetry call.
    pub last_seen_at: Option<i64>,
    /// Seen within the online window.
    pub online: bool,
    /// SDK version last reported.
    pub sdk_version: Option<SemVer>,
    /// Model versions last reported active.
    pub active_models: Vec<ModelRef>,
    /// Last health signals.
    pub health: Option<HealthSignal>,
}

/// Device counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeviceCounts {
    /// Enrolled and not revoked.
    pub enrolled: u64,
    /// Seen within the online window.
    pub online: u64,
    /// Never seen after enrollment.
    pub never_seen: u64,
}

/// Devices on one SDK version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SdkVersionCount {
    /// SDK version.
    pub sdk_version: SemVer,
    /// Devices reporting it.
    pub devices: u64,
}

/// Latency of one model version, merged from every device's histograms in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LatencySummary {
    /// Number of inferences.
    pub samples: u64,
    /// Merged counts per bucket ([`LATENCY_BUCKET_BOUNDS_MS`], then overflow).
    pub counts: Vec<u64>,
    /// Upper bound (ms) of the bucket holding the median; `None` if above the last bound or
    /// no samples.
    pub p50_le_ms: Option<u32>,
    /// Same for the 90th percentile.
    pub p90_le_ms: Option<u32>,
    /// Same for the 99th percentile.
    pub p99_le_ms: Option<u32>,
}

impl LatencySummary {
    /// Summarizes merged bucket counts.
    pub fn from_counts(counts: [u64; LATENCY_BUCKETS]) -> Self {
        let samples: u64 = counts.iter().sum();
        let quantile = |q: f64| -> Option<u32> {
            if samples == 0 {
                return None;
            }
            let rank = ((samples as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (index, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return LATENCY_BUCKET_BOUNDS_MS.get(index).copied();
                }
            }
            None
        };
        Self {
            samples,
            counts: counts.to_vec(),
            p50_le_ms: quantile(0.5),
            p90_le_ms: quantile(0.9),
            p99_le_ms: quantile(0.99),
        }
    }
}

/// Mean of one quality measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct QualitySummary {
    /// Which measure.
    pub metric: QualityMetric,
    /// Mean over all observations.
    pub mean: f64,
    /// Number of observations.
    pub count: u64,
}

/// Health of one model version across the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ModelVersionHealth {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: u64,
    /// Devices reporting it active.
    pub devices_active: u64,
    /// Latency.
    pub latency: LatencySummary,
    /// Quality.
    pub quality: Vec<QualitySummary>,
}

/// `GET /v1/fleet/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FleetHealth {
    /// When computed.
    pub generated_at: i64,
    /// A device is online if seen within this many seconds.
    pub online_window_secs: i64,
    /// Telemetry older than this many seconds is deleted.
    pub retention_secs: i64,
    /// Device counts.
    pub devices: DeviceCounts,
    /// Devices per SDK version.
    pub sdk_versions: Vec<SdkVersionCount>,
    /// Per model version.
    pub model_versions: Vec<ModelVersionHealth>,
    /// Rollouts with progress.
    pub rollouts: Vec<RolloutInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_merged_buckets() {
        let mut counts = [0u64; LATENCY_BUCKETS];
        counts[2] = 50; // ≤ 5 ms
        counts[4] = 40; // ≤ 20 ms
        counts[6] = 9; // ≤ 100 ms
        counts[LATENCY_BUCKETS - 1] = 1;
        let summary = LatencySummary::from_counts(counts);
        assert_eq!(summary.samples, 100);
        assert_eq!(summary.p50_le_ms, Some(5));
        assert_eq!(summary.p90_le_ms, Some(20));
        assert_eq!(summary.p99_le_ms, Some(100));
        assert_eq!(
            LatencySummary::from_counts([0; LATENCY_BUCKETS]).p50_le_ms,
            None
        );
    }
}
