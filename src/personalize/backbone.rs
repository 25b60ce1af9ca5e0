//! The frozen backbone: an inference [`Model`] whose named output (or intermediate tensor) is
//! used as the embedding, and the identity of the embedding space it defines.

use std::fmt;

use ndarray::{Array2, Axis};
use ring::digest;

use super::error::{PersonalizeError, Result};
use super::softmax::SoftmaxHead;
use crate::inference::{Dim, Model, ModelLoader, Tensor};

/// Identifies an embedding space: the backbone's bytes, the tensor read as embedding and its
/// width. Heads and cached embeddings record it; a different identity means a different space.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseModelId {
    model_sha256: [u8; 32],
    embedding_output: String,
    dim: usize,
}

impl BaseModelId {
    /// An identity from the SHA-256 of the model bytes, the embedding tensor name and its width.
    pub fn new(model_sha256: [u8; 32], embedding_output: impl Into<String>, dim: usize) -> Self {
        Self {
            model_sha256,
            embedding_output: embedding_output.into(),
            dim,
        }
    }

    /// SHA-256 of the model bytes.
    pub fn model_sha256(&self) -> &[u8; 32] {
        &self.model_sha256
    }

    /// Name of the tensor read as the embedding.
    pub fn embedding_output(&self) -> &str {
        &self.embedding_output
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl fmt::Debug for BaseModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short: String = self.model_sha256[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        write!(
            f,
            "BaseModelId({short}…, {}, {})",
            self.embedding_output, self.dim
        )
    }
}

/// A loaded backbone that turns model inputs into embeddings.
///
/// Cheap to clone (the model is shared).
#[derive(Clone, Debug)]
pub struct Backbone {
    model: Model,
    id: BaseModelId,
}

impl Backbone {
    /// Loads a backbone from model bytes (e.g. a decrypted artifact), reading `embedding_output`
    /// (a graph output or any intermediate tensor name) as the embedding.
    ///
    /// `loader` carries the app's load options (input shapes, pinned inputs, threads); its
    /// output selection is replaced by the embedding tensor. The identity is the SHA-256 of
    /// `bytes`. Fails when the model cannot be loaded, does not produce that tensor, or the
    /// tensor's width is not fixed.
    pub fn from_bytes(bytes: &[u8], embedding_output: &str, loader: ModelLoader) -> Result<Self> {
        let model = loader
            .with_outputs([embedding_output])
            .load_bytes(bytes)
            .map_err(PersonalizeError::Inference)?;
        let sha = digest::digest(&digest::SHA256, bytes);
        let mut model_sha256 = [0u8; 32];
        model_sha256.copy_from_slice(sha.as_ref());
        Self::new(model, embedding_output, model_sha256)
    }

    /// Wraps an already loaded model whose outputs include `embedding_output`.
    ///
    /// `model_sha256` must identify the model bytes (the artifact manifest's digest, say): it
    /// decides when stored personalization becomes stale. Fails when the model has no such
    /// output or its width (all dimensions after the first) is not fixed.
    pub fn new(model: Model, embedding_output: &str, model_sha256: [u8; 32]) -> Result<Self> {
        let info = model
            .outputs()
            .iter()
            .find(|o| o.name == embedding_output)
            .ok_or(PersonalizeError::UnsupportedModel(
                "the model does not output the embedding tensor",
            ))?;
        let dim = match info.shape.split_first() {
            Some((_, rest)) if !rest.is_empty() => rest.iter().try_fold(1usize, |acc, d| match d {
                Dim::Fixed(n) => acc.checked_mul(*n),
                Dim::Symbolic(_) => None,
            }),
            _ => None,
        }
        .filter(|&d| d > 0)
        .ok_or(PersonalizeError::UnsupportedModel(
            "the embedding tensor needs a batch axis and a fixed width",
        ))?;
        Ok(Self {
            model,
            id: BaseModelId::new(model_sha256, embedding_output, dim),
        })
    }

    /// The identity of this backbone's embedding space.
    pub fn id(&self) -> &BaseModelId {
        &self.id
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.id.dim
    }

