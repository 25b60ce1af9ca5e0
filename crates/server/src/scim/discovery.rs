//! `/ServiceProviderConfig`, `/Schemas` and `/ResourceTypes` (RFC 7644 §4).

use super::ScimPath;
use super::auth::ScimCaller;
use super::body::ScimResponse;
use super::error::ScimError;
use super::query::MAX_COUNT;
use super::resources;

/// `GET /ServiceProviderConfig`.
pub async fn service_provider_config(caller: ScimCaller) -> ScimResponse {
    ScimResponse::ok(resources::service_provider_config(&caller.base, MAX_COUNT))
}

fn schemas(base: &str) -> Vec<serde_json::Value> {
    vec![resources::user_schema(base), resources::group_schema(base)]
}

/// `GET /Schemas`.
pub async fn list_schemas(caller: ScimCaller) -> ScimResponse {
    let all = schemas(&caller.base);
    ScimResponse::ok(resources::list(all.len() as u64, 1, all))
}

/// `GET /Schemas/{id}`.
pub async fn get_schema(
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
) -> Result<ScimResponse, ScimError> {
    schemas(&caller.base)
        .into_iter()
        .find(|s| s["id"] == id.as_str())
        .map(ScimResponse::ok)
        .ok_or(ScimError::NotFound)
}

/// `GET /ResourceTypes`.
pub async fn list_resource_types(caller: ScimCaller) -> ScimResponse {
    let all = resources::resource_types(&caller.base);
    ScimResponse::ok(resources::list(all.len() as u64, 1, all))
}

/// `GET /ResourceTypes/{id}`.
pub async fn get_resource_type(
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
) -> Result<ScimResponse, ScimError> {
    resources::resource_types(&caller.base)
        .into_iter()
        .find(|s| s["id"] == id.as_str())
        .map(ScimResponse::ok)
        .ok_or(ScimError::NotFound)
}
