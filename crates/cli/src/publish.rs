//! `edgekeep publish`: build a signed, encrypted model artifact locally and upload it.
//!
//! The publisher key is read from a local file and never sent anywhere; only the bundle
//! (signed manifest, content key, ciphertext) goes to the control plane, over HTTPS with an
//! org API key taken from an environment variable. Building is
//! `edgekeep_protocol::artifact::build_artifact`, the same code tests and the demo call.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use edgekeep_protocol::artifact::{ArtifactSpec, ModelFormat, SemVer, build_artifact};
use edgekeep_protocol::signing::SigningKey;

/// The tract version this CLI validates models with (the workspace's `tract-onnx`).
const TRACT_VERSION: SemVer = SemVer::new(0, 23, 9);

/// Model file formats `publish` accepts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// ONNX protobuf.
    Onnx,
    /// tract NNEF archive.
    Nnef,
}

/// Options of `edgekeep publish`.
#[derive(Args, Clone)]
pub struct PublishArgs {
    /// ONNX model file.
    pub model: PathBuf,
    /// Model name (slot), `[a-z0-9][a-z0-9._-]{0,63}`.
    #[arg(long)]
    pub name: String,
    /// Version, above every version of this model already uploaded.
    #[arg(long)]
    pub version: u64,
    /// Publisher private key file (from `edgekeep keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// Control plane base URL (`https://...`); without it the bundle is only written to `--out`.
    #[arg(long)]
    pub server: Option<String>,
    /// Environment variable holding the org API key (`ek_...`).
    #[arg(long, default_value = "EDGEKEEP_API_KEY")]
    pub api_key_env: String,
    /// Extra CA certificate (PEM) to trust, e.g. the development CA of `edgekeep-server init`.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Also write the bundle to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Model file format; NNEF archives come from `edgekeep convert` (faster cold start).
    /// Defaults to `nnef` for `.tar`/`.tgz` files, `onnx` otherwise.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// ONNX opset the model needs (0 = not declared).
    #[arg(long, default_value_t = 0)]
    pub opset: u32,
    /// Oldest SDK version that may run it (`major.minor.patch`).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub min_sdk: String,
    /// Days until devices refuse the artifact.
    #[arg(long, default_value_t = 365)]
    pub expires_days: u32,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Builds the bundle and uploads and/or writes it.
pub fn run(args: &PublishArgs) -> Result<()> {
    if args.server.is_none() && args.out.is_none() {
        bail!("nothing to do: pass --server to upload and/or --out to write the bundle");
    }
    let key_text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&args.key)
            .with_context(|| format!("reading {}", args.key.display()))?,
    );
    let key = SigningKey::from_text(&key_text)
        .map_err(|_| anyhow::anyhow!("{} is not a publisher key", args.key.display()))?;
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let is_archive = args
        .model
        .extension()
        .is_some_and(|e| e == "tar" || e == "tgz");
    let (format, opset) = match args.format {
        Some(FormatArg::Nnef) => (ModelFormat::Nnef, 0),
        Some(FormatArg::Onnx) => (ModelFormat::Onnx, args.opset),
        None if is_archive => (ModelFormat::Nnef, 0),
        None => (ModelFormat::Onnx, args.opset),
    };
    let min_sdk_version = SemVer::parse(&args.min_sdk)
        .ok_or_else(|| anyhow::anyhow!("--min-sdk must be major.minor.patch"))?;
    let created_at = now();
    let spec = ArtifactSpec {
        model: args.name.clone(),
        version: args.version,
        format,
        min_sdk_version,
        tract_version: TRACT_VERSION,
        opset,
        created_at,
        expires_at: created_at + i64::from(args.expires_days.max(1)) * 86_400,
    };
    let built = build_artifact(&bytes, &spec, &key, &ring::rand::SystemRandom::new())
        .map_err(|err| anyhow::anyhow!("building the artifact: {err}"))?;
    let bundle = built.to_bundle();
    let manifest = &built.manifest.manifest;
    println!(
        "built {}@{} ({:?}, {} bytes of model, artifact {}) signed by {}",
        manifest.model,
        manifest.version,
        manifest.format,
        manifest.plaintext_len,
        manifest.ciphertext_sha256,
        manifest.publisher_key_id
    );
    if let Some(out) = &args.out {
        std::fs::write(out, &bundle).with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {}", out.display());
    }
    if let Some(server) = &args.server {
        upload(args, server, bundle)?;
    }
    Ok(())
}

fn upload(args: &PublishArgs, server: &str, bundle: Vec<u8>) -> Result<()> {
    let api_key = zeroize::Zeroizing::new(
        std::env::var(&args.api_key_env)
            .with_context(|| format!("set {} to an org API key", args.api_key_env))?,
    );
    let mut client = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(600));
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let url = format!("{}/v1/artifacts", server.trim_end_matches('/'));
    let response = client
        .build()?
        .post(&url)
        .bearer_auth(api_key.as_str())
        .header("content-type", "application/octet-stream")
        .body(bundle)
        .send()
        .with_context(|| format!("uploading to {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        bail!(
            "upload refused ({status}): {} — {}",
            body["code"].as_str().unwrap_or("unknown"),
            body["message"].as_str().unwrap_or("")
        );
    }
    println!(
        "uploaded {}@{}; approve it: POST /v1/models/{}/versions/{}/approve",
        args.name, args.version, args.name, args.version
    );
    Ok(())
}
