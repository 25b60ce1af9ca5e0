//! Element types a tensor can hold, and the Rust types that map to them.

use std::fmt;

use tract_onnx::prelude::{Datum, DatumType};

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// Boolean.
    Bool,
    /// A type the SDK cannot exchange with callers (strings, quantized, 16-bit ints, ...).
    Unsupported,
}

impl DType {
    /// The short lowercase name used in manifests and the CLI (`f32`, `i64`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
            DType::Unsupported => "unsupported",
        }
    }

    /// Parses a name produced by [`DType::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        [
            DType::F32,
            DType::F16,
            DType::F64,
            DType::I64,
            DType::I32,
            DType::I8,
            DType::U8,
            DType::Bool,
        ]
        .into_iter()
        .find(|d| d.name() == name)
    }

    pub(crate) fn from_datum(dt: DatumType) -> DType {
        match dt.unquantized() {
            DatumType::F32 => DType::F32,
            DatumType::F16 => DType::F16,
            DatumType::F64 => DType::F64,
            DatumType::I64 => DType::I64,
            DatumType::I32 => DType::I32,
            DatumType::I8 => DType::I8,
            DatumType::U8 => DType::U8,
            DatumType::Bool => DType::Bool,
            _ => DType::Unsupported,
        }
    }

    pub(crate) fn to_datum(self) -> Option<DatumType> {
        Some(match self {
            DType::F32 => DatumType::F32,
            DType::F16 => DatumType::F16,
            DType::F64 => DatumType::F64,
            DType::I64 => DatumType::I64,
            DType::I32 => DatumType::I32,
            DType::I8 => DatumType::I8,
            DType::U8 => DatumType::U8,
            DType::Bool => DatumType::Bool,
            DType::Unsupported => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that can be the element of a [`Tensor`](super::Tensor).
///
/// Implemented for `f32`, [`half::f16`], `f64`, `i64`, `i32`, `i8`, `u8` and `bool`.
pub trait Element: Datum + Copy + sealed::Sealed {
    /// The matching [`DType`].
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(
            impl sealed::Sealed for $t {}
            impl Element for $t {
                const DTYPE: DType = DType::$d;
            }
        )*
    };
}

element!(f32 => F32, half::f16 => F16, f64 => F64, i64 => I64, i32 => I32, i8 => I8, u8 => U8, bool => Bool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in [
            DType::F32,
            DType::F16,
            DType::F64,
            DType::I64,
            DType::I32,
            DType::I8,
            DType::U8,
            DType::Bool,
        ] {
            assert_eq!(DType::from_name(d.name()), Some(d));
            assert_eq!(DType::from_datum(d.to_datum().unwrap()), d);
        }
        assert_eq!(DType::from_name("string"), None);
        assert_eq!(DType::from_datum(DatumType::String), DType::Unsupported);
    }
}
