//! Authentication extractors: [`ApiCaller`] (org API key or a person's session cookie) and
//! [`DeviceCaller`] (device access token plus proof of possession), and the request context
//! they rely on.
//!
//! Credentials are checked first: a valid credential is never refused because of failures
//! elsewhere. A failed attempt is counted against its source address, and, when the credential
//! is known, against that credential and its org; once one of those budgets is spent, the failing
//! attempt gets `rate_limited` instead of its error. Rejections whose credential is known are
//! audited, identical ones aggregated ([`crate::audit_throttle`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{Permission, Role};
use edgekeep_protocol::proof::{self, ExpectedRequest};
use edgekeep_protocol::token::{ParsedToken, TokenKind};

use crate::api::AppState;
use crate::error::ApiError;
use crate::storage::{AuditEvent, DeviceRecord, DeviceTokenKind};

/// The peer address of the connection, inserted by the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The address a request comes from for rate limits: the peer, or, when the peer is a
/// configured trusted proxy, the nearest untrusted address in `X-Forwarded-For`. Inserted by
/// the request middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceIp(pub IpAddr);

/// The source address of a request whose peer is `peer`, honouring `X-Forwarded-For` only
/// from `trusted_proxies`: the rightmost address in the header that is not itself a trusted
/// proxy. An unparsable header falls back to the peer.
pub fn source_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for part in text.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => chain.push(ip),
                Err(_) => return peer,
            }
        }
    }
    chain
        .into_iter()
        .rev()
        .find(|ip| !trusted_proxies.contains(ip))
        .unwrap_or(peer)
}

/// The request id, inserted by the request-id middleware and echoed in `x-request-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The source address key for rate limits.
pub fn address_key(extensions: &axum::http::Extensions) -> String {
    if let Some(source) = extensions.get::<SourceIp>() {
        return source.0.to_string();
    }
    extensions
        .get::<ClientAddr>()
        .map_or_else(|| "unknown".to_owned(), |a| a.0.ip().to_string())
}

/// The request id of a request.
pub fn request_id(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<RequestId>()
        .map_or_else(String::new, |r| r.0.clone())
}

/// What a handler needs to know about a device request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Source address key for rate limits.
    pub addr: String,
    /// Request id.
    pub request_id: String,
    /// Request method.
    pub method: String,
    /// Full request URL, as proofs must name it.
    pub url: String,
    /// The proof header, if present.
    pub proof: Option<String>,
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            addr: address_key(&parts.extensions),
            request_id: request_id(&parts.extensions),
            method: parts.method.as_str().to_owned(),
            url: request_url(state, parts),
            proof: proof_header(&parts.headers).map(str::to_owned),
        })
    }
}

/// The full URL a device proof must name for this request.
pub fn request_url(state: &AppState, parts: &Parts) -> String {
    let path = parts.uri.path();
    if let Some(base) = &state.config().public_url {
        return format!("{}{path}", base.trim_end_matches('/'));
    }
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    format!("https://{authority}{path}")
}

fn bearer<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, token) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| token.trim())
}

fn rate_limited() -> ApiError {
    ErrorCode::RateLimited.into()
}

/// A credential a failed attempt named, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct KnownCredential<'a> {
    /// Stable id of the credential (`api_key:<id>`, `device:<id>`, `bootstrap:<hash>`).
    pub subject: &'a str,
    /// The org it belongs to.
    pub org_id: &'a str,
}

/// Records a failed attempt against its source address and, when known, its credential and
/// org, and returns the error to answer: `code`, or `rate_limited` once one of those budgets is
/// spent. Only failing attempts are counted and throttled; valid credentials never come here.
pub fn fail(
    state: &AppState,
    addr: &str,
    credential: Option<KnownCredential<'_>>,
    code: ErrorCode,
) -> ApiError {
    let limits = state.limits();
    let mut allowed = state.spend_now(&limits.fail_addr, addr, 1);
    if let Some(known) = credential {
        allowed &= state.spend_now(&limits.fail_credential, known.subject, 1);
        allowed &= state.spend_now(&limits.fail_org, known.org_id, 1);
    }
    if allowed { code.into() } else { rate_limited() }
}

