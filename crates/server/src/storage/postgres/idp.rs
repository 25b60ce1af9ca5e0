//! [`IdpStorage`] on PostgreSQL.

use r2d2_postgres::postgres::Row;

use super::store::{PgStorage, Scope, append_audit_tx, bad, exec, get, one, opt};
use crate::storage::idp::{IdentityLink, IdpConfigRecord, IdpStorage, SamlConfigRecord};
use crate::storage::{AuditEvent, StorageError};

fn domains_col(row: &Row, index: usize) -> Result<Vec<String>, StorageError> {
    serde_json::from_str(&get::<String>(row, index)?).map_err(|_| bad("allowed email domains"))
}

fn domains_text(domains: &[String]) -> Result<String, StorageError> {
    serde_json::to_string(domains).map_err(|_| StorageError::Conflict("allowed email domains"))
}

impl IdpStorage for PgStorage {
    fn idp_config(&self, org_id: &str) -> Result<Option<IdpConfigRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                "SELECT org_id, issuer, client_id, sealed_client_secret, allowed_email_domains, \
                 sso_required, updated_by, updated_at FROM idp_configs WHERE org_id = $1",
                &[&org_id],
                |row| {
                    Ok(IdpConfigRecord {
                        org_id: get(row, 0)?,
                        issuer: get(row, 1)?,
                        client_id: get(row, 2)?,
                        sealed_client_secret: get(row, 3)?,
                        allowed_email_domains: domains_col(row, 4)?,
                        sso_required: get(row, 5)?,
                        updated_by: get(row, 6)?,
                        updated_at: get(row, 7)?,
                    })
                },
            )
        })
    }

    fn put_idp_config(
        &self,
        config: &IdpConfigRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        let domains = domains_text(&config.allowed_email_domains)?;
        self.run(Scope::Org(&config.org_id), |tx| {
            exec(
                tx,
                "INSERT INTO idp_configs (org_id, issuer, client_id, sealed_client_secret, \
                 allowed_email_domains, sso_required, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, \
                 client_id = excluded.client_id, \
                 sealed_client_secret = excluded.sealed_client_secret, \
                 allowed_email_domains = excluded.allowed_email_domains, \
                 sso_required = excluded.sso_required, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at",
                &[
                    &config.org_id,
                    &config.issuer,
                    &config.client_id,
                    &config.sealed_client_secret,
                    &domains,
                    &config.sso_required,
                    &config.updated_by,
                    &config.updated_at,
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn delete_idp_config(&self, org_id: &str, audit: &AuditEvent) -> Result<bool, StorageError> {
        let delete = "DELETE FROM idp_configs WHERE org_id = $1";
        self.audited_change(Scope::Org(org_id), delete, &[&org_id], audit)
    }

    fn sso_required(&self, org_id: &str) -> Result<bool, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            get(
                &one(
                    tx,
                    "SELECT EXISTS (SELECT 1 FROM idp_configs WHERE org_id = $1 AND sso_required) \
                     OR EXISTS (SELECT 1 FROM saml_configs WHERE org_id = $1 AND sso_required)",
                    &[&org_id],
                )?,
                0,
            )
        })
    }

    fn linked_user(
        &self,
        org_id: &str,
        provider: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                "SELECT user_id FROM identity_links WHERE org_id = $1 AND provider = $2 \
                 AND issuer = $3 AND subject = $4",
                &[&org_id, &provider, &issuer, &subject],
                |row| get(row, 0),
            )
        })
    }

    fn has_link(
        &self,
        org_id: &str,
        provider: &str,
        issuer: &str,
        user_id: &str,
    ) -> Result<bool, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            get(
                &one(
                    tx,
                    "SELECT EXISTS (SELECT 1 FROM identity_links WHERE org_id = $1 \
                     AND provider = $2 AND issuer = $3 AND user_id = $4)",
                    &[&org_id, &provider, &issuer, &user_id],
                )?,
                0,
            )
        })
    }

    fn link_identity(&self, link: &IdentityLink) -> Result<(), StorageError> {
        self.run(Scope::Org(&link.org_id), |tx| {
            let inserted = exec(
                tx,
                "INSERT INTO identity_links (org_id, provider, issuer, subject, user_id, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &link.org_id,
                    &link.provider,
                    &link.issuer,
                    &link.subject,
                    &link.user_id,
                    &link.created_at,
                ],
            )?;
            if inserted == 1 {
                return Ok(());
            }
            let existing: Option<String> = opt(
                tx,
                "SELECT user_id FROM identity_links WHERE org_id = $1 AND provider = $2 \
                 AND issuer = $3 AND subject = $4",
                &[&link.org_id, &link.provider, &link.issuer, &link.subject],
                |row| get(row, 0),
            )?;
            match existing {
                Some(user_id) if user_id == link.user_id => Ok(()),
                _ => Err(StorageError::Conflict(
                    "the subject is linked to another person",
                )),
            }
        })
    }

    fn saml_config(&self, org_id: &str) -> Result<Option<SamlConfigRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                "SELECT org_id, idp_entity_id, sso_url, certificate, allowed_email_domains, \
                 sso_required, updated_by, updated_at FROM saml_configs WHERE org_id = $1",
                &[&org_id],
                |row| {
                    Ok(SamlConfigRecord {
                        org_id: get(row, 0)?,
                        idp_entity_id: get(row, 1)?,
                        sso_url: get(row, 2)?,
                        certificate_der: get(row, 3)?,
                        allowed_email_domains: domains_col(row, 4)?,
                        sso_required: get(row, 5)?,
                        updated_by: get(row, 6)?,
                        updated_at: get(row, 7)?,
                    })
                },
            )
        })
    }

    fn put_saml_config(
        &self,
        config: &SamlConfigRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        let domains = domains_text(&config.allowed_email_domains)?;
        self.run(Scope::Org(&config.org_id), |tx| {
            exec(
                tx,
                "INSERT INTO saml_configs (org_id, idp_entity_id, sso_url, certificate, \
                 allowed_email_domains, sso_required, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (org_id) DO UPDATE SET idp_entity_id = excluded.idp_entity_id, \
                 sso_url = excluded.sso_url, certificate = excluded.certificate, \
                 allowed_email_domains = excluded.allowed_email_domains, \
                 sso_required = excluded.sso_required, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at",
                &[
                    &config.org_id,
                    &config.idp_entity_id,
                    &config.sso_url,
                    &config.certificate_der,
                    &domains,
                    &config.sso_required,
                    &config.updated_by,
                    &config.updated_at,
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn delete_saml_config(&self, org_id: &str, audit: &AuditEvent) -> Result<bool, StorageError> {
        let delete = "DELETE FROM saml_configs WHERE org_id = $1";
        self.audited_change(Scope::Org(org_id), delete, &[&org_id], audit)
    }
}
