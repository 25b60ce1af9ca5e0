//! People in an org: invitations (Admin+), and a signed-in person's own view: who they are,
//! their sessions (list, revoke, log out everywhere, switch org) and passkeys (list, rename,
//! remove; at least one remains).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{Permission, Role, valid_name};
use edgekeep_protocol::people::{
    CreateInvitationRequest, InvitationCreated, InvitationInfo, MeInfo, MembershipInfo,
    PasskeyInfo, RenamePasskeyRequest, SessionCreated, SessionInfo, SwitchOrgRequest,
    normalize_email,
};
use edgekeep_protocol::token::{MintedToken, TokenKind};

use super::{ApiJson, ApiPath, AppState};
use crate::auth::{ApiCaller, CallerCredential};
use crate::error::ApiError;
use crate::identity::session::{self, NewSession, clear_cookie, session_cookie};
use crate::storage::{InvitationRecord, MemberRecord, PasskeyRecord, SessionRecord};

/// Default and longest invitation lifetimes.
const INVITATION_TTL_SECS: i64 = 7 * 24 * 3600;
const MAX_INVITATION_TTL_SECS: i64 = 30 * 24 * 3600;

fn invitation_info(record: InvitationRecord) -> InvitationInfo {
    InvitationInfo {
        id: record.id,
        email: record.email,
        role: record.role,
        created_by: record.created_by,
        created_at: record.created_at,
        expires_at: record.expires_at,
        accepted_at: record.accepted_at,
        revoked_at: record.revoked_at,
    }
}

/// Invites a person into the org (Admin+; a role above Member needs `roles:grant` and, for a
/// session, a step-up). The token is in the answer only; only its hash is stored.
#[utoipa::path(post, path = "/v1/invitations", tag = "people", security(("api_key" = []), ("session" = [])),
    request_body = CreateInvitationRequest,
    responses((status = 201, body = InvitationCreated), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn create_invitation(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateInvitationRequest>,
) -> Result<(StatusCode, Json<InvitationCreated>), ApiError> {
    caller.require(Permission::MembersWrite)?;
    if body.role > Role::Member {
        caller.require(Permission::RolesGrant)?;
        caller.require_step_up(&state)?;
    }
    let email = match body.email.as_deref() {
        None => None,
        Some(text) => {
            Some(normalize_email(text).ok_or_else(|| ApiError::bad_request("email is not valid"))?)
        }
    };
    let ttl = body.ttl_secs.unwrap_or(INVITATION_TTL_SECS);
    if !(60..=MAX_INVITATION_TTL_SECS).contains(&ttl) {
        return Err(ApiError::bad_request(
            "ttl_secs must be between 60 seconds and 30 days",
        ));
    }
    let token =
        MintedToken::mint(TokenKind::Invitation, state.rng()).map_err(|_| ApiError::internal())?;
    let now = crate::now();
    let record = InvitationRecord {
        id: state.new_id("inv")?,
        org_id: caller.org_id.clone(),
        token_hash: token.hash(),
        email,
        role: body.role,
        member_id: None,
        created_by: caller.actor(),
        created_at: now,
        expires_at: now + ttl,
        accepted_at: None,
        revoked_at: None,
    };
    let event = caller.event(
        &format!("invitation.create.{}", body.role.as_str()),
        format!("invitation:{}", record.id),
        now,
    );
    let stored = record.clone();
    state
        .blocking(move |s| s.insert_invitation(&stored, &event))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationCreated {
            invitation: invitation_info(record),
            token: token.expose().to_owned(),
        }),
    ))
}

