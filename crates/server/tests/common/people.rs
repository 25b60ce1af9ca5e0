//! People in tests: a person who accepted an invitation (through the storage, as the passkey
//! and identity-provider flows do) and a client that calls the API with their session cookie.

use edgekeep_protocol::api::Role;
use edgekeep_protocol::people::{CSRF_HEADER, InvitationCreated, SESSION_COOKIE};
use edgekeep_protocol::token::{MintedToken, TokenKind, token_hash};
use edgekeep_server::storage::{Acceptance, AuditEvent, MemberRecord, SessionRecord, UserRecord};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{TestServer, now};

/// A signed-in person: their ids, the session cookie secret and its CSRF token.
#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: String,
    pub member_id: String,
    pub org_id: String,
    pub session_id: String,
    pub secret: String,
    pub csrf: String,
}

fn random_suffix() -> String {
    let token = MintedToken::mint(TokenKind::Ceremony, &ring::rand::SystemRandom::new()).unwrap();
    token.lookup().to_owned()
}

impl TestServer {
    /// Invites a person into the org of `inviter_key` with `role` and has them accept; returns
    /// them signed in (a session as the invitation flow starts it, stepped up or not).
    pub async fn person(&self, inviter_key: &str, role: Role, stepped_up: bool) -> Person {
        let (status, value) = self
            .call(
                Method::POST,
                "/v1/invitations",
                inviter_key,
                Some(serde_json::json!({ "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
        let created: InvitationCreated = serde_json::from_value(value).unwrap();
        self.accept(&created.token, None, stepped_up).await
    }

    /// Accepts an invitation token as a new person (or as `existing` user id).
    pub async fn accept(&self, token: &str, existing: Option<&str>, stepped_up: bool) -> Person {
        let suffix = random_suffix();
        let user = match existing {
            Some(id) => {
                let id = id.to_owned();
                self.stored(move |s| s.user(&id)).await.unwrap().unwrap()
            }
            None => UserRecord {
                id: format!("usr_{suffix}"),
                handle: format!("handle-{suffix}"),
                email: Some(format!("{}@example.com", suffix.to_lowercase())),
                display_name: "Test Person".to_owned(),
                created_at: now(),
                deactivated_at: None,
            },
        };
        let secret =
            MintedToken::mint(TokenKind::Session, &ring::rand::SystemRandom::new()).unwrap();
        let session = SessionRecord {
            id: format!("ses_{suffix}"),
            hash: secret.hash(),
            user_id: user.id.clone(),
            org_id: String::new(),
            member_id: String::new(),
            method: "passkey".to_owned(),
            created_at: now(),
            last_seen_at: now(),
            expires_at: now() + 3600,
            stepped_up_at: stepped_up.then(now),
            revoked_at: None,
        };
        let new_member = MemberRecord {
            id: format!("mem_{suffix}"),
            org_id: String::new(),
            name: user.display_name.clone(),
            role: Role::Member,
            created_at: now(),
            user_id: Some(user.id.clone()),
        };
        let audit = [AuditEvent {
            org_id: String::new(),
            actor: format!("user:{}", user.id),
            action: "invitation.accept".to_owned(),
            target: format!("user:{}", user.id),
            outcome: "ok".to_owned(),
            request_id: "test".to_owned(),
            at: now(),
        }];
        let (token_hash, new_user) = (token_hash(token), existing.is_none());
        let (accepting, session_id) = (user.clone(), session.id.clone());
        let member = self
            .stored(move |s| {
                s.accept_invitation(&Acceptance {
                    token_hash,
                    user: &accepting,
                    new_user,
                    passkey: None,
                    new_member: &new_member,
                    session: &session,
                    audit: &audit,
                    at: now(),
                })
            })
            .await
            .unwrap();
        let csrf = self.session_csrf(secret.expose()).await;
        Person {
            user_id: user.id,
            member_id: member.id,
            org_id: member.org_id,
            session_id,
            secret: secret.expose().to_owned(),
            csrf,
        }
    }

    /// A second session of the same person in the same org (another browser).
    pub async fn another_session(&self, person: &Person) -> Person {
        let secret =
            MintedToken::mint(TokenKind::Session, &ring::rand::SystemRandom::new()).unwrap();
        let session = SessionRecord {
            id: format!("ses_{}", random_suffix()),
            hash: secret.hash(),
            user_id: person.user_id.clone(),
            org_id: person.org_id.clone(),
            member_id: person.member_id.clone(),
            method: "passkey".to_owned(),
            created_at: now(),
            last_seen_at: now(),
            expires_at: now() + 3600,
            stepped_up_at: None,
            revoked_at: None,
        };
        let event = AuditEvent {
            org_id: person.org_id.clone(),
            actor: format!("user:{}", person.user_id),
            action: "session.start.passkey".to_owned(),
            target: format!("session:{}", session.id),
            outcome: "ok".to_owned(),
            request_id: "test".to_owned(),
            at: now(),
        };
        let stored = session.clone();
        self.stored(move |s| s.insert_session(&stored, &event))
            .await
            .unwrap();
        Person {
            session_id: session.id,
            csrf: self.session_csrf(secret.expose()).await,
            secret: secret.expose().to_owned(),
            ..person.clone()
        }
    }

    /// The CSRF token of a session. A browser gets it in the answer that starts the
    /// session; a session made through the storage gets it from the same derivation, with the
    /// server secret of the test's data folder.
    async fn session_csrf(&self, secret: &str) -> String {
        let secret_bytes = std::fs::read(self.data.path().join("server.key")).unwrap();
        let key = edgekeep_server::identity::session::CsrfKey::derive(&secret_bytes);
        key.token(&token_hash(secret))
    }

    /// Calls the API with a session cookie; state-changing methods also send the CSRF token
    /// and the server's origin.
    pub async fn session_call(
        &self,
        person: &Person,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.session_call_with(person, method, path, body, &[])
            .await
    }

    /// [`Self::session_call`] with extra headers (`("x-csrf-token", "")` to drop one).
    pub async fn session_call_with(
        &self,
        person: &Person,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method.clone(), self.url(path))
            .header("cookie", format!("{SESSION_COOKIE}={}", person.secret));
        let overridden = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if method != Method::GET {
            if !overridden(CSRF_HEADER) {
                request = request.header(CSRF_HEADER, &person.csrf);
            }
            if !overridden("origin") {
                request = request.header("origin", &self.origin);
            }
        }
        for (name, value) in headers {
            if !value.is_empty() {
                request = request.header(*name, *value);
            }
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }
}
