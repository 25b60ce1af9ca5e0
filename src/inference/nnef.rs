//! Writing a model as a tract NNEF archive, which loads faster on devices.

use tract_nnef::framework::Nnef;
use tract_onnx_opl::WithOnnx;
use tract_transformers::WithTractTransformers;

use super::error::{guarded, reason};
use super::{InferenceError, ModelLoader};

/// The NNEF dialect edgekeep reads and writes: tract core plus the ONNX and transformer
/// extensions, so every operator an ONNX import can produce has a serialized form.
pub(crate) fn framework() -> Nnef {
    tract_nnef::nnef().with_onnx().with_tract_transformers()
}

/// Converts ONNX bytes to an NNEF tar archive, applying `loader`'s input shapes, pinned inputs
/// and output selection first (they are baked into the archive).
///
/// Convert once, at publish time or first load; load the result with
/// [`ModelLoader::load_bytes`]. Fails with [`InferenceError::Conversion`] when an operator has
/// no NNEF form (exact-`Erf` GELU and some `StridedSlice` forms, in tract 0.23).
pub fn convert_to_nnef(loader: &ModelLoader, onnx: &[u8]) -> Result<Vec<u8>, InferenceError> {
    guarded("converting", || {
        let (mut typed, _) = loader.onnx_to_typed(onnx)?;
        typed.properties.retain(|key, _| !key.starts_with("onnx."));
        framework()
            .write_to_tar(&typed, Vec::new())
            .map_err(|e| InferenceError::Conversion { reason: reason(&e) })
    })
}
