//! On-device personalization: a small head trained on the device over a frozen backbone's
//! embeddings, so a model gets better for one user without that user's data leaving the phone.
//!
//! [`Personalizer`] is the entry point: a [`Backbone`] (an inference model and the name of
//! the tensor read as embedding), optionally the base model's own linear head, a head kind
//! (softmax or prototype) and where to keep records (the encrypted store, or memory only).
//!
//! ```text
//! add_example(inputs, class) ─► backbone ─► embedding ─► encrypted store (example record)
//! update() / retrain()       ─► candidate head ─► guard on held-out ─► accepted head (stored)
//! predict(inputs)            ─► backbone ─► base head ⊕ personalized head (blended, calibrated)
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `personalizer.rs` | [`Personalizer`], its builder, prediction and adaptation flow |
//! | `backbone.rs` | [`Backbone`], [`BaseModelId`]: embedding extraction and identity |
//! | `softmax.rs` | [`SoftmaxHead`]: logistic regression, loss and gradient |
//! | `prototype.rs` | [`PrototypeHead`]: nearest class mean for few-shot |
//! | `train.rs` | [`TrainConfig`], [`Optimizer`]: seeded mini-batch SGD/Adam, incremental update |
//! | `eval.rs` | [`Evaluation`], [`QualityReport`]: held-out split, accuracy, log-loss, ECE, temperature |
//! | `guard.rs` | [`GuardPolicy`]: refuses heads worse than the base |
//! | `records.rs`, `codec.rs` | what is persisted, its byte encoding, the storage seam |
//! | `store_records.rs` | the seam over the encrypted store's key/value collection |
//! | `error.rs` | [`PersonalizeError`] |

mod backbone;
mod codec;
mod error;
pub mod eval;
pub mod guard;
mod personalizer;
pub mod prototype;
mod records;
pub mod softmax;
mod store_records;
pub mod train;

pub use backbone::{Backbone, BaseModelId, base_head_from_onnx};
pub use error::{PersonalizeError, Result};
pub use eval::{Evaluation, QualityReport};
pub use guard::{GuardPolicy, Rejection, Verdict};
pub use personalizer::{
    Adaptation, BaseChange, ClassId, ExampleId, HeadKind, Personalizer, PersonalizerBuilder,
    Prediction, Retention,
};
pub use prototype::PrototypeHead;
pub use softmax::SoftmaxHead;
pub use train::{Optimizer, TrainConfig};
