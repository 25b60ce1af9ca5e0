//! `/scim/v2/Groups`: the org's directory groups and their members. A group an Owner mapped
//! to a role (`PUT /v1/scim-groups/{id}/role`) gives its members that role, highest wins.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;

use super::auth::ScimCaller;
use super::body::{ScimBody, ScimResponse};
use super::error::ScimError;
use super::query::{list_query, projection};
use super::resources::{self, CASE_EXACT, GROUP_READ_ONLY, GroupInput, group_input, group_json};
use super::{ScimPath, patch, run};
use crate::api::AppState;
use crate::storage::{ScimGroupRecord, ScimLookup};

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

async fn load(
    state: &AppState,
    caller: &ScimCaller,
    id: String,
) -> Result<ScimGroupRecord, ScimError> {
    let org_id = caller.org_id.clone();
    run(state, move |s| s.scim_group(&org_id, &id))
        .await?
        .ok_or(ScimError::NotFound)
}

/// Every member must be a SCIM user of the caller's org.
async fn check_members(
    state: &AppState,
    caller: &ScimCaller,
    input: &GroupInput,
) -> Result<(), ScimError> {
    let org_id = caller.org_id.clone();
    let members = input.members.clone();
    let all_known = run(state, move |s| {
        for id in &members {
            if s.scim_user(&org_id, id)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    if all_known {
        Ok(())
    } else {
        Err(ScimError::InvalidValue(
            "a member is not a user of this org",
        ))
    }
}

fn apply_input(group: &mut ScimGroupRecord, input: GroupInput, now: i64) {
    group.display_name = input.display_name;
    group.external_id = input.external_id;
    group.members = input.members;
    group.updated_at = now;
}

async fn save(
    state: &AppState,
    caller: &ScimCaller,
    group: ScimGroupRecord,
) -> Result<ScimResponse, ScimError> {
    let event = caller.event(
        "scim.group.update",
        format!("scim_group:{}", group.id),
        group.updated_at,
    );
    let stored = group.clone();
    if !run(state, move |s| s.update_scim_group(&stored, &event)).await? {
        return Err(ScimError::NotFound);
    }
    let group = load(state, caller, group.id).await?;
    Ok(ScimResponse::ok(group_json(&group, &caller.base)))
}

/// `POST /Groups`.
pub async fn create(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ScimError> {
    let input = group_input(&body)?;
    check_members(&state, &caller, &input).await?;
    let now = crate::now();
    let mut group = ScimGroupRecord {
        id: state.new_id("scg")?,
        org_id: caller.org_id.clone(),
        display_name: String::new(),
        external_id: None,
        role: None,
        members: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    apply_input(&mut group, input, now);
    let event = caller.event("scim.group.create", format!("scim_group:{}", group.id), now);
    let stored = group.clone();
    run(&state, move |s| s.create_scim_group(&stored, &event)).await?;
    let group = load(&state, &caller, group.id).await?;
    Ok(ScimResponse::created(group_json(&group, &caller.base)))
}

/// `GET /Groups/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
    query: Params,
) -> Result<ScimResponse, ScimError> {
    let (attributes, excluded) = projection(&query?.0);
    let group = load(&state, &caller, id).await?;
    Ok(ScimResponse::ok(resources::project(
        group_json(&group, &caller.base),
        attributes.as_deref(),
        excluded.as_deref(),
    )))
}

/// `GET /Groups`: `filter` (`displayName eq`, `externalId eq`, `id eq`), `startIndex`,
/// `count`.
pub async fn list(
    State(state): State<AppState>,
    caller: ScimCaller,
    query: Params,
) -> Result<ScimResponse, ScimError> {
    let query = list_query(&query?.0, "displayName")?;
    let org_id = caller.org_id.clone();
    let lookup: ScimLookup = query.lookup.clone();
    let (offset, limit) = (query.start_index - 1, query.count);
    let page = run(&state, move |s| {
        s.scim_groups(&org_id, &lookup, offset, limit)
    })
    .await?;
    Ok(ScimResponse::ok(
        query.answer(&page, |g| group_json(g, &caller.base)),
    ))
}

/// `PUT /Groups/{id}`.
pub async fn replace(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ScimError> {
    let input = group_input(&body)?;
    let mut group = load(&state, &caller, id).await?;
    check_members(&state, &caller, &input).await?;
    apply_input(&mut group, input, crate::now());
    save(&state, &caller, group).await
}

/// `PATCH /Groups/{id}`: members added and removed, the name replaced.
pub async fn modify(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ScimError> {
    let mut group = load(&state, &caller, id).await?;
    let serde_json::Value::Object(mut resource) = group_json(&group, &caller.base) else {
        return Err(ScimError::Internal);
    };
    patch::apply(&mut resource, &body, GROUP_READ_ONLY, CASE_EXACT)?;
    let input = group_input(&resource)?;
    check_members(&state, &caller, &input).await?;
    apply_input(&mut group, input, crate::now());
    save(&state, &caller, group).await
}

/// `DELETE /Groups/{id}`: its members lose its role.
pub async fn delete(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
) -> Result<StatusCode, ScimError> {
    let now = crate::now();
    let event = caller.event("scim.group.delete", format!("scim_group:{id}"), now);
    let org_id = caller.org_id.clone();
    if run(&state, move |s| {
        s.delete_scim_group(&org_id, &id, now, &event)
    })
    .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ScimError::NotFound)
    }
}
