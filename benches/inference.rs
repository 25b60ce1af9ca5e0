//! SDK overhead over raw tract, and model load time from ONNX vs NNEF.
//!
//! `cargo bench --bench inference` — the overhead group runs the same optimized model through
//! `Model::run` and through tract's own plan, on the same inputs; report the ratio of medians.
//! The threads group compares one thread with a two-thread `ComputePool`. The plans group runs
//! models loaded with the manifest's shapes against the same models loaded with none (a plan
//! per input signature, every run after the first a cache hit), and times one specialization
//! (loading with no shapes and a first run: parse, then type and optimize for that shape).

#[path = "../tests/support/manifest.rs"]
mod manifest;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use edgekeep::inference::{ComputePool, Dim, ModelLoader, convert_to_nnef};
use manifest::{Golden, ModelEntry, load_manifest};
use tract_onnx::prelude::*;

const OVERHEAD_MODELS: &[&str] = &["logreg", "transformer_tiny", "mobilenet_tiny", "magika"];

fn raw_tract_plan(entry: &ModelEntry) -> TypedSimplePlan {
    let mut graph = tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_path(entry.path())
        .expect("tract parses the model");
    for (ix, spec) in entry.inputs.iter().enumerate() {
        let dims: TVec<TDim> = spec
            .dims()
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => TDim::from(*n),
                Dim::Symbolic(s) => TDim::Sym(graph.sym(s)),
            })
            .collect();
        let dt = match spec.dtype.as_str() {
            "f32" => f32::datum_type(),
            "i64" => i64::datum_type(),
            "i32" => i32::datum_type(),
            other => panic!("bench input type {other}"),
        };
        graph
            .set_input_fact(ix, InferenceFact::dt_shape(dt, dims))
            .unwrap();
    }
    let plan = graph.into_optimized().unwrap().into_runnable().unwrap();
    std::sync::Arc::try_unwrap(plan).unwrap_or_else(|arc| (*arc).clone())
}

fn overhead(c: &mut Criterion) {
    let manifest = load_manifest();
    let mut group = c.benchmark_group("run");
    for name in OVERHEAD_MODELS {
        let entry = manifest.iter().find(|e| e.name == *name).expect("model");
        let golden = Golden::open(&entry.golden_path());
        let inputs = golden.run_inputs(entry);
        let model = entry.loader().load_path(entry.path()).unwrap();
        group.bench_function(format!("{name}/edgekeep"), |b| {
            b.iter(|| black_box(model.run(inputs.clone()).unwrap()))
        });
        let plan = std::sync::Arc::new(raw_tract_plan(entry));
        let raw_inputs: TVec<TValue> = inputs.iter().map(|(_, t)| to_tract(t)).collect();
        group.bench_function(format!("{name}/tract"), |b| {
            b.iter(|| black_box(plan.run(raw_inputs.clone()).unwrap()))
        });
    }
    group.finish();
}

fn to_tract(t: &edgekeep::inference::Tensor) -> TValue {
    use edgekeep::inference::DType;
    let tensor: Tensor = match t.dtype() {
        DType::F32 => t.to_array::<f32>().unwrap().into(),
        DType::I64 => t.to_array::<i64>().unwrap().into(),
        DType::I32 => t.to_array::<i32>().unwrap().into(),
        other => panic!("bench input type {other}"),
    };
    tensor.into_tvalue()
}

fn load(c: &mut Criterion) {
    let manifest = load_manifest();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for name in ["mobilenet_tiny", "ppocr_cls", "silero_vad"] {
        let entry = manifest.iter().find(|e| e.name == name).expect("model");
        let onnx = std::fs::read(entry.path()).unwrap();
        let loader = entry.loader();
        let nnef = convert_to_nnef(&loader, &onnx).unwrap();
        group.bench_function(format!("{name}/onnx"), |b| {
            b.iter(|| black_box(loader.load_bytes(&onnx).unwrap()))
        });
        group.bench_function(format!("{name}/nnef"), |b| {
            b.iter(|| black_box(ModelLoader::new().load_bytes(&nnef).unwrap()))
        });
    }
    group.finish();
}

/// Single-threaded runs against tract's multithreaded executor on a two-thread pool, on
/// models whose matrix products are large enough to split.
fn threads(c: &mut Criterion) {
    let manifest = load_manifest();
    let mut group = c.benchmark_group("threads");
    let pool = ComputePool::new(2);
    for name in ["mobilenet_tiny", "ppocr_det", "magika"] {
        let entry = manifest.iter().find(|e| e.name == name).expect("model");
        let inputs = Golden::open(&entry.golden_path()).run_inputs(entry);
        let single = entry.loader().load_path(entry.path()).unwrap();
        let pooled = entry
            .loader()
            .with_compute_pool(pool.clone())
            .load_path(entry.path())
            .unwrap();
        group.bench_function(format!("{name}/1"), |b| {
            b.iter(|| black_box(single.run(inputs.clone()).unwrap()))
        });
        group.bench_function(format!("{name}/2"), |b| {
            b.iter(|| black_box(pooled.run(inputs.clone()).unwrap()))
        });
    }
    group.finish();
}

fn plans(c: &mut Criterion) {
    let manifest = load_manifest();
    let mut group = c.benchmark_group("plans");
    for name in ["ppocr_cls", "magika"] {
        let entry = manifest.iter().find(|e| e.name == name).expect("model");
        let inputs = Golden::open(&entry.golden_path()).run_inputs(entry);
        let declared = entry.loader().load_path(entry.path()).unwrap();
        let per_run = entry
            .loader_without_shapes()
            .load_path(entry.path())
            .unwrap();
        assert!(per_run.load_report().specialized_per_run, "{name}");
        group.bench_function(format!("{name}/declared"), |b| {
            b.iter(|| black_box(declared.run(inputs.clone()).unwrap()))
        });
        group.bench_function(format!("{name}/cache-hit"), |b| {
            b.iter(|| black_box(per_run.run(inputs.clone()).unwrap()))
        });
    }
    group.sample_size(10);
    let entry = manifest
        .iter()
        .find(|e| e.name == "ppocr_cls")
        .expect("model");
    let inputs = Golden::open(&entry.golden_path()).run_inputs(entry);
    let onnx = std::fs::read(entry.path()).unwrap();
    group.bench_function("ppocr_cls/load-and-first-run", |b| {
        b.iter(|| {
            let model = ModelLoader::new().load_bytes(&onnx).unwrap();
            black_box(model.run(inputs.clone()).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, overhead, load, threads, plans);
criterion_main!(benches);
