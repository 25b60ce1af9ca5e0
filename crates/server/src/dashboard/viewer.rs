//! Who is looking at a page: a person signed in with a session of one org, with the same
//! permissions the JSON API gives that session. Without a live session a page redirects to
//! `/login`; API keys do not open pages.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{Permission, Role};

use crate::api::AppState;
use crate::auth::{ApiCaller, CallerCredential};
use crate::identity::session;

/// A signed-in person looking at a page.
pub struct Viewer {
    /// The session's caller, as the JSON API sees it.
    pub caller: ApiCaller,
    /// The session's CSRF token, for the page's script to send with writes.
    pub csrf_token: String,
    /// The org's name.
    pub org_name: String,
    /// The member's role.
    pub role: Role,
}

impl Viewer {
    /// Whether the viewer may do what `permission` allows.
    pub fn may(&self, permission: Permission) -> bool {
        self.caller.has(permission)
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if session::presented_secret(&parts.headers).is_none() {
            return Err(Redirect::to("/login").into_response());
        }
        let caller = match ApiCaller::from_request_parts(parts, state).await {
            Ok(caller) => caller,
            Err(error)
                if matches!(
                    error.code,
                    ErrorCode::Unauthenticated | ErrorCode::InvalidCredentials
                ) =>
            {
                return Err(Redirect::to("/login").into_response());
            }
            Err(error) => return Err(super::pages::error_page(&error)),
        };
        let CallerCredential::Session { hash, .. } = &caller.credential else {
            return Err(Redirect::to("/login").into_response());
        };
        let csrf_token = state.secret().csrf_key().token(hash);
        let org_id = caller.org_id.clone();
        let org = state
            .blocking(move |s| s.org(&org_id))
            .await
            .map_err(|error| super::pages::error_page(&error))?
            .ok_or_else(|| Redirect::to("/login").into_response())?;
        Ok(Self {
            role: caller.role,
            caller,
            csrf_token,
            org_name: org.name,
        })
    }
}
