//! [`PgStorage`]: the pool, the scope of each transaction, the shared row helpers and the
//! [`Storage`] calls of orgs, members, API keys, devices, tokens and the audit chain.

use edgekeep_protocol::api::{AuditEntry, Permission, Role};
use r2d2_postgres::postgres::types::{FromSql, ToSql};
use r2d2_postgres::postgres::{Row, Statement};

use super::schema::{self, Pool, from_pg};
use crate::audit::{AuditKey, GENESIS_HASH, entry_hash, safe_event};
use crate::storage::{
    ApiKeyRecord, AuditEvent, AuditHead, BootstrapRecord, DeviceRecord, DeviceTokenKind,
    DeviceTokenRecord, MemberRecord, OrgRecord, RefreshOutcome, Storage, StorageError,
};

/// PostgreSQL-backed storage: a pool of connections, every transaction scoped by the tenant
/// policies (ADR 0018). Several server instances may share one database.
///
/// The `postgres` client blocks on a runtime of its own: call it from blocking code (the HTTP
/// layer's `spawn_blocking`), never from an async task.
pub struct PgStorage {
    pub(super) audit_key: AuditKey,
    /// Always `Some` until dropped.
    pool: Option<Pool>,
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        // Each pooled client owns a runtime, which must not be dropped inside an async task:
        // the pool is dropped on a thread of its own.
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::Builder::new()
                .name("edgekeep-pg-close".to_owned())
                .spawn(move || drop(pool));
        }
    }
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("connections", &self.pool.as_ref().map(Pool::max_size))
            .finish_non_exhaustive()
    }
}

/// Whose rows a transaction may see.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    /// One org's rows.
    Org(&'a str),
    /// One person's memberships and sessions, across orgs.
    Person(&'a str),
    /// No org-scoped rows at all: people, passkeys, ceremonies.
    Global,
    /// The list of orgs, for housekeeping that then scopes itself to each.
    Maintenance,
}

/// The credentials found by the hash of their secret before the org is known.
#[derive(Debug, Clone, Copy)]
pub(super) enum Credential {
    ApiKey,
    DeviceToken,
    Session,
    ScimToken,
    Invitation,
    Bootstrap,
}

impl Credential {
    fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::DeviceToken => "device_token",
            Self::Session => "session",
            Self::ScimToken => "scim_token",
            Self::Invitation => "invitation",
            Self::Bootstrap => "bootstrap",
        }
    }
}

