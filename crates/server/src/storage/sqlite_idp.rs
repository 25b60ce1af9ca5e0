//! [`IdpStorage`] on SQLite.

use rusqlite::{OptionalExtension, params};

use super::idp::{IdentityLink, IdpConfigRecord, IdpStorage, SamlConfigRecord};
use super::sqlite::{append_audit_tx, bad};
use super::{AuditEvent, SqliteStorage, StorageError};

impl IdpStorage for SqliteStorage {
    fn idp_config(&self, org_id: &str) -> Result<Option<IdpConfigRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                "SELECT org_id, issuer, client_id, sealed_client_secret, allowed_email_domains, \
                 sso_required, updated_by, updated_at FROM idp_configs WHERE org_id = ?1",
                [org_id],
                |row| {
                    let domains: String = row.get(4)?;
                    Ok(IdpConfigRecord {
                        org_id: row.get(0)?,
                        issuer: row.get(1)?,
                        client_id: row.get(2)?,
                        sealed_client_secret: row.get(3)?,
                        allowed_email_domains: serde_json::from_str(&domains)
                            .map_err(|_| bad(4, "allowed email domains"))?,
                        sso_required: row.get(5)?,
                        updated_by: row.get(6)?,
                        updated_at: row.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    fn put_idp_config(
        &self,
        config: &IdpConfigRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        let domains = serde_json::to_string(&config.allowed_email_domains)
            .map_err(|_| StorageError::Conflict("allowed email domains"))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO idp_configs (org_id, issuer, client_id, sealed_client_secret, \
                 allowed_email_domains, sso_required, updated_by, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, \
                 client_id = excluded.client_id, \
                 sealed_client_secret = excluded.sealed_client_secret, \
                 allowed_email_domains = excluded.allowed_email_domains, \
                 sso_required = excluded.sso_required, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at",
                params![
                    config.org_id,
                    config.issuer,
                    config.client_id,
                    config.sealed_client_secret,
                    domains,
                    config.sso_required,
                    config.updated_by,
                    config.updated_at
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn delete_idp_config(&self, org_id: &str, audit: &AuditEvent) -> Result<bool, StorageError> {
        self.delete_org_config("DELETE FROM idp_configs WHERE org_id = ?1", org_id, audit)
    }

    fn sso_required(&self, org_id: &str) -> Result<bool, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM idp_configs WHERE org_id = ?1 AND sso_required) \
                 OR EXISTS (SELECT 1 FROM saml_configs WHERE org_id = ?1 AND sso_required)",
                [org_id],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    fn linked_user(
        &self,
        org_id: &str,
        provider: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                "SELECT user_id FROM identity_links WHERE org_id = ?1 AND provider = ?2 \
                 AND issuer = ?3 AND subject = ?4",
                params![org_id, provider, issuer, subject],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn has_link(
        &self,
        org_id: &str,
        provider: &str,
        issuer: &str,
        user_id: &str,
    ) -> Result<bool, StorageError> {
        let conn = self.read();
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM identity_links WHERE org_id = ?1 AND provider = ?2 \
             AND issuer = ?3 AND user_id = ?4)",
            params![org_id, provider, issuer, user_id],
            |row| row.get(0),
        )?)
    }

    fn link_identity(&self, link: &IdentityLink) -> Result<(), StorageError> {
        self.write(|tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT user_id FROM identity_links WHERE org_id = ?1 AND provider = ?2 \
                     AND issuer = ?3 AND subject = ?4",
                    params![link.org_id, link.provider, link.issuer, link.subject],
                    |row| row.get(0),
                )
                .optional()?;
            match existing {
                Some(user_id) if user_id == link.user_id => Ok(()),
                Some(_) => Err(StorageError::Conflict(
                    "the subject is linked to another person",
                )),
                None => {
                    tx.execute(
                        "INSERT INTO identity_links (org_id, provider, issuer, subject, user_id, \
                         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            link.org_id,
                            link.provider,
                            link.issuer,
                            link.subject,
                            link.user_id,
                            link.created_at
                        ],
                    )?;
                    Ok(())
                }
            }
        })
    }

