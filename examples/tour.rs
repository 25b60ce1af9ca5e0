//! A tour of the bundled models: load each from memory, run it on its golden inputs, check the
//! answer against ONNX Runtime's, and print latencies.
//!
//! `cargo run --release --example tour`

#[path = "../tests/support/manifest.rs"]
mod manifest;

use std::process::ExitCode;
use std::time::Instant;

use manifest::{Golden, compare, load_manifest};

fn main() -> ExitCode {
    let manifest = load_manifest();
    println!(
        "{:<18} {:<12} {:>9} {:>10} {:>10} {:>12}  result",
        "model", "family", "KiB", "load ms", "p50 ms", "max |Δ|"
    );
    let mut failures = 0;
    for entry in &manifest {
        let bytes = match std::fs::read(entry.path()) {
            Ok(b) => b,
            Err(e) => {
                println!("{:<18} cannot read: {e}", entry.name);
                failures += 1;
                continue;
            }
        };
        let started = Instant::now();
        let model = match entry.loader().load_bytes(&bytes) {
            Ok(m) => m,
            Err(e) => {
                println!("{:<18} load failed: {e}", entry.name);
                failures += 1;
                continue;
            }
        };
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let golden = Golden::open(&entry.golden_path());
        let inputs = golden.run_inputs(entry);
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..21 {
            let t = Instant::now();
            let out = model.run(inputs.clone());
            times.push(t.elapsed().as_secs_f64() * 1e3);
            last = Some(out);
        }
        times.sort_by(f64::total_cmp);
        let outcome = match last.expect("ran at least once") {
            Err(e) => Err(e.to_string()),
            Ok(out) => entry
                .outputs
                .iter()
                .enumerate()
                .try_fold(0.0f64, |worst, (ix, spec)| {
                    let actual = out.get(&spec.name).map_err(|e| e.to_string())?;
                    let diff = compare(actual, &golden.output(ix, spec.dtype()), entry.tolerance)?;
                    Ok(worst.max(diff))
                }),
        };
        let (diff, verdict) = match outcome {
            Ok(d) => (format!("{d:.2e}"), "matches ONNX Runtime".to_string()),
            Err(why) => {
                failures += 1;
                ("-".into(), format!("MISMATCH: {why}"))
            }
        };
        println!(
            "{:<18} {:<12} {:>9} {:>10.1} {:>10.3} {:>12}  {verdict}",
            entry.name,
            entry.family,
            bytes.len() / 1024,
            load_ms,
            times[times.len() / 2],
            diff
        );
    }
    if failures == 0 {
        println!(
            "\nall {} models match their ONNX Runtime goldens",
            manifest.len()
        );
        ExitCode::SUCCESS
    } else {
        println!("\n{failures} model(s) failed");
        ExitCode::FAILURE
    }
}
