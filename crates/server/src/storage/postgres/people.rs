//! [`PeopleStorage`] on PostgreSQL. People and passkeys exist across orgs (no policy); a
//! person's memberships and sessions are read in their person scope.

use r2d2_postgres::postgres::Row;

use super::store::{
    Credential, MEMBER_COLS, PgStorage, Scope, Tx, all, append_all, append_audit_tx, exec, get,
    get_hash, get_role, insert_member_tx, issue_credential, lock_org, member_row, one, opt,
    org_row,
};
use crate::storage::people::{
    Acceptance, CeremonyRecord, InvitationRecord, PasskeyRecord, PeopleStorage, SessionRecord,
    UserRecord,
};
use crate::storage::{AuditEvent, MemberRecord, OrgRecord, StorageError};

const USER_COLS: &str = "u.id, u.handle, u.email, u.display_name, u.created_at, u.deactivated_at";
fn user_row(row: &Row, at: usize) -> Result<UserRecord, StorageError> {
    Ok(UserRecord {
        id: get(row, at)?,
        handle: get(row, at + 1)?,
        email: get(row, at + 2)?,
        display_name: get(row, at + 3)?,
        created_at: get(row, at + 4)?,
        deactivated_at: get(row, at + 5)?,
    })
}

const INVITATION_COLS: &str = "id, org_id, token_hash, email, role, member_id, created_by, \
     created_at, expires_at, accepted_at, revoked_at";
fn invitation_row(row: &Row) -> Result<InvitationRecord, StorageError> {
    Ok(InvitationRecord {
        id: get(row, 0)?,
        org_id: get(row, 1)?,
        token_hash: get_hash(row, 2)?,
        email: get(row, 3)?,
        role: get_role(row, 4)?,
        member_id: get(row, 5)?,
        created_by: get(row, 6)?,
        created_at: get(row, 7)?,
        expires_at: get(row, 8)?,
        accepted_at: get(row, 9)?,
        revoked_at: get(row, 10)?,
    })
}

const PASSKEY_COLS: &str = "id, user_id, name, passkey, created_at, last_used_at";
fn passkey_row(row: &Row) -> Result<PasskeyRecord, StorageError> {
    Ok(PasskeyRecord {
        id: get(row, 0)?,
        user_id: get(row, 1)?,
        name: get(row, 2)?,
        passkey_json: get(row, 3)?,
        created_at: get(row, 4)?,
        last_used_at: get(row, 5)?,
    })
}

const SESSION_COLS: &str = "s.id, s.hash, s.user_id, s.org_id, s.member_id, s.method, \
     s.created_at, s.last_seen_at, s.expires_at, s.stepped_up_at, s.revoked_at";
fn session_row(row: &Row) -> Result<SessionRecord, StorageError> {
    Ok(SessionRecord {
        id: get(row, 0)?,
        hash: get_hash(row, 1)?,
        user_id: get(row, 2)?,
        org_id: get(row, 3)?,
        member_id: get(row, 4)?,
        method: get(row, 5)?,
        created_at: get(row, 6)?,
        last_seen_at: get(row, 7)?,
        expires_at: get(row, 8)?,
        stepped_up_at: get(row, 9)?,
        revoked_at: get(row, 10)?,
    })
}

fn insert_user_tx(tx: &mut Tx<'_>, user: &UserRecord) -> Result<(), StorageError> {
    let inserted = exec(
        tx,
        "INSERT INTO users (id, handle, email, display_name, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &user.id,
            &user.handle,
            &user.email,
            &user.display_name,
            &user.created_at,
        ],
    )?;
    if inserted == 0 {
        return Err(StorageError::Conflict(
            "a person with this email already exists",
        ));
    }
    Ok(())
}

fn insert_passkey_tx(tx: &mut Tx<'_>, passkey: &PasskeyRecord) -> Result<(), StorageError> {
    let inserted = exec(
        tx,
        "INSERT INTO passkeys (id, user_id, name, passkey, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &passkey.id,
            &passkey.user_id,
            &passkey.name,
            &passkey.passkey_json,
            &passkey.created_at,
        ],
    )?;
    if inserted == 0 {
        return Err(StorageError::Conflict("this passkey is already registered"));
    }
    Ok(())
}

fn insert_session_tx(tx: &mut Tx<'_>, session: &SessionRecord) -> Result<(), StorageError> {
    exec(
        tx,
        "INSERT INTO sessions (id, hash, user_id, org_id, member_id, method, created_at, \
         last_seen_at, expires_at, stepped_up_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &session.id,
            &session.hash.as_slice(),
            &session.user_id,
            &session.org_id,
            &session.member_id,
            &session.method,
            &session.created_at,
            &session.last_seen_at,
            &session.expires_at,
            &session.stepped_up_at,
        ],
    )?;
    issue_credential(tx, Credential::Session, &session.hash, &session.org_id)
}