/// Parameters of a statement.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A transaction on a pooled connection, preparing each statement text once per connection.
pub(super) struct Tx<'a> {
    inner: r2d2_postgres::postgres::Transaction<'a>,
    statements: &'a mut std::collections::HashMap<String, Statement>,
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = r2d2_postgres::postgres::Transaction<'a>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl Tx<'_> {
    /// `sql` prepared on this connection, from the cache after the first time.
    fn statement(&mut self, sql: &str) -> Result<Statement, StorageError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.inner.prepare(sql).map_err(|e| from_pg(&e))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl PgStorage {
    /// Connects to `url` with up to `connections` pooled connections, refuses a role the tenant
    /// policies would not bind and brings the schema up to date. `audit_key` authenticates
    /// audit chain heads.
    pub fn open(url: &str, connections: u32, audit_key: AuditKey) -> Result<Self, StorageError> {
        Ok(Self {
            audit_key,
            pool: Some(schema::open(url, connections)?),
        })
    }

    /// Runs `body` in one transaction scoped to `scope`, committing when it succeeds.
    pub(super) fn run<T>(
        &self,
        scope: Scope<'_>,
        body: impl FnOnce(&mut Tx<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut client = self
            .pool
            .as_ref()
            .ok_or_else(|| StorageError::Unusable("the storage is closed".to_owned()))?
            .get()
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        let (client, statements) = client.parts();
        let inner = client.transaction().map_err(|e| from_pg(&e))?;
        let mut tx = Tx { inner, statements };
        enter(&mut tx, scope)?;
        let out = body(&mut tx)?;
        tx.inner.commit().map_err(|e| from_pg(&e))?;
        Ok(out)
    }

    /// Runs `body` scoped to the org of the credential whose secret hashes to `hash`; `None`,
    /// without running it, when no such credential was issued.
    pub(super) fn by_credential<T>(
        &self,
        kind: Credential,
        hash: &[u8; 32],
        body: impl FnOnce(&mut Tx<'_>) -> Result<Option<T>, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        self.run(Scope::Global, |tx| {
            let Some(org) = credential_org(tx, kind, hash)? else {
                return Ok(None);
            };
            enter(tx, Scope::Org(&org))?;
            body(tx)
        })
    }

    /// Runs `update` in `scope` and audits it when it changed a row; whether it did.
    pub(super) fn audited_change(
        &self,
        scope: Scope<'_>,
        update: &str,
        params: &Params<'_>,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.run(scope, |tx| {
            let changed = exec(tx, update, params)? > 0;
            if changed {
                append_audit_tx(tx, &self.audit_key, audit)?;
            }
            Ok(changed)
        })
    }

    /// The ids of every org, each then to be visited in its own scope.
    pub(super) fn all_orgs(&self, tx: &mut Tx<'_>) -> Result<Vec<String>, StorageError> {
        enter(tx, Scope::Maintenance)?;
        let ids = rows(tx, "SELECT id FROM orgs ORDER BY id", &[])?
            .iter()
            .map(|row| get(row, 0))
            .collect::<Result<_, _>>()?;
        tx.execute("SELECT set_config('edgekeep.maintenance', '', true)", &[])
            .map_err(|e| from_pg(&e))?;
        Ok(ids)
    }
}

/// Sets the transaction's scope (transaction-local, as `SET LOCAL`).
pub(super) fn enter(tx: &mut Tx<'_>, scope: Scope<'_>) -> Result<(), StorageError> {
    let (org, person, maintenance) = match scope {
        Scope::Org(org) => (org, "", ""),
        Scope::Person(person) => ("", person, ""),
        Scope::Global => ("", "", ""),
        Scope::Maintenance => ("", "", "on"),
    };
    tx.execute(
        "SELECT set_config('edgekeep.org_id', $1, true), \
         set_config('edgekeep.user_id', $2, true), \
         set_config('edgekeep.maintenance', $3, true)",
        &[&org, &person, &maintenance],
    )
    .map_err(|e| from_pg(&e))?;
    Ok(())
}

/// Adds a person to the current org scope (a statement that must also see their rows in other
/// orgs, as deprovisioning does).
pub(super) fn also_person(tx: &mut Tx<'_>, user_id: &str) -> Result<(), StorageError> {
    tx.execute(
        "SELECT set_config('edgekeep.user_id', $1, true)",
        &[&user_id],
    )
    .map_err(|e| from_pg(&e))?;
    Ok(())
}

/// Serializes, across every instance, the changes of one org that must see each other: audit
/// appends (one chain per org), role and membership checks. Held until the transaction ends.
pub(super) fn lock_org(tx: &mut Tx<'_>, org_id: &str) -> Result<(), StorageError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('edgekeep.org:' || $1, 0))",
        &[&org_id],
    )
    .map_err(|e| from_pg(&e))?;
    Ok(())
}

fn credential_org(
    tx: &mut Tx<'_>,
    kind: Credential,
    hash: &[u8; 32],
) -> Result<Option<String>, StorageError> {
    opt(
        tx,
        "SELECT org_id FROM credential_orgs WHERE hash = $1 AND kind = $2",
        &[&hash.as_slice(), &kind.as_str()],
        |row| get(row, 0),
    )
}

/// Records which org a newly issued credential belongs to.
pub(super) fn issue_credential(
    tx: &mut Tx<'_>,
    kind: Credential,
    hash: &[u8; 32],
    org_id: &str,
) -> Result<(), StorageError> {
    exec(
        tx,
        "INSERT INTO credential_orgs (hash, kind, org_id) VALUES ($1, $2, $3)",
        &[&hash.as_slice(), &kind.as_str(), &org_id],
    )
    .map(drop)
}

