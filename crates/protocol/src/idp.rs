//! Wire bodies for an org's identity provider (OpenID Connect): its configuration by an Owner
//! and what the server shows of it. The client secret goes in once and never comes back out.

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
