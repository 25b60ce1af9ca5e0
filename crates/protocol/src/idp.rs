//! Wire bodies for an org's identity providers (an OpenID Provider, a SAML IdP): their
//! configuration by an Owner and what the server shows of them. The OIDC client secret goes in
//! once and never comes back out.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Longest client id and client secret accepted, in bytes.
pub const MAX_CLIENT_FIELD_LEN: usize = 1024;
/// Most allowed email domains per org.
pub const MAX_EMAIL_DOMAINS: usize = 50;

/// `PUT /v1/org/idp`: the org's OpenID Provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IdpConfigRequest {
    /// The issuer URL (`https://...`, no query or fragment); discovery reads
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id registered at the provider for this org.
    pub client_id: String,
    /// The client secret; stored sealed with the server secret, never returned.
    pub client_secret: String,
    /// Emails of these domains may sign in (exact domain match, lowercase); at least one.
    pub allowed_email_domains: Vec<String>,
    /// Whether people of the org must sign in through the provider (passkey sign-in refused).
    #[serde(default)]
    pub sso_required: bool,
}

impl std::fmt::Debug for IdpConfigRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpConfigRequest")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("allowed_email_domains", &self.allowed_email_domains)
            .field("sso_required", &self.sso_required)
            .finish()
    }
}

/// `GET /v1/org/idp`: the configuration without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct IdpConfigInfo {
    /// The issuer URL.
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// Allowed email domains.
    pub allowed_email_domains: Vec<String>,
    /// Whether sign-in must go through the provider.
    pub sso_required: bool,
    /// The redirect URI to register at the provider for this client.
    pub redirect_uri: String,
    /// The URL people open to sign in to this org.
    pub login_url: String,
    /// Who last changed it (audit actor).
    pub updated_by: String,
    /// When.
    pub updated_at: i64,
}

/// Longest SAML entity id or SSO URL accepted, bytes.
pub const MAX_SAML_FIELD_LEN: usize = 1024;
/// Longest SAML signing certificate accepted (PEM), bytes.
pub const MAX_CERTIFICATE_PEM_LEN: usize = 16 * 1024;

/// `PUT /v1/org/saml`: the org's SAML 2.0 identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SamlConfigRequest {
    /// The IdP's entity id: the `Issuer` its assertions must name.
    pub idp_entity_id: String,
    /// The IdP's single sign-on service URL for the HTTP-Redirect binding (`https://...`).
    pub sso_url: String,
    /// The IdP's signing certificate (PEM). Assertions must be signed by its key; keys inside
    /// messages are never trusted.
    pub certificate_pem: String,
    /// Emails of these domains may sign in (exact domain match, lowercase); at least one.
    pub allowed_email_domains: Vec<String>,
    /// Whether people of the org must sign in through an identity provider.
    #[serde(default)]
    pub sso_required: bool,
}

/// `GET /v1/org/saml`: the configuration and what to give the IdP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SamlConfigInfo {
    /// The IdP's entity id.
    pub idp_entity_id: String,
    /// The IdP's SSO URL.
    pub sso_url: String,
    /// SHA-256 fingerprint of the pinned signing certificate, lowercase hex.
    pub certificate_sha256: String,
    /// Allowed email domains.
    pub allowed_email_domains: Vec<String>,
    /// Whether sign-in must go through an identity provider.
    pub sso_required: bool,
    /// This service provider's entity id for the org (the audience).
    pub sp_entity_id: String,
    /// The assertion consumer service URL (HTTP-POST) to register at the IdP.
    pub acs_url: String,
    /// The SP metadata URL the IdP can import.
    pub metadata_url: String,
    /// The URL people open to sign in to this org.
    pub login_url: String,
    /// Who last changed it (audit actor).
    pub updated_by: String,
    /// When.
    pub updated_at: i64,
}

/// Checks a domain name's shape (`example.com`), lowercased: ASCII letters, digits, `-` and
/// dots, at least one dot, no empty label, at most 253 characters.
pub fn normalize_domain(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    let valid = !text.is_empty()
        && text.len() <= 253
        && text.contains('.')
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    valid.then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked_and_lowercased() {
        assert_eq!(
            normalize_domain(" Example.COM ").as_deref(),
            Some("example.com")
        );
        for bad in [
            "",
            "example",
            ".example.com",
            "example.com.",
            "ex..com",
            "-ex.com",
            "ex-.com",
            "ex ample.com",
            "exämple.com",
            "*.example.com",
        ] {
            assert_eq!(normalize_domain(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let request = IdpConfigRequest {
            issuer: "https://idp.example.com".into(),
            client_id: "edgekeep".into(),
            client_secret: "hunter2-very-secret".into(),
            allowed_email_domains: vec!["example.com".into()],
            sso_required: false,
        };
        assert!(!format!("{request:?}").contains("hunter2"));
    }
}
