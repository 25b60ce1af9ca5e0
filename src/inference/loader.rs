//! Turning ONNX or NNEF bytes into a runnable [`Model`].

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::unimpl::UnimplementedOp;
use tract_onnx::tract_hir::infer::{Factoid, ShapeFactoid};
use tract_onnx::tract_hir::internal::InferenceOp;
use tract_onnx::tract_hir::ops::konst::Const;

use super::error::{guarded, reason};
use super::plans::{DEFAULT_PLAN_CACHE_CAPACITY, Specializer};
use super::{ComputePool, DType, Dim, InferenceError, Model, Tensor, TensorInfo};

/// The serialized form of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// An ONNX protobuf (`.onnx`).
    Onnx,
    /// A tract NNEF archive (`.nnef.tar`), e.g. written by [`convert_to_nnef`](super::convert_to_nnef).
    /// It holds an already decluttered graph, so loading only runs tract's codegen pass.
    Nnef,
}

impl ModelFormat {
    /// Guesses the format from the first bytes: a tar archive is NNEF, anything else ONNX.
    pub fn sniff(bytes: &[u8]) -> ModelFormat {
        let is_tar = bytes.len() > 262 && &bytes[257..262] == b"ustar";
        let is_gzip = bytes.starts_with(&[0x1f, 0x8b]);
        if is_tar || is_gzip {
            ModelFormat::Nnef
        } else {
            ModelFormat::Onnx
        }
    }

    fn label(self) -> &'static str {
        match self {
            ModelFormat::Onnx => "ONNX",
            ModelFormat::Nnef => "NNEF",
        }
    }
}

/// How a model was prepared, for diagnostics and benchmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// The format that was parsed.
    pub format: ModelFormat,
    /// Whether the ONNX file's own output shapes and value infos had to be ignored to load it.
    pub ignored_declared_shapes: bool,
    /// Whether the file leaves input shapes undetermined, so the model is specialized and
    /// optimized per input signature at run time (plans cached, see
    /// [`Model::plan_cache_stats`]) rather than once at load.
    pub specialized_per_run: bool,
    /// Wall time from bytes to runnable model, in milliseconds.
    pub load_ms: f64,
}

/// Options for loading a model; the entry point of the inference module.
///
/// ```no_run
/// # use edgekeep::inference::*;
/// let model = ModelLoader::new()
///     .pin_input("sr", Tensor::scalar(16_000i64))
///     .load_path("models/silero_vad.onnx")?;
/// # Ok::<(), InferenceError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ModelLoader {
    input_shapes: Vec<(String, Option<DType>, Vec<Dim>)>,
    pinned: Vec<(String, Tensor)>,
    outputs: Option<Vec<String>>,
    pool: Option<ComputePool>,
    plan_cache_capacity: Option<usize>,
}

type Graph = InferenceModel;

/// An ONNX model after parsing: typed for all shapes it admits, or waiting for the inputs'
/// shapes.
enum Parsed {
    Typed(TypedModel, bool),
    Undetermined(Graph),
}

impl ModelLoader {
    /// Default options: shapes as declared, all declared outputs, single-threaded.
    pub fn new() -> ModelLoader {
        ModelLoader::default()
    }

    /// Declares the shape (and optionally the element type) of an input, for models whose file
    /// leaves it unknown or declares it wrongly. Use [`Dim::Symbolic`] for sizes chosen per run.
    pub fn with_input_shape(
        mut self,
        name: impl Into<String>,
        dtype: Option<DType>,
        shape: impl Into<Vec<Dim>>,
    ) -> ModelLoader {
        self.input_shapes.push((name.into(), dtype, shape.into()));
        self
    }

    /// Fixes an input to a constant for the life of the model, so the branches and shapes it
    /// controls are folded at load (e.g. a sample rate selecting an `If` branch). The input then
    /// disappears from [`Model::inputs`].
    pub fn pin_input(mut self, name: impl Into<String>, value: Tensor) -> ModelLoader {
        self.pinned.push((name.into(), value));
        self
    }

