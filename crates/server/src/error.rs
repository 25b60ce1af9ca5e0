//! Errors: [`ApiError`] for HTTP answers, [`ServerError`] for starting and administering.

use std::borrow::Cow;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::{ErrorBody, ErrorCode};

use crate::storage::StorageError;

/// An error answered to an API caller as `{code, message}`. Log-safe by construction: the
/// message is fixed text chosen by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: Cow<'static, str>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `bad_request` with `message`.
    pub fn bad_request(message: &'static str) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `not_found`.
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such resource in this org")
    }

    /// `forbidden` with `message`.
    pub fn forbidden(message: &'static str) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `internal`. Logs where it was raised (the source location only: nothing of the request),
    /// so an operator can find the cause of a 500 the client sees only as `internal error`.
    #[track_caller]
    pub fn internal() -> Self {
        tracing::error!(at = %std::panic::Location::caller(), "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        let message = match code {
            ErrorCode::BadRequest => "bad request",
            ErrorCode::Unauthenticated => "credentials required",
            ErrorCode::InvalidCredentials => "credentials are invalid, expired or revoked",
            ErrorCode::Forbidden => "not allowed",
            ErrorCode::NotFound => "no such resource in this org",
            ErrorCode::MethodNotAllowed => "method not allowed on this path",
            ErrorCode::Conflict => "conflicts with the current state",
            ErrorCode::RateLimited => "too many requests, retry later",
            ErrorCode::ProofMissing => "request proof required",
            ErrorCode::ProofInvalid => "request proof is invalid",
            ErrorCode::ProofUnsupportedAlgorithm => "request proof algorithm must be ES256",
            ErrorCode::ProofMismatch => "request proof was made for another request",
            ErrorCode::ProofStale => "request proof is too old or too new",
            ErrorCode::ProofReplayed => "request proof was already used",
            ErrorCode::BootstrapTokenInvalid => "bootstrap token is invalid",
            ErrorCode::BootstrapTokenUsed => "bootstrap token was already used",
            ErrorCode::BootstrapTokenExpired => "bootstrap token has expired",
            ErrorCode::RefreshTokenReused => {
                "refresh token was already used; the device's credentials are revoked"
            }
            ErrorCode::DeviceRevoked => "device is revoked",
            ErrorCode::ArtifactMalformed => "artifact is malformed",
            ErrorCode::PayloadTooLarge => "request body or artifact is too large",
            ErrorCode::ArtifactSignatureInvalid => "artifact signature does not verify",
            ErrorCode::PublisherKeyUnknown => {
                "artifact is not signed by a registered publisher key of this org"
            }
            ErrorCode::ArtifactTampered => "artifact bytes do not match the manifest",
            ErrorCode::ArtifactExpired => "artifact manifest has expired",
            ErrorCode::VersionNotApproved => "model version is not approved",
            ErrorCode::NotAssigned => "device is not assigned this artifact",
            ErrorCode::TelemetryInvalid => "telemetry batch is not valid",
            ErrorCode::RangeNotSatisfiable => "requested range is outside the artifact",
            ErrorCode::RequestTimeout => "request body did not arrive in time",
            ErrorCode::CsrfRejected => "missing or wrong CSRF token, or a cross-origin request",
            ErrorCode::StepUpRequired => "confirm with your passkey to do this",
            ErrorCode::InvitationInvalid => "the invitation is not valid",
            ErrorCode::CeremonyInvalid => {
                "the sign-in attempt expired or was already used; start again"
            }
            ErrorCode::PasskeyRejected => "the passkey response was not accepted",
            ErrorCode::IdpNotConfigured => "this org has no identity provider configured",
            ErrorCode::IdpUnavailable => {
                "the identity provider could not be reached or answered wrongly"
            }
            ErrorCode::IdTokenInvalid => "the identity provider's ID token does not verify",
            ErrorCode::AssertionInvalid => "the identity provider's SAML assertion does not verify",
            ErrorCode::IdpEmailRejected => {
                "the identity provider's email is unverified or its domain is not allowed"
            }
            ErrorCode::IdpLoginRejected => "the sign-in through the identity provider was refused",
            ErrorCode::Unavailable => "the database cannot be reached for now; retry later",
            ErrorCode::Internal => "internal error",
        };
        Self::new(code, message)
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Conflict(message) => Self::new(ErrorCode::Conflict, message),
            StorageError::Unavailable(why) => {
                tracing::warn!(error = %why, "database unavailable");
                ErrorCode::Unavailable.into()
            }
            other => {
                tracing::error!(error = ?other, "storage failure");
                Self::internal()
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
        if crate::net::BodyDeadlineExceeded::caused(&rejection) {
            return ErrorCode::RequestTimeout.into();
        }
        match rejection {
            JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(
                FailedToBufferBody::LengthLimitError(_),
            )) => ErrorCode::PayloadTooLarge.into(),
            _ => Self::bad_request("request body is not valid JSON for this endpoint"),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> Self {
        Self::bad_request("query parameters are invalid")
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        Self::bad_request("path parameters are invalid")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.code,
            message: self.message.into_owned(),
        };
        (status, Json(body)).into_response()
    }
}

/// Why the server could not be initialized, started or administered.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file or socket operation failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The TLS configuration could not be built or loaded.
    #[error("TLS setup failed: {0}")]
    Tls(&'static str),
    /// The data folder already holds a database.
    #[error("the data folder is already initialized")]
    AlreadyInitialized,
    /// The data folder has not been initialized.
    #[error("the data folder is not initialized (run `edgekeep-server init`)")]
    NotInitialized,
    /// The server secret file is missing or has the wrong size.
    #[error("the server secret is invalid")]
    BadSecret,
    /// A name or argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

impl ServerError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { context, source }
    }
}