/// How an [`ApiCaller`] authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerCredential {
    /// An org API key (backends, CI, operators' scripts).
    ApiKey {
        /// The key.
        key_id: String,
    },
    /// A person's session cookie, bound to the caller's org.
    Session {
        /// The session's public id.
        session_id: String,
        /// The person.
        user_id: String,
        /// SHA-256 of the session secret (what the CSRF token is derived from).
        hash: [u8; 32],
        /// The session's last step-up.
        stepped_up_at: Option<i64>,
        /// How the person signed in (`passkey`, `oidc`, ...).
        method: String,
    },
}

/// A caller of the operator API, authenticated by an org API key or a person's session; the
/// same permission table applies to both.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    /// The caller's org; every read and write is scoped to it.
    pub org_id: String,
    /// The member acting (the key's holder, or the person's membership).
    pub member_id: String,
    /// The member's current role.
    pub role: Role,
    /// The API key or session used.
    pub credential: CallerCredential,
    /// Effective permissions: the key's scope (all of the role for a session) limited by the
    /// member's current role.
    pub scopes: Vec<Permission>,
    /// The request id.
    pub request_id: String,
}

impl ApiCaller {
    /// Fails with `forbidden` unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.scopes.contains(&permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "the key's scope or the member's role does not allow this",
            ))
        }
    }

    /// Whether the caller holds `permission`.
    pub fn has(&self, permission: Permission) -> bool {
        self.scopes.contains(&permission)
    }

    /// For Owner-level actions (roles, publisher keys, identity providers, SCIM tokens): a
    /// session must have stepped up (a fresh passkey assertion) within the step-up window. API
    /// keys are not asked; their scope is their limit.
    pub fn require_step_up(&self, state: &AppState) -> Result<(), ApiError> {
        match &self.credential {
            CallerCredential::ApiKey { .. } => Ok(()),
            CallerCredential::Session { stepped_up_at, .. } => {
                if state
                    .config()
                    .sessions
                    .is_stepped_up(*stepped_up_at, crate::now())
                {
                    Ok(())
                } else {
                    Err(ErrorCode::StepUpRequired.into())
                }
            }
        }
    }

    /// The person behind a session caller.
    pub fn user_id(&self) -> Option<&str> {
        match &self.credential {
            CallerCredential::Session { user_id, .. } => Some(user_id),
            CallerCredential::ApiKey { .. } => None,
        }
    }

    /// The audit actor: `member:<id>` for an API key, `user:<id>` for a person's session.
    pub fn actor(&self) -> String {
        match &self.credential {
            CallerCredential::ApiKey { .. } => format!("member:{}", self.member_id),
            CallerCredential::Session { user_id, .. } => format!("user:{user_id}"),
        }
    }

    /// An audit event by this caller.
    pub fn event(&self, action: &str, target: String, at: i64) -> AuditEvent {
        AuditEvent {
            org_id: self.org_id.clone(),
            actor: self.actor(),
            action: action.to_owned(),
            target,
            outcome: "ok".to_owned(),
            request_id: self.request_id.clone(),
            at,
        }
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_none()
            && let Some(secret) = crate::identity::session::presented_secret(&parts.headers)
        {
            let secret = secret.to_owned();
            return session_caller(parts, state, &secret).await;
        }
        let addr = address_key(&parts.extensions);
        let text = bearer(&parts.headers, "Bearer").ok_or(ErrorCode::Unauthenticated)?;
        let token = ParsedToken::parse(text, TokenKind::ApiKey)
            .map_err(|_| fail(state, &addr, None, ErrorCode::InvalidCredentials))?;
        let hash = token.hash();
        let found = state.blocking(move |s| s.api_key_by_hash(&hash)).await?;
        let now = crate::now();
        let Some((key, member)) = found else {
            return Err(fail(state, &addr, None, ErrorCode::InvalidCredentials));
        };
        let expired = key.expires_at.is_some_and(|at| at <= now);
        if key.revoked_at.is_some() || expired {
            let subject = format!("api_key:{}", key.id);
            let known = KnownCredential {
                subject: &subject,
                org_id: &key.org_id,
            };
            let error = fail(state, &addr, Some(known), ErrorCode::InvalidCredentials);
            if error.code == ErrorCode::RateLimited {
                return Err(error);
            }
            let event = AuditEvent {
                org_id: key.org_id.clone(),
                actor: subject.clone(),
                action: "api_key.auth.rejected".to_owned(),
                target: subject,
                outcome: if expired { "expired" } else { "revoked" }.to_owned(),
                request_id: request_id(&parts.extensions),
                at: now,
            };
            state.audit_rejection(event).await?;
            return Err(error);
        }
        if state.should_touch_key(&key.id, now) {
            let (org_id, key_id) = (key.org_id.clone(), key.id.clone());
            let storage = std::sync::Arc::clone(state.storage());
            tokio::task::spawn_blocking(move || {
                if let Err(err) = storage.touch_api_key(&org_id, &key_id, now) {
                    tracing::warn!(error = %err, "could not record key use");
                }
            });
        }
        let scopes = key
            .scopes
            .iter()
            .copied()
            .filter(|p| member.role.allows(*p))
            .collect();
        Ok(Self {
            org_id: key.org_id,
            member_id: member.id,
            role: member.role,
            credential: CallerCredential::ApiKey { key_id: key.id },
            scopes,
            request_id: request_id(&parts.extensions),
        })
    }
}