    /// Selects the outputs to compute, by tensor name: graph outputs or any intermediate tensor
    /// (an embedding layer, say). Replaces the model's declared outputs.
    pub fn with_outputs<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> ModelLoader {
        self.outputs = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Runs matrix products on `pool` instead of the calling thread.
    pub fn with_compute_pool(mut self, pool: ComputePool) -> ModelLoader {
        self.pool = Some(pool);
        self
    }

    /// How many plans a model specialized per run keeps, one per input signature, least
    /// recently used forgotten first ([`DEFAULT_PLAN_CACHE_CAPACITY`] unless set; at least 1).
    /// Models whose shapes the file determines have one plan and ignore this.
    pub fn with_plan_cache_capacity(mut self, plans: usize) -> ModelLoader {
        self.plan_cache_capacity = Some(plans);
        self
    }

    /// Loads a model file; the format is sniffed from its content.
    pub fn load_path(&self, path: impl AsRef<Path>) -> Result<Model, InferenceError> {
        let bytes = std::fs::read(path)?;
        self.load_bytes(&bytes)
    }

    /// Loads a model from memory; the format is sniffed from its content. This is the path for
    /// decrypted artifacts: the bytes never touch the disk.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Model, InferenceError> {
        guarded("loading", || self.load_unguarded(bytes))
    }

    fn load_unguarded(&self, bytes: &[u8]) -> Result<Model, InferenceError> {
        let started = Instant::now();
        let format = ModelFormat::sniff(bytes);
        let (typed, ignored_declared_shapes) = match format {
            ModelFormat::Onnx => match self.onnx_parsed(bytes)? {
                Parsed::Typed(typed, ignored) => (typed, ignored),
                Parsed::Undetermined(graph) => return self.per_run(graph, started),
            },
            ModelFormat::Nnef => (self.nnef_to_typed(bytes)?, false),
        };
        let optimized = match format {
            ModelFormat::Onnx => typed.into_optimized(),
            ModelFormat::Nnef => {
                let mut typed = typed;
                typed.optimize().map(|_| typed)
            }
        }
        .map_err(|e| InferenceError::Analysis { reason: reason(&e) })?;
        let report = LoadReport {
            format,
            ignored_declared_shapes,
            specialized_per_run: false,
            load_ms: 0.0,
        };
        Model::from_optimized(optimized, self.pool.as_ref(), report, started)
    }

    /// A model whose plan waits for each run's input shapes (see [`super::plans`]).
    fn per_run(&self, graph: Graph, started: Instant) -> Result<Model, InferenceError> {
        let (inputs, outputs) = undetermined_infos(&graph)?;
        let specializer = Specializer::new(
            graph,
            self.pool.clone(),
            self.plan_cache_capacity
                .unwrap_or(DEFAULT_PLAN_CACHE_CAPACITY),
        );
        let report = LoadReport {
            format: ModelFormat::Onnx,
            ignored_declared_shapes: true,
            specialized_per_run: true,
            load_ms: 0.0,
        };
        Ok(Model::specialized_per_run(
            specializer,
            inputs,
            outputs,
            report,
            started,
        ))
    }

    /// Parses ONNX into a decluttered typed graph with this loader's shapes, pins and outputs
    /// applied. Retries once ignoring the file's declared output shapes and value infos, which
    /// many exporters get wrong (`Impossible to unify Sym(batch) with Val(1)`).
    pub(crate) fn onnx_to_typed(&self, bytes: &[u8]) -> Result<(TypedModel, bool), InferenceError> {
        match self.onnx_parsed(bytes)? {
            Parsed::Typed(typed, ignored) => Ok((typed, ignored)),
            Parsed::Undetermined(graph) => Err(InferenceError::Analysis {
                reason: format!(
                    "the shape of input `{}` is not determined by the file: declare it",
                    first_undetermined_input(&graph).unwrap_or_default()
                ),
            }),
        }
    }

