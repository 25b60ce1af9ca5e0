//! Moving up: copies an SQLite deployment's records into an empty PostgreSQL database, table
//! for table and row for row, in one transaction, then fills `credential_orgs` from the
//! credentials copied. The audit chain moves as it is, so it verifies with the same data
//! folder's key.

use std::path::Path;

use r2d2_postgres::postgres::types::ToSql;
use rusqlite::types::Value;

use super::artifacts::put_artifact_tx;
use super::store::{PgStorage, Scope, Tx, all, enter, exec, get};
use crate::storage::StorageError;

/// One table to copy: its name, the column naming each row's org (org-scoped tables), and the
/// SQLite query giving its PostgreSQL columns in order.
struct Table {
    name: &'static str,
    org_column: Option<&'static str>,
    select: &'static str,
}

const ORG: Option<&str> = Some("org_id");

const fn table(
    name: &'static str,
    org_column: Option<&'static str>,
    select: &'static str,
) -> Table {
    Table {
        name,
        org_column,
        select,
    }
}

/// Parents before children. Org-scoped tables are read org by org (the policies take one org
/// per transaction at a time) and in insertion order.
const TABLES: &[Table] = &[
    table(
        "orgs",
        Some("id"),
        "SELECT id, name, created_at FROM orgs ORDER BY id",
    ),
    table("users", None, "SELECT * FROM users ORDER BY rowid"),
    table("passkeys", None, "SELECT * FROM passkeys ORDER BY rowid"),
    table(
        "ceremonies",
        None,
        "SELECT * FROM ceremonies ORDER BY rowid",
    ),
    table(
        "members",
        ORG,
        "SELECT * FROM members ORDER BY org_id, rowid",
    ),
    table(
        "api_keys",
        ORG,
        "SELECT * FROM api_keys ORDER BY org_id, rowid",
    ),
    table(
        "bootstrap_tokens",
        ORG,
        "SELECT * FROM bootstrap_tokens ORDER BY org_id, rowid",
    ),
    table(
        "devices",
        ORG,
        "SELECT * FROM devices ORDER BY org_id, rowid",
    ),
    table(
        "device_tokens",
        ORG,
        "SELECT * FROM device_tokens ORDER BY org_id, rowid",
    ),
    table(
        "audit_log",
        ORG,
        "SELECT * FROM audit_log ORDER BY org_id, seq",
    ),
    table(
        "audit_heads",
        ORG,
        "SELECT * FROM audit_heads ORDER BY org_id",
    ),
    table(
        "publisher_keys",
        ORG,
        "SELECT * FROM publisher_keys ORDER BY org_id, rowid",
    ),
    table(
        "model_versions",
        ORG,
        "SELECT * FROM model_versions ORDER BY org_id, rowid",
    ),
    table(
        "rollouts",
        ORG,
        "SELECT * FROM rollouts ORDER BY org_id, rowid",
    ),
    table(
        "rollout_progress",
        ORG,
        "SELECT * FROM rollout_progress ORDER BY org_id, rowid",
    ),
    table(
        "device_status",
        ORG,
        "SELECT * FROM device_status ORDER BY org_id, rowid",
    ),
    table(
        "telemetry_batches",
        ORG,
        "SELECT d.org_id, b.device_id, b.seq, b.received_at FROM telemetry_batches b \
         JOIN devices d ON d.id = b.device_id ORDER BY d.org_id, b.rowid",
    ),
    table(
        "telemetry_latency",
        ORG,
        "SELECT * FROM telemetry_latency ORDER BY org_id, rowid",
    ),
    table(
        "telemetry_quality",
        ORG,
        "SELECT * FROM telemetry_quality ORDER BY org_id, rowid",
    ),
    table(
        "telemetry_events",
        ORG,
        "SELECT * FROM telemetry_events ORDER BY org_id, rowid",
    ),
    table(
        "telemetry_health",
        ORG,
        "SELECT * FROM telemetry_health ORDER BY org_id, rowid",
    ),
    table(
        "fleet_snapshots",
        ORG,
        "SELECT * FROM fleet_snapshots ORDER BY org_id, rowid",
    ),
    table(
        "invitations",
        ORG,
        "SELECT * FROM invitations ORDER BY org_id, rowid",
    ),
    table(
        "sessions",
        ORG,
        "SELECT * FROM sessions ORDER BY org_id, rowid",
    ),
    table(
        "idp_configs",
        ORG,
        "SELECT * FROM idp_configs ORDER BY org_id",
    ),
    table(
        "saml_configs",
        ORG,
        "SELECT * FROM saml_configs ORDER BY org_id",
    ),
    table(
        "identity_links",
        ORG,
        "SELECT * FROM identity_links ORDER BY org_id, rowid",
    ),
    table(
        "scim_tokens",
        ORG,
        "SELECT * FROM scim_tokens ORDER BY org_id, rowid",
    ),
    table(
        "scim_users",
        ORG,
        "SELECT * FROM scim_users ORDER BY org_id, rowid",
    ),
    table(
        "scim_groups",
        ORG,
        "SELECT * FROM scim_groups ORDER BY org_id, rowid",
    ),
    table(
        "scim_group_members",
        ORG,
        "SELECT g.org_id, m.group_id, m.user_id FROM scim_group_members m \
         JOIN scim_groups g ON g.id = m.group_id ORDER BY g.org_id, m.rowid",
    ),
];

