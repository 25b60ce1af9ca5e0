//! Nearest-class-mean (prototype) head for few-shot personalization.
//!
//! Each class keeps the running mean of its examples' unit-normalized embeddings. The logit of
//! class `c` is `scale · cos(e, μ_c)`; a class with no examples gets `-∞` (probability zero).
//! Adding an example costs `O(dim)` and never revisits older examples.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::error::{PersonalizeError, Result};

/// Default logit scale: cosine similarities in `[-1, 1]` become logits in `[-10, 10]`.
pub const DEFAULT_PROTOTYPE_SCALE: f32 = 10.0;

/// Per-class sums of normalized embeddings and their counts.
#[derive(Clone, Debug, PartialEq)]
pub struct PrototypeHead {
    sums: Array2<f32>,
    counts: Vec<u32>,
    scale: f32,
}

impl PrototypeHead {
    /// An empty head for `classes` classes of `dim`-dimensional embeddings.
    ///
    /// Fails when `scale` is not a positive finite number.
    pub fn new(classes: usize, dim: usize, scale: f32) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(PersonalizeError::InvalidConfig(
                "prototype scale must be positive",
            ));
        }
        Ok(Self {
            sums: Array2::zeros((classes, dim)),
            counts: vec![0; classes],
            scale,
        })
    }

    /// Rebuilds a head from stored parts.
    pub(crate) fn from_parts(sums: Array2<f32>, counts: Vec<u32>, scale: f32) -> Result<Self> {
        if sums.nrows() != counts.len() {
            return Err(PersonalizeError::MalformedRecord("prototype counts"));
        }
        if !(scale.is_finite() && scale > 0.0) || sums.iter().any(|v| !v.is_finite()) {
            return Err(PersonalizeError::NonFinite("prototype head"));
        }
        Ok(Self {
            sums,
            counts,
            scale,
        })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.sums.ncols()
    }

    /// Examples seen per class.
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// The logit scale (inverse temperature).
    pub fn scale(&self) -> f32 {
        self.scale
    }

    pub(crate) fn sums(&self) -> ArrayView2<'_, f32> {
        self.sums.view()
    }

    /// Adds a class with no examples yet.
    pub(crate) fn push_class(&mut self) {
        let dim = self.dim();
        // Appending a zero row of the right width cannot fail.
        let _ = self.sums.push_row(Array1::zeros(dim).view());
        self.counts.push(0);
    }

    /// Folds one labelled embedding into its class mean.
    ///
    /// Fails on a wrong dimension, an unknown class or a zero/non-finite embedding.
    pub fn add(&mut self, embedding: ArrayView1<'_, f32>, class: usize) -> Result<()> {
        if embedding.len() != self.dim() {
            return Err(PersonalizeError::DimensionMismatch {
                expected: self.dim(),
                actual: embedding.len(),
            });
        }
        if class >= self.classes() {
            return Err(PersonalizeError::UnknownClass(
                u32::try_from(class).unwrap_or(u32::MAX),
            ));
        }
        let unit = normalized(embedding)?;
        let mut row = self.sums.row_mut(class);
        row += &unit;
        self.counts[class] = self.counts[class].saturating_add(1);
        Ok(())
    }

    /// Logits for a batch `n × dim`; returns `n × classes`.
    ///
    /// Fails on a wrong dimension or a zero/non-finite embedding.
    pub fn logits(&self, embeddings: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if embeddings.ncols() != self.dim() {
            return Err(PersonalizeError::DimensionMismatch {
                expected: self.dim(),
                actual: embeddings.ncols(),
            });
        }
        let centroids = self.unit_centroids();
        let mut out = Array2::zeros((embeddings.nrows(), self.classes()));
        for (e, mut row) in embeddings.outer_iter().zip(out.outer_iter_mut()) {
            let unit = normalized(e)?;
            let sims = centroids.dot(&unit);
            for ((o, s), &count) in row.iter_mut().zip(sims.iter()).zip(&self.counts) {
                *o = if count == 0 {
                    f32::NEG_INFINITY
                } else {
                    self.scale * s
                };
            }
        }
        Ok(out)
    }

    /// The unit-length class means (a zero row for an empty class).
    fn unit_centroids(&self) -> Array2<f32> {
        let mut c = self.sums.clone();
        for mut row in c.outer_iter_mut() {
            let norm = row.dot(&row).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }
        c
    }
}

/// The embedding scaled to unit L2 norm; fails when it is zero or not finite.
pub(crate) fn normalized(embedding: ArrayView1<'_, f32>) -> Result<Array1<f32>> {
    if embedding.iter().any(|v| !v.is_finite()) {
        return Err(PersonalizeError::NonFinite("embedding"));
    }
    let norm = embedding.dot(&embedding).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(PersonalizeError::NonFinite("embedding norm"));
    }
    Ok(embedding.mapv(|v| v / norm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn nearest_mean_wins_and_empty_classes_get_no_mass() {
        let mut head = PrototypeHead::new(3, 2, DEFAULT_PROTOTYPE_SCALE).unwrap();
        head.add(array![1.0f32, 0.1].view(), 0).unwrap();
        head.add(array![0.9f32, -0.1].view(), 0).unwrap();
        head.add(array![0.0f32, 2.0].view(), 1).unwrap();
        let logits = head
            .logits(array![[3.0f32, 0.2], [0.1, 1.0]].view())
            .unwrap();
        assert!(logits[[0, 0]] > logits[[0, 1]]);
        assert!(logits[[1, 1]] > logits[[1, 0]]);
        assert_eq!(logits[[0, 2]], f32::NEG_INFINITY);
        assert_eq!(head.counts(), &[2, 1, 0]);
    }

    #[test]
    fn rejects_bad_input() {
        let mut head = PrototypeHead::new(1, 2, 1.0).unwrap();
        assert!(head.add(array![0.0f32, 0.0].view(), 0).is_err());
        assert!(head.add(array![1.0f32, f32::NAN].view(), 0).is_err());
        assert!(head.add(array![1.0f32, 0.0].view(), 1).is_err());
        assert!(head.add(array![1.0f32].view(), 0).is_err());
        assert!(PrototypeHead::new(1, 2, 0.0).is_err());
    }

    #[test]
    fn new_class_can_be_added_at_run_time() {
        let mut head = PrototypeHead::new(1, 2, 1.0).unwrap();
        head.push_class();
        head.add(array![0.0f32, 1.0].view(), 1).unwrap();
        assert_eq!(head.classes(), 2);
        assert_eq!(head.counts(), &[0, 1]);
    }
}
