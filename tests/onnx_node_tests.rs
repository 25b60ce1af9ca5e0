//! The ONNX project's own backend node tests, run through the SDK's public API.
//!
//! Each case is a one-operator model with inputs and expected outputs as `TensorProto` files,
//! shipped in the `onnx` wheel (`onnx/backend/test/data/node`). `scripts/test` extracts them
//! with `scripts/fetch-onnx-node-tests` and sets `EDGEKEEP_ONNX_NODE_TESTS`. A case ends in one of four ways:
//! pass, a clean typed error (unsupported), a wrong answer, or a panic. The test asserts that
//! no case panics, that passes never fall below the recorded baseline and that no case outside
//! the recorded list gives a wrong answer; it writes a per-operator report to
//! `target/onnx-node-report.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edgekeep::inference::{InferenceError, Model, Tensor};
use prost::Message;
use tract_onnx::data_resolver::MmapDataResolver;
use tract_onnx::pb::{ModelProto, TensorProto};
use tract_onnx::prelude::{DatumType, Tensor as TractTensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Pass,
    Unsupported,
    Fault,
    Wrong,
    Panic,
}

#[derive(serde::Deserialize)]
struct Baseline {
    min_passed: usize,
    known_wrong: Vec<String>,
}

fn node_tests_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("EDGEKEEP_ONNX_NODE_TESTS") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-onnx-node-tests");
    let out = std::process::Command::new(script).output().expect(
        "the ONNX node tests come from scripts/fetch-onnx-node-tests (needs python3 and pip)",
    );
    assert!(out.status.success(), "scripts/fetch-onnx-node-tests failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn read_proto(path: &Path) -> Option<TractTensor> {
    let bytes = std::fs::read(path).ok()?;
    let proto = TensorProto::decode(bytes.as_slice()).ok()?;
    tract_onnx::tensor::load_tensor(&MmapDataResolver, &proto, None).ok()
}

fn to_sdk(t: TractTensor) -> Option<Tensor> {
    macro_rules! conv {
        ($t:ty) => {
            Tensor::from(t.to_plain_array_view::<$t>().ok()?.to_owned())
        };
    }
    Some(match t.datum_type() {
        DatumType::F32 => conv!(f32),
        DatumType::F64 => conv!(f64),
        DatumType::F16 => conv!(half::f16),
        DatumType::I64 => conv!(i64),
        DatumType::I32 => conv!(i32),
        DatumType::I8 => conv!(i8),
        DatumType::U8 => conv!(u8),
        DatumType::Bool => conv!(bool),
        _ => return None,
    })
}

fn close(actual: &Tensor, expected: &TractTensor) -> bool {
    let Some(expected) = to_sdk(expected.clone()) else {
        return false;
    };
    if actual.shape() != expected.shape() || actual.dtype() != expected.dtype() {
        return false;
    }
    fn floats<T: edgekeep::inference::Element + Into<f64>>(a: &Tensor, b: &Tensor) -> bool {
        let (a, b) = (a.as_slice::<T>().unwrap(), b.as_slice::<T>().unwrap());
        a.iter().zip(b).all(|(x, y)| {
            let (x, y): (f64, f64) = ((*x).into(), (*y).into());
            (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-7 + 1e-3 * y.abs()
        })
    }
    use edgekeep::inference::DType;
    match actual.dtype() {
        DType::F32 => floats::<f32>(actual, &expected),
        DType::F64 => floats::<f64>(actual, &expected),
        DType::F16 => {
            let (a, b) = (
                actual.as_slice::<half::f16>().unwrap(),
                expected.as_slice::<half::f16>().unwrap(),
            );
            a.iter().zip(b).all(|(x, y)| {
                let (x, y) = (x.to_f64(), y.to_f64());
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-3 + 1e-2 * y.abs()
            })
        }
        _ => actual == &expected,
    }
}

fn run_case(dir: &Path) -> Outcome {
    let Ok(bytes) = std::fs::read(dir.join("model.onnx")) else {
        return Outcome::Unsupported;
    };
    let Ok(proto) = ModelProto::decode(bytes.as_slice()) else {
        return Outcome::Unsupported;
    };
    let graph = proto.graph.clone().unwrap_or_default();
    let initializers: Vec<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let input_names: Vec<String> = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !initializers.contains(&n.as_str()))
        .collect();
    let output_names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let outcome = std::panic::catch_unwind(|| {
        let model = match Model::from_bytes(&bytes) {
            Ok(m) => m,
            Err(InferenceError::RuntimeFault { .. }) => return Outcome::Fault,
            Err(_) => return Outcome::Unsupported,
        };
        let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        sets.sort();
        for set in sets {
            let mut inputs = Vec::new();
            for (ix, name) in input_names.iter().enumerate() {
                match read_proto(&set.join(format!("input_{ix}.pb"))).and_then(to_sdk) {
                    Some(t) => inputs.push((name.clone(), t)),
                    None => return Outcome::Unsupported,
                }
            }
            let outputs = match model.run(inputs) {
                Ok(o) => o,
                Err(InferenceError::RuntimeFault { .. }) => return Outcome::Fault,
                Err(_) => return Outcome::Unsupported,
            };
            for (ix, name) in output_names.iter().enumerate() {
                let Some(expected) = read_proto(&set.join(format!("output_{ix}.pb"))) else {
                    return Outcome::Unsupported;
                };
                match outputs.get(name) {
                    Ok(actual) if close(actual, &expected) => {}
                    Ok(_) => return Outcome::Wrong,
                    Err(_) => return Outcome::Unsupported,
                }
            }
        }
        Outcome::Pass
    });
    outcome.unwrap_or(Outcome::Panic)
}

