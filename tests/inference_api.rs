//! The inference API's contract: typed errors, stateful sessions, pinning, sharing, NNEF.

#[path = "support/manifest.rs"]
mod manifest;

use std::sync::Arc;

use edgekeep::inference::{
    ComputePool, DType, InferenceError, Model, ModelFormat, ModelLoader, Tensor, convert_to_nnef,
};
use manifest::{Golden, ModelEntry, compare, load_manifest, models_dir};

fn entry(name: &str) -> ModelEntry {
    load_manifest()
        .into_iter()
        .find(|e| e.name == name)
        .expect("model in manifest")
}

fn logreg() -> (ModelEntry, Model) {
    let e = entry("logreg");
    let m = e.loader().load_path(e.path()).unwrap();
    (e, m)
}

#[test]
fn model_is_send_sync_and_cheap_to_share() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
    assert_send_sync::<Tensor>();
}

#[test]
fn unknown_missing_duplicate_inputs_are_typed_errors() {
    let (_, model) = logreg();
    let x = || Tensor::from_shape_vec(&[1, 16], vec![0.5f32; 16]).unwrap();
    assert!(
        matches!(model.run([("nope", x())]), Err(InferenceError::UnknownInput(n)) if n == "nope")
    );
    assert!(
        matches!(model.run(Vec::<(&str, Tensor)>::new()), Err(InferenceError::MissingInput(n)) if n == "X")
    );
    assert!(matches!(
        model.run([("X", x()), ("X", x())]),
        Err(InferenceError::DuplicateInput(_))
    ));
    assert!(model.run([("X", x())]).is_ok());
}

#[test]
fn wrong_dtype_and_shape_are_typed_errors() {
    let (_, model) = logreg();
    let ints = Tensor::from_shape_vec(&[1, 16], vec![1i64; 16]).unwrap();
    assert!(matches!(
        model.run([("X", ints)]),
        Err(InferenceError::DTypeMismatch {
            expected: DType::F32,
            actual: DType::I64,
            ..
        })
    ));
    let narrow = Tensor::from_shape_vec(&[1, 15], vec![0f32; 15]).unwrap();
    assert!(matches!(
        model.run([("X", narrow)]),
        Err(InferenceError::ShapeMismatch { .. })
    ));
    let rank3 = Tensor::from_shape_vec(&[1, 1, 16], vec![0f32; 16]).unwrap();
    assert!(matches!(
        model.run([("X", rank3)]),
        Err(InferenceError::ShapeMismatch { .. })
    ));
}

#[test]
fn unknown_output_is_a_typed_error() {
    let (_, model) = logreg();
    let out = model
        .run([(
            "X",
            Tensor::from_shape_vec(&[2, 16], vec![0.1f32; 32]).unwrap(),
        )])
        .unwrap();
    assert!(matches!(
        out.get("nope"),
        Err(InferenceError::UnknownOutput(_))
    ));
    assert_eq!(out.get("probabilities").unwrap().shape(), &[2, 3]);
}

#[test]
fn unsupported_operator_is_named() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/unsupported_op.onnx");
    match Model::load(path) {
        Err(InferenceError::UnsupportedOperator { op, node }) => {
            assert_eq!(op, "EdgekeepFrobnicate");
            assert_eq!(node, "frob");
        }
        other => panic!("expected UnsupportedOperator, got {other:?}"),
    }
}

#[test]
fn truncated_and_corrupt_files_are_typed_errors() {
    let bytes = std::fs::read(entry("mobilenet_tiny").path()).unwrap();
    for cut in [1usize, 17, bytes.len() / 3, bytes.len() - 9] {
        let err = Model::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                InferenceError::InvalidModel { .. } | InferenceError::Analysis { .. }
            ),
            "cut at {cut}: {err:?}"
        );
    }
    let mut flipped = bytes.clone();
    for b in flipped.iter_mut().take(64) {
        *b ^= 0xa5;
    }
    assert!(Model::from_bytes(&flipped).is_err());
}

#[test]
fn unknown_names_at_load_are_typed_errors() {
    let e = entry("logreg");
    let pin = ModelLoader::new()
        .pin_input("nope", Tensor::scalar(1i64))
        .load_path(e.path());
    assert!(matches!(pin, Err(InferenceError::UnknownInput(_))));
    let out = e
        .loader()
        .with_outputs(["not_a_tensor"])
        .load_path(e.path());
    assert!(matches!(out, Err(InferenceError::UnknownTensor(_))));
}

