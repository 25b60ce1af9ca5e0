//! SAML 2.0 Web Browser SSO as a service provider: an `AuthnRequest` sent by the HTTP-Redirect
//! binding, the `Response` received by HTTP-POST, and the SP metadata an IdP imports.
//!
//! Files: [`c14n`] (exclusive canonicalization), [`dsig`] (the enveloped signature profile,
//! with the org's pinned certificate), [`response`] (what a `Response` must prove before
//! anyone is signed in), [`request`] (the `AuthnRequest` and the metadata).
//!
//! The rule that keeps signature wrapping out by construction: the signature is checked over
//! the assertion's canonical bytes, and every fact (issuer, subject, audience, recipient,
//! times, attributes) is then read from a fresh parse of exactly those bytes, never from the
//! document that arrived. See ADR 0016.

pub mod c14n;
pub mod dsig;
pub mod request;
pub mod response;

use edgekeep_protocol::ErrorCode;

use crate::error::ApiError;
pub use dsig::{DsigError, KeyError, SigningKey};
pub use response::{SamlIdentity, SpEndpoints, verify_response};

/// The ceremony kind of a SAML sign-in in progress.
pub const CEREMONY_KIND: &str = "saml";
/// The session method of a session started by a SAML assertion.
pub const SESSION_METHOD: &str = "saml";
/// The cookie that binds an attempt to the browser that started it. `SameSite=None`, because
/// the IdP's form posts the response cross-site.
pub const BINDING_COOKIE: &str = "__Host-ek_saml";

/// Why a SAML sign-in was refused. Each maps to an error code and a fixed audit reason; none
/// carries a value from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SamlRejection {
    /// `SAMLResponse` is missing, not base64, not UTF-8, too large or not XML (DTDs refused).
    #[error("malformed response")]
    Malformed,
    /// The attempt is unknown, used, expired, or not bound to this browser.
    #[error("unknown attempt")]
    UnknownAttempt,
    /// The org has no SAML identity provider (any more).
    #[error("not configured")]
    NotConfigured,
    /// The org's SAML configuration changed during the attempt.
    #[error("configuration changed")]
    ConfigChanged,
    /// The IdP answered with a status other than success.
    #[error("provider refused")]
    ProviderRefused,
    /// The response is not a `samlp:Response` with exactly one assertion.
    #[error("response structure")]
    Structure,
    /// The assertion is encrypted; encrypted assertions are not supported.
    #[error("encrypted assertion")]
    Encrypted,
    /// The signature of the assertion was refused.
    #[error("signature")]
    Signature(DsigError),
    /// The assertion (or response) names another issuer.
    #[error("issuer")]
    Issuer,
    /// The assertion is not for this service provider.
    #[error("audience")]
    Audience,
    /// The assertion's bearer confirmation is for another endpoint.
    #[error("recipient")]
    Recipient,
    /// The response or assertion answers another request.
    #[error("in response to")]
    InResponseTo,
    /// The assertion has expired.
    #[error("expired")]
    Expired,
    /// The assertion is not valid yet.
    #[error("not yet valid")]
    NotYetValid,
    /// No usable bearer subject confirmation, authentication statement or name.
    #[error("assertion content")]
    Content,
    /// No email in the assertion.
    #[error("email missing")]
    EmailMissing,
    /// The email's domain is not one the org allows.
    #[error("domain not allowed")]
    DomainNotAllowed,
    /// The person could not be admitted.
    #[error("admission")]
    Admission(crate::identity::Admission),
}

