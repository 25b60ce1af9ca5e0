//! `edgekeep keygen`: a publisher's Ed25519 key pair.
//!
//! Writes `<out>.key` (base64url PKCS#8, mode 0600; keep it off the control plane) and
//! `<out>.pub` (base64url public key: register it with `POST /v1/publisher-keys` and pin it in
//! the SDK). Refuses to overwrite either file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use edgekeep_protocol::signing::SigningKey;

/// Options of `edgekeep keygen`.
#[derive(Args, Clone)]
pub struct KeygenArgs {
    /// Path prefix of the key files (`<out>.key`, `<out>.pub`).
    #[arg(long, default_value = "publisher")]
    pub out: PathBuf,
}

fn with_extension(prefix: &Path, extension: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// Generates the key pair and writes both files.
pub fn run(args: &KeygenArgs) -> Result<()> {
    let private_path = with_extension(&args.out, "key");
    let public_path = with_extension(&args.out, "pub");
    if private_path.exists() || public_path.exists() {
        bail!(
            "{} or {} already exists; refusing to overwrite a key",
            private_path.display(),
            public_path.display()
        );
    }
    let key = SigningKey::generate(&ring::rand::SystemRandom::new())
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    write_new(&private_path, key.to_text().as_bytes(), true)?;
    let public = key.public_key();
    write_new(
        &public_path,
        format!("{}\n", public.to_text()).as_bytes(),
        false,
    )?;
    println!(
        "private key: {} (keep it secret, off the server)",
        private_path.display()
    );
    println!(
        "public key:  {} ({})",
        public_path.display(),
        public.key_id()
    );
    println!(
        "register it: POST /v1/publisher-keys {{\"name\": \"...\", \"public_key\": \"{}\"}}",
        public.to_text()
    );
    Ok(())
}
