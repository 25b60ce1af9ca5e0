//! [`ScimCaller`]: a request authenticated by an org SCIM token (`Authorization: Bearer
//! ekscim_...`). Nothing else authenticates on `/scim/v2`: API keys, sessions and device
//! tokens have other prefixes and are refused as invalid. Failures are counted and throttled
//! like every other credential ([`crate::auth::fail`]); rejections of a known token (revoked,
//! expired) are audited in its org.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::token::{ParsedToken, TokenKind};

use super::error::ScimError;
use crate::api::AppState;
use crate::auth::{KnownCredential, address_key, fail, request_id, request_origin};
use crate::storage::AuditEvent;

/// The path prefix of the SCIM service.
pub const SCIM_PREFIX: &str = "/scim/v2";

/// A SCIM request's caller: the token and the org it provisions.
#[derive(Debug, Clone)]
pub struct ScimCaller {
    /// The org every read and write is scoped to.
    pub org_id: String,
    /// The token.
    pub token_id: String,
    /// The request id.
    pub request_id: String,
    /// The service's base URL (`https://host/scim/v2`) for `meta.location`.
    pub base: String,
}

impl ScimCaller {
    /// The audit actor: `scim_token:<id>`.
    pub fn actor(&self) -> String {
        format!("scim_token:{}", self.token_id)
    }

    /// An audit event by this caller in its org.
    pub fn event(&self, action: &str, target: String, at: i64) -> AuditEvent {
        AuditEvent {
            org_id: self.org_id.clone(),
            actor: self.actor(),
            action: action.to_owned(),
            target,
            outcome: "ok".to_owned(),
            request_id: self.request_id.clone(),
            at,
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("Bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for ScimCaller {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let addr = address_key(&parts.extensions);
        let text = bearer(parts).ok_or(ScimError::Unauthenticated)?;
        let token = ParsedToken::parse(text, TokenKind::Scim)
            .map_err(|_| fail(state, &addr, None, ErrorCode::InvalidCredentials))?;
        let hash = token.hash();
        let found = state.blocking(move |s| s.scim_token_by_hash(&hash)).await?;
        let Some(record) = found else {
            return Err(fail(state, &addr, None, ErrorCode::InvalidCredentials).into());
        };
        let now = crate::now();
        let expired = record.expires_at.is_some_and(|at| at <= now);
        if record.revoked_at.is_some() || expired {
            let subject = format!("scim_token:{}", record.id);
            let known = KnownCredential {
                subject: &subject,
                org_id: &record.org_id,
            };
            let error = fail(state, &addr, Some(known), ErrorCode::InvalidCredentials);
            if error.code != ErrorCode::RateLimited {
                let event = AuditEvent {
                    org_id: record.org_id.clone(),
                    actor: subject.clone(),
                    action: "scim_token.auth.rejected".to_owned(),
                    target: subject,
                    outcome: if expired { "expired" } else { "revoked" }.to_owned(),
                    request_id: request_id(&parts.extensions),
                    at: now,
                };
                state.audit_rejection(event).await?;
            }
            return Err(error.into());
        }
        if state.should_touch_key(&record.id, now) {
            let (org_id, id) = (record.org_id.clone(), record.id.clone());
            let storage = std::sync::Arc::clone(state.storage());
            tokio::task::spawn_blocking(move || {
                if let Err(err) = storage.touch_scim_token(&org_id, &id, now) {
                    tracing::warn!(error = %err, "could not record SCIM token use");
                }
            });
        }
        Ok(Self {
            org_id: record.org_id,
            token_id: record.id,
            request_id: request_id(&parts.extensions),
            base: format!("{}{SCIM_PREFIX}", request_origin(state, parts)),
        })
    }
}
