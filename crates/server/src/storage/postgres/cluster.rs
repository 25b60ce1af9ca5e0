//! A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a fresh cluster in a
//! temporary folder, listening on one loopback port only, password (SCRAM) authentication, and a
//! fresh database per caller. Stopped (immediately, nothing to keep) when dropped. The server
//! speaks TLS with a certificate from a CA of the cluster's own, for `localhost` and
//! `127.0.0.1`, and takes client certificates from that CA for roles that ask for it.
//!
//! PostgreSQL refuses to run as root; under root the cluster runs as the `postgres` user the
//! Debian package creates, through `setpriv` (which execs: the child is the server itself, so
//! the signal that stops it reaches it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a test cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run scripts/test-deps"
    )]
    NotInstalled,
    /// A step of the set-up failed.
    #[error("{step} failed: {detail}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// What the tool said.
        detail: String,
    },
}

/// The role test databases belong to, as edgekeep-server's would.
const SERVER_ROLE: &str = "edgekeep_server";

/// A running test cluster.
#[derive(Debug)]
pub struct TestCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_root: bool,
    port: u16,
    password: String,
    server: Child,
    die_with_parent: bool,
    authority: crate::tls::DevAuthority,
}

impl TestCluster {
    /// Makes a cluster and starts its server; returns once it accepts connections.
    pub fn start() -> Result<Self, ClusterError> {
        Self::start_with(false)
    }

