//! [`ScimStorage`] on PostgreSQL. Every change of a directory takes the org's lock: role
//! recomputation and the last-Owner check see every other instance's changes.

use edgekeep_protocol::api::Role;
use r2d2_postgres::postgres::Row;
use r2d2_postgres::postgres::types::ToSql;

use super::store::{
    Credential, PgStorage, Scope, Tx, all, also_person, append_audit_tx, bad, big, exec, get,
    get_hash, get_u64, insert_member_tx, issue_credential, lock_org, one, opt, owner_count,
    revoke_member_credentials,
};
use crate::audit::AuditKey;
use crate::storage::scim::{
    NewScimUser, ScimEmail, ScimGroupRecord, ScimLookup, ScimName, ScimPage, ScimStorage,
    ScimTokenRecord, ScimUserRecord, USER_NAME_TAKEN,
};
use crate::storage::{AuditEvent, MemberRecord, StorageError};

const TOKEN_COLS: &str = "id, org_id, name, prefix, hash, created_at, expires_at, revoked_at, \
     last_used_at, replaced_by";
fn token_row(row: &Row) -> Result<ScimTokenRecord, StorageError> {
    Ok(ScimTokenRecord {
        id: get(row, 0)?,
        org_id: get(row, 1)?,
        name: get(row, 2)?,
        prefix: get(row, 3)?,
        hash: get_hash(row, 4)?,
        created_at: get(row, 5)?,
        expires_at: get(row, 6)?,
        revoked_at: get(row, 7)?,
        last_used_at: get(row, 8)?,
        replaced_by: get(row, 9)?,
    })
}

const USER_COLS: &str = "id, org_id, user_id, member_id, user_name, external_id, given_name, \
     family_name, formatted_name, display_name, emails, active, created_at, updated_at";
fn user_row(row: &Row) -> Result<ScimUserRecord, StorageError> {
    Ok(ScimUserRecord {
        id: get(row, 0)?,
        org_id: get(row, 1)?,
        user_id: get(row, 2)?,
        member_id: get(row, 3)?,
        user_name: get(row, 4)?,
        external_id: get(row, 5)?,
        name: ScimName {
            given_name: get(row, 6)?,
            family_name: get(row, 7)?,
            formatted: get(row, 8)?,
        },
        display_name: get(row, 9)?,
        emails: serde_json::from_str::<Vec<ScimEmail>>(&get::<String>(row, 10)?)
            .map_err(|_| bad("emails"))?,
        active: get(row, 11)?,
        created_at: get(row, 12)?,
        updated_at: get(row, 13)?,
    })
}

const GROUP_COLS: &str = "id, org_id, display_name, external_id, role, created_at, updated_at";
fn group_row(row: &Row) -> Result<ScimGroupRecord, StorageError> {
    Ok(ScimGroupRecord {
        id: get(row, 0)?,
        org_id: get(row, 1)?,
        display_name: get(row, 2)?,
        external_id: get(row, 3)?,
        role: get::<Option<String>>(row, 4)?
            .map(|r| Role::parse(&r).ok_or_else(|| bad("unknown role")))
            .transpose()?,
        members: Vec::new(),
        created_at: get(row, 5)?,
        updated_at: get(row, 6)?,
    })
}

fn emails_text(emails: &[ScimEmail]) -> Result<String, StorageError> {
    serde_json::to_string(emails).map_err(|_| StorageError::Conflict("emails cannot be stored"))
}

/// The filter of a lookup (names compare without ASCII case, as SQLite's `NOCASE`) and its
/// value, the query's second parameter.
fn lookup_clause(lookup: &ScimLookup, name_col: &str) -> (String, Option<String>) {
    match lookup {
        ScimLookup::All => (String::new(), None),
        ScimLookup::Name(v) => (
            format!(" AND lower({name_col}) = lower($2)"),
            Some(v.clone()),
        ),
        ScimLookup::ExternalId(v) => (" AND external_id = $2".to_owned(), Some(v.clone())),
        ScimLookup::Id(v) => (" AND id = $2".to_owned(), Some(v.clone())),
    }
}

