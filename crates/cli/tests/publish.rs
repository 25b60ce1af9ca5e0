//! `edgekeep keygen` and `edgekeep publish` as a user runs them: keys on disk, a bundle that
//! verifies and decrypts to the model, and an upload to a real control plane that the server
//! accepts only once the key is registered.

use std::path::Path;
use std::process::Command;

use edgekeep_protocol::artifact::{open_artifact, parse_bundle};
use edgekeep_protocol::signing::VerifyingKey;

fn edgekeep(args: &[&str], api_key: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgekeep"));
    command.args(args);
    match api_key {
        Some(key) => command.env("EDGEKEEP_API_KEY", key),
        None => command.env_remove("EDGEKEEP_API_KEY"),
    };
    command.output().expect("run edgekeep")
}

fn model_path() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/logreg.onnx")
        .display()
        .to_string()
}

#[test]
fn keygen_then_publish_offline() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("pub").display().to_string();
    let out = edgekeep(&["keygen", "--out", &prefix], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(format!("{prefix}.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwrites a key.
    assert!(
        !edgekeep(&["keygen", "--out", &prefix], None)
            .status
            .success()
    );

    let bundle_path = dir.path().join("m.ekb").display().to_string();
    let key_path = format!("{prefix}.key");
    let out = edgekeep(
        &[
            "publish",
            &model_path(),
            "--name",
            "logreg",
            "--version",
            "4",
            "--key",
            &key_path,
            "--out",
            &bundle_path,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = std::fs::read(&bundle_path).unwrap();
    let parsed = parse_bundle(&bundle, 1 << 20).unwrap();
    let public =
        VerifyingKey::from_text(&std::fs::read_to_string(format!("{prefix}.pub")).unwrap())
            .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    parsed.manifest.verify(&[public], now).unwrap();
    assert_eq!(
        (
            parsed.manifest.manifest.model.as_str(),
            parsed.manifest.manifest.version
        ),
        ("logreg", 4)
    );
    let plain = open_artifact(
        &parsed.manifest.manifest,
        &parsed.content_key,
        parsed.ciphertext,
    )
    .unwrap();
    assert_eq!(
        plain.as_slice(),
        std::fs::read(model_path()).unwrap().as_slice()
    );
    // The private key text never appears in output.
    let key_text = std::fs::read_to_string(&key_path).unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(key_text.trim()));
}

#[test]
fn publish_uploads_to_the_control_plane() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let created = edgekeep_server::init(data.path(), "Acme").unwrap();
    let config = edgekeep_server::ServerConfig::new(data.path(), "127.0.0.1:0".parse().unwrap());
    let server = runtime
        .block_on(edgekeep_server::Server::start(config))
        .unwrap();
    let base = server.base_url();
    let ca = data.path().join("tls/ca.pem").display().to_string();
    let prefix = data.path().join("publisher").display().to_string();
    assert!(
        edgekeep(&["keygen", "--out", &prefix], None)
            .status
            .success()
    );
    let key_path = format!("{prefix}.key");
    let publish = |version: &str| {
        edgekeep(
            &[
                "publish",
                &model_path(),
                "--name",
                "logreg",
                "--version",
                version,
                "--key",
                &key_path,
                "--server",
                &base,
                "--ca-cert",
                &ca,
            ],
            Some(&created.owner_api_key),
        )
    };
    // Not registered yet: refused with the code.
    let out = publish("1");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("publisher_key_unknown"));

    let public = std::fs::read_to_string(format!("{prefix}.pub")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let status = client
        .post(format!("{base}/v1/publisher-keys"))
        .bearer_auth(&created.owner_api_key)
        .json(&serde_json::json!({"name": "ci", "public_key": public.trim()}))
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 201);
    let out = publish("1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let models: serde_json::Value = client
        .get(format!("{base}/v1/models"))
        .bearer_auth(&created.owner_api_key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models[0]["model"], "logreg");
    assert_eq!(models[0]["version"], 1);
    // Without an API key the CLI says what to set.
    let out = edgekeep(
        &[
            "publish",
            &model_path(),
            "--name",
            "logreg",
            "--version",
            "2",
            "--key",
            &key_path,
            "--server",
            &base,
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("EDGEKEEP_API_KEY"));
    runtime.block_on(server.shutdown());
}
