//! The declared telemetry schema: the only values a device may upload.
//!
//! Every field is a number, a bool, a closed enum, a version or a validated model name; no
//! free-form string, byte buffer or error message has a place to go. Every struct denies
//! unknown fields, so an undeclared field fails the whole batch. Batches carry a per-device
//! sequence number; the server answers with the highest contiguous sequence it holds
//! ([`TelemetryAck`]) and counts a retried batch once.

use serde::{Deserialize, Serialize};

use crate::artifact::{SemVer, valid_model_name};
use crate::rollout::ProgressState;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Most events in one batch.
pub const MAX_EVENTS_PER_BATCH: usize = 256;
/// Largest batch body, in bytes.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Most models listed in one [`VersionReport`].
pub const MAX_ACTIVE_MODELS: usize = 64;
/// Upper bounds (inclusive, milliseconds) of the latency histogram buckets; a last bucket
/// counts everything above the final bound.
pub const LATENCY_BUCKET_BOUNDS_MS: [u32; 11] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
/// Number of latency buckets (bounds plus overflow).
pub const LATENCY_BUCKETS: usize = LATENCY_BUCKET_BOUNDS_MS.len() + 1;
/// Largest absolute value of a quality sum.
pub const MAX_QUALITY_SUM: f64 = 1e12;
/// Most latency and quality observations one batch may carry, and the largest event count
/// (about 48 inferences a second for a day).
pub const MAX_SAMPLES_PER_BATCH: u64 = 1 << 22;

/// Why a batch was rejected. Names the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryError {
    /// Larger than [`MAX_BATCH_BYTES`] or more than [`MAX_EVENTS_PER_BATCH`] events.
    #[error("telemetry batch is too large")]
    TooLarge,
    /// An undeclared field, a value of the wrong type, or malformed JSON.
    #[error("telemetry batch does not match the declared schema")]
    Schema,
    /// A value outside its declared bounds.
    #[error("telemetry value out of bounds: {0}")]
    OutOfBounds(&'static str),
}

/// A model name, validated on construction and on deserialization
/// (`[a-z0-9][a-z0-9._-]{0,63}`); the server also rejects names unknown to the device's org.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl ModelName {
    /// The name, if it is a valid model name.
    pub fn new(name: &str) -> Option<Self> {
        valid_model_name(name).then(|| Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ModelName {
    type Error = &'static str;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if valid_model_name(&value) {
            Ok(Self(value))
        } else {
            Err("invalid model name")
        }
    }
}

impl From<ModelName> for String {
    fn from(value: ModelName) -> Self {
        value.0
    }
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// Model name (slot).
    pub model: ModelName,
    /// Version.
    pub version: u64,
}

/// Network the device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NetworkType {
    /// No network.
    None,
    /// Wi-Fi.
    Wifi,
    /// Cellular.
    Cellular,
    /// Wired.
    Ethernet,
    /// Anything else.
    Other,
}

/// Free storage, bucketed so the exact figure never leaves the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StorageBucket {
    /// Under 100 MB.
    Under100Mb,
    /// 100 MB to 1 GB.
    Under1Gb,
    /// 1 GB to 10 GB.
    Under10Gb,
    /// 10 GB or more.
    Over10Gb,
}

/// Thermal state as the OS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ThermalState {
    /// Normal.
    Nominal,
    /// Slightly elevated.
    Fair,
    /// High; work should be reduced.
    Serious,
    /// Critical.
    Critical,
}

/// How the device's last sync or scheduled job completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CompletionStatus {
    /// Finished.
    Completed,
    /// Stopped early (policy, OS limit); will resume.
    Partial,
    /// Failed.
    Failed,
    /// Not attempted yet.
    NotAttempted,
}

/// Health signals from the app's `DeviceStateProvider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HealthSignal {
    /// Battery level, 0 to 100.
    pub battery_percent: u8,
    /// Whether the device is charging.
    pub charging: bool,
    /// Network type.
    pub network: NetworkType,
    /// Free storage bucket.
    pub free_storage: StorageBucket,
    /// Thermal state.
    pub thermal: ThermalState,
    /// Completion status of the last sync.
    pub completion: CompletionStatus,
}

