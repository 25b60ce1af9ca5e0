//! Wire bodies for people: invitations, sessions, passkeys and login ceremonies.
//!
//! People sign in with passkeys (or an org's identity provider) and get a session bound to one
//! org, held in an `HttpOnly` cookie; state-changing requests made with a session also carry
//! the session's CSRF token in [`CSRF_HEADER`].

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::api::Role;

/// The session cookie's name (`__Host-`: `Secure`, `Path=/`, no `Domain`).
pub const SESSION_COOKIE: &str = "__Host-ek_session";
/// The header that must carry the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A pending or past invitation into an org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InvitationInfo {
    /// Invitation id.
    pub id: String,
    /// The email the invitation is for, when bound to one (required to accept through an
    /// identity provider).
    pub email: Option<String>,
    /// The role the invitee gets.
    pub role: Role,
    /// Who invited (audit actor).
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When it was accepted.
    pub accepted_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// `POST /v1/invitations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    /// Bind the invitation to this email (optional for passkey acceptance).
    #[serde(default)]
    pub email: Option<String>,
    /// Role of the new member (above Member needs `roles:grant`).
    pub role: Role,
    /// Lifetime in seconds (default 7 days, at most 30 days).
    #[serde(default)]
    pub ttl_secs: Option<i64>,
}

/// The answer to creating an invitation: the single-use token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InvitationCreated {
    /// The invitation.
    pub invitation: InvitationInfo,
    /// The token (`eki_...`); only its hash is stored.
    pub token: String,
}

/// A WebAuthn ceremony begun by the server: the options for `navigator.credentials` and the
/// id to finish it with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CeremonyStarted {
    /// The ceremony (`ekc_...`), single use, valid a few minutes.
    pub ceremony: String,
    /// `PublicKeyCredentialCreationOptions` or `PublicKeyCredentialRequestOptions` (JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: serde_json::Value,
}

/// `POST /v1/auth/invitations/begin`: start accepting an invitation with a new passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The invitation token.
    pub token: String,
    /// The person's display name.
    pub display_name: String,
    /// An email to record (must equal the invitation's when it is bound to one).
    #[serde(default)]
    pub email: Option<String>,
}

/// Finishing a WebAuthn ceremony.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FinishCeremonyRequest {
    /// The ceremony id from [`CeremonyStarted`].
    pub ceremony: String,
    /// The `PublicKeyCredential` the authenticator returned (JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub response: serde_json::Value,
    /// A name for a new passkey ("Work laptop").
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/auth/passkey/begin`: start signing in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The org to sign in to (the person's first org when absent).
    #[serde(default)]
    pub org_id: Option<String>,
}

/// `POST /v1/session/switch`: a new session for another org of the same person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SwitchOrgRequest {
    /// The org.
    pub org_id: String,
}

/// A signed-in session (the cookie is set beside this body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionCreated {
    /// The session's public id.
    pub session_id: String,
    /// The org the session is bound to.
    pub org_id: String,
    /// The person.
    pub user_id: String,
    /// The person's membership in the org.
    pub member_id: String,
    /// Role in the org.
    pub role: Role,
    /// Send this in [`CSRF_HEADER`] on every state-changing request.
    pub csrf_token: String,
    /// Absolute end of the session.
    pub expires_at: i64,
}

/// One of a person's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionInfo {
    /// Public id.
    pub id: String,
    /// Org.
    pub org_id: String,
    /// How the person signed in (`passkey`, `oidc`, `saml`, `invitation`).
    pub method: String,
    /// Start.
    pub created_at: i64,
    /// Last request.
    pub last_seen_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// Time of the last step-up (fresh passkey assertion).
    pub stepped_up_at: Option<i64>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// A person's passkey (metadata only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasskeyInfo {
    /// Credential id (base64url).
    pub id: String,
    /// Name.
    pub name: String,
    /// Registration time.
    pub created_at: i64,
    /// Last use.
    pub last_used_at: Option<i64>,
}

/// `PATCH /v1/me/passkeys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenamePasskeyRequest {
    /// The new name.
    pub name: String,
}

/// A person's membership in an org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MembershipInfo {
    /// Org id.
    pub org_id: String,
    /// Org name.
    pub org_name: String,
    /// Member id in that org.
    pub member_id: String,
    /// Role there.
    pub role: Role,
}

/// `GET /v1/me`: the person behind the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MeInfo {
    /// User id.
    pub user_id: String,
    /// Display name.
    pub display_name: String,
    /// Email, when known.
    pub email: Option<String>,
    /// The org of this session.
    pub org_id: String,
    /// Role in it.
    pub role: Role,
    /// Every org the person belongs to.
    pub memberships: Vec<MembershipInfo>,
}

/// Checks an email address's shape (what an identity provider or an Admin typed), lowercased:
/// `local@domain` with a dot in the domain, at most 254 characters, no spaces or controls.
pub fn normalize_email(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty()
        || text.len() > 254
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let (local, domain) = text.rsplit_once('@')?;
    let valid = !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then(|| text.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").as_deref(),
            Some("ada@example.com")
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa mple.com",
            "ada@.com",
            "ada@example.com.",
            "a@b@c.com",
            "ada@exämple.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }
}
