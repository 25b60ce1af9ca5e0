//! The caller's org and its members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use edgekeep_protocol::api::{
    CreateMemberRequest, MemberInfo, OrgInfo, Permission, Role, SetRoleRequest, valid_name,
};

use super::{ApiJson, ApiPath, AppState};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::storage::MemberRecord;

fn member_info(m: MemberRecord) -> MemberInfo {
    MemberInfo {
        id: m.id,
        name: m.name,
        role: m.role,
        created_at: m.created_at,
    }
}

/// The caller's org.
#[utoipa::path(get, path = "/v1/org", tag = "org", security(("api_key" = [])),
    responses((status = 200, body = OrgInfo), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn get_org(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<OrgInfo>, ApiError> {
    caller.require(Permission::OrgRead)?;
    let org_id = caller.org_id.clone();
    let org = state
        .blocking(move |s| s.org(&org_id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(OrgInfo {
        id: org.id,
        name: org.name,
        created_at: org.created_at,
    }))
}

/// The org's members.
#[utoipa::path(get, path = "/v1/members", tag = "org", security(("api_key" = [])), responses((status = 200, body = [MemberInfo])))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<MemberInfo>>, ApiError> {
    caller.require(Permission::MembersRead)?;
    let org_id = caller.org_id.clone();
    let members = state.blocking(move |s| s.members(&org_id)).await?;
    Ok(Json(members.into_iter().map(member_info).collect()))
}

/// Adds a member. Roles above Member need `roles:grant` (Owners only).
#[utoipa::path(post, path = "/v1/members", tag = "org", security(("api_key" = [])), request_body = CreateMemberRequest,
    responses((status = 201, body = MemberInfo), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn create_member(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateMemberRequest>,
) -> Result<(StatusCode, Json<MemberInfo>), ApiError> {
    caller.require(Permission::MembersWrite)?;
    if body.role > Role::Member {
        caller.require(Permission::RolesGrant)?;
        caller.require_step_up(&state)?;
    }
    if !valid_name(&body.name) {
        return Err(ApiError::bad_request(
            "name must be 1 to 100 characters without control characters",
        ));
    }
    let now = crate::now();
    let member = MemberRecord {
        id: state.new_id("mem")?,
        org_id: caller.org_id.clone(),
        name: body.name,
        role: body.role,
        created_at: now,
        user_id: None,
    };
    let event = caller.event(
        &format!("member.create.{}", body.role.as_str()),
        format!("member:{}", member.id),
        now,
    );
    let stored = member.clone();
    state
        .blocking(move |s| s.insert_member(&stored, &event))
        .await?;
    Ok((StatusCode::CREATED, Json(member_info(member))))
}

/// Grants or withdraws a role (Owners only). The last Owner cannot be demoted.
#[utoipa::path(put, path = "/v1/members/{id}/role", tag = "org", security(("api_key" = [])), request_body = SetRoleRequest,
    params(("id" = String, Path, description = "Member id")),
    responses((status = 200, body = MemberInfo), (status = 404, body = edgekeep_protocol::ErrorBody), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(member_id): ApiPath<String>,
    ApiJson(body): ApiJson<SetRoleRequest>,
) -> Result<Json<MemberInfo>, ApiError> {
    caller.require(Permission::RolesGrant)?;
    caller.require_step_up(&state)?;
    let (org_id, id) = (caller.org_id.clone(), member_id.clone());
    let mut member = state
        .blocking(move |s| s.member(&org_id, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let now = crate::now();
    let event = caller.event(
        &format!(
            "member.role.{}_to_{}",
            member.role.as_str(),
            body.role.as_str()
        ),
        format!("member:{member_id}"),
        now,
    );
    let org_id = caller.org_id.clone();
    let role = body.role;
    state
        .blocking(move |s| s.set_member_role(&org_id, &member_id, role, &event))
        .await?;
    member.role = role;
    Ok(Json(member_info(member)))
}

/// Removes a member the caller may manage and revokes its keys.
#[utoipa::path(delete, path = "/v1/members/{id}", tag = "org", security(("api_key" = [])),
    params(("id" = String, Path, description = "Member id")),
    responses((status = 204), (status = 403, body = edgekeep_protocol::ErrorBody), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(member_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::MembersWrite)?;
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
            "only an Owner may remove an Admin or Owner",
        ));
    }
    let now = crate::now();
    let event = caller.event("member.remove", format!("member:{member_id}"), now);
    let org_id = caller.org_id.clone();
    state
        .blocking(move |s| s.remove_member(&org_id, &member_id, now, &event))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
