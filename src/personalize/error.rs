//! The typed error of the personalization module.
//!
//! Messages are log-safe: they name the reason and, at most, sizes and class ids. They never
//! carry embeddings, inputs, labels' names, weights or model bytes.

use thiserror::Error;

/// Everything that can go wrong while personalizing a model on the device.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PersonalizeError {
    /// An embedding or weight matrix has the wrong number of features.
    #[error("dimension mismatch: expected {expected}, got {actual}")]
    DimensionMismatch {
        /// The dimension the head or base model was built for.
        expected: usize,
        /// The dimension that was supplied.
        actual: usize,
    },
    /// A label refers to a class that was never defined.
    #[error("class {0} is not defined")]
    UnknownClass(u32),
    /// An embedding, weight or probability contains NaN or infinity.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// There is nothing to train or evaluate on.
    #[error("no examples available for {0}")]
    NoExamples(&'static str),
    /// A configuration value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// Neither a base head nor an accepted personalized head exists, so nothing can predict.
    #[error("no classifier available: the base model has no head and none has been trained")]
    NoClassifier,
    /// A stored head or embedding was built on another base model (another embedding space).
    #[error("stored personalization belongs to a different base model")]
    BaseModelChanged,
    /// A stored record could not be decoded; nothing was deleted.
    #[error("stored personalization record is malformed: {0}")]
    MalformedRecord(&'static str),
    /// The backbone model does not fit the personalizer's needs.
    #[error("unsupported backbone: {0}")]
    UnsupportedModel(&'static str),
    /// Running the backbone failed.
    #[error("backbone inference failed")]
    Inference(#[source] crate::inference::InferenceError),
    /// The encrypted store failed (a wrong key, tampering, I/O); nothing was deleted.
    #[error("encrypted store failed")]
    Store(#[source] crate::store::StoreError),
}

/// Result alias for this module.
pub type Result<T, E = PersonalizeError> = std::result::Result<T, E>;