    /// Parses ONNX as [`Self::onnx_to_typed`] does; a graph that types only once its inputs'
    /// shapes are known is returned untyped, for specialization per run.
    fn onnx_parsed(&self, bytes: &[u8]) -> Result<Parsed, InferenceError> {
        let strict = tract_onnx::onnx();
        let proto = strict
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| invalid(ModelFormat::Onnx, &e))?;
        match self.onnx_graph(&strict, &proto).and_then(|g| self.typed(g)) {
            Ok(typed) => Ok(Parsed::Typed(typed, false)),
            Err(InferenceError::Analysis {
                reason: strict_reason,
            }) => {
                let lenient = strict
                    .with_ignore_output_shapes(true)
                    .with_ignore_value_info(true);
                let graph = self.onnx_graph(&lenient, &proto)?;
                let untyped = graph.clone();
                match self.typed(graph) {
                    Ok(typed) => Ok(Parsed::Typed(typed, true)),
                    Err(InferenceError::Analysis { .. })
                        if first_undetermined_input(&untyped).is_some() =>
                    {
                        Ok(Parsed::Undetermined(untyped))
                    }
                    Err(InferenceError::Analysis { reason }) => Err(InferenceError::Analysis {
                        reason: format!("{reason} (as declared: {strict_reason})"),
                    }),
                    Err(other) => Err(other),
                }
            }
            Err(other) => Err(other),
        }
    }

    fn onnx_graph(
        &self,
        onnx: &tract_onnx::Onnx,
        proto: &tract_onnx::pb::ModelProto,
    ) -> Result<Graph, InferenceError> {
        let mut graph = onnx
            .model_for_proto_model(proto)
            .map_err(|e| invalid(ModelFormat::Onnx, &e))?;
        reject_unimplemented(&graph)?;
        for (name, dtype, shape) in &self.input_shapes {
            let ix = input_index(&graph, name)?;
            let dims: TVec<TDim> = shape
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => TDim::from(*n),
                    Dim::Symbolic(s) => TDim::Sym(graph.sym(s)),
                })
                .collect();
            let mut fact = InferenceFact::default().with_shape(ShapeFactoid::closed(
                dims.into_iter().map(|d| d.into()).collect(),
            ));
            if let Some(dt) = dtype.and_then(DType::to_datum) {
                fact = fact.with_datum_type(dt);
            } else if let Ok(declared) = graph.input_fact(ix)
                && let Some(dt) = declared.datum_type.concretize()
            {
                fact = fact.with_datum_type(dt);
            }
            graph.set_input_fact(ix, fact).map_err(analysis)?;
        }
        for (name, value) in &self.pinned {
            pin(&mut graph, name, value)?;
        }
        if let Some(outputs) = &self.outputs {
            select_outputs(&mut graph, outputs)?;
        }
        Ok(graph)
    }

    fn typed(&self, graph: Graph) -> Result<TypedModel, InferenceError> {
        graph
            .into_typed()
            .and_then(|t| t.into_decluttered())
            .map_err(analysis)
    }

    fn nnef_to_typed(&self, bytes: &[u8]) -> Result<TypedModel, InferenceError> {
        if let Some((name, _)) = self.pinned.first() {
            return Err(InferenceError::UnknownInput(name.clone()));
        }
        let mut typed = super::nnef::framework()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| invalid(ModelFormat::Nnef, &e))?;
        if let Some(outputs) = &self.outputs {
            let names: Vec<&str> = outputs.iter().map(String::as_str).collect();
            typed
                .select_outputs_by_name(&names)
                .map_err(|_| unknown_tensor(&typed, outputs))?;
        }
        Ok(typed)
    }
}

/// The first input whose shape the graph does not fix to numbers (an unknown rank, an unknown
/// size, or a symbol that tract cannot carry through the graph).
fn first_undetermined_input(graph: &Graph) -> Option<String> {
    let outlets = graph.input_outlets().ok()?;
    outlets.iter().enumerate().find_map(|(ix, outlet)| {
        let fact = graph.input_fact(ix).ok()?;
        let sized = matches!(fact.shape.as_concrete_finite(), Ok(Some(_)));
        (!sized).then(|| graph.node(outlet.node).name.clone())
    })
}

