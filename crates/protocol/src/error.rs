//! The closed set of API error codes and the JSON error body.

use serde::{Deserialize, Serialize};

/// Every error the `/v1` API can return. Serialized as `snake_case` strings.
///
/// The set is closed: clients may match on it exhaustively. Codes name the reason, never the
/// value that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or parameters are malformed or out of bounds.
    BadRequest,
    /// No credentials were presented.
    Unauthenticated,
    /// The API key or access token is unknown, expired, revoked or malformed.
    InvalidCredentials,
    /// The caller is authenticated but its role or key scope does not allow the action.
    Forbidden,
    /// The resource does not exist in the caller's org.
    NotFound,
    /// The path exists but not with this HTTP method.
    MethodNotAllowed,
    /// The request conflicts with the current state (e.g. removing the last Owner).
    Conflict,
    /// Too many requests or authentication failures from this org or address.
    RateLimited,
    /// A device request carries no proof of possession.
    ProofMissing,
    /// The proof is malformed or its signature does not verify against the device key.
    ProofInvalid,
    /// The proof names an algorithm other than ES256.
    ProofUnsupportedAlgorithm,
    /// The proof was made for another method, URL or token.
    ProofMismatch,
    /// The proof's time is outside the freshness window.
    ProofStale,
    /// The proof's unique id was already seen.
    ProofReplayed,
    /// The bootstrap token is unknown, belongs to another org, or is malformed.
    BootstrapTokenInvalid,
    /// The bootstrap token was already used.
    BootstrapTokenUsed,
    /// The bootstrap token has expired.
    BootstrapTokenExpired,
    /// A refresh token that was already rotated was presented again; the family is revoked.
    RefreshTokenReused,
    /// The device (or its group) has been revoked.
    DeviceRevoked,
    /// The artifact bundle does not have the artifact layout, or its manifest is malformed.
    ArtifactMalformed,
    /// The artifact or request body is larger than the server accepts.
    PayloadTooLarge,
    /// The manifest is unsigned or its signature does not verify against the named publisher key.
    ArtifactSignatureInvalid,
    /// The manifest is signed by a key that is not a registered, unrevoked publisher key of this org.
    PublisherKeyUnknown,
    /// The ciphertext or the decrypted model does not match the lengths and hashes in the manifest.
    ArtifactTampered,
    /// The manifest's expiry has passed.
    ArtifactExpired,
    /// The model version has not been approved for rollout.
    VersionNotApproved,
    /// The device is not assigned this artifact by any rollout.
    NotAssigned,
    /// A telemetry batch holds an undeclared field, a value of the wrong type or out of bounds, or a model unknown to the org.
    TelemetryInvalid,
    /// The requested byte range lies outside the artifact.
    RangeNotSatisfiable,
    /// The request body did not arrive within the server's time limit.
    RequestTimeout,
    /// A request authenticated by a session cookie lacks a matching CSRF token or comes from another origin.
    CsrfRejected,
    /// The action needs a fresh passkey assertion (step-up) within the last five minutes.
    StepUpRequired,
    /// The invitation is unknown, used, revoked, expired, or for another email.
    InvitationInvalid,
    /// The login or registration ceremony is unknown, used, expired, or for another purpose.
    CeremonyInvalid,
    /// The passkey response does not verify (origin, challenge, signature, user verification or credential).
    PasskeyRejected,
    /// The org has no identity provider configured (or does not exist).
    IdpNotConfigured,
    /// The org's identity provider could not be reached or answered something unusable (discovery, keys, token endpoint).
    IdpUnavailable,
    /// The identity provider's ID token does not verify: signature, issuer, audience, expiry or nonce.
    IdTokenInvalid,
    /// The SAML assertion does not verify: signature, issuer, audience, recipient, request, validity window or replay.
    AssertionInvalid,
    /// The identity provider's email is not verified, or its domain is not allowed by the org.
    IdpEmailRejected,
    /// The identity provider refused the sign-in, or the person is not a member of the org, not invited, or deactivated.
    IdpLoginRejected,
    /// The server cannot reach its database for now; retry later.
    Unavailable,
    /// An unexpected server-side failure. Details are only in the server log.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::BadRequest,
        Self::Unauthenticated,
        Self::InvalidCredentials,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::RateLimited,
        Self::ProofMissing,
        Self::ProofInvalid,
        Self::ProofUnsupportedAlgorithm,
        Self::ProofMismatch,
        Self::ProofStale,
        Self::ProofReplayed,
        Self::BootstrapTokenInvalid,
        Self::BootstrapTokenUsed,
        Self::BootstrapTokenExpired,
        Self::RefreshTokenReused,
        Self::DeviceRevoked,
        Self::ArtifactMalformed,
        Self::PayloadTooLarge,
        Self::ArtifactSignatureInvalid,
        Self::PublisherKeyUnknown,
        Self::ArtifactTampered,
        Self::ArtifactExpired,
        Self::VersionNotApproved,
        Self::NotAssigned,
        Self::TelemetryInvalid,
        Self::RangeNotSatisfiable,
        Self::RequestTimeout,
        Self::CsrfRejected,
        Self::StepUpRequired,
        Self::InvitationInvalid,
        Self::CeremonyInvalid,
        Self::PasskeyRejected,
        Self::IdpNotConfigured,
        Self::IdpUnavailable,
        Self::IdTokenInvalid,
        Self::AssertionInvalid,
        Self::IdpEmailRejected,
        Self::IdpLoginRejected,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The HTTP status the server answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest | Self::ArtifactMalformed => 400,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::RangeNotSatisfiable => 416,
            Self::ArtifactSignatureInvalid
            | Self::PublisherKeyUnknown
            | Self::ArtifactTampered
            | Self::ArtifactExpired
            | Self::TelemetryInvalid => 422,
            Self::Unauthenticated
            | Self::InvalidCredentials
            | Self::ProofMissing
            | Self::ProofInvalid
            | Self::ProofUnsupportedAlgorithm
            | Self::ProofMismatch
            | Self::ProofStale
            | Self::ProofReplayed
            | Self::BootstrapTokenInvalid
            | Self::BootstrapTokenUsed
            | Self::BootstrapTokenExpired
            | Self::RefreshTokenReused
            | Self::DeviceRevoked
            | Self::InvitationInvalid
            | Self::CeremonyInvalid
            | Self::PasskeyRejected
            | Self::IdTokenInvalid
            | Self::AssertionInvalid => 401,
            Self::Forbidden
            | Self::NotAssigned
            | Self::CsrfRejected
            | Self::StepUpRequired
            | Self::IdpEmailRejected
            | Self::IdpLoginRejected => 403,
            Self::NotFound | Self::IdpNotConfigured => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict | Self::VersionNotApproved => 409,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::IdpUnavailable => 502,
            Self::Unavailable => 503,
        }
    }

    /// The wire name of the code (`"proof_replayed"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::ProofMissing => "proof_missing",
            Self::ProofInvalid => "proof_invalid",
            Self::ProofUnsupportedAlgorithm => "proof_unsupported_algorithm",
            Self::ProofMismatch => "proof_mismatch",
            Self::ProofStale => "proof_stale",
            Self::ProofReplayed => "proof_replayed",
            Self::BootstrapTokenInvalid => "bootstrap_token_invalid",
            Self::BootstrapTokenUsed => "bootstrap_token_used",
            Self::BootstrapTokenExpired => "bootstrap_token_expired",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::DeviceRevoked => "device_revoked",
            Self::ArtifactMalformed => "artifact_malformed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ArtifactSignatureInvalid => "artifact_signature_invalid",
            Self::PublisherKeyUnknown => "publisher_key_unknown",
            Self::ArtifactTampered => "artifact_tampered",
            Self::ArtifactExpired => "artifact_expired",
            Self::VersionNotApproved => "version_not_approved",
            Self::NotAssigned => "not_assigned",
            Self::TelemetryInvalid => "telemetry_invalid",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::RequestTimeout => "request_timeout",
            Self::CsrfRejected => "csrf_rejected",
            Self::StepUpRequired => "step_up_required",
            Self::InvitationInvalid => "invitation_invalid",
            Self::CeremonyInvalid => "ceremony_invalid",
            Self::PasskeyRejected => "passkey_rejected",
            Self::IdpNotConfigured => "idp_not_configured",
            Self::IdpUnavailable => "idp_unavailable",
            Self::IdTokenInvalid => "id_token_invalid",
            Self::AssertionInvalid => "assertion_invalid",
            Self::IdpEmailRejected => "idp_email_rejected",
            Self::IdpLoginRejected => "idp_login_rejected",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every non-2xx response: `{"code": "...", "message": "..."}`.
///
/// `message` is for humans and is log-safe: it never contains tokens, keys or user data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_name_matches_serde() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn error_body_round_trips() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"proof_stale","message":"too old"}"#).unwrap();
        assert_eq!(body.code, ErrorCode::ProofStale);
        assert_eq!(body.code.http_status(), 401);
    }
}
