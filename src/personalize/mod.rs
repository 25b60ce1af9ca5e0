//! On-device personalization: a small head trained on the device over a frozen backbone's
//! embeddings, so a model gets better for one user without that user's data leaving the phone.
//!
//! | file | what it holds |
//! |---|---|
//! | `softmax.rs` | [`SoftmaxHead`]: logistic regression, loss and gradient |
//! | `prototype.rs` | [`PrototypeHead`]: nearest class mean for few-shot |
//! | `train.rs` | [`TrainConfig`], [`Optimizer`]: seeded mini-batch SGD/Adam, incremental update |
//! | `eval.rs` | [`Evaluation`], [`QualityReport`]: held-out split, accuracy, log-loss, ECE, temperature |
//! | `guard.rs` | [`GuardPolicy`]: refuses heads worse than the base |
//! | `codec.rs` | the byte encoding of stored records |
//! | `error.rs` | [`PersonalizeError`] |

#[allow(dead_code)]
mod codec;
mod error;
pub mod eval;
pub mod guard;
pub mod prototype;
pub mod softmax;
pub mod train;

pub use error::{PersonalizeError, Result};
pub use eval::{Evaluation, QualityReport};
pub use guard::{GuardPolicy, Rejection, Verdict};
pub use prototype::PrototypeHead;
pub use softmax::SoftmaxHead;
pub use train::{Optimizer, TrainConfig};
