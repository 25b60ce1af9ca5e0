//! Bootstrap tokens and device administration (list, revoke a device or a group).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use edgekeep_protocol::api::{
    BootstrapTokenResponse, CreateBootstrapTokenRequest, DeviceInfo, Permission, RevokedCount,
    valid_group,
};
use edgekeep_protocol::token::{MintedToken, TokenKind};

use super::{ApiJson, ApiPath, AppState};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::storage::{BootstrapRecord, DeviceRecord};

/// Longest lifetime of a bootstrap token, seconds.
pub const MAX_BOOTSTRAP_TTL_SECS: u32 = 600;

/// Converts a stored device to what the org sees.
pub fn device_info(device: DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        id: device.id,
        org_id: device.org_id,
        device_group: device.device_group,
        enrolled_at: device.enrolled_at,
        revoked_at: device.revoked_at,
    }
}

/// Mints a single-use bootstrap token for one device (TTL at most 10 minutes).
#[utoipa::path(post, path = "/v1/bootstrap-tokens", tag = "devices", security(("api_key" = [])), request_body = CreateBootstrapTokenRequest,
    responses((status = 201, body = BootstrapTokenResponse), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn create_bootstrap_token(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateBootstrapTokenRequest>,
) -> Result<(StatusCode, Json<BootstrapTokenResponse>), ApiError> {
    caller.require(Permission::BootstrapCreate)?;
    let ttl = body.ttl_seconds.unwrap_or(MAX_BOOTSTRAP_TTL_SECS);
    if ttl == 0 || ttl > MAX_BOOTSTRAP_TTL_SECS {
        return Err(ApiError::bad_request(
            "ttl_seconds must be between 1 and 600",
        ));
    }
    if body
        .device_group
        .as_deref()
        .is_some_and(|g| !valid_group(g))
    {
        return Err(ApiError::bad_request(
            "device_group must match [A-Za-z0-9._-]{1,64}",
        ));
    }
    let token =
        MintedToken::mint(TokenKind::Bootstrap, state.rng()).map_err(|_| ApiError::internal())?;
    let now = crate::now();
    let record = BootstrapRecord {
        hash: token.hash(),
        org_id: caller.org_id.clone(),
        device_group: body.device_group.clone(),
        created_by: caller.actor(),
        created_at: now,
        expires_at: now + i64::from(ttl),
        used_at: None,
    };
    let event = caller.event(
        "bootstrap_token.create",
        format!("bootstrap:{}", token.lookup()),
        now,
    );
    let expires_at = record.expires_at;
    state
        .blocking(move |s| s.insert_bootstrap_token(&record, &event))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(BootstrapTokenResponse {
            token: token.expose().to_owned(),
            org_id: caller.org_id,
            device_group: body.device_group,
            expires_at,
        }),
    ))
}

/// The org's devices.
#[utoipa::path(get, path = "/v1/devices", tag = "devices", security(("api_key" = [])), responses((status = 200, body = [DeviceInfo])))]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    caller.require(Permission::DevicesRead)?;
    let org_id = caller.org_id.clone();
    let devices = state.blocking(move |s| s.devices(&org_id)).await?;
    Ok(Json(devices.into_iter().map(device_info).collect()))
}

/// One device of the org.
#[utoipa::path(get, path = "/v1/devices/{id}", tag = "devices", security(("api_key" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceInfo), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn get_device(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(device_id): ApiPath<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    caller.require(Permission::DevicesRead)?;
    let org_id = caller.org_id.clone();
    let device = state
        .blocking(move |s| s.device(&org_id, &device_id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(device_info(device)))
}

/// Revokes a device; its next request fails with `device_revoked`.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke", tag = "devices", security(("api_key" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceInfo), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn revoke_device(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(device_id): ApiPath<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    caller.require(Permission::DevicesWrite)?;
    let now = crate::now();
    let event = caller.event("device.revoke", format!("device:{device_id}"), now);
    let org_id = caller.org_id.clone();
    let device = state
        .blocking(move |s| {
            if s.device(&org_id, &device_id)?.is_none() {
                return Ok(None);
            }
            s.revoke_device(&org_id, &device_id, now, &event)?;
            s.device(&org_id, &device_id)
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(device_info(device)))
}

/// Revokes every device of a group.
#[utoipa::path(post, path = "/v1/device-groups/{group}/revoke", tag = "devices", security(("api_key" = [])),
    params(("group" = String, Path, description = "Device group")),
    responses((status = 200, body = RevokedCount)))]
pub async fn revoke_group(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(group): ApiPath<String>,
) -> Result<Json<RevokedCount>, ApiError> {
    caller.require(Permission::DevicesWrite)?;
    if !valid_group(&group) {
        return Err(ApiError::bad_request(
            "device group must match [A-Za-z0-9._-]{1,64}",
        ));
    }
    let now = crate::now();
    let event = caller.event("device_group.revoke", format!("device_group:{group}"), now);
    let org_id = caller.org_id.clone();
    let revoked = state
        .blocking(move |s| s.revoke_device_group(&org_id, &group, now, &event))
        .await?;
    Ok(Json(RevokedCount { revoked }))
}