/// The origin browsers must report for this server: the public URL's, or the request's own.
pub fn request_origin(state: &AppState, parts: &Parts) -> String {
    let url = request_url(state, parts);
    let path = parts.uri.path();
    url.strip_suffix(path).unwrap_or(&url).to_owned()
}

/// Authenticates a session cookie: live (not revoked, within its idle and absolute timeouts),
/// its person active and still a member; a state-changing request must also come from the
/// server's origin and carry the session's CSRF token.
async fn session_caller(
    parts: &Parts,
    state: &AppState,
    secret: &str,
) -> Result<ApiCaller, ApiError> {
    use crate::identity::{csrf, session};
    let addr = address_key(&parts.extensions);
    let token = ParsedToken::parse(secret, TokenKind::Session)
        .map_err(|_| fail(state, &addr, None, ErrorCode::InvalidCredentials))?;
    let hash = token.hash();
    let found = state.blocking(move |s| s.session_by_hash(&hash)).await?;
    let now = crate::now();
    let limits = state.config().sessions;
    let Some((record, member, user)) = found.filter(|(session, _, user)| {
        session.revoked_at.is_none()
            && user.deactivated_at.is_none()
            && limits.is_live(session.last_seen_at, session.expires_at, now)
    }) else {
        return Err(fail(state, &addr, None, ErrorCode::InvalidCredentials));
    };
    if csrf::changes_state(&parts.method) {
        let presented = parts
            .headers
            .get(edgekeep_protocol::people::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let same_origin = csrf::is_same_origin(&parts.headers, &request_origin(state, parts));
        if !same_origin || !state.secret().csrf_key().verify(&hash, presented) {
            let subject = format!("session:{}", record.id);
            let known = KnownCredential {
                subject: &subject,
                org_id: &record.org_id,
            };
            let error = fail(state, &addr, Some(known), ErrorCode::CsrfRejected);
            let event = AuditEvent {
                org_id: record.org_id.clone(),
                actor: format!("user:{}", user.id),
                action: "session.csrf.rejected".to_owned(),
                target: subject,
                outcome: error.code.as_str().to_owned(),
                request_id: request_id(&parts.extensions),
                at: now,
            };
            state.audit_rejection(event).await?;
            return Err(error);
        }
    }
    if now - record.last_seen_at >= session::SESSION_TOUCH_INTERVAL_SECS {
        let (org_id, id) = (record.org_id.clone(), record.id.clone());
        let storage = std::sync::Arc::clone(state.storage());
        tokio::task::spawn_blocking(move || {
            if let Err(err) = storage.touch_session(&org_id, &id, now) {
                tracing::warn!(error = %err, "could not record session use");
            }
        });
    }
    let scopes = member.role.permissions().to_vec();
    Ok(ApiCaller {
        org_id: record.org_id,
        member_id: member.id,
        role: member.role,
        credential: CallerCredential::Session {
            session_id: record.id,
            user_id: user.id,
            hash,
            stepped_up_at: record.stepped_up_at,
            method: record.method,
        },
        scopes,
        request_id: request_id(&parts.extensions),
    })
}

/// A device authenticated by its access token and a fresh proof signed by its registered key.
#[derive(Debug, Clone)]
pub struct DeviceCaller {
    /// The device.
    pub device: DeviceRecord,
    /// The request id.
    pub request_id: String,
}

/// Checks a proof for a device request and audits the rejection if it fails.
pub struct ProofCheck<'a> {
    /// The state.
    pub state: &'a AppState,
    /// The device the token belongs to (for enrollment: the device being enrolled).
    pub device: &'a DeviceRecord,
    /// The credential being checked, as audited and throttled (`device:<id>`, or
    /// `bootstrap:<hash>` for an enrollment).
    pub subject: String,
    /// The token the proof must be bound to.
    pub token: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Request URL.
    pub url: String,
    /// Source address key.
    pub addr: &'a str,
    /// Request id.
    pub request_id: &'a str,
    /// Audit action for a rejection.
    pub action: &'static str,
}

