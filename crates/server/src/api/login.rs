//! Signing in with passkeys: accepting an invitation with a new passkey, signing in with a
//! discoverable passkey, adding a passkey, and stepping up. Each is a WebAuthn ceremony in two
//! calls (`begin` returns the browser's options and a ceremony token; `finish` takes the
//! authenticator's response); the ceremony's state is kept server-side, single use, for a few
//! minutes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{Role, valid_name};
use edgekeep_protocol::people::{
    AcceptInvitationRequest, CeremonyStarted, FinishCeremonyRequest, LoginRequest, PasskeyInfo,
    normalize_email,
};
use edgekeep_protocol::token::{MintedToken, ParsedToken, TokenKind};
use serde::{Deserialize, Serialize};

use super::people::{person, session_response, short};
use super::{ApiJson, AppState};
use crate::auth::{ApiCaller, KnownCredential, address_key, fail, request_origin};
use crate::error::ApiError;
use crate::identity::csrf::is_same_origin;
use crate::identity::passkeys::{PasskeyError, PasskeyService, StoredPasskey};
use crate::identity::session::{self, secs};
use crate::storage::{
    Acceptance, AuditEvent, CeremonyRecord, MemberRecord, PasskeyRecord, UserRecord,
};

/// Ceremony kinds, as stored.
const INVITATION: &str = "invitation";
const LOGIN: &str = "login";
const REGISTER: &str = "register";
const STEP_UP: &str = "step_up";

/// What an invitation ceremony remembers between `begin` and `finish`.
#[derive(Serialize, Deserialize)]
struct InvitationCeremony {
    webauthn: String,
    invitation_hash: String,
    handle: uuid::Uuid,
    display_name: String,
    email: Option<String>,
}

fn passkeys(state: &AppState) -> Result<&PasskeyService, ApiError> {
    state.passkeys().ok_or_else(|| {
        ApiError::bad_request("passkeys need the server's public URL (serve --public-url)")
    })
}

fn rejected(err: PasskeyError) -> ApiError {
    match err {
        PasskeyError::Internal | PasskeyError::Config | PasskeyError::StoredPasskeyUnreadable => {
            ApiError::internal()
        }
        PasskeyError::CeremonyExpired
        | PasskeyError::CeremonyReused
        | PasskeyError::InvalidState => ErrorCode::CeremonyInvalid.into(),
        PasskeyError::InvalidUserName => {
            ApiError::bad_request("the name cannot be used for a passkey")
        }
        PasskeyError::MalformedResponse
        | PasskeyError::WrongOrigin
        | PasskeyError::WrongRpId
        | PasskeyError::ChallengeMismatch
        | PasskeyError::UserNotVerified
        | PasskeyError::UnknownCredential
        | PasskeyError::SignatureInvalid
        | PasskeyError::CounterRegressed
        | PasskeyError::CredentialRefused => ErrorCode::PasskeyRejected.into(),
    }
}

fn stored(record: &PasskeyRecord) -> StoredPasskey {
    StoredPasskey {
        credential_id: record.id.clone(),
        passkey_json: record.passkey_json.clone(),
    }
}

/// Keeps a ceremony state; returns the ceremony token for the browser.
async fn keep(
    state: &AppState,
    kind: &'static str,
    subject: String,
    ceremony_state: String,
    options: serde_json::Value,
) -> Result<Json<CeremonyStarted>, ApiError> {
    let token =
        MintedToken::mint(TokenKind::Ceremony, state.rng()).map_err(|_| ApiError::internal())?;
    let now = crate::now();
    let record = CeremonyRecord {
        hash: token.hash(),
        kind: kind.to_owned(),
        subject,
        state: ceremony_state,
        expires_at: now + secs(state.config().sessions.ceremony_timeout),
    };
    state
        .blocking(move |s| s.insert_ceremony(&record, now))
        .await?;
    Ok(Json(CeremonyStarted {
        ceremony: token.expose().to_owned(),
        options,
    }))
}

