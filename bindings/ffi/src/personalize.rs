//! [`Personalizer`]: on-device adaptation of a model's classifier to its user, with
//! examples and the learned head kept in the encrypted store.

use std::sync::{Arc, Mutex, MutexGuard};

use edgekeep::personalize::{self as core, ClassId, Verdict};

use crate::error::Result;
use crate::guard::guard;
use crate::runtime::run_blocking;
use crate::tensor::{Tensor, to_core_inputs};

/// Held-out quality of one classifier.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct Evaluation {
    /// Examples evaluated.
    pub examples: u32,
    /// Share classified correctly (0..=1).
    pub accuracy: f32,
    /// Mean negative log-likelihood.
    pub log_loss: f32,
    /// Expected calibration error.
    pub calibration_error: f32,
}

impl From<core::Evaluation> for Evaluation {
    fn from(e: core::Evaluation) -> Self {
        Self {
            examples: e.examples,
            accuracy: e.accuracy,
            log_loss: e.log_loss,
            calibration_error: e.calibration_error,
        }
    }
}

/// Held-out quality of the base model and of the personalized one (aggregates only).
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct QualityReport {
    /// The base model.
    pub base: Evaluation,
    /// The personalized candidate.
    pub personalized: Evaluation,
    /// Examples it was trained on.
    pub training_examples: u32,
    /// Classes.
    pub classes: u32,
}

impl From<core::QualityReport> for QualityReport {
    fn from(r: core::QualityReport) -> Self {
        Self {
            base: r.base.into(),
            personalized: r.personalized.into(),
            training_examples: r.training_examples,
            classes: r.classes,
        }
    }
}

/// Why the guard kept the previous classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum GuardRejection {
    /// Too few held-out examples to tell.
    InsufficientEvidence,
    /// Held-out accuracy fell below the base's.
    AccuracyDropped,
    /// Held-out log-loss rose above the base's.
    LogLossIncreased,
}

/// The outcome of an update or retrain.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct Adaptation {
    /// Whether the new classifier went live.
    pub accepted: bool,
    /// Why not, when it did not.
    pub rejection: Option<GuardRejection>,
    /// Held-out quality, when a held-out split exists.
    pub report: Option<QualityReport>,
}

impl From<core::Adaptation> for Adaptation {
    fn from(a: core::Adaptation) -> Self {
        let rejection = match a.verdict {
            Verdict::Accepted => None,
            Verdict::Rejected(r) => Some(match r {
                core::Rejection::InsufficientEvidence => GuardRejection::InsufficientEvidence,
                core::Rejection::AccuracyDropped => GuardRejection::AccuracyDropped,
                core::Rejection::LogLossIncreased => GuardRejection::LogLossIncreased,
            }),
        };
        Self {
            accepted: rejection.is_none(),
            rejection,
            report: a.report.map(Into::into),
        }
    }
}

/// One personalized prediction.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Prediction {
    /// Probability of each class, indexed by class id; sums to 1.
    pub probabilities: Vec<f32>,
    /// The most probable class.
    pub class_id: u32,
    /// Its probability.
    pub confidence: f32,
    /// Weight of the personalized classifier in the blend (0 = base model only).
    pub personalized_weight: f32,
}

impl From<core::Prediction> for Prediction {
    fn from(p: core::Prediction) -> Self {
        Self {
            probabilities: p.probabilities.to_vec(),
            class_id: p.class.0,
            confidence: p.confidence,
            personalized_weight: p.personalized_weight,
        }
    }
}

/// Personalizes a model's classifier for this user. Open with
/// `EdgeKeep.open_personalizer`; thread-safe (calls are serialized).
#[derive(uniffi::Object)]
pub struct Personalizer {
    inner: Arc<Mutex<core::Personalizer>>,
}

impl std::fmt::Debug for Personalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Personalizer").finish_non_exhaustive()
    }
}

impl Personalizer {
    pub(crate) fn new(inner: core::Personalizer) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, core::Personalizer> {
        lock(&self.inner)
    }
}

fn lock(m: &Mutex<core::Personalizer>) -> MutexGuard<'_, core::Personalizer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[uniffi::export]
impl Personalizer {
    /// Number of classes (the base model's, then the app's own).
    pub fn classes(&self) -> u32 {
        self.lock().classes() as u32
    }

    /// Number of stored examples.
    pub fn examples(&self) -> u64 {
        self.lock().examples() as u64
    }

    /// Whether a personalized classifier is live.
    pub fn is_personalized(&self) -> bool {
        self.lock().is_personalized()
    }

    /// The name the app gave a class, if it defined it.
    pub fn class_name(&self, class_id: u32) -> Option<String> {
        self.lock().class_name(ClassId(class_id)).map(str::to_owned)
    }

    /// Defines a new class (the user's own label) and returns its id. The name is stored
    /// encrypted.
    pub fn define_class(&self, name: String) -> Result<u32> {
        guard("Personalizer.define_class", || {
            Ok(self.lock().define_class(&name)?.0)
        })
    }

    /// Runs the model on one example (batch of one) and stores its embedding with
    /// `class_id`. The classifier changes only on `update` or `retrain`.
    pub fn add_example(&self, inputs: Vec<Tensor>, class_id: u32) -> Result<u64> {
        guard("Personalizer.add_example", || {
            let inputs = to_core_inputs(&inputs)?;
            Ok(self.lock().add_example(inputs, ClassId(class_id))?.0)
        })
    }

    /// Trains on the examples added since the last update; the guard decides whether the
    /// result goes live.
    pub async fn update(&self) -> Result<Adaptation> {
        let inner = self.inner.clone();
        run_blocking("Personalizer.update", move || {
            Ok(lock(&inner).update()?.into())
        })
        .await
    }

    /// Trains from scratch on every stored example; the guard decides whether the result
    /// goes live.
    pub async fn retrain(&self) -> Result<Adaptation> {
        let inner = self.inner.clone();
        run_blocking("Personalizer.retrain", move || {
            Ok(lock(&inner).retrain()?.into())
        })
        .await
    }

    /// Classifies one example (batch of one) with the base model blended with the
    /// personalized classifier. Fails with `Personalization` when there is no classifier
    /// yet (no base classifier and nothing trained).
    pub fn predict(&self, inputs: Vec<Tensor>) -> Result<Prediction> {
        guard("Personalizer.predict", || {
            let inputs = to_core_inputs(&inputs)?;
            Ok(self.lock().predict(inputs)?.into())
        })
    }

    /// Forgets every example, class and trained classifier (the base model stays).
    pub fn reset(&self) -> Result<()> {
        guard("Personalizer.reset", || Ok(self.lock().reset()?))
    }
}