/// Runs a statement; the number of rows it changed.
pub(super) fn exec(tx: &mut Tx<'_>, sql: &str, params: &Params<'_>) -> Result<u64, StorageError> {
    let statement = tx.statement(sql)?;
    tx.inner
        .execute(&statement, params)
        .map_err(|e| from_pg(&e))
}

/// The rows of a query.
pub(super) fn rows(
    tx: &mut Tx<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, StorageError> {
    let statement = tx.statement(sql)?;
    tx.inner.query(&statement, params).map_err(|e| from_pg(&e))
}

/// The one row of a query.
pub(super) fn one(tx: &mut Tx<'_>, sql: &str, params: &Params<'_>) -> Result<Row, StorageError> {
    let statement = tx.statement(sql)?;
    tx.inner
        .query_one(&statement, params)
        .map_err(|e| from_pg(&e))
}

/// The first row of a query, mapped, if there is one.
pub(super) fn opt<T>(
    tx: &mut Tx<'_>,
    sql: &str,
    params: &Params<'_>,
    map: impl FnOnce(&Row) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    let statement = tx.statement(sql)?;
    tx.inner
        .query_opt(&statement, params)
        .map_err(|e| from_pg(&e))?
        .as_ref()
        .map(map)
        .transpose()
}

/// Every row of a query, mapped.
pub(super) fn all<T>(
    tx: &mut Tx<'_>,
    sql: &str,
    params: &Params<'_>,
    map: impl Fn(&Row) -> Result<T, StorageError>,
) -> Result<Vec<T>, StorageError> {
    rows(tx, sql, params)?.iter().map(map).collect()
}

/// Column `index` of `row`.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StorageError> {
    row.try_get(index).map_err(|e| from_pg(&e))
}

/// A stored value this binary cannot read.
pub(super) fn bad(what: &'static str) -> StorageError {
    StorageError::Postgres(format!("stored value cannot be read: {what}"))
}

pub(super) fn get_hash(row: &Row, index: usize) -> Result<[u8; 32], StorageError> {
    get::<Vec<u8>>(row, index)?
        .try_into()
        .map_err(|_| bad("hash length"))
}

pub(super) fn get_role(row: &Row, index: usize) -> Result<Role, StorageError> {
    Role::parse(&get::<String>(row, index)?).ok_or_else(|| bad("unknown role"))
}

/// A non-negative count or version column.
pub(super) fn get_u64(row: &Row, index: usize) -> Result<u64, StorageError> {
    u64::try_from(get::<i64>(row, index)?).map_err(|_| bad("negative count"))
}

/// A `u64` as the BIGINT it is stored as.
pub(super) fn big(value: u64) -> Result<i64, StorageError> {
    i64::try_from(value).map_err(|_| StorageError::Conflict("number too large to store"))
}

fn get_scopes(row: &Row, index: usize) -> Result<Vec<Permission>, StorageError> {
    get::<String>(row, index)?
        .split_whitespace()
        .map(|p| Permission::parse(p).ok_or_else(|| bad("unknown permission")))
        .collect()
}

fn scopes_text(scopes: &[Permission]) -> String {
    scopes
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) const MEMBER_COLS: &str = "m.id, m.org_id, m.name, m.role, m.created_at, m.user_id";
pub(super) fn member_row(row: &Row, at: usize) -> Result<MemberRecord, StorageError> {
    Ok(MemberRecord {
        id: get(row, at)?,
        org_id: get(row, at + 1)?,
        name: get(row, at + 2)?,
        role: get_role(row, at + 3)?,
        created_at: get(row, at + 4)?,
        user_id: get(row, at + 5)?,
    })
}

pub(super) fn org_row(row: &Row, at: usize) -> Result<OrgRecord, StorageError> {
    Ok(OrgRecord {
        id: get(row, at)?,
        name: get(row, at + 1)?,
        created_at: get(row, at + 2)?,
    })
}

