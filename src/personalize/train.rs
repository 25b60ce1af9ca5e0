//! Seeded mini-batch training of a [`SoftmaxHead`] with SGD (momentum) or Adam.
//!
//! The regularizer is expressed as a prior worth `l2_to_anchor` examples: the per-step L2
//! coefficient is `l2_to_anchor / n` for `n` training examples, so with scarce data the anchor
//! (base weights) dominates and with plenty of data the user's examples do.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;

use super::error::{PersonalizeError, Result};
use super::softmax::{Gradient, SoftmaxHead};

/// The update rule applied to each mini-batch gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent with classical momentum.
    Sgd {
        /// Step size.
        learning_rate: f32,
        /// Momentum coefficient in `[0, 1)`; zero gives plain SGD.
        momentum: f32,
    },
    /// Adam (Kingma & Ba) with bias correction.
    Adam {
        /// Step size.
        learning_rate: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Denominator guard.
        epsilon: f32,
    },
}

impl Optimizer {
    /// Adam with the usual moment decays and the given step size.
    pub fn adam(learning_rate: f32) -> Self {
        Optimizer::Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }

    fn validate(&self) -> Result<()> {
        let ok = match *self {
            Optimizer::Sgd {
                learning_rate,
                momentum,
            } => learning_rate > 0.0 && learning_rate.is_finite() && (0.0..1.0).contains(&momentum),
            Optimizer::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => {
                learning_rate > 0.0
                    && learning_rate.is_finite()
                    && (0.0..1.0).contains(&beta1)
                    && (0.0..1.0).contains(&beta2)
                    && epsilon > 0.0
            }
        };
        if ok {
            Ok(())
        } else {
            Err(PersonalizeError::InvalidConfig(
                "optimizer hyper-parameters",
            ))
        }
    }
}

/// How a softmax head is trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// The update rule.
    pub optimizer: Optimizer,
    /// Passes over the training set for a full retrain.
    pub epochs: u32,
    /// Examples per mini-batch.
    pub batch_size: usize,
    /// Strength of the pull toward the anchor head, in examples' worth (see module docs).
    pub l2_to_anchor: f32,
    /// Seed of the shuffling generator; the same seed and data give bit-identical weights.
    pub seed: u64,
    /// Passes over (new examples + replayed old ones) for an incremental update.
    pub update_epochs: u32,
    /// Old examples replayed alongside new ones in an incremental update.
    pub replay: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::adam(0.01),
            epochs: 20,
            batch_size: 32,
            l2_to_anchor: 1.0,
            seed: 0x6564_6765_6b65_6570,
            update_epochs: 3,
            replay: 64,
        }
    }
}

impl TrainConfig {
    /// Checks every field; returns a typed error naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        if self.batch_size == 0 {
            return Err(PersonalizeError::InvalidConfig("batch_size must be > 0"));
        }
        if !(self.l2_to_anchor.is_finite() && self.l2_to_anchor >= 0.0) {
            return Err(PersonalizeError::InvalidConfig(
                "l2_to_anchor must be finite and >= 0",
            ));
        }
        Ok(())
    }
}

/// Trains from `start` for `config.epochs` epochs and returns the new head.
///
/// `anchor` is the head the regularizer pulls toward (same shape as `start`). Fails on shape
/// mismatches, unknown labels, an empty set, a bad config or a diverged (non-finite) result.
/// Cost: `O(epochs · n · dim · classes)`.
pub fn fit(
    start: &SoftmaxHead,
    anchor: &SoftmaxHead,
    embeddings: ArrayView2<'_, f32>,
    labels: &[usize],
    config: &TrainConfig,
) -> Result<SoftmaxHead> {
    run(
        start,
        anchor,
        embeddings,
        labels,
        config,
        config.epochs,
        labels.len(),
        config.seed,
    )
}

