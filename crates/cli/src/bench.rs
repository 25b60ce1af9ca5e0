//! `edgekeep bench`: cold start and latency percentiles of one model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use edgekeep::inference::{DType, Dim, Model, Tensor, TensorInfo};

use crate::{LoadArgs, npy, parse_pairs};

/// Arguments of `edgekeep bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// ONNX or NNEF model file.
    model: PathBuf,
    #[command(flatten)]
    load: LoadArgs,
    /// An input as NAME=FILE.npy; inputs not given are synthesized from their declared shape.
    #[arg(long = "input", value_name = "NAME=FILE")]
    inputs: Vec<String>,
    /// Size of symbolic dimensions for synthesized inputs, as NAME=SIZE (default 1).
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    dims: Vec<String>,
    /// Timed runs.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints its result.
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let loader = args.load.loader()?;
    let started = Instant::now();
    let model = loader.load_bytes(&bytes)?;
    let load_ms = ms(started);
    let inputs = inputs_for(&model, args)?;
    model.run(inputs.clone())?;
    let cold_start_ms = ms(started);
    for _ in 0..args.warmup {
        model.run(inputs.clone())?;
    }
    let mut samples = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let batch = inputs.clone();
        let t = Instant::now();
        model.run(batch)?;
        samples.push(ms(t));
    }
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let doc = serde_json::json!({
        "model": args.model.display().to_string(),
        "cold_start_ms": cold_start_ms,
        "load_ms": load_ms,
        "warmup": args.warmup,
        "runs": args.runs,
        "threads": args.load.threads,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "mean_ms": mean,
    });
    if args.json {
        println!("{doc}");
    } else {
        println!(
            "{}: cold start {:.2} ms (load {:.2} ms); {} runs after {} warm-up: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
            args.model.display(),
            cold_start_ms,
            load_ms,
            args.runs,
            args.warmup,
            pct(0.5),
            pct(0.9),
            pct(0.99)
        );
    }
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn inputs_for(model: &Model, args: &BenchArgs) -> Result<Vec<(String, Tensor)>> {
    let given = parse_pairs(&args.inputs)?;
    let sizes: Vec<(String, usize)> = args
        .dims
        .iter()
        .map(
            |d| match d.split_once('=').map(|(n, s)| (n, s.parse::<usize>())) {
                Some((name, Ok(size))) => Ok((name.to_string(), size)),
                _ => bail!("expected NAME=SIZE, got `{d}`"),
            },
        )
        .collect::<Result<_>>()?;
    model
        .inputs()
        .iter()
        .map(|info| {
            let tensor = match given.iter().find(|(n, _)| *n == info.name) {
                Some((_, path)) => npy::read_tensor(path)?,
                None => synthesize(info, &sizes)?,
            };
            Ok((info.name.clone(), tensor))
        })
        .collect()
}

fn synthesize(info: &TensorInfo, sizes: &[(String, usize)]) -> Result<Tensor> {
    let shape: Vec<usize> = info
        .shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n,
            Dim::Symbolic(s) => sizes.iter().find(|(n, _)| n == s).map_or(1, |(_, v)| *v),
        })
        .collect();
    let n: usize = shape.iter().product();
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    Ok(match info.dtype {
        DType::F32 => Tensor::from_shape_vec(
            &shape,
            (0..n).map(|_| next() as f32 / u32::MAX as f32).collect(),
        )?,
        DType::I64 => {
            Tensor::from_shape_vec(&shape, (0..n).map(|_| (next() % 256) as i64).collect())?
        }
        DType::I32 => {
            Tensor::from_shape_vec(&shape, (0..n).map(|_| (next() % 256) as i32).collect())?
        }
        DType::U8 => Tensor::from_shape_vec(&shape, (0..n).map(|_| next() as u8).collect())?,
        other => Tensor::zeros(other, &shape)?,
    })
}
