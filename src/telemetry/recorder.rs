//! [`Telemetry`]: records into the declared metrics and drains them into batches.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::health::HealthSnapshot;
use super::labels::{Label, LabelValue};
use super::metric::{Counter, Histogram, LabeledCounter, MetricId, ModelVersion, Quantity};
use super::payload::{CounterPoint, HistogramPoint, QuantityPoint, SCHEMA_VERSION, TelemetryBatch};

type Key = (MetricId, Option<LabelValue>, Option<ModelVersion>);
type SeriesKey = (MetricId, Option<ModelVersion>);

#[derive(Debug, Default)]
struct Aggregates {
    window_start: Option<i64>,
    counters: BTreeMap<Key, u64>,
    histograms: BTreeMap<SeriesKey, (Vec<u64>, f64)>,
    quantities: BTreeMap<SeriesKey, (f64, u64)>,
}

/// The in-memory recorder of declared metrics. Cheap to call from any thread.
///
/// Recording accepts only declared metric handles, closed labels, model versions and finite
/// numbers. While recording is disabled (opt-out) every call is a no-op.
#[derive(Debug)]
pub struct Telemetry {
    enabled: AtomicBool,
    aggregates: Mutex<Aggregates>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Telemetry {
    /// An enabled recorder with nothing recorded.
    pub fn new() -> Self {
        Self {
            enabled: AtomicBool::new(true),
            aggregates: Mutex::new(Aggregates::default()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Aggregates) -> R) -> Option<R> {
        if !self.is_enabled() {
            return None;
        }
        let mut agg = self.aggregates.lock().unwrap_or_else(|e| e.into_inner());
        agg.window_start.get_or_insert_with(now_secs);
        Some(f(&mut agg))
    }

    /// Whether recording is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Turns recording on or off. Turning it off also discards what was recorded.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
        if !enabled {
            *self.aggregates.lock().unwrap_or_else(|e| e.into_inner()) = Aggregates::default();
        }
    }

    /// Adds `by` to a counter.
    pub fn add(&self, counter: Counter, by: u64) {
        self.with(|agg| bump(agg, (counter.id, None, None), by));
    }

    /// Adds `by` to a labeled counter, optionally for a model version.
    pub fn add_labeled<L: Label>(
        &self,
        counter: LabeledCounter<L>,
        label: L,
        version: Option<ModelVersion>,
        by: u64,
    ) {
        self.with(|agg| bump(agg, (counter.id, Some(label.value()), version), by));
    }

    /// Records one observation for a model version; non-finite values are ignored.
    pub fn observe(&self, histogram: Histogram, version: &ModelVersion, value: f64) {
        let version = Some(version.clone());
        let Some(bucket) = histogram.bucket(value) else {
            return;
        };
        self.with(|agg| {
            let entry = agg
                .histograms
                .entry((histogram.id, version))
                .or_insert_with(|| (vec![0; histogram.bounds.len() + 1], 0.0));
            if let Some(count) = entry.0.get_mut(bucket) {
                *count = count.saturating_add(1);
            }
            entry.1 += value;
        });
    }

    /// Adds one observation of a quantity for a model version (clamped into its bounds);
    /// non-finite values are ignored.
    pub fn record(&self, quantity: Quantity, version: &ModelVersion, value: f64) {
        let version = Some(version.clone());
        let Some(value) = quantity.admit(value) else {
            return;
        };
        self.with(|agg| {
            let entry = agg
                .quantities
                .entry((quantity.id, version))
                .or_insert((0.0, 0));
            entry.0 += value;
            entry.1 = entry.1.saturating_add(1);
        });
    }

    /// The current value of a counter (tests, diagnostics).
    pub fn counter_value(&self, counter: Counter) -> u64 {
        self.peek((counter.id, None, None))
    }

    /// The current value of a labeled counter (tests, diagnostics).
    pub fn labeled_value<L: Label>(
        &self,
        counter: LabeledCounter<L>,
        label: L,
        version: Option<ModelVersion>,
    ) -> u64 {
        self.peek((counter.id, Some(label.value()), version))
    }

    fn peek(&self, key: Key) -> u64 {
        let agg = self.aggregates.lock().unwrap_or_else(|e| e.into_inner());
        agg.counters.get(&key).copied().unwrap_or(0)
    }

    /// Moves everything recorded into a batch with sequence `seq` and starts a new window.
    pub fn drain(&self, seq: u64, health: Option<HealthSnapshot>) -> TelemetryBatch {
        let agg = std::mem::take(&mut *self.aggregates.lock().unwrap_or_else(|e| e.into_inner()));
        let end = now_secs();
        TelemetryBatch {
            seq,
            schema: SCHEMA_VERSION,
            start: agg.window_start.unwrap_or(end),
            end,
            counters: agg
                .counters
                .into_iter()
                .map(|((metric, label, version), value)| CounterPoint {
                    metric,
                    label,
                    version,
                    value,
                })
                .collect(),
            histograms: agg
                .histograms
                .into_iter()
                .map(|((metric, version), (counts, sum))| HistogramPoint {
                    metric,
                    version,
                    counts,
                    sum,
                })
                .collect(),
            quantities: agg
                .quantities
                .into_iter()
                .map(|((metric, version), (sum, count))| QuantityPoint {
                    metric,
                    version,
                    sum,
                    count,
                })
                .collect(),
            health,
        }
    }

    /// Puts the values of a batch that could not be queued back into the recorder.
    pub fn restore(&self, batch: &TelemetryBatch) {
        self.with(|agg| {
            for point in &batch.counters {
                bump(
                    agg,
                    (point.metric, point.label, point.version.clone()),
                    point.value,
                );
            }
            for point in &batch.histograms {
                let entry = agg
                    .histograms
                    .entry((point.metric, point.version.clone()))
                    .or_insert_with(|| (vec![0; point.counts.len()], 0.0));
                for (slot, add) in entry.0.iter_mut().zip(&point.counts) {
                    *slot = slot.saturating_add(*add);
                }
                entry.1 += point.sum;
            }
            for point in &batch.quantities {
                let entry = agg
                    .quantities
                    .entry((point.metric, point.version.clone()))
                    .or_insert((0.0, 0));
                entry.0 += point.sum;
                entry.1 = entry.1.saturating_add(point.count);
            }
        });
    }
}

fn bump(agg: &mut Aggregates, key: Key, by: u64) {
    let slot = agg.counters.entry(key).or_insert(0);
    *slot = slot.saturating_add(by);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::*;
    use crate::telemetry::{ErrorKind, SecurityEvent};

    #[test]
    fn records_and_drains() {
        let t = Telemetry::new();
        let v3 = ModelVersion::new("classifier", 3).unwrap();
        t.add(TELEMETRY_BATCHES_DROPPED, 2);
        t.add_labeled(ERRORS, ErrorKind::ModelRun, None, 1);
        t.add_labeled(SECURITY_EVENTS, SecurityEvent::Rollback, None, 1);
        t.observe(INFERENCE_LATENCY_MS, &v3, 4.0);
        t.observe(INFERENCE_LATENCY_MS, &v3, f64::NAN);
        t.record(QUALITY_ACCURACY, &v3, 0.9);
        t.record(QUALITY_ACCURACY, &v3, 2.0);
        let batch = t.drain(1, None);
        assert_eq!(batch.counters.len(), 3);
        assert_eq!(batch.histograms[0].counts.iter().sum::<u64>(), 1);
        assert_eq!(batch.histograms[0].counts[2], 1);
        assert_eq!(batch.quantities[0].sum, 1.9);
        assert_eq!(batch.quantities[0].count, 2);
        assert!(t.drain(2, None).is_empty());
    }

    #[test]
    fn opt_out_discards_and_ignores() {
        let t = Telemetry::new();
        t.add(TELEMETRY_BATCHES_DROPPED, 1);
        t.set_enabled(false);
        t.add(TELEMETRY_BATCHES_DROPPED, 1);
        assert_eq!(t.counter_value(TELEMETRY_BATCHES_DROPPED), 0);
        t.set_enabled(true);
        t.add(TELEMETRY_BATCHES_DROPPED, 1);
        assert_eq!(t.counter_value(TELEMETRY_BATCHES_DROPPED), 1);
    }

    #[test]
    fn restore_puts_values_back() {
        let t = Telemetry::new();
        t.add(TELEMETRY_BATCHES_DROPPED, 5);
        t.observe(
            INFERENCE_LATENCY_MS,
            &ModelVersion::new("m", 1).unwrap(),
            1.0,
        );
        let batch = t.drain(1, None);
        t.restore(&batch);
        let again = t.drain(2, None);
        assert_eq!(again.counters, batch.counters);
        assert_eq!(again.histograms, batch.histograms);
    }
}