fn user_name_taken(
    tx: &mut Tx<'_>,
    org_id: &str,
    user_name: &str,
    except_id: &str,
) -> Result<bool, StorageError> {
    get(
        &one(
            tx,
            "SELECT EXISTS (SELECT 1 FROM scim_users WHERE org_id = $1 \
             AND lower(user_name) = lower($2) AND id != $3)",
            &[&org_id, &user_name, &except_id],
        )?,
        0,
    )
}

fn scim_user_tx(
    tx: &mut Tx<'_>,
    org_id: &str,
    id: &str,
) -> Result<Option<ScimUserRecord>, StorageError> {
    opt(
        tx,
        &format!("SELECT {USER_COLS} FROM scim_users WHERE org_id = $1 AND id = $2"),
        &[&org_id, &id],
        user_row,
    )
}

/// Ends a SCIM user's membership: removed, its API keys and sessions revoked, the person
/// deactivated (and all their sessions ended) when no other org has them.
fn deprovision_tx(tx: &mut Tx<'_>, record: &ScimUserRecord, at: i64) -> Result<(), StorageError> {
    let org_id = &record.org_id;
    exec(
        tx,
        "UPDATE members SET removed_at = $3 WHERE org_id = $1 AND id = $2 AND removed_at IS NULL",
        &[org_id, &record.member_id, &at],
    )?;
    if owner_count(tx, org_id)? == 0 {
        return Err(StorageError::Conflict("an org keeps at least one owner"));
    }
    revoke_member_credentials(tx, org_id, &record.member_id, at)?;
    also_person(tx, &record.user_id)?;
    let remaining: i64 = get(
        &one(
            tx,
            "SELECT COUNT(*) FROM members WHERE user_id = $1 AND removed_at IS NULL",
            &[&record.user_id],
        )?,
        0,
    )?;
    if remaining == 0 {
        exec(
            tx,
            "UPDATE users SET deactivated_at = $2 WHERE id = $1 AND deactivated_at IS NULL",
            &[&record.user_id, &at],
        )?;
        exec(
            tx,
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            &[&record.user_id, &at],
        )?;
    }
    also_person(tx, "")
}

/// Whether the org maps at least one SCIM group to a role: then the directory decides the roles
/// of the members it provisioned.
pub(super) fn directory_assigns_roles_tx(
    tx: &mut Tx<'_>,
    org_id: &str,
) -> Result<bool, StorageError> {
    get(
        &one(
            tx,
            "SELECT EXISTS (SELECT 1 FROM scim_groups WHERE org_id = $1 AND role IS NOT NULL)",
            &[&org_id],
        )?,
        0,
    )
}

/// Gives each active SCIM user in `ids` the highest role of its groups (Member without one),
/// auditing each change; refuses a result without an Owner. Does nothing while the org maps no
/// group to a role (roles set by hand stay), unless `mapping_changed` (a mapping was just
/// removed: its members fall back to what their groups give).
fn apply_group_roles_tx(
    tx: &mut Tx<'_>,
    key: &AuditKey,
    org_id: &str,
    ids: &[String],
    base: &AuditEvent,
    mapping_changed: bool,
) -> Result<(), StorageError> {
    if !mapping_changed && !directory_assigns_roles_tx(tx, org_id)? {
        return Ok(());
    }
    for id in ids {
        let Some(user) = scim_user_tx(tx, org_id, id)? else {
            continue;
        };
        if !user.active {
            continue;
        }
        let target = all(
            tx,
            "SELECT g.role FROM scim_groups g JOIN scim_group_members gm ON gm.group_id = g.id \
             WHERE gm.user_id = $1 AND g.org_id = $2 AND g.role IS NOT NULL",
            &[id, &org_id],
            |row| get::<String>(row, 0),
        )?
        .iter()
        .filter_map(|text| Role::parse(text))
        .max()
        .unwrap_or(Role::Member);
        let current: Option<String> = opt(
            tx,
            "SELECT role FROM members WHERE org_id = $1 AND id = $2 AND removed_at IS NULL",
            &[&org_id, &user.member_id],
            |row| get(row, 0),
        )?;
        let Some(current) = current else { continue };
        if current != target.as_str() {
            exec(
                tx,
                "UPDATE members SET role = $3 WHERE org_id = $1 AND id = $2",
                &[&org_id, &user.member_id, &target.as_str()],
            )?;
            let mut event = base.clone();
            event.action = format!("scim.role.{}", target.as_str());
            event.target = format!("member:{}", user.member_id);
            append_audit_tx(tx, key, &event)?;
        }
    }
    if owner_count(tx, org_id)? == 0 {
        return Err(StorageError::Conflict("an org keeps at least one owner"));
    }
    Ok(())
}

