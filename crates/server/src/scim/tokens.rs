//! `/v1` administration of SCIM: org SCIM tokens (created, rotated with an overlap, revoked;
//! the secret shown once, only its SHA-256 stored) and the mapping of SCIM groups to roles.
//! All of it is Owner-level: it needs `roles:grant` (a directory with a token can grant the
//! roles its groups map to) and, for a session, a fresh step-up.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use edgekeep_protocol::api::{Permission, Role, valid_name};
use edgekeep_protocol::scim::{
    CreateScimTokenRequest, CreatedScimToken, RotateScimTokenRequest, ScimGroupInfo, ScimTokenInfo,
    SetScimGroupRoleRequest,
};
use edgekeep_protocol::token::{MintedToken, TokenKind};

use crate::api::rotation;
use crate::api::{ApiJson, ApiPath, AppState};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::storage::{ScimLookup, ScimTokenRecord};

fn token_info(token: ScimTokenRecord) -> ScimTokenInfo {
    ScimTokenInfo {
        id: token.id,
        name: token.name,
        prefix: token.prefix,
        created_at: token.created_at,
        expires_at: token.expires_at,
        revoked_at: token.revoked_at,
        last_used_at: token.last_used_at,
        replaced_by: token.replaced_by,
    }
}

fn require_owner_level(state: &AppState, caller: &ApiCaller) -> Result<(), ApiError> {
    caller.require(Permission::RolesGrant)?;
    caller.require_step_up(state)
}

fn mint(
    state: &AppState,
    org_id: &str,
    name: &str,
    now: i64,
) -> Result<(ScimTokenRecord, MintedToken), ApiError> {
    let secret =
        MintedToken::mint(TokenKind::Scim, state.rng()).map_err(|_| ApiError::internal())?;
    let record = ScimTokenRecord {
        id: state.new_id("sct")?,
        org_id: org_id.to_owned(),
        name: name.to_owned(),
        prefix: format!("{}{}", TokenKind::Scim.prefix(), secret.lookup()),
        hash: secret.hash(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        replaced_by: None,
    };
    Ok((record, secret))
}

/// Lists the org's SCIM tokens (metadata only).
#[utoipa::path(get, path = "/v1/scim-tokens", tag = "scim", security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = [ScimTokenInfo]), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<ScimTokenInfo>>, ApiError> {
    caller.require(Permission::RolesGrant)?;
    let org_id = caller.org_id.clone();
    let tokens = state.blocking(move |s| s.scim_tokens(&org_id)).await?;
    Ok(Json(tokens.into_iter().map(token_info).collect()))
}

/// Creates a SCIM token for the org (Owner, step-up). The secret is in this answer only.
#[utoipa::path(post, path = "/v1/scim-tokens", tag = "scim", security(("api_key" = []), ("session" = [])),
    request_body = CreateScimTokenRequest,
    responses((status = 201, body = CreatedScimToken), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateScimTokenRequest>,
) -> Result<(StatusCode, Json<CreatedScimToken>), ApiError> {
    require_owner_level(&state, &caller)?;
    if !valid_name(&body.name) {
        return Err(ApiError::bad_request(
            "name must be 1 to 100 characters without control characters",
        ));
    }
    let now = crate::now();
    let (record, secret) = mint(&state, &caller.org_id, &body.name, now)?;
    let event = caller.event(
        "scim_token.create",
        format!("scim_token:{}", record.id),
        now,
    );
    let stored = record.clone();
    state
        .blocking(move |s| s.insert_scim_token(&stored, &event))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedScimToken {
            token: token_info(record),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Rotates a SCIM token: a new one with the same name; the old one works for the overlap
/// window (default 300 s, at most a day), then expires.
#[utoipa::path(post, path = "/v1/scim-tokens/{id}/rotate", tag = "scim", security(("api_key" = []), ("session" = [])),
    request_body = RotateScimTokenRequest, params(("id" = String, Path, description = "SCIM token id")),
    responses((status = 201, body = CreatedScimToken), (status = 404, body = edgekeep_protocol::ErrorBody), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(token_id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedScimToken>), ApiError> {
    require_owner_level(&state, &caller)?;
    let overlap = rotation::overlap(&body, |r: RotateScimTokenRequest| r.overlap_seconds)?;
    let org_id = caller.org_id.clone();
    let old = state
        .blocking(move |s| s.scim_token(&org_id, &token_id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    rotation::ensure_rotatable(old.revoked_at, old.replaced_by.as_deref())?;
    let now = crate::now();
    let (record, secret) = mint(&state, &caller.org_id, &old.name, now)?;
    let event = caller.event(
        "scim_token.rotate",
        format!("scim_token:{}->scim_token:{}", old.id, record.id),
        now,
    );
    let stored = record.clone();
    let org_id = caller.org_id.clone();
    let old_expires = now + overlap;
    state
        .blocking(move |s| s.rotate_scim_token(&org_id, &old.id, old_expires, &stored, &event))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedScimToken {
            token: token_info(record),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Revokes a SCIM token now.
#[utoipa::path(delete, path = "/v1/scim-tokens/{id}", tag = "scim", security(("api_key" = []), ("session" = [])),
    params(("id" = String, Path, description = "SCIM token id")),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(token_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    require_owner_level(&state, &caller)?;
    let now = crate::now();
    let event = caller.event("scim_token.revoke", format!("scim_token:{token_id}"), now);
    let org_id = caller.org_id.clone();
    let revoked = state
        .blocking(move |s| s.revoke_scim_token(&org_id, &token_id, now, &event))
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// The org's SCIM groups with the roles they map to.
#[utoipa::path(get, path = "/v1/scim-groups", tag = "scim", security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = [ScimGroupInfo])))]
pub async fn list_groups(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<ScimGroupInfo>>, ApiError> {
    caller.require(Permission::MembersRead)?;
    let org_id = caller.org_id.clone();
    let page = state
        .blocking(move |s| s.scim_groups(&org_id, &ScimLookup::All, 0, u64::MAX >> 1))
        .await?;
    Ok(Json(
        page.items
            .into_iter()
            .map(|g| ScimGroupInfo {
                members: g.members.len() as u64,
                id: g.id,
                display_name: g.display_name,
                role: g.role,
            })
            .collect(),
    ))
}

/// Maps a SCIM group to a role (Owner, step-up): its members get the highest role of their
/// groups, Member without one. A change that would leave the org without an Owner is refused.
#[utoipa::path(put, path = "/v1/scim-groups/{id}/role", tag = "scim", security(("api_key" = []), ("session" = [])),
    request_body = SetScimGroupRoleRequest, params(("id" = String, Path, description = "SCIM group id")),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn set_group_role(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(group_id): ApiPath<String>,
    ApiJson(body): ApiJson<SetScimGroupRoleRequest>,
) -> Result<StatusCode, ApiError> {
    require_owner_level(&state, &caller)?;
    let role = body.role.filter(|r| *r > Role::Member);
    let now = crate::now();
    let event = caller.event(
        &format!("scim_group.role.{}", role.map_or("none", Role::as_str)),
        format!("scim_group:{group_id}"),
        now,
    );
    let org_id = caller.org_id.clone();
    let found = state
        .blocking(move |s| s.set_scim_group_role(&org_id, &group_id, role, &event))
        .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
