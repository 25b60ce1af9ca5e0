//! Tensors across the boundary: an owned record of element type, shape and little-endian
//! bytes, with helpers for the two element types apps use most (f32 and i64).

use edgekeep::inference as core;

use crate::error::{EdgeKeepError, Result};

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 64-bit float.
    F64,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer.
    U8,
    /// Boolean (one byte, 0 or 1).
    Bool,
    /// A type the SDK cannot exchange (strings, quantized, ...); only seen in model specs.
    Unsupported,
}

impl From<core::DType> for DType {
    fn from(dtype: core::DType) -> Self {
        match dtype {
            core::DType::F32 => Self::F32,
            core::DType::F16 => Self::F16,
            core::DType::F64 => Self::F64,
            core::DType::I64 => Self::I64,
            core::DType::I32 => Self::I32,
            core::DType::I8 => Self::I8,
            core::DType::U8 => Self::U8,
            core::DType::Bool => Self::Bool,
            _ => Self::Unsupported,
        }
    }
}

impl DType {
    /// Bytes per element.
    fn width(self) -> Option<usize> {
        match self {
            Self::F64 | Self::I64 => Some(8),
            Self::F32 | Self::I32 => Some(4),
            Self::F16 => Some(2),
            Self::I8 | Self::U8 | Self::Bool => Some(1),
            Self::Unsupported => None,
        }
    }
}

/// A named tensor: dense, row-major, elements as little-endian bytes.
///
/// Build one with [`tensor_from_f32`] or [`tensor_from_i64`], read one with
/// [`tensor_to_f32`] or [`tensor_to_i64`]; other types fill `data` directly.
#[derive(Clone, PartialEq, uniffi::Record)]
pub struct Tensor {
    /// Input or output name in the model.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions (empty for a scalar).
    pub shape: Vec<u64>,
    /// `product(shape) * width(dtype)` bytes, little-endian, row-major.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Tensor {
    /// Name, type and shape only: the elements may be user data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// One declared dimension of a model input or output.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Dim {
    /// A fixed size.
    Fixed {
        /// The size.
        size: u64,
    },
    /// A size chosen per call (batch, sequence), named by the model.
    Symbolic {
        /// The symbol.
        name: String,
    },
}

/// A model input or output as declared: name, element type and shape.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TensorSpec {
    /// The name to use in [`Tensor::name`].
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Declared shape.
    pub shape: Vec<Dim>,
}

impl From<&core::TensorInfo> for TensorSpec {
    fn from(info: &core::TensorInfo) -> Self {
        Self {
            name: info.name.clone(),
            dtype: info.dtype.into(),
            shape: info
                .shape
                .iter()
                .map(|d| match d {
                    core::Dim::Fixed(n) => Dim::Fixed { size: *n as u64 },
                    core::Dim::Symbolic(s) => Dim::Symbolic { name: s.clone() },
                })
                .collect(),
        }
    }
}