/// What a graph that waits for its inputs' shapes can say of its inputs and outputs: the
/// element types and the dimensions the file (and tract's analysis, as far as it goes without
/// the shapes) determines; `?` for a size known only at run time, a lone `...` for an unknown
/// rank. An input's element type must be known.
fn undetermined_infos(graph: &Graph) -> Result<(Vec<TensorInfo>, Vec<TensorInfo>), InferenceError> {
    let mut analysed = graph.clone();
    // Best effort: the facts it can reach without the shapes. A run's specialization repeats
    // the analysis in full, from the original graph.
    let _ = analysed.analyse(false);
    let info = |name: String, fact: &InferenceFact, input: bool| {
        let dtype = match fact.datum_type.concretize() {
            Some(dt) => DType::from_datum(dt),
            None if input => {
                return Err(InferenceError::Analysis {
                    reason: format!("input `{name}` declares no element type: declare it"),
                });
            }
            None => DType::Unsupported,
        };
        let shape = if fact.shape.is_open() && fact.shape.dims().next().is_none() {
            vec![Dim::Symbolic("...".into())]
        } else {
            fact.shape
                .dims()
                .map(|d| match d.concretize() {
                    Some(d) => Dim::from_tdim(&d),
                    None => Dim::Symbolic("?".into()),
                })
                .collect()
        };
        Ok(TensorInfo { name, dtype, shape })
    };
    let inputs = analysed
        .input_outlets()
        .map_err(analysis)?
        .iter()
        .enumerate()
        .map(|(ix, outlet)| {
            let fact = analysed.input_fact(ix).map_err(analysis)?;
            info(analysed.node(outlet.node).name.clone(), fact, true)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = analysed
        .output_outlets()
        .map_err(analysis)?
        .iter()
        .enumerate()
        .map(|(ix, outlet)| {
            let name = analysed
                .outlet_label(*outlet)
                .map(str::to_string)
                .unwrap_or_else(|| analysed.node(outlet.node).name.clone());
            let fact = analysed.output_fact(ix).map_err(analysis)?;
            info(name, fact, false)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((inputs, outputs))
}

fn invalid(format: ModelFormat, err: &TractError) -> InferenceError {
    InferenceError::InvalidModel {
        format: format.label(),
        reason: reason(err),
    }
}

fn analysis(err: TractError) -> InferenceError {
    InferenceError::Analysis {
        reason: reason(&err),
    }
}

fn reject_unimplemented(graph: &Graph) -> Result<(), InferenceError> {
    for node in graph.nodes() {
        if let Some(op) = node.op.as_op().downcast_ref::<UnimplementedOp>() {
            let full = op.name();
            let op = full
                .strip_prefix("Unimplemented(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or(&full)
                .to_string();
            return Err(InferenceError::UnsupportedOperator {
                op,
                node: node.name.clone(),
            });
        }
    }
    Ok(())
}

fn input_index(graph: &Graph, name: &str) -> Result<usize, InferenceError> {
    let inputs = graph.input_outlets().map_err(analysis)?;
    inputs
        .iter()
        .position(|o| graph.node(o.node).name == name)
        .ok_or_else(|| InferenceError::UnknownInput(name.to_string()))
}

fn pin(graph: &mut Graph, name: &str, value: &Tensor) -> Result<(), InferenceError> {
    let ix = input_index(graph, name)?;
    let outlet = graph.input_outlets().map_err(analysis)?[ix];
    let tensor = Arc::new(value.as_tract().clone());
    let konst = Const::new(tensor.clone()).map_err(analysis)?;
    graph.node_mut(outlet.node).op = Box::new(konst) as Box<dyn InferenceOp>;
    graph
        .set_outlet_fact(outlet, InferenceFact::from(value.as_tract().clone()))
        .map_err(analysis)?;
    let remaining: Vec<OutletId> = graph
        .input_outlets()
        .map_err(analysis)?
        .iter()
        .filter(|o| o.node != outlet.node)
        .copied()
        .collect();
    graph.set_input_outlets(&remaining).map_err(analysis)
}

fn select_outputs(graph: &mut Graph, names: &[String]) -> Result<(), InferenceError> {
    let mut outlets = Vec::with_capacity(names.len());
    for name in names {
        let outlet = graph
            .find_outlet_label(name)
            .or_else(|| {
                graph
                    .node_id_by_name(name)
                    .ok()
                    .map(|id| OutletId::new(id, 0))
            })
            .ok_or_else(|| InferenceError::UnknownTensor(name.clone()))?;
        outlets.push(outlet);
    }
    graph.select_output_outlets(&outlets).map_err(analysis)?;
    for (outlet, name) in outlets.iter().zip(names) {
        graph
            .set_outlet_label(*outlet, name.clone())
            .map_err(analysis)?;
    }
    Ok(())
}

fn unknown_tensor(typed: &TypedModel, names: &[String]) -> InferenceError {
    let missing = names
        .iter()
        .find(|n| typed.find_outlet_label(n).is_none() && typed.node_id_by_name(n).is_err())
        .or(names.first())
        .cloned()
        .unwrap_or_default();
    InferenceError::UnknownTensor(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_tar_and_gzip_as_nnef() {
        let mut tar = vec![0u8; 600];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(ModelFormat::sniff(&tar), ModelFormat::Nnef);
        assert_eq!(ModelFormat::sniff(&[0x1f, 0x8b, 8, 0]), ModelFormat::Nnef);
        assert_eq!(
            ModelFormat::sniff(b"\x08\x07\x12\x04onnx"),
            ModelFormat::Onnx
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let err = ModelLoader::new()
            .load_bytes(b"definitely not a model \xff\xff")
            .unwrap_err();
        assert!(
            matches!(err, InferenceError::InvalidModel { format: "ONNX", .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_io_error() {
        let err = ModelLoader::new()
            .load_path("/nonexistent/model.onnx")
            .unwrap_err();
        assert!(matches!(err, InferenceError::Io(_)));
    }
}
