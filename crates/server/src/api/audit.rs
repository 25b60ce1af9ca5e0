//! The audit trail over the API: JSON Lines export of a time range, chain verification, and
//! signed checkpoints of the chain head. All are limited to the caller's org and need
//! `audit:read` (Admins and Owners).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::{AuditCheckpoint, AuditRange, AuditVerification, Permission};

use super::{ApiJson, ApiQuery, AppState};
use crate::auth::ApiCaller;
use crate::error::ApiError;

/// Exports the org's audit entries with `from <= at < to` as JSON Lines (one
/// [`edgekeep_protocol::api::AuditEntry`] per line). The export itself is audited.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("api_key" = [])), params(AuditRange),
    responses((status = 200, description = "JSON Lines of AuditEntry", content_type = "application/jsonl"), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(range): ApiQuery<AuditRange>,
) -> Result<Response, ApiError> {
    caller.require(Permission::AuditRead)?;
    let now = crate::now();
    let event = caller.event("audit.export", format!("audit:{}", caller.org_id), now);
    let org_id = caller.org_id.clone();
    let entries = state
        .blocking(move |s| {
            let entries = s.audit_entries(&org_id, range.from, range.to)?;
            s.append_audit(std::slice::from_ref(&event))?;
            Ok(entries)
        })
        .await?;
    let mut body = String::new();
    for entry in &entries {
        body.push_str(&crate::audit::export_line(entry).map_err(|_| ApiError::internal())?);
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], body).into_response())
}

/// Verifies the org's audit chain and reports where it first breaks.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("api_key" = [])),
    responses((status = 200, body = AuditVerification), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<AuditVerification>, ApiError> {
    caller.require(Permission::AuditRead)?;
    verification(&state, caller.org_id, None).await
}

/// Signs the head of the org's audit chain as a checkpoint to keep outside the server. The
/// signing is audited (and so is not part of the checkpoint it returns).
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", security(("api_key" = [])),
    responses((status = 200, body = AuditCheckpoint), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<AuditCheckpoint>, ApiError> {
    caller.require(Permission::AuditRead)?;
    let now = crate::now();
    let org_id = caller.org_id.clone();
    let head = state
        .blocking(move |s| s.audit_head(&org_id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let signed =
        crate::audit::sign_checkpoint(state.desired_state_key(), &caller.org_id, &head, now);
    let event = caller.event(
        "audit.checkpoint",
        format!("audit:{}#{}", caller.org_id, head.seq),
        now,
    );
    state.audit(event).await?;
    Ok(Json(signed))
}

/// Verifies the org's chain and that it still holds the entry a signed checkpoint recorded
/// (so it was neither cut back nor rewritten since the checkpoint was taken).
#[utoipa::path(post, path = "/v1/audit/verify-checkpoint", tag = "audit", security(("api_key" = [])), request_body = AuditCheckpoint,
    responses((status = 200, body = AuditVerification), (status = 400, body = edgekeep_protocol::ErrorBody), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn verify_checkpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(checkpoint): ApiJson<AuditCheckpoint>,
) -> Result<Json<AuditVerification>, ApiError> {
    caller.require(Permission::AuditRead)?;
    if checkpoint.org_id != caller.org_id {
        return Err(ApiError::bad_request("the checkpoint is of another org"));
    }
    let public = state.desired_state_key().public_key();
    if !crate::audit::checkpoint_signed_by(&checkpoint, &public) {
        return Err(ApiError::bad_request(
            "the checkpoint's signature is not the server's",
        ));
    }
    verification(&state, caller.org_id, Some(checkpoint)).await
}

/// Verifies the org's chain (against `checkpoint` when given), as `GET /v1/audit/verify`
/// answers.
pub async fn verification(
    state: &AppState,
    org_id: String,
    checkpoint: Option<AuditCheckpoint>,
) -> Result<Json<AuditVerification>, ApiError> {
    let key = state.secret().audit_key();
    let report = state
        .blocking(move |s| crate::audit::verify_org(s, &key, &org_id, checkpoint.as_ref()))
        .await?;
    Ok(Json(match report.result {
        Ok(entries) => AuditVerification {
            intact: true,
            entries,
            problem: None,
        },
        Err(problem) => AuditVerification {
            intact: false,
            entries: 0,
            problem: Some(problem.to_string()),
        },
    }))
}
