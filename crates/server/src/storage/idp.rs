//! Persistence of an org's identity providers: its OpenID Provider and its SAML IdP.

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

/// An org's SAML identity provider: its entity id, its SSO service (HTTP-Redirect binding) and
/// the certificate whose key must sign assertions (pinned; no chain, no key from the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlConfigRecord {
    /// The org.
    pub org_id: String,
    /// The IdP's entity id (the assertions' issuer).
    pub idp_entity_id: String,
    /// The IdP's single sign-on service URL.
    pub sso_url: String,
    /// The IdP's signing certificate, DER.
    pub certificate_der: Vec<u8>,
    /// Allowed email domains (lowercase).
    pub allowed_email_domains: Vec<String>,
    /// Whether people of the org must sign in through an identity provider.
    pub sso_required: bool,
    /// Audit actor of the last change.
    pub updated_by: String,
    /// Time of the last change.
    pub updated_at: i64,
}

/// A person's stable identity at one of an org's identity providers: OIDC's (`iss`, `sub`), or a
/// SAML IdP's entity id and persistent `NameID`. Once linked, only that subject signs the person
/// in through that provider, whatever email it later asserts.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityLink {
    /// The org whose provider it is.
    pub org_id: String,
    /// `oidc` or `saml`.
    pub provider: String,
    /// The issuer (OIDC issuer URL, SAML IdP entity id).
    pub issuer: String,
    /// The subject at the issuer.
    pub subject: String,
    /// The person.
    pub user_id: String,
    /// When linked.
    pub created_at: i64,
}

impl std::fmt::Debug for IdentityLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityLink")
            .field("org_id", &self.org_id)
            .field("provider", &self.provider)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Identity provider configuration: one OpenID Provider and one SAML IdP per org.
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

    /// Whether people of the org must sign in through an identity provider (passkey sign-in
    /// refused): either provider says so. `false` when the org has none.
    fn sso_required(&self, org_id: &str) -> Result<bool, StorageError>;

    /// The person linked to `subject` at the org's `provider` `issuer`, if any.
    fn linked_user(
        &self,
        org_id: &str,
        provider: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError>;

    /// Whether the person is linked to some subject at the org's `provider` `issuer`.
    fn has_link(
        &self,
        org_id: &str,
        provider: &str,
        issuer: &str,
        user_id: &str,
    ) -> Result<bool, StorageError>;

    /// Links a subject to a person (no-op when that exact link exists; a subject already
    /// linked to someone else is a conflict).
    fn link_identity(&self, link: &IdentityLink) -> Result<(), StorageError>;

    /// The org's SAML identity provider, if configured.
    fn saml_config(&self, org_id: &str) -> Result<Option<SamlConfigRecord>, StorageError>;

    /// Creates or replaces the org's SAML identity provider.
    fn put_saml_config(
        &self,
        config: &SamlConfigRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError>;

    /// Removes the org's SAML identity provider; `false` when there was none.
    fn delete_saml_config(&self, org_id: &str, audit: &AuditEvent) -> Result<bool, StorageError>;
}
