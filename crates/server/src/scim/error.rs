//! [`ScimError`]: every way a `/scim/v2` request fails, answered once as an RFC 7644 §3.12
//! error body. Log-safe: details are fixed text, never the values sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::ErrorCode;

use crate::error::ApiError;
use crate::storage::{StorageError, USER_NAME_TAKEN};

/// The SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Why a SCIM request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    /// No bearer SCIM token was presented.
    #[error("a SCIM bearer token is required")]
    Unauthenticated,
    /// The token is unknown, malformed, expired, revoked, or not a SCIM token.
    #[error("the SCIM token is invalid, expired or revoked")]
    InvalidCredentials,
    /// Too many failures from this address or for this token.
    #[error("too many requests, retry later")]
    RateLimited,
    /// The filter is not in the supported subset or is malformed.
    #[error("{0}")]
    InvalidFilter(&'static str),
    /// A PATCH path is malformed or names an unsupported attribute.
    #[error("{0}")]
    InvalidPath(&'static str),
    /// A PATCH path with a filter selected nothing to change.
    #[error("the path selects no value")]
    NoTarget,
    /// A value is missing, of the wrong type or out of bounds.
    #[error("{0}")]
    InvalidValue(&'static str),
    /// The body is not a SCIM message of the expected kind.
    #[error("{0}")]
    InvalidSyntax(&'static str),
    /// A read-only or immutable attribute was changed.
    #[error("{0}")]
    Mutability(&'static str),
    /// A unique attribute (`userName`) is taken.
    #[error("userName is already taken in this org")]
    Uniqueness,
    /// The change conflicts with the org's state (e.g. it would remove the last Owner).
    #[error("{0}")]
    Conflict(&'static str),
    /// No such resource in the token's org.
    #[error("no such resource")]
    NotFound,
    /// The method is not supported on this endpoint.
    #[error("method not supported on this endpoint")]
    MethodNotAllowed,
    /// The operation is not implemented (searching all resource types at once).
    #[error("not implemented by this service provider")]
    NotImplemented,
    /// The body is larger than the server accepts.
    #[error("the request body is too large")]
    TooLarge,
    /// The body did not arrive in time.
    #[error("the request body did not arrive in time")]
    Timeout,
    /// An unexpected server-side failure (details only in the server log).
    #[error("internal error")]
    Internal,
}

impl ScimError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidFilter(_)
            | Self::InvalidPath(_)
            | Self::NoTarget
            | Self::InvalidValue(_)
            | Self::InvalidSyntax(_)
            | Self::Mutability(_) => StatusCode::BAD_REQUEST,
            Self::Uniqueness | Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 7644 `scimType`, for the errors that have one.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            Self::InvalidFilter(_) => Some("invalidFilter"),
            Self::InvalidPath(_) => Some("invalidPath"),
            Self::NoTarget => Some("noTarget"),
            Self::InvalidValue(_) => Some("invalidValue"),
            Self::InvalidSyntax(_) => Some("invalidSyntax"),
            Self::Mutability(_) => Some("mutability"),
            Self::Uniqueness => Some("uniqueness"),
            _ => None,
        }
    }

    /// The error body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status().as_u16().to_string(),
            "detail": self.to_string(),
        });
        if let Some(kind) = self.scim_type() {
            body["scimType"] = kind.into();
        }
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.body().to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::body::SCIM_CONTENT_TYPE),
        );
        if matches!(self, Self::Unauthenticated | Self::InvalidCredentials) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StorageError> for ScimError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Conflict(message) if message == USER_NAME_TAKEN => Self::Uniqueness,
            StorageError::Conflict(message) => Self::Conflict(message),
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::Internal
            }
        }
    }
}

/// From the shared helpers (`blocking`, `fail`): the codes they produce, in SCIM terms.
impl From<ApiError> for ScimError {
    fn from(err: ApiError) -> Self {
        match err.code {
            ErrorCode::Unauthenticated => Self::Unauthenticated,
            ErrorCode::InvalidCredentials => Self::InvalidCredentials,
            ErrorCode::RateLimited => Self::RateLimited,
            ErrorCode::NotFound => Self::NotFound,
            ErrorCode::PayloadTooLarge => Self::TooLarge,
            ErrorCode::RequestTimeout => Self::Timeout,
            ErrorCode::Conflict => Self::Conflict("conflicts with the current state"),
            _ => Self::Internal,
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ScimError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        Self::NotFound
    }
}

impl From<axum::extract::rejection::QueryRejection> for ScimError {
    fn from(_: axum::extract::rejection::QueryRejection) -> Self {
        Self::InvalidValue("query parameters are invalid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_rfc7644() {
        let body = ScimError::InvalidFilter("unsupported filter").body();
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
        assert_eq!(body["status"], "400");
        assert_eq!(body["scimType"], "invalidFilter");
        assert!(ScimError::NotFound.body().get("scimType").is_none());
        assert_eq!(ScimError::Uniqueness.status(), StatusCode::CONFLICT);
    }
}
