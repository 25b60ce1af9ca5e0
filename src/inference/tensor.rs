//! The tensor type exchanged with models.

use std::fmt;

use ndarray::{Array, ArrayD, ArrayViewD, Dimension, IxDyn};
use tract_onnx::prelude::{IntoTValue, TValue, Tensor as TractTensor};

use super::{DType, Element, InferenceError};

/// An n-dimensional array of one [`DType`], owned.
///
/// Build one from an `ndarray` array (`Tensor::from(array)`) or from a shape and a flat vector
/// ([`Tensor::from_shape_vec`]); read it back with [`Tensor::view`] or [`Tensor::as_slice`].
/// `Debug` prints the type and shape only, never the values: tensors hold user data.
#[derive(Clone, PartialEq)]
pub struct Tensor(TractTensor);

impl Tensor {
    /// A tensor of `shape` filled from `data` in row-major order.
    ///
    /// Fails with [`InferenceError::ElementCount`] when `data.len()` is not the shape's product.
    pub fn from_shape_vec<T: Element>(
        shape: &[usize],
        data: Vec<T>,
    ) -> Result<Tensor, InferenceError> {
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(InferenceError::ElementCount {
                shape: shape.to_vec(),
                expected,
                actual: data.len(),
            });
        }
        let array = ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| {
            InferenceError::ElementCount {
                shape: shape.to_vec(),
                expected,
                actual: expected,
            }
        })?;
        Ok(Tensor::from(array))
    }

    /// A zero-filled tensor (`false` for booleans).
    ///
    /// Fails for [`DType::Unsupported`].
    pub fn zeros(dtype: DType, shape: &[usize]) -> Result<Tensor, InferenceError> {
        let dt = dtype.to_datum().ok_or(InferenceError::WrongElementType {
            requested: dtype,
            actual: dtype,
        })?;
        TractTensor::zero_dt(dt, shape)
            .map(Tensor)
            .map_err(|e| InferenceError::Execution {
                reason: super::error::reason(&e),
            })
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor(TractTensor::from(ndarray::arr0(value)))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        DType::from_datum(self.0.datum_type())
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        self.0.shape()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// A read-only `ndarray` view as element type `T`.
    ///
    /// Fails with [`InferenceError::WrongElementType`] when the tensor holds another type.
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>, InferenceError> {
        self.check::<T>()?;
        self.0
            .to_plain_array_view::<T>()
            .map_err(|_| self.wrong::<T>())
    }

    /// The elements in row-major order as type `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], InferenceError> {
        self.check::<T>()?;
        self.0
            .try_as_plain_ram()
            .and_then(|plain| plain.as_slice::<T>())
            .map_err(|_| self.wrong::<T>())
    }

    /// An owned `ndarray` array as type `T`.
    pub fn to_array<T: Element>(&self) -> Result<ArrayD<T>, InferenceError> {
        Ok(self.view::<T>()?.to_owned())
    }

    fn check<T: Element>(&self) -> Result<(), InferenceError> {
        if self.dtype() == T::DTYPE {
            Ok(())
        } else {
            Err(self.wrong::<T>())
        }
    }

    fn wrong<T: Element>(&self) -> InferenceError {
        InferenceError::WrongElementType {
            requested: T::DTYPE,
            actual: self.dtype(),
        }
    }

    pub(crate) fn from_tract(tensor: TractTensor) -> Tensor {
        Tensor(tensor)
    }

    pub(crate) fn into_tvalue(self) -> TValue {
        self.0.into_tvalue()
    }

    pub(crate) fn as_tract(&self) -> &TractTensor {
        &self.0
    }
}

impl<T: Element, D: Dimension> From<Array<T, D>> for Tensor {
    fn from(array: Array<T, D>) -> Tensor {
        Tensor(TractTensor::from(array))
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({}, {:?})", self.dtype(), self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_vec_checks_element_count() {
        let err = Tensor::from_shape_vec(&[2, 3], vec![1.0f32; 5]).unwrap_err();
        assert!(matches!(
            err,
            InferenceError::ElementCount {
                expected: 6,
                actual: 5,
                ..
            }
        ));
        let t = Tensor::from_shape_vec(&[2, 3], (0..6).map(|x| x as i64).collect()).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.dtype(), DType::I64);
        assert_eq!(t.as_slice::<i64>().unwrap()[5], 5);
    }

    #[test]
    fn reading_as_wrong_type_is_a_typed_error() {
        let t = Tensor::from(ndarray::arr1(&[1u8, 2, 3]));
        assert!(matches!(
            t.view::<f32>(),
            Err(InferenceError::WrongElementType {
                requested: DType::F32,
                actual: DType::U8
            })
        ));
        assert_eq!(t.view::<u8>().unwrap()[[2]], 3);
    }

    #[test]
    fn every_supported_type_round_trips() {
        fn rt<T: Element + PartialEq + fmt::Debug>(v: T) {
            let t = Tensor::from_shape_vec(&[1, 2], vec![v, v]).unwrap();
            assert_eq!(t.dtype(), T::DTYPE);
            assert_eq!(t.as_slice::<T>().unwrap(), &[v, v]);
            assert_eq!(Tensor::zeros(T::DTYPE, &[3]).unwrap().len(), 3);
        }
        rt(1.5f32);
        rt(half::f16::from_f32(1.5));
        rt(2.5f64);
        rt(-3i64);
        rt(-3i32);
        rt(-3i8);
        rt(200u8);
        rt(true);
    }

    #[test]
    fn debug_never_prints_values() {
        let t = Tensor::from(ndarray::arr1(&[12345.678f32]));
        let s = format!("{t:?}");
        assert!(!s.contains("12345"), "{s}");
    }
}
