//! An org's SAML 2.0 identity provider: its configuration by an Owner (`/v1/org/saml`), the SP
//! metadata, and Web Browser SSO through it (`/v1/auth/saml/{org_id}/start` → the IdP →
//! `POST /v1/auth/saml/{org_id}/acs`).
//!
//! Each org is its own service provider: entity id `<origin>/v1/auth/saml/<org>/metadata`,
//! assertion consumer service `<origin>/v1/auth/saml/<org>/acs`, so an assertion issued for one
//! org is refused by every other (audience and recipient). The ACS answers like every other
//! sign-in: `200` with [`SessionCreated`] and the session cookie.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::Permission;
use edgekeep_protocol::idp::{
    MAX_CERTIFICATE_PEM_LEN, MAX_SAML_FIELD_LEN, SamlConfigInfo, SamlConfigRequest,
};
use edgekeep_protocol::people::SessionCreated;
use edgekeep_protocol::token::{MintedToken, ParsedToken, TokenKind};
use serde::{Deserialize, Serialize};

use super::sso::{self, Refusal, Subject, Vouched};
use super::{ApiJson, ApiPath, AppState};
use crate::auth::{ApiCaller, request_origin};
use crate::error::ApiError;
use crate::identity::saml::{self, SamlRejection, SigningKey, SpEndpoints, request, response};
use crate::identity::session;
use crate::storage::{CeremonyRecord, SamlConfigRecord};

/// The OpenAPI document of the SAML routes, merged into the server's when the feature is on.
#[derive(utoipa::OpenApi)]
#[openapi(paths(put_saml, get_saml, delete_saml, metadata, start, acs))]
pub struct SamlApi;

/// This SP's endpoints for one org, as URLs.
struct SpUrls {
    entity_id: String,
    acs_url: String,
}

impl SpUrls {
    fn of(origin: &str, org_id: &str) -> Self {
        Self {
            entity_id: format!("{origin}/v1/auth/saml/{org_id}/metadata"),
            acs_url: format!("{origin}/v1/auth/saml/{org_id}/acs"),
        }
    }

    fn endpoints(&self) -> SpEndpoints<'_> {
        SpEndpoints {
            entity_id: &self.entity_id,
            acs_url: &self.acs_url,
        }
    }
}

/// What `GET /v1/org/saml` shows of a configuration.
pub fn info(record: SamlConfigRecord, origin: &str) -> Result<SamlConfigInfo, ApiError> {
    let key = SigningKey::from_der(&record.certificate_der).map_err(|_| ApiError::internal())?;
    let urls = SpUrls::of(origin, &record.org_id);
    Ok(SamlConfigInfo {
        login_url: format!("{origin}/v1/auth/saml/{}/start", record.org_id),
        metadata_url: urls.entity_id.clone(),
        sp_entity_id: urls.entity_id,
        acs_url: urls.acs_url,
        certificate_sha256: key.fingerprint(),
        idp_entity_id: record.idp_entity_id,
        sso_url: record.sso_url,
        allowed_email_domains: record.allowed_email_domains,
        sso_required: record.sso_required,
        updated_by: record.updated_by,
        updated_at: record.updated_at,
    })
}

fn valid_field(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_SAML_FIELD_LEN && !text.chars().any(char::is_control)
}

/// Checks an SSO URL: `https`, a host, no credentials or fragment (a query is kept).
fn sso_url(text: &str) -> Result<url::Url, ApiError> {
    let url =
        url::Url::parse(text.trim()).map_err(|_| ApiError::bad_request("sso_url is not a URL"))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "sso_url must be an https URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(ApiError::bad_request(
            "sso_url must not carry credentials or a fragment",
        ));
    }
    Ok(url)
}