/// The org's invitations.
#[utoipa::path(get, path = "/v1/invitations", tag = "people", security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = [InvitationInfo])))]
pub async fn list_invitations(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<InvitationInfo>>, ApiError> {
    caller.require(Permission::MembersRead)?;
    let org_id = caller.org_id.clone();
    let records = state.blocking(move |s| s.invitations(&org_id)).await?;
    Ok(Json(records.into_iter().map(invitation_info).collect()))
}

/// Revokes an open invitation.
#[utoipa::path(delete, path = "/v1/invitations/{id}", tag = "people", security(("api_key" = []), ("session" = [])),
    params(("id" = String, Path, description = "Invitation id")),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::MembersWrite)?;
    let now = crate::now();
    let event = caller.event("invitation.revoke", format!("invitation:{id}"), now);
    let org_id = caller.org_id.clone();
    let revoked = state
        .blocking(move |s| s.revoke_invitation(&org_id, &id, now, &event))
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// The person and session of a session caller; API keys are refused (they are not people).
pub(super) fn person(caller: &ApiCaller) -> Result<(&str, &str), ApiError> {
    match &caller.credential {
        CallerCredential::Session {
            user_id,
            session_id,
            ..
        } => Ok((user_id, session_id)),
        CallerCredential::ApiKey { .. } => Err(ApiError::forbidden(
            "this is for people signed in with a session, not API keys",
        )),
    }
}

/// How far a session speaks for its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach<'a> {
    /// In every org: a passkey session, one switched from it, or one stepped up with a passkey.
    Person,
    /// Only in this org: a session an org's identity provider started.
    Org(&'a str),
}

impl Reach<'_> {
    fn covers(self, org_id: &str) -> bool {
        match self {
            Self::Person => true,
            Self::Org(own) => own == org_id,
        }
    }
}

/// The reach of the caller's session (see [`crate::identity::session::speaks_for_person`]).
pub(super) fn reach<'a>(state: &AppState, caller: &'a ApiCaller) -> Reach<'a> {
    match &caller.credential {
        CallerCredential::Session {
            method,
            stepped_up_at,
            ..
        } if !crate::identity::session::speaks_for_person(method)
            && !state
                .config()
                .sessions
                .is_stepped_up(*stepped_up_at, crate::now()) =>
        {
            Reach::Org(&caller.org_id)
        }
        _ => Reach::Person,
    }
}

/// Refuses a session that speaks only in its org.
fn require_person_reach(state: &AppState, caller: &ApiCaller) -> Result<(), ApiError> {
    match reach(state, caller) {
        Reach::Person => Ok(()),
        Reach::Org(_) => Err(ApiError::forbidden(
            "a session from an org's identity provider acts only in that org; sign in with a \
             passkey (or step up) for this",
        )),
    }
}

