//! `edgekeep`: inspect, run, benchmark and convert models with the edgekeep SDK.

mod bench;
mod keygen;
mod npy;
mod publish;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use edgekeep::inference::{ComputePool, Dim, ModelLoader, convert_to_nnef};

#[derive(Parser)]
#[command(
    name = "edgekeep",
    version,
    about = "Developer tool for edgekeep models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's inputs and outputs.
    Inspect {
        /// ONNX or NNEF model file.
        model: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a model once on .npy inputs.
    Run {
        /// ONNX or NNEF model file.
        model: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
        /// An input as NAME=FILE.npy (repeat for each input).
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Write every output to this .npz file (otherwise print shapes).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Measure cold start and latency percentiles.
    Bench(bench::BenchArgs),
    /// Build a signed, encrypted model artifact locally and upload it to the control plane.
    Publish(publish::PublishArgs),
    /// Make a publisher key pair (Ed25519) for signing model artifacts.
    Keygen(keygen::KeygenArgs),
    /// Convert an ONNX model to an NNEF archive that loads faster.
    Convert {
        /// ONNX model file.
        model: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
        /// Where to write the NNEF tar archive.
        #[arg(long)]
        nnef: PathBuf,
    },
}

/// Options shared by every command that loads a model.
#[derive(Args, Clone, Default)]
pub struct LoadArgs {
    /// Pin an input to a constant at load, as NAME=FILE.npy (folds the branches it controls).
    #[arg(long = "pin", value_name = "NAME=FILE")]
    pub pins: Vec<String>,
    /// Declare an input's shape as NAME=D1,D2,... (sizes or symbol names), overriding the file's.
    #[arg(long = "shape", value_name = "NAME=DIMS")]
    pub shapes: Vec<String>,
    /// Compute these tensors instead of the declared outputs (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub outputs: Vec<String>,
    /// Worker threads for matrix products (1 runs on the calling thread).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

impl LoadArgs {
    /// The loader these options describe.
    pub fn loader(&self) -> Result<ModelLoader> {
        let mut loader = ModelLoader::new();
        for spec in &self.shapes {
            let (name, dims) = parse_shape(spec)?;
            loader = loader.with_input_shape(name, None, dims);
        }
        for (name, path) in parse_pairs(&self.pins)? {
            loader = loader.pin_input(name, npy::read_tensor(&path)?);
        }
        if !self.outputs.is_empty() {
            loader = loader.with_outputs(self.outputs.clone());
        }
        if self.threads > 1 {
            loader = loader.with_compute_pool(ComputePool::new(self.threads));
        }
        Ok(loader)
    }
}

/// Parses `NAME=D1,D2,...`: integers are fixed sizes, anything else a symbol.
fn parse_shape(spec: &str) -> Result<(String, Vec<Dim>)> {
    let Some((name, dims)) = spec.split_once('=').filter(|(n, _)| !n.is_empty()) else {
        bail!("expected NAME=D1,D2,..., got `{spec}`");
    };
    let dims = dims
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| match d.trim().parse::<usize>() {
            Ok(n) => Dim::Fixed(n),
            Err(_) => Dim::Symbolic(d.trim().to_string()),
        })
        .collect();
    Ok((name.to_string(), dims))
}

/// Splits `NAME=PATH` arguments.
pub fn parse_pairs(args: &[String]) -> Result<Vec<(String, PathBuf)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((name, path)) if !name.is_empty() && !path.is_empty() => {
                Ok((name.to_string(), PathBuf::from(path)))
            }
            _ => bail!("expected NAME=FILE, got `{a}`"),
        })
        .collect()
}

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { model, load, json } => inspect(&model, &load, json),
        Command::Run {
            model,
            load,
            inputs,
            output,
        } => run_once(&model, &load, &inputs, output.as_deref()),
        Command::Bench(args) => bench::run(&args),
        Command::Convert { model, load, nnef } => convert(&model, &load, &nnef),
        Command::Publish(args) => publish::run(&args),
        Command::Keygen(args) => keygen::run(&args),
    }
}

fn inspect(path: &Path, load: &LoadArgs, json: bool) -> Result<()> {
    let model = load.loader()?.load_path(path)?;
    let describe = |infos: &[edgekeep::inference::TensorInfo]| {
        infos
            .iter()
            .map(|i| {
                let shape: Vec<serde_json::Value> = i
                    .shape
                    .iter()
                    .map(|d| match d {
                        Dim::Fixed(n) => serde_json::json!(n),
                        Dim::Symbolic(s) => serde_json::json!(s),
                    })
                    .collect();
                serde_json::json!({"name": i.name, "dtype": i.dtype.name(), "shape": shape})
            })
            .collect::<Vec<_>>()
    };
    let report = model.load_report();
    if json {
        let doc = serde_json::json!({
            "model": path.display().to_string(),
            "format": format!("{:?}", report.format),
            "ignored_declared_shapes": report.ignored_declared_shapes,
            "specialized_per_run": report.specialized_per_run,
            "load_ms": report.load_ms,
            "inputs": describe(model.inputs()),
            "outputs": describe(model.outputs()),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{} ({:?}, loaded in {:.1} ms)",
            path.display(),
            report.format,
            report.load_ms
        );
        if report.specialized_per_run {
            println!(
                "note: the file leaves input shapes open; each run's shapes get their own \
                 optimized plan (`?` = taken from the input)"
            );
        } else if report.ignored_declared_shapes {
            println!("note: the file's declared output shapes were inconsistent and were ignored");
        }
        println!("inputs:");
        model.inputs().iter().for_each(|i| println!("  {i}"));
        println!("outputs:");
        model.outputs().iter().for_each(|o| println!("  {o}"));
    }
    Ok(())
}

fn run_once(path: &Path, load: &LoadArgs, inputs: &[String], output: Option<&Path>) -> Result<()> {
    let model = load.loader()?.load_path(path)?;
    let tensors = parse_pairs(inputs)?
        .into_iter()
        .map(|(name, file)| Ok((name, npy::read_tensor(&file)?)))
        .collect::<Result<Vec<_>>>()?;
    let outputs = model.run(tensors)?;
    match output {
        Some(out) => {
            npy::write_npz(out, outputs.iter())?;
            println!("wrote {} outputs to {}", outputs.len(), out.display());
        }
        None => outputs
            .iter()
            .for_each(|(name, t)| println!("{name}: {} {:?}", t.dtype(), t.shape())),
    }
    Ok(())
}

fn convert(path: &Path, load: &LoadArgs, out: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let nnef = convert_to_nnef(&load.loader()?, &bytes)?;
    std::fs::write(out, &nnef).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} ({} bytes, from {} bytes of ONNX)",
        out.display(),
        nnef.len(),
        bytes.len()
    );
    Ok(())
}
