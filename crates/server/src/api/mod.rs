//! The `/v1` router, its middleware, body extractors and the OpenAPI document.
//!
//! Files: [`body_limits`] (per-route body size and deadline), [`members`] (org and members),
//! [`people`] (invitations, the signed-in person's sessions and passkeys), [`login`] (passkey
//! ceremonies: accepting an invitation, signing in, adding a passkey, stepping up), [`oidc`]
//! (an org's OpenID Provider and sign-in through it), `saml` (an org's SAML IdP, the SP metadata
//! and Web Browser SSO; feature `saml`), [`sso`] (what both providers share: admitting the
//! person they vouch for, auditing refusals), [`keys`] (API keys), [`devices`]
//! (bootstrap tokens and
//! device administration), [`device`] (calls made by devices), [`audit`] (export and verify),
//! [`registry`] (publisher keys, artifact upload, approval), [`rollouts`], [`delivery`]
//! (desired state, artifact download, wrapped keys), [`telemetry`] (ingest), [`fleet`] (health).

pub mod audit;
pub mod body_limits;
pub mod delivery;
pub mod device;
pub mod devices;
pub mod fleet;
pub mod keys;
pub mod login;
pub mod members;
pub mod oidc;
pub mod people;
pub mod registry;
pub mod rollouts;
pub mod rotation;
#[cfg(feature = "saml")]
pub mod saml;
pub mod sso;
mod state;
pub mod telemetry;

pub use state::{AppState, Limits};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::auth::{ClientAddr, RequestId, SourceIp, source_ip};
use crate::error::ApiError;

/// A JSON body whose rejection is a `{code, message}` error.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Query parameters whose rejection is a `{code, message}` error.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters whose rejection is a `{code, message}` error.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The OpenAPI document of the `/v1` API.
#[derive(OpenApi)]
#[openapi(
    info(title = "edgekeep control plane", version = "1"),
    paths(
        health,
        members::get_org,
        members::list_members,
        members::create_member,
        members::set_role,
        members::remove_member,
        keys::list_keys,
        keys::create_key,
        keys::rotate_key,
        keys::revoke_key,
        login::begin_invitation,
        login::finish_invitation,
        login::begin_login,
        login::finish_login,
        login::begin_add_passkey,
        login::finish_add_passkey,
        login::begin_step_up,
        login::finish_step_up,
        people::create_invitation,
        people::list_invitations,
        people::revoke_invitation,
        people::me,
        people::list_sessions,
        people::revoke_session,
        people::logout,
        people::logout_all,
        people::switch_org,
        people::list_passkeys,
        people::rename_passkey,
        people::remove_passkey,
        oidc::put_idp,
        oidc::get_idp,
        oidc::delete_idp,
        oidc::start,
        oidc::callback,
        crate::scim::tokens::list_tokens,
        crate::scim::tokens::create_token,
        crate::scim::tokens::rotate_token,
        crate::scim::tokens::revoke_token,
        crate::scim::tokens::list_groups,
        crate::scim::tokens::set_group_role,
        devices::create_bootstrap_token,
        devices::list_devices,
        devices::get_device,
        devices::revoke_device,
        devices::revoke_group,
        device::enroll,
        device::refresh,
        device::me,
        audit::export,
        audit::verify,
        audit::checkpoint,
        audit::verify_checkpoint,
        registry::register_publisher_key,
        registry::list_publisher_keys,
        registry::revoke_publisher_key,
        registry::upload_artifact,
        registry::list_models,
        registry::approve_version,
        rollouts::create_rollout,
        rollouts::list_rollouts,
        rollouts::get_rollout,
        rollouts::promote,
        rollouts::pause,
        rollouts::resume,
        rollouts::rollback,
        delivery::desired_state,
        delivery::desired_state_key,
        delivery::download_artifact,
        delivery::artifact_key,
        telemetry::ingest,
        fleet::health,
        fleet::devices,
    ),
    components(schemas(edgekeep_protocol::ErrorBody, edgekeep_protocol::ErrorCode)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate: org API keys and device proofs.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ek_ API key")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                edgekeep_protocol::people::SESSION_COOKIE,
                "A person's session (passkey, OIDC or SAML sign-in), bound to one org; \
                 state-changing requests also send `x-csrf-token` and come from the server's origin",
            ))),
        );
        components.add_security_scheme(
            "device_proof",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "DPoP",
                "ES256 proof of possession (edgekeep_protocol::proof); device calls also send \
                 `Authorization: DPoP <access token>`",
            ))),
        );
    }
}

/// Liveness probe.
#[utoipa::path(get, path = "/v1/health", tag = "meta", responses((status = 200, description = "Server is up")))]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The OpenAPI document of what this build serves: [`ApiDoc`], plus SAML with feature `saml`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    #[allow(unused_mut)]
    let mut document = ApiDoc::openapi();
    #[cfg(feature = "saml")]
    document.merge(saml::SamlApi::openapi());
    document
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}

