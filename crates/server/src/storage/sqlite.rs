//! [`Storage`] on embedded SQLite: WAL, one writer connection and a few read-only readers.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use edgekeep_protocol::api::{AuditEntry, Permission, Role};
use rusqlite::types::Type;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use super::{
    ApiKeyRecord, AuditEvent, AuditHead, BootstrapRecord, DeviceRecord, DeviceTokenKind,
    DeviceTokenRecord, MemberRecord, OrgRecord, RefreshOutcome, Storage, StorageError,
};
use crate::audit::{AuditKey, GENESIS_HASH, entry_hash};

/// SQLite-backed storage. Writes are serialized on one connection; reads use a small pool.
pub struct SqliteStorage {
    pub(super) audit_key: AuditKey,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

fn lock(mutex: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves the connection itself usable: SQLite rolls back
    // any open transaction when the `Transaction` guard drops.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`, applies migrations and opens
    /// `readers` read-only connections. `audit_key` authenticates audit chain heads. The file
    /// and its WAL are readable by the owner only.
    pub fn open(path: &Path, readers: usize, audit_key: AuditKey) -> Result<Self, StorageError> {
        let mut writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        writer.pragma_update(None, "secure_delete", "ON")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        super::migrations::migrate(&mut writer, &audit_key)?;
        restrict_to_owner(path)?;
        let readers = (0..readers.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Self {
            audit_key,
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    pub(super) fn read(&self) -> MutexGuard<'_, Connection> {
        for reader in &self.readers {
            if let Ok(guard) = reader.try_lock() {
                return guard;
            }
        }
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[index])
    }

    /// Runs `body` in one write transaction.
    ///
    /// The transaction is `IMMEDIATE`: it takes the WAL write lock when it begins, where SQLite
    /// waits (the busy timeout) for a reader that holds it for a moment while it checks the WAL
    /// header. A deferred transaction would take it at its first write, after its first read,
    /// where SQLite does not wait and answers `SQLITE_BUSY` at once (a rare `database is
    /// locked` under load, seen by the loadgen example with 32 clients).
    pub(super) fn write<T>(
        &self,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = body(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Makes the database and its `-wal` and `-shm` files readable and writable by the owner only.
pub fn restrict_to_owner(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mut paths = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            paths.push(name.into());
        }
        for file in paths.iter().filter(|p| p.exists()) {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StorageError::Io(e.to_string()))?;
        }
    }
    Ok(())
}

#[derive(Debug)]
struct BadValue(&'static str);

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BadValue {}

pub(super) fn bad(index: usize, what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(BadValue(what)))
}

pub(super) fn get_role(row: &Row<'_>, index: usize) -> rusqlite::Result<Role> {
    let text: String = row.get(index)?;
    Role::parse(&text).ok_or_else(|| bad(index, "unknown role"))
}

pub(super) fn get_hash(row: &Row<'_>, index: usize) -> rusqlite::Result<[u8; 32]> {
    let bytes: Vec<u8> = row.get(index)?;
    bytes.try_into().map_err(|_| bad(index, "hash length"))
}

fn get_scopes(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<Permission>> {
    let text: String = row.get(index)?;
    text.split_whitespace()
        .map(|p| Permission::parse(p).ok_or_else(|| bad(index, "unknown permission")))
        .collect()
}

fn scopes_text(scopes: &[Permission]) -> String {
    scopes
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

const ORG_COLS: &str = "id, name, created_at";
fn org_row(row: &Row<'_>) -> rusqlite::Result<OrgRecord> {
    Ok(OrgRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
    })
}

pub(super) const MEMBER_COLS: &str = "m.id, m.org_id, m.name, m.role, m.created_at, m.user_id";
pub(super) fn member_row(row: &Row<'_>, at: usize) -> rusqlite::Result<MemberRecord> {
    Ok(MemberRecord {
        id: row.get(at)?,
        org_id: row.get(at + 1)?,
        name: row.get(at + 2)?,
        role: get_role(row, at + 3)?,
        created_at: row.get(at + 4)?,
        user_id: row.get(at + 5)?,
    })
}

const KEY_COLS: &str = "k.id, k.org_id, k.member_id, k.name, k.prefix, k.hash, k.scopes, \
     k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.replaced_by";
fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        org_id: row.get(1)?,
        member_id: row.get(2)?,
        name: row.get(3)?,
        prefix: row.get(4)?,
        hash: get_hash(row, 5)?,
        scopes: get_scopes(row, 6)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        revoked_at: row.get(9)?,
        last_used_at: row.get(10)?,
        replaced_by: row.get(11)?,
    })
}

