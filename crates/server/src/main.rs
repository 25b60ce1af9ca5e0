//! `edgekeep-server`: the control plane binary. A thin CLI over the `edgekeep_server` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use edgekeep_server::data_dir::DataDir;
use edgekeep_server::{Database, ServerConfig, audit};

#[derive(Parser)]
#[command(
    name = "edgekeep-server",
    version,
    about = "The edgekeep control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The data folder and where its records are kept.
#[derive(Args)]
struct Records {
    /// Data folder (keys, TLS files, artifacts; and the SQLite database by default).
    #[arg(long)]
    data: PathBuf,
    /// Where the records are kept: `sqlite` (the data folder's file) or a `postgres://` URL.
    /// Prefer the environment variable: a URL on a command line shows its password to the
    /// machine's other users.
    #[arg(
        long,
        env = "EDGEKEEP_DATABASE",
        hide_env_values = true,
        default_value = "sqlite"
    )]
    database: Database,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data folder, a development TLS certificate, and the first org and Owner.
    /// Prints the Owner's API key once.
    Init {
        #[command(flatten)]
        records: Records,
        /// Name of the first org.
        #[arg(long, default_value = "default")]
        org: String,
    },
    /// Serve the API over HTTPS.
    Serve {
        #[command(flatten)]
        records: Records,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Certificate chain PEM (default: the one generated at init).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Private key PEM.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Public base URL devices use (what their proofs name).
        #[arg(long)]
        public_url: Option<String>,
        /// Address of a load balancer or proxy whose `X-Forwarded-For` names the client for
        /// rate limits (repeatable). Without it the header is ignored.
        #[arg(long = "trusted-proxy")]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// PEM file of extra root certificates trusted for orgs' identity providers, besides
        /// the web roots (repeatable; for a provider behind a private CA).
        #[arg(long = "idp-root")]
        idp_roots: Vec<PathBuf>,
        /// Most open connections (default: three quarters of the file limit, at most 4096).
        #[arg(long)]
        max_connections: Option<usize>,
        /// Seconds a connection may stay open with no request in flight.
        #[arg(long, default_value_t = 30)]
        idle_timeout_secs: u64,
        /// Seconds shutdown waits for open requests.
        #[arg(long, default_value_t = 10)]
        shutdown_grace_secs: u64,
    },
    /// Bring the database's schema up to date (serving does it too) and print its version;
    /// refuses a schema newer than this binary.
    Migrate {
        #[command(flatten)]
        records: Records,
    },
    /// Copy an SQLite deployment's records (orgs, people, keys, devices, credentials,
    /// models, rollouts, telemetry, the audit chain) into an empty PostgreSQL database, then
    /// the artifact ciphertexts, then verify every org's audit chain there. The data folder's
    /// keys stay where they are: serve with the same folder and `--database`.
    MigrateStorage {
        /// Data folder of the SQLite deployment (stop its server first).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database to fill (`postgres://`); prefer the environment variable.
        #[arg(long, env = "EDGEKEEP_DATABASE", hide_env_values = true)]
        to: Database,
    },
    /// Org administration.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Back up a data folder while the server serves: a consistent database snapshot, the
    /// artifacts it references, the server keys and TLS files. The result is a data folder.
    Backup {
        /// Data folder.
        #[arg(long)]
        data: PathBuf,
        /// Backup folder to create (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create another org with its first Owner; prints the Owner's API key once.
    Create {
        #[command(flatten)]
        records: Records,
        /// Org name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every org's hash chain and authenticated head; exits non-zero and names the
    /// first broken entry.
    Verify {
        #[command(flatten)]
        records: Records,
        /// JSON Lines of signed checkpoints (`GET /v1/audit/checkpoint`) kept elsewhere: each
        /// org's chain must still hold its newest checkpoint (detects a rolled-back database).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
    /// Export an org's entries in [from, to) as JSON Lines on stdout.
    Export {
        #[command(flatten)]
        records: Records,
        /// Org id.
        #[arg(long)]
        org: String,
        /// Earliest unix time, inclusive.
        #[arg(long)]
        from: Option<i64>,
        /// Latest unix time, exclusive.
        #[arg(long)]
        to: Option<i64>,
    },
}

fn print_created(created: &edgekeep_server::OrgCreated) {
    println!("org id:        {}", created.org_id);
    println!("owner member:  {}", created.owner_member_id);
    println!("owner API key: {}", created.owner_api_key);
    println!("owner invitation: {}", created.owner_invitation);
    println!("(the key and the invitation are shown once; only their hashes are stored;");
    println!(" the person who accepts the invitation with a passkey becomes this Owner)");
}

/// Runs a command. Only serving needs an async runtime; the other commands use the storage
/// directly, which blocks (and must not inside a runtime).
fn run(cli: Cli) -> Result<bool, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Init { records, org } => {
            let created = edgekeep_server::init_with(&records.data, &records.database, &org)?;
            print_created(&created);
            println!(
                "development CA:  {}",
                DataDir::new(&records.data).ca_cert().display()
            );
        }
        Command::Migrate { records } => {
            let storage = DataDir::new(&records.data).open_database(&records.database, 1)?;
            println!("schema version {}", storage.schema_version()?);
        }
        Command::MigrateStorage { from, to } => {
            let Database::Postgres(url) = &to else {
                return Err("--to must be a postgres:// URL".into());
            };
            let dir = DataDir::new(&from);
            // Opening the SQLite database brings it to its newest schema first.
            drop(dir.open_storage(1)?);
            let key = dir.load_secret()?.audit_key();
            let target = edgekeep_server::storage::PgStorage::open(url, 2, key.clone())?;
            let report = target.copy_from_sqlite(&dir.database(), Some(&dir.artifacts()))?;
            for (table, rows) in &report.tables {
                println!("{table}: {rows} rows");
            }
            println!("artifacts: {}", report.artifacts);
            let mut intact = true;
            for report in audit::verify_all(&target, &key, &[])? {
                match report.result {
                    Ok(count) => println!("{}: audit chain ok ({count} entries)", report.org_id),
                    Err(problem) => {
                        intact = false;
                        println!("{}: audit chain BROKEN: {problem}", report.org_id);
                    }
                }
            }
            return Ok(intact);
        }
        Command::Serve {
            records,
            listen,
            tls_cert,
            tls_key,
            public_url,
            trusted_proxies,
            idp_roots,
            max_connections,
            idle_timeout_secs,
            shutdown_grace_secs,
        } => {
            let mut config = ServerConfig::new(records.data, listen);
            config.database = records.database;
            config.tls_cert = tls_cert;
            config.tls_key = tls_key;
            config.public_url = public_url;
            config.trusted_proxies = trusted_proxies;
            config.idp_extra_roots = idp_roots;
            config.connections.max_connections = max_connections;
            config.connections.idle_timeout = std::time::Duration::from_secs(idle_timeout_secs);
            config.connections.shutdown_grace = std::time::Duration::from_secs(shutdown_grace_secs);
            tokio::runtime::Runtime::new()?.block_on(async {
                let server = edgekeep_server::Server::start(config).await?;
                println!("listening on {}", server.base_url());
                tokio::signal::ctrl_c().await?;
                server.shutdown().await;
                Ok::<_, Box<dyn std::error::Error>>(())
            })?;
        }
        Command::Backup { data, out } => {
            let report = edgekeep_server::backup::backup(&data, &out)?;
            println!(
                "backed up to {}: database {} bytes, {} artifacts ({} bytes)",
                out.display(),
                report.database_bytes,
                report.artifacts,
                report.artifact_bytes
            );
        }
        Command::Org {
            command: OrgCommand::Create { records, name },
        } => print_created(&edgekeep_server::create_org(
            &records.data,
            &records.database,
            &name,
        )?),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    records,
                    checkpoints,
                },
        } => {
            let dir = DataDir::new(&records.data);
            let storage = dir.open_database(&records.database, 1)?;
            let key = dir.load_secret()?.audit_key();
            let checkpoints = match checkpoints {
                Some(path) => read_checkpoints(&path, &dir.load_or_create_desired_state_key()?)?,
                None => Vec::new(),
            };
            let mut intact = true;
            for report in audit::verify_all(&*storage, &key, &checkpoints)? {
                match report.result {
                    Ok(count) => println!("{}: ok ({count} entries)", report.org_id),
                    Err(problem) => {
                        intact = false;
                        println!("{}: BROKEN: {problem}", report.org_id);
                    }
                }
            }
            return Ok(intact);
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    records,
                    org,
                    from,
                    to,
                },
        } => {
            let storage = DataDir::new(&records.data).open_database(&records.database, 1)?;
            for entry in storage.audit_entries(&org, from, to)? {
                println!("{}", audit::export_line(&entry)?);
            }
        }
    }
    Ok(true)
}

/// Reads JSON Lines of checkpoints, refusing any not signed by the server's key.
fn read_checkpoints(
    path: &std::path::Path,
    key: &edgekeep_protocol::signing::SigningKey,
) -> Result<Vec<edgekeep_protocol::api::AuditCheckpoint>, Box<dyn std::error::Error>> {
    let public = key.public_key();
    let mut out = Vec::new();
    for (index, line) in std::fs::read_to_string(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let checkpoint: edgekeep_protocol::api::AuditCheckpoint = serde_json::from_str(line)
            .map_err(|_| format!("checkpoint line {} is not a checkpoint", index + 1))?;
        if !audit::checkpoint_signed_by(&checkpoint, &public) {
            return Err(
                format!("checkpoint line {} is not signed by this server", index + 1).into(),
            );
        }
        out.push(checkpoint);
    }
    Ok(out)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