const KEY_COLS: &str = "k.id, k.org_id, k.member_id, k.name, k.prefix, k.hash, k.scopes, \
     k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.replaced_by";
fn key_row(row: &Row) -> Result<ApiKeyRecord, StorageError> {
    Ok(ApiKeyRecord {
        id: get(row, 0)?,
        org_id: get(row, 1)?,
        member_id: get(row, 2)?,
        name: get(row, 3)?,
        prefix: get(row, 4)?,
        hash: get_hash(row, 5)?,
        scopes: get_scopes(row, 6)?,
        created_at: get(row, 7)?,
        expires_at: get(row, 8)?,
        revoked_at: get(row, 9)?,
        last_used_at: get(row, 10)?,
        replaced_by: get(row, 11)?,
    })
}

const DEVICE_COLS: &str =
    "d.id, d.org_id, d.device_group, d.identity_key, d.sealed_kwk, d.enrolled_at, d.revoked_at";
fn device_row(row: &Row, at: usize) -> Result<DeviceRecord, StorageError> {
    Ok(DeviceRecord {
        id: get(row, at)?,
        org_id: get(row, at + 1)?,
        device_group: get(row, at + 2)?,
        identity_key: get(row, at + 3)?,
        sealed_kwk: get(row, at + 4)?,
        enrolled_at: get(row, at + 5)?,
        revoked_at: get(row, at + 6)?,
    })
}

fn audit_row(row: &Row) -> Result<AuditEntry, StorageError> {
    Ok(AuditEntry {
        seq: get(row, 0)?,
        at: get(row, 1)?,
        org_id: get(row, 2)?,
        actor: get(row, 3)?,
        action: get(row, 4)?,
        target: get(row, 5)?,
        outcome: get(row, 6)?,
        request_id: get(row, 7)?,
        prev_hash: get(row, 8)?,
        hash: get(row, 9)?,
    })
}

/// Appends `event` to its org's chain, in the event's org scope. The org lock makes
/// concurrent appends from several instances take turns, so each org keeps one chain.
pub(super) fn append_audit_tx(
    tx: &mut Tx<'_>,
    key: &AuditKey,
    event: &AuditEvent,
) -> Result<(), StorageError> {
    let event = &safe_event(event);
    tx.execute(
        "SELECT set_config('edgekeep.org_id', $1, true)",
        &[&event.org_id],
    )
    .map_err(|e| from_pg(&e))?;
    lock_org(tx, &event.org_id)?;
    let head = opt(
        tx,
        "SELECT seq, hash FROM audit_heads WHERE org_id = $1",
        &[&event.org_id],
        |row| Ok((get::<i64>(row, 0)?, get::<String>(row, 1)?)),
    )?;
    let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let seq = prev_seq + 1;
    let hash = entry_hash(&prev_hash, seq, event);
    exec(
        tx,
        "INSERT INTO audit_log (org_id, seq, at, actor, action, target, outcome, request_id, \
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &event.org_id,
            &seq,
            &event.at,
            &event.actor,
            &event.action,
            &event.target,
            &event.outcome,
            &event.request_id,
            &prev_hash,
            &hash,
        ],
    )?;
    let mac = key.head_mac(&event.org_id, seq, &hash);
    exec(
        tx,
        "INSERT INTO audit_heads (org_id, seq, hash, mac) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         mac = excluded.mac",
        &[&event.org_id, &seq, &hash, &mac],
    )?;
    Ok(())
}

pub(super) fn append_all(
    tx: &mut Tx<'_>,
    key: &AuditKey,
    events: &[AuditEvent],
) -> Result<(), StorageError> {
    events
        .iter()
        .try_for_each(|event| append_audit_tx(tx, key, event))
}

