//! The binary: `init` prints the Owner key once, `serve` answers over HTTPS, `org create`,
//! `audit verify` and `audit export` work on the same data folder.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgekeep-server"))
}

fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("{label} not printed: {output}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_serve_and_audit_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = bin()
        .args(["init", "--org", "Acme", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = field(&stdout, "owner API key:");
    let org = field(&stdout, "org id:");
    assert!(key.starts_with("ek_"));
    let again = bin().args(["init", "--data"]).arg(&data).output().unwrap();
    assert!(!again.status.success());
    assert!(!String::from_utf8_lossy(&again.stdout).contains("ek_"));

    let mut server = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let ca = std::fs::read(data.join("tls/ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let org_info: serde_json::Value = client
        .get(format!("{base}/v1/org"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(org_info["name"], "Acme");

    // A second org created while the server runs is served at once.
    let out = bin()
        .args(["org", "create", "--name", "Beta", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let beta_key = field(&String::from_utf8(out.stdout).unwrap(), "owner API key:");
    let beta: serde_json::Value = client
        .get(format!("{base}/v1/org"))
        .bearer_auth(&beta_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(beta["name"], "Beta");
    server.kill().unwrap();
    server.wait().unwrap();

    let out = bin()
        .args(["audit", "verify", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(&format!("{org}: ok"))
    );
    let out = bin()
        .args(["audit", "export", "--org", &org, "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|e| e["action"] == "org.create"));
    assert!(lines.iter().all(|e| e["org_id"] == org.as_str()));
}

/// On PostgreSQL: `init`, `migrate`, `org create` and `audit verify` through the binary, the
/// URL from the environment; a wrong password, an absent database and a non-URL are clear
/// startup errors that never print the password.
#[test]
fn the_binary_on_postgres_and_its_startup_errors() {
    let Some(cluster) =
        edgekeep_server::storage::postgres::cluster::TestCluster::start_unless_absent()
    else {
        return;
    };
    let url = cluster.fresh_database("cli").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str], database: &str| {
        let out = bin()
            .args(args)
            .arg("--data")
            .arg(&data)
            .env("EDGEKEEP_DATABASE", database)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = run(&["init", "--org", "Acme"], &url);
    assert!(ok, "{stderr}");
    assert!(field(&stdout, "owner API key:").starts_with("ek_"));
    assert!(
        !data.join("edgekeep.db").exists(),
        "a SQLite file beside PostgreSQL"
    );
    let (ok, _, stderr) = run(&["init", "--org", "Again"], &url);
    assert!(!ok && stderr.contains("already initialized"), "{stderr}");
    let (ok, stdout, stderr) = run(&["migrate"], &url);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "schema version 4");
    let (ok, stdout, _) = run(&["org", "create", "--name", "Beta"], &url);
    assert!(ok && stdout.contains("owner API key:"));
    let (ok, stdout, stderr) = run(&["audit", "verify"], &url);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(stdout.matches(": ok (").count(), 2, "{stdout}");

    let password = url
        .split_once("://edgekeep_server:")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(password, _)| password.to_owned())
        .unwrap();
    let wrong = url.replace(&password, "not-the-password");
    let absent = url.replace("/cli", "/absent");
    for (database, says) in [
        (wrong.as_str(), "28P01"),
        (absent.as_str(), "3D000"),
        ("mysql://somewhere", "postgres:// URL"),
    ] {
        let (ok, stdout, stderr) = run(&["migrate"], database);
        assert!(!ok, "{database} was accepted");
        assert!(stderr.contains(says), "{database}: {stderr}");
        assert!(!stderr.contains(&password) && !stdout.contains(&password));
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `migrate-storage` copies a served SQLite deployment into PostgreSQL; the same folder then
/// serves from PostgreSQL with the same keys, and the audit chain verifies there.
#[test]
fn an_sqlite_folder_moves_up_to_postgres() {
    let Some(cluster) =
        edgekeep_server::storage::postgres::cluster::TestCluster::start_unless_absent()
    else {
        return;
    };
    let url = cluster.fresh_database("moving").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = bin()
        .args(["init", "--org", "Acme", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let org = field(&stdout, "org id:");
    let out = bin()
        .args(["org", "create", "--name", "Beta", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());

    let moved = bin()
        .args(["migrate-storage", "--from"])
        .arg(&data)
        .env("EDGEKEEP_DATABASE", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&moved.stdout);
    assert!(
        moved.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(stdout.contains("orgs: 2 rows"), "{stdout}");
    assert_eq!(stdout.matches("audit chain ok").count(), 2, "{stdout}");

    let exported = bin()
        .args(["audit", "export", "--org", &org, "--data"])
        .arg(&data)
        .env("EDGEKEEP_DATABASE", &url)
        .output()
        .unwrap();
    assert!(exported.status.success());
    let from_sqlite = bin()
        .args(["audit", "export", "--org", &org, "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(exported.stdout, from_sqlite.stdout);
    assert!(!exported.stdout.is_empty());

    let again = bin()
        .args(["migrate-storage", "--from"])
        .arg(&data)
        .env("EDGEKEEP_DATABASE", &url)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds orgs"));
}