/// SDK and active model versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VersionReport {
    /// SDK version.
    pub sdk: SemVer,
    /// Versions serving now, one per slot.
    pub active: Vec<ModelRef>,
}

/// Inference latency of one model version, as counts per fixed bucket
/// ([`LATENCY_BUCKET_BOUNDS_MS`], then overflow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LatencyHistogram {
    /// The model version.
    pub model: ModelRef,
    /// Counts per bucket.
    pub counts: [u64; LATENCY_BUCKETS],
}

/// A declared model quality measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    /// Fraction correct (0 to 1 per observation).
    Accuracy,
    /// Log loss.
    LogLoss,
    /// Expected calibration error.
    CalibrationError,
    /// Accuracy after on-device personalization, on the device's held-out examples.
    PersonalizedAccuracy,
}

impl QualityMetric {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::LogLoss => "log_loss",
            Self::CalibrationError => "calibration_error",
            Self::PersonalizedAccuracy => "personalized_accuracy",
        }
    }
}

/// An aggregate of a quality measure: `sum` over `count` observations (mean = sum / count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QualityAggregate {
    /// The model version.
    pub model: ModelRef,
    /// Which measure.
    pub metric: QualityMetric,
    /// Sum of observations (finite, |sum| ≤ [`MAX_QUALITY_SUM`]).
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// Typed SDK error and security-event codes that may be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SdkEventCode {
    /// Inference failed.
    InferenceFailed,
    /// A model failed to load.
    ModelLoadFailed,
    /// A download failed.
    DownloadFailed,
    /// The encrypted store failed.
    StoreFailed,
    /// A network call failed.
    NetworkFailed,
    /// Security: a version lower than the installed one was offered.
    SecurityRollback,
    /// Security: an expired desired state or manifest was offered.
    SecurityFreeze,
    /// Security: a manifest for another slot was offered.
    SecurityMixAndMatch,
    /// Security: more bytes than the manifest declares were sent.
    SecurityEndlessData,
    /// Security: a signature by an untrusted key, or a bad signature.
    SecurityWrongKey,
    /// Security: ciphertext or plaintext did not match its hash.
    SecurityTampered,
    /// Telemetry events dropped from the local queue (bounded by bytes and age).
    TelemetryDropped,
}

impl SdkEventCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InferenceFailed => "inference_failed",
            Self::ModelLoadFailed => "model_load_failed",
            Self::DownloadFailed => "download_failed",
            Self::StoreFailed => "store_failed",
            Self::NetworkFailed => "network_failed",
            Self::SecurityRollback => "security_rollback",
            Self::SecurityFreeze => "security_freeze",
            Self::SecurityMixAndMatch => "security_mix_and_match",
            Self::SecurityEndlessData => "security_endless_data",
            Self::SecurityWrongKey => "security_wrong_key",
            Self::SecurityTampered => "security_tampered",
            Self::TelemetryDropped => "telemetry_dropped",
        }
    }
}

/// A count of one SDK event code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventCount {
    /// The code.
    pub code: SdkEventCode,
    /// How many times.
    pub count: u64,
}

/// Where the device is with a model version a rollout assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RolloutProgressReport {
    /// The model version.
    pub model: ModelRef,
    /// The state reached.
    pub state: ProgressState,
}

/// One telemetry event; the `type` field names the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TelemetryEvent {
    /// Health signals.
    Health(HealthSignal),
    /// SDK and model versions.
    Versions(VersionReport),
    /// A latency histogram.
    Latency(LatencyHistogram),
    /// A quality aggregate.
    Quality(QualityAggregate),
    /// A count of errors or security events.
    Events(EventCount),
    /// Rollout progress.
    RolloutProgress(RolloutProgressReport),
}

/// `POST /v1/device/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TelemetryBatch {
    /// Per-device sequence number, from 1, one per batch.
    pub seq: u64,
    /// Batches up to this sequence were dropped on the device and will never come (the
    /// queue is bounded); the server treats them as settled.
    #[serde(default)]
    pub abandoned_through: Option<u64>,
    /// When the device closed the batch (unix seconds).
    pub recorded_at: i64,
    /// The events.
    pub events: Vec<TelemetryEvent>,
}

