//! Server memory while four 128 MiB artifacts upload at once (issue 12, finding 4): runs the
//! real `edgekeep-server` binary and reads its peak and settled resident set from `/proc`.
//! Uploads stream to disk and at most `concurrent_upload_checks` (2) ciphertexts are held in
//! memory to be checked, so the peak stays near 2 × 128 MiB whatever the number of uploads.
//!
//! `cargo bench -p edgekeep-server --bench upload_memory` (Linux only). Set
//! `EDGEKEEP_SERVER_BIN` to measure another build of the binary (e.g. an older release) with
//! the same client.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use edgekeep_protocol::artifact::{ArtifactSpec, ModelFormat, SemVer, build_artifact};
use edgekeep_protocol::signing::SigningKey;

const UPLOAD_MIB: usize = 128;
const UPLOADS_PER_ORG: usize = 2;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn bundle(key: &SigningKey, model: &str) -> Vec<u8> {
    let spec = ArtifactSpec {
        model: model.to_owned(),
        version: 1,
        format: ModelFormat::Onnx,
        min_sdk_version: SemVer::new(0, 1, 0),
        tract_version: SemVer::new(0, 23, 9),
        opset: 17,
        created_at: now() - 10,
        expires_at: now() + 3600,
    };
    let model_bytes = vec![0x5au8; UPLOAD_MIB << 20];
    build_artifact(&model_bytes, &spec, key, &ring::rand::SystemRandom::new())
        .unwrap()
        .to_bundle()
}

/// Runs a CLI command of the binary and returns the Owner API key it prints.
fn owner_key(binary: &std::ffi::OsStr, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(binary).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("owner API key:"))
        .map(|key| key.trim().to_owned())
        .unwrap()
}

fn main() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("upload_memory needs /proc (Linux)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let binary: std::ffi::OsString = std::env::var_os("EDGEKEEP_SERVER_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_edgekeep-server").into());
    let dir = data.path().as_os_str();
    let first = owner_key(
        &binary,
        &[
            "init".as_ref(),
            "--data".as_ref(),
            dir,
            "--org".as_ref(),
            "Org A".as_ref(),
        ],
    );
    let second = owner_key(
        &binary,
        &[
            "org".as_ref(),
            "create".as_ref(),
            "--data".as_ref(),
            dir,
            "--name".as_ref(),
            "Org B".as_ref(),
        ],
    );
    let mut child = Command::new(&binary)
        .args(["serve", "--data"])
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().trim_start_matches("listening on ").to_owned();
    let pid = child.id();
    let ca = std::fs::read(data.path().join("tls").join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let owners = [first, second];
    let before = status_kib(pid, "VmRSS:");
    let uploads = runtime.block_on(async {
        let mut tasks = Vec::new();
        for (org, owner) in owners.iter().enumerate() {
            let key = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
            let registered = client
                .post(format!("{base}/v1/publisher-keys"))
                .bearer_auth(owner)
                .json(
                    &serde_json::json!({"name": "bench", "public_key": key.public_key().to_text()}),
                )
                .send()
                .await
                .unwrap();
            assert!(registered.status().is_success());
            for n in 0..UPLOADS_PER_ORG {
                let body = bundle(&key, &format!("model-{org}-{n}"));
                let request = client
                    .post(format!("{base}/v1/artifacts"))
                    .bearer_auth(owner)
                    .header("content-type", "application/octet-stream")
                    .body(body);
                tasks.push(tokio::spawn(async move {
                    request.send().await.map(|r| r.status())
                }));
            }
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap().unwrap().as_u16());
        }
        statuses
    });
    let peak = status_kib(pid, "VmHWM:");
    std::thread::sleep(Duration::from_secs(2));
    let settled = status_kib(pid, "VmRSS:");
    let _ = child.kill();
    let _ = child.wait();
    let total_mib = (UPLOAD_MIB * uploads.len()) as f64;
    println!(
        "uploads: {} x {UPLOAD_MIB} MiB, statuses {uploads:?}\n\
         server RSS before {:.0} MiB, peak {:.0} MiB, settled {:.0} MiB\n\
         peak growth / bytes uploaded = {:.2}, settled growth / bytes uploaded = {:.2}",
        uploads.len(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        settled as f64 / 1024.0,
        (peak.saturating_sub(before)) as f64 / 1024.0 / total_mib,
        (settled.saturating_sub(before)) as f64 / 1024.0 / total_mib,
    );
}
