//! Errors of the inference module.

use super::DType;

/// Why loading or running a model failed.
///
/// Messages name inputs, operators and shapes, never tensor values or model bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    /// The model file could not be read from disk.
    #[error("cannot read model file: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a well-formed ONNX or NNEF model.
    #[error("not a valid {format} model: {reason}")]
    InvalidModel {
        /// "ONNX" or "NNEF".
        format: &'static str,
        /// What the parser reported.
        reason: String,
    },
    /// The model uses an operator this runtime does not implement.
    #[error("unsupported operator `{op}` (node `{node}`)")]
    UnsupportedOperator {
        /// ONNX operator type, e.g. `TreeEnsembleRegressor`.
        op: String,
        /// Name of the first node using it.
        node: String,
    },
    /// Shapes or types could not be resolved; giving concrete input shapes at load usually helps.
    #[error("cannot prepare model: {reason}")]
    Analysis {
        /// What the analysis reported.
        reason: String,
    },
    /// A name given to the loader does not name an input of the model.
    #[error("model has no input named `{0}`")]
    UnknownInput(String),
    /// A name given to the loader does not name a tensor of the model.
    #[error("model has no tensor named `{0}`")]
    UnknownTensor(String),
    /// A run did not provide every input.
    #[error("missing input `{0}`")]
    MissingInput(String),
    /// The same input was given twice in one run.
    #[error("input `{0}` given more than once")]
    DuplicateInput(String),
    /// No output of that name.
    #[error("model has no output named `{0}`")]
    UnknownOutput(String),
    /// An input tensor has the wrong element type.
    #[error("input `{name}` expects {expected}, got {actual}")]
    DTypeMismatch {
        /// The input's name.
        name: String,
        /// The element type the model declares.
        expected: DType,
        /// The element type supplied.
        actual: DType,
    },
    /// An input tensor has the wrong shape.
    #[error("input `{name}` expects shape {expected}, got {actual:?}")]
    ShapeMismatch {
        /// The input's name.
        name: String,
        /// The declared shape, symbolic dimensions by name.
        expected: String,
        /// The shape supplied.
        actual: Vec<usize>,
    },
    /// A tensor was read back as an element type it does not hold.
    #[error("tensor holds {actual}, not {requested}")]
    WrongElementType {
        /// Type requested by the caller.
        requested: DType,
        /// Type the tensor holds.
        actual: DType,
    },
    /// Data length does not match the product of the shape.
    #[error("shape {shape:?} needs {expected} elements, got {actual}")]
    ElementCount {
        /// The shape requested.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements supplied.
        actual: usize,
    },
    /// The runtime failed while executing the model.
    #[error("model execution failed: {reason}")]
    Execution {
        /// What the runtime reported.
        reason: String,
    },
    /// Writing the model as NNEF failed (some operators have no NNEF form yet).
    #[error("cannot convert to NNEF: {reason}")]
    Conversion {
        /// What the writer reported.
        reason: String,
    },
    /// The runtime hit an internal fault (a bug in it, or a model it mishandles); caught so it
    /// never unwinds into the caller.
    #[error("the runtime faulted while {stage}")]
    RuntimeFault {
        /// "loading", "running" or "converting".
        stage: &'static str,
    },
    /// A stateful session names a state pair that is not an input/output of the model.
    #[error("state binding `{output}` -> `{input}` does not match the model")]
    StateBinding {
        /// Output carrying the next state.
        output: String,
        /// Input receiving the state.
        input: String,
    },
}

/// The root cause of a tract error, as one line.
pub(crate) fn reason(err: &tract_onnx::prelude::TractError) -> String {
    let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    chain.join(": ")
}

/// Runs `f`, turning a panic inside the runtime into [`InferenceError::RuntimeFault`].
pub(crate) fn guarded<T>(
    stage: &'static str,
    f: impl FnOnce() -> Result<T, InferenceError>,
) -> Result<T, InferenceError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or(Err(InferenceError::RuntimeFault { stage }))
}
