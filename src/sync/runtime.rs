//! Delivered models: loaded from memory through [`crate::inference`] (the plaintext never
//! touches disk) and probed before they may serve.
//!
//! Loading and running are guarded against panics inside the runtime by the inference
//! module, so a hostile or broken model is a typed error.

use crate::inference::{DType, Model, Tensor};

use super::error::SyncError;

/// Parses model bytes from memory and optimizes them.
pub(crate) fn load(bytes: &[u8]) -> Result<Model, SyncError> {
    Model::from_bytes(bytes).map_err(|_| SyncError::ModelRejected("model does not load"))
}

/// Runs the model once on zero inputs of its declared types (symbolic dimensions set to 1)
/// and checks that every floating-point output is finite.
pub(crate) fn health_check(model: &Model) -> Result<(), SyncError> {
    let probe = model
        .inputs()
        .iter()
        .map(|info| {
            let shape = info.concrete_shape(1);
            Tensor::zeros(info.dtype, &shape).map(|t| (info.name.clone(), t))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SyncError::ModelRejected("model inputs cannot be probed"))?;
    let outputs = model
        .run(probe)
        .map_err(|_| SyncError::ModelRejected("model does not run on the probe input"))?;
    let finite = outputs.iter().all(|(_, tensor)| match tensor.dtype() {
        DType::F32 => tensor
            .as_slice::<f32>()
            .is_ok_and(|s| s.iter().all(|x| x.is_finite())),
        DType::F64 => tensor
            .as_slice::<f64>()
            .is_ok_and(|s| s.iter().all(|x| x.is_finite())),
        _ => true,
    });
    if finite {
        Ok(())
    } else {
        Err(SyncError::ModelRejected("model output is not finite"))
    }
}
