//! What sign-in through an identity provider (OIDC or SAML) does once the provider has vouched
//! for an email: admit the person into the org (an existing member, or a new person with an
//! open invitation for that email), or refuse, counting the failure and auditing it in the org.

use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::idp::{MAX_EMAIL_DOMAINS, normalize_domain};

use super::AppState;
use crate::auth::{KnownCredential, address_key, request_id};
use crate::error::ApiError;
use crate::identity::{Admission, session};
use crate::storage::{Acceptance, AuditEvent, IdentityLink, MemberRecord, UserRecord};

/// A refusal of a provider's sign-in: a code, an audit outcome (`code:reason`), and how the
/// admission refusals are expressed.
pub trait SignInRejection: Copy + Into<ApiError> + From<Admission> {
    /// The error code answered.
    fn code(self) -> ErrorCode;
    /// The audit outcome.
    fn outcome(self) -> String;
}

impl SignInRejection for crate::identity::oidc::OidcRejection {
    fn code(self) -> ErrorCode {
        Self::code(self)
    }
    fn outcome(self) -> String {
        Self::outcome(self)
    }
}

#[cfg(feature = "saml")]
impl SignInRejection for crate::identity::saml::SamlRejection {
    fn code(self) -> ErrorCode {
        Self::code(self)
    }
    fn outcome(self) -> String {
        Self::outcome(self)
    }
}

/// Counts and audits refused sign-ins of one request, once its org is known.
pub struct Refusal<'a> {
    state: &'a AppState,
    addr: String,
    request_id: String,
    method: &'static str,
    /// The org signed in to, once known.
    pub org_id: Option<String>,
}

impl<'a> Refusal<'a> {
    /// The refusals of the request `parts`, signing in by `method` (`oidc`, `saml`).
    pub fn new(state: &'a AppState, parts: &Parts, method: &'static str) -> Self {
        Self {
            state,
            addr: address_key(&parts.extensions),
            request_id: request_id(&parts.extensions),
            method,
            org_id: None,
        }
    }

    /// Counts the failure against the address (and the org's provider), audits it in the org
    /// when known (`login.<method>.rejected`), and answers the rejection, or `rate_limited`
    /// when the budget is spent.
    pub async fn refuse<R: SignInRejection>(
        &self,
        rejection: R,
        user_id: Option<&str>,
    ) -> ApiError {
        let Some(org_id) = &self.org_id else {
            return answer(
                rejection,
                crate::auth::fail(self.state, &self.addr, None, rejection.code()),
            );
        };
        let subject = format!("idp:{org_id}");
        let known = KnownCredential {
            subject: &subject,
            org_id,
        };
        let error = crate::auth::fail(self.state, &self.addr, Some(known), rejection.code());
        if error.code == ErrorCode::RateLimited {
            return error;
        }
        let event = AuditEvent {
            org_id: org_id.clone(),
            actor: user_id.map_or_else(|| "anonymous".to_owned(), |id| format!("user:{id}")),
            action: format!("login.{}.rejected", self.method),
            target: user_id.map_or_else(|| "idp".to_owned(), |id| format!("user:{id}")),
            outcome: rejection.outcome(),
            request_id: self.request_id.clone(),
            at: crate::now(),
        };
        match self.state.audit_rejection(event).await {
            Ok(()) => answer(rejection, error),
            Err(audit_error) => audit_error,
        }
    }

    fn login_event(&self, org_id: &str, user_id: &str, session_id: &str, at: i64) -> AuditEvent {
        AuditEvent {
            org_id: org_id.to_owned(),
            actor: format!("user:{user_id}"),
            action: format!("login.{}.ok", self.method),
            target: format!("session:{session_id}"),
            outcome: "ok".to_owned(),
            request_id: self.request_id.clone(),
            at,
        }
    }
}

fn answer<R: SignInRejection>(rejection: R, counted: ApiError) -> ApiError {
    if counted.code == rejection.code() {
        rejection.into()
    } else {
        counted
    }
}

/// The answer of a sign-in start: `302` to the provider, the cookie binding the attempt to this
/// browser, never cached.
pub fn to_provider(location: &str, binding_cookie: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location).map_err(|_| ApiError::internal())?;
    let cookie = HeaderValue::from_str(binding_cookie).map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// The answer of a sign-in finish, whatever its outcome: the binding cookie cleared, never