    /// The underlying model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs the backbone and returns one embedding row per batch item (`batch × dim`).
    ///
    /// Fails when the run fails, the output is not `f32`, or a value is not finite.
    pub fn embed<S: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (S, Tensor)>,
    ) -> Result<Array2<f32>> {
        let outputs = self
            .model
            .run(inputs)
            .map_err(PersonalizeError::Inference)?;
        let tensor = outputs
            .get(&self.id.embedding_output)
            .map_err(PersonalizeError::Inference)?;
        let view = tensor.view::<f32>().map_err(PersonalizeError::Inference)?;
        if view.ndim() == 0 {
            return Err(PersonalizeError::UnsupportedModel(
                "the embedding tensor has no batch axis",
            ));
        }
        let batch = view.len_of(Axis(0));
        let rows = view
            .to_shape((batch, self.dim()))
            .map_err(|_| PersonalizeError::DimensionMismatch {
                expected: self.dim(),
                actual: view.len() / batch.max(1),
            })?
            .to_owned();
        if rows.iter().any(|v| !v.is_finite()) {
            return Err(PersonalizeError::NonFinite("embedding"));
        }
        Ok(rows)
    }
}

/// Reads the base model's own linear classifier over the embedding out of an ONNX graph.
///
/// Looks for a `Gemm` whose first input is `embedding_output` and whose weights and bias are
/// initializers (the usual final layer: `logits = e·W + b`), and returns it as a
/// [`SoftmaxHead`] (`transB` and `alpha`/`beta` honoured). Returns `Ok(None)` when the graph
/// has no such layer (the app can then ship the head itself, or train from zero). Fails only
/// when the bytes are not ONNX or the layer's tensors are malformed.
pub fn base_head_from_onnx(bytes: &[u8], embedding_output: &str) -> Result<Option<SoftmaxHead>> {
    std::panic::catch_unwind(|| read_gemm_head(bytes, embedding_output)).unwrap_or(Err(
        PersonalizeError::UnsupportedModel("the ONNX parser faulted reading the classifier"),
    ))
}

fn read_gemm_head(bytes: &[u8], embedding_output: &str) -> Result<Option<SoftmaxHead>> {
    use tract_onnx::prelude::Framework;
    const BAD: PersonalizeError =
        PersonalizeError::UnsupportedModel("the classifier layer is malformed");
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|_| PersonalizeError::UnsupportedModel("not an ONNX model"))?;
    let Some(graph) = proto.graph.as_ref() else {
        return Ok(None);
    };
    let Some(node) = graph.node.iter().find(|n| {
        n.op_type == "Gemm" && n.input.first().map(String::as_str) == Some(embedding_output)
    }) else {
        return Ok(None);
    };
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let trans_a = attr("transA").map_or(0, |a| a.i);
    let trans_b = attr("transB").map_or(0, |a| a.i);
    let alpha = attr("alpha").map_or(1.0, |a| a.f);
    let beta = attr("beta").map_or(1.0, |a| a.f);
    if trans_a != 0 {
        return Ok(None);
    }
    let initializer = |name: Option<&String>| -> Result<Option<ndarray::ArrayD<f32>>> {
        let Some(name) = name else { return Ok(None) };
        let Some(t) = graph.initializer.iter().find(|t| &t.name == name) else {
            return Ok(None);
        };
        let tensor = tract_onnx::tensor::load_tensor(&*onnx.provider, t, None).map_err(|_| BAD)?;
        let view = tensor.to_plain_array_view::<f32>().map_err(|_| BAD)?;
        Ok(Some(view.to_owned()))
    };
    let Some(w) = initializer(node.input.get(1))? else {
        return Ok(None);
    };
    let w = w.into_dimensionality::<ndarray::Ix2>().map_err(|_| BAD)?;
    // Head rows are classes: W is dim × classes unless transB.
    let w = if trans_b != 0 { w } else { w.reversed_axes() };
    let weights = w.mapv(|v| v * alpha);
    let bias = match initializer(node.input.get(2))? {
        Some(b) => {
            let b = b.into_iter().collect::<ndarray::Array1<f32>>();
            match b.len() {
                1 => ndarray::Array1::from_elem(weights.nrows(), b[0] * beta),
                n if n == weights.nrows() => b.mapv(|v| v * beta),
                _ => return Err(BAD),
            }
        }
        None => ndarray::Array1::zeros(weights.nrows()),
    };
    SoftmaxHead::from_parts(weights, bias).map(Some)
}