/// Incrementally updates `current` with freshly added examples, without a full retrain.
///
/// Runs `config.update_epochs` passes over the new examples plus up to `config.replay` old
/// ones drawn with `seed` (so earlier classes are not forgotten). `total_examples` is the size
/// of the whole training set and sets the regularizer's strength as in [`fit`].
#[allow(clippy::too_many_arguments)]
pub fn update(
    current: &SoftmaxHead,
    anchor: &SoftmaxHead,
    new: (ArrayView2<'_, f32>, &[usize]),
    old: (ArrayView2<'_, f32>, &[usize]),
    total_examples: usize,
    config: &TrainConfig,
    seed: u64,
) -> Result<SoftmaxHead> {
    let (new_x, new_y) = new;
    let (old_x, old_y) = old;
    if old_x.nrows() != old_y.len() {
        return Err(PersonalizeError::DimensionMismatch {
            expected: old_x.nrows(),
            actual: old_y.len(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picks: Vec<usize> = (0..old_y.len()).collect();
    picks.shuffle(&mut rng);
    picks.truncate(config.replay);
    let replay_x = old_x.select(Axis(0), &picks);
    let x = ndarray::concatenate(Axis(0), &[new_x, replay_x.view()]).map_err(|_| {
        PersonalizeError::DimensionMismatch {
            expected: current.dim(),
            actual: new_x.ncols(),
        }
    })?;
    let y: Vec<usize> = new_y
        .iter()
        .copied()
        .chain(picks.iter().map(|&i| old_y[i]))
        .collect();
    run(
        current,
        anchor,
        x.view(),
        &y,
        config,
        config.update_epochs,
        total_examples.max(y.len()),
        seed,
    )
}

#[allow(clippy::too_many_arguments)]
fn run(
    start: &SoftmaxHead,
    anchor: &SoftmaxHead,
    embeddings: ArrayView2<'_, f32>,
    labels: &[usize],
    config: &TrainConfig,
    epochs: u32,
    total_examples: usize,
    seed: u64,
) -> Result<SoftmaxHead> {
    config.validate()?;
    start.check_batch(embeddings, labels, anchor)?;
    if labels.is_empty() {
        return Err(PersonalizeError::NoExamples("training"));
    }
    let l2 = config.l2_to_anchor / total_examples.max(1) as f32;
    let mut head = start.clone();
    let mut state = OptimizerState::new(&config.optimizer, head.classes(), head.dim());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        // One contiguous shuffled copy per epoch; mini-batches are then views into it.
        let x = embeddings.select(Axis(0), &order);
        let y: Vec<usize> = order.iter().map(|&i| labels[i]).collect();
        for start in (0..y.len()).step_by(config.batch_size) {
            let end = (start + config.batch_size).min(y.len());
            let grad = head.gradient_unchecked(
                x.slice(ndarray::s![start..end, ..]),
                &y[start..end],
                anchor,
                l2,
            );
            state.step(&mut head, &grad);
        }
    }
    let (w, b) = head.params_mut();
    if w.iter().chain(b.iter()).any(|v| !v.is_finite()) {
        return Err(PersonalizeError::NonFinite("trained head"));
    }
    Ok(head)
}

/// Per-parameter optimizer memory.
enum OptimizerState {
    Sgd {
        learning_rate: f32,
        momentum: f32,
        velocity_w: Array2<f32>,
        velocity_b: Array1<f32>,
    },
    Adam {
        learning_rate: f32,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        step: i32,
        m_w: Array2<f32>,
        v_w: Array2<f32>,
        m_b: Array1<f32>,
        v_b: Array1<f32>,
    },
}

impl OptimizerState {
    fn new(optimizer: &Optimizer, classes: usize, dim: usize) -> Self {
        match *optimizer {
            Optimizer::Sgd {
                learning_rate,
                momentum,
            } => OptimizerState::Sgd {
                learning_rate,
                momentum,
                velocity_w: Array2::zeros((classes, dim)),
                velocity_b: Array1::zeros(classes),
            },
            Optimizer::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => OptimizerState::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
                step: 0,
                m_w: Array2::zeros((classes, dim)),
                v_w: Array2::zeros((classes, dim)),
                m_b: Array1::zeros(classes),
                v_b: Array1::zeros(classes),
            },
        }
    }

    fn step(&mut self, head: &mut SoftmaxHead, grad: &Gradient) {
        let (w, b) = head.params_mut();
        match self {
            OptimizerState::Sgd {
                learning_rate,
                momentum,
                velocity_w,
                velocity_b,
            } => {
                let (lr, mu) = (*learning_rate, *momentum);
                ndarray::Zip::from(&mut *velocity_w)
                    .and(&grad.weights)
                    .and(&mut *w)
                    .for_each(|v, &g, p| {
                        *v = mu * *v + g;
                        *p -= lr * *v;
                    });
                ndarray::Zip::from(&mut *velocity_b)
                    .and(&grad.bias)
                    .and(&mut *b)
                    .for_each(|v, &g, p| {
                        *v = mu * *v + g;
                        *p -= lr * *v;
                    });
            }
            OptimizerState::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
                step,
                m_w,
                v_w,
                m_b,
                v_b,
            } => {
                *step = step.saturating_add(1);
                let (b1, b2, eps) = (*beta1, *beta2, *epsilon);
                let lr_t = *learning_rate * (1.0 - b2.powi(*step)).sqrt() / (1.0 - b1.powi(*step));
                let update = |m: &mut f32, v: &mut f32, g: f32, p: &mut f32| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p -= lr_t * *m / (v.sqrt() + eps);
                };
                ndarray::Zip::from(&mut *m_w)
                    .and(&mut *v_w)
                    .and(&grad.weights)
                    .and(&mut *w)
                    .for_each(|m, v, &g, p| update(m, v, g, p));
                ndarray::Zip::from(&mut *m_b)
                    .and(&mut *v_b)
                    .and(&grad.bias)
                    .and(&mut *b)
                    .for_each(|m, v, &g, p| update(m, v, g, p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::RngExt;

    /// Well separated Gaussian-ish blobs: class `c` is centred on `3·e_c`.
    fn blobs(n: usize, classes: usize, dim: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Array2::zeros((n, dim));
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % classes;
            for d in 0..dim {
                x[[i, d]] = rng.random_range(-0.5f32..0.5) + if d == c { 3.0 } else { 0.0 };
            }
            y.push(c);
        }
        (x, y)
    }

    fn accuracy(head: &SoftmaxHead, x: &Array2<f32>, y: &[usize]) -> f32 {
        let logits = head.logits(x.view()).unwrap();
        let correct = logits
            .outer_iter()
            .zip(y)
            .filter(|(row, label)| {
                let best = row
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |acc, (i, &v)| {
                            if v > acc.1 { (i, v) } else { acc }
                        },
                    )
                    .0;
                best == **label
            })
            .count();
        correct as f32 / y.len() as f32
    }

    #[test]
    fn separable_set_reaches_full_accuracy_with_adam_and_sgd() {
        let (x, y) = blobs(200, 4, 8, 1);
        let zero = SoftmaxHead::zeros(4, 8);
        for optimizer in [
            Optimizer::adam(0.05),
            Optimizer::Sgd {
                learning_rate: 0.1,
                momentum: 0.9,
            },
        ] {
            let config = TrainConfig {
                optimizer,
                l2_to_anchor: 0.0,
                ..TrainConfig::default()
            };
            let head = fit(&zero, &zero, x.view(), &y, &config).unwrap();
            assert_eq!(accuracy(&head, &x, &y), 1.0, "{optimizer:?}");
        }
    }

    #[test]
    fn same_seed_is_bit_identical_and_other_seed_differs() {
        let (x, y) = blobs(100, 3, 6, 2);
        let zero = SoftmaxHead::zeros(3, 6);
        let config = TrainConfig::default();
        let a = fit(&zero, &zero, x.view(), &y, &config).unwrap();
        let b = fit(&zero, &zero, x.view(), &y, &config).unwrap();
        assert_eq!(a, b);
        let other = TrainConfig { seed: 7, ..config };
        let c = fit(&zero, &zero, x.view(), &y, &other).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn regularizer_keeps_weights_near_base_when_data_is_scarce() {
        let (x, y) = blobs(400, 3, 6, 3);
        let base = SoftmaxHead::from_parts(
            Array2::from_shape_fn((3, 6), |(c, d)| if c == d { 1.0 } else { -0.2 }),
            Array1::zeros(3),
        )
        .unwrap();
        // The user's labels are a permutation of the base's: the data pulls away from base.
        let y: Vec<usize> = y.iter().map(|&c| (c + 1) % 3).collect();
        let drift = |n: usize, l2: f32| {
            let config = TrainConfig {
                l2_to_anchor: l2,
                ..TrainConfig::default()
            };
            let head = fit(
                &base,
                &base,
                x.slice(ndarray::s![..n, ..]),
                &y[..n],
                &config,
            )
            .unwrap();
            (&head.weights() - &base.weights())
                .mapv(|v| v * v)
                .sum()
                .sqrt()
        };
        let scarce_regularized = drift(6, 50.0);
        let scarce_free = drift(6, 0.0);
        let plenty_regularized = drift(400, 50.0);
        assert!(
            scarce_regularized < 0.5 * scarce_free,
            "{scarce_regularized} vs {scarce_free}"
        );
        assert!(
            scarce_regularized < 0.5 * plenty_regularized,
            "{scarce_regularized} vs {plenty_regularized}"
        );
    }

    #[test]
    fn incremental_update_learns_new_examples_without_full_retrain() {
        let (x, y) = blobs(120, 3, 6, 4);
        let zero = SoftmaxHead::zeros(3, 6);
        let config = TrainConfig::default();
        let head = fit(
            &zero,
            &zero,
            x.slice(ndarray::s![..60, ..]),
            &y[..60],
            &config,
        )
        .unwrap();
        let mut grown = head.clone();
        grown.push_class(Array1::zeros(6).view(), 0.0).unwrap();
        let (new_x, _) = blobs(12, 4, 6, 5);
        let new_rows: Vec<usize> = (0..12).filter(|i| i % 4 == 3).collect();
        let new_x = new_x.select(Axis(0), &new_rows);
        let new_y = vec![3; new_x.nrows()];
        let anchor = SoftmaxHead::zeros(4, 6);
        let updated = update(
            &grown,
            &anchor,
            (new_x.view(), &new_y),
            (x.slice(ndarray::s![..60, ..]), &y[..60]),
            63,
            &TrainConfig {
                update_epochs: 20,
                ..config
            },
            9,
        )
        .unwrap();
        assert_eq!(accuracy(&updated, &new_x, &new_y), 1.0);
        assert!(accuracy(&updated, &x, &y) > 0.95);
    }

    #[test]
    fn rejects_bad_config_and_empty_sets() {
        let zero = SoftmaxHead::zeros(2, 2);
        let x = Array2::zeros((0, 2));
        assert!(matches!(
            fit(&zero, &zero, x.view(), &[], &TrainConfig::default()),
            Err(PersonalizeError::NoExamples(_))
        ));
        let bad = TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        };
        assert!(fit(&zero, &zero, Array2::zeros((1, 2)).view(), &[0], &bad).is_err());
        let bad = TrainConfig {
            optimizer: Optimizer::adam(f32::NAN),
            ..TrainConfig::default()
        };
        assert!(fit(&zero, &zero, Array2::zeros((1, 2)).view(), &[0], &bad).is_err());
    }
}
