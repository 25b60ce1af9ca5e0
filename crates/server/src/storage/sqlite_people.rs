//! [`PeopleStorage`] on SQLite.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::people::{
    Acceptance, CeremonyRecord, InvitationRecord, PasskeyRecord, PeopleStorage, SessionRecord,
    UserRecord,
};
use super::sqlite::{
    MEMBER_COLS, append_audit_tx, get_hash, get_role, insert_member_tx, member_row,
};
use super::{AuditEvent, MemberRecord, OrgRecord, SqliteStorage, StorageError};

const USER_COLS: &str = "u.id, u.handle, u.email, u.display_name, u.created_at, u.deactivated_at";
fn user_row(row: &Row<'_>, at: usize) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(at)?,
        handle: row.get(at + 1)?,
        email: row.get(at + 2)?,
        display_name: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
        deactivated_at: row.get(at + 5)?,
    })
}

const INVITATION_COLS: &str = "id, org_id, token_hash, email, role, member_id, created_by, \
     created_at, expires_at, accepted_at, revoked_at";
fn invitation_row(row: &Row<'_>) -> rusqlite::Result<InvitationRecord> {
    Ok(InvitationRecord {
        id: row.get(0)?,
        org_id: row.get(1)?,
        token_hash: get_hash(row, 2)?,
        email: row.get(3)?,
        role: get_role(row, 4)?,
        member_id: row.get(5)?,
        created_by: row.get(6)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        accepted_at: row.get(9)?,
        revoked_at: row.get(10)?,
    })
}

const PASSKEY_COLS: &str = "id, user_id, name, passkey, created_at, last_used_at";
fn passkey_row(row: &Row<'_>) -> rusqlite::Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        passkey_json: row.get(3)?,
        created_at: row.get(4)?,
        last_used_at: row.get(5)?,
    })
}

const SESSION_COLS: &str = "s.id, s.hash, s.user_id, s.org_id, s.member_id, s.method, \
     s.created_at, s.last_seen_at, s.expires_at, s.stepped_up_at, s.revoked_at";
fn session_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        hash: get_hash(row, 1)?,
        user_id: row.get(2)?,
        org_id: row.get(3)?,
        member_id: row.get(4)?,
        method: row.get(5)?,
        created_at: row.get(6)?,
        last_seen_at: row.get(7)?,
        expires_at: row.get(8)?,
        stepped_up_at: row.get(9)?,
        revoked_at: row.get(10)?,
    })
}

fn insert_user_tx(tx: &Transaction<'_>, user: &UserRecord) -> Result<(), StorageError> {
    let inserted = tx.execute(
        "INSERT INTO users (id, handle, email, display_name, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![
            user.id,
            user.handle,
            user.email,
            user.display_name,
            user.created_at
        ],
    )?;
    if inserted == 0 {
        return Err(StorageError::Conflict(
            "a person with this email already exists",
        ));
    }
    Ok(())
}

fn insert_passkey_tx(tx: &Transaction<'_>, passkey: &PasskeyRecord) -> Result<(), StorageError> {
    let inserted = tx.execute(
        "INSERT INTO passkeys (id, user_id, name, passkey, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT DO NOTHING",
        params![
            passkey.id,
            passkey.user_id,
            passkey.name,
            passkey.passkey_json,
            passkey.created_at
        ],
    )?;
    if inserted == 0 {
        return Err(StorageError::Conflict("this passkey is already registered"));
    }
    Ok(())
}

fn insert_session_tx(tx: &Transaction<'_>, session: &SessionRecord) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO sessions (id, hash, user_id, org_id, member_id, method, created_at, \
         last_seen_at, expires_at, stepped_up_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            session.id,
            session.hash.as_slice(),
            session.user_id,
            session.org_id,
            session.member_id,
            session.method,
            session.created_at,
            session.last_seen_at,
            session.expires_at,
            session.stepped_up_at
        ],
    )?;
    Ok(())
}