impl ProofCheck<'_> {
    /// Rejects with `code`: counts the failure against the address, the credential and its
    /// org, and audits it under the org (identical rejections aggregated).
    pub async fn reject(&self, code: ErrorCode) -> ApiError {
        let known = KnownCredential {
            subject: &self.subject,
            org_id: &self.device.org_id,
        };
        let error = fail(self.state, self.addr, Some(known), code);
        if error.code == ErrorCode::RateLimited {
            tracing::warn!(
                action = self.action,
                "audit of rejected attempt skipped: over its failure budget"
            );
            return error;
        }
        let event = AuditEvent {
            org_id: self.device.org_id.clone(),
            actor: self.subject.clone(),
            action: self.action.to_owned(),
            target: self.subject.clone(),
            outcome: code.as_str().to_owned(),
            request_id: self.request_id.to_owned(),
            at: crate::now(),
        };
        match self.state.audit_rejection(event).await {
            Ok(()) => error,
            Err(audit_error) => audit_error,
        }
    }

    /// Verifies `proof_header` (the `DPoP` header value, if any): signature against the
    /// registered key, method, URL, token hash, freshness and replay.
    pub async fn verify(&self, proof_header: Option<&str>) -> Result<(), ApiError> {
        let Some(proof_text) = proof_header else {
            return Err(self.reject(ErrorCode::ProofMissing).await);
        };
        let now = crate::now();
        let expected = ExpectedRequest {
            method: self.method,
            url: &self.url,
            token: self.token,
            now,
            freshness_secs: self.state.config().proof_freshness_secs,
        };
        let verified = match proof::verify_proof(proof_text, &self.device.identity_key, &expected) {
            Ok(verified) => verified,
            Err(err) => return Err(self.reject(err.into()).await),
        };
        if !self
            .state
            .first_use_proof(&self.device.id, &verified.jti, now)
            .await?
        {
            return Err(self.reject(ErrorCode::ProofReplayed).await);
        }
        Ok(())
    }
}

/// The value of the proof header, if present and text.
pub fn proof_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(proof::PROOF_HEADER)
        .and_then(|value| value.to_str().ok())
}

impl FromRequestParts<AppState> for DeviceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let addr = address_key(&parts.extensions);
        let text = bearer(&parts.headers, proof::AUTH_SCHEME).ok_or(ErrorCode::Unauthenticated)?;
        let token = ParsedToken::parse(text, TokenKind::Access)
            .map_err(|_| fail(state, &addr, None, ErrorCode::InvalidCredentials))?;
        let hash = token.hash();
        let found = state.blocking(move |s| s.device_token(&hash)).await?;
        let Some((record, device)) = found else {
            return Err(fail(state, &addr, None, ErrorCode::InvalidCredentials));
        };
        let request_id = request_id(&parts.extensions);
        let check = ProofCheck {
            state,
            device: &device,
            subject: format!("device:{}", device.id),
            token: text,
            method: parts.method.as_str(),
            url: request_url(state, parts),
            addr: &addr,
            request_id: &request_id,
            action: "device.auth.rejected",
        };
        if record.kind != DeviceTokenKind::Access {
            return Err(fail(state, &addr, None, ErrorCode::InvalidCredentials));
        }
        if device.revoked_at.is_some() {
            return Err(check.reject(ErrorCode::DeviceRevoked).await);
        }
        if record.revoked_at.is_some() || record.expires_at <= crate::now() {
            return Err(check.reject(ErrorCode::InvalidCredentials).await);
        }
        check.verify(proof_header(&parts.headers)).await?;
        drop(check);
        Ok(Self { device, request_id })
    }
}