/// The person behind the session, and every org they belong to.
#[utoipa::path(get, path = "/v1/me", tag = "people", security(("session" = [])),
    responses((status = 200, body = MeInfo), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<MeInfo>, ApiError> {
    let (user_id, _) = person(&caller)?;
    let id = user_id.to_owned();
    let (user, memberships) = state
        .blocking(move |s| Ok((s.user(&id)?, s.memberships(&id)?)))
        .await?;
    let user = user.ok_or_else(ApiError::not_found)?;
    Ok(Json(MeInfo {
        user_id: user.id,
        display_name: user.display_name,
        email: user.email,
        org_id: caller.org_id.clone(),
        role: caller.role,
        memberships: memberships
            .into_iter()
            .map(|(member, org)| MembershipInfo {
                org_id: org.id,
                org_name: org.name,
                member_id: member.id,
                role: member.role,
            })
            .collect(),
    }))
}

fn session_info(record: SessionRecord, current: &str) -> SessionInfo {
    SessionInfo {
        current: record.id == current,
        id: record.id,
        org_id: record.org_id,
        method: record.method,
        created_at: record.created_at,
        last_seen_at: record.last_seen_at,
        expires_at: record.expires_at,
        stepped_up_at: record.stepped_up_at,
    }
}

/// The person's live sessions: in every org, or only in this one for a session from an org's
/// identity provider.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "people", security(("session" = [])),
    responses((status = 200, body = [SessionInfo])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let (user_id, current) = person(&caller)?;
    let (id, current) = (user_id.to_owned(), current.to_owned());
    let now = crate::now();
    let sessions = state
        .blocking(move |s| s.sessions_of_user(&id, now))
        .await?;
    let reach = reach(&state, &caller);
    Ok(Json(
        sessions
            .into_iter()
            .filter(|session| reach.covers(&session.org_id))
            .map(|s| session_info(s, &current))
            .collect(),
    ))
}

/// Ends one of the person's sessions (within this org only, for a session from an org's
/// identity provider).
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "people", security(("session" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(session_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let (user_id, _) = person(&caller)?;
    let user_id = user_id.to_owned();
    let now = crate::now();
    if let Reach::Org(org_id) = reach(&state, &caller) {
        let (id, target, org) = (user_id.clone(), session_id.clone(), org_id.to_owned());
        let in_org = state
            .blocking(move |s| s.sessions_of_user(&id, now))
            .await?
            .iter()
            .any(|session| session.id == target && session.org_id == org);
        if !in_org {
            return Err(ApiError::not_found());
        }
    }
    let event = caller.event("session.revoke", format!("session:{session_id}"), now);
    let revoked = state
        .blocking(move |s| s.revoke_session(&user_id, &session_id, now, &event))
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Ends the current session and clears its cookie.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "people", security(("session" = [])),
    responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    let (user_id, session_id) = person(&caller)?;
    let (user_id, session_id) = (user_id.to_owned(), session_id.to_owned());
    let now = crate::now();
    let event = caller.event("session.logout", format!("session:{session_id}"), now);
    state
        .blocking(move |s| s.revoke_session(&user_id, &session_id, now, &event))
        .await?;
    Ok((
        [(header::SET_COOKIE, clear_cookie())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

/// Ends every session of the person, in every org (this one included); for a session from an
/// org's identity provider, every session of the person in that org.
#[utoipa::path(post, path = "/v1/auth/logout-all", tag = "people", security(("session" = [])),
    responses((status = 204)))]
pub async fn logout_all(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    let (user_id, _) = person(&caller)?;
    let user_id = user_id.to_owned();
    let now = crate::now();
    if let Reach::Org(org_id) = reach(&state, &caller) {
        let (id, org) = (user_id.clone(), org_id.to_owned());
        let event = caller.event("session.logout_all", format!("user:{user_id}"), now);
        state
            .blocking(move |s| {
                for session in s.sessions_of_user(&id, now)? {
                    if session.org_id == org {
                        s.revoke_session(&id, &session.id, now, &event)?;
                    }
                }
                Ok(())
            })
            .await?;
        return Ok((
            [(header::SET_COOKIE, clear_cookie())],
            StatusCode::NO_CONTENT,
        )
            .into_response());
    }
    let id = user_id.clone();
    let orgs = state.blocking(move |s| s.memberships(&id)).await?;
    let events: Vec<_> = orgs
        .iter()
        .map(|(member, _)| {
            let mut event = caller.event("session.logout_all", format!("user:{user_id}"), now);
            event.org_id.clone_from(&member.org_id);
            event
        })
        .collect();
    state
        .blocking(move |s| s.revoke_user_sessions(&user_id, now, &events))
        .await?;
    Ok((
        [(header::SET_COOKIE, clear_cookie())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

/// Answers a started session: the cookie and the body with its CSRF token.
pub fn session_response(
    state: &AppState,
    started: &NewSession,
    role: Role,
    status: StatusCode,
) -> Response {
    let record = &started.record;
    let body = SessionCreated {
        session_id: record.id.clone(),
        org_id: record.org_id.clone(),
        user_id: record.user_id.clone(),
        member_id: record.member_id.clone(),
        role,
        csrf_token: state.secret().csrf_key().token(&record.hash),
        expires_at: record.expires_at,
    };
    let cookie = session_cookie(
        started.secret.expose(),
        state.config().sessions.absolute_timeout,
    );
    (status, [(header::SET_COOKIE, cookie)], Json(body)).into_response()
}

/// Switches to another org of the same person: a new session bound to it (the current one
/// ends; a step-up does not carry over). Refused from a session an identity provider started,
/// and into an org that requires SSO.
#[utoipa::path(post, path = "/v1/auth/switch-org", tag = "people", security(("session" = [])),
    request_body = SwitchOrgRequest,
    responses((status = 200, body = SessionCreated), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn switch_org(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<SwitchOrgRequest>,
) -> Result<Response, ApiError> {
    let (user_id, session_id) = person(&caller)?;
    let (user_id, session_id) = (user_id.to_owned(), session_id.to_owned());
    // An org's identity provider vouches for people in that org only, and an org that requires
    // SSO admits only its provider's sessions.
    if reach(&state, &caller) != Reach::Person {
        return Err(ApiError::forbidden(
            "a session from an org's identity provider cannot switch org; sign in to the other org",
        ));
    }
    let id = user_id.clone();
    let memberships = state.blocking(move |s| s.memberships(&id)).await?;
    let member: MemberRecord = memberships
        .into_iter()
        .map(|(member, _)| member)
        .find(|member| member.org_id == body.org_id)
        .ok_or_else(ApiError::not_found)?;
    let target = member.org_id.clone();
    if state.blocking(move |s| s.sso_required(&target)).await? {
        return Err(ApiError::forbidden(
            "that org requires signing in through its identity provider",
        ));
    }
    let started = session::mint(&state, &user_id, &member, "switch", false)?;
    let now = crate::now();
    let ended = caller.event("session.switch_org", format!("session:{session_id}"), now);
    let mut began = caller.event(
        "session.start.switch",
        format!("session:{}", started.record.id),
        now,
    );
    began.org_id.clone_from(&member.org_id);
    let record = started.record.clone();
    let user = user_id.clone();
    state
        .blocking(move |s| {
            s.insert_session(&record, &began)?;
            s.revoke_session(&user, &session_id, now, &ended)?;
            Ok(())
        })
        .await?;
    Ok(session_response(
        &state,
        &started,
        member.role,
        StatusCode::OK,
    ))
}

fn passkey_info(record: PasskeyRecord) -> PasskeyInfo {
    PasskeyInfo {
        id: record.id,
        name: record.name,
        created_at: record.created_at,
        last_used_at: record.last_used_at,
    }
}

/// The person's passkeys.
#[utoipa::path(get, path = "/v1/me/passkeys", tag = "people", security(("session" = [])),
    responses((status = 200, body = [PasskeyInfo])))]
pub async fn list_passkeys(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<PasskeyInfo>>, ApiError> {
    let (user_id, _) = person(&caller)?;
    require_person_reach(&state, &caller)?;
    let id = user_id.to_owned();
    let passkeys = state.blocking(move |s| s.passkeys(&id)).await?;
    Ok(Json(passkeys.into_iter().map(passkey_info).collect()))
}

/// Renames one of the person's passkeys.
#[utoipa::path(patch, path = "/v1/me/passkeys/{id}", tag = "people", security(("session" = [])),
    params(("id" = String, Path, description = "Credential id")), request_body = RenamePasskeyRequest,
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn rename_passkey(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RenamePasskeyRequest>,
) -> Result<StatusCode, ApiError> {
    let (user_id, _) = person(&caller)?;
    require_person_reach(&state, &caller)?;
    if !valid_name(&body.name) {
        return Err(ApiError::bad_request(
            "name must be 1 to 100 characters without control characters",
        ));
    }
    let user_id = user_id.to_owned();
    let now = crate::now();
    let event = caller.event("passkey.rename", format!("passkey:{}", short(&id)), now);
    let renamed = state
        .blocking(move |s| s.rename_passkey(&user_id, &id, &body.name, &event))
        .await?;
    if renamed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Removes one of the person's passkeys (not the last; needs a step-up).
#[utoipa::path(delete, path = "/v1/me/passkeys/{id}", tag = "people", security(("session" = [])),
    params(("id" = String, Path, description = "Credential id")),
    responses((status = 204), (status = 404, body = edgekeep_protocol::ErrorBody), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn remove_passkey(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let (user_id, _) = person(&caller)?;
    caller.require_step_up(&state)?;
    let user_id = user_id.to_owned();
    let now = crate::now();
    let event = caller.event("passkey.remove", format!("passkey:{}", short(&id)), now);
    let removed = state
        .blocking(move |s| s.remove_passkey(&user_id, &id, &event))
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ErrorCode::NotFound.into())
    }
}

/// A credential id shortened for the audit trail (ids are long and not secret).
pub fn short(credential_id: &str) -> String {
    credential_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect()
}