/// Which org each credential belongs to, by the hash of its secret.
const CREDENTIALS: &[(&str, &str, &str)] = &[
    ("api_key", "api_keys", "hash"),
    ("device_token", "device_tokens", "hash"),
    ("session", "sessions", "hash"),
    ("scim_token", "scim_tokens", "hash"),
    ("invitation", "invitations", "token_hash"),
    ("bootstrap", "bootstrap_tokens", "hash"),
];

/// What was copied: rows per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// `(table, rows)` in copy order.
    pub tables: Vec<(&'static str, u64)>,
    /// Artifact ciphertexts copied from the folder.
    pub artifacts: u64,
}

/// Copies the ciphertext of every model version from the deployment's artifact folder; a
/// missing one is an error (the deployment lost it).
fn copy_artifacts(
    tx: &mut Tx<'_>,
    source: &rusqlite::Connection,
    folder: &Path,
) -> Result<u64, StorageError> {
    let mut select =
        source.prepare("SELECT org_id, artifact_id FROM model_versions ORDER BY org_id, rowid")?;
    let versions = select
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (org_id, artifact_id) in &versions {
        let path = folder.join(artifact_id);
        let file = std::fs::File::open(&path).map_err(|_| {
            StorageError::Io(format!("artifact {artifact_id} is missing from the folder"))
        })?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::Io(e.to_string()))?
            .len();
        enter(tx, Scope::Org(org_id))?;
        put_artifact_tx(tx, org_id, artifact_id, std::io::BufReader::new(file), len)?;
    }
    enter(tx, Scope::Global)?;
    Ok(versions.len() as u64)
}

/// A PostgreSQL column type this copy knows how to fill.
#[derive(Debug, Clone, Copy)]
enum Column {
    BigInt,
    Int,
    Text,
    Bytes,
    Bool,
    Double,
}

fn column_types(tx: &mut Tx<'_>, table: &str) -> Result<Vec<(String, Column)>, StorageError> {
    let columns = all(
        tx,
        "SELECT column_name::text, data_type::text, is_identity::text FROM \
         information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
         ORDER BY ordinal_position",
        &[&table],
        |row| {
            Ok((
                get::<String>(row, 0)?,
                get::<String>(row, 1)?,
                get::<String>(row, 2)?,
            ))
        },
    )?;
    columns
        .into_iter()
        // Identity columns (insertion order) are numbered anew, in the copy's order.
        .filter(|(_, _, identity)| identity != "YES")
        .map(|(name, kind, _)| {
            let column = match kind.as_str() {
                "bigint" => Column::BigInt,
                "integer" => Column::Int,
                "text" => Column::Text,
                "bytea" => Column::Bytes,
                "boolean" => Column::Bool,
                "double precision" => Column::Double,
                _ => {
                    return Err(StorageError::Unusable(format!(
                        "column {table}.{name} has a type the copy does not know"
                    )));
                }
            };
            Ok((name, column))
        })
        .collect()
}

