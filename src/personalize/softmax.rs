//! Multinomial logistic regression (a linear softmax head) over embeddings.
//!
//! `logits = W·e + b`, `p = softmax(logits)`. The training objective is the mean cross-entropy
//! plus an L2 pull toward an *anchor* head (the base model's own classifier, or zero):
//! `J = mean CE + (λ/2)·(‖W − W₀‖² + ‖b − b₀‖²)`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::error::{PersonalizeError, Result};

/// A linear classifier with one row of weights and one bias per class.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxHead {
    weights: Array2<f32>,
    bias: Array1<f32>,
}

/// The gradient of the training objective with respect to a head's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// ∂J/∂W, shaped `classes × dim`.
    pub weights: Array2<f32>,
    /// ∂J/∂b, one entry per class.
    pub bias: Array1<f32>,
}

impl SoftmaxHead {
    /// A head whose weights and biases are all zero (uniform predictions).
    pub fn zeros(classes: usize, dim: usize) -> Self {
        Self {
            weights: Array2::zeros((classes, dim)),
            bias: Array1::zeros(classes),
        }
    }

    /// A head from explicit parameters, `weights` shaped `classes × dim`.
    ///
    /// Fails when the bias length does not match the number of rows or a value is not finite.
    pub fn from_parts(weights: Array2<f32>, bias: Array1<f32>) -> Result<Self> {
        if weights.nrows() != bias.len() {
            return Err(PersonalizeError::DimensionMismatch {
                expected: weights.nrows(),
                actual: bias.len(),
            });
        }
        if weights.iter().chain(bias.iter()).any(|v| !v.is_finite()) {
            return Err(PersonalizeError::NonFinite("head parameters"));
        }
        Ok(Self { weights, bias })
    }

