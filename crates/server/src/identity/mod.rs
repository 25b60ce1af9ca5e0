//! People and their credentials: sessions bound to one org (cookies, CSRF, step-up),
//! invitations, and passkeys. API keys stay for backends and CI; people use sessions.
//!
//! Files: [`session`] (session secrets, cookies, CSRF tokens, timeouts), [`csrf`] (the
//! same-origin checks of cookie-authenticated writes), [`passkeys`] (WebAuthn registration and
//! authentication ceremonies, JSON in and JSON out, no storage or HTTP of their own), [`oidc`]
//! (sign-in through an org's OpenID Provider: discovery, authorization code with PKCE, ID token
//! checks, who may enter), [`saml`] (SAML 2.0 Web Browser SSO as a service provider, feature
//! `saml`). [`Admission`] is what both identity providers share: who may enter once the
//! provider has vouched for an email.

pub mod csrf;
pub mod oidc;
pub mod passkeys;
#[cfg(feature = "saml")]
pub mod saml;
pub mod session;

/// Whether an email (normalized) is of one of the org's allowed domains (exact match).
pub fn domain_allowed(email: &str, allowed_domains: &[String]) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(_, domain)| allowed_domains.iter().any(|allowed| allowed == domain))
}

/// The display name of a person created by a sign-in: the provider's name when it is a valid
/// name, else the email's local part.
pub fn display_name(provided: Option<&str>, email: &str) -> String {
    provided
        .map(str::trim)
        .filter(|name| edgekeep_protocol::api::valid_name(name))
        .map_or_else(
            || email.split('@').next().unwrap_or(email).to_owned(),
            str::to_owned,
        )
}

/// Why a person an identity provider vouched for was not let in. Shared by OIDC and SAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Admission {
    /// Nobody with this email is a member of the org or invited into it.
    #[error("not invited")]
    NotInvited,
    /// The person already has an account but is not a member of the org: an identity provider
    /// cannot add an existing person to its org.
    #[error("existing person not a member")]
    ExistingPersonNotMember,
    /// The person is deactivated.
    #[error("deactivated")]
    Deactivated,
    /// The person is linked to another subject at this provider: an email moved to another
    /// account at the provider does not carry the person with it.
    #[error("linked to another subject")]
    OtherSubject,
}

impl Admission {
    /// The audit reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotInvited => "not_invited",
            Self::ExistingPersonNotMember => "existing_person_not_member",
            Self::Deactivated => "deactivated",
            Self::OtherSubject => "linked_to_another_subject",
        }
    }

    /// The message answered.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotInvited => "nobody with this email is a member of or invited into this org",
            Self::ExistingPersonNotMember => {
                "this person already has an account and is not a member of this org: accept the \
                 invitation signed in with a passkey"
            }
            Self::Deactivated => "this person is deactivated",
            Self::OtherSubject => {
                "this person signs in through another account at this identity provider"
            }
        }
    }
}

/// A new person's WebAuthn user handle: a random UUID v4 in text, never derived from the id or
/// the email.
pub fn new_user_handle(rng: &dyn ring::rand::SecureRandom) -> Result<String, IdentityError> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| IdentityError::Random)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Why an identity operation failed. Carries no user data.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The random generator failed.
    #[error("random generator failed")]
    Random,
}