/// cached. A browser (`Accept: text/html`) gets a page instead of JSON: on success one that
/// moves on to the dashboard, else the reason in words.
pub fn finished(
    outcome: Result<Response, ApiError>,
    clear_binding: &'static str,
    parts: &Parts,
) -> Response {
    let browser = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let mut response = match outcome {
        Ok(response) if browser => crate::dashboard::pages::login::signed_in(response),
        Ok(response) => response,
        Err(error) if browser => crate::dashboard::pages::error_page(&error),
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, HeaderValue::from_static(clear_binding));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The allowed email domains of a provider's configuration, normalized and deduplicated: 1 to
/// [`MAX_EMAIL_DOMAINS`].
pub fn allowed_domains(texts: &[String]) -> Result<Vec<String>, ApiError> {
    let mut domains = Vec::new();
    for text in texts {
        let domain = normalize_domain(text)
            .ok_or_else(|| ApiError::bad_request("an allowed email domain is not a domain"))?;
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    if domains.is_empty() || domains.len() > MAX_EMAIL_DOMAINS {
        return Err(ApiError::bad_request(
            "allowed_email_domains must hold 1 to 50 domains",
        ));
    }
    Ok(domains)
}

/// A person an identity provider vouched for.
pub struct Vouched {
    /// The email, checked against the org's allowed domains.
    pub email: String,
    /// The name to give a new person.
    pub display_name: String,
    /// The stable subject at the provider, when it has one (`None` for a SAML `NameID` that is
    /// not persistent).
    pub subject: Option<Subject>,
}

/// A stable subject at one of the org's providers.
pub struct Subject {
    /// `oidc` or `saml`.
    pub provider: &'static str,
    /// The issuer (OIDC issuer URL, SAML IdP entity id).
    pub issuer: String,
    /// The subject at the issuer.
    pub subject: String,
}

/// Starts the session of a vouched-for email: an existing member, or a new person with an
/// open invitation for that email (created and accepted in one transaction).
pub async fn admit<R: SignInRejection>(
    state: &AppState,
    refusal: &Refusal<'_>,
    org_id: &str,
    person: Vouched,
    now: i64,
) -> Result<Response, ApiError> {
    if let Some(subject) = &person.subject {
        let (org, provider, issuer, sub) = (
            org_id.to_owned(),
            subject.provider,
            subject.issuer.clone(),
            subject.subject.clone(),
        );
        let linked = state
            .blocking(move |s| {
                let Some(user_id) = s.linked_user(&org, provider, &issuer, &sub)? else {
                    return Ok(None);
                };
                s.user(&user_id)
            })
            .await?;
        if let Some(user) = linked {
            return sign_in_member::<R>(state, refusal, org_id, user, now).await;
        }
    }
    let lookup = person.email.clone();
    let existing = state.blocking(move |s| s.user_by_email(&lookup)).await?;
    if let Some(user) = existing {
        if let Some(subject) = &person.subject {
            let (org, provider, issuer, user_id) = (
                org_id.to_owned(),
                subject.provider,
                subject.issuer.clone(),
                user.id.clone(),
            );
            let taken = state
                .blocking(move |s| s.has_link(&org, provider, &issuer, &user_id))
                .await?;
            if taken {
                return Err(refusal
                    .refuse(R::from(Admission::OtherSubject), Some(&user.id))
                    .await);
            }
        }
        let response = sign_in_member::<R>(state, refusal, org_id, user.clone(), now).await?;
        link(state, org_id, person.subject, &user.id, now).await?;
        return Ok(response);
    }
    let org = org_id.to_owned();
    let invitations = state.blocking(move |s| s.invitations(&org)).await?;
    let Some(invitation) = invitations
        .into_iter()
        .find(|inv| inv.is_open(now) && inv.email.as_deref() == Some(person.email.as_str()))
    else {
        return Err(refusal.refuse(R::from(Admission::NotInvited), None).await);
    };
    let user = UserRecord {
        id: state.new_id("usr")?,
        handle: crate::identity::new_user_handle(state.rng()).map_err(|_| ApiError::internal())?,
        display_name: person.display_name,
        email: Some(person.email),
        created_at: now,
        deactivated_at: None,
    };
    let member = MemberRecord {
        id: state.new_id("mem")?,
        org_id: org_id.to_owned(),
        name: user.display_name.clone(),
        role: invitation.role,
        created_at: now,
        user_id: Some(user.id.clone()),
    };
    let mut started = session::mint(state, &user.id, &member, refusal.method, false)?;
    let login = refusal.login_event(org_id, &user.id, &started.record.id, now);
    let accepted = AuditEvent {
        action: "invitation.accept".to_owned(),
        target: format!("invitation:{}", invitation.id),
        ..login.clone()
    };
    let events = [accepted, login];
    let record = started.record.clone();
    let token_hash = invitation.token_hash;
    let user_id = user.id.clone();
    let joined = state
        .blocking(move |s| {
            s.accept_invitation(&Acceptance {
                token_hash,
                user: &user,
                new_user: true,
                passkey: None,
                new_member: &member,
                session: &record,
                audit: &events,
                at: now,
            })
        })
        .await?;
    started.record.member_id.clone_from(&joined.id);
    link(state, org_id, person.subject, &user_id, now).await?;
    Ok(super::people::session_response(
        state,
        &started,
        joined.role,
        StatusCode::OK,
    ))
}

/// Starts a session for a known person who must be an active member of the org.
async fn sign_in_member<R: SignInRejection>(
    state: &AppState,
    refusal: &Refusal<'_>,
    org_id: &str,
    user: UserRecord,
    now: i64,
) -> Result<Response, ApiError> {
    if user.deactivated_at.is_some() {
        return Err(refusal
            .refuse(R::from(Admission::Deactivated), Some(&user.id))
            .await);
    }
    let id = user.id.clone();
    let memberships = state.blocking(move |s| s.memberships(&id)).await?;
    let Some(member) = memberships
        .into_iter()
        .map(|(member, _)| member)
        .find(|member| member.org_id == org_id)
    else {
        return Err(refusal
            .refuse(R::from(Admission::ExistingPersonNotMember), Some(&user.id))
            .await);
    };
    let started = session::mint(state, &user.id, &member, refusal.method, false)?;
    let event = refusal.login_event(org_id, &user.id, &started.record.id, now);
    let record = started.record.clone();
    state
        .blocking(move |s| s.insert_session(&record, &event))
        .await?;
    Ok(super::people::session_response(
        state,
        &started,
        member.role,
        StatusCode::OK,
    ))
}

/// Records the person's stable subject at the provider, once.
async fn link(
    state: &AppState,
    org_id: &str,
    subject: Option<Subject>,
    user_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    let Some(subject) = subject else {
        return Ok(());
    };
    let link = IdentityLink {
        org_id: org_id.to_owned(),
        provider: subject.provider.to_owned(),
        issuer: subject.issuer,
        subject: subject.subject,
        user_id: user_id.to_owned(),
        created_at: now,
    };
    state.blocking(move |s| s.link_identity(&link)).await
}
