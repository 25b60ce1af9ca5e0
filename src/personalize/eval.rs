//! On-device evaluation: held-out split, accuracy, log-loss, calibration error and
//! temperature calibration.
//!
//! Results are aggregates only ([`Evaluation`], [`QualityReport`]): numbers and counts, never
//! examples, so they are the shape the telemetry registry may record.

use ndarray::{ArrayView1, ArrayView2};
use ring::digest;

use super::error::{PersonalizeError, Result};
use super::softmax::softmax_rows;
use crate::telemetry::{ModelVersion, Telemetry, metrics};

/// Probabilities are clamped to this floor before taking logs, bounding log-loss at ~16.1.
const PROBABILITY_FLOOR: f32 = 1e-7;
/// Equal-width confidence bins for the expected calibration error.
const CALIBRATION_BINS: usize = 10;

/// Aggregate quality of a classifier on a set of labelled examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Number of examples evaluated.
    pub examples: u32,
    /// Fraction of examples whose most probable class is the label, in `[0, 1]`.
    pub accuracy: f32,
    /// Mean negative log-probability of the label (natural log), clamped at `-ln(1e-7)`.
    pub log_loss: f32,
    /// Expected calibration error over 10 equal-width confidence bins, in `[0, 1]`.
    pub calibration_error: f32,
}

/// Base versus personalized quality on the held-out split: the only personalization figures
/// that may leave the device, as aggregates through the declared telemetry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityReport {
    /// The base model alone (its own head, or uniform if it has none).
    pub base: Evaluation,
    /// What [`predict`](super::Personalizer::predict) returns now (blended, calibrated).
    pub personalized: Evaluation,
    /// Examples the head was trained on.
    pub training_examples: u32,
    /// Number of classes the personalized head knows.
    pub classes: u32,
}

impl QualityReport {
    /// Records this report through the declared quality metrics of `version` (the base
    /// model's): the base model's accuracy, log-loss and calibration error, and the
    /// personalized accuracy. Only these aggregates leave the device.
    pub fn record(&self, telemetry: &Telemetry, version: &ModelVersion) {
        telemetry.record(
            metrics::QUALITY_ACCURACY,
            version,
            f64::from(self.base.accuracy),
        );
        telemetry.record(
            metrics::QUALITY_LOG_LOSS,
            version,
            f64::from(self.base.log_loss),
        );
        telemetry.record(
            metrics::QUALITY_ECE,
            version,
            f64::from(self.base.calibration_error),
        );
        telemetry.record(
            metrics::QUALITY_PERSONALIZED_ACCURACY,
            version,
            f64::from(self.personalized.accuracy),
        );
    }
}

/// Scores a batch of probability rows (`n × classes`) against labels.
///
/// Fails when there are no rows, the label count differs, a label is out of range or a
/// probability is not finite.
pub fn evaluate(probabilities: ArrayView2<'_, f32>, labels: &[usize]) -> Result<Evaluation> {
    if labels.is_empty() {
        return Err(PersonalizeError::NoExamples("evaluation"));
    }
    if probabilities.nrows() != labels.len() {
        return Err(PersonalizeError::DimensionMismatch {
            expected: probabilities.nrows(),
            actual: labels.len(),
        });
    }
    if probabilities.iter().any(|p| !p.is_finite()) {
        return Err(PersonalizeError::NonFinite("probabilities"));
    }
    let mut correct = 0usize;
    let mut log_loss = 0.0f64;
    let mut bin_count = [0usize; CALIBRATION_BINS];
    let mut bin_confidence = [0.0f64; CALIBRATION_BINS];
    let mut bin_correct = [0usize; CALIBRATION_BINS];
    for (row, &label) in probabilities.outer_iter().zip(labels) {
        if label >= row.len() {
            return Err(PersonalizeError::UnknownClass(
                u32::try_from(label).unwrap_or(u32::MAX),
            ));
        }
        let (top, confidence) = argmax(row);
        let hit = top == label;
        correct += usize::from(hit);
        log_loss -= f64::from(row[label].max(PROBABILITY_FLOOR).ln());
        let bin = ((confidence * CALIBRATION_BINS as f32) as usize).min(CALIBRATION_BINS - 1);
        bin_count[bin] += 1;
        bin_confidence[bin] += f64::from(confidence);
        bin_correct[bin] += usize::from(hit);
    }
    let n = labels.len() as f64;
    let ece: f64 = (0..CALIBRATION_BINS)
        .filter(|&b| bin_count[b] > 0)
        .map(|b| (bin_confidence[b] - bin_correct[b] as f64).abs() / n)
        .sum();
    Ok(Evaluation {
        examples: u32::try_from(labels.len()).unwrap_or(u32::MAX),
        accuracy: (correct as f64 / n) as f32,
        log_loss: (log_loss / n) as f32,
        calibration_error: ece as f32,
    })
}

