//! The wire batch. Every field is a number, a bool, a closed enum or a vector of those:
//! there is no field a caller could fill with a string or a byte buffer.

use serde::{Deserialize, Serialize};

use super::health::HealthSnapshot;
use super::labels::LabelValue;
use super::metric::{MetricId, ModelVersion};

/// Version of the batch schema.
pub const SCHEMA_VERSION: u32 = 1;

/// One counter value over the batch's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterPoint {
    /// The metric.
    pub metric: MetricId,
    /// The label, for labeled counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<LabelValue>,
    /// The model version the count belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ModelVersion>,
    /// The count.
    pub value: u64,
}

/// One histogram over the batch's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramPoint {
    /// The metric (its bucket bounds are declared in the registry).
    pub metric: MetricId,
    /// The model version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ModelVersion>,
    /// Counts per bucket, `bounds.len() + 1` of them.
    pub counts: Vec<u64>,
    /// Sum of the observed values.
    pub sum: f64,
}

/// A quantity aggregated over the batch's window (mean = sum / count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantityPoint {
    /// The metric.
    pub metric: MetricId,
    /// The model version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ModelVersion>,
    /// Sum of the observations (each inside the declared bounds).
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// One upload unit, acknowledged by the server by sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryBatch {
    /// Per-device sequence number, from 1, without gaps.
    pub seq: u64,
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Start of the window, unix seconds.
    pub start: i64,
    /// End of the window, unix seconds.
    pub end: i64,
    /// Counter values.
    pub counters: Vec<CounterPoint>,
    /// Histograms.
    pub histograms: Vec<HistogramPoint>,
    /// Quantities.
    pub quantities: Vec<QuantityPoint>,
    /// Health signals at the end of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSnapshot>,
}

impl TelemetryBatch {
    /// Whether the batch holds no metric value (health alone is a heartbeat).
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.histograms.is_empty() && self.quantities.is_empty()
    }
}
