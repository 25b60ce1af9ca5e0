//! [`Model`]: a loaded model to inspect and run, shared across threads.

use std::sync::Arc;

use edgekeep::inference as core;

use crate::error::Result;
use crate::guard::guard;
use crate::runtime::run_blocking;
use crate::tensor::{Tensor, TensorSpec, to_core_inputs};

/// A loaded, optimized model. Thread-safe: run it from several threads at once.
#[derive(Debug, uniffi::Object)]
pub struct Model {
    inner: core::Model,
}

impl Model {
    pub(crate) fn new(inner: core::Model) -> Arc<Self> {
        Arc::new(Self { inner })
    }

    pub(crate) fn load_path(path: String) -> Result<Arc<Self>> {
        Ok(Self::new(core::ModelLoader::new().load_path(path)?))
    }

    pub(crate) fn load_bytes(bytes: &[u8]) -> Result<Arc<Self>> {
        Ok(Self::new(core::ModelLoader::new().load_bytes(bytes)?))
    }
}

#[uniffi::export]
impl Model {
    /// The inputs the model takes, in declaration order.
    pub fn inputs(&self) -> Vec<TensorSpec> {
        self.inner.inputs().iter().map(TensorSpec::from).collect()
    }

    /// The outputs the model produces, in declaration order.
    pub fn outputs(&self) -> Vec<TensorSpec> {
        self.inner.outputs().iter().map(TensorSpec::from).collect()
    }

    /// Wall time the load took, in milliseconds.
    pub fn load_ms(&self) -> f64 {
        self.inner.load_report().load_ms
    }

    /// Runs the model on named inputs (any order) and returns every output, in declaration
    /// order. Blocks the calling thread: prefer [`run_async`](Self::run_async) on a UI thread.
    ///
    /// Fails with `InvalidInput` for an unknown, missing or repeated input, a wrong element
    /// type or shape, and `Inference` when the model fails.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        guard("Model.run", || run(&self.inner, &inputs))
    }

    /// [`run`](Self::run) on the SDK's worker threads.
    pub async fn run_async(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let model = self.inner.clone();
        run_blocking("Model.run_async", move || run(&model, &inputs)).await
    }
}

fn run(model: &core::Model, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let outputs = model.run(to_core_inputs(inputs)?)?;
    outputs
        .iter()
        .map(|(name, tensor)| Tensor::from_core(name, tensor))
        .collect()
}