    /// One cluster for the whole test process, started on first use, or `None` where
    /// PostgreSQL is absent (as [`Self::start_unless_absent`]). A static is never dropped, so
    /// its server is told to quit when the process ends (the parent-death signal, from a thread
    /// that lives as long as the process); its folder is left in the temporary directory.
    pub fn for_process() -> Option<&'static Self> {
        static SHARED: std::sync::OnceLock<Option<TestCluster>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                let (sender, receiver) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let _ = sender.send(Self::start_with(true));
                    loop {
                        std::thread::park();
                    }
                });
                match receiver.recv() {
                    Ok(Ok(cluster)) => Some(cluster),
                    Ok(Err(ClusterError::NotInstalled))
                        if std::env::var_os("EDGEKEEP_REQUIRE_POSTGRES").is_none() =>
                    {
                        eprintln!("SKIPPED: PostgreSQL is not installed; run scripts/test-deps");
                        None
                    }
                    Ok(Err(error)) => panic!("{error}"),
                    Err(_) => panic!("the cluster's thread ended"),
                }
            })
            .as_ref()
    }

    fn start_with(die_with_parent: bool) -> Result<Self, ClusterError> {
        let bin = binaries().ok_or(ClusterError::NotInstalled)?;
        let dir = tempfile::tempdir().map_err(|e| step("making the folder", e))?;
        let data = dir.path().join("data");
        let password = random_password();
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).map_err(|e| step("writing the password", e))?;
        std::fs::File::create(dir.path().join("server.log"))
            .map_err(|e| step("opening the log", e))?;
        let authority = write_certificates(dir.path())?;
        let as_root = is_root();
        if as_root {
            chown_to_postgres(dir.path())?;
        }
        let initdb = run_as(as_root, &bin.join("initdb"))
            .args([
                "--username",
                "edgekeep",
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
            ])
            .arg("--pwfile")
            .arg(&pwfile)
            .arg("-D")
            .arg(&data)
            .output()
            .map_err(|e| step("initdb", e))?;
        if !initdb.status.success() {
            return Err(ClusterError::Step {
                step: "initdb",
                detail: String::from_utf8_lossy(&initdb.stderr).into_owned(),
            });
        }
        allow_certificate_logins(&data)?;
        let port = free_port()?;
        let server = spawn_server(&bin, as_root, die_with_parent, dir.path(), port)?;
        let cluster = Self {
            dir,
            bin,
            as_root,
            port,
            password,
            server,
            die_with_parent,
            authority,
        };
        cluster.wait_ready()?;
        cluster.create_server_role()?;
        Ok(cluster)
    }

    /// A cluster, or `None` (saying so on stderr: the caller skips its test) where PostgreSQL
    /// is not installed and `EDGEKEEP_REQUIRE_POSTGRES` is unset; `scripts/test`, and so CI,
    /// sets it.
    ///
    /// # Panics
    /// When PostgreSQL is installed (or required) and the cluster cannot start.
    pub fn start_unless_absent() -> Option<Self> {
        match Self::start() {
            Ok(cluster) => Some(cluster),
            Err(ClusterError::NotInstalled)
                if std::env::var_os("EDGEKEEP_REQUIRE_POSTGRES").is_none() =>
            {
                eprintln!("SKIPPED: PostgreSQL is not installed; run scripts/test-deps");
                None
            }
            Err(error) => panic!("{error}"),
        }
    }

    /// A fresh, empty database `name` owned by a role that is neither superuser nor BYPASSRLS
    /// (as edgekeep-server must connect); returns its URL, which asks for TLS verified against
    /// the cluster's CA (`sslmode=verify-full`), as a production URL should.
    pub fn fresh_database(&self, name: &str) -> Result<String, ClusterError> {
        self.create_database(name, SERVER_ROLE)?;
        Ok(format!(
            "postgres://{SERVER_ROLE}:{}@127.0.0.1:{}/{name}?sslmode=verify-full&sslrootcert={}",
            self.password,
            self.port,
            url_encoded(&self.ca_path())
        ))
    }

    /// A fresh database `name` owned by `role`, which is made if absent (NOSUPERUSER,
    /// NOBYPASSRLS, no password) and may sign in with a client certificate from the cluster's
    /// CA named after it (see [`Self::issue_client_certificate`]).
    pub fn fresh_database_for_certificate(
        &self,
        name: &str,
        role: &str,
    ) -> Result<(), ClusterError> {
        let mut admin = postgres::Client::connect(&self.admin_url(), postgres::NoTls)
            .map_err(|e| pg_step("connecting as the cluster's superuser", &e))?;
        admin
            .batch_execute(&format!(
                "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS; \
                 GRANT {CERTIFICATE_ROLES} TO \"{role}\""
            ))
            .map_err(|e| pg_step("creating the role", &e))?;
        self.create_database(name, role)
    }

    fn create_database(&self, name: &str, owner: &str) -> Result<(), ClusterError> {
        let mut admin = postgres::Client::connect(&self.admin_url(), postgres::NoTls)
            .map_err(|e| pg_step("connecting as the cluster's superuser", &e))?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\" OWNER \"{owner}\""))
            .map_err(|e| pg_step("creating the database", &e))
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A client certificate for `common_name` from the cluster's CA, written beside the
    /// cluster; returns the paths of the certificate and of its key.
    pub fn issue_client_certificate(
        &self,
        common_name: &str,
    ) -> Result<(PathBuf, PathBuf), ClusterError> {
        let (cert, key) = self
            .authority
            .issue(common_name, &[])
            .map_err(|e| step("issuing a client certificate", e))?;
        let cert_path = self.dir.path().join(format!("{common_name}.crt"));
        let key_path = self.dir.path().join(format!("{common_name}.key"));
        std::fs::write(&cert_path, cert).map_err(|e| step("writing a client certificate", e))?;
        write_private(&key_path, &key)?;
        Ok((cert_path, key_path))
    }

    /// A `postgres://` URL of the cluster's maintenance database.
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://edgekeep:{}@127.0.0.1:{}/{name}",
            self.password, self.port
        )
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server (fast shutdown: connections are cut), keeping the cluster, as a
    /// database that goes away.
    pub fn suspend(&mut self) -> Result<(), ClusterError> {
        let stopped = run_as(self.as_root, &self.bin.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-s", "-D"])
            .arg(self.dir.path().join("data"))
            .output()
            .map_err(|e| step("pg_ctl stop", e))?;
        if !stopped.status.success() {
            return Err(ClusterError::Step {
                step: "pg_ctl stop",
                detail: String::from_utf8_lossy(&stopped.stderr).into_owned(),
            });
        }
        let _ = self.server.wait();
        Ok(())
    }

    /// Starts the server again after [`Self::suspend`], on the same port.
    pub fn resume(&mut self) -> Result<(), ClusterError> {
        self.server = spawn_server(
            &self.bin,
            self.as_root,
            self.die_with_parent,
            self.dir.path(),
            self.port,
        )?;
        self.wait_ready()
    }

    /// The role edgekeep-server connects as: neither superuser nor BYPASSRLS.
    fn create_server_role(&self) -> Result<(), ClusterError> {
        let mut admin = postgres::Client::connect(&self.admin_url(), postgres::NoTls)
            .map_err(|e| pg_step("connecting as the cluster's superuser", &e))?;
        admin
            .batch_execute(&format!(
                "CREATE ROLE {CERTIFICATE_ROLES} NOLOGIN; DO $$ BEGIN
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SERVER_ROLE}') THEN
                        CREATE ROLE {SERVER_ROLE} LOGIN PASSWORD '{}' NOSUPERUSER NOBYPASSRLS;
                    END IF;
                 END $$;",
                self.password
            ))
            .map_err(|e| pg_step("creating the server's role", &e))?;
        Ok(())
    }

    fn wait_ready(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map_err(|e| step("pg_isready", e))?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ClusterError::Step {
                    step: "waiting for postgres",
                    detail: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Immediate shutdown: the cluster is thrown away with its folder.
        let stopped = run_as(self.as_root, &self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-s", "-D"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !stopped {
            let _ = self.server.kill();
        }
        let _ = self.server.wait();
    }
}