    fn saml_config(&self, org_id: &str) -> Result<Option<SamlConfigRecord>, StorageError> {
        let conn = self.read();
        Ok(conn
            .query_row(
                "SELECT org_id, idp_entity_id, sso_url, certificate, allowed_email_domains, \
                 sso_required, updated_by, updated_at FROM saml_configs WHERE org_id = ?1",
                [org_id],
                |row| {
                    let domains: String = row.get(4)?;
                    Ok(SamlConfigRecord {
                        org_id: row.get(0)?,
                        idp_entity_id: row.get(1)?,
                        sso_url: row.get(2)?,
                        certificate_der: row.get(3)?,
                        allowed_email_domains: serde_json::from_str(&domains)
                            .map_err(|_| bad(4, "allowed email domains"))?,
                        sso_required: row.get(5)?,
                        updated_by: row.get(6)?,
                        updated_at: row.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    fn put_saml_config(
        &self,
        config: &SamlConfigRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        let domains = serde_json::to_string(&config.allowed_email_domains)
            .map_err(|_| StorageError::Conflict("allowed email domains"))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO saml_configs (org_id, idp_entity_id, sso_url, certificate, \
                 allowed_email_domains, sso_required, updated_by, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (org_id) DO UPDATE SET idp_entity_id = excluded.idp_entity_id, \
                 sso_url = excluded.sso_url, certificate = excluded.certificate, \
                 allowed_email_domains = excluded.allowed_email_domains, \
                 sso_required = excluded.sso_required, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at",
                params![
                    config.org_id,
                    config.idp_entity_id,
                    config.sso_url,
                    config.certificate_der,
                    domains,
                    config.sso_required,
                    config.updated_by,
                    config.updated_at
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn delete_saml_config(&self, org_id: &str, audit: &AuditEvent) -> Result<bool, StorageError> {
        self.delete_org_config("DELETE FROM saml_configs WHERE org_id = ?1", org_id, audit)
    }
}

impl SqliteStorage {
    /// Runs `delete` (an org's row of one provider table) and audits it, in one transaction;
    /// `false`, with nothing audited, when there was no such row.
    fn delete_org_config(
        &self,
        delete: &str,
        org_id: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            if tx.execute(delete, [org_id])? == 0 {
                return Ok(false);
            }
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKey;
    use crate::storage::{ApiKeyRecord, MemberRecord, OrgRecord, Storage};
    use edgekeep_protocol::api::Role;

    fn event(org: &str, action: &str) -> AuditEvent {
        AuditEvent {
            org_id: org.into(),
            actor: "member:m1".into(),
            action: action.into(),
            target: "idp".into(),
            outcome: "ok".into(),
            request_id: "req".into(),
            at: 10,
        }
    }

    fn storage_with_org() -> (tempfile::TempDir, SqliteStorage) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(&dir.path().join("db.sqlite"), 1, AuditKey::derive(&[1; 32]))
            .unwrap();
        let org = OrgRecord {
            id: "org1".into(),
            name: "Org".into(),
            created_at: 1,
        };
        let owner = MemberRecord {
            id: "m1".into(),
            org_id: "org1".into(),
            name: "Owner".into(),
            role: Role::Owner,
            created_at: 1,
            user_id: None,
        };
        let key = ApiKeyRecord {
            id: "k1".into(),
            org_id: "org1".into(),
            member_id: "m1".into(),
            name: "k".into(),
            prefix: "ek_k1".into(),
            hash: [9; 32],
            scopes: vec![],
            created_at: 1,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            replaced_by: None,
        };
        s.create_org(&org, &owner, &key, &[event("org1", "org.create")])
            .unwrap();
        (dir, s)
    }

    #[test]
    fn configure_replace_read_and_remove() {
        let (_dir, s) = storage_with_org();
        assert_eq!(s.idp_config("org1").unwrap(), None);
        assert!(!s.sso_required("org1").unwrap());
        let mut config = IdpConfigRecord {
            org_id: "org1".into(),
            issuer: "https://idp.example.com".into(),
            client_id: "edgekeep".into(),
            sealed_client_secret: vec![1, 2, 3],
            allowed_email_domains: vec!["example.com".into()],
            sso_required: false,
            updated_by: "member:m1".into(),
            updated_at: 10,
        };
        s.put_idp_config(&config, &event("org1", "idp.configure"))
            .unwrap();
        assert_eq!(s.idp_config("org1").unwrap().as_ref(), Some(&config));
        config.sso_required = true;
        config.allowed_email_domains = vec!["example.com".into(), "example.org".into()];
        s.put_idp_config(&config, &event("org1", "idp.configure"))
            .unwrap();
        assert_eq!(s.idp_config("org1").unwrap().as_ref(), Some(&config));
        assert!(s.sso_required("org1").unwrap());
        assert!(!s.sso_required("org2").unwrap());
        assert!(
            s.delete_idp_config("org1", &event("org1", "idp.remove"))
                .unwrap()
        );
        assert!(
            !s.delete_idp_config("org1", &event("org1", "idp.remove"))
                .unwrap()
        );
        assert_eq!(s.idp_config("org1").unwrap(), None);
        let actions: Vec<String> = s
            .audit_entries("org1", None, None)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["org.create", "idp.configure", "idp.configure", "idp.remove"]
        );
    }
}
