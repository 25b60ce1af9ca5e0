//! A loaded, optimized model and its runs.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::Tensor as TractTensor;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::runtime::RunOptions;

use super::error::{guarded, reason};
use super::plans::{Plan, PlanCacheStats, Signature, Specializer};
use super::{ComputePool, Dim, InferenceError, LoadReport, ModelLoader, Tensor, TensorInfo};

/// A model ready to run: optimized once, then shared.
///
/// `Model` is `Send + Sync` and cheap to clone (an `Arc`): many threads may call
/// [`Model::run`] at once, each run getting its own scratch state. Symbolic dimensions (batch,
/// sequence) are resolved per run, so one loaded model serves any batch size. A model whose
/// file leaves shapes undetermined gets a plan per input signature instead, built on first use
/// and cached (see [`ModelLoader::with_plan_cache_capacity`]).
#[derive(Clone)]
pub struct Model(Arc<Inner>);

struct Inner {
    plans: Plans,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    report: LoadReport,
}

impl Model {
    /// Loads a model file with default options (see [`ModelLoader`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Model, InferenceError> {
        ModelLoader::new().load_path(path)
    }

    /// Loads a model held in memory with default options.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, InferenceError> {
        ModelLoader::new().load_bytes(bytes)
    }

    pub(crate) fn from_optimized(
        typed: TypedModel,
        pool: Option<&ComputePool>,
        mut report: LoadReport,
        started: Instant,
    ) -> Result<Model, InferenceError> {
        let inputs = typed
            .input_outlets()
            .and_then(|outlets| {
                outlets
                    .iter()
                    .map(|o| {
                        Ok(TensorInfo::from_fact(
                            typed.node(o.node).name.clone(),
                            typed.outlet_fact(*o)?,
                        ))
                    })
                    .collect::<TractResult<Vec<_>>>()
            })
            .map_err(|e| InferenceError::Analysis { reason: reason(&e) })?;
        let outputs = typed
            .output_outlets()
            .and_then(|outlets| {
                outlets
                    .iter()
                    .map(|o| {
                        let name = typed
                            .outlet_label(*o)
                            .map(str::to_string)
                            .unwrap_or_else(|| typed.node(o.node).name.clone());
                        Ok(TensorInfo::from_fact(name, typed.outlet_fact(*o)?))
                    })
                    .collect::<TractResult<Vec<_>>>()
            })
            .map_err(|e| InferenceError::Analysis { reason: reason(&e) })?;
        let options = RunOptions {
            executor: pool.map(ComputePool::executor),
            ..RunOptions::default()
        };
        let plan = typed
            .into_runnable_with_options(&options)
            .map_err(|e| InferenceError::Analysis { reason: reason(&e) })?;
        report.load_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(Model(Arc::new(Inner {
            plans: Plans::Symbolic(plan),
            inputs,
            outputs,
            report,
        })))
    }

    /// A model that is specialized to each run's input signature (see [`super::plans`]).
    pub(crate) fn specialized_per_run(
        specializer: Specializer,
        inputs: Vec<TensorInfo>,
        outputs: Vec<TensorInfo>,
        mut report: LoadReport,
        started: Instant,
    ) -> Model {
        report.load_ms = started.elapsed().as_secs_f64() * 1e3;
        Model(Arc::new(Inner {
            plans: Plans::PerSignature(Box::new(specializer)),
            inputs,
            outputs,
            report,
        }))
    }

    /// The inputs a run must provide, in model order.
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.0.inputs
    }

    /// The outputs a run returns, in model order.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.0.outputs
    }

    /// How the model was loaded.
    pub fn load_report(&self) -> &LoadReport {
        &self.0.report
    }

    /// What the per-signature plan cache has done, for a model specialized per run
    /// ([`LoadReport::specialized_per_run`]); `None` for a model with one plan for all shapes.
    pub fn plan_cache_stats(&self) -> Option<PlanCacheStats> {
        match &self.0.plans {
            Plans::Symbolic(_) => None,
            Plans::PerSignature(specializer) => Some(specializer.stats()),
        }
    }

    /// Runs the model on named inputs (any order) and returns every output by name.
    ///
    /// Fails with a typed error for an unknown, missing or repeated input, a wrong element type
    /// or a shape the model cannot take; never panics.
    pub fn run<S: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (S, Tensor)>,
    ) -> Result<Outputs, InferenceError> {
        let mut slots: Vec<Option<TValue>> = vec![None; self.0.inputs.len()];
        let mut symbols: HashMap<&str, usize> = HashMap::new();
        for (name, tensor) in inputs {
            let name = name.as_ref();
            let ix = self
                .0
                .inputs
                .iter()
                .position(|i| i.name == name)
                .ok_or_else(|| InferenceError::UnknownInput(name.to_string()))?;
            let info = &self.0.inputs[ix];
            check_input(info, &tensor, &mut symbols)?;
            if slots[ix].replace(tensor.into_tvalue()).is_some() {
                return Err(InferenceError::DuplicateInput(name.to_string()));
            }
        }
        let values = slots
            .into_iter()
            .zip(&self.0.inputs)
            .map(|(slot, info)| slot.ok_or_else(|| InferenceError::MissingInput(info.name.clone())))
            .collect::<Result<TVec<TValue>, _>>()?;
        let results = guarded("running", || {
            let plan = match &self.0.plans {
                Plans::Symbolic(plan) => plan.clone(),
                Plans::PerSignature(specializer) => specializer.plan_for(Signature::of(&values))?,
            };
            plan.run(values)
                .map_err(|e| InferenceError::Execution { reason: reason(&e) })
        })?;
        let tensors = results
            .into_iter()
            .map(|v| exchangeable(v.into_tensor()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Outputs {
            model: self.clone(),
            tensors,
        })
    }

    /// A session that feeds recurrent state from one run's outputs into the next run's inputs.
    ///
    /// `bindings` pairs an output name with the input it feeds (Silero VAD: `("stateN", "state")`).
    /// State inputs start as zeros of their declared shape, which must then be fixed.
    pub fn stateful<S: AsRef<str>>(
        &self,
        bindings: &[(S, S)],
    ) -> Result<StatefulSession, InferenceError> {
        StatefulSession::new(self.clone(), bindings)
    }

    fn output_index(&self, name: &str) -> Option<usize> {
        self.0.outputs.iter().position(|o| o.name == name)
    }
}

