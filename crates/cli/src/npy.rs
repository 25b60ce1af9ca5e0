//! NumPy `.npy` / `.npz` files to and from SDK tensors.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};
use edgekeep::inference::{DType, Tensor};
use ndarray::ArrayD;
use ndarray_npy::{NpzWriter, ReadNpyExt};

/// Reads a `.npy` file of any supported element type.
pub fn read_tensor(path: &Path) -> Result<Tensor> {
    fn attempt<T>(path: &Path) -> Option<Tensor>
    where
        T: edgekeep::inference::Element + ndarray_npy::ReadableElement,
    {
        let file = File::open(path).ok()?;
        ArrayD::<T>::read_npy(file).ok().map(Tensor::from)
    }
    File::open(path).with_context(|| format!("opening {}", path.display()))?;
    attempt::<f32>(path)
        .or_else(|| attempt::<f64>(path))
        .or_else(|| attempt::<i64>(path))
        .or_else(|| attempt::<i32>(path))
        .or_else(|| attempt::<i8>(path))
        .or_else(|| attempt::<u8>(path))
        .or_else(|| attempt::<bool>(path))
        .with_context(|| {
            format!(
                "{}: not a .npy array of f32, f64, i64, i32, i8, u8 or bool",
                path.display()
            )
        })
}

/// Writes named tensors to a compressed `.npz` archive.
pub fn write_npz<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut npz = NpzWriter::new_compressed(file);
    for (name, tensor) in tensors {
        match tensor.dtype() {
            DType::F32 => npz.add_array(name, &tensor.view::<f32>()?)?,
            DType::F64 => npz.add_array(name, &tensor.view::<f64>()?)?,
            DType::I64 => npz.add_array(name, &tensor.view::<i64>()?)?,
            DType::I32 => npz.add_array(name, &tensor.view::<i32>()?)?,
            DType::I8 => npz.add_array(name, &tensor.view::<i8>()?)?,
            DType::U8 => npz.add_array(name, &tensor.view::<u8>()?)?,
            DType::Bool => npz.add_array(name, &tensor.view::<bool>()?)?,
            other => bail!(
                "output `{name}` has element type {other}, which .npz output does not support"
            ),
        }
    }
    npz.finish()?;
    Ok(())
}
