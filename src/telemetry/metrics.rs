//! The registry: every metric the SDK declares, and nothing else can be sent.

use super::labels::{ErrorKind, RolloutStage, SecurityEvent};
use super::metric::{Counter, Histogram, LabeledCounter, MetricId, MetricKind, Quantity};

/// Latency bucket upper bounds in milliseconds (the control plane's declared buckets).
pub const LATENCY_BOUNDS_MS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
];

/// Inference latency in milliseconds, per model version.
pub const INFERENCE_LATENCY_MS: Histogram =
    Histogram::declare(MetricId::InferenceLatencyMs, LATENCY_BOUNDS_MS);
/// Errors by typed kind.
pub const ERRORS: LabeledCounter<ErrorKind> = LabeledCounter::declare(MetricId::Errors);
/// Security events in model delivery.
pub const SECURITY_EVENTS: LabeledCounter<SecurityEvent> =
    LabeledCounter::declare(MetricId::SecurityEvents);
/// Rollout progress, per model version.
pub const ROLLOUT_PROGRESS: LabeledCounter<RolloutStage> =
    LabeledCounter::declare(MetricId::RolloutProgress);
/// Accuracy in `[0, 1]` reported by the app, per model version.
pub const QUALITY_ACCURACY: Quantity = Quantity::declare(MetricId::QualityAccuracy, 0.0, 1.0);
/// Log-loss in `[0, 100]` reported by the app, per model version.
pub const QUALITY_LOG_LOSS: Quantity = Quantity::declare(MetricId::QualityLogLoss, 0.0, 100.0);
/// Expected calibration error in `[0, 1]` reported by the app, per model version.
pub const QUALITY_ECE: Quantity = Quantity::declare(MetricId::QualityEce, 0.0, 1.0);
/// Accuracy in `[0, 1]` of the personalized model on held-out local examples, per base model
/// version.
pub const QUALITY_PERSONALIZED_ACCURACY: Quantity =
    Quantity::declare(MetricId::QualityPersonalizedAccuracy, 0.0, 1.0);
/// Queued batches dropped to respect the queue's byte and age bounds.
pub const TELEMETRY_BATCHES_DROPPED: Counter = Counter::declare(MetricId::TelemetryBatchesDropped);

/// One entry of the registry: what a metric is, for documentation and review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declaration {
    /// The metric.
    pub id: MetricId,
    /// Its kind.
    pub kind: MetricKind,
    /// What it measures.
    pub description: &'static str,
}

/// Every declared metric.
pub const REGISTRY: &[Declaration] = &[
    Declaration {
        id: MetricId::InferenceLatencyMs,
        kind: MetricKind::Histogram,
        description: "inference latency in milliseconds per model version",
    },
    Declaration {
        id: MetricId::Errors,
        kind: MetricKind::LabeledCounter,
        description: "errors by typed kind",
    },
    Declaration {
        id: MetricId::SecurityEvents,
        kind: MetricKind::LabeledCounter,
        description: "rejected attacks and integrity failures in model delivery",
    },
    Declaration {
        id: MetricId::RolloutProgress,
        kind: MetricKind::LabeledCounter,
        description: "rollout stages reached per model version",
    },
    Declaration {
        id: MetricId::QualityAccuracy,
        kind: MetricKind::Quantity,
        description: "accuracy reported by the app per model version",
    },
    Declaration {
        id: MetricId::QualityLogLoss,
        kind: MetricKind::Quantity,
        description: "log-loss reported by the app per model version",
    },
    Declaration {
        id: MetricId::QualityEce,
        kind: MetricKind::Quantity,
        description: "expected calibration error reported by the app per model version",
    },
    Declaration {
        id: MetricId::QualityPersonalizedAccuracy,
        kind: MetricKind::Quantity,
        description: "accuracy of the personalized model on held-out local examples",
    },
    Declaration {
        id: MetricId::TelemetryBatchesDropped,
        kind: MetricKind::Counter,
        description: "queued batches dropped to respect the queue bounds",
    },
];