/// Takes a ceremony of `kind` (once); a wrong, used or expired one is `ceremony_invalid`.
async fn take(
    state: &AppState,
    addr: &str,
    kind: &'static str,
    ceremony: &str,
) -> Result<CeremonyRecord, ApiError> {
    let token = ParsedToken::parse(ceremony, TokenKind::Ceremony)
        .map_err(|_| fail(state, addr, None, ErrorCode::CeremonyInvalid))?;
    let hash = token.hash();
    let now = crate::now();
    state
        .blocking(move |s| s.take_ceremony(&hash, kind, now))
        .await?
        .ok_or_else(|| fail(state, addr, None, ErrorCode::CeremonyInvalid))
}

/// Unauthenticated ceremony finishes must come from the server's own pages (no login CSRF).
fn require_same_origin(state: &AppState, parts: &Parts) -> Result<(), ApiError> {
    if is_same_origin(&parts.headers, &request_origin(state, parts)) {
        Ok(())
    } else {
        Err(ErrorCode::CsrfRejected.into())
    }
}

fn event(org_id: &str, actor: String, action: &str, target: String, parts: &Parts) -> AuditEvent {
    AuditEvent {
        org_id: org_id.to_owned(),
        actor,
        action: action.to_owned(),
        target,
        outcome: "ok".to_owned(),
        request_id: crate::auth::request_id(&parts.extensions),
        at: crate::now(),
    }
}

