//! Persistence of an org's identity provider (OpenID Connect) configuration.

use super::{AuditEvent, StorageError};

/// An org's OpenID Provider. The client secret is kept sealed with the server secret (bound to
/// the org), so a copied database alone does not reveal it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpConfigRecord {
    /// The org.
    pub org_id: String,
    /// Issuer URL.
    pub issuer: String,
    /// Client id at the provider.
    pub client_id: String,
    /// The client secret, sealed ([`crate::secret::ServerSecret::seal`]).
    pub sealed_client_secret: Vec<u8>,
    /// Allowed email domains (lowercase).
    pub allowed_email_domains: Vec<String>,
    /// Whether people of the org must sign in through the provider.
    pub sso_required: bool,
    /// Audit actor of the last change.
    pub updated_by: String,
    /// Time of the last change.
    pub updated_at: i64,
}

impl std::fmt::Debug for IdpConfigRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpConfigRecord")
            .field("org_id", &self.org_id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("allowed_email_domains", &self.allowed_email_domains)
            .field("sso_required", &self.sso_required)
            .finish_non_exhaustive()
    }
}

/// Identity provider configuration, one per org.
pub trait IdpStorage {
    /// The org's identity provider, if configured.
    fn idp_config(&self, org_id: &str) -> Result<Option<IdpConfigRecord>, StorageError>;

    /// Creates or replaces the org's identity provider.
    fn put_idp_config(
        &self,
        config: &IdpConfigRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// Removes the org's identity provider; `false` when there was none.
    fn delete_idp_config(&self, org_id: &str, audit: &AuditEvent) -> Result<bool, StorageError>;

    /// Whether people of the org must sign in through its identity provider (passkey sign-in
    /// refused). `false` when the org has none.
    fn sso_required(&self, org_id: &str) -> Result<bool, StorageError>;
}
