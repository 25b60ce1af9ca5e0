//! The monitoring dashboard: server-rendered HTML pages over the same data and the same
//! permission checks as the JSON API, served by the server itself (ADR 0017).
//!
//! Pages render on the server with `maud` (escaped by construction); charts are SVG drawn here;
//! the one script (`assets/app.js`) runs the WebAuthn ceremonies and sends the JSON API's
//! writes with the session's CSRF token. Every answer carries a strict Content-Security-Policy
//! (no inline script or style, `frame-ancestors 'none'`).
//!
//! Files: [`viewer`] (who is looking: a session, or a redirect to sign in), [`layout`] (the page
//! shell), [`charts`] (SVG), [`assets`] (the embedded script and style sheet), [`pages`] (one
//! module per page).

pub mod assets;
pub mod charts;
pub mod layout;
pub mod pages;
pub mod viewer;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use crate::api::AppState;

/// The Content-Security-Policy of every dashboard answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login::page))
        .route("/invite", get(pages::login::invite))
        .route("/fleet", get(pages::fleet::page))
        .route("/rollouts", get(pages::rollouts::page))
        .route("/models", get(pages::models::page))
        .route("/devices", get(pages::devices::page))
        .route("/audit", get(pages::audit::page))
        .route("/people", get(pages::people::page))
        .route("/status", get(pages::status::page))
        .route("/status.json", get(pages::status::json))
        .route("/assets/{name}", get(assets::serve))
        .layer(middleware::from_fn(security_headers))
}

/// Adds the security headers to every dashboard answer: the CSP, no sniffing, no referrer,
/// no framing, and no caching of pages (assets set their own caching).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
