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
    /// Summarizes merged bucket counts, every sample weighing the same.
    pub fn from_counts(counts: [u64; LATENCY_BUCKETS]) -> Self {
        Self::from_devices(&[counts])
    }

    /// Summarizes the histograms of several devices. `samples` and `counts` are the merged
    /// totals; the percentiles are those of the devices' mixture in which each device's
    /// distribution weighs the same, so no single device, however many samples it claims, moves
    /// a percentile further than its share of the fleet.
    pub fn from_devices(devices: &[[u64; LATENCY_BUCKETS]]) -> Self {
        let mut merged = [0u64; LATENCY_BUCKETS];
        let mut mixture = [0f64; LATENCY_BUCKETS];
        let mut weighed = 0usize;
        for counts in devices {
            let total: u64 = counts.iter().fold(0u64, |a, c| a.saturating_add(*c));
            for (sum, count) in merged.iter_mut().zip(counts) {
                *sum = sum.saturating_add(*count);
            }
            if total == 0 {
                continue;
            }
            weighed += 1;
            for (share, count) in mixture.iter_mut().zip(counts) {
                *share += *count as f64 / total as f64;
            }
        }
        let samples = merged.iter().fold(0u64, |a, c| a.saturating_add(*c));
        let quantile = |q: f64| -> Option<u32> {
            if weighed == 0 {
                return None;
            }
            let rank = q * weighed as f64;
            let mut seen = 0.0;
            for (index, share) in mixture.iter().enumerate() {
                seen += share;
                if seen >= rank - 1e-9 * weighed as f64 && *share > 0.0 {
                    return LATENCY_BUCKET_BOUNDS_MS.get(index).copied();
                }
            }
            None
        };
        Self {
            samples,
            counts: merged.to_vec(),
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
    /// Mean over devices: each device's own mean counts once.
    pub mean: f64,
    /// Number of observations.
    pub count: u64,
}

impl QualitySummary {
    /// Summarizes per-device `(sum, count)` aggregates of one measure; `None` when no device
    /// made an observation.
    pub fn from_devices(metric: QualityMetric, devices: &[(f64, u64)]) -> Option<Self> {
        let means: Vec<f64> = devices
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(sum, count)| sum / *count as f64)
            .collect();
        if means.is_empty() {
            return None;
        }
        Some(Self {
            metric,
            mean: means.iter().sum::<f64>() / means.len() as f64,
            count: devices.iter().fold(0u64, |a, (_, c)| a.saturating_add(*c)),
        })
    }
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

    #[test]
    fn one_device_cannot_dominate_the_percentiles() {
        let mut honest = [0u64; LATENCY_BUCKETS];
        honest[3] = 90; // ≤ 10 ms
        honest[5] = 10; // ≤ 50 ms
        let mut flood = [0u64; LATENCY_BUCKETS];
        flood[LATENCY_BUCKETS - 1] = 1 << 40;
        let mut fleet = vec![honest; 19];
        fleet.push(flood);
        let summary = LatencySummary::from_devices(&fleet);
        assert_eq!(summary.p50_le_ms, Some(10));
        assert_eq!(summary.p90_le_ms, Some(50));
        assert_eq!(summary.samples, 1900 + (1 << 40));
        let merged = LatencySummary::from_counts({
            let mut all = flood;
            all[3] = 90 * 19;
            all[5] = 10 * 19;
            all
        });
        assert_eq!(merged.p50_le_ms, None, "merging samples lets the flood win");
    }

    #[test]
    fn quality_means_weigh_each_device_once() {
        let devices = [(0.9, 1), (0.8, 1), (0.0, 1 << 40)];
        let summary = QualitySummary::from_devices(QualityMetric::Accuracy, &devices).unwrap();
        assert!((summary.mean - (0.9 + 0.8) / 3.0).abs() < 1e-12);
        assert_eq!(summary.count, 2 + (1 << 40));
        assert!(QualitySummary::from_devices(QualityMetric::Accuracy, &[(0.0, 0)]).is_none());
    }
}
