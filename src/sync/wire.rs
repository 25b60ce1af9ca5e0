//! Converts a queued [`TelemetryBatch`] into the control plane's declared schema
//! ([`edgekeep_protocol::telemetry`]). Values that have no place in the schema are dropped
//! here, never widened.

use edgekeep_protocol::rollout::ProgressState;
use edgekeep_protocol::telemetry as wire;

use crate::telemetry::{
    BatteryBucket, ErrorKind, HealthSnapshot, LabelValue, MetricId, ModelVersion, NetworkType,
    RolloutStage, SecurityEvent, StorageBucket, TelemetryBatch, ThermalState,
};

fn model_ref(version: &ModelVersion) -> Option<wire::ModelRef> {
    Some(wire::ModelRef {
        model: wire::ModelName::new(version.slot())?,
        version: version.version(),
    })
}

fn error_code(kind: ErrorKind) -> wire::SdkEventCode {
    use wire::SdkEventCode as C;
    match kind {
        ErrorKind::ModelLoad | ErrorKind::HealthCheck => C::ModelLoadFailed,
        ErrorKind::ModelRun => C::InferenceFailed,
        ErrorKind::Store => C::StoreFailed,
        ErrorKind::Network | ErrorKind::Server | ErrorKind::Auth => C::NetworkFailed,
        ErrorKind::DownloadInterrupted => C::DownloadFailed,
    }
}

fn security_code(event: SecurityEvent) -> wire::SdkEventCode {
    use wire::SdkEventCode as C;
    match event {
        SecurityEvent::Freeze => C::SecurityFreeze,
        SecurityEvent::Rollback => C::SecurityRollback,
        SecurityEvent::MixAndMatch => C::SecurityMixAndMatch,
        SecurityEvent::EndlessData => C::SecurityEndlessData,
        SecurityEvent::BadStateSignature
        | SecurityEvent::WrongPublisherKey
        | SecurityEvent::PinMismatch => C::SecurityWrongKey,
        SecurityEvent::TamperedCiphertext
        | SecurityEvent::TamperedPlaintext
        | SecurityEvent::KeyUnwrap => C::SecurityTampered,
    }
}

fn progress(stage: RolloutStage) -> ProgressState {
    match stage {
        RolloutStage::Assigned => ProgressState::Assigned,
        RolloutStage::Downloaded => ProgressState::Downloaded,
        RolloutStage::Verified => ProgressState::Verified,
        RolloutStage::Active => ProgressState::Active,
        RolloutStage::Failed => ProgressState::Failed,
        RolloutStage::RolledBack => ProgressState::RolledBack,
    }
}

fn health(snapshot: &HealthSnapshot) -> wire::HealthSignal {
    wire::HealthSignal {
        battery_percent: match snapshot.battery {
            BatteryBucket::Critical => 10,
            BatteryBucket::Low => 30,
            BatteryBucket::Medium => 70,
            BatteryBucket::High | BatteryBucket::NoBattery => 100,
        },
        charging: snapshot.charging,
        network: match snapshot.network {
            NetworkType::None => wire::NetworkType::None,
            NetworkType::Wifi => wire::NetworkType::Wifi,
            NetworkType::Cellular => wire::NetworkType::Cellular,
            NetworkType::Unknown => wire::NetworkType::Other,
        },
        free_storage: match snapshot.storage {
            StorageBucket::Under100Mb => wire::StorageBucket::Under100Mb,
            StorageBucket::Under1Gb => wire::StorageBucket::Under1Gb,
            StorageBucket::Under10Gb => wire::StorageBucket::Under10Gb,
            StorageBucket::Over10Gb => wire::StorageBucket::Over10Gb,
        },
        thermal: match snapshot.thermal {
            ThermalState::Nominal => wire::ThermalState::Nominal,
            ThermalState::Fair => wire::ThermalState::Fair,
            ThermalState::Serious => wire::ThermalState::Serious,
            ThermalState::Critical => wire::ThermalState::Critical,
        },
        completion: wire::CompletionStatus::Completed,
    }
}