/// Where a model's runs get their plan.
enum Plans {
    /// One plan for every shape the model admits, symbolic dimensions resolved per run.
    Symbolic(Arc<Plan>),
    /// A plan per input signature.
    PerSignature(Box<Specializer>),
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("inputs", &self.0.inputs)
            .field("outputs", &self.0.outputs)
            .finish()
    }
}

/// Symbolic-dimension tensors (what tract's `Shape` and `Size` produce) leave as `i64`, the
/// type ONNX declares for them.
fn exchangeable(tensor: TractTensor) -> Result<Tensor, InferenceError> {
    if tensor.datum_type() == DatumType::TDim {
        let ints = tensor
            .cast_to::<i64>()
            .map_err(|e| InferenceError::Execution { reason: reason(&e) })?
            .into_owned();
        return Ok(Tensor::from_tract(ints));
    }
    Ok(Tensor::from_tract(tensor))
}

fn check_input<'a>(
    info: &'a TensorInfo,
    tensor: &Tensor,
    symbols: &mut HashMap<&'a str, usize>,
) -> Result<(), InferenceError> {
    if tensor.dtype() != info.dtype {
        return Err(InferenceError::DTypeMismatch {
            name: info.name.clone(),
            expected: info.dtype,
            actual: tensor.dtype(),
        });
    }
    let shape = tensor.shape();
    let mismatch = || InferenceError::ShapeMismatch {
        name: info.name.clone(),
        expected: info.shape_string(),
        actual: shape.to_vec(),
    };
    if shape.len() != info.shape.len() {
        return Err(mismatch());
    }
    for (dim, &size) in info.shape.iter().zip(shape) {
        match dim {
            Dim::Fixed(n) if *n != size => return Err(mismatch()),
            Dim::Symbolic(sym)
                if is_identifier(sym) && *symbols.entry(sym.as_str()).or_insert(size) != size =>
            {
                return Err(mismatch());
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// The outputs of one run, by name.
pub struct Outputs {
    model: Model,
    tensors: Vec<Tensor>,
}

impl Outputs {
    /// The output called `name`.
    pub fn get(&self, name: &str) -> Result<&Tensor, InferenceError> {
        self.model
            .output_index(name)
            .map(|ix| &self.tensors[ix])
            .ok_or_else(|| InferenceError::UnknownOutput(name.to_string()))
    }

    /// Takes the output called `name` out of the set.
    pub fn take(&mut self, name: &str) -> Result<Tensor, InferenceError> {
        let ix = self
            .model
            .output_index(name)
            .ok_or_else(|| InferenceError::UnknownOutput(name.to_string()))?;
        Ok(std::mem::replace(
            &mut self.tensors[ix],
            Tensor::scalar(false),
        ))
    }

    /// Outputs in model order, with their names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.model
            .0
            .outputs
            .iter()
            .map(|o| o.name.as_str())
            .zip(&self.tensors)
    }

    /// The number of outputs.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there is no output.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Runs a recurrent model step by step, carrying its state between steps.
///
/// Not `Sync`: one session per stream; sessions over the same [`Model`] run independently.
#[derive(Debug)]
pub struct StatefulSession {
    model: Model,
    bindings: Vec<(String, String)>,
    state: Vec<Tensor>,
}

impl StatefulSession {
    fn new<S: AsRef<str>>(
        model: Model,
        bindings: &[(S, S)],
    ) -> Result<StatefulSession, InferenceError> {
        let mut pairs = Vec::with_capacity(bindings.len());
        let mut state = Vec::with_capacity(bindings.len());
        for (output, input) in bindings {
            let (output, input) = (output.as_ref(), input.as_ref());
            let binding_error = || InferenceError::StateBinding {
                output: output.to_string(),
                input: input.to_string(),
            };
            model.output_index(output).ok_or_else(binding_error)?;
            let info = model
                .inputs()
                .iter()
                .find(|i| i.name == input)
                .ok_or_else(binding_error)?;
            let shape = info
                .shape
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => Some(*n),
                    Dim::Symbolic(_) => None,
                })
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(binding_error)?;
            state.push(Tensor::zeros(info.dtype, &shape)?);
            pairs.push((output.to_string(), input.to_string()));
        }
        Ok(StatefulSession {
            model,
            bindings: pairs,
            state,
        })
    }

    /// Runs one step on the non-state inputs; the state outputs become the next step's state.
    pub fn step<S: AsRef<str>>(
        &mut self,
        inputs: impl IntoIterator<Item = (S, Tensor)>,
    ) -> Result<Outputs, InferenceError> {
        let mut named: Vec<(String, Tensor)> = inputs
            .into_iter()
            .map(|(n, t)| (n.as_ref().to_string(), t))
            .collect();
        for ((_, input), tensor) in self.bindings.iter().zip(&self.state) {
            named.push((input.clone(), tensor.clone()));
        }
        let outputs = self.model.run(named)?;
        for ((output, _), slot) in self.bindings.iter().zip(self.state.iter_mut()) {
            *slot = outputs.get(output)?.clone();
        }
        Ok(outputs)
    }

    /// Forgets the carried state (zeros again), as at the start of a new stream.
    pub fn reset(&mut self) -> Result<(), InferenceError> {
        for slot in &mut self.state {
            *slot = Tensor::zeros(slot.dtype(), slot.shape())?;
        }
        Ok(())
    }
}
