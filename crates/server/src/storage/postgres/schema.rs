//! Opening a PostgreSQL database: the pool, the role check and the migrations.

use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::{self, GenericClient};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::Target;

use crate::storage::StorageError;

/// The numbered migrations, schema 1 first; applied in order, each in its own transaction.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_person_scope.sql"),
    include_str!("migrations/0003_rate_buckets.sql"),
    include_str!("migrations/0004_artifacts.sql"),
];

/// Only one instance migrates at a time: the others wait on this advisory lock, then find the
/// work done.
const MIGRATION_LOCK: i64 = 0x6564_6765_6b65_6570; // "edgekeep"

/// A pool of connections to one database.
pub type Pool = r2d2::Pool<Manager>;

/// Most prepared statements a connection keeps (the storage's statements are a few hundred
/// fixed texts; past this the cache starts over).
const STATEMENTS_PER_CONNECTION: usize = 1024;

/// A pooled connection and the statements it has prepared (each parsed and planned once per
/// connection, then one round trip per use).
pub struct Connection {
    client: postgres::Client,
    statements: std::collections::HashMap<String, postgres::Statement>,
}

impl Connection {
    /// The client and its statement cache, apart (a transaction borrows the client).
    pub fn parts(
        &mut self,
    ) -> (
        &mut postgres::Client,
        &mut std::collections::HashMap<String, postgres::Statement>,
    ) {
        if self.statements.len() > STATEMENTS_PER_CONNECTION {
            self.statements.clear();
        }
        (&mut self.client, &mut self.statements)
    }
}

impl std::ops::Deref for Connection {
    type Target = postgres::Client;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.client
    }
}

/// One direct connection to `url`, with the TLS its parameters ask for (tools and tests that
/// need a client outside the pool).
pub fn connect(url: &str) -> Result<postgres::Client, StorageError> {
    connect_to(&Target::from_url(url)?)
}

fn connect_to(target: &Target) -> Result<postgres::Client, StorageError> {
    target
        .config
        .connect(target.tls.clone())
        .map_err(|e| match from_pg(&e) {
            StorageError::Postgres(why) => StorageError::Unusable(why),
            other => other,
        })
}

/// r2d2's PostgreSQL manager, with a statement cache per connection.
pub struct Manager(PostgresConnectionManager<MakeRustlsConnect>);

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Manager")
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection {
            client: self.0.connect()?,
            statements: std::collections::HashMap::new(),
        })
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut connection.client)
    }

    fn has_broken(&self, connection: &mut Connection) -> bool {
        self.0.has_broken(&mut connection.client)
    }
}

/// Connects to `url` with up to `size` connections, protected as its TLS parameters ask
/// ([`super::tls`]), refuses a role that would not be bound by the tenant policies, and brings
/// the schema up to date (refusing a newer one).
pub fn open(url: &str, size: u32) -> Result<Pool, StorageError> {
    let target = Target::from_url(url)?;
    if target.protection.resists_interception() || target.is_local() {
        tracing::info!(database_tls = %target.protection, "connecting to PostgreSQL");
    } else {
        tracing::warn!(
            database_tls = %target.protection,
            "the database is across a network and its certificate is not verified: set \
             sslmode=verify-full and sslrootcert in the database URL"
        );
    }
    // One direct connection first: its error says why (refused, wrong password, no such
    // database, a certificate that does not verify) at once, where the pool would retry until
    // its timeout.
    let mut probe = connect_to(&target)?;
    refuse_unbound_role(&mut probe)?;
    migrate(&mut probe)?;
    drop(probe);
    let pool = r2d2::Pool::builder()
        .max_size(size.max(1))
        // A lost database answers 503 within this, rather than holding requests.
        .connection_timeout(std::time::Duration::from_secs(5))
        // Each checkout checks its connection (an empty query): after the database comes
        // back, the pool's dead connections are replaced, not handed out. One round trip per
        // call; a cheaper check only after a failure is future work.
        .test_on_check_out(true)
        .build(Manager(PostgresConnectionManager::new(
            target.config,
            target.tls,
        )))
        .map_err(|e| StorageError::Unusable(e.to_string()))?;
    Ok(pool)
}

/// A superuser or `BYPASSRLS` role is not bound by row-level security: the server will not run
/// as one.
fn refuse_unbound_role(client: &mut postgres::Client) -> Result<(), StorageError> {
    let row = client
        .query_one(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .map_err(|e| from_pg(&e))?;
    if row.get::<_, bool>(0) {
        return Err(StorageError::Unusable(
            "the database role is a superuser or BYPASSRLS: row-level security would not bind \
             it; connect as the owner of edgekeep's tables instead"
                .to_owned(),
        ));
    }
    Ok(())
}

/// The schema version the database is at (0 when empty).
pub fn schema_version(client: &mut impl GenericClient) -> Result<i64, StorageError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .map_err(|e| from_pg(&e))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .map(|row| row.get(0))
        .map_err(|e| from_pg(&e))
}

fn migrate(client: &mut postgres::Client) -> Result<(), StorageError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let mut tx = client.transaction().map_err(|e| from_pg(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| from_pg(&e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .map_err(|e| from_pg(&e))?;
    let current = schema_version(&mut tx)?;
    if current > known {
        return Err(StorageError::SchemaTooNew(current));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        tx.batch_execute(sql).map_err(|e| from_pg(&e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&version, &crate::now()],
        )
        .map_err(|e| from_pg(&e))?;
    }
    tx.commit().map_err(|e| from_pg(&e))
}

/// A PostgreSQL error as a [`StorageError`]: a unique violation is a conflict, a lost
/// connection or a server going down is unavailability, anything else keeps only its SQLSTATE
/// and the server's message.
pub fn from_pg(error: &postgres::Error) -> StorageError {
    match error.as_db_error() {
        Some(db) if db.code() == &postgres::error::SqlState::UNIQUE_VIOLATION => {
            StorageError::Conflict("already exists")
        }
        // Connection exceptions (class 08) and the server shutting down or starting (57P0x):
        // retrying later may succeed.
        Some(db) if db.code().code().starts_with("08") || db.code().code().starts_with("57P0") => {
            StorageError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
        }
        Some(db) => StorageError::Postgres(format!("{}: {}", db.code().code(), db.message())),
        None if error.is_closed() => StorageError::Unavailable(with_causes(error)),
        None => StorageError::Postgres(with_causes(error)),
    }
}

/// The error and what caused it (a TLS handshake failure says why only in its source).
fn with_causes(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}
