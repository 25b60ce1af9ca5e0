//! SCIM bodies in and out: `application/scim+json` (and `application/json`) parsed with the
//! router's JSON size limit, answers sent as `application/scim+json`.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ScimError;
use crate::api::AppState;

/// The SCIM media type (RFC 7644 §8.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A SCIM request body: a JSON object sent as `application/scim+json` or `application/json`,
/// at most the configured JSON body size.
#[derive(Debug, Clone)]
pub struct ScimBody(pub serde_json::Map<String, serde_json::Value>);

fn is_json_media_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(SCIM_CONTENT_TYPE)
        || essence.eq_ignore_ascii_case("application/json")
}

impl FromRequest<AppState> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ScimError> {
        if !is_json_media_type(request.headers()) {
            return Err(ScimError::InvalidSyntax(
                "the body must be application/scim+json",
            ));
        }
        let limit = state.config().connections.max_json_body;
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|err| {
                if crate::net::BodyDeadlineExceeded::caused(&err) {
                    ScimError::Timeout
                } else {
                    ScimError::TooLarge
                }
            })?;
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ScimError::InvalidSyntax("the body must be a JSON object")),
            Err(_) => Err(ScimError::InvalidSyntax("the body is not valid JSON")),
        }
    }
}

/// A SCIM answer: status, JSON body, `application/scim+json`, and a `Location` for created
/// resources.
#[derive(Debug, Clone)]
pub struct ScimResponse {
    /// Status.
    pub status: StatusCode,
    /// Body.
    pub body: serde_json::Value,
}

impl ScimResponse {
    /// `200 OK` with `body`.
    pub fn ok(body: serde_json::Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
        }
    }

    /// `201 Created` with `body`.
    pub fn created(body: serde_json::Value) -> Self {
        Self {
            status: StatusCode::CREATED,
            body,
        }
    }
}

impl IntoResponse for ScimResponse {
    fn into_response(self) -> Response {
        let location = self.body["meta"]["location"]
            .as_str()
            .and_then(|l| HeaderValue::from_str(l).ok());
        let mut response = (self.status, self.body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        if let (StatusCode::CREATED, Some(location)) = (self.status, location) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}