/// This SDK's version, as reported to fleet health.
pub(crate) fn sdk_version() -> edgekeep_protocol::artifact::SemVer {
    let part = |text: &str| text.parse().unwrap_or(0);
    edgekeep_protocol::artifact::SemVer::new(
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

/// The report of the SDK version and the versions serving now, one per slot.
pub(crate) fn version_report(active: &[ModelVersion]) -> wire::VersionReport {
    wire::VersionReport {
        sdk: sdk_version(),
        active: active.iter().filter_map(model_ref).collect(),
    }
}

/// The wire batch for `batch`; `abandoned_through` names the sequences the bounded queue
/// dropped before it; `versions`, when given, says what the device runs at upload time.
pub(crate) fn to_wire(
    batch: &TelemetryBatch,
    abandoned_through: Option<u64>,
    versions: Option<&wire::VersionReport>,
) -> wire::TelemetryBatch {
    let mut events = Vec::new();
    if let Some(report) = versions {
        events.push(wire::TelemetryEvent::Versions(report.clone()));
    }
    if let Some(snapshot) = &batch.health {
        events.push(wire::TelemetryEvent::Health(health(snapshot)));
    }
    for point in &batch.counters {
        let event = match (point.metric, point.label, &point.version) {
            (MetricId::Errors, Some(LabelValue::ErrorKind(kind)), _) => {
                wire::TelemetryEvent::Events(wire::EventCount {
                    code: error_code(kind),
                    count: point.value,
                })
            }
            (MetricId::SecurityEvents, Some(LabelValue::SecurityEvent(event)), _) => {
                wire::TelemetryEvent::Events(wire::EventCount {
                    code: security_code(event),
                    count: point.value,
                })
            }
            (MetricId::TelemetryBatchesDropped, None, _) => {
                wire::TelemetryEvent::Events(wire::EventCount {
                    code: wire::SdkEventCode::TelemetryDropped,
                    count: point.value,
                })
            }
            (MetricId::RolloutProgress, Some(LabelValue::RolloutStage(stage)), Some(version)) => {
                let Some(model) = model_ref(version) else {
                    continue;
                };
                wire::TelemetryEvent::RolloutProgress(wire::RolloutProgressReport {
                    model,
                    state: progress(stage),
                })
            }
            _ => continue,
        };
        events.push(event);
    }
    for point in &batch.histograms {
        let (MetricId::InferenceLatencyMs, Some(version)) = (point.metric, &point.version) else {
            continue;
        };
        let (Some(model), Ok(counts)) = (
            model_ref(version),
            <[u64; wire::LATENCY_BUCKETS]>::try_from(point.counts.as_slice()),
        ) else {
            continue;
        };
        events.push(wire::TelemetryEvent::Latency(wire::LatencyHistogram {
            model,
            counts,
        }));
    }
    for point in &batch.quantities {
        let metric = match point.metric {
            MetricId::QualityAccuracy => wire::QualityMetric::Accuracy,
            MetricId::QualityLogLoss => wire::QualityMetric::LogLoss,
            MetricId::QualityEce => wire::QualityMetric::CalibrationError,
            MetricId::QualityPersonalizedAccuracy => wire::QualityMetric::PersonalizedAccuracy,
            _ => continue,
        };
        let Some(model) = point.version.as_ref().and_then(model_ref) else {
            continue;
        };
        events.push(wire::TelemetryEvent::Quality(wire::QualityAggregate {
            model,
            metric,
            sum: point.sum,
            count: point.count,
        }));
    }
    events.truncate(wire::MAX_EVENTS_PER_BATCH);
    wire::TelemetryBatch {
        seq: batch.seq,
        abandoned_through: abandoned_through.filter(|a| *a > 0 && *a < batch.seq),
        recorded_at: batch.end,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{FixedDeviceState, Telemetry, metrics};

    #[test]
    fn every_recorded_value_maps_to_a_valid_wire_event() {
        let t = Telemetry::new();
        let v = ModelVersion::new("classifier", 2).unwrap();
        t.add(metrics::TELEMETRY_BATCHES_DROPPED, 1);
        for kind in ErrorKind::ALL {
            t.add_labeled(metrics::ERRORS, *kind, None, 1);
        }
        for event in SecurityEvent::ALL {
            t.add_labeled(metrics::SECURITY_EVENTS, *event, None, 1);
        }
        t.add_labeled(
            metrics::ROLLOUT_PROGRESS,
            RolloutStage::Active,
            Some(v.clone()),
            1,
        );
        t.observe(metrics::INFERENCE_LATENCY_MS, &v, 3.0);
        t.record(metrics::QUALITY_ACCURACY, &v, 0.5);
        t.record(metrics::QUALITY_PERSONALIZED_ACCURACY, &v, 0.75);
        let health = HealthSnapshot::from(FixedDeviceState::plugged_in().0);
        let batch = t.drain(3, Some(health));
        let wire = to_wire(
            &batch,
            Some(2),
            Some(&version_report(std::slice::from_ref(&v))),
        );
        wire.validate().unwrap();
        assert_eq!(wire.abandoned_through, Some(2));
        let expected = 1 + 1 + 1 + ErrorKind::ALL.len() + SecurityEvent::ALL.len() + 1 + 1 + 1 + 1;
        assert_eq!(wire.events.len(), expected);
        let bytes = serde_json::to_vec(&wire).unwrap();
        wire::TelemetryBatch::parse(&bytes).unwrap();
    }
}
