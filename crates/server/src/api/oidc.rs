//! An org's identity provider: its configuration by an Owner (`/v1/org/idp`) and sign-in
//! through it (`/v1/auth/oidc/{org_id}/start`, `/v1/auth/oidc/callback`).
//!
//! The callback answers like every other sign-in: `200` with [`SessionCreated`] (and its CSRF
//! token) and the session cookie. A browser front end registers its own page as the redirect
//! URI's handler and forwards `code` and `state` there with a same-origin `fetch`, or opens the
//! callback directly.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::Permission;
use edgekeep_protocol::idp::{IdpConfigInfo, IdpConfigRequest, MAX_CLIENT_FIELD_LEN};
use edgekeep_protocol::people::SessionCreated;
use edgekeep_protocol::token::{MintedToken, ParsedToken, TokenKind};
use serde::Deserialize;

use super::sso::{self, Refusal, Subject, Vouched};
use super::{ApiJson, ApiPath, ApiQuery, AppState};
use crate::auth::{ApiCaller, request_origin};
use crate::error::ApiError;
use crate::identity::oidc::{self, OidcRejection, PendingLogin, VerifiedIdentity};
use crate::identity::session;
use crate::storage::{CeremonyRecord, IdpConfigRecord};

/// The callback's path (the redirect URI to register at the provider).
pub const CALLBACK_PATH: &str = "/v1/auth/oidc/callback";

/// The sealing context of an org's client secret: a sealed secret moved to another org does
/// not open.
fn secret_context(org_id: &str) -> Vec<u8> {
    format!("edgekeep/v1/idp-client-secret/{org_id}").into_bytes()
}

fn origin(state: &AppState, parts: &Parts) -> String {
    request_origin(state, parts)
}

/// What `GET /v1/org/idp` shows of a configuration.
pub fn info(record: IdpConfigRecord, origin: &str) -> IdpConfigInfo {
    IdpConfigInfo {
        login_url: format!("{origin}/v1/auth/oidc/{}/start", record.org_id),
        redirect_uri: format!("{origin}{CALLBACK_PATH}"),
        issuer: record.issuer,
        client_id: record.client_id,
        allowed_email_domains: record.allowed_email_domains,
        sso_required: record.sso_required,
        updated_by: record.updated_by,
        updated_at: record.updated_at,
    }
}

fn valid_client_field(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_CLIENT_FIELD_LEN && !text.chars().any(char::is_control)
}

/// Configures (or replaces) the org's OpenID Provider (Owner, with a step-up for a session).
/// The provider's discovery document is read first: an issuer that does not answer, or answers
/// as another issuer, is refused with `idp_unavailable`.
#[utoipa::path(put, path = "/v1/org/idp", tag = "people", security(("api_key" = []), ("session" = [])),
    request_body = IdpConfigRequest,
    responses((status = 200, body = IdpConfigInfo), (status = 400, body = edgekeep_protocol::ErrorBody),
        (status = 403, body = edgekeep_protocol::ErrorBody), (status = 502, body = edgekeep_protocol::ErrorBody)))]
pub async fn put_idp(
    State(state): State<AppState>,
    parts: Parts,
    caller: ApiCaller,
    ApiJson(body): ApiJson<IdpConfigRequest>,
) -> Result<Json<IdpConfigInfo>, ApiError> {
    caller.require(Permission::RolesGrant)?;
    caller.require_step_up(&state)?;
    let issuer = oidc::validate_issuer(&body.issuer).map_err(ApiError::bad_request)?;
    if !valid_client_field(&body.client_id) || !valid_client_field(&body.client_secret) {
        return Err(ApiError::bad_request(
            "client_id and client_secret must be 1 to 1024 bytes without control characters",
        ));
    }
    let domains = sso::allowed_domains(&body.allowed_email_domains)?;
    let issuer = issuer.as_str().to_owned();
    let metadata = oidc::discover(state.idp_http(), &issuer)
        .await
        .map_err(ApiError::from)?;
    state.discovery().put(&issuer, metadata);
    let sealed = state
        .secret()
        .seal(
            &secret_context(&caller.org_id),
            body.client_secret.as_bytes(),
        )
        .map_err(|_| ApiError::internal())?;
    let now = crate::now();
    let record = IdpConfigRecord {
        org_id: caller.org_id.clone(),
        issuer,
        client_id: body.client_id,
        sealed_client_secret: sealed,
        allowed_email_domains: domains,
        sso_required: body.sso_required,
        updated_by: caller.actor(),
        updated_at: now,
    };
    let event = caller.event("idp.configure", "idp".to_owned(), now);
    let stored = record.clone();
    state
        .blocking(move |s| s.put_idp_config(&stored, &event))
        .await?;
    Ok(Json(info(record, &origin(&state, &parts))))
}