impl SamlRejection {
    /// The error code answered.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Malformed => ErrorCode::BadRequest,
            Self::UnknownAttempt => ErrorCode::CeremonyInvalid,
            Self::NotConfigured => ErrorCode::IdpNotConfigured,
            Self::EmailMissing | Self::DomainNotAllowed => ErrorCode::IdpEmailRejected,
            Self::ConfigChanged | Self::ProviderRefused | Self::Admission(_) => {
                ErrorCode::IdpLoginRejected
            }
            Self::Structure
            | Self::Encrypted
            | Self::Signature(_)
            | Self::Issuer
            | Self::Audience
            | Self::Recipient
            | Self::InResponseTo
            | Self::Expired
            | Self::NotYetValid
            | Self::Content => ErrorCode::AssertionInvalid,
        }
    }

    /// The reason recorded in the audit trail after the code (`assertion_invalid:digest`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownAttempt => "unknown_attempt",
            Self::NotConfigured => "not_configured",
            Self::ConfigChanged => "config_changed",
            Self::ProviderRefused => "provider_refused",
            Self::Structure => "structure",
            Self::Encrypted => "encrypted",
            Self::Signature(error) => match error {
                DsigError::Unsigned => "unsigned",
                DsigError::Structure => "signature_structure",
                DsigError::Reference => "reference",
                DsigError::Algorithm => "algorithm",
                DsigError::Canonicalization => "canonicalization",
                DsigError::Digest => "digest",
                DsigError::Signature => "signature",
            },
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Recipient => "recipient",
            Self::InResponseTo => "in_response_to",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Content => "content",
            Self::EmailMissing => "email_missing",
            Self::DomainNotAllowed => "domain_not_allowed",
            Self::Admission(admission) => admission.reason(),
        }
    }

    /// The audit outcome: `code:reason`.
    pub fn outcome(self) -> String {
        format!("{}:{}", self.code().as_str(), self.reason())
    }

    /// The message answered: fixed text, never a value from the message.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "the SAML response is missing or is not a well-formed SAML document",
            Self::UnknownAttempt => {
                "the sign-in attempt is unknown, used, expired or from another browser; start again"
            }
            Self::NotConfigured => "this org has no SAML identity provider configured",
            Self::ConfigChanged => {
                "the org's SAML identity provider changed during sign-in; start again"
            }
            Self::ProviderRefused => "the identity provider refused the sign-in",
            Self::Structure => "the SAML response must hold exactly one assertion",
            Self::Encrypted => {
                "encrypted assertions are not supported; have the IdP sign them instead"
            }
            Self::Signature(DsigError::Unsigned) => "the assertion is not signed",
            Self::Signature(_) => {
                "the assertion's signature does not verify with the org's IdP certificate"
            }
            Self::Issuer => "the assertion is from another identity provider",
            Self::Audience => "the assertion is not for this service provider",
            Self::Recipient => "the assertion is for another endpoint",
            Self::InResponseTo => "the assertion answers another sign-in request",
            Self::Expired => "the assertion has expired",
            Self::NotYetValid => "the assertion is not valid yet",
            Self::Content => {
                "the assertion lacks a bearer confirmation, authentication statement or name"
            }
            Self::EmailMissing => "the identity provider gave no email",
            Self::DomainNotAllowed => "the email's domain is not allowed by this org",
            Self::Admission(admission) => admission.message(),
        }
    }
}

impl From<DsigError> for SamlRejection {
    fn from(error: DsigError) -> Self {
        Self::Signature(error)
    }
}

impl From<crate::identity::Admission> for SamlRejection {
    fn from(admission: crate::identity::Admission) -> Self {
        Self::Admission(admission)
    }
}

impl From<SamlRejection> for ApiError {
    fn from(rejection: SamlRejection) -> Self {
        ApiError::new(rejection.code(), rejection.message())
    }
}

/// The `Set-Cookie` value binding an attempt (its request id) to this browser.
pub fn binding_cookie(request_id: &str, lifetime: std::time::Duration) -> String {
    format!(
        "{BINDING_COOKIE}={request_id}; Path=/; Secure; HttpOnly; SameSite=None; Max-Age={}",
        lifetime.as_secs()
    )
}

/// The `Set-Cookie` value clearing the binding cookie.
pub fn clear_binding_cookie() -> &'static str {
    "__Host-ek_saml=; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=0"
}
