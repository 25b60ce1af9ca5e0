//! The OpenID Provider fixture: panva's `oidc-provider` (tests/fixtures/oidc, installed by
//! scripts/test-deps) on loopback over HTTPS, signing in the account named by `login_hint`
//! without a form. Used by the OIDC login tests and the dashboard's browser test.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The client secret of every fixture client.
pub const SECRET: &str = "fixture-client-secret-7f3a9c";

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc")
}

/// Whether the real provider can run here; panics when it cannot but must.
pub fn provider_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = fixture_dir().join("node_modules/oidc-provider").is_dir();
    if node && installed {
        return true;
    }
    assert!(
        std::env::var_os("EDGEKEEP_REQUIRE_OIDC").is_none(),
        "EDGEKEEP_REQUIRE_OIDC is set but node or the OIDC fixture is missing \
         (run scripts/test-deps: npm ci --prefix crates/server/tests/fixtures/oidc)"
    );
    eprintln!(
        "SKIPPED: node or the OIDC fixture is missing; run scripts/test-deps to test OIDC login"
    );
    false
}

/// One client of the fixture provider.
pub struct Client {
    /// The client id.
    pub id: &'static str,
    /// How the provider spoils this client's ID tokens (`None`: it does not).
    pub tamper: Option<&'static str>,
}

/// The running provider; killed on drop.
pub struct Provider {
    child: Child,
    /// The issuer URL.
    pub issuer: String,
    /// The provider's CA certificate (PEM file).
    pub ca_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts the provider with `clients`, each redirecting to `redirect_uri`.
    pub fn start(redirect_uri: &str, clients: &[Client]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = edgekeep_server::tls::generate_dev_certificates().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cert = write("cert.pem", &certs.cert_pem);
        let key = write("key.pem", &certs.key_pem);
        let ca_path = write("ca.pem", &certs.ca_pem);
        let clients: Vec<Value> = clients
            .iter()
            .map(|c| {
                json!({"client_id": c.id, "client_secret": SECRET,
                       "redirect_uri": redirect_uri, "tamper": c.tamper})
            })
            .collect();
        let config = json!({"tls_cert": cert, "tls_key": key, "clients": clients});
        let mut child = Command::new("node")
            .arg(fixture_dir().join("provider.mjs"))
            .env("EDGEKEEP_OIDC_FIXTURE", config.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (ready, first_line) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = ready.send(line);
            // Keep draining: a closed pipe would end the provider at its next write.
            std::io::copy(&mut stdout, &mut std::io::sink())
        });
        // A provider that does not start fails the test instead of hanging it.
        let line = first_line
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "the OIDC fixture did not start within 60 s: {}",
                    std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default()
                )
            });
        let issuer = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the OIDC fixture did not start: {line:?}"))
            .trim()
            .to_owned();
        Self {
            child,
            issuer,
            ca_path,
            _dir: dir,
        }
    }
}