fn insert_key_tx(tx: &mut Tx<'_>, key: &ApiKeyRecord) -> Result<(), StorageError> {
    exec(
        tx,
        "INSERT INTO api_keys (id, org_id, member_id, name, prefix, hash, scopes, created_at, \
         expires_at, revoked_at, last_used_at, replaced_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &key.id,
            &key.org_id,
            &key.member_id,
            &key.name,
            &key.prefix,
            &key.hash.as_slice(),
            &scopes_text(&key.scopes),
            &key.created_at,
            &key.expires_at,
            &key.revoked_at,
            &key.last_used_at,
            &key.replaced_by,
        ],
    )?;
    issue_credential(tx, Credential::ApiKey, &key.hash, &key.org_id)
}

pub(super) fn insert_member_tx(tx: &mut Tx<'_>, member: &MemberRecord) -> Result<(), StorageError> {
    exec(
        tx,
        "INSERT INTO members (id, org_id, name, role, created_at, user_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &member.id,
            &member.org_id,
            &member.name,
            &member.role.as_str(),
            &member.created_at,
            &member.user_id,
        ],
    )
    .map(drop)
}

fn insert_device_token_tx(tx: &mut Tx<'_>, token: &DeviceTokenRecord) -> Result<(), StorageError> {
    let kind = match token.kind {
        DeviceTokenKind::Access => "access",
        DeviceTokenKind::Refresh => "refresh",
    };
    exec(
        tx,
        "INSERT INTO device_tokens (hash, kind, device_id, org_id, family, issued_at, expires_at, \
         used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &token.hash.as_slice(),
            &kind,
            &token.device_id,
            &token.org_id,
            &token.family,
            &token.issued_at,
            &token.expires_at,
            &token.used_at,
            &token.revoked_at,
        ],
    )?;
    issue_credential(tx, Credential::DeviceToken, &token.hash, &token.org_id)
}

pub(super) fn owner_count(tx: &mut Tx<'_>, org_id: &str) -> Result<i64, StorageError> {
    get(
        &one(
            tx,
            "SELECT COUNT(*) FROM members WHERE org_id = $1 AND role = 'owner' \
             AND removed_at IS NULL",
            &[&org_id],
        )?,
        0,
    )
}

/// Revokes what a removed membership held: its API keys and sessions.
pub(super) fn revoke_member_credentials(
    tx: &mut Tx<'_>,
    org_id: &str,
    member_id: &str,
    at: i64,
) -> Result<(), StorageError> {
    for table in ["api_keys", "sessions"] {
        exec(
            tx,
            &format!(
                "UPDATE {table} SET revoked_at = $3 WHERE org_id = $1 AND member_id = $2 \
                 AND revoked_at IS NULL"
            ),
            &[&org_id, &member_id, &at],
        )?;
    }
    Ok(())
}

