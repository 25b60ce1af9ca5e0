//! API keys: creation (secret shown once), listing, rotation with overlap, revocation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use edgekeep_protocol::api::{
    ApiKeyInfo, CreateApiKeyRequest, CreatedApiKey, Permission, Role, RotateApiKeyRequest,
    valid_name,
};
use edgekeep_protocol::token::{MintedToken, TokenKind};

use super::rotation;
use super::{ApiJson, ApiPath, AppState};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::storage::{ApiKeyRecord, Storage, StorageError};

/// Converts a stored key to its public metadata.
pub fn key_info(key: ApiKeyRecord) -> ApiKeyInfo {
    ApiKeyInfo {
        id: key.id,
        member_id: key.member_id,
        name: key.name,
        prefix: key.prefix,
        scopes: key.scopes,
        created_at: key.created_at,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        last_used_at: key.last_used_at,
        replaced_by: key.replaced_by,
    }
}

/// Mints a new key record and its secret.
pub fn mint_key(
    state: &AppState,
    org_id: &str,
    member_id: &str,
    name: &str,
    scopes: Vec<Permission>,
    now: i64,
) -> Result<(ApiKeyRecord, MintedToken), ApiError> {
    let secret =
        MintedToken::mint(TokenKind::ApiKey, state.rng()).map_err(|_| ApiError::internal())?;
    let record = ApiKeyRecord {
        id: state.new_id("key")?,
        org_id: org_id.to_owned(),
        member_id: member_id.to_owned(),
        name: name.to_owned(),
        prefix: format!("{}{}", TokenKind::ApiKey.prefix(), secret.lookup()),
        hash: secret.hash(),
        scopes,
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        replaced_by: None,
    };
    Ok((record, secret))
}

/// The role of the member holding a key; the strictest role if the member was removed.
fn holder_role(storage: &dyn Storage, org_id: &str, member_id: &str) -> Result<Role, StorageError> {
    Ok(storage
        .member(org_id, member_id)?
        .map_or(Role::Owner, |m| m.role))
}

async fn manageable_key(
    state: &AppState,
    caller: &ApiCaller,
    key_id: String,
) -> Result<(ApiKeyRecord, Role), ApiError> {
    let org_id = caller.org_id.clone();
    let (key, role) = state
        .blocking(move |s| {
            let Some(key) = s.api_key(&org_id, &key_id)? else {
                return Ok(None);
            };
            let role = holder_role(s, &org_id, &key.member_id)?;
            Ok(Some((key, role)))
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !caller
        .role
        .may_manage(&caller.member_id, &key.member_id, role)
    {
        return Err(ApiError::forbidden(
            "the caller may not manage this member's keys",
        ));
    }
    Ok((key, role))
}

/// The scopes a key minted by `caller` for a holder with `holder_role` carries: the requested
/// ones (default: all the holder's role allows that the caller holds), refused when any exceeds
/// the holder's role or the calling key's own effective scope. Every path that mints an API key
/// goes through here, so a key never yields a key wider than itself.
pub fn grantable_scopes(
    caller: &ApiCaller,
    holder_role: Role,
    requested: Option<Vec<Permission>>,
) -> Result<Vec<Permission>, ApiError> {
    let Some(mut scopes) = requested else {
        return Ok(holder_role
            .permissions()
            .iter()
            .copied()
            .filter(|p| caller.has(*p))
            .collect());
    };
    scopes.sort();
    scopes.dedup();
    if scopes
        .iter()
        .any(|p| !holder_role.allows(*p) || !caller.has(*p))
    {
        return Err(ApiError::forbidden(
            "scope exceeds the member's role or the caller's own scope",
        ));
    }
    Ok(scopes)
}

/// Lists API keys: Admins and Owners see the org's keys, Members their own.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = [])), responses((status = 200, body = [ApiKeyInfo])))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    caller.require(Permission::KeysRead)?;
    let org_id = caller.org_id.clone();
    let keys = state.blocking(move |s| s.api_keys(&org_id)).await?;
    let see_all = caller.role >= Role::Admin;
    Ok(Json(
        keys.into_iter()
            .filter(|k| see_all || k.member_id == caller.member_id)
            .map(key_info)
            .collect(),
    ))
}

/// Creates a key for the caller or a member it manages. The scope may not exceed the member's
/// role nor the calling key's own scope. The secret is in this answer only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = [])), request_body = CreateApiKeyRequest,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    caller.require(Permission::KeysWrite)?;
    if !valid_name(&body.name) {
        return Err(ApiError::bad_request(
            "name must be 1 to 100 characters without control characters",
        ));
    }
    let member_id = body.member_id.unwrap_or_else(|| caller.member_id.clone());
    let (org_id, id) = (caller.org_id.clone(), member_id.clone());
    let member = state
        .blocking(move |s| s.member(&org_id, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !caller
        .role
        .may_manage(&caller.member_id, &member.id, member.role)
    {
        return Err(ApiError::forbidden(
            "the caller may not manage this member's keys",
        ));
    }
    let scopes = grantable_scopes(&caller, member.role, body.scopes)?;
    let now = crate::now();
    let (record, secret) = mint_key(&state, &caller.org_id, &member.id, &body.name, scopes, now)?;
    let event = caller.event("api_key.create", format!("api_key:{}", record.id), now);
    let stored = record.clone();
    state
        .blocking(move |s| s.insert_api_key(&stored, &event))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key_info(record),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Rotates a key: a new key with the same holder, name and scope; the old one keeps working
/// for the overlap window, then expires. A key may only rotate keys no wider than itself.
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys", security(("api_key" = [])), request_body = RotateApiKeyRequest,
    params(("id" = String, Path, description = "Key id")),
    responses((status = 201, body = CreatedApiKey), (status = 404, body = edgekeep_protocol::ErrorBody), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(key_id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    caller.require(Permission::KeysWrite)?;
    let overlap = rotation::overlap(&body, |r: RotateApiKeyRequest| r.overlap_seconds)?;
    let (old, holder) = manageable_key(&state, &caller, key_id).await?;
    rotation::ensure_rotatable(old.revoked_at, old.replaced_by.as_deref())?;
    let live_scopes = old
        .scopes
        .iter()
        .copied()
        .filter(|p| holder.allows(*p))
        .collect();
    let scopes = grantable_scopes(&caller, holder, Some(live_scopes)).map_err(|_| {
        ApiError::forbidden("a key may not rotate a key with a wider scope than its own")
    })?;
    let now = crate::now();
    let (record, secret) = mint_key(
        &state,
        &caller.org_id,
        &old.member_id,
        &old.name,
        scopes,
        now,
    )?;
    let event = caller.event(
        "api_key.rotate",
        format!("api_key:{}->api_key:{}", old.id, record.id),
        now,
    );
    let stored = record.clone();
    let org_id = caller.org_id.clone();
    let old_expires = now + overlap;
    state
        .blocking(move |s| s.rotate_api_key(&org_id, &old.id, old_expires, &stored, &event))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key_info(record),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Revokes a key immediately.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = [])),
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(key_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::KeysWrite)?;
    let (key, _) = manageable_key(&state, &caller, key_id).await?;
    let now = crate::now();
    let event = caller.event("api_key.revoke", format!("api_key:{}", key.id), now);
    let org_id = caller.org_id.clone();
    state
        .blocking(move |s| s.revoke_api_key(&org_id, &key.id, now, &event))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