/// An SQLite value as a parameter for a PostgreSQL column.
fn convert(
    value: Value,
    column: Column,
    name: &str,
) -> Result<Box<dyn ToSql + Sync>, StorageError> {
    let wrong = || StorageError::Unusable(format!("a value of column {name} cannot be copied"));
    Ok(match (column, value) {
        (Column::BigInt, Value::Null) => Box::new(None::<i64>),
        (Column::Int, Value::Null) => Box::new(None::<i32>),
        (Column::Text, Value::Null) => Box::new(None::<String>),
        (Column::Bytes, Value::Null) => Box::new(None::<Vec<u8>>),
        (Column::Bool, Value::Null) => Box::new(None::<bool>),
        (Column::Double, Value::Null) => Box::new(None::<f64>),
        (Column::BigInt, Value::Integer(v)) => Box::new(v),
        (Column::Int, Value::Integer(v)) => Box::new(i32::try_from(v).map_err(|_| wrong())?),
        (Column::Bool, Value::Integer(v)) => Box::new(v != 0),
        (Column::Double, Value::Integer(v)) => Box::new(v as f64),
        (Column::Double, Value::Real(v)) => Box::new(v),
        (Column::Text, Value::Text(v)) => Box::new(v),
        (Column::Bytes, Value::Blob(v)) => Box::new(v),
        _ => return Err(wrong()),
    })
}

fn copy_table(
    tx: &mut Tx<'_>,
    source: &rusqlite::Connection,
    table: &Table,
) -> Result<u64, StorageError> {
    let columns = column_types(tx, table.name)?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {} ({}) VALUES ({})",
            table.name,
            names.join(", "),
            placeholders.join(", ")
        ))
        .map_err(|e| super::schema::from_pg(&e))?;
    let mut select = source.prepare(table.select)?;
    if select.column_count() != columns.len() {
        return Err(StorageError::Unusable(format!(
            "table {} has {} columns in SQLite and {} in PostgreSQL",
            table.name,
            select.column_count(),
            columns.len()
        )));
    }
    let org_index = match table.org_column {
        Some(org) => Some(names.iter().position(|name| *name == org).ok_or_else(|| {
            StorageError::Unusable(format!("table {} has no {org} column", table.name))
        })?),
        None => None,
    };
    let mut rows = select.query([])?;
    let (mut copied, mut current_org) = (0, None::<String>);
    while let Some(row) = rows.next()? {
        let mut params = Vec::with_capacity(columns.len());
        for (index, (name, column)) in columns.iter().enumerate() {
            params.push(convert(row.get::<_, Value>(index)?, *column, name)?);
        }
        if let Some(index) = org_index {
            let org: String = row.get(index)?;
            if current_org.as_deref() != Some(org.as_str()) {
                enter(tx, Scope::Org(&org))?;
                current_org = Some(org);
            }
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(AsRef::as_ref).collect();
        tx.execute(&insert, &refs)
            .map_err(|e| super::schema::from_pg(&e))?;
        copied += 1;
    }
    enter(tx, Scope::Global)?;
    Ok(copied)
}

impl PgStorage {
    /// Copies every record of the SQLite database at `source` (brought to its newest schema
    /// first by whoever opened it) into this database, which must hold no org, with the
    /// ciphertext of every model version from the folder `artifacts` when given. One
    /// transaction: on any failure nothing is left behind.
    pub fn copy_from_sqlite(
        &self,
        source: &Path,
        artifacts: Option<&Path>,
    ) -> Result<CopyReport, StorageError> {
        let source = rusqlite::Connection::open_with_flags(
            source,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // One snapshot of the source for the whole copy.
        source.execute_batch("BEGIN")?;
        self.run(Scope::Global, |tx| {
            if !self.all_orgs(tx)?.is_empty() {
                return Err(StorageError::Conflict(
                    "the PostgreSQL database already holds orgs: copy into an empty one",
                ));
            }
            let mut report = CopyReport {
                tables: Vec::new(),
                artifacts: 0,
            };
            for table in TABLES {
                report
                    .tables
                    .push((table.name, copy_table(tx, &source, table)?));
            }
            if let Some(folder) = artifacts {
                report.artifacts = copy_artifacts(tx, &source, folder)?;
            }
            for org in self.all_orgs(tx)? {
                enter(tx, Scope::Org(&org))?;
                for (kind, table, column) in CREDENTIALS {
                    exec(
                        tx,
                        &format!(
                            "INSERT INTO credential_orgs (hash, kind, org_id) \
                             SELECT {column}, '{kind}', org_id FROM {table} WHERE org_id = $1"
                        ),
                        &[&org],
                    )?;
                }
            }
            Ok(report)
        })
    }
}
