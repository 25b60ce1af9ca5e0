//! `/scim/v2/Users`: create, read, list, replace, patch and delete the org's people.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use edgekeep_protocol::api::Role;

use super::auth::ScimCaller;
use super::body::{ScimBody, ScimResponse};
use super::error::ScimError;
use super::query::{list_query, projection};
use super::resources::{self, CASE_EXACT, USER_READ_ONLY, UserInput, user_input, user_json};
use super::{ScimPath, patch, run};
use crate::api::AppState;
use crate::storage::{MemberRecord, NewScimUser, ScimUserRecord, UserRecord};

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn params(query: Params) -> Result<Vec<(String, String)>, ScimError> {
    Ok(query?.0)
}

fn primary_email(input: &UserInput) -> Option<String> {
    input
        .emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| input.emails.first())
        .and_then(|e| edgekeep_protocol::people::normalize_email(&e.value))
}

fn apply_input(record: &mut ScimUserRecord, input: UserInput, now: i64) {
    record.user_name = input.user_name;
    record.external_id = input.external_id;
    record.name = input.name;
    record.display_name = input.display_name;
    record.emails = input.emails;
    record.active = input.active;
    record.updated_at = now;
}

async fn load(
    state: &AppState,
    caller: &ScimCaller,
    id: String,
) -> Result<ScimUserRecord, ScimError> {
    let org_id = caller.org_id.clone();
    run(state, move |s| s.scim_user(&org_id, &id))
        .await?
        .ok_or(ScimError::NotFound)
}

async fn save(
    state: &AppState,
    caller: &ScimCaller,
    record: ScimUserRecord,
) -> Result<ScimResponse, ScimError> {
    let member_id = state.new_id("mem")?;
    let event = caller.event(
        "scim.user.update",
        format!("scim_user:{}", record.id),
        record.updated_at,
    );
    let stored = run(state, move |s| {
        s.update_scim_user(&record, &member_id, &event)
    })
    .await?
    .ok_or(ScimError::NotFound)?;
    Ok(ScimResponse::ok(user_json(&stored, &caller.base)))
}

/// `POST /Users`: provisions a person with a Member membership in the token's org.
pub async fn create(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ScimError> {
    let input = user_input(&body)?;
    let now = crate::now();
    let user = UserRecord {
        id: state.new_id("usr")?,
        handle: crate::identity::new_user_handle(state.rng()).map_err(|_| ScimError::Internal)?,
        email: primary_email(&input),
        display_name: String::new(),
        created_at: now,
        deactivated_at: None,
    };
    let mut record = ScimUserRecord {
        id: state.new_id("scu")?,
        org_id: caller.org_id.clone(),
        user_id: user.id.clone(),
        member_id: state.new_id("mem")?,
        user_name: String::new(),
        external_id: None,
        name: Default::default(),
        display_name: None,
        emails: Vec::new(),
        active: true,
        created_at: now,
        updated_at: now,
    };
    apply_input(&mut record, input, now);
    let shown = record.shown_name();
    let user = UserRecord {
        display_name: shown.clone(),
        ..user
    };
    let member = MemberRecord {
        id: record.member_id.clone(),
        org_id: caller.org_id.clone(),
        name: shown,
        role: Role::Member,
        created_at: now,
        user_id: Some(user.id.clone()),
    };
    let event = caller.event(
        "scim.user.create",
        format!("scim_user:{} member:{}", record.id, member.id),
        now,
    );
    let stored = record.clone();
    run(&state, move |s| {
        s.create_scim_user(&NewScimUser {
            record: &stored,
            user: &user,
            member: &member,
            audit: &event,
        })
    })
    .await?;
    Ok(ScimResponse::created(user_json(&record, &caller.base)))
}

/// `GET /Users/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
    query: Params,
) -> Result<ScimResponse, ScimError> {
    let (attributes, excluded) = projection(&params(query)?);
    let record = load(&state, &caller, id).await?;
    let json = user_json(&record, &caller.base);
    Ok(ScimResponse::ok(resources::project(
        json,
        attributes.as_deref(),
        excluded.as_deref(),
    )))
}

/// `GET /Users`: `filter` (`userName eq`, `externalId eq`, `id eq`), `startIndex`, `count`.
pub async fn list(
    State(state): State<AppState>,
    caller: ScimCaller,
    query: Params,
) -> Result<ScimResponse, ScimError> {
    let query = list_query(&params(query)?, "userName")?;
    let org_id = caller.org_id.clone();
    let (lookup, offset, limit) = (query.lookup.clone(), query.start_index - 1, query.count);
    let page = run(&state, move |s| {
        s.scim_users(&org_id, &lookup, offset, limit)
    })
    .await?;
    Ok(ScimResponse::ok(
        query.answer(&page, |u| user_json(u, &caller.base)),
    ))
}

/// `PUT /Users/{id}`: replaces the attributes kept; `active: false` deprovisions.
pub async fn replace(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ScimError> {
    let input = user_input(&body)?;
    let mut record = load(&state, &caller, id).await?;
    apply_input(&mut record, input, crate::now());
    save(&state, &caller, record).await
}

/// `PATCH /Users/{id}`: RFC 7644 §3.5.2 operations; `active: false` deprovisions.
pub async fn modify(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ScimError> {
    let mut record = load(&state, &caller, id).await?;
    let serde_json::Value::Object(mut resource) = user_json(&record, &caller.base) else {
        return Err(ScimError::Internal);
    };
    patch::apply(&mut resource, &body, USER_READ_ONLY, CASE_EXACT)?;
    let input = user_input(&resource)?;
    apply_input(&mut record, input, crate::now());
    save(&state, &caller, record).await
}

/// `DELETE /Users/{id}`: deprovisions and forgets the SCIM user.
pub async fn delete(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimPath(id): ScimPath<String>,
) -> Result<StatusCode, ScimError> {
    let now = crate::now();
    let event = caller.event("scim.user.delete", format!("scim_user:{id}"), now);
    let org_id = caller.org_id.clone();
    let deleted = run(&state, move |s| {
        s.delete_scim_user(&org_id, &id, now, &event)
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ScimError::NotFound)
    }
}
