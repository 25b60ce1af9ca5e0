//! Metric handles. Constructors are crate-private: every metric is declared in
//! [`super::metrics`]; an app records into them but cannot invent new ones.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::labels::Label;

/// The closed set of declared metrics (their names on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricId {
    /// Inference latency in milliseconds, per model version.
    InferenceLatencyMs,
    /// Errors by [`super::ErrorKind`].
    Errors,
    /// Security events by [`super::SecurityEvent`].
    SecurityEvents,
    /// Rollout progress by [`super::RolloutStage`], per model version.
    RolloutProgress,
    /// Model accuracy the app measured, per model version.
    QualityAccuracy,
    /// Model log-loss the app measured, per model version.
    QualityLogLoss,
    /// Model expected calibration error the app measured, per model version.
    QualityEce,
    /// Accuracy of the personalized model on the device's held-out examples, per base model
    /// version (compare with [`MetricId::QualityAccuracy`] of the base alone).
    QualityPersonalizedAccuracy,
    /// Queued telemetry batches dropped to respect the queue bounds.
    TelemetryBatchesDropped,
}

/// What kind of value a metric holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A count per value of a closed label enum.
    LabeledCounter,
    /// Observations counted in fixed buckets.
    Histogram,
    /// A bounded measure aggregated as sum and count.
    Quantity,
}

/// A model slot and version, as named by a signed manifest: the slot name is restricted to
/// `[a-z0-9][a-z0-9._-]{0,63}` (the control plane also rejects names unknown to the org) and
/// the version is the publisher's monotonic integer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "(String, u64)", into = "(String, u64)")]
pub struct ModelVersion {
    slot: String,
    version: u64,
}

/// Whether `name` is a valid model slot name.
pub(crate) fn valid_slot_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
}

impl ModelVersion {
    /// The version, if `slot` is a valid slot name and `version` is at least 1.
    pub fn new(slot: &str, version: u64) -> Option<Self> {
        (valid_slot_name(slot) && version >= 1 && version <= i64::MAX as u64).then(|| Self {
            slot: slot.to_owned(),
            version,
        })
    }

    /// The slot name.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The version number.
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl TryFrom<(String, u64)> for ModelVersion {
    type Error = &'static str;
    fn try_from((slot, version): (String, u64)) -> Result<Self, Self::Error> {
        Self::new(&slot, version).ok_or("invalid model version")
    }
}

impl From<ModelVersion> for (String, u64) {
    fn from(value: ModelVersion) -> Self {
        (value.slot, value.version)
    }
}

/// A plain counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub(crate) id: MetricId,
}

impl Counter {
    pub(crate) const fn declare(id: MetricId) -> Self {
        Self { id }
    }

    /// The metric's id.
    pub fn id(&self) -> MetricId {
        self.id
    }
}

/// A counter split by the values of the closed label enum `L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabeledCounter<L: Label> {
    pub(crate) id: MetricId,
    _label: PhantomData<L>,
}

impl<L: Label> LabeledCounter<L> {
    pub(crate) const fn declare(id: MetricId) -> Self {
        Self {
            id,
            _label: PhantomData,
        }
    }

    /// The metric's id.
    pub fn id(&self) -> MetricId {
        self.id
    }
}

/// A histogram with fixed, increasing bucket upper bounds; values above the last bound land
/// in an overflow bucket, so a histogram has `bounds.len() + 1` counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Histogram {
    pub(crate) id: MetricId,
    pub(crate) bounds: &'static [f64],
}

impl Histogram {
    pub(crate) const fn declare(id: MetricId, bounds: &'static [f64]) -> Self {
        Self { id, bounds }
    }

    /// The metric's id.
    pub fn id(&self) -> MetricId {
        self.id
    }

    /// The bucket upper bounds (inclusive).
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// The bucket a finite value falls in; `None` for NaN or infinities (never recorded).
    pub(crate) fn bucket(&self, value: f64) -> Option<usize> {
        if !value.is_finite() {
            return None;
        }
        Some(
            self.bounds
                .iter()
                .position(|bound| value <= *bound)
                .unwrap_or(self.bounds.len()),
        )
    }
}

/// A bounded measure (e.g. an accuracy in `[0, 1]`) aggregated as sum and count over a
/// window (mean = sum / count); values are clamped to the bounds and non-finite values are
/// refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    pub(crate) id: MetricId,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Quantity {
    pub(crate) const fn declare(id: MetricId, min: f64, max: f64) -> Self {
        Self { id, min, max }
    }

    /// The metric's id.
    pub fn id(&self) -> MetricId {
        self.id
    }

    /// The value as recorded: clamped into the bounds; `None` if not finite.
    pub(crate) fn admit(&self, value: f64) -> Option<f64> {
        value.is_finite().then(|| value.clamp(self.min, self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_include_upper_bound_and_overflow() {
        let h = Histogram::declare(MetricId::InferenceLatencyMs, &[1.0, 10.0]);
        assert_eq!(h.bucket(0.5), Some(0));
        assert_eq!(h.bucket(1.0), Some(0));
        assert_eq!(h.bucket(5.0), Some(1));
        assert_eq!(h.bucket(11.0), Some(2));
        assert_eq!(h.bucket(f64::NAN), None);
        assert_eq!(h.bucket(f64::INFINITY), None);
    }

    #[test]
    fn quantity_clamps_and_refuses_non_finite() {
        let q = Quantity::declare(MetricId::QualityAccuracy, 0.0, 1.0);
        assert_eq!(q.admit(1.5), Some(1.0));
        assert_eq!(q.admit(-0.1), Some(0.0));
        assert_eq!(q.admit(f64::NAN), None);
    }
}
