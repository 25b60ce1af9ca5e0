//! Every bundled model, run through the public API, matches ONNX Runtime's golden outputs.

#[path = "support/manifest.rs"]
mod manifest;

use edgekeep::inference::{Dim, Model};
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
