//! A delivered model loaded into tract from memory (the plaintext never touches disk).
//!
//! Kept deliberately small: load, probe (health check) and run on `f32` tensors. Loading
//! and running are guarded against panics inside tract, so a hostile or broken model is a
//! typed error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::error::SyncError;

/// A verified model version, optimized and ready to run. Cheap to clone (shared plan).
#[derive(Clone)]
pub struct ServingModel(Arc<TypedRunnableModel>);

impl std::fmt::Debug for ServingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingModel")
            .field("inputs", &self.input_count())
            .finish_non_exhaustive()
    }
}

fn guarded<T>(work: impl FnOnce() -> TractResult<T>, reason: &'static str) -> Result<T, SyncError> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) | Err(_) => Err(SyncError::ModelRejected(reason)),
    }
}

impl ServingModel {
    /// Parses ONNX bytes from memory and optimizes them.
    pub(crate) fn load(bytes: &[u8]) -> Result<Self, SyncError> {
        let plan = guarded(
            || {
                let mut reader = bytes;
                tract_onnx::onnx()
                    .model_for_read(&mut reader)?
                    .into_optimized()?
                    .into_runnable()
            },
            "model does not load",
        )?;
        Ok(Self(plan))
    }

    /// Number of inputs.
    pub fn input_count(&self) -> usize {
        self.0.model().inputs.len()
    }

    /// The optimized tract plan, for callers that run tract directly.
    pub fn plan(&self) -> &Arc<TypedRunnableModel> {
        &self.0
    }

    /// Runs the model on `f32` inputs given as `(shape, values)` in input order and returns
    /// every output that is `f32`, flattened, in output order.
    pub fn run_f32(&self, inputs: &[(&[usize], &[f32])]) -> Result<Vec<Vec<f32>>, SyncError> {
        let plan = self.0.clone();
        guarded(
            || {
                let values = inputs
                    .iter()
                    .map(|(shape, data)| Ok(Tensor::from_shape(shape, data)?.into_tvalue()))
                    .collect::<TractResult<TVec<TValue>>>()?;
                let outputs = plan.run(values)?;
                Ok(outputs
                    .iter()
                    .filter(|v| v.datum_type() == DatumType::F32)
                    .filter_map(|v| {
                        let view = v.try_as_plain_ram().ok()?;
                        view.as_slice::<f32>().ok().map(<[f32]>::to_vec)
                    })
                    .collect())
            },
            "model does not run on these inputs",
        )
    }

    /// Runs the model once on zero inputs of its declared types (symbolic dimensions set
    /// to 1) and checks that every floating-point output is finite.
    pub(crate) fn health_check(&self) -> Result<(), SyncError> {
        let plan = self.0.clone();
        let finite = guarded(
            || {
                let model = plan.model();
                let mut values = TVec::new();
                for ix in 0..model.inputs.len() {
                    let fact = model.input_fact(ix)?;
                    let shape: Vec<usize> = fact
                        .shape
                        .iter()
                        .map(|d| d.to_i64().map_or(1, |n| usize::try_from(n).unwrap_or(1)))
                        .collect();
                    values.push(Tensor::zero_dt(fact.datum_type, &shape)?.into_tvalue());
                }
                let outputs = plan.run(values)?;
                Ok(outputs.iter().all(|v| match v.datum_type() {
                    DatumType::F32 => v.try_as_plain_ram().is_ok_and(|view| {
                        view.as_slice::<f32>()
                            .is_ok_and(|s| s.iter().all(|x| x.is_finite()))
                    }),
                    DatumType::F64 => v.try_as_plain_ram().is_ok_and(|view| {
                        view.as_slice::<f64>()
                            .is_ok_and(|s| s.iter().all(|x| x.is_finite()))
                    }),
                    _ => true,
                }))
            },
            "model does not run on the probe input",
        )?;
        if finite {
            Ok(())
        } else {
            Err(SyncError::ModelRejected("model output is not finite"))
        }
    }
}
