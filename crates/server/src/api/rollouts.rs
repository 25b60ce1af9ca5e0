//! Rollouts: create, promote, pause, resume, roll back (Admin+, each audited), and read them
//! with progress counts from device reports.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{Permission, valid_group};
use edgekeep_protocol::artifact::valid_model_name;
use edgekeep_protocol::fleet::{
    CreateRolloutRequest, PromoteRolloutRequest, RolloutInfo, RolloutProgress,
};
use edgekeep_protocol::rollout::{BUCKETS, RolloutStatus};

use super::{ApiJson, ApiPath, AppState};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::storage::{RolloutChange, RolloutRecord, Storage, StorageError};

fn info(record: RolloutRecord, progress: &HashMap<String, RolloutProgress>) -> RolloutInfo {
    RolloutInfo {
        progress: progress.get(&record.id).cloned().unwrap_or_default(),
        id: record.id,
        model: record.model,
        version: record.version,
        previous_version: record.previous_version,
        device_group: record.device_group,
        basis_points: record.basis_points,
        status: record.status,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

/// Every rollout of an org with its progress, oldest first.
pub fn rollout_infos(
    storage: &dyn Storage,
    org_id: &str,
) -> Result<Vec<RolloutInfo>, StorageError> {
    let mut progress: HashMap<String, RolloutProgress> = HashMap::new();
    for (rollout, state, count) in storage.rollout_progress(org_id)? {
        progress.entry(rollout).or_default().add(state, count);
    }
    Ok(storage
        .rollouts(org_id)?
        .into_iter()
        .map(|r| info(r, &progress))
        .collect())
}

/// Starts a rollout of an approved version to a device group or the whole org. Devices outside
/// the percentage (and every device after a rollback) keep what older rollouts assign them.
#[utoipa::path(post, path = "/v1/rollouts", tag = "rollouts", security(("api_key" = [])), request_body = CreateRolloutRequest,
    responses((status = 201, body = RolloutInfo), (status = 404, body = edgekeep_protocol::ErrorBody), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn create_rollout(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateRolloutRequest>,
) -> Result<(StatusCode, Json<RolloutInfo>), ApiError> {
    caller.require(Permission::RolloutsWrite)?;
    if !valid_model_name(&body.model) {
        return Err(ApiError::bad_request("model name is invalid"));
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
    if body.basis_points > BUCKETS {
        return Err(ApiError::bad_request("basis_points must be 0 to 10000"));
    }
    let now = crate::now();
    let id = state.new_id("rol")?;
    let event = caller.event("rollout.create", format!("rollout:{id}"), now);
    let org_id = caller.org_id.clone();
    let record = state
        .blocking(move |s| {
            let Some(version) = s.model_version(&org_id, &body.model, body.version)? else {
                return Ok(Err(ApiError::not_found()));
            };
            if version.approved_at.is_none() {
                return Ok(Err(ErrorCode::VersionNotApproved.into()));
            }
            let previous = s
                .rollouts(&org_id)?
                .into_iter()
                .rev()
                .find(|r| r.model == body.model && r.device_group == body.device_group)
                .and_then(|r| match r.status {
                    RolloutStatus::RolledBack => r.previous_version,
                    _ => Some(r.version),
                })
                .filter(|v| *v != body.version);
            let record = RolloutRecord {
                id,
                org_id,
                model: body.model,
                version: body.version,
                previous_version: previous,
                device_group: body.device_group,
                basis_points: body.basis_points,
                status: RolloutStatus::Active,
                created_at: now,
                updated_at: now,
            };
            s.insert_rollout(&record, &event)?;
            Ok(Ok(record))
        })
        .await??;
    Ok((StatusCode::CREATED, Json(info(record, &HashMap::new()))))
}

/// The org's rollouts with progress.
#[utoipa::path(get, path = "/v1/rollouts", tag = "rollouts", security(("api_key" = [])), responses((status = 200, body = [RolloutInfo])))]
pub async fn list_rollouts(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<RolloutInfo>>, ApiError> {
    caller.require(Permission::FleetRead)?;
    let org_id = caller.org_id.clone();
    Ok(Json(
        state.blocking(move |s| rollout_infos(s, &org_id)).await?,
    ))
}

/// One rollout with progress.
#[utoipa::path(get, path = "/v1/rollouts/{id}", tag = "rollouts", security(("api_key" = [])),
    params(("id" = String, Path, description = "Rollout id")),
    responses((status = 200, body = RolloutInfo), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn get_rollout(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RolloutInfo>, ApiError> {
    caller.require(Permission::FleetRead)?;
    let org_id = caller.org_id.clone();
    state
        .blocking(move |s| rollout_infos(s, &org_id))
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

async fn transition(
    state: &AppState,
    caller: &ApiCaller,
    id: String,
    action: &'static str,
    change: impl FnOnce(&RolloutRecord) -> Result<(u32, RolloutStatus), ApiError> + Send + 'static,
    from: &'static [RolloutStatus],
) -> Result<Json<RolloutInfo>, ApiError> {
    caller.require(Permission::RolloutsWrite)?;
    let now = crate::now();
    let event = caller.event(action, format!("rollout:{id}"), now);
    let org_id = caller.org_id.clone();
    let lookup = id.clone();
    let outcome = state
        .blocking(move |s| {
            let Some(current) = s.rollouts(&org_id)?.into_iter().find(|r| r.id == lookup) else {
                return Ok(Err(ApiError::not_found()));
            };
            let (basis_points, status) = match change(&current) {
                Ok(next) => next,
                Err(err) => return Ok(Err(err)),
            };
            let change = RolloutChange {
                basis_points,
                status,
                from,
                at: now,
            };
            if !s.update_rollout(&org_id, &lookup, &change, &event)? {
                return Ok(Err(ApiError::new(
                    ErrorCode::Conflict,
                    "the rollout is not in a state that allows this",
                )));
            }
            Ok(Ok(()))
        })
        .await?;
    outcome?;
    let org_id = caller.org_id.clone();
    state
        .blocking(move |s| rollout_infos(s, &org_id))
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// Raises an active rollout's percentage (never lowers it: use pause or rollback).
#[utoipa::path(post, path = "/v1/rollouts/{id}/promote", tag = "rollouts", security(("api_key" = [])), request_body = PromoteRolloutRequest,
    params(("id" = String, Path, description = "Rollout id")),
    responses((status = 200, body = RolloutInfo), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn promote(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PromoteRolloutRequest>,
) -> Result<Json<RolloutInfo>, ApiError> {
    let target = body.basis_points;
    let change = move |current: &RolloutRecord| {
        if target > BUCKETS || target <= current.basis_points {
            return Err(ApiError::bad_request(
                "basis_points must be above the current share and at most 10000",
            ));
        }
        Ok((target, RolloutStatus::Active))
    };
    transition(
        &state,
        &caller,
        id,
        "rollout.promote",
        change,
        &[RolloutStatus::Active],
    )
    .await
}

/// Pauses an active rollout: devices already covered keep the version; no promotion.
#[utoipa::path(post, path = "/v1/rollouts/{id}/pause", tag = "rollouts", security(("api_key" = [])),
    params(("id" = String, Path, description = "Rollout id")),
    responses((status = 200, body = RolloutInfo), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RolloutInfo>, ApiError> {
    let change = |c: &RolloutRecord| Ok((c.basis_points, RolloutStatus::Paused));
    transition(
        &state,
        &caller,
        id,
        "rollout.pause",
        change,
        &[RolloutStatus::Active],
    )
    .await
}

/// Resumes a paused rollout.
#[utoipa::path(post, path = "/v1/rollouts/{id}/resume", tag = "rollouts", security(("api_key" = [])),
    params(("id" = String, Path, description = "Rollout id")),
    responses((status = 200, body = RolloutInfo), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RolloutInfo>, ApiError> {
    let change = |c: &RolloutRecord| Ok((c.basis_points, RolloutStatus::Active));
    transition(
        &state,
        &caller,
        id,
        "rollout.resume",
        change,
        &[RolloutStatus::Paused],
    )
    .await
}

/// Rolls back: every targeted device goes back to what older rollouts assign it (final).
#[utoipa::path(post, path = "/v1/rollouts/{id}/rollback", tag = "rollouts", security(("api_key" = [])),
    params(("id" = String, Path, description = "Rollout id")),
    responses((status = 200, body = RolloutInfo), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RolloutInfo>, ApiError> {
    let change = |c: &RolloutRecord| Ok((c.basis_points, RolloutStatus::RolledBack));
    transition(
        &state,
        &caller,
        id,
        "rollout.rollback",
        change,
        &[RolloutStatus::Active, RolloutStatus::Paused],
    )
    .await
}