/// The org's OpenID Provider, without its secret (Admin+).
#[utoipa::path(get, path = "/v1/org/idp", tag = "people", security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = IdpConfigInfo), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn get_idp(
    State(state): State<AppState>,
    parts: Parts,
    caller: ApiCaller,
) -> Result<Json<IdpConfigInfo>, ApiError> {
    caller.require(Permission::MembersWrite)?;
    let org_id = caller.org_id.clone();
    let record = state
        .blocking(move |s| s.idp_config(&org_id))
        .await?
        .ok_or(ErrorCode::IdpNotConfigured)?;
    Ok(Json(info(record, &origin(&state, &parts))))
}

/// Removes the org's OpenID Provider (Owner, with a step-up for a session). Sessions it started
/// stay until they end.
#[utoipa::path(delete, path = "/v1/org/idp", tag = "people", security(("api_key" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn delete_idp(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::RolesGrant)?;
    caller.require_step_up(&state)?;
    let event = caller.event("idp.remove", "idp".to_owned(), crate::now());
    let org_id = caller.org_id.clone();
    let removed = state
        .blocking(move |s| s.delete_idp_config(&org_id, &event))
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ErrorCode::IdpNotConfigured.into())
    }
}

/// The optional query of a sign-in start.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    /// Who is signing in (usually an email), passed to the provider as `login_hint`.
    pub login_hint: Option<String>,
}