/// Configures (or replaces) the org's SAML identity provider (Owner, with a step-up for a
/// session). The certificate's key must be RSA (2048 bits or more) or ECDSA P-256/P-384.
#[utoipa::path(put, path = "/v1/org/saml", tag = "people", security(("api_key" = []), ("session" = [])),
    request_body = SamlConfigRequest,
    responses((status = 200, body = SamlConfigInfo), (status = 400, body = edgekeep_protocol::ErrorBody),
        (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn put_saml(
    State(state): State<AppState>,
    parts: Parts,
    caller: ApiCaller,
    ApiJson(body): ApiJson<SamlConfigRequest>,
) -> Result<Json<SamlConfigInfo>, ApiError> {
    caller.require(Permission::RolesGrant)?;
    caller.require_step_up(&state)?;
    if !valid_field(&body.idp_entity_id) || !valid_field(&body.sso_url) {
        return Err(ApiError::bad_request(
            "idp_entity_id and sso_url must be 1 to 1024 bytes without control characters",
        ));
    }
    let sso = sso_url(&body.sso_url)?;
    if body.certificate_pem.len() > MAX_CERTIFICATE_PEM_LEN {
        return Err(ApiError::bad_request("certificate_pem is too large"));
    }
    let key = SigningKey::from_pem(&body.certificate_pem)
        .map_err(|error| ApiError::bad_request(error.message()))?;
    let domains = sso::allowed_domains(&body.allowed_email_domains)?;
    let now = crate::now();
    let record = SamlConfigRecord {
        org_id: caller.org_id.clone(),
        idp_entity_id: body.idp_entity_id.trim().to_owned(),
        sso_url: sso.into(),
        certificate_der: key.certificate_der().to_vec(),
        allowed_email_domains: domains,
        sso_required: body.sso_required,
        updated_by: caller.actor(),
        updated_at: now,
    };
    let event = caller.event("saml.configure", "saml".to_owned(), now);
    let stored = record.clone();
    state
        .blocking(move |s| s.put_saml_config(&stored, &event))
        .await?;
    Ok(Json(info(record, &request_origin(&state, &parts))?))
}

/// The org's SAML identity provider and what to register at it (Admin+).
#[utoipa::path(get, path = "/v1/org/saml", tag = "people", security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = SamlConfigInfo), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn get_saml(
    State(state): State<AppState>,
    parts: Parts,
    caller: ApiCaller,
) -> Result<Json<SamlConfigInfo>, ApiError> {
    caller.require(Permission::MembersWrite)?;
    let org_id = caller.org_id.clone();
    let record = state
        .blocking(move |s| s.saml_config(&org_id))
        .await?
        .ok_or(ErrorCode::IdpNotConfigured)?;
    Ok(Json(info(record, &request_origin(&state, &parts))?))
}

/// Removes the org's SAML identity provider (Owner, with a step-up for a session).
#[utoipa::path(delete, path = "/v1/org/saml", tag = "people", security(("api_key" = []), ("session" = [])),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn delete_saml(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::RolesGrant)?;
    caller.require_step_up(&state)?;
    let event = caller.event("saml.remove", "saml".to_owned(), crate::now());
    let org_id = caller.org_id.clone();
    let removed = state
        .blocking(move |s| s.delete_saml_config(&org_id, &event))
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ErrorCode::IdpNotConfigured.into())
    }
}

async fn config(state: &AppState, org_id: &str) -> Result<Option<SamlConfigRecord>, ApiError> {
    let id = org_id.to_owned();
    state.blocking(move |s| s.saml_config(&id)).await
}

/// The SP metadata of the org (public; only for an org with a SAML IdP, so it reveals nothing
/// about other org ids).
#[utoipa::path(get, path = "/v1/auth/saml/{org_id}/metadata", tag = "people",
    params(("org_id" = String, Path, description = "The org")),
    responses((status = 200, description = "SAML 2.0 SP metadata", content_type = "application/samlmetadata+xml"),
        (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn metadata(
    State(state): State<AppState>,
    parts: Parts,
    ApiPath(org_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    config(&state, &org_id)
        .await?
        .ok_or(ErrorCode::IdpNotConfigured)?;
    let urls = SpUrls::of(&request_origin(&state, &parts), &org_id);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/samlmetadata+xml"),
        )],
        request::metadata(urls.endpoints()),
    )
        .into_response())
}

/// What the server keeps while a person is at the IdP: the configuration the attempt started
/// with (a change in between refuses the response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingSaml {
    idp_entity_id: String,
    certificate_sha256: String,
}

impl PendingSaml {
    fn of(config: &SamlConfigRecord) -> Result<Self, ApiError> {
        let key =
            SigningKey::from_der(&config.certificate_der).map_err(|_| ApiError::internal())?;
        Ok(Self {
            idp_entity_id: config.idp_entity_id.clone(),
            certificate_sha256: key.fingerprint(),
        })
    }
}