    /// The weight matrix, `classes × dim`.
    pub fn weights(&self) -> ArrayView2<'_, f32> {
        self.weights.view()
    }

    /// The bias vector, one entry per class.
    pub fn bias(&self) -> ArrayView1<'_, f32> {
        self.bias.view()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.weights.nrows()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.weights.ncols()
    }

    /// Logits for a batch of embeddings shaped `n × dim`; returns `n × classes`.
    ///
    /// Fails when the embedding dimension does not match the head.
    pub fn logits(&self, embeddings: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.check_dim(embeddings.ncols())?;
        Ok(self.logits_unchecked(embeddings))
    }

    /// Logits for one embedding.
    ///
    /// Fails when the embedding dimension does not match the head.
    pub fn logits_one(&self, embedding: ArrayView1<'_, f32>) -> Result<Array1<f32>> {
        self.check_dim(embedding.len())?;
        Ok(self.weights.dot(&embedding) + &self.bias)
    }

    /// Appends a class with the given initial weight row and bias.
    pub(crate) fn push_class(&mut self, row: ArrayView1<'_, f32>, bias: f32) -> Result<()> {
        self.check_dim(row.len())?;
        self.weights
            .push_row(row)
            .map_err(|_| PersonalizeError::DimensionMismatch {
                expected: self.dim(),
                actual: row.len(),
            })?;
        self.bias = ndarray::concatenate![Axis(0), self.bias, Array1::from_elem(1, bias)];
        Ok(())
    }

    /// Mutable access to the parameters, for optimizers.
    pub(crate) fn params_mut(&mut self) -> (&mut Array2<f32>, &mut Array1<f32>) {
        (&mut self.weights, &mut self.bias)
    }

    /// Mean cross-entropy over the batch plus `(l2/2)·‖θ − θ_anchor‖²`, and its gradient.
    ///
    /// `labels[i]` is the class index of row `i` of `embeddings`. The loss is accumulated in
    /// `f64` so it can be compared with finite differences. Fails on shape mismatches or
    /// out-of-range labels.
    pub fn loss_and_gradient(
        &self,
        embeddings: ArrayView2<'_, f32>,
        labels: &[usize],
        anchor: &SoftmaxHead,
        l2: f32,
    ) -> Result<(f64, Gradient)> {
        self.check_batch(embeddings, labels, anchor)?;
        Ok(self.loss_and_gradient_unchecked(embeddings, labels, anchor, l2))
    }

    pub(crate) fn check_batch(
        &self,
        embeddings: ArrayView2<'_, f32>,
        labels: &[usize],
        anchor: &SoftmaxHead,
    ) -> Result<()> {
        self.check_dim(embeddings.ncols())?;
        if labels.len() != embeddings.nrows() {
            return Err(PersonalizeError::DimensionMismatch {
                expected: embeddings.nrows(),
                actual: labels.len(),
            });
        }
        if anchor.weights.dim() != self.weights.dim() {
            return Err(PersonalizeError::DimensionMismatch {
                expected: self.weights.len(),
                actual: anchor.weights.len(),
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= self.classes()) {
            return Err(PersonalizeError::UnknownClass(
                u32::try_from(bad).unwrap_or(u32::MAX),
            ));
        }
        Ok(())
    }

    pub(crate) fn logits_unchecked(&self, embeddings: ArrayView2<'_, f32>) -> Array2<f32> {
        embeddings.dot(&self.weights.t()) + &self.bias
    }

    pub(crate) fn loss_and_gradient_unchecked(
        &self,
        embeddings: ArrayView2<'_, f32>,
        labels: &[usize],
        anchor: &SoftmaxHead,
        l2: f32,
    ) -> (f64, Gradient) {
        let n = embeddings.nrows().max(1) as f64;
        let mut probs = self.logits_unchecked(embeddings);
        softmax_rows(&mut probs);
        let mut loss: f64 = probs
            .outer_iter()
            .zip(labels)
            .map(|(row, &label)| -f64::from(row[label].max(f32::MIN_POSITIVE).ln()))
            .sum::<f64>()
            / n;
        if l2 != 0.0 {
            let sq: f64 = ndarray::Zip::from(&self.weights)
                .and(&anchor.weights)
                .fold(0.0, |acc, &w, &a| acc + f64::from(w - a).powi(2))
                + ndarray::Zip::from(&self.bias)
                    .and(&anchor.bias)
                    .fold(0.0, |acc, &b, &a| acc + f64::from(b - a).powi(2));
            loss += 0.5 * f64::from(l2) * sq;
        }
        (
            loss,
            self.gradient_unchecked(embeddings, labels, anchor, l2),
        )
    }

    /// The gradient alone: what each training step needs.
    pub(crate) fn gradient_unchecked(
        &self,
        embeddings: ArrayView2<'_, f32>,
        labels: &[usize],
        anchor: &SoftmaxHead,
        l2: f32,
    ) -> Gradient {
        let n = embeddings.nrows().max(1) as f32;
        let mut probs = self.logits_unchecked(embeddings);
        softmax_rows(&mut probs);
        // probs becomes (P − Y) / n, the gradient of mean CE with respect to the logits.
        for (mut row, &label) in probs.outer_iter_mut().zip(labels) {
            row[label] -= 1.0;
            row /= n;
        }
        let mut grad_w = probs.t().dot(&embeddings);
        let mut grad_b = probs.sum_axis(Axis(0));
        if l2 != 0.0 {
            ndarray::Zip::from(&mut grad_w)
                .and(&self.weights)
                .and(&anchor.weights)
                .for_each(|g, &w, &a| *g += l2 * (w - a));
            ndarray::Zip::from(&mut grad_b)
                .and(&self.bias)
                .and(&anchor.bias)
                .for_each(|g, &b, &a| *g += l2 * (b - a));
        }
        Gradient {
            weights: grad_w,
            bias: grad_b,
        }
    }

    fn check_dim(&self, actual: usize) -> Result<()> {
        if actual == self.dim() {
            Ok(())
        } else {
            Err(PersonalizeError::DimensionMismatch {
                expected: self.dim(),
                actual,
            })
        }
    }
}

/// Replaces each row of logits with its softmax, in place and numerically stable.
///
/// A row whose logits are all `-∞` becomes uniform.
pub fn softmax_rows(logits: &mut Array2<f32>) {
    for mut row in logits.outer_iter_mut() {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        if max == f32::NEG_INFINITY {
            let uniform = 1.0 / row.len().max(1) as f32;
            row.fill(uniform);
            continue;
        }
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
}

/// The softmax of one logit vector (see [`softmax_rows`]).
pub fn softmax(logits: ArrayView1<'_, f32>) -> Array1<f32> {
    let mut m = logits.to_owned().insert_axis(Axis(0));
    softmax_rows(&mut m);
    m.remove_axis(Axis(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn toy() -> (Array2<f32>, Vec<usize>, SoftmaxHead, SoftmaxHead) {
        let x = array![
            [0.5f32, -1.0, 2.0],
            [1.5, 0.3, -0.7],
            [-0.2, 0.8, 0.1],
            [0.9, -0.4, -1.3]
        ];
        let labels = vec![0, 2, 1, 2];
        let head = SoftmaxHead::from_parts(
            array![[0.1f32, -0.2, 0.3], [0.0, 0.4, -0.1], [-0.3, 0.2, 0.05]],
            array![0.1f32, -0.1, 0.2],
        )
        .unwrap();
        let anchor = SoftmaxHead::from_parts(
            array![[0.2f32, 0.0, 0.1], [0.1, 0.1, 0.1], [0.0, -0.2, 0.0]],
            array![0.0f32, 0.05, -0.05],
        )
        .unwrap();
        (x, labels, head, anchor)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (x, labels, head, anchor) = toy();
        let l2 = 0.3;
        let (_, grad) = head
            .loss_and_gradient(x.view(), &labels, &anchor, l2)
            .unwrap();
        let eps = 1e-2f32;
        let loss_at = |h: &SoftmaxHead| {
            h.loss_and_gradient(x.view(), &labels, &anchor, l2)
                .unwrap()
                .0
        };
        for c in 0..head.classes() {
            for d in 0..head.dim() {
                let mut plus = head.clone();
                plus.weights[[c, d]] += eps;
                let mut minus = head.clone();
                minus.weights[[c, d]] -= eps;
                let numeric = (loss_at(&plus) - loss_at(&minus)) / (2.0 * f64::from(eps));
                let analytic = f64::from(grad.weights[[c, d]]);
                assert!(
                    (numeric - analytic).abs() < 1e-3,
                    "w[{c},{d}]: numeric {numeric} analytic {analytic}"
                );
            }
            let mut plus = head.clone();
            plus.bias[c] += eps;
            let mut minus = head.clone();
            minus.bias[c] -= eps;
            let numeric = (loss_at(&plus) - loss_at(&minus)) / (2.0 * f64::from(eps));
            let analytic = f64::from(grad.bias[c]);
            assert!((numeric - analytic).abs() < 1e-3, "b[{c}]");
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_handle_extremes() {
        let mut m = array![[1000.0f32, 0.0, -1000.0], [f32::NEG_INFINITY; 3]];
        softmax_rows(&mut m);
        assert!((m.row(0).sum() - 1.0).abs() < 1e-6);
        assert_eq!(m[[0, 0]], 1.0);
        assert_eq!(m.row(1).to_vec(), vec![1.0 / 3.0; 3]);
    }

    #[test]
    fn rejects_bad_shapes_and_labels() {
        let (x, _, head, anchor) = toy();
        assert!(matches!(
            head.loss_and_gradient(x.view(), &[0, 1, 2, 3], &anchor, 0.0),
            Err(PersonalizeError::UnknownClass(3))
        ));
        assert!(head.logits(Array2::zeros((1, 4)).view()).is_err());
        assert!(SoftmaxHead::from_parts(Array2::zeros((2, 3)), Array1::zeros(3)).is_err());
        assert!(
            SoftmaxHead::from_parts(Array2::from_elem((1, 1), f32::NAN), Array1::zeros(1)).is_err()
        );
    }

    #[test]
    fn push_class_extends_rows() {
        let (_, _, mut head, _) = toy();
        head.push_class(array![1.0f32, 2.0, 3.0].view(), 0.5)
            .unwrap();
        assert_eq!(head.classes(), 4);
        assert_eq!(head.bias()[3], 0.5);
        assert!(head.push_class(array![1.0f32].view(), 0.0).is_err());
    }
}
