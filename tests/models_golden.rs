//! Every bundled model, run through the public API, matches ONNX Runtime's golden outputs.

#[path = "support/manifest.rs"]
mod manifest;

use edgekeep::inference::{DType, Dim, Model, ModelLoader, Tensor};
use manifest::{Golden, ModelEntry, compare, load_manifest};

fn load(entry: &ModelEntry) -> Model {
    entry
        .loader()
        .load_path(entry.path())
        .unwrap_or_else(|e| panic!("{}: {e}", entry.name))
}

fn check_against(entry: &ModelEntry, model: &Model, golden: &Golden) -> Vec<String> {
    let outputs = model
        .run(golden.run_inputs(entry))
        .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
    let mut failures = Vec::new();
    for (ix, spec) in entry.outputs.iter().enumerate() {
        let expected = golden.output(ix, spec.dtype());
        let actual = outputs
            .get(&spec.name)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
        if let Err(why) = compare(actual, &expected, entry.tolerance) {
            failures.push(format!("{} output `{}`: {why}", entry.name, spec.name));
        }
    }
    failures
}

#[test]
fn every_model_matches_onnx_runtime() {
    let manifest = load_manifest();
    assert!(
        manifest.len() >= 6,
        "the model set has {} models",
        manifest.len()
    );
    let mut failures = Vec::new();
    for entry in &manifest {
        let model = load(entry);
        failures.extend(check_against(
            entry,
            &model,
            &Golden::open(&entry.golden_path()),
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn symbolic_batch_runs_at_1_and_8_without_reloading() {
    let manifest = load_manifest();
    let batched: Vec<_> = manifest
        .iter()
        .filter(|e| e.golden_batch8.is_some())
        .collect();
    assert!(batched.len() >= 2, "need two models with a symbolic batch");
    for entry in batched {
        let model = load(entry);
        let batch = entry.batch_dim.as_deref().expect("batch_dim");
        assert!(
            model
                .inputs()
                .iter()
                .any(|i| i.shape.first() == Some(&Dim::Symbolic(batch.into()))),
            "{}: inputs {:?}",
            entry.name,
            model.inputs()
        );
        let one = check_against(entry, &model, &Golden::open(&entry.golden_path()));
        let eight = check_against(
            entry,
            &model,
            &Golden::open(&entry.golden_batch8_path().unwrap()),
        );
        assert!(one.is_empty() && eight.is_empty(), "{one:#?} {eight:#?}");
    }
}

#[test]
fn declared_inputs_and_outputs_are_inspectable() {
    for entry in load_manifest() {
        let model = load(&entry);
        let names: Vec<&str> = model.inputs().iter().map(|i| i.name.as_str()).collect();
        let expected: Vec<&str> = entry.run_inputs().map(|(_, s)| s.name.as_str()).collect();
        assert_eq!(names, expected, "{}", entry.name);
        for (info, spec) in model
            .inputs()
            .iter()
            .zip(entry.run_inputs().map(|(_, s)| s))
        {
            assert_eq!(info.dtype, spec.dtype(), "{} {}", entry.name, spec.name);
            assert_eq!(info.shape, spec.dims(), "{} {}", entry.name, spec.name);
        }
        let outs: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
        let expected: Vec<&str> = entry.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outs, expected, "{}", entry.name);
    }
}

/// No declared shapes: what the file leaves undetermined is taken from each run's inputs, and
/// the answers are still ONNX Runtime's.
#[test]
fn every_model_matches_onnx_runtime_without_declared_shapes() {
    let mut failures = Vec::new();
    let mut per_run = Vec::new();
    for entry in load_manifest() {
        let model = entry
            .loader_without_shapes()
            .load_path(entry.path())
            .unwrap_or_else(|e| panic!("{} without declared shapes: {e}", entry.name));
        if model.load_report().specialized_per_run {
            per_run.push(entry.name.clone());
        }
        for golden in std::iter::once(entry.golden_path()).chain(entry.golden_batch8_path()) {
            failures.extend(check_against(&entry, &model, &Golden::open(&golden)));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The PaddleOCR graphs declare every size as unknown: they are the case this exists for.
    for name in ["ppocr_cls", "ppocr_det"] {
        assert!(per_run.contains(&name.to_string()), "{name}: {per_run:?}");
    }
}

/// An OCR line classifier takes any line width without reloading: each width is one plan,
/// built once, reused on the next run of that width, and the cache stays within its bound.
#[test]
fn variable_width_lines_run_on_one_model_with_a_bounded_plan_cache() {
    let entry = load_manifest()
        .into_iter()
        .find(|e| e.name == "ppocr_cls")
        .unwrap();
    let model = ModelLoader::new()
        .with_plan_cache_capacity(2)
        .load_path(entry.path())
        .unwrap();
    assert!(model.load_report().specialized_per_run);
    let input = &model.inputs()[0];
    assert_eq!(input.dtype, DType::F32);
    assert_eq!(input.shape.len(), 4, "{input}");
    let line = |width: usize| {
        let values = (0..3 * 48 * width)
            .map(|i| ((i * 37 % 255) as f32 / 127.5) - 1.0)
            .collect();
        Tensor::from_shape_vec(&[1, 3, 48, width], values).unwrap()
    };
    let probabilities = |width: usize| {
        let outputs = model.run([("x", line(width))]).unwrap();
        let (_, out) = outputs.iter().next().unwrap();
        assert_eq!(out.shape(), &[1, 2], "width {width}");
        out.as_slice::<f32>().unwrap().to_vec()
    };
    let narrow = probabilities(192);
    let wide = probabilities(320);
    for p in [&narrow, &wide] {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{p:?}");
    }
    let stats = model.plan_cache_stats().unwrap();
    assert_eq!((stats.misses, stats.hits, stats.entries), (2, 0, 2));
    assert_eq!(
        probabilities(192),
        narrow,
        "a cached plan answers as the first"
    );
    assert_eq!(model.plan_cache_stats().unwrap().hits, 1);
    probabilities(100);
    let stats = model.plan_cache_stats().unwrap();
    assert_eq!((stats.misses, stats.entries, stats.capacity), (3, 2, 2));
    probabilities(320);
    assert_eq!(
        model.plan_cache_stats().unwrap().misses,
        4,
        "320 was the least recently used and was forgotten"
    );

    let threads: Vec<_> = (0..4)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || {
                model.run([("x", line(256))]).map(|o| {
                    o.iter()
                        .next()
                        .unwrap()
                        .1
                        .as_slice::<f32>()
                        .unwrap()
                        .to_vec()
                })
            })
        })
        .collect();
    let answers: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(model.plan_cache_stats().unwrap().entries, 2);
}

/// Inputs a specialized model cannot take are typed errors at run time, never a panic.
#[test]
fn a_wrong_rank_or_type_for_a_model_specialized_per_run_is_a_typed_error() {
    use edgekeep::inference::InferenceError;
    let entry = load_manifest()
        .into_iter()
        .find(|e| e.name == "ppocr_cls")
        .unwrap();
    let model = Model::load(entry.path()).unwrap();
    let flat = Tensor::from_shape_vec(&[3, 48], vec![0f32; 3 * 48]).unwrap();
    assert!(matches!(
        model.run([("x", flat)]),
        Err(InferenceError::ShapeMismatch { ref name, .. }) if name == "x"
    ));
    let ints = Tensor::from_shape_vec(&[1, 3, 48, 8], vec![0i64; 3 * 48 * 8]).unwrap();
    assert!(matches!(
        model.run([("x", ints)]),
        Err(InferenceError::DTypeMismatch { .. })
    ));
    let too_few_channels = Tensor::from_shape_vec(&[1, 1, 48, 8], vec![0f32; 48 * 8]).unwrap();
    assert!(model.run([("x", too_few_channels)]).is_err());
}