/// Index and value of the largest entry (the first one on ties).
pub(crate) fn argmax(row: ArrayView1<'_, f32>) -> (usize, f32) {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

/// The temperature `T` minimizing held-out log-loss of `softmax(logits / T)`.
///
/// Searches `log T` in `[ln 0.05, ln 20]` by golden-section search (the NLL is unimodal in
/// `T` for a fixed set of logits). Returns `1.0` when there are no rows.
pub fn fit_temperature(logits: ArrayView2<'_, f32>, labels: &[usize]) -> f32 {
    if labels.is_empty() || logits.nrows() != labels.len() {
        return 1.0;
    }
    let nll = |log_t: f64| -> f64 {
        let t = log_t.exp() as f32;
        let mut p = logits.mapv(|v| v / t);
        softmax_rows(&mut p);
        p.outer_iter()
            .zip(labels)
            .map(|(row, &l)| {
                -f64::from(
                    row.get(l)
                        .copied()
                        .unwrap_or(PROBABILITY_FLOOR)
                        .max(PROBABILITY_FLOOR)
                        .ln(),
                )
            })
            .sum()
    };
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (0.05f64.ln(), 20f64.ln());
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (nll(a), nll(b));
    for _ in 0..40 {
        if fa <= fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - ratio * (hi - lo);
            fa = nll(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + ratio * (hi - lo);
            fb = nll(b);
        }
    }
    (((lo + hi) / 2.0).exp()) as f32
}

/// Whether the example with this id belongs to the held-out split.
///
/// Decided once per example from a hash of `(seed, id)`, so an example never moves between
/// splits as more data arrives: the guard's held-out set is never trained on.
pub fn is_held_out(seed: u64, example_id: u64, fraction: f32) -> bool {
    let mut input = [0u8; 16];
    input[..8].copy_from_slice(&seed.to_le_bytes());
    input[8..].copy_from_slice(&example_id.to_le_bytes());
    let hash = digest::digest(&digest::SHA256, &input);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    let unit = (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    unit < f64::from(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_quality_report_records_only_its_four_declared_aggregates() {
        use crate::telemetry::MetricId;
        let evaluation = |accuracy| Evaluation {
            examples: 20,
            accuracy,
            log_loss: 0.5,
            calibration_error: 0.1,
        };
        let report = QualityReport {
            base: evaluation(0.25),
            personalized: evaluation(0.75),
            training_examples: 40,
            classes: 4,
        };
        let telemetry = Telemetry::new();
        let version = ModelVersion::new("camera", 3).unwrap();
        report.record(&telemetry, &version);
        let batch = telemetry.drain(1, None);
        let mut points: Vec<(MetricId, f64, u64)> = batch
            .quantities
            .iter()
            .map(|q| {
                assert_eq!(q.version.as_ref(), Some(&version));
                (q.metric, q.sum, q.count)
            })
            .collect();
        points.sort_by_key(|p| p.0);
        assert_eq!(
            points,
            vec![
                (MetricId::QualityAccuracy, 0.25, 1),
                (MetricId::QualityLogLoss, 0.5, 1),
                (MetricId::QualityEce, f64::from(0.1f32), 1),
                (MetricId::QualityPersonalizedAccuracy, 0.75, 1),
            ]
        );
        assert!(batch.counters.is_empty() && batch.histograms.is_empty());
    }

    #[test]
    fn perfect_confident_predictions_score_perfectly() {
        let p = array![[1.0f32, 0.0], [0.0, 1.0]];
        let e = evaluate(p.view(), &[0, 1]).unwrap();
        assert_eq!(e.examples, 2);
        assert_eq!(e.accuracy, 1.0);
        assert!(e.log_loss < 1e-6);
        assert!(e.calibration_error < 1e-6);
    }

    #[test]
    fn overconfident_mistakes_show_in_every_metric() {
        let p = array![[0.9f32, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]];
        let e = evaluate(p.view(), &[0, 1, 1, 1]).unwrap();
        assert_eq!(e.accuracy, 0.25);
        let expected_loss = (-(0.9f32.ln()) - 3.0 * 0.1f32.ln()) / 4.0;
        assert!((e.log_loss - expected_loss).abs() < 1e-5);
        assert!((e.calibration_error - 0.65).abs() < 1e-5);
    }

    #[test]
    fn evaluate_rejects_bad_input() {
        let p = array![[0.5f32, 0.5]];
        assert!(evaluate(p.view(), &[]).is_err());
        assert!(evaluate(p.view(), &[2]).is_err());
        assert!(evaluate(array![[f32::NAN, 0.5]].view(), &[0]).is_err());
    }

    #[test]
    fn temperature_softens_overconfident_logits() {
        // Right 60% of the time but with huge margins: the fitted temperature must be > 1.
        let logits = array![
            [10.0f32, 0.0],
            [10.0, 0.0],
            [10.0, 0.0],
            [10.0, 0.0],
            [10.0, 0.0]
        ];
        let t = fit_temperature(logits.view(), &[0, 0, 0, 1, 1]);
        assert!(t > 5.0, "{t}");
        let calibrated_loss = {
            let mut p = logits.mapv(|v| v / t);
            softmax_rows(&mut p);
            evaluate(p.view(), &[0, 0, 0, 1, 1]).unwrap().log_loss
        };
        let raw_loss = {
            let mut p = logits.clone();
            softmax_rows(&mut p);
            evaluate(p.view(), &[0, 0, 0, 1, 1]).unwrap().log_loss
        };
        assert!(calibrated_loss < raw_loss);
    }

    #[test]
    fn held_out_split_is_stable_and_close_to_the_fraction() {
        let picked = (0..10_000u64).filter(|&i| is_held_out(3, i, 0.2)).count();
        assert!((1_800..2_200).contains(&picked), "{picked}");
        assert_eq!(is_held_out(3, 42, 0.2), is_held_out(3, 42, 0.2));
        assert!(!(0..100u64).any(|i| is_held_out(3, i, 0.0)));
    }
}