fn group_members_tx(tx: &mut Tx<'_>, group_id: &str) -> Result<Vec<String>, StorageError> {
    all(
        tx,
        "SELECT user_id FROM scim_group_members WHERE group_id = $1 ORDER BY user_id",
        &[&group_id],
        |row| get(row, 0),
    )
}

fn set_group_members_tx(tx: &mut Tx<'_>, group: &ScimGroupRecord) -> Result<(), StorageError> {
    exec(
        tx,
        "DELETE FROM scim_group_members WHERE group_id = $1",
        &[&group.id],
    )?;
    for member in &group.members {
        exec(
            tx,
            "INSERT INTO scim_group_members (org_id, group_id, user_id) \
             SELECT $3, $1, id FROM scim_users WHERE id = $2 AND org_id = $3 \
             ON CONFLICT DO NOTHING",
            &[&group.id, member, &group.org_id],
        )?;
    }
    Ok(())
}

fn group_tx(
    tx: &mut Tx<'_>,
    org_id: &str,
    id: &str,
) -> Result<Option<ScimGroupRecord>, StorageError> {
    let found = opt(
        tx,
        &format!("SELECT {GROUP_COLS} FROM scim_groups WHERE org_id = $1 AND id = $2"),
        &[&org_id, &id],
        group_row,
    )?;
    let Some(mut group) = found else {
        return Ok(None);
    };
    group.members = group_members_tx(tx, &group.id)?;
    Ok(Some(group))
}

/// A listable SCIM table.
struct Listing<T> {
    table: &'static str,
    cols: &'static str,
    name_col: &'static str,
    map: fn(&Row) -> Result<T, StorageError>,
}

const USERS: Listing<ScimUserRecord> = Listing {
    table: "scim_users",
    cols: USER_COLS,
    name_col: "user_name",
    map: user_row,
};

const GROUPS: Listing<ScimGroupRecord> = Listing {
    table: "scim_groups",
    cols: GROUP_COLS,
    name_col: "display_name",
    map: group_row,
};

fn page_tx<T>(
    tx: &mut Tx<'_>,
    listing: &Listing<T>,
    org_id: &str,
    lookup: &ScimLookup,
    offset: u64,
    limit: u64,
) -> Result<ScimPage<T>, StorageError> {
    let Listing {
        table,
        cols,
        name_col,
        map,
    } = *listing;
    let (clause, value) = lookup_clause(lookup, name_col);
    let limit = big(limit.min(i64::MAX as u64))?;
    let offset = big(offset.min(i64::MAX as u64))?;
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&org_id];
    if let Some(value) = &value {
        args.push(value);
    }
    let total = get_u64(
        &one(
            tx,
            &format!("SELECT COUNT(*) FROM {table} WHERE org_id = $1{clause}"),
            &args,
        )?,
        0,
    )?;
    let n = args.len();
    args.push(&limit);
    args.push(&offset);
    let items = all(
        tx,
        &format!(
            "SELECT {cols} FROM {table} WHERE org_id = $1{clause} ORDER BY created_at, ordinal \
             LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &args,
        map,
    )?;
    Ok(ScimPage { total, items })
}

fn insert_token_tx(tx: &mut Tx<'_>, token: &ScimTokenRecord) -> Result<(), StorageError> {
    exec(
        tx,
        &format!(
            "INSERT INTO scim_tokens ({TOKEN_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        &[
            &token.id,
            &token.org_id,
            &token.name,
            &token.prefix,
            &token.hash.as_slice(),
            &token.created_at,
            &token.expires_at,
            &token.revoked_at,
            &token.last_used_at,
            &token.replaced_by,
        ],
    )?;
    issue_credential(tx, Credential::ScimToken, &token.hash, &token.org_id)
}

