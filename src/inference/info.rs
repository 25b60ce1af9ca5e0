//! What a model declares about its inputs and outputs.

use std::fmt;

use tract_onnx::prelude::{TDim, TypedFact};
use tract_onnx::tract_core::internal::DimLike;

use super::DType;

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A size chosen at run time, by name (`batch`, `seq`) or expression (`2*seq`).
    Symbolic(String),
}

impl Dim {
    pub(crate) fn from_tdim(d: &TDim) -> Dim {
        match d.to_usize() {
            Ok(n) => Dim::Fixed(n),
            Err(_) => Dim::Symbolic(d.to_string()),
        }
    }

    /// Whether a concrete size is compatible with this dimension.
    pub fn admits(&self, size: usize) -> bool {
        match self {
            Dim::Fixed(n) => *n == size,
            Dim::Symbolic(_) => true,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) => f.write_str(s),
        }
    }
}

/// The name, element type and shape of one model input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name in the model graph.
    pub name: String,
    /// Its element type.
    pub dtype: DType,
    /// Its shape; symbolic dimensions are resolved at each run.
    pub shape: Vec<Dim>,
}

impl TensorInfo {
    pub(crate) fn from_fact(name: String, fact: &TypedFact) -> TensorInfo {
        TensorInfo {
            name,
            dtype: DType::from_datum(fact.datum_type),
            shape: fact.shape.iter().map(Dim::from_tdim).collect(),
        }
    }

    /// A concrete shape: fixed dimensions as declared, every symbolic one set to `symbolic`
    /// (e.g. 1 for a probe run at batch 1).
    pub fn concrete_shape(&self, symbolic: usize) -> Vec<usize> {
        self.shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Symbolic(_) => symbolic,
            })
            .collect()
    }

    /// The shape as text, e.g. `[batch, 3, 224, 224]`.
    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(Dim::to_string).collect();
        format!("[{}]", dims.join(", "))
    }
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.name, self.dtype, self.shape_string())
    }
}