impl TelemetryBatch {
    /// Parses and validates a batch from untrusted bytes; the size bound comes first.
    pub fn parse(bytes: &[u8]) -> Result<Self, TelemetryError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(TelemetryError::TooLarge);
        }
        let batch: Self = serde_json::from_slice(bytes).map_err(|_| TelemetryError::Schema)?;
        batch.validate()?;
        Ok(batch)
    }

    /// Checks counts and bounds.
    pub fn validate(&self) -> Result<(), TelemetryError> {
        if self.events.len() > MAX_EVENTS_PER_BATCH {
            return Err(TelemetryError::TooLarge);
        }
        if self.seq == 0 || self.seq > i64::MAX as u64 {
            return Err(TelemetryError::OutOfBounds("seq"));
        }
        if self.abandoned_through.is_some_and(|a| a >= self.seq) {
            return Err(TelemetryError::OutOfBounds("abandoned_through"));
        }
        for event in &self.events {
            match event {
                TelemetryEvent::Health(h) if h.battery_percent > 100 => {
                    return Err(TelemetryError::OutOfBounds("battery_percent"));
                }
                TelemetryEvent::Versions(v) if v.active.len() > MAX_ACTIVE_MODELS => {
                    return Err(TelemetryError::OutOfBounds("active"));
                }
                TelemetryEvent::Quality(q)
                    if !q.sum.is_finite() || q.sum.abs() > MAX_QUALITY_SUM =>
                {
                    return Err(TelemetryError::OutOfBounds("sum"));
                }
                _ => {}
            }
        }
        for model in self.models() {
            if model.version == 0 || model.version > i64::MAX as u64 {
                return Err(TelemetryError::OutOfBounds("version"));
            }
        }
        if self.counts_overflow() {
            return Err(TelemetryError::OutOfBounds("count"));
        }
        Ok(())
    }

    fn counts_overflow(&self) -> bool {
        self.samples() > MAX_SAMPLES_PER_BATCH
            || self.events.iter().any(|event| match event {
                TelemetryEvent::Events(e) => e.count > MAX_SAMPLES_PER_BATCH,
                _ => false,
            })
    }

    /// Latency and quality observations in the batch (saturating).
    pub fn samples(&self) -> u64 {
        self.events.iter().fold(0u64, |total, event| match event {
            TelemetryEvent::Latency(l) => l.counts.iter().fold(total, |t, c| t.saturating_add(*c)),
            TelemetryEvent::Quality(q) => total.saturating_add(q.count),
            _ => total,
        })
    }

    /// Every model version the batch mentions.
    pub fn models(&self) -> Vec<&ModelRef> {
        let mut out = Vec::new();
        for event in &self.events {
            match event {
                TelemetryEvent::Versions(v) => out.extend(v.active.iter()),
                TelemetryEvent::Latency(l) => out.push(&l.model),
                TelemetryEvent::Quality(q) => out.push(&q.model),
                TelemetryEvent::RolloutProgress(r) => out.push(&r.model),
                TelemetryEvent::Health(_) | TelemetryEvent::Events(_) => {}
            }
        }
        out
    }
}

/// Answer to a telemetry batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TelemetryAck {
    /// Every batch up to this sequence is stored (or abandoned); the device may delete them.
    pub acked_through: u64,
    /// The batch had been received before and was not counted again.
    pub duplicate: bool,
}