fn operator_of(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let ops = std::fs::read(dir.join("model.onnx"))
        .ok()
        .and_then(|b| ModelProto::decode(b.as_slice()).ok())
        .and_then(|m| m.graph)
        .map(|g| {
            let mut ops: Vec<String> = g.node.iter().map(|n| n.op_type.clone()).collect();
            ops.dedup();
            ops
        })
        .unwrap_or_default();
    if name.ends_with("_expanded") || ops.len() != 1 {
        "(expanded function)".into()
    } else {
        ops[0].clone()
    }
}

#[test]
fn onnx_backend_node_tests() {
    let root = node_tests_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-onnx-node-tests", root.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() > 1000,
        "only {} node tests found in {}",
        cases.len(),
        root.display()
    );

    std::panic::set_hook(Box::new(|_| {}));
    let mut results: Vec<(String, String, Outcome)> = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        results.push((operator_of(dir), name, run_case(dir)));
    }
    let _ = std::panic::take_hook();

    let count = |o: Outcome| results.iter().filter(|r| r.2 == o).count();
    let (pass, unsupported, wrong, panics) = (
        count(Outcome::Pass),
        count(Outcome::Unsupported),
        count(Outcome::Wrong),
        count(Outcome::Panic),
    );
    let faults = count(Outcome::Fault);
    let mut per_op: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for (op, _, outcome) in &results {
        per_op.entry(op).or_default()[*outcome as usize] += 1;
    }
    let mut report = format!(
        "# ONNX backend node tests through edgekeep\n\n{} cases: {pass} pass, {unsupported} unsupported (typed error), {faults} runtime fault (caught, typed error), {wrong} wrong answer, {panics} panic\n\n| operator | pass | unsupported | runtime fault | wrong | panic |\n|---|---:|---:|---:|---:|---:|\n",
        results.len()
    );
    for (op, [p, u, f, w, x]) in &per_op {
        report.push_str(&format!("| {op} | {p} | {u} | {f} | {w} | {x} |\n"));
    }
    report.push_str("\n## Wrong answers\n\n");
    for (_, name, _) in results.iter().filter(|r| r.2 == Outcome::Wrong) {
        report.push_str(&format!("- {name}\n"));
    }
    report.push_str("\n## Panics\n\n");
    for (_, name, _) in results.iter().filter(|r| r.2 == Outcome::Panic) {
        report.push_str(&format!("- {name}\n"));
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-node-report.md");
    let _ = std::fs::create_dir_all(out.parent().unwrap());
    std::fs::write(&out, &report).unwrap();
    println!("{}", report.lines().nth(2).unwrap_or_default());
    println!("report: {}", out.display());

    let baseline: Baseline = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx_node_baseline.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let panicked: Vec<&str> = results
        .iter()
        .filter(|r| r.2 == Outcome::Panic)
        .map(|r| r.1.as_str())
        .collect();
    assert!(
        panicked.is_empty(),
        "these cases panicked instead of returning a typed error: {panicked:?}"
    );
    let new_wrong: Vec<&str> = results
        .iter()
        .filter(|r| r.2 == Outcome::Wrong && !baseline.known_wrong.contains(&r.1))
        .map(|r| r.1.as_str())
        .collect();
    assert!(new_wrong.is_empty(), "new wrong answers: {new_wrong:?}");
    assert!(
        pass >= baseline.min_passed,
        "{pass} passed, baseline is {}",
        baseline.min_passed
    );
}
