//! SCIM 2.0 provisioning (RFC 7643/7644) at `/scim/v2`, one service per org: the org's SCIM
//! token says which org. A directory (Azure AD, Okta, ...) creates, updates, deactivates and
//! deletes the org's people and groups; deactivation ends the person's access at once, and
//! groups an Owner mapped to a role grant it.
//!
//! Files: [`auth`] (the SCIM token extractor), [`body`] (`application/scim+json` in and out),
//! [`error`] ([`ScimError`], the RFC 7644 error body), [`filter`] (the filter subset),
//! [`patch`] (PATCH operations and paths), [`query`] (list parameters), [`resources`] (the
//! JSON of users, groups and the discovery documents), [`users`], [`groups`], [`discovery`]
//! (the endpoints) and [`tokens`] (the `/v1` administration: SCIM tokens, group roles).

pub mod auth;
pub mod body;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod groups;
pub mod patch;
pub mod query;
pub mod resources;
pub mod tokens;
pub mod users;

pub use auth::{SCIM_PREFIX, ScimCaller};
pub use error::ScimError;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::routing::get;

use crate::api::AppState;
use crate::storage::{Storage, StorageError};

/// Path parameters whose rejection is a SCIM error.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ScimError))]
pub struct ScimPath<T>(pub T);

/// Runs a storage call on the blocking pool, its errors in SCIM terms.
pub(crate) async fn run<T, F>(state: &AppState, body: F) -> Result<T, ScimError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
{
    let storage = std::sync::Arc::clone(state.storage());
    tokio::task::spawn_blocking(move || body(storage.as_ref()))
        .await
        .map_err(|_| ScimError::Internal)?
        .map_err(ScimError::from)
}

async fn not_found() -> ScimError {
    ScimError::NotFound
}

async fn not_implemented(_caller: ScimCaller) -> ScimError {
    ScimError::NotImplemented
}

async fn method_not_allowed() -> ScimError {
    ScimError::MethodNotAllowed
}

/// The `/scim/v2` service, to nest under [`SCIM_PREFIX`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/Schemas", get(discovery::list_schemas))
        .route("/Schemas/{id}", get(discovery::get_schema))
        .route("/ResourceTypes", get(discovery::list_resource_types))
        .route("/ResourceTypes/{id}", get(discovery::get_resource_type))
        .route("/.search", axum::routing::post(not_implemented))
        .route("/Users", get(users::list).post(users::create))
        .route(
            "/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::modify)
                .delete(users::delete),
        )
        .route("/Groups", get(groups::list).post(groups::create))
        .route(
            "/Groups/{id}",
            get(groups::get)
                .put(groups::replace)
                .patch(groups::modify)
                .delete(groups::delete),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