/// The bucket a latency in microseconds falls in.
pub fn latency_bucket(micros: u64) -> usize {
    LATENCY_BUCKET_BOUNDS_MS
        .iter()
        .position(|bound| micros <= u64::from(*bound) * 1000)
        .unwrap_or(LATENCY_BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn health() -> serde_json::Value {
        json!({"type": "health", "battery_percent": 80, "charging": true, "network": "wifi",
               "free_storage": "under10_gb", "thermal": "nominal", "completion": "completed"})
    }

    #[test]
    fn declared_batch_parses() {
        let body = json!({"seq": 1, "recorded_at": 5, "events": [health(),
            {"type": "latency", "model": {"model": "kws", "version": 2}, "counts": [0,1,2,3,4,5,6,7,8,9,10,11]},
            {"type": "events", "code": "security_rollback", "count": 1}]});
        let batch = TelemetryBatch::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(batch.events.len(), 3);
        let round = serde_json::to_value(&batch).unwrap();
        assert_eq!(
            TelemetryBatch::parse(round.to_string().as_bytes()).unwrap(),
            batch
        );
    }

    #[test]
    fn undeclared_fields_wrong_types_and_bounds_are_rejected() {
        let mut extra = health();
        extra["note"] = json!("free text");
        let cases = [
            json!({"seq": 1, "recorded_at": 5, "events": [extra]}),
            json!({"seq": 1, "recorded_at": 5, "events": [], "user": "x"}),
            json!({"seq": "1", "recorded_at": 5, "events": []}),
            json!({"seq": 1, "recorded_at": 5, "events": [{"type": "latency", "model": {"model": "kws", "version": 2}, "counts": [1,2]}]}),
            json!({"seq": 1, "recorded_at": 5, "events": [{"type": "events", "code": "my custom message", "count": 1}]}),
            json!({"seq": 1, "recorded_at": 5, "events": [{"type": "free_text", "text": "hello"}]}),
            json!({"seq": 1, "recorded_at": 5, "events": [{"type": "latency", "model": {"model": "Has Spaces", "version": 2}, "counts": [0,0,0,0,0,0,0,0,0,0,0,0]}]}),
        ];
        for case in cases {
            assert_eq!(
                TelemetryBatch::parse(case.to_string().as_bytes()),
                Err(TelemetryError::Schema),
                "{case}"
            );
        }
        let mut battery = health();
        battery["battery_percent"] = json!(101);
        let over = json!({"seq": 1, "recorded_at": 5, "events": [battery]});
        assert!(matches!(
            TelemetryBatch::parse(over.to_string().as_bytes()),
            Err(TelemetryError::OutOfBounds(_))
        ));
        let many = json!({"seq": 1, "recorded_at": 5, "events": vec![json!({"type": "events", "code": "store_failed", "count": 1}); 257]});
        assert_eq!(
            TelemetryBatch::parse(many.to_string().as_bytes()),
            Err(TelemetryError::TooLarge)
        );
        assert_eq!(
            TelemetryBatch::parse(&vec![b' '; MAX_BATCH_BYTES + 1]),
            Err(TelemetryError::TooLarge)
        );
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = TelemetryBatch::parse(&bytes);
        }

        #[test]
        fn any_declared_batch_round_trips(seq in 1u64..1_000_000, battery in 0u8..=100, counts in proptest::array::uniform12(0u32..349_525)) {
            let body = json!({"seq": seq, "recorded_at": 1, "events": [
                {"type": "health", "battery_percent": battery, "charging": false, "network": "none",
                 "free_storage": "under100_mb", "thermal": "critical", "completion": "failed"},
                {"type": "latency", "model": {"model": "m", "version": 1}, "counts": counts}]});
            let batch = TelemetryBatch::parse(body.to_string().as_bytes()).unwrap();
            let again = TelemetryBatch::parse(&serde_json::to_vec(&batch).unwrap()).unwrap();
            proptest::prop_assert_eq!(batch, again);
        }

        #[test]
        fn batches_above_the_sample_bound_are_refused(counts in proptest::prelude::any::<[u32; LATENCY_BUCKETS]>(), quality in 0u64..(1 << 23)) {
            let body = json!({"seq": 1, "recorded_at": 1, "events": [
                {"type": "latency", "model": {"model": "m", "version": 1}, "counts": counts},
                {"type": "quality", "model": {"model": "m", "version": 1}, "metric": "accuracy", "sum": 0.0, "count": quality}]});
            let total = counts.iter().map(|c| u64::from(*c)).sum::<u64>() + quality;
            let parsed = TelemetryBatch::parse(body.to_string().as_bytes());
            proptest::prop_assert_eq!(parsed.is_ok(), total <= MAX_SAMPLES_PER_BATCH);
        }
    }

    #[test]
    fn latency_buckets() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1000), 0);
        assert_eq!(latency_bucket(1001), 1);
        assert_eq!(latency_bucket(2_000_001), LATENCY_BUCKETS - 1);
    }
}