impl Storage for PgStorage {
    fn create_org(
        &self,
        org: &OrgRecord,
        owner: &MemberRecord,
        key: &ApiKeyRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&org.id), |tx| {
            exec(
                tx,
                "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
                &[&org.id, &org.name, &org.created_at],
            )?;
            insert_member_tx(tx, owner)?;
            insert_key_tx(tx, key)?;
            append_all(tx, &self.audit_key, audit)
        })
    }

    fn org(&self, org_id: &str) -> Result<Option<OrgRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                "SELECT id, name, created_at FROM orgs WHERE id = $1",
                &[&org_id],
                |row| org_row(row, 0),
            )
        })
    }

    fn org_ids(&self) -> Result<Vec<String>, StorageError> {
        self.run(Scope::Global, |tx| self.all_orgs(tx))
    }

    fn members(&self, org_id: &str) -> Result<Vec<MemberRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {MEMBER_COLS} FROM members m WHERE m.org_id = $1 \
                     AND m.removed_at IS NULL ORDER BY m.created_at, m.id"
                ),
                &[&org_id],
                |row| member_row(row, 0),
            )
        })
    }

    fn member(&self, org_id: &str, member_id: &str) -> Result<Option<MemberRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                &format!(
                    "SELECT {MEMBER_COLS} FROM members m WHERE m.org_id = $1 AND m.id = $2 \
                     AND m.removed_at IS NULL"
                ),
                &[&org_id, &member_id],
                |row| member_row(row, 0),
            )
        })
    }

    fn insert_member(&self, member: &MemberRecord, audit: &AuditEvent) -> Result<(), StorageError> {
        self.run(Scope::Org(&member.org_id), |tx| {
            insert_member_tx(tx, member)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn set_member_role(
        &self,
        org_id: &str,
        member_id: &str,
        role: Role,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            lock_org(tx, org_id)?;
            let provisioned: bool = get(
                &one(
                    tx,
                    "SELECT EXISTS (SELECT 1 FROM scim_users WHERE org_id = $1 \
                     AND member_id = $2)",
                    &[&org_id, &member_id],
                )?,
                0,
            )?;
            if provisioned && super::scim::directory_assigns_roles_tx(tx, org_id)? {
                return Err(StorageError::Conflict(
                    "this member's role comes from the directory's groups (SCIM); change it there",
                ));
            }
            let changed = exec(
                tx,
                "UPDATE members SET role = $3 WHERE org_id = $1 AND id = $2 \
                 AND removed_at IS NULL",
                &[&org_id, &member_id, &role.as_str()],
            )?;
            if changed == 0 {
                return Err(StorageError::Conflict("member not found"));
            }
            if owner_count(tx, org_id)? == 0 {
                return Err(StorageError::Conflict("an org keeps at least one owner"));
            }
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn remove_member(
        &self,
        org_id: &str,
        member_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            lock_org(tx, org_id)?;
            let changed = exec(
                tx,
                "UPDATE members SET removed_at = $3 WHERE org_id = $1 AND id = $2 \
                 AND removed_at IS NULL",
                &[&org_id, &member_id, &at],
            )?;
            if changed == 0 {
                return Err(StorageError::Conflict("member not found"));
            }
            if owner_count(tx, org_id)? == 0 {
                return Err(StorageError::Conflict("an org keeps at least one owner"));
            }
            revoke_member_credentials(tx, org_id, member_id, at)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn insert_api_key(&self, key: &ApiKeyRecord, audit: &AuditEvent) -> Result<(), StorageError> {
        self.run(Scope::Org(&key.org_id), |tx| {
            insert_key_tx(tx, key)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn api_keys(&self, org_id: &str) -> Result<Vec<ApiKeyRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys k WHERE k.org_id = $1 \
                     ORDER BY k.created_at, k.id"
                ),
                &[&org_id],
                key_row,
            )
        })
    }

    fn api_key(&self, org_id: &str, key_id: &str) -> Result<Option<ApiKeyRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                &format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.org_id = $1 AND k.id = $2"),
                &[&org_id, &key_id],
                key_row,
            )
        })
    }

    fn api_key_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(ApiKeyRecord, MemberRecord)>, StorageError> {
        self.by_credential(Credential::ApiKey, hash, |tx| {
            opt(
                tx,
                &format!(
                    "SELECT {KEY_COLS}, {MEMBER_COLS} FROM api_keys k \
                     JOIN members m ON m.id = k.member_id AND m.org_id = k.org_id \
                     WHERE k.hash = $1 AND m.removed_at IS NULL"
                ),
                &[&hash.as_slice()],
                |row| Ok((key_row(row)?, member_row(row, 12)?)),
            )
        })
    }

    fn rotate_api_key(
        &self,
        org_id: &str,
        old_id: &str,
        old_expires_at: i64,
        new: &ApiKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            insert_key_tx(tx, new)?;
            let changed = exec(
                tx,
                "UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, $3), $3), \
                 replaced_by = $4 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL \
                 AND replaced_by IS NULL",
                &[&org_id, &old_id, &old_expires_at, &new.id],
            )?;
            if changed == 0 {
                return Err(StorageError::Conflict("key was revoked or already rotated"));
            }
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn revoke_api_key(
        &self,
        org_id: &str,
        key_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.audited_change(
            Scope::Org(org_id),
            "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND id = $2 \
             AND revoked_at IS NULL",
            &[&org_id, &key_id, &at],
            audit,
        )
    }

    fn touch_api_key(&self, org_id: &str, key_id: &str, at: i64) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            exec(
                tx,
                "UPDATE api_keys SET last_used_at = $3 WHERE org_id = $1 AND id = $2",
                &[&org_id, &key_id, &at],
            )
            .map(drop)
        })
    }

    fn insert_bootstrap_token(
        &self,
        token: &BootstrapRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&token.org_id), |tx| {
            exec(
                tx,
                "INSERT INTO bootstrap_tokens (hash, org_id, device_group, created_by, \
                 created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &token.hash.as_slice(),
                    &token.org_id,
                    &token.device_group,
                    &token.created_by,
                    &token.created_at,
                    &token.expires_at,
                    &token.used_at,
                ],
            )?;
            issue_credential(tx, Credential::Bootstrap, &token.hash, &token.org_id)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn bootstrap_token(&self, hash: &[u8; 32]) -> Result<Option<BootstrapRecord>, StorageError> {
        self.by_credential(Credential::Bootstrap, hash, |tx| {
            opt(
                tx,
                "SELECT hash, org_id, device_group, created_by, created_at, expires_at, used_at \
                 FROM bootstrap_tokens WHERE hash = $1",
                &[&hash.as_slice()],
                |row| {
                    Ok(BootstrapRecord {
                        hash: get_hash(row, 0)?,
                        org_id: get(row, 1)?,
                        device_group: get(row, 2)?,
                        created_by: get(row, 3)?,
                        created_at: get(row, 4)?,
                        expires_at: get(row, 5)?,
                        used_at: get(row, 6)?,
                    })
                },
            )
        })
    }

    fn enroll_device(
        &self,
        bootstrap_hash: &[u8; 32],
        device: &DeviceRecord,
        tokens: &[DeviceTokenRecord],
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&device.org_id), |tx| {
            let consumed = exec(
                tx,
                "UPDATE bootstrap_tokens SET used_at = $2, device_id = $3 WHERE hash = $1 \
                 AND used_at IS NULL AND expires_at > $2 AND org_id = $4",
                &[
                    &bootstrap_hash.as_slice(),
                    &device.enrolled_at,
                    &device.id,
                    &device.org_id,
                ],
            )?;
            if consumed == 0 {
                return Err(StorageError::Conflict("bootstrap token cannot be consumed"));
            }
            exec(
                tx,
                "INSERT INTO devices (id, org_id, device_group, identity_key, sealed_kwk, \
                 enrolled_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &device.id,
                    &device.org_id,
                    &device.device_group,
                    &device.identity_key,
                    &device.sealed_kwk,
                    &device.enrolled_at,
                    &device.revoked_at,
                ],
            )?;
            tokens
                .iter()
                .try_for_each(|token| insert_device_token_tx(tx, token))?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn device_token(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(DeviceTokenRecord, DeviceRecord)>, StorageError> {
        self.by_credential(Credential::DeviceToken, hash, |tx| {
            opt(
                tx,
                &format!(
                    "SELECT t.hash, t.kind, t.device_id, t.org_id, t.family, t.issued_at, \
                     t.expires_at, t.used_at, t.revoked_at, {DEVICE_COLS} FROM device_tokens t \
                     JOIN devices d ON d.id = t.device_id AND d.org_id = t.org_id \
                     WHERE t.hash = $1"
                ),
                &[&hash.as_slice()],
                |row| {
                    let kind = match get::<String>(row, 1)?.as_str() {
                        "access" => DeviceTokenKind::Access,
                        "refresh" => DeviceTokenKind::Refresh,
                        _ => return Err(bad("unknown token kind")),
                    };
                    let token = DeviceTokenRecord {
                        hash: get_hash(row, 0)?,
                        kind,
                        device_id: get(row, 2)?,
                        org_id: get(row, 3)?,
                        family: get(row, 4)?,
                        issued_at: get(row, 5)?,
                        expires_at: get(row, 6)?,
                        used_at: get(row, 7)?,
                        revoked_at: get(row, 8)?,
                    };
                    Ok((token, device_row(row, 9)?))
                },
            )
        })
    }

    fn rotate_refresh_token(
        &self,
        old_hash: &[u8; 32],
        now: i64,
        new_tokens: &[DeviceTokenRecord],
        audit: &AuditEvent,
        reuse_audit: &AuditEvent,
    ) -> Result<RefreshOutcome, StorageError> {
        self.run(Scope::Global, |tx| {
            let org = credential_org(tx, Credential::DeviceToken, old_hash)?
                .unwrap_or_else(|| reuse_audit.org_id.clone());
            enter(tx, Scope::Org(&org))?;
            // The org's lock first (every outcome appends to its audit chain anyway): racing
            // uses of one token take turns instead of deadlocking over the family's rows.
            lock_org(tx, &org)?;
            let consumed = exec(
                tx,
                "UPDATE device_tokens SET used_at = $2 WHERE hash = $1 AND kind = 'refresh' \
                 AND used_at IS NULL AND revoked_at IS NULL",
                &[&old_hash.as_slice(), &now],
            )?;
            if consumed == 1 {
                new_tokens
                    .iter()
                    .try_for_each(|token| insert_device_token_tx(tx, token))?;
                append_audit_tx(tx, &self.audit_key, audit)?;
                return Ok(RefreshOutcome::Rotated);
            }
            exec(
                tx,
                "UPDATE device_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family = \
                 (SELECT family FROM device_tokens WHERE hash = $1)",
                &[&old_hash.as_slice(), &now],
            )?;
            append_audit_tx(tx, &self.audit_key, reuse_audit)?;
            Ok(RefreshOutcome::Reused)
        })
    }

    fn devices(&self, org_id: &str) -> Result<Vec<DeviceRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {DEVICE_COLS} FROM devices d WHERE d.org_id = $1 \
                     ORDER BY d.enrolled_at, d.id"
                ),
                &[&org_id],
                |row| device_row(row, 0),
            )
        })
    }

    fn device(&self, org_id: &str, device_id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                &format!("SELECT {DEVICE_COLS} FROM devices d WHERE d.org_id = $1 AND d.id = $2"),
                &[&org_id, &device_id],
                |row| device_row(row, 0),
            )
        })
    }

    fn revoke_device(
        &self,
        org_id: &str,
        device_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.audited_change(
            Scope::Org(org_id),
            "UPDATE devices SET revoked_at = $3 WHERE org_id = $1 AND id = $2 \
             AND revoked_at IS NULL",
            &[&org_id, &device_id, &at],
            audit,
        )
    }

    fn revoke_device_group(
        &self,
        org_id: &str,
        group: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<u64, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            let changed = exec(
                tx,
                "UPDATE devices SET revoked_at = $3 WHERE org_id = $1 AND device_group = $2 \
                 AND revoked_at IS NULL",
                &[&org_id, &group, &at],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(changed)
        })
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StorageError> {
        self.run(Scope::Global, |tx| append_all(tx, &self.audit_key, events))
    }

    fn audit_entries(
        &self,
        org_id: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                "SELECT seq, at, org_id, actor, action, target, outcome, request_id, prev_hash, \
                 hash FROM audit_log WHERE org_id = $1 AND at >= $2 AND at < $3 ORDER BY seq",
                &[&org_id, &from.unwrap_or(i64::MIN), &to.unwrap_or(i64::MAX)],
                audit_row,
            )
        })
    }

    fn audit_head(&self, org_id: &str) -> Result<Option<AuditHead>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                "SELECT seq, hash, mac FROM audit_heads WHERE org_id = $1",
                &[&org_id],
                |row| {
                    Ok(AuditHead {
                        seq: get(row, 0)?,
                        hash: get(row, 1)?,
                        mac: get(row, 2)?,
                    })
                },
            )
        })
    }

    fn schema_version(&self) -> Result<i64, StorageError> {
        self.run(Scope::Global, |tx| schema::schema_version(&mut **tx))
    }
}