fn invitation_by_hash_tx(
    tx: &mut Tx<'_>,
    token_hash: &[u8; 32],
) -> Result<Option<InvitationRecord>, StorageError> {
    opt(
        tx,
        &format!("SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = $1"),
        &[&token_hash.as_slice()],
        invitation_row,
    )
}

impl PgStorage {
    /// One user, found by one of its unique columns.
    fn user_where(&self, column: &str, value: &str) -> Result<Option<UserRecord>, StorageError> {
        self.run(Scope::Global, |tx| {
            opt(
                tx,
                &format!("SELECT {USER_COLS} FROM users u WHERE u.{column} = $1"),
                &[&value],
                |row| user_row(row, 0),
            )
        })
    }
}

impl PeopleStorage for PgStorage {
    fn insert_invitation(
        &self,
        invitation: &InvitationRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&invitation.org_id), |tx| {
            exec(
                tx,
                "INSERT INTO invitations (id, org_id, token_hash, email, role, member_id, \
                 created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &invitation.id,
                    &invitation.org_id,
                    &invitation.token_hash.as_slice(),
                    &invitation.email,
                    &invitation.role.as_str(),
                    &invitation.member_id,
                    &invitation.created_by,
                    &invitation.created_at,
                    &invitation.expires_at,
                ],
            )?;
            issue_credential(
                tx,
                Credential::Invitation,
                &invitation.token_hash,
                &invitation.org_id,
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn invitations(&self, org_id: &str) -> Result<Vec<InvitationRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {INVITATION_COLS} FROM invitations WHERE org_id = $1 \
                     ORDER BY created_at DESC, id"
                ),
                &[&org_id],
                invitation_row,
            )
        })
    }

    fn invitation_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<InvitationRecord>, StorageError> {
        self.by_credential(Credential::Invitation, token_hash, |tx| {
            invitation_by_hash_tx(tx, token_hash)
        })
    }

    fn revoke_invitation(
        &self,
        org_id: &str,
        invitation_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.audited_change(
            Scope::Org(org_id),
            "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND id = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL",
            &[&org_id, &invitation_id, &at],
            audit,
        )
    }

    fn accept_invitation(&self, a: &Acceptance<'_>) -> Result<MemberRecord, StorageError> {
        let not_open = StorageError::Conflict("invitation is not open");
        self.by_credential(Credential::Invitation, &a.token_hash, |tx| {
            let invitation = invitation_by_hash_tx(tx, &a.token_hash)?
                .filter(|inv| inv.is_open(a.at))
                .ok_or(StorageError::Conflict("invitation is not open"))?;
            lock_org(tx, &invitation.org_id)?;
            let consumed = exec(
                tx,
                "UPDATE invitations SET accepted_at = $2, accepted_by = $3 \
                 WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
                &[&invitation.id, &a.at, &a.user.id],
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
            let already: Option<String> = opt(
                tx,
                "SELECT id FROM members WHERE org_id = $1 AND user_id = $2 \
                 AND removed_at IS NULL",
                &[&invitation.org_id, &a.user.id],
                |row| get(row, 0),
            )?;
            if already.is_some() {
                return Err(StorageError::Conflict("already a member of this org"));
            }
            let member_id = match &invitation.member_id {
                Some(existing) => {
                    let linked = exec(
                        tx,
                        "UPDATE members SET user_id = $3, name = $4 WHERE org_id = $1 \
                         AND id = $2 AND user_id IS NULL AND removed_at IS NULL",
                        &[
                            &invitation.org_id,
                            existing,
                            &a.user.id,
                            &a.user.display_name,
                        ],
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
            let member = member_row(
                &one(
                    tx,
                    &format!("SELECT {MEMBER_COLS} FROM members m WHERE m.id = $1"),
                    &[&member_id],
                )?,
                0,
            )?;
            Ok(Some(member))
        })?
        .ok_or(not_open)
    }

    fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StorageError> {
        self.user_where("id", user_id)
    }

    fn user_by_handle(&self, handle: &str) -> Result<Option<UserRecord>, StorageError> {
        self.user_where("handle", handle)
    }

    fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StorageError> {
        self.user_where("email", email)
    }

    fn memberships(&self, user_id: &str) -> Result<Vec<(MemberRecord, OrgRecord)>, StorageError> {
        self.run(Scope::Person(user_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {MEMBER_COLS}, o.id, o.name, o.created_at FROM members m \
                     JOIN orgs o ON o.id = m.org_id \
                     WHERE m.user_id = $1 AND m.removed_at IS NULL ORDER BY m.created_at, m.id"
                ),
                &[&user_id],
                |row| Ok((member_row(row, 0)?, org_row(row, 6)?)),
            )
        })
    }

    fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StorageError> {
        self.run(Scope::Global, |tx| {
            all(
                tx,
                &format!(
                    "SELECT {PASSKEY_COLS} FROM passkeys WHERE user_id = $1 \
                     ORDER BY created_at, id"
                ),
                &[&user_id],
                passkey_row,
            )
        })
    }

    fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, StorageError> {
        self.run(Scope::Global, |tx| {
            opt(
                tx,
                &format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE id = $1"),
                &[&credential_id],
                passkey_row,
            )
        })
    }

    fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Global, |tx| {
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
        self.run(Scope::Global, |tx| {
            exec(
                tx,
                "UPDATE passkeys SET last_used_at = $2, passkey = COALESCE($3, passkey) \
                 WHERE id = $1",
                &[&credential_id, &at, &updated_json],
            )
            .map(drop)
        })
    }

    fn rename_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.audited_change(
            Scope::Global,
            "UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2",
            &[&user_id, &credential_id, &name],
            audit,
        )
    }

    fn remove_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.run(Scope::Global, |tx| {
            // The person's passkeys, locked: two removals cannot both leave one.
            let held = all(
                tx,
                "SELECT id FROM passkeys WHERE user_id = $1 FOR UPDATE",
                &[&user_id],
                |row| get::<String>(row, 0),
            )?;
            if !held.iter().any(|id| id == credential_id) {
                return Ok(false);
            }
            if held.len() <= 1 {
                return Err(StorageError::Conflict(
                    "a person keeps at least one passkey",
                ));
            }
            exec(
                tx,
                "DELETE FROM passkeys WHERE user_id = $1 AND id = $2",
                &[&user_id, &credential_id],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }

    fn insert_session(
        &self,
        session: &SessionRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&session.org_id), |tx| {
            insert_session_tx(tx, session)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn session_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, MemberRecord, UserRecord)>, StorageError> {
        self.by_credential(Credential::Session, hash, |tx| {
            opt(
                tx,
                &format!(
                    "SELECT {SESSION_COLS}, {MEMBER_COLS}, {USER_COLS} FROM sessions s \
                     JOIN members m ON m.id = s.member_id AND m.org_id = s.org_id \
                     AND m.user_id = s.user_id AND m.removed_at IS NULL \
                     JOIN users u ON u.id = s.user_id WHERE s.hash = $1"
                ),
                &[&hash.as_slice()],
                |row| Ok((session_row(row)?, member_row(row, 11)?, user_row(row, 17)?)),
            )
        })
    }

    fn touch_session(&self, org_id: &str, session_id: &str, at: i64) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            exec(
                tx,
                "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $3) \
                 WHERE org_id = $1 AND id = $2",
                &[&org_id, &session_id, &at],
            )
            .map(drop)
        })
    }

    fn step_up_session(
        &self,
        org_id: &str,
        session_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            exec(
                tx,
                "UPDATE sessions SET stepped_up_at = $3, last_seen_at = $3 \
                 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
                &[&org_id, &session_id, &at],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn sessions_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StorageError> {
        self.run(Scope::Person(user_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {SESSION_COLS} FROM sessions s WHERE s.user_id = $1 \
                     AND s.revoked_at IS NULL AND s.expires_at > $2 \
                     ORDER BY s.created_at DESC, s.id"
                ),
                &[&user_id, &now],
                session_row,
            )
        })
    }

    fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.audited_change(
            Scope::Person(user_id),
            "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id = $2 \
             AND revoked_at IS NULL",
            &[&user_id, &session_id, &at],
            audit,
        )
    }

    fn revoke_user_sessions(
        &self,
        user_id: &str,
        at: i64,
        audit: &[AuditEvent],
    ) -> Result<usize, StorageError> {
        self.run(Scope::Person(user_id), |tx| {
            let changed = exec(
                tx,
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                &[&user_id, &at],
            )?;
            append_all(tx, &self.audit_key, audit)?;
            Ok(usize::try_from(changed).unwrap_or(usize::MAX))
        })
    }

    fn insert_ceremony(&self, ceremony: &CeremonyRecord, now: i64) -> Result<(), StorageError> {
        self.run(Scope::Global, |tx| {
            exec(tx, "DELETE FROM ceremonies WHERE expires_at <= $1", &[&now])?;
            exec(
                tx,
                "INSERT INTO ceremonies (hash, kind, subject, state, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &ceremony.hash.as_slice(),
                    &ceremony.kind,
                    &ceremony.subject,
                    &ceremony.state,
                    &ceremony.expires_at,
                ],
            )
            .map(drop)
        })
    }

    fn take_ceremony(
        &self,
        hash: &[u8; 32],
        kind: &str,
        now: i64,
    ) -> Result<Option<CeremonyRecord>, StorageError> {
        self.run(Scope::Global, |tx| {
            // DELETE … RETURNING: of two instances taking the same ceremony, one gets it.
            let found = opt(
                tx,
                "DELETE FROM ceremonies WHERE hash = $1 \
                 RETURNING hash, kind, subject, state, expires_at",
                &[&hash.as_slice()],
                |row| {
                    Ok(CeremonyRecord {
                        hash: get_hash(row, 0)?,
                        kind: get(row, 1)?,
                        subject: get(row, 2)?,
                        state: get(row, 3)?,
                        expires_at: get(row, 4)?,
                    })
                },
            )?;
            Ok(found.filter(|c| c.kind == kind && c.expires_at > now))
        })
    }
}
