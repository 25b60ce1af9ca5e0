//! On-device inference through tract.
//!
//! Load with [`ModelLoader`] (from a file, or from memory for decrypted artifacts), inspect
//! [`Model::inputs`] and [`Model::outputs`], run with named [`Tensor`]s. A [`Model`] is shared
//! across threads; recurrent models run through a [`StatefulSession`].
//!
//! | file | what it holds |
//! |---|---|
//! | `loader.rs` | parsing ONNX/NNEF, shape fixes, pinned inputs, output selection |
//! | `model.rs` | the runnable model, input checks, outputs, stateful sessions |
//! | `tensor.rs`, `dtype.rs`, `info.rs` | tensors, element types, declared shapes |
//! | `plans.rs` | plans per input signature for models with undetermined shapes, and their cache |
//! | `pool.rs` | optional worker threads |
//! | `nnef.rs` | ONNX → NNEF conversion |
//! | `error.rs` | [`InferenceError`] |

mod dtype;
mod error;
mod info;
mod loader;
mod model;
mod nnef;
mod plans;
mod pool;
mod tensor;

pub use dtype::{DType, Element};
pub use error::InferenceError;
pub use info::{Dim, TensorInfo};
pub use loader::{LoadReport, ModelFormat, ModelLoader};
pub use model::{Model, Outputs, StatefulSession};
pub use nnef::convert_to_nnef;
pub use plans::{DEFAULT_PLAN_CACHE_CAPACITY, PlanCacheStats};
pub use pool::ComputePool;
pub use tensor::Tensor;