impl PeopleStorage for SqliteStorage {
    fn insert_invitation(
        &self,
        invitation: &InvitationRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO invitations (id, org_id, token_hash, email, role, member_id, \
                 created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    invitation.id,
                    invitation.org_id,
                    invitation.token_hash.as_slice(),
                    invitation.email,
                    invitation.role.as_str(),
                    invitation.member_id,
                    invitation.created_by,
                    invitation.created_at,
                    invitation.expires_at
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn invitations(&self, org_id: &str) -> Result<Vec<InvitationRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {INVITATION_COLS} FROM invitations WHERE org_id = ?1 \
             ORDER BY created_at DESC, id"
        ))?;
        let rows = stmt.query_map([org_id], invitation_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn invitation_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<InvitationRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = ?1"),
                [token_hash.as_slice()],
                invitation_row,
            )
            .optional()?)
    }

    fn revoke_invitation(
        &self,
        org_id: &str,
        invitation_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE invitations SET revoked_at = ?3 WHERE org_id = ?1 AND id = ?2 \
                 AND accepted_at IS NULL AND revoked_at IS NULL",
                params![org_id, invitation_id, at],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }

    fn accept_invitation(&self, a: &Acceptance<'_>) -> Result<MemberRecord, StorageError> {
        self.write(|tx| {
            let invitation = tx
                .query_row(
                    &format!("SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = ?1"),
                    [a.token_hash.as_slice()],
                    invitation_row,
                )
                .optional()?
                .filter(|inv| inv.is_open(a.at))
                .ok_or(StorageError::Conflict("invitation is not open"))?;
            let consumed = tx.execute(
                "UPDATE invitations SET accepted_at = ?2, accepted_by = ?3 \
                 WHERE id = ?1 AND accepted_at IS NULL AND revoked_at IS NULL",
                params![invitation.id, a.at, a.user.id],
            )?;
            if consumed != 1 {
                return Err(StorageError::Conflict("invitation is not open"));
            }
            if a.new_user {
                insert_user_tx(tx, a.user)?;
            }
            if let Some(passkey) = a.passkey {
                insert_passkey_tx(tx, passkey)?;
            }
            let already: Option<String> = tx
                .query_row(
                    "SELECT id FROM members WHERE org_id = ?1 AND user_id = ?2 \
                     AND removed_at IS NULL",
                    params![invitation.org_id, a.user.id],
                    |row| row.get(0),
                )
                .optional()?;
            if already.is_some() {
                return Err(StorageError::Conflict("already a member of this org"));
            }
            let member_id = match &invitation.member_id {
                Some(existing) => {
                    let linked = tx.execute(
                        "UPDATE members SET user_id = ?3, name = ?4 WHERE org_id = ?1 AND id = ?2 \
                         AND user_id IS NULL AND removed_at IS NULL",
                        params![invitation.org_id, existing, a.user.id, a.user.display_name],
                    )?;
                    if linked != 1 {
                        return Err(StorageError::Conflict("the invited member is gone"));
                    }
                    existing.clone()
                }
                None => {
                    let mut member = a.new_member.clone();
                    member.org_id.clone_from(&invitation.org_id);
                    member.role = invitation.role;
                    member.user_id = Some(a.user.id.clone());
                    insert_member_tx(tx, &member)?;
                    member.id
                }
            };
            let mut session = a.session.clone();
            session.org_id.clone_from(&invitation.org_id);
            session.member_id.clone_from(&member_id);
            insert_session_tx(tx, &session)?;
            for event in a.audit {
                let mut event = event.clone();
                event.org_id.clone_from(&invitation.org_id);
                append_audit_tx(tx, &self.audit_key, &event)?;
            }
            Ok(tx.query_row(
                &format!("SELECT {MEMBER_COLS} FROM members m WHERE m.id = ?1"),
                [&member_id],
                |row| member_row(row, 0),
            )?)
        })
    }

    fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?1"),
                [user_id],
                |row| user_row(row, 0),
            )
            .optional()?)
    }

    fn user_by_handle(&self, handle: &str) -> Result<Option<UserRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {USER_COLS} FROM users u WHERE u.handle = ?1"),
                [handle],
                |row| user_row(row, 0),
            )
            .optional()?)
    }

    fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {USER_COLS} FROM users u WHERE u.email = ?1"),
                [email],
                |row| user_row(row, 0),
            )
            .optional()?)
    }

    fn memberships(&self, user_id: &str) -> Result<Vec<(MemberRecord, OrgRecord)>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MEMBER_COLS}, o.id, o.name, o.created_at FROM members m \
             JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = ?1 AND m.removed_at IS NULL ORDER BY m.created_at, m.id"
        ))?;
        let rows = stmt.query_map([user_id], |row| {
            Ok((
                member_row(row, 0)?,
                OrgRecord {
                    id: row.get(6)?,
                    name: row.get(7)?,
                    created_at: row.get(8)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PASSKEY_COLS} FROM passkeys WHERE user_id = ?1 ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([user_id], passkey_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE id = ?1"),
                [credential_id],
                passkey_row,
            )
            .optional()?)
    }

    fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            insert_passkey_tx(tx, passkey)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn record_passkey_use(
        &self,
        credential_id: &str,
        updated_json: Option<&str>,
        at: i64,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE passkeys SET last_used_at = ?2, passkey = COALESCE(?3, passkey) \
                 WHERE id = ?1",
                params![credential_id, at, updated_json],
            )?;
            Ok(())
        })
    }

    fn rename_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE passkeys SET name = ?3 WHERE user_id = ?1 AND id = ?2",
                params![user_id, credential_id, name],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }

    fn remove_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM passkeys WHERE user_id = ?1",
                [user_id],
                |row| row.get(0),
            )?;
            let changed = tx.execute(
                "DELETE FROM passkeys WHERE user_id = ?1 AND id = ?2",
                params![user_id, credential_id],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            if count <= 1 {
                return Err(StorageError::Conflict(
                    "a person keeps at least one passkey",
                ));
            }
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }

    fn insert_session(
        &self,
        session: &SessionRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            insert_session_tx(tx, session)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn session_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, MemberRecord, UserRecord)>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SESSION_COLS}, {MEMBER_COLS}, {USER_COLS} FROM sessions s \
             JOIN members m ON m.id = s.member_id AND m.org_id = s.org_id \
             AND m.user_id = s.user_id AND m.removed_at IS NULL \
             JOIN users u ON u.id = s.user_id WHERE s.hash = ?1"
        ))?;
        Ok(stmt
            .query_row([hash.as_slice()], |row| {
                Ok((session_row(row)?, member_row(row, 11)?, user_row(row, 17)?))
            })
            .optional()?)
    }

    fn touch_session(&self, org_id: &str, session_id: &str, at: i64) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?3) WHERE org_id = ?1 \
                 AND id = ?2",
                params![org_id, session_id, at],
            )?;
            Ok(())
        })
    }

    fn step_up_session(
        &self,
        org_id: &str,
        session_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sessions SET stepped_up_at = ?3, last_seen_at = ?3 \
                 WHERE org_id = ?1 AND id = ?2 AND revoked_at IS NULL",
                params![org_id, session_id, at],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn sessions_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SESSION_COLS} FROM sessions s WHERE s.user_id = ?1 \
             AND s.revoked_at IS NULL AND s.expires_at > ?2 ORDER BY s.created_at DESC, s.id"
        ))?;
        let rows = stmt.query_map(params![user_id, now], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE sessions SET revoked_at = ?3 WHERE user_id = ?1 AND id = ?2 \
                 AND revoked_at IS NULL",
                params![user_id, session_id, at],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }

    fn revoke_user_sessions(
        &self,
        user_id: &str,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<usize, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
                params![user_id, at],
            )?;
            for event in audit {
                append_audit_tx(tx, &self.audit_key, event)?;
            }
            Ok(changed)
        })
    }

    fn insert_ceremony(&self, ceremony: &CeremonyRecord, now: i64) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute("DELETE FROM ceremonies WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "INSERT INTO ceremonies (hash, kind, subject, state, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    ceremony.hash.as_slice(),
                    ceremony.kind,
                    ceremony.subject,
                    ceremony.state,
                    ceremony.expires_at
                ],
            )?;
            Ok(())
        })
    }

    fn take_ceremony(
        &self,
        hash: &[u8; 32],
        kind: &str,
        now: i64,
    ) -> Result<Option<CeremonyRecord>, StorageError> {
        self.write(|tx| {
            let found = tx
                .query_row(
                    "SELECT hash, kind, subject, state, expires_at FROM ceremonies WHERE hash = ?1",
                    [hash.as_slice()],
                    |row| {
                        Ok(CeremonyRecord {
                            hash: get_hash(row, 0)?,
                            kind: row.get(1)?,
                            subject: row.get(2)?,
                            state: row.get(3)?,
                            expires_at: row.get(4)?,
                        })
                    },
                )
                .optional()?;
            if found.is_some() {
                tx.execute("DELETE FROM ceremonies WHERE hash = ?1", [hash.as_slice()])?;
            }
            Ok(found.filter(|c| c.kind == kind && c.expires_at > now))
        })
    }
}