#[test]
fn pinned_input_disappears_and_still_matches_golden() {
    let e = entry("silero_vad");
    let model = e.loader().load_path(e.path()).unwrap();
    assert!(model.inputs().iter().all(|i| i.name != "sr"));
    let golden = Golden::open(&e.golden_path());
    let out = model.run(golden.run_inputs(&e)).unwrap();
    compare(
        out.get("output").unwrap(),
        &golden.output(0, DType::F32),
        e.tolerance,
    )
    .unwrap();
}

#[test]
fn stateful_session_carries_state_like_manual_feeding() {
    let e = entry("silero_vad");
    let model = e.loader().load_path(e.path()).unwrap();
    let golden = Golden::open(&e.golden_path());
    let audio = golden.input(0, DType::F32);
    let mut session = model.stateful(&[("stateN", "state")]).unwrap();
    let mut state = Tensor::zeros(DType::F32, &[2, 1, 128]).unwrap();
    for step in 0..4 {
        let manual = model
            .run([("input", audio.clone()), ("state", state.clone())])
            .unwrap();
        let stepped = session.step([("input", audio.clone())]).unwrap();
        assert_eq!(
            manual.get("output").unwrap(),
            stepped.get("output").unwrap(),
            "step {step}"
        );
        state = manual.get("stateN").unwrap().clone();
    }
    assert_ne!(
        state,
        Tensor::zeros(DType::F32, &[2, 1, 128]).unwrap(),
        "state must evolve"
    );
    session.reset().unwrap();
    let first = session.step([("input", audio.clone())]).unwrap();
    let fresh = model
        .run([
            ("input", audio),
            ("state", Tensor::zeros(DType::F32, &[2, 1, 128]).unwrap()),
        ])
        .unwrap();
    assert_eq!(first.get("output").unwrap(), fresh.get("output").unwrap());
    assert!(matches!(
        model.stateful(&[("nope", "state")]),
        Err(InferenceError::StateBinding { .. })
    ));
}

#[test]
fn many_threads_share_one_model() {
    let e = entry("transformer_tiny");
    let model = e.loader().load_path(e.path()).unwrap();
    let golden = Arc::new(Golden::open(&e.golden_path()));
    let inputs = golden.run_inputs(&e);
    let expected = model
        .run(inputs.clone())
        .unwrap()
        .get("logits")
        .unwrap()
        .clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (model, inputs) = (model.clone(), inputs.clone());
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| {
                        model
                            .run(inputs.clone())
                            .unwrap()
                            .get("logits")
                            .unwrap()
                            .clone()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for got in h.join().unwrap() {
            assert_eq!(got, expected);
        }
    }
}

#[test]
fn compute_pool_gives_the_same_answers() {
    let e = entry("mobilenet_tiny");
    let golden = Golden::open(&e.golden_path());
    let pooled = e
        .loader()
        .with_compute_pool(ComputePool::new(2))
        .load_path(e.path())
        .unwrap();
    let out = pooled.run(golden.run_inputs(&e)).unwrap();
    compare(
        out.get("logits").unwrap(),
        &golden.output(0, DType::F32),
        e.tolerance,
    )
    .unwrap();
}

#[test]
fn intermediate_outputs_can_be_selected() {
    let e = entry("mobilenet_tiny");
    let model = e
        .loader()
        .with_outputs(["embedding"])
        .load_path(e.path())
        .unwrap();
    assert_eq!(model.outputs().len(), 1);
    assert_eq!(model.outputs()[0].name, "embedding");
    let golden = Golden::open(&e.golden_path());
    let out = model.run(golden.run_inputs(&e)).unwrap();
    compare(
        out.get("embedding").unwrap(),
        &golden.output(1, DType::F32),
        e.tolerance,
    )
    .unwrap();
}

#[test]
fn nnef_round_trip_matches_onnx_from_memory() {
    for name in ["mobilenet_tiny", "silero_vad"] {
        let e = entry(name);
        let onnx = std::fs::read(e.path()).unwrap();
        let nnef =
            convert_to_nnef(&e.loader(), &onnx).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(ModelFormat::sniff(&nnef), ModelFormat::Nnef);
        let model = ModelLoader::new().load_bytes(&nnef).unwrap();
        assert_eq!(model.load_report().format, ModelFormat::Nnef);
        let golden = Golden::open(&e.golden_path());
        let out = model.run(golden.run_inputs(&e)).unwrap();
        for (ix, spec) in e.outputs.iter().enumerate() {
            compare(
                out.get(&spec.name).unwrap(),
                &golden.output(ix, spec.dtype()),
                e.tolerance,
            )
            .unwrap_or_else(|why| panic!("{name} {}: {why}", spec.name));
        }
    }
    assert!(models_dir().exists());
}