async fn assign_request_id(
    state: axum::extract::State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = state.new_id("req").unwrap_or_default();
    request.extensions_mut().insert(RequestId(id.clone()));
    if let Some(peer) = request.extensions().get::<ClientAddr>().copied() {
        let source = source_ip(
            peer.0.ip(),
            request.headers(),
            &state.config().trusted_proxies,
        );
        request.extensions_mut().insert(SourceIp(source));
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    tracing::debug!(
        request_id = %id,
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn fallback() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    edgekeep_protocol::ErrorCode::MethodNotAllowed.into()
}

/// The SAML routes (feature `saml`; none without it).
fn identity_provider_routes() -> Router<AppState> {
    let routes = Router::new();
    #[cfg(feature = "saml")]
    let routes = routes
        .route(
            "/v1/org/saml",
            get(saml::get_saml)
                .put(saml::put_saml)
                .delete(saml::delete_saml),
        )
        .route("/v1/auth/saml/{org_id}/metadata", get(saml::metadata))
        .route("/v1/auth/saml/{org_id}/start", get(saml::start))
        .route("/v1/auth/saml/{org_id}/acs", post(saml::acs));
    routes
}

/// Builds the full router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/org", get(members::get_org))
        .route(
            "/v1/members",
            get(members::list_members).post(members::create_member),
        )
        .route("/v1/members/{id}", delete(members::remove_member))
        .route("/v1/members/{id}/role", put(members::set_role))
        .route("/v1/api-keys", get(keys::list_keys).post(keys::create_key))
        .route("/v1/api-keys/{id}", delete(keys::revoke_key))
        .route("/v1/api-keys/{id}/rotate", post(keys::rotate_key))
        .route(
            "/v1/invitations",
            get(people::list_invitations).post(people::create_invitation),
        )
        .route("/v1/invitations/{id}", delete(people::revoke_invitation))
        .route("/v1/me", get(people::me))
        .route("/v1/me/sessions", get(people::list_sessions))
        .route("/v1/me/sessions/{id}", delete(people::revoke_session))
        .route("/v1/me/passkeys", get(people::list_passkeys))
        .route(
            "/v1/me/passkeys/{id}",
            axum::routing::patch(people::rename_passkey).delete(people::remove_passkey),
        )
        .route("/v1/auth/invitations/begin", post(login::begin_invitation))
        .route(
            "/v1/auth/invitations/finish",
            post(login::finish_invitation),
        )
        .route("/v1/auth/passkey/begin", post(login::begin_login))
        .route("/v1/auth/passkey/finish", post(login::finish_login))
        .route("/v1/auth/step-up/begin", post(login::begin_step_up))
        .route("/v1/auth/step-up/finish", post(login::finish_step_up))
        .route("/v1/me/passkeys/begin", post(login::begin_add_passkey))
        .route("/v1/me/passkeys/finish", post(login::finish_add_passkey))
        .route("/v1/auth/logout", post(people::logout))
        .route("/v1/auth/logout-all", post(people::logout_all))
        .route("/v1/auth/switch-org", post(people::switch_org))
        .route(
            "/v1/org/idp",
            get(oidc::get_idp)
                .put(oidc::put_idp)
                .delete(oidc::delete_idp),
        )
        .route("/v1/auth/oidc/{org_id}/start", get(oidc::start))
        .route(oidc::CALLBACK_PATH, get(oidc::callback))
        .route(
            "/v1/bootstrap-tokens",
            post(devices::create_bootstrap_token),
        )
        .route("/v1/devices", get(devices::list_devices))
        .route("/v1/devices/{id}", get(devices::get_device))
        .route("/v1/devices/{id}/revoke", post(devices::revoke_device))
        .route(
            "/v1/device-groups/{group}/revoke",
            post(devices::revoke_group),
        )
        .route("/v1/device/enroll", post(device::enroll))
        .route("/v1/device/refresh", post(device::refresh))
        .route("/v1/device/me", get(device::me))
        .route("/v1/audit", get(audit::export))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route(
            "/v1/audit/verify-checkpoint",
            post(audit::verify_checkpoint),
        )
        .route(
            "/v1/publisher-keys",
            get(registry::list_publisher_keys).post(registry::register_publisher_key),
        )
        .route(
            "/v1/publisher-keys/{key_id}",
            delete(registry::revoke_publisher_key),
        )
        .route(body_limits::UPLOAD_PATH, post(registry::upload_artifact))
        .route("/v1/models", get(registry::list_models))
        .route(
            "/v1/models/{model}/versions/{version}/approve",
            post(registry::approve_version),
        )
        .route(
            "/v1/rollouts",
            get(rollouts::list_rollouts).post(rollouts::create_rollout),
        )
        .route("/v1/rollouts/{id}", get(rollouts::get_rollout))
        .route("/v1/rollouts/{id}/promote", post(rollouts::promote))
        .route("/v1/rollouts/{id}/pause", post(rollouts::pause))
        .route("/v1/rollouts/{id}/resume", post(rollouts::resume))
        .route("/v1/rollouts/{id}/rollback", post(rollouts::rollback))
        .route("/v1/desired-state-key", get(delivery::desired_state_key))
        .route("/v1/device/desired-state", get(delivery::desired_state))
        .route(
            "/v1/device/artifacts/{artifact_id}",
            get(delivery::download_artifact),
        )
        .route(
            "/v1/device/artifacts/{artifact_id}/key",
            get(delivery::artifact_key),
        )
        .route("/v1/device/telemetry", post(telemetry::ingest))
        .route("/v1/fleet/health", get(fleet::health))
        .route("/v1/fleet/devices", get(fleet::devices))
        .route(
            "/v1/scim-tokens",
            get(crate::scim::tokens::list_tokens).post(crate::scim::tokens::create_token),
        )
        .route(
            "/v1/scim-tokens/{id}",
            delete(crate::scim::tokens::revoke_token),
        )
        .route(
            "/v1/scim-tokens/{id}/rotate",
            post(crate::scim::tokens::rotate_token),
        )
        .route("/v1/scim-groups", get(crate::scim::tokens::list_groups))
        .route(
            "/v1/scim-groups/{id}/role",
            put(crate::scim::tokens::set_group_role),
        )
        .nest(crate::scim::SCIM_PREFIX, crate::scim::router())
        .merge(identity_provider_routes())
        .merge(crate::dashboard::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config().connections.max_json_body,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_limits::limit_bodies,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            assign_request_id,
        ))
        .with_state(state)
}