/// Starts the server of the cluster in `dir` on `port`, logging to `dir/server.log`.
fn spawn_server(
    bin: &Path,
    as_root: bool,
    die_with_parent: bool,
    dir: &Path,
    port: u16,
) -> Result<Child, ClusterError> {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("server.log"))
        .map_err(|e| step("opening the log", e))?;
    setpriv(as_root, die_with_parent, &bin.join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            &format!("port={port}"),
        ])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        // A test cluster keeps nothing: no flushes to disk.
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .args(["-c", "max_connections=200", "-c", "ssl=on"])
        .arg("-c")
        .arg(format!(
            "ssl_cert_file={}",
            dir.join("server.crt").display()
        ))
        .arg("-c")
        .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
        .arg("-c")
        .arg(format!("ssl_ca_file={}", dir.join("ca.pem").display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| step("opening the log", e))?)
        .stderr(log)
        .spawn()
        .map_err(|e| step("starting postgres", e))
}

/// The group role whose members sign in with a client certificate (`hostssl … cert`) rather
/// than a password.
const CERTIFICATE_ROLES: &str = "edgekeep_certificate_logins";

/// The cluster's CA, and the server certificate it signs for `localhost` and `127.0.0.1`, in
/// `dir`.
fn write_certificates(dir: &Path) -> Result<crate::tls::DevAuthority, ClusterError> {
    let authority = crate::tls::DevAuthority::generate("edgekeep test cluster CA")
        .map_err(|e| step("making the cluster's CA", e))?;
    let (cert, key) = authority
        .issue("edgekeep test cluster", &["localhost", "127.0.0.1"])
        .map_err(|e| step("issuing the server certificate", e))?;
    std::fs::write(dir.join("ca.pem"), authority.ca_pem())
        .map_err(|e| step("writing the CA", e))?;
    std::fs::write(dir.join("server.crt"), cert)
        .map_err(|e| step("writing the server certificate", e))?;
    write_private(&dir.join("server.key"), &key)?;
    Ok(authority)
}

/// PostgreSQL reads a key only if no one else may.
fn write_private(path: &Path, pem: &str) -> Result<(), ClusterError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(pem.as_bytes()))
        .map_err(|e| step("writing a private key", e))
}

/// Members of [`CERTIFICATE_ROLES`] sign in over TLS with a certificate named after them, the
/// rule read before initdb's password rules.
fn allow_certificate_logins(data: &Path) -> Result<(), ClusterError> {
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).map_err(|e| step("reading pg_hba.conf", e))?;
    std::fs::write(
        &hba,
        format!("hostssl all +{CERTIFICATE_ROLES} 127.0.0.1/32 cert\n{rules}"),
    )
    .map_err(|e| step("writing pg_hba.conf", e))
}

/// `path` for a URL's query, every byte but letters and digits escaped.
pub fn url_encoded(path: &Path) -> String {
    percent_encoding::utf8_percent_encode(
        &path.to_string_lossy(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string()
}

/// The newest installed server's binary folder.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn run_as(as_root: bool, program: &Path) -> Command {
    setpriv(as_root, false, program)
}

/// `program`, as the `postgres` user when we are root, and told to quit (SIGQUIT, PostgreSQL's
/// immediate shutdown) when the thread that started it ends if `die_with_parent`. One
/// `setpriv` does both: the kernel clears the parent-death signal when the user changes, and
/// `setpriv` sets it after.
fn setpriv(as_root: bool, die_with_parent: bool, program: &Path) -> Command {
    if !as_root && !die_with_parent {
        return Command::new(program);
    }
    let mut command = Command::new("setpriv");
    if as_root {
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    if die_with_parent {
        command.args(["--pdeathsig", "QUIT"]);
    }
    command.arg("--").arg(program);
    command
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn chown_to_postgres(path: &Path) -> Result<(), ClusterError> {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .map_err(|e| step("chown", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(ClusterError::Step {
            step: "chown",
            detail: format!("chown -R postgres {} failed", path.display()),
        })
    }
}

fn free_port() -> Result<u16, ClusterError> {
    let probe =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| step("finding a port", e))?;
    probe
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| step("finding a port", e))
}

fn random_password() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 18];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// [`step`] for a database error, with the server's message (`postgres::Error` displays only
/// "db error").
fn pg_step(what: &'static str, error: &postgres::Error) -> ClusterError {
    match error.as_db_error() {
        Some(db) => step(what, format!("{}: {}", db.code().code(), db.message())),
        None => step(what, error),
    }
}

fn step(step: &'static str, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Step {
        step,
        detail: error.to_string(),
    }
}