/// A tensor named `name` holding `values` in the given `shape`.
#[uniffi::export]
pub fn tensor_from_f32(name: String, shape: Vec<u64>, values: Vec<f32>) -> Tensor {
    Tensor {
        name,
        dtype: DType::F32,
        shape,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// A tensor named `name` holding `values` in the given `shape`.
#[uniffi::export]
pub fn tensor_from_i64(name: String, shape: Vec<u64>, values: Vec<i64>) -> Tensor {
    Tensor {
        name,
        dtype: DType::I64,
        shape,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// The elements of an f32 tensor. Fails with `InvalidArgument` for another element type.
#[uniffi::export]
pub fn tensor_to_f32(tensor: Tensor) -> Result<Vec<f32>> {
    check(&tensor, DType::F32)?;
    Ok(tensor
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The elements of an i64 tensor. Fails with `InvalidArgument` for another element type.
#[uniffi::export]
pub fn tensor_to_i64(tensor: Tensor) -> Result<Vec<i64>> {
    check(&tensor, DType::I64)?;
    Ok(tensor
        .data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect())
}

fn check(tensor: &Tensor, dtype: DType) -> Result<()> {
    if tensor.dtype != dtype {
        return Err(EdgeKeepError::invalid(format!(
            "tensor `{}` holds {:?}, not {dtype:?}",
            tensor.name, tensor.dtype
        )));
    }
    Ok(())
}

fn le<const N: usize, T>(data: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| from(c.try_into().unwrap_or([0; N])))
        .collect()
}

impl Tensor {
    /// Converts to the SDK's tensor, checking that `data` fits `shape` and `dtype`.
    pub(crate) fn to_core(&self) -> Result<core::Tensor> {
        let shape: Vec<usize> = self
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| EdgeKeepError::invalid("tensor dimension too large"))?;
        let width = self
            .dtype
            .width()
            .ok_or_else(|| EdgeKeepError::invalid("unsupported tensor element type"))?;
        let elements = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| EdgeKeepError::invalid("tensor shape too large"))?;
        if elements.checked_mul(width) != Some(self.data.len()) {
            return Err(EdgeKeepError::invalid(format!(
                "tensor `{}`: shape {:?} of {:?} needs {} bytes, got {}",
                self.name,
                self.shape,
                self.dtype,
                elements.saturating_mul(width),
                self.data.len()
            )));
        }
        let d = &self.data;
        let tensor = match self.dtype {
            DType::F32 => core::Tensor::from_shape_vec(&shape, le(d, f32::from_le_bytes)),
            DType::F16 => core::Tensor::from_shape_vec(&shape, le(d, half::f16::from_le_bytes)),
            DType::F64 => core::Tensor::from_shape_vec(&shape, le(d, f64::from_le_bytes)),
            DType::I64 => core::Tensor::from_shape_vec(&shape, le(d, i64::from_le_bytes)),
            DType::I32 => core::Tensor::from_shape_vec(&shape, le(d, i32::from_le_bytes)),
            DType::I8 => core::Tensor::from_shape_vec(&shape, le(d, i8::from_le_bytes)),
            DType::U8 => core::Tensor::from_shape_vec(&shape, d.clone()),
            DType::Bool => {
                core::Tensor::from_shape_vec(&shape, d.iter().map(|&b| b != 0).collect())
            }
            DType::Unsupported => unreachable!("width() refused it"),
        }?;
        Ok(tensor)
    }

    /// Copies an SDK tensor out under `name`.
    pub(crate) fn from_core(name: &str, tensor: &core::Tensor) -> Result<Self> {
        fn bytes<T: core::Element, const N: usize>(
            t: &core::Tensor,
            to: fn(T) -> [u8; N],
        ) -> Result<Vec<u8>> {
            Ok(t.as_slice::<T>()?.iter().flat_map(|&v| to(v)).collect())
        }
        let dtype = DType::from(tensor.dtype());
        let data = match dtype {
            DType::F32 => bytes(tensor, f32::to_le_bytes)?,
            DType::F16 => bytes(tensor, half::f16::to_le_bytes)?,
            DType::F64 => bytes(tensor, f64::to_le_bytes)?,
            DType::I64 => bytes(tensor, i64::to_le_bytes)?,
            DType::I32 => bytes(tensor, i32::to_le_bytes)?,
            DType::I8 => bytes(tensor, i8::to_le_bytes)?,
            DType::U8 => bytes(tensor, u8::to_le_bytes)?,
            DType::Bool => bytes(tensor, |b: bool| [u8::from(b)])?,
            DType::Unsupported => {
                return Err(EdgeKeepError::Inference {
                    reason: format!("output `{name}` has an element type the SDK cannot export"),
                });
            }
        };
        Ok(Self {
            name: name.to_owned(),
            dtype,
            shape: tensor.shape().iter().map(|&d| d as u64).collect(),
            data,
        })
    }
}

/// Converts named FFI tensors to the SDK's `(name, tensor)` pairs.
pub(crate) fn to_core_inputs(inputs: &[Tensor]) -> Result<Vec<(String, core::Tensor)>> {
    inputs
        .iter()
        .map(|t| Ok((t.name.clone(), t.to_core()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_exchangeable_type() {
        let t = tensor_from_f32("x".into(), vec![2, 2], vec![1.0, -2.5, 3.0, 0.0]);
        let back = Tensor::from_core("x", &t.to_core().unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(tensor_to_f32(back).unwrap(), vec![1.0, -2.5, 3.0, 0.0]);
        let t = tensor_from_i64("ids".into(), vec![3], vec![1, -7, i64::MAX]);
        assert_eq!(Tensor::from_core("ids", &t.to_core().unwrap()).unwrap(), t);
        for (dtype, data) in [
            (DType::Bool, vec![1, 0]),
            (DType::U8, vec![7, 255]),
            (DType::I8, vec![0x80, 1]),
            (DType::F16, vec![0, 0x3c, 0, 0xc0]),
        ] {
            let shape = vec![2];
            let t = Tensor {
                name: "t".into(),
                dtype,
                shape,
                data,
            };
            assert_eq!(Tensor::from_core("t", &t.to_core().unwrap()).unwrap(), t);
        }
    }

    #[test]
    fn refuses_data_that_does_not_fit_the_shape() {
        let t = tensor_from_f32("x".into(), vec![3], vec![1.0]);
        assert!(matches!(
            t.to_core(),
            Err(EdgeKeepError::InvalidArgument { .. })
        ));
        assert!(tensor_to_i64(t).is_err());
    }
}
