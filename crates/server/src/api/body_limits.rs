//! Per-route request-body limits, applied before any handler reads a byte: a size refused early
//! on `Content-Length`, and a deadline for the whole body (a slow sender cannot hold a request).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::artifact::{BUNDLE_MAGIC, CONTENT_KEY_LEN, MAX_MANIFEST_LEN};

use super::AppState;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::net::DeadlineBody;

/// The path of artifact uploads, the one route with large bodies.
pub const UPLOAD_PATH: &str = "/v1/artifacts";

/// How large a body a request may carry and how long it may take to arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPolicy {
    /// Largest body, bytes.
    pub max_bytes: u64,
    /// Time allowed for the whole body.
    pub deadline: Duration,
}

/// The largest upload bundle: the largest ciphertext plus the bundle header.
pub fn max_upload_bytes(config: &ServerConfig) -> u64 {
    config.max_artifact_bytes + (BUNDLE_MAGIC.len() + 4 + MAX_MANIFEST_LEN + CONTENT_KEY_LEN) as u64
}

impl BodyPolicy {
    /// The policy of a request, given its declared length when it has one.
    pub fn of(config: &ServerConfig, method: &Method, path: &str, declared: Option<u64>) -> Self {
        let limits = &config.connections;
        if method == Method::POST && path == UPLOAD_PATH {
            let max_bytes = max_upload_bytes(config);
            let expected = declared.unwrap_or(max_bytes).min(max_bytes);
            let transfer = expected / limits.min_upload_rate.max(1);
            Self {
                max_bytes,
                deadline: limits.body_timeout + Duration::from_secs(transfer),
            }
        } else {
            Self {
                max_bytes: limits.max_json_body as u64,
                deadline: limits.body_timeout,
            }
        }
    }
}

/// The body length a request declares, if any.
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Middleware: refuses a declared body over the route's limit with 413 before reading it, and
/// gives the body its deadline. Uploads are refused by their handler instead, right after
/// authentication and still before the body is read, so that the refusal is audited.
pub async fn limit_bodies(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let declared = declared_length(request.headers());
    let policy = BodyPolicy::of(
        state.config(),
        request.method(),
        request.uri().path(),
        declared,
    );
    if declared.is_some_and(|len| len > policy.max_bytes) && request.uri().path() != UPLOAD_PATH {
        if request.uri().path().starts_with(crate::scim::SCIM_PREFIX) {
            return crate::scim::ScimError::TooLarge.into_response();
        }
        return ApiError::from(ErrorCode::PayloadTooLarge).into_response();
    }
    let deadline = tokio::time::Instant::now() + policy.deadline;
    let request = request.map(|body| Body::new(DeadlineBody::new(body, deadline)));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_get_time_for_their_size_and_json_routes_a_fixed_limit() {
        let config = ServerConfig::new("/tmp/x", "127.0.0.1:0".parse().unwrap());
        let json = BodyPolicy::of(&config, &Method::POST, "/v1/rollouts", Some(10));
        assert_eq!(json.max_bytes, 64 * 1024);
        assert_eq!(json.deadline, Duration::from_secs(10));
        let small = BodyPolicy::of(&config, &Method::POST, UPLOAD_PATH, Some(1024));
        let large = BodyPolicy::of(&config, &Method::POST, UPLOAD_PATH, Some(256 << 20));
        assert!(small.deadline < large.deadline);
        assert_eq!(large.deadline, Duration::from_secs(10 + 1024));
        assert!(large.max_bytes > 256 << 20);
        let undeclared = BodyPolicy::of(&config, &Method::POST, UPLOAD_PATH, None);
        assert!(undeclared.deadline >= large.deadline);
    }
}