/// Starts signing in to the org through its OpenID Provider: `302` to the provider's
/// authorization URL (code flow, PKCE S256, fresh `state` and `nonce`), with a cookie binding
/// the attempt to this browser. The attempt lasts the ceremony timeout and is single use.
#[utoipa::path(get, path = "/v1/auth/oidc/{org_id}/start", tag = "people",
    params(("org_id" = String, Path, description = "The org to sign in to"),
        ("login_hint" = Option<String>, Query, description = "Who is signing in, passed to the provider")),
    responses((status = 302, description = "To the identity provider"),
        (status = 404, body = edgekeep_protocol::ErrorBody), (status = 502, body = edgekeep_protocol::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    parts: Parts,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> Result<Response, ApiError> {
    state.admit_sign_in_start(&parts.extensions).await?;
    let id = org_id.clone();
    let config = state
        .blocking(move |s| s.idp_config(&id))
        .await?
        .ok_or(ErrorCode::IdpNotConfigured)?;
    let metadata = state
        .discovery()
        .get(state.idp_http(), &config.issuer)
        .await?;
    let token =
        MintedToken::mint(TokenKind::Ceremony, state.rng()).map_err(|_| ApiError::internal())?;
    let redirect_uri = format!("{}{CALLBACK_PATH}", origin(&state, &parts));
    let authorization = oidc::authorize(
        metadata,
        &config.client_id,
        &redirect_uri,
        token.expose(),
        oidc::login_hint(query.login_hint.as_deref()),
    )?;
    let now = crate::now();
    let timeout = state.config().sessions.ceremony_timeout;
    let ceremony = CeremonyRecord {
        hash: token.hash(),
        kind: oidc::CEREMONY_KIND.to_owned(),
        subject: org_id,
        state: serde_json::to_string(&authorization.pending).map_err(|_| ApiError::internal())?,
        expires_at: now + session::secs(timeout),
    };
    state
        .blocking(move |s| s.insert_ceremony(&ceremony, now))
        .await?;
    sso::to_provider(
        &authorization.url,
        &oidc::binding_cookie(token.expose(), timeout),
    )
}

/// The provider's redirect back.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    /// The attempt.
    pub state: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// The provider's error, when it refused.
    pub error: Option<String>,
}

/// Finishes signing in: checks the attempt (single use, unexpired, bound to this browser),
/// redeems the code and verifies the ID token, then admits the person: a member of the org with
/// that verified email gets a session; a new person with an open invitation for that email in
/// the org is created and accepted; anyone else is refused. Every outcome with a known org is
/// audited there (`login.oidc.ok`, `login.oidc.rejected` with `code:reason`).
#[utoipa::path(get, path = "/v1/auth/oidc/callback", tag = "people",
    params(("state" = String, Query, description = "The attempt"), ("code" = String, Query, description = "The authorization code")),
    responses((status = 200, body = SessionCreated), (status = 400, body = edgekeep_protocol::ErrorBody),
        (status = 401, body = edgekeep_protocol::ErrorBody), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Response {
    sso::finished(
        finish(&state, &parts, query).await,
        oidc::clear_binding_cookie(),
        &parts,
    )
}

async fn finish(
    state: &AppState,
    parts: &Parts,
    query: CallbackQuery,
) -> Result<Response, ApiError> {
    let mut refusal = Refusal::new(state, parts, oidc::SESSION_METHOD);
    let Some(state_text) = query.state.as_deref() else {
        return Err(refusal.refuse(OidcRejection::MalformedCallback, None).await);
    };
    let Ok(token) = ParsedToken::parse(state_text, TokenKind::Ceremony) else {
        return Err(refusal.refuse(OidcRejection::UnknownAttempt, None).await);
    };
    if oidc::presented_binding(&parts.headers) != Some(state_text) {
        return Err(refusal.refuse(OidcRejection::UnknownAttempt, None).await);
    }
    let hash = token.hash();
    let now = crate::now();
    let ceremony = state
        .blocking(move |s| s.take_ceremony(&hash, oidc::CEREMONY_KIND, now))
        .await?;
    let Some(ceremony) = ceremony else {
        return Err(refusal.refuse(OidcRejection::UnknownAttempt, None).await);
    };
    let org_id = ceremony.subject.clone();
    refusal.org_id = Some(org_id.clone());
    let pending: PendingLogin =
        serde_json::from_str(&ceremony.state).map_err(|_| ApiError::internal())?;
    if query.error.is_some() {
        return Err(refusal.refuse(OidcRejection::ProviderRefused, None).await);
    }
    let Some(code) = query.code.as_deref() else {
        return Err(refusal.refuse(OidcRejection::MalformedCallback, None).await);
    };
    let id = org_id.clone();
    let Some(config) = state.blocking(move |s| s.idp_config(&id)).await? else {
        return Err(refusal.refuse(OidcRejection::NotConfigured, None).await);
    };
    if config.issuer != pending.issuer || config.client_id != pending.client_id {
        return Err(refusal.refuse(OidcRejection::ConfigChanged, None).await);
    }
    let secret = state
        .secret()
        .open(&secret_context(&org_id), &config.sealed_client_secret)
        .map_err(|_| {
            tracing::error!("an identity provider's client secret does not open");
            ApiError::internal()
        })?;
    let secret = std::str::from_utf8(&secret).map_err(|_| ApiError::internal())?;
    let identity = match verify(state, &config, secret, &pending, code).await {
        Ok(identity) => identity,
        Err(rejection) => return Err(refusal.refuse(rejection, None).await),
    };
    let email = match oidc::admitted_email(&identity, &config.allowed_email_domains) {
        Ok(email) => email,
        Err(rejection) => return Err(refusal.refuse(rejection, None).await),
    };
    let person = Vouched {
        display_name: oidc::display_name(&identity, &email),
        email,
        subject: Some(Subject {
            provider: oidc::SESSION_METHOD,
            issuer: config.issuer.clone(),
            subject: identity.subject.clone(),
        }),
    };
    sso::admit::<OidcRejection>(state, &refusal, &org_id, person, now).await
}

async fn verify(
    state: &AppState,
    config: &IdpConfigRecord,
    secret: &str,
    pending: &PendingLogin,
    code: &str,
) -> Result<VerifiedIdentity, OidcRejection> {
    let metadata = oidc::discover(state.idp_http(), &config.issuer).await?;
    oidc::redeem(state.idp_http(), metadata, secret, pending, code).await
}