fn insert_user_tx(tx: &mut Tx<'_>, r: &ScimUserRecord) -> Result<(), StorageError> {
    exec(
        tx,
        &format!(
            "INSERT INTO scim_users ({USER_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        &[
            &r.id,
            &r.org_id,
            &r.user_id,
            &r.member_id,
            &r.user_name,
            &r.external_id,
            &r.name.given_name,
            &r.name.family_name,
            &r.name.formatted,
            &r.display_name,
            &emails_text(&r.emails)?,
            &r.active,
            &r.created_at,
            &r.updated_at,
        ],
    )
    .map(drop)
}

impl PgStorage {
    /// Runs a change of the org's directory, holding the org's lock.
    fn directory<T>(
        &self,
        org_id: &str,
        body: impl FnOnce(&mut Tx<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            lock_org(tx, org_id)?;
            body(tx)
        })
    }
}

impl ScimStorage for PgStorage {
    fn insert_scim_token(
        &self,
        token: &ScimTokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&token.org_id), |tx| {
            insert_token_tx(tx, token)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn scim_tokens(&self, org_id: &str) -> Result<Vec<ScimTokenRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {TOKEN_COLS} FROM scim_tokens WHERE org_id = $1 \
                     ORDER BY created_at, id"
                ),
                &[&org_id],
                token_row,
            )
        })
    }

    fn scim_token(
        &self,
        org_id: &str,
        token_id: &str,
    ) -> Result<Option<ScimTokenRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                &format!("SELECT {TOKEN_COLS} FROM scim_tokens WHERE org_id = $1 AND id = $2"),
                &[&org_id, &token_id],
                token_row,
            )
        })
    }

    fn scim_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ScimTokenRecord>, StorageError> {
        self.by_credential(Credential::ScimToken, hash, |tx| {
            opt(
                tx,
                &format!("SELECT {TOKEN_COLS} FROM scim_tokens WHERE hash = $1"),
                &[&hash.as_slice()],
                token_row,
            )
        })
    }

    fn rotate_scim_token(
        &self,
        org_id: &str,
        old_id: &str,
        old_expires_at: i64,
        new: &ScimTokenRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            insert_token_tx(tx, new)?;
            let changed = exec(
                tx,
                "UPDATE scim_tokens SET expires_at = LEAST(COALESCE(expires_at, $3), $3), \
                 replaced_by = $4 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL \
                 AND replaced_by IS NULL",
                &[&org_id, &old_id, &old_expires_at, &new.id],
            )?;
            if changed == 0 {
                return Err(StorageError::Conflict(
                    "token was revoked or already rotated",
                ));
            }
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn revoke_scim_token(
        &self,
        org_id: &str,
        token_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.audited_change(
            Scope::Org(org_id),
            "UPDATE scim_tokens SET revoked_at = $3 WHERE org_id = $1 AND id = $2 \
             AND revoked_at IS NULL",
            &[&org_id, &token_id, &at],
            audit,
        )
    }

    fn touch_scim_token(&self, org_id: &str, token_id: &str, at: i64) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            exec(
                tx,
                "UPDATE scim_tokens SET last_used_at = $3 WHERE org_id = $1 AND id = $2",
                &[&org_id, &token_id, &at],
            )
            .map(drop)
        })
    }

    fn create_scim_user(&self, new: &NewScimUser<'_>) -> Result<(), StorageError> {
        let r = new.record;
        self.directory(&r.org_id, |tx| {
            if user_name_taken(tx, &r.org_id, &r.user_name, &r.id)? {
                return Err(StorageError::Conflict(USER_NAME_TAKEN));
            }
            let email_free = match &new.user.email {
                Some(email) => !get::<bool>(
                    &one(
                        tx,
                        "SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)",
                        &[email],
                    )?,
                    0,
                )?,
                None => false,
            };
            exec(
                tx,
                "INSERT INTO users (id, handle, email, display_name, created_at, deactivated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &new.user.id,
                    &new.user.handle,
                    &new.user.email.as_ref().filter(|_| email_free),
                    &new.user.display_name,
                    &new.user.created_at,
                    &(!r.active).then_some(r.created_at),
                ],
            )?;
            let mut member = new.member.clone();
            member.user_id = Some(new.user.id.clone());
            insert_member_tx(tx, &member)?;
            if !r.active {
                exec(
                    tx,
                    "UPDATE members SET removed_at = $3 WHERE org_id = $1 AND id = $2",
                    &[&member.org_id, &member.id, &r.created_at],
                )?;
            }
            insert_user_tx(tx, r)?;
            append_audit_tx(tx, &self.audit_key, new.audit)
        })
    }

    fn scim_user(&self, org_id: &str, id: &str) -> Result<Option<ScimUserRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| scim_user_tx(tx, org_id, id))
    }

    fn scim_users(
        &self,
        org_id: &str,
        lookup: &ScimLookup,
        offset: u64,
        limit: u64,
    ) -> Result<ScimPage<ScimUserRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            page_tx(tx, &USERS, org_id, lookup, offset, limit)
        })
    }

    fn update_scim_user(
        &self,
        record: &ScimUserRecord,
        new_member_id: &str,
        audit: &AuditEvent,
    ) -> Result<Option<ScimUserRecord>, StorageError> {
        self.directory(&record.org_id, |tx| {
            let Some(previous) = scim_user_tx(tx, &record.org_id, &record.id)? else {
                return Ok(None);
            };
            if user_name_taken(tx, &record.org_id, &record.user_name, &record.id)? {
                return Err(StorageError::Conflict(USER_NAME_TAKEN));
            }
            let mut next = record.clone();
            next.user_id.clone_from(&previous.user_id);
            next.member_id.clone_from(&previous.member_id);
            next.created_at = previous.created_at;
            let name = next.shown_name();
            append_audit_tx(tx, &self.audit_key, audit)?;
            let mut transition = None;
            if previous.active && !next.active {
                deprovision_tx(tx, &previous, next.updated_at)?;
                transition = Some("scim.user.deactivate");
            } else if !previous.active && next.active {
                let member = MemberRecord {
                    id: new_member_id.to_owned(),
                    org_id: next.org_id.clone(),
                    name: name.clone(),
                    role: Role::Member,
                    created_at: next.updated_at,
                    user_id: Some(next.user_id.clone()),
                };
                insert_member_tx(tx, &member)?;
                exec(
                    tx,
                    "UPDATE users SET deactivated_at = NULL WHERE id = $1",
                    &[&next.user_id],
                )?;
                next.member_id = member.id;
                transition = Some("scim.user.reactivate");
            }
            if let Some(action) = transition {
                let mut event = audit.clone();
                event.action = action.to_owned();
                event.target = format!("member:{}", next.member_id);
                append_audit_tx(tx, &self.audit_key, &event)?;
            }
            exec(
                tx,
                "UPDATE scim_users SET member_id = $3, user_name = $4, external_id = $5, \
                 given_name = $6, family_name = $7, formatted_name = $8, display_name = $9, \
                 emails = $10, active = $11, updated_at = $12 WHERE org_id = $1 AND id = $2",
                &[
                    &next.org_id,
                    &next.id,
                    &next.member_id,
                    &next.user_name,
                    &next.external_id,
                    &next.name.given_name,
                    &next.name.family_name,
                    &next.name.formatted,
                    &next.display_name,
                    &emails_text(&next.emails)?,
                    &next.active,
                    &next.updated_at,
                ],
            )?;
            exec(
                tx,
                "UPDATE users SET display_name = $2 WHERE id = $1",
                &[&next.user_id, &name],
            )?;
            exec(
                tx,
                "UPDATE members SET name = $3 WHERE org_id = $1 AND id = $2 AND removed_at IS NULL",
                &[&next.org_id, &next.member_id, &name],
            )?;
            if transition == Some("scim.user.reactivate") {
                apply_group_roles_tx(
                    tx,
                    &self.audit_key,
                    &next.org_id,
                    std::slice::from_ref(&next.id),
                    audit,
                    false,
                )?;
            }
            Ok(Some(next))
        })
    }

    fn delete_scim_user(
        &self,
        org_id: &str,
        id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.directory(org_id, |tx| {
            let Some(previous) = scim_user_tx(tx, org_id, id)? else {
                return Ok(false);
            };
            if previous.active {
                deprovision_tx(tx, &previous, at)?;
            }
            exec(
                tx,
                "DELETE FROM scim_group_members WHERE org_id = $1 AND user_id = $2",
                &[&org_id, &id],
            )?;
            exec(
                tx,
                "DELETE FROM scim_users WHERE org_id = $1 AND id = $2",
                &[&org_id, &id],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }

    fn create_scim_group(
        &self,
        group: &ScimGroupRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.directory(&group.org_id, |tx| {
            exec(
                tx,
                "INSERT INTO scim_groups (id, org_id, display_name, external_id, role, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, NULL, $5, $6)",
                &[
                    &group.id,
                    &group.org_id,
                    &group.display_name,
                    &group.external_id,
                    &group.created_at,
                    &group.updated_at,
                ],
            )?;
            set_group_members_tx(tx, group)?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn scim_group(&self, org_id: &str, id: &str) -> Result<Option<ScimGroupRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| group_tx(tx, org_id, id))
    }

    fn scim_groups(
        &self,
        org_id: &str,
        lookup: &ScimLookup,
        offset: u64,
        limit: u64,
    ) -> Result<ScimPage<ScimGroupRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            let mut page = page_tx(tx, &GROUPS, org_id, lookup, offset, limit)?;
            for group in &mut page.items {
                group.members = group_members_tx(tx, &group.id)?;
            }
            Ok(page)
        })
    }

    fn update_scim_group(
        &self,
        group: &ScimGroupRecord,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.directory(&group.org_id, |tx| {
            let Some(previous) = group_tx(tx, &group.org_id, &group.id)? else {
                return Ok(false);
            };
            exec(
                tx,
                "UPDATE scim_groups SET display_name = $3, external_id = $4, updated_at = $5 \
                 WHERE org_id = $1 AND id = $2",
                &[
                    &group.org_id,
                    &group.id,
                    &group.display_name,
                    &group.external_id,
                    &group.updated_at,
                ],
            )?;
            set_group_members_tx(tx, group)?;
            append_audit_tx(tx, &self.audit_key, audit)?;
            let mut touched: Vec<String> = previous
                .members
                .iter()
                .chain(group.members.iter())
                .cloned()
                .collect();
            touched.sort();
            touched.dedup();
            apply_group_roles_tx(tx, &self.audit_key, &group.org_id, &touched, audit, false)?;
            Ok(true)
        })
    }

    fn delete_scim_group(
        &self,
        org_id: &str,
        id: &str,
        _at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.directory(org_id, |tx| {
            let Some(previous) = group_tx(tx, org_id, id)? else {
                return Ok(false);
            };
            exec(
                tx,
                "DELETE FROM scim_group_members WHERE group_id = $1",
                &[&id],
            )?;
            exec(
                tx,
                "DELETE FROM scim_groups WHERE org_id = $1 AND id = $2",
                &[&org_id, &id],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)?;
            let mapped = previous.role.is_some();
            apply_group_roles_tx(
                tx,
                &self.audit_key,
                org_id,
                &previous.members,
                audit,
                mapped,
            )?;
            Ok(true)
        })
    }

    fn set_scim_group_role(
        &self,
        org_id: &str,
        id: &str,
        role: Option<Role>,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.directory(org_id, |tx| {
            let changed = exec(
                tx,
                "UPDATE scim_groups SET role = $3 WHERE org_id = $1 AND id = $2",
                &[&org_id, &id, &role.map(Role::as_str)],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            append_audit_tx(tx, &self.audit_key, audit)?;
            let members = group_members_tx(tx, id)?;
            apply_group_roles_tx(tx, &self.audit_key, org_id, &members, audit, true)?;
            Ok(true)
        })
    }
}