/// Starts accepting an invitation with a new passkey.
#[utoipa::path(post, path = "/v1/auth/invitations/begin", tag = "auth", request_body = AcceptInvitationRequest,
    responses((status = 200, body = CeremonyStarted), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn begin_invitation(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<AcceptInvitationRequest>,
) -> Result<Json<CeremonyStarted>, ApiError> {
    state.admit_sign_in_start(&parts.extensions).await?;
    let addr = address_key(&parts.extensions);
    let service = passkeys(&state)?;
    if !valid_name(&body.display_name) {
        return Err(ApiError::bad_request(
            "display_name must be 1 to 100 characters without control characters",
        ));
    }
    let email = match body.email.as_deref() {
        None => None,
        Some(text) => {
            Some(normalize_email(text).ok_or_else(|| ApiError::bad_request("email is not valid"))?)
        }
    };
    let token = ParsedToken::parse(&body.token, TokenKind::Invitation)
        .map_err(|_| fail(&state, &addr, None, ErrorCode::InvitationInvalid))?;
    let hash = token.hash();
    let now = crate::now();
    let invitation = state
        .blocking(move |s| s.invitation_by_hash(&hash))
        .await?
        .filter(|inv| inv.is_open(now))
        .ok_or_else(|| fail(&state, &addr, None, ErrorCode::InvitationInvalid))?;
    if invitation.email.is_some() && invitation.email != email {
        return Err(fail(&state, &addr, None, ErrorCode::InvitationInvalid));
    }
    let handle = uuid::Uuid::new_v4();
    let user_name = email.clone().unwrap_or_else(|| body.display_name.clone());
    let (options, webauthn) = service
        .start_registration(handle, &user_name, &body.display_name, &[])
        .map_err(rejected)?;
    let remembered = InvitationCeremony {
        webauthn,
        invitation_hash: hex(&hash),
        handle,
        display_name: body.display_name,
        email,
    };
    let text = serde_json::to_string(&remembered).map_err(|_| ApiError::internal())?;
    keep(&state, INVITATION, invitation.id, text, options).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

/// Finishes accepting an invitation: the person, their passkey, the membership and a session
/// (stepped up: the passkey was just used) are created together, or nothing is.
#[utoipa::path(post, path = "/v1/auth/invitations/finish", tag = "auth", request_body = FinishCeremonyRequest,
    responses((status = 201, body = edgekeep_protocol::people::SessionCreated), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn finish_invitation(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<FinishCeremonyRequest>,
) -> Result<Response, ApiError> {
    require_same_origin(&state, &parts)?;
    let addr = address_key(&parts.extensions);
    let service = passkeys(&state)?;
    let ceremony = take(&state, &addr, INVITATION, &body.ceremony).await?;
    let remembered: InvitationCeremony =
        serde_json::from_str(&ceremony.state).map_err(|_| ApiError::internal())?;
    let token_hash = unhex(&remembered.invitation_hash).ok_or_else(ApiError::internal)?;
    let registered = service
        .finish_registration(&remembered.webauthn, &body.response)
        .map_err(|err| fail(&state, &addr, None, rejected(err).code))?;
    let name = passkey_name(body.name.as_deref())?;
    let now = crate::now();
    let user = UserRecord {
        id: state.new_id("usr")?,
        handle: remembered.handle.to_string(),
        email: remembered.email,
        display_name: remembered.display_name,
        created_at: now,
        deactivated_at: None,
    };
    let passkey = PasskeyRecord {
        id: registered.credential_id,
        user_id: user.id.clone(),
        name,
        passkey_json: registered.passkey_json,
        created_at: now,
        last_used_at: Some(now),
    };
    let new_member = MemberRecord {
        id: state.new_id("mem")?,
        org_id: String::new(),
        name: user.display_name.clone(),
        role: Role::Member,
        created_at: now,
        user_id: Some(user.id.clone()),
    };
    let placeholder = MemberRecord {
        org_id: String::new(),
        ..new_member.clone()
    };
    let started = session::mint(&state, &user.id, &placeholder, "passkey", true)?;
    let actor = format!("user:{}", user.id);
    let audit = vec![
        event(
            "",
            actor.clone(),
            "invitation.accept",
            format!("invitation:{}", ceremony.subject),
            &parts,
        ),
        event(
            "",
            actor.clone(),
            "passkey.add",
            format!("passkey:{}", short(&passkey.id)),
            &parts,
        ),
        event(
            "",
            actor,
            "session.start.invitation",
            format!("session:{}", started.record.id),
            &parts,
        ),
    ];
    let session_record = started.record.clone();
    let member = state
        .blocking(move |s| {
            s.accept_invitation(&Acceptance {
                token_hash,
                user: &user,
                new_user: true,
                passkey: Some(&passkey),
                new_member: &new_member,
                session: &session_record,
                audit: &audit,
                at: now,
            })
        })
        .await
        .map_err(|err| match err.code {
            ErrorCode::Conflict => ApiError::new(ErrorCode::InvitationInvalid, err.message),
            _ => err,
        })?;
    let mut started = started;
    started.record.org_id.clone_from(&member.org_id);
    started.record.member_id.clone_from(&member.id);
    Ok(session_response(
        &state,
        &started,
        member.role,
        StatusCode::CREATED,
    ))
}

fn passkey_name(name: Option<&str>) -> Result<String, ApiError> {
    match name {
        None => Ok("passkey".to_owned()),
        Some(name) if valid_name(name) => Ok(name.to_owned()),
        Some(_) => Err(ApiError::bad_request(
            "name must be 1 to 100 characters without control characters",
        )),
    }
}

/// Starts signing in with a passkey the browser offers (no email typed first).
#[utoipa::path(post, path = "/v1/auth/passkey/begin", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = CeremonyStarted)))]
pub async fn begin_login(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<CeremonyStarted>, ApiError> {
    state.admit_sign_in_start(&parts.extensions).await?;
    let service = passkeys(&state)?;
    let (options, webauthn) = service
        .start_discoverable_authentication()
        .map_err(rejected)?;
    let subject = body.org_id.unwrap_or_else(|| "-".to_owned());
    keep(&state, LOGIN, subject, webauthn, options).await
}

/// Finishes signing in: a session (stepped up) in the requested org, or the person's first.
#[utoipa::path(post, path = "/v1/auth/passkey/finish", tag = "auth", request_body = FinishCeremonyRequest,
    responses((status = 201, body = edgekeep_protocol::people::SessionCreated), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn finish_login(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<FinishCeremonyRequest>,
) -> Result<Response, ApiError> {
    require_same_origin(&state, &parts)?;
    let addr = address_key(&parts.extensions);
    passkeys(&state)?;
    let ceremony = take(&state, &addr, LOGIN, &body.ceremony).await?;
    let storage = std::sync::Arc::clone(state.storage());
    let service_state = state.clone();
    let response = body.response;
    let outcome = tokio::task::spawn_blocking(move || {
        let service = service_state.passkeys().ok_or(PasskeyError::Config)?;
        let found = std::cell::RefCell::new(None);
        let result = service.finish_discoverable_authentication(
            &ceremony.state,
            &response,
            |handle, credential_id| {
                let user = storage.user_by_handle(&handle.to_string()).ok()??;
                let passkey = storage.passkey(credential_id).ok()??;
                (passkey.user_id == user.id).then(|| {
                    let out = stored(&passkey);
                    *found.borrow_mut() = Some(user);
                    out
                })
            },
        );
        Ok::<_, PasskeyError>((result, found.into_inner(), ceremony.subject))
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let (result, user, wanted_org) = outcome.map_err(rejected)?;
    let Some(user) = user else {
        return Err(fail(&state, &addr, None, ErrorCode::PasskeyRejected));
    };
    let user_id = user.id.clone();
    let memberships = state.blocking(move |s| s.memberships(&user_id)).await?;
    let chosen = memberships
        .iter()
        .map(|(member, _)| member)
        .find(|m| wanted_org == "-" || m.org_id == wanted_org)
        .cloned();
    let refusal_org = chosen
        .as_ref()
        .or(memberships.first().map(|(m, _)| m))
        .map(|m| m.org_id.clone());
    let sso_only = match &chosen {
        Some(member) => {
            let org = member.org_id.clone();
            state.blocking(move |s| s.sso_required(&org)).await?
        }
        None => false,
    };
    let verified = match (result, user.deactivated_at, chosen) {
        (Ok(_), None, Some(_)) if sso_only => Err(ErrorCode::Forbidden),
        (Ok(verified), None, Some(member)) => Ok((verified, member)),
        (Err(err), _, _) => Err(rejected(err).code),
        (Ok(_), Some(_), _) => Err(ErrorCode::PasskeyRejected),
        (Ok(_), None, None) => Err(ErrorCode::NotFound),
    };
    let (verified, member) = match verified {
        Ok(pair) => pair,
        Err(code) => {
            let subject = format!("user:{}", user.id);
            if let Some(org) = refusal_org {
                let mut refused = event(
                    &org,
                    subject.clone(),
                    "login.passkey.rejected",
                    subject.clone(),
                    &parts,
                );
                refused.outcome = code.as_str().to_owned();
                state.audit_rejection(refused).await?;
                let known = KnownCredential {
                    subject: &subject,
                    org_id: &org,
                };
                return Err(fail(&state, &addr, Some(known), code));
            }
            return Err(fail(&state, &addr, None, code));
        }
    };
    let started = session::mint(&state, &user.id, &member, "passkey", true)?;
    let now = crate::now();
    let credential_id = verified.passkey.credential_id.clone();
    let updated = verified.passkey.updated_passkey_json.clone();
    let began = event(
        &member.org_id,
        format!("user:{}", user.id),
        "session.start.passkey",
        format!("session:{}", started.record.id),
        &parts,
    );
    let record = started.record.clone();
    state
        .blocking(move |s| {
            s.record_passkey_use(&credential_id, updated.as_deref(), now)?;
            s.insert_session(&record, &began)
        })
        .await?;
    Ok(session_response(
        &state,
        &started,
        member.role,
        StatusCode::CREATED,
    ))
}

/// The person and session of a session caller, owned (they move into storage calls).
fn person_owned(caller: &ApiCaller) -> Result<(String, String), ApiError> {
    let (user_id, session_id) = person(caller)?;
    Ok((user_id.to_owned(), session_id.to_owned()))
}

/// Starts adding a passkey to the signed-in person (needs a step-up: a stolen session must not
/// be able to plant its own passkey).
#[utoipa::path(post, path = "/v1/me/passkeys/begin", tag = "people", security(("session" = [])),
    responses((status = 200, body = CeremonyStarted), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn begin_add_passkey(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<CeremonyStarted>, ApiError> {
    let (user_id, _) = person_owned(&caller)?;
    caller.require_step_up(&state)?;
    let service = passkeys(&state)?;
    let id = user_id.clone();
    let (user, existing) = state
        .blocking(move |s| Ok((s.user(&id)?, s.passkeys(&id)?)))
        .await?;
    let user = user.ok_or_else(ApiError::not_found)?;
    let handle = uuid::Uuid::parse_str(&user.handle).map_err(|_| ApiError::internal())?;
    let exclude: Vec<StoredPasskey> = existing.iter().map(stored).collect();
    let user_name = user
        .email
        .clone()
        .unwrap_or_else(|| user.display_name.clone());
    let (options, webauthn) = service
        .start_registration(handle, &user_name, &user.display_name, &exclude)
        .map_err(rejected)?;
    keep(&state, REGISTER, user_id, webauthn, options).await
}

/// Finishes adding a passkey.
#[utoipa::path(post, path = "/v1/me/passkeys/finish", tag = "people", security(("session" = [])),
    request_body = FinishCeremonyRequest,
    responses((status = 201, body = PasskeyInfo), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn finish_add_passkey(
    State(state): State<AppState>,
    caller: ApiCaller,
    parts: Parts,
    ApiJson(body): ApiJson<FinishCeremonyRequest>,
) -> Result<(StatusCode, Json<PasskeyInfo>), ApiError> {
    let (user_id, _) = person_owned(&caller)?;
    let addr = address_key(&parts.extensions);
    let service = passkeys(&state)?;
    let ceremony = take(&state, &addr, REGISTER, &body.ceremony).await?;
    if ceremony.subject != user_id {
        return Err(ErrorCode::CeremonyInvalid.into());
    }
    let registered = service
        .finish_registration(&ceremony.state, &body.response)
        .map_err(rejected)?;
    let now = crate::now();
    let record = PasskeyRecord {
        id: registered.credential_id,
        user_id,
        name: passkey_name(body.name.as_deref())?,
        passkey_json: registered.passkey_json,
        created_at: now,
        last_used_at: None,
    };
    let added = caller.event("passkey.add", format!("passkey:{}", short(&record.id)), now);
    let stored_record = record.clone();
    state
        .blocking(move |s| s.insert_passkey(&stored_record, &added))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PasskeyInfo {
            id: record.id,
            name: record.name,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
        }),
    ))
}

/// Starts a step-up: a fresh assertion with one of the person's passkeys.
#[utoipa::path(post, path = "/v1/auth/step-up/begin", tag = "auth", security(("session" = [])),
    responses((status = 200, body = CeremonyStarted)))]
pub async fn begin_step_up(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<CeremonyStarted>, ApiError> {
    let (user_id, session_id) = person_owned(&caller)?;
    let service = passkeys(&state)?;
    let existing = state.blocking(move |s| s.passkeys(&user_id)).await?;
    let allowed: Vec<StoredPasskey> = existing.iter().map(stored).collect();
    let (options, webauthn) = service.start_authentication(&allowed).map_err(rejected)?;
    keep(&state, STEP_UP, session_id, webauthn, options).await
}

/// Finishes a step-up: Owner-level actions are allowed on this session for five minutes.
#[utoipa::path(post, path = "/v1/auth/step-up/finish", tag = "auth", security(("session" = [])),
    request_body = FinishCeremonyRequest,
    responses((status = 204), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn finish_step_up(
    State(state): State<AppState>,
    caller: ApiCaller,
    parts: Parts,
    ApiJson(body): ApiJson<FinishCeremonyRequest>,
) -> Result<StatusCode, ApiError> {
    let (user_id, session_id) = person_owned(&caller)?;
    let addr = address_key(&parts.extensions);
    let service = passkeys(&state)?;
    let ceremony = take(&state, &addr, STEP_UP, &body.ceremony).await?;
    if ceremony.subject != session_id {
        return Err(ErrorCode::CeremonyInvalid.into());
    }
    let existing = state.blocking(move |s| s.passkeys(&user_id)).await?;
    let allowed: Vec<StoredPasskey> = existing.iter().map(stored).collect();
    let now = crate::now();
    let verified = match service.finish_authentication(&ceremony.state, &body.response, &allowed) {
        Ok(verified) => verified,
        Err(err) => {
            let mut refused = caller.event(
                "session.step_up.rejected",
                format!("session:{session_id}"),
                now,
            );
            let code = rejected(err).code;
            refused.outcome = code.as_str().to_owned();
            state.audit_rejection(refused).await?;
            let subject = format!("session:{session_id}");
            let known = KnownCredential {
                subject: &subject,
                org_id: &caller.org_id,
            };
            return Err(fail(&state, &addr, Some(known), code));
        }
    };
    let stepped = caller.event("session.step_up", format!("session:{session_id}"), now);
    let org_id = caller.org_id.clone();
    state
        .blocking(move |s| {
            s.record_passkey_use(
                &verified.credential_id,
                verified.updated_passkey_json.as_deref(),
                now,
            )?;
            s.step_up_session(&org_id, &session_id, now, &stepped)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