const DEVICE_COLS: &str =
    "d.id, d.org_id, d.device_group, d.identity_key, d.sealed_kwk, d.enrolled_at, d.revoked_at";
fn device_row(row: &Row<'_>, at: usize) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: row.get(at)?,
        org_id: row.get(at + 1)?,
        device_group: row.get(at + 2)?,
        identity_key: row.get(at + 3)?,
        sealed_kwk: row.get(at + 4)?,
        enrolled_at: row.get(at + 5)?,
        revoked_at: row.get(at + 6)?,
    })
}

const AUDIT_COLS: &str =
    "seq, at, org_id, actor, action, target, outcome, request_id, prev_hash, hash";
fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.get(0)?,
        at: row.get(1)?,
        org_id: row.get(2)?,
        actor: row.get(3)?,
        action: row.get(4)?,
        target: row.get(5)?,
        outcome: row.get(6)?,
        request_id: row.get(7)?,
        prev_hash: row.get(8)?,
        hash: row.get(9)?,
    })
}

pub(super) fn append_audit_tx(
    tx: &Transaction<'_>,
    key: &AuditKey,
    event: &AuditEvent,
) -> Result<(), StorageError> {
    let event = &crate::audit::safe_event(event);
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_heads WHERE org_id = ?1",
            [&event.org_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let seq = prev_seq + 1;
    let hash = entry_hash(&prev_hash, seq, event);
    tx.execute(
        "INSERT INTO audit_log (org_id, seq, at, actor, action, target, outcome, request_id, \
         prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            event.org_id,
            seq,
            event.at,
            event.actor,
            event.action,
            event.target,
            event.outcome,
            event.request_id,
            prev_hash,
            hash
        ],
    )?;
    let mac = key.head_mac(&event.org_id, seq, &hash);
    tx.execute(
        "INSERT INTO audit_heads (org_id, seq, hash, mac) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         mac = excluded.mac",
        params![event.org_id, seq, hash, mac],
    )?;
    Ok(())
}

fn insert_key_tx(tx: &Transaction<'_>, key: &ApiKeyRecord) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO api_keys (id, org_id, member_id, name, prefix, hash, scopes, created_at, \
         expires_at, revoked_at, last_used_at, replaced_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            key.id,
            key.org_id,
            key.member_id,
            key.name,
            key.prefix,
            key.hash.as_slice(),
            scopes_text(&key.scopes),
            key.created_at,
            key.expires_at,
            key.revoked_at,
            key.last_used_at,
            key.replaced_by
        ],
    )?;
    Ok(())
}

pub(super) fn insert_member_tx(
    tx: &Transaction<'_>,
    member: &MemberRecord,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO members (id, org_id, name, role, created_at, user_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            member.id,
            member.org_id,
            member.name,
            member.role.as_str(),
            member.created_at,
            member.user_id
        ],
    )?;
    Ok(())
}

fn insert_device_token_tx(
    tx: &Transaction<'_>,
    token: &DeviceTokenRecord,
) -> Result<(), StorageError> {
    let kind = match token.kind {
        DeviceTokenKind::Access => "access",
        DeviceTokenKind::Refresh => "refresh",
    };
    tx.execute(
        "INSERT INTO device_tokens (hash, kind, device_id, org_id, family, issued_at, expires_at, \
         used_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            token.hash.as_slice(),
            kind,
            token.device_id,
            token.org_id,
            token.family,
            token.issued_at,
            token.expires_at,
            token.used_at,
            token.revoked_at
        ],
    )?;
    Ok(())
}

pub(super) fn owner_count(tx: &Transaction<'_>, org_id: &str) -> Result<i64, StorageError> {
    Ok(tx.query_row(
        "SELECT COUNT(*) FROM members WHERE org_id = ?1 AND role = 'owner' AND removed_at IS NULL",
        [org_id],
        |row| row.get(0),
    )?)
}

