//! The audit trail over the API: JSON Lines export of a time range, and chain verification.
//! Both are limited to the caller's org and need `audit:read` (Admins and Owners).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::{AuditRange, AuditVerification, Permission};

use super::{ApiQuery, AppState};
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
        body.push_str(&serde_json::to_string(entry).map_err(|_| ApiError::internal())?);
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
    let org_id = caller.org_id.clone();
    let report = state
        .blocking(move |s| crate::audit::verify_org(s, &org_id))
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