/// Starts signing in to the org through its SAML IdP: `302` to the IdP's SSO service with an
/// `AuthnRequest` (HTTP-Redirect binding), and a cookie binding the request to this browser.
/// The request id is single use and lasts the ceremony timeout.
#[utoipa::path(get, path = "/v1/auth/saml/{org_id}/start", tag = "people",
    params(("org_id" = String, Path, description = "The org to sign in to")),
    responses((status = 302, description = "To the identity provider"),
        (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    parts: Parts,
    ApiPath(org_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    state.admit_sign_in_start(&parts.extensions).await?;
    let config = config(&state, &org_id)
        .await?
        .ok_or(ErrorCode::IdpNotConfigured)?;
    let token =
        MintedToken::mint(TokenKind::Ceremony, state.rng()).map_err(|_| ApiError::internal())?;
    let now = crate::now();
    let timeout = state.config().sessions.ceremony_timeout;
    let urls = SpUrls::of(&request_origin(&state, &parts), &org_id);
    let sso = url::Url::parse(&config.sso_url).map_err(|_| ApiError::internal())?;
    let location = request::redirect_url(urls.endpoints(), token.expose(), &sso, now)
        .map_err(|_| ApiError::internal())?;
    let ceremony = CeremonyRecord {
        hash: token.hash(),
        kind: saml::CEREMONY_KIND.to_owned(),
        subject: org_id,
        state: serde_json::to_string(&PendingSaml::of(&config)?)
            .map_err(|_| ApiError::internal())?,
        expires_at: now + session::secs(timeout),
    };
    state
        .blocking(move |s| s.insert_ceremony(&ceremony, now))
        .await?;
    sso::to_provider(&location, &saml::binding_cookie(token.expose(), timeout))
}

/// Finishes signing in (HTTP-POST binding, `SAMLResponse` form field): checks the attempt
/// (single use, unexpired, bound to this browser by its cookie, for this org), verifies the
/// response and its signed assertion (see [`crate::identity::saml`]), then admits the person like every identity provider sign-in. Every outcome with
/// a known org is audited there (`login.saml.ok`, `login.saml.rejected` with `code:reason`).
#[utoipa::path(post, path = "/v1/auth/saml/{org_id}/acs", tag = "people",
    params(("org_id" = String, Path, description = "The org")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`SAMLResponse` (base64) and optional `RelayState`"),
    responses((status = 200, body = SessionCreated), (status = 400, body = edgekeep_protocol::ErrorBody),
        (status = 401, body = edgekeep_protocol::ErrorBody), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn acs(
    State(state): State<AppState>,
    parts: Parts,
    ApiPath(org_id): ApiPath<String>,
    body: Bytes,
) -> Response {
    sso::finished(
        finish(&state, &parts, &org_id, &body).await,
        saml::clear_binding_cookie(),
        &parts,
    )
}

/// The `SAMLResponse` field of a form body.
fn response_field(parts: &Parts, body: &[u8]) -> Option<String> {
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "SAMLResponse")
        .map(|(_, value)| value.into_owned())
}

async fn finish(
    state: &AppState,
    parts: &Parts,
    org_id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut refusal = Refusal::new(state, parts, saml::SESSION_METHOD);
    let Some(request_id) = session::cookie(&parts.headers, saml::BINDING_COOKIE) else {
        return Err(refusal.refuse(SamlRejection::UnknownAttempt, None).await);
    };
    let Ok(token) = ParsedToken::parse(request_id, TokenKind::Ceremony) else {
        return Err(refusal.refuse(SamlRejection::UnknownAttempt, None).await);
    };
    let hash = token.hash();
    let now = crate::now();
    let ceremony = state
        .blocking(move |s| s.take_ceremony(&hash, saml::CEREMONY_KIND, now))
        .await?;
    let Some(ceremony) = ceremony.filter(|c| c.subject == org_id) else {
        return Err(refusal.refuse(SamlRejection::UnknownAttempt, None).await);
    };
    refusal.org_id = Some(org_id.to_owned());
    let pending: PendingSaml =
        serde_json::from_str(&ceremony.state).map_err(|_| ApiError::internal())?;
    let Some(config) = config(state, org_id).await? else {
        return Err(refusal.refuse(SamlRejection::NotConfigured, None).await);
    };
    if PendingSaml::of(&config)? != pending {
        return Err(refusal.refuse(SamlRejection::ConfigChanged, None).await);
    }
    let identity = match verify(state, parts, &config, body, request_id, now) {
        Ok(identity) => identity,
        Err(rejection) => return Err(refusal.refuse(rejection, None).await),
    };
    let email = match admitted_email(&identity, &config.allowed_email_domains) {
        Ok(email) => email,
        Err(rejection) => return Err(refusal.refuse(rejection, None).await),
    };
    let person = Vouched {
        display_name: crate::identity::display_name(identity.display_name.as_deref(), &email),
        email,
        subject: identity.persistent_name_id.clone().map(|subject| Subject {
            provider: saml::SESSION_METHOD,
            issuer: config.idp_entity_id.clone(),
            subject,
        }),
    };
    sso::admit::<SamlRejection>(state, &refusal, org_id, person, now).await
}

fn verify(
    state: &AppState,
    parts: &Parts,
    config: &SamlConfigRecord,
    body: &[u8],
    request_id: &str,
    now: i64,
) -> Result<saml::SamlIdentity, SamlRejection> {
    let field = response_field(parts, body).ok_or(SamlRejection::Malformed)?;
    let xml = response::decode(&field)?;
    let key =
        SigningKey::from_der(&config.certificate_der).map_err(|_| SamlRejection::NotConfigured)?;
    let urls = SpUrls::of(&request_origin(state, parts), &config.org_id);
    saml::verify_response(
        &xml,
        &config.idp_entity_id,
        &key,
        urls.endpoints(),
        request_id,
        now,
    )
}

/// The email a verified assertion may sign in with: well formed and of an allowed domain. A
/// SAML IdP has no `email_verified`; the org vouches for its IdP by configuring it.
fn admitted_email(
    identity: &saml::SamlIdentity,
    allowed_domains: &[String],
) -> Result<String, SamlRejection> {
    let email = identity
        .email
        .as_deref()
        .and_then(edgekeep_protocol::people::normalize_email)
        .ok_or(SamlRejection::EmailMissing)?;
    if !crate::identity::domain_allowed(&email, allowed_domains) {
        return Err(SamlRejection::DomainNotAllowed);
    }
    Ok(email)
}