impl Storage for SqliteStorage {
    fn create_org(
        &self,
        org: &OrgRecord,
        owner: &MemberRecord,
        key: &ApiKeyRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![org.id, org.name, org.created_at],
            )?;
            insert_member_tx(tx, owner)?;
            insert_key_tx(tx, key)?;
            audit
                .iter()
                .try_for_each(|event| append_audit_tx(tx, &self.audit_key, event))
        })
    }

    fn org(&self, org_id: &str) -> Result<Option<OrgRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {ORG_COLS} FROM orgs WHERE id = ?1"),
                [org_id],
                org_row,
            )
            .optional()?)
    }

    fn org_ids(&self) -> Result<Vec<String>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT id FROM orgs UNION SELECT org_id FROM audit_heads \
             UNION SELECT DISTINCT org_id FROM audit_log ORDER BY 1",
        )?;
        let ids = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    fn members(&self, org_id: &str) -> Result<Vec<MemberRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MEMBER_COLS} FROM members m WHERE m.org_id = ?1 AND m.removed_at IS NULL \
             ORDER BY m.created_at, m.id"
        ))?;
        let rows = stmt
            .query_map([org_id], |row| member_row(row, 0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn member(&self, org_id: &str, member_id: &str) -> Result<Option<MemberRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {MEMBER_COLS} FROM members m WHERE m.org_id = ?1 AND m.id = ?2 \
                     AND m.removed_at IS NULL"
                ),
                [org_id, member_id],
                |row| member_row(row, 0),
            )
            .optional()?)
    }

    fn insert_member(&self, member: &MemberRecord, audit: &AuditEvent) -> Result<(), StorageError> {
        self.write(|tx| {
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
        self.write(|tx| {
            let provisioned: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM scim_users WHERE org_id = ?1 AND member_id = ?2)",
                [org_id, member_id],
                |row| row.get(0),
            )?;
            if provisioned && super::sqlite_scim::directory_assigns_roles_tx(tx, org_id)? {
                return Err(StorageError::Conflict(
                    "this member's role comes from the directory's groups (SCIM); change it there",
                ));
            }
            let changed = tx.execute(
                "UPDATE members SET role = ?3 WHERE org_id = ?1 AND id = ?2 AND removed_at IS NULL",
                params![org_id, member_id, role.as_str()],
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
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE members SET removed_at = ?3 WHERE org_id = ?1 AND id = ?2 \
                 AND removed_at IS NULL",
                params![org_id, member_id, at],
            )?;
            if changed == 0 {
                return Err(StorageError::Conflict("member not found"));
            }
            if owner_count(tx, org_id)? == 0 {
                return Err(StorageError::Conflict("an org keeps at least one owner"));
            }
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?3 WHERE org_id = ?1 AND member_id = ?2 \
                 AND revoked_at IS NULL",
                params![org_id, member_id, at],
            )?;
            tx.execute(
                "UPDATE sessions SET revoked_at = ?3 WHERE org_id = ?1 AND member_id = ?2 \
                 AND revoked_at IS NULL",
                params![org_id, member_id, at],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn insert_api_key(&self, key: &ApiKeyRecord, audit: &AuditEvent) -> Result<(), StorageError> {
        self.write(|tx| {
            insert_key_tx(tx, key)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn api_keys(&self, org_id: &str) -> Result<Vec<ApiKeyRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLS} FROM api_keys k WHERE k.org_id = ?1 ORDER BY k.created_at, k.id"
        ))?;
        let rows = stmt
            .query_map([org_id], key_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn api_key(&self, org_id: &str, key_id: &str) -> Result<Option<ApiKeyRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.org_id = ?1 AND k.id = ?2"),
                [org_id, key_id],
                key_row,
            )
            .optional()?)
    }

    fn api_key_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(ApiKeyRecord, MemberRecord)>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLS}, {MEMBER_COLS} FROM api_keys k \
             JOIN members m ON m.id = k.member_id AND m.org_id = k.org_id \
             WHERE k.hash = ?1 AND m.removed_at IS NULL"
        ))?;
        Ok(stmt
            .query_row([hash.as_slice()], |row| {
                Ok((key_row(row)?, member_row(row, 12)?))
            })
            .optional()?)
    }

    fn rotate_api_key(
        &self,
        org_id: &str,
        old_id: &str,
        old_expires_at: i64,
        new: &ApiKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            insert_key_tx(tx, new)?;
            let changed = tx.execute(
                "UPDATE api_keys SET expires_at = MIN(COALESCE(expires_at, ?3), ?3), \
                 replaced_by = ?4 WHERE org_id = ?1 AND id = ?2 AND revoked_at IS NULL \
                 AND replaced_by IS NULL",
                params![org_id, old_id, old_expires_at, new.id],
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
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE api_keys SET revoked_at = ?3 WHERE org_id = ?1 AND id = ?2 \
                 AND revoked_at IS NULL",
                params![org_id, key_id, at],
            )?;
            if changed > 0 {
                append_audit_tx(tx, &self.audit_key, audit)?;
            }
            Ok(changed > 0)
        })
    }

    fn touch_api_key(&self, org_id: &str, key_id: &str, at: i64) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE api_keys SET last_used_at = ?3 WHERE org_id = ?1 AND id = ?2",
                params![org_id, key_id, at],
            )?;
            Ok(())
        })
    }

    fn insert_bootstrap_token(
        &self,
        token: &BootstrapRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO bootstrap_tokens (hash, org_id, device_group, created_by, created_at, \
                 expires_at, used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    token.hash.as_slice(),
                    token.org_id,
                    token.device_group,
                    token.created_by,
                    token.created_at,
                    token.expires_at,
                    token.used_at
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn bootstrap_token(&self, hash: &[u8; 32]) -> Result<Option<BootstrapRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT hash, org_id, device_group, created_by, created_at, expires_at, used_at \
             FROM bootstrap_tokens WHERE hash = ?1",
        )?;
        Ok(stmt
            .query_row([hash.as_slice()], |row| {
                Ok(BootstrapRecord {
                    hash: get_hash(row, 0)?,
                    org_id: row.get(1)?,
                    device_group: row.get(2)?,
                    created_by: row.get(3)?,
                    created_at: row.get(4)?,
                    expires_at: row.get(5)?,
                    used_at: row.get(6)?,
                })
            })
            .optional()?)
    }

    fn enroll_device(
        &self,
        bootstrap_hash: &[u8; 32],
        device: &DeviceRecord,
        tokens: &[DeviceTokenRecord],
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            let consumed = tx.execute(
                "UPDATE bootstrap_tokens SET used_at = ?2, device_id = ?3 WHERE hash = ?1 \
                 AND used_at IS NULL AND expires_at > ?2 AND org_id = ?4",
                params![
                    bootstrap_hash.as_slice(),
                    device.enrolled_at,
                    device.id,
                    device.org_id
                ],
            )?;
            if consumed == 0 {
                return Err(StorageError::Conflict("bootstrap token cannot be consumed"));
            }
            tx.execute(
                "INSERT INTO devices (id, org_id, device_group, identity_key, sealed_kwk, \
                 enrolled_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    device.id,
                    device.org_id,
                    device.device_group,
                    device.identity_key,
                    device.sealed_kwk,
                    device.enrolled_at,
                    device.revoked_at
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
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT t.hash, t.kind, t.device_id, t.org_id, t.family, t.issued_at, t.expires_at, \
             t.used_at, t.revoked_at, {DEVICE_COLS} FROM device_tokens t \
             JOIN devices d ON d.id = t.device_id AND d.org_id = t.org_id WHERE t.hash = ?1"
        ))?;
        Ok(stmt
            .query_row([hash.as_slice()], |row| {
                let kind: String = row.get(1)?;
                let kind = match kind.as_str() {
                    "access" => DeviceTokenKind::Access,
                    "refresh" => DeviceTokenKind::Refresh,
                    _ => return Err(bad(1, "unknown token kind")),
                };
                let token = DeviceTokenRecord {
                    hash: get_hash(row, 0)?,
                    kind,
                    device_id: row.get(2)?,
                    org_id: row.get(3)?,
                    family: row.get(4)?,
                    issued_at: row.get(5)?,
                    expires_at: row.get(6)?,
                    used_at: row.get(7)?,
                    revoked_at: row.get(8)?,
                };
                Ok((token, device_row(row, 9)?))
            })
            .optional()?)
    }

    fn rotate_refresh_token(
        &self,
        old_hash: &[u8; 32],
        now: i64,
        new_tokens: &[DeviceTokenRecord],
        audit: &AuditEvent,
        reuse_audit: &AuditEvent,
    ) -> Result<RefreshOutcome, StorageError> {
        self.write(|tx| {
            let consumed = tx.execute(
                "UPDATE device_tokens SET used_at = ?2 WHERE hash = ?1 AND kind = 'refresh' \
                 AND used_at IS NULL AND revoked_at IS NULL",
                params![old_hash.as_slice(), now],
            )?;
            if consumed == 1 {
                new_tokens
                    .iter()
                    .try_for_each(|token| insert_device_token_tx(tx, token))?;
                append_audit_tx(tx, &self.audit_key, audit)?;
                return Ok(RefreshOutcome::Rotated);
            }
            tx.execute(
                "UPDATE device_tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND family = \
                 (SELECT family FROM device_tokens WHERE hash = ?1)",
                params![old_hash.as_slice(), now],
            )?;
            append_audit_tx(tx, &self.audit_key, reuse_audit)?;
            Ok(RefreshOutcome::Reused)
        })
    }

    fn devices(&self, org_id: &str) -> Result<Vec<DeviceRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DEVICE_COLS} FROM devices d WHERE d.org_id = ?1 ORDER BY d.enrolled_at, d.id"
        ))?;
        let rows = stmt
            .query_map([org_id], |row| device_row(row, 0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn device(&self, org_id: &str, device_id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {DEVICE_COLS} FROM devices d WHERE d.org_id = ?1 AND d.id = ?2"),
                [org_id, device_id],
                |row| device_row(row, 0),
            )
            .optional()?)
    }

    fn revoke_device(
        &self,
        org_id: &str,
        device_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE devices SET revoked_at = ?3 WHERE org_id = ?1 AND id = ?2 \
                 AND revoked_at IS NULL",
                params![org_id, device_id, at],
            )?;
            if changed > 0 {
                append_audit_tx(tx, &self.audit_key, audit)?;
            }
            Ok(changed > 0)
        })
    }

    fn revoke_device_group(
        &self,
        org_id: &str,
        group: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<u64, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE devices SET revoked_at = ?3 WHERE org_id = ?1 AND device_group = ?2 \
                 AND revoked_at IS NULL",
                params![org_id, group, at],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(changed as u64)
        })
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StorageError> {
        self.write(|tx| {
            events
                .iter()
                .try_for_each(|event| append_audit_tx(tx, &self.audit_key, event))
        })
    }

    fn audit_entries(
        &self,
        org_id: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE org_id = ?1 AND at >= ?2 AND at < ?3 \
             ORDER BY seq"
        ))?;
        let rows = stmt
            .query_map(
                params![org_id, from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)],
                audit_row,
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn audit_head(&self, org_id: &str) -> Result<Option<AuditHead>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                "SELECT seq, hash, mac FROM audit_heads WHERE org_id = ?1",
                [org_id],
                |row| {
                    Ok(AuditHead {
                        seq: row.get(0)?,
                        hash: row.get(1)?,
                        mac: row.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn schema_version(&self) -> Result<i64, StorageError> {
        Ok(self
            .read()
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another holder of the write lock (in service, a reader checking the WAL header) makes a
    /// write that has already read wait for it, not fail with `database is locked`.
    #[test]
    fn a_write_that_reads_first_waits_for_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let storage = SqliteStorage::open(&path, 1, AuditKey::derive(&[1; 32])).unwrap();
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            holder.execute_batch("COMMIT").unwrap();
        });
        let written = storage.write(|tx| {
            let tables: i64 =
                tx.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))?;
            tx.execute_batch("CREATE TABLE probe(x); INSERT INTO probe VALUES (1)")?;
            Ok(tables)
        });
        release.join().unwrap();
        assert!(written.is_ok_and(|tables| tables > 0));
    }
}
