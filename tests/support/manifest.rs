//! Reading `models/manifest.json` and the ONNX Runtime goldens beside it.
//!
//! Shared by the golden tests, the benches and the model tour example (`#[path]`-included).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use edgekeep::inference::{DType, Dim, ModelLoader, Tensor};
use ndarray::ArrayD;
use ndarray_npy::NpzReader;
use serde::Deserialize;

/// One model of the bundled set.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub file: String,
    pub family: String,
    pub license: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    #[serde(default)]
    pub pinned_inputs: BTreeMap<String, String>,
    pub golden: String,
    #[serde(default)]
    pub golden_batch8: Option<String>,
    pub tolerance: Tolerance,
    #[serde(default)]
    pub batch_dim: Option<String>,
    #[serde(default)]
    pub embedding_output: Option<String>,
    #[serde(default)]
    pub state: Vec<StateBinding>,
}

/// A declared input or output.
#[derive(Debug, Clone, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<serde_json::Value>,
}

/// Accepted difference to the golden: |a - b| <= atol + rtol * |b|.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

/// Which output feeds which input between steps.
#[derive(Debug, Clone, Deserialize)]
pub struct StateBinding {
    pub input: String,
    pub output: String,
}

/// The folder holding the bundled models.
pub fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Every model of the bundled set.
pub fn load_manifest() -> Vec<ModelEntry> {
    let path = models_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is well formed")
}

impl TensorSpec {
    pub fn dtype(&self) -> DType {
        DType::from_name(&self.dtype).unwrap_or_else(|| panic!("unknown dtype {}", self.dtype))
    }

    pub fn dims(&self) -> Vec<Dim> {
        self.shape
            .iter()
            .map(|d| match d {
                serde_json::Value::Number(n) => {
                    Dim::Fixed(n.as_u64().expect("positive dim") as usize)
                }
                serde_json::Value::String(s) => Dim::Symbolic(s.clone()),
                other => panic!("bad dim {other}"),
            })
            .collect()
    }
}

impl ModelEntry {
    pub fn path(&self) -> PathBuf {
        models_dir().join(&self.file)
    }

    /// Inputs that are fed per run (not pinned).
    pub fn run_inputs(&self) -> impl Iterator<Item = (usize, &TensorSpec)> {
        self.inputs
            .iter()
            .enumerate()
            .filter(|(_, i)| !self.pinned_inputs.contains_key(&i.name))
    }

    /// A loader declaring the manifest's shapes and pinning the manifest's pinned inputs to
    /// their golden values.
    pub fn loader(&self) -> ModelLoader {
        let golden = Golden::open(&self.golden_path());
        let mut loader = ModelLoader::new();
        for (ix, spec) in self.inputs.iter().enumerate() {
            if self.pinned_inputs.contains_key(&spec.name) {
                loader = loader.pin_input(&spec.name, golden.input(ix, spec.dtype()));
            } else {
                loader = loader.with_input_shape(&spec.name, Some(spec.dtype()), spec.dims());
            }
        }
        loader
    }

    /// A loader with the pins only: every shape as the file (or the inputs of a run) gives it.
    pub fn loader_without_shapes(&self) -> ModelLoader {
        let golden = Golden::open(&self.golden_path());
        let mut loader = ModelLoader::new();
        for (ix, spec) in self.inputs.iter().enumerate() {
            if self.pinned_inputs.contains_key(&spec.name) {
                loader = loader.pin_input(&spec.name, golden.input(ix, spec.dtype()));
            }
        }
        loader
    }

    pub fn golden_path(&self) -> PathBuf {
        models_dir().join(&self.golden)
    }

    pub fn golden_batch8_path(&self) -> Option<PathBuf> {
        self.golden_batch8.as_ref().map(|g| models_dir().join(g))
    }
}

/// One golden `.npz`: `input_<i>` and `output_<i>` arrays in manifest order.
pub struct Golden(PathBuf);

impl Golden {
    pub fn open(path: &Path) -> Golden {
        Golden(path.to_path_buf())
    }

    pub fn input(&self, ix: usize, dtype: DType) -> Tensor {
        self.array(&format!("input_{ix}"), dtype)
    }

    pub fn output(&self, ix: usize, dtype: DType) -> Tensor {
        self.array(&format!("output_{ix}"), dtype)
    }

    /// The run inputs of `entry`, named.
    pub fn run_inputs(&self, entry: &ModelEntry) -> Vec<(String, Tensor)> {
        entry
            .run_inputs()
            .map(|(ix, spec)| (spec.name.clone(), self.input(ix, spec.dtype())))
            .collect()
    }

    fn array(&self, key: &str, dtype: DType) -> Tensor {
        let mut npz =
            NpzReader::new(File::open(&self.0).expect("golden file")).expect("golden npz");
        fn get<T: edgekeep::inference::Element + ndarray_npy::ReadableElement>(
            npz: &mut NpzReader<File>,
            key: &str,
        ) -> Tensor {
            let array: ArrayD<T> = npz.by_name(key).unwrap_or_else(|e| panic!("{key}: {e}"));
            Tensor::from(array)
        }
        match dtype {
            DType::F32 => get::<f32>(&mut npz, key),
            DType::F64 => get::<f64>(&mut npz, key),
            DType::I64 => get::<i64>(&mut npz, key),
            DType::I32 => get::<i32>(&mut npz, key),
            DType::I8 => get::<i8>(&mut npz, key),
            DType::U8 => get::<u8>(&mut npz, key),
            DType::Bool => get::<bool>(&mut npz, key),
            other => panic!("golden of type {other} not supported"),
        }
    }
}

/// The largest violation of `tol` between `actual` and `expected`, as (max abs diff, passes).
pub fn compare(actual: &Tensor, expected: &Tensor, tol: Tolerance) -> Result<f64, String> {
    if actual.shape() != expected.shape() {
        return Err(format!(
            "shape {:?} != golden {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    if actual.dtype() != expected.dtype() {
        return Err(format!(
            "dtype {} != golden {}",
            actual.dtype(),
            expected.dtype()
        ));
    }
    let pairs: Vec<(f64, f64)> = match actual.dtype() {
        DType::F32 => zip_f64::<f32>(actual, expected, |v| v as f64),
        DType::F64 => zip_f64::<f64>(actual, expected, |v| v),
        DType::I64 => zip_f64::<i64>(actual, expected, |v| v as f64),
        DType::I32 => zip_f64::<i32>(actual, expected, |v| v as f64),
        DType::U8 => zip_f64::<u8>(actual, expected, |v| v as f64),
        DType::Bool => zip_f64::<bool>(actual, expected, |v| v as u8 as f64),
        other => return Err(format!("cannot compare {other}")),
    };
    let mut max_diff = 0.0f64;
    for (a, e) in pairs {
        let diff = (a - e).abs();
        let within = diff <= tol.atol + tol.rtol * e.abs();
        if !within {
            return Err(format!("value {a} vs golden {e} (diff {diff:e})"));
        }
        max_diff = max_diff.max(diff);
    }
    Ok(max_diff)
}

fn zip_f64<T: edgekeep::inference::Element>(
    a: &Tensor,
    b: &Tensor,
    f: fn(T) -> f64,
) -> Vec<(f64, f64)> {
    let a = a.view::<T>().expect("typed view");
    let b = b.view::<T>().expect("typed view");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (f(*x), f(*y)))
        .collect()
}
