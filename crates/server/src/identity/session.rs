//! Sessions: an opaque random secret in a `__Host-` cookie (`Secure`, `HttpOnly`,
//! `SameSite=Strict`), stored as its SHA-256, bound to one org, with idle and absolute
//! timeouts; the CSRF token is an HMAC of the session under a key derived from the server
//! secret, so it needs no storage and cannot be forged without the key.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use edgekeep_protocol::people::SESSION_COOKIE;
use ring::hmac;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after it started, whatever its use.
    pub absolute_timeout: Duration,
    /// How recent a passkey assertion must be for Owner-level actions.
    pub step_up_window: Duration,
    /// How long a WebAuthn ceremony may take.
    pub ceremony_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            step_up_window: Duration::from_secs(5 * 60),
            ceremony_timeout: Duration::from_secs(5 * 60),
        }
    }
}

impl SessionLimits {
    /// Whether a session last seen at `last_seen` and ending at `expires_at` is live at `now`.
    pub fn is_live(&self, last_seen: i64, expires_at: i64, now: i64) -> bool {
        now < expires_at && now - last_seen < secs(self.idle_timeout)
    }

    /// Whether a step-up at `stepped_up_at` still counts at `now`.
    pub fn is_stepped_up(&self, stepped_up_at: Option<i64>, now: i64) -> bool {
        stepped_up_at.is_some_and(|at| now - at <= secs(self.step_up_window) && at <= now)
    }
}

/// Whether a session started by `method` speaks for its person in every org: a passkey sign-in,
/// or a session switched from one. A session an org's identity provider started (`oidc`,
/// `saml`) speaks only in that org: its Owner controls the provider.
pub fn speaks_for_person(method: &str) -> bool {
    matches!(method, "passkey" | "switch")
}

/// A session's last-seen time is written at most this often (idle timeouts are minutes).
pub const SESSION_TOUCH_INTERVAL_SECS: i64 = 30;

/// Whole seconds of a duration, as the storage's time unit.
pub fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// A session about to start: its record (to store) and its secret (for the cookie, once).
#[derive(Debug)]
pub struct NewSession {
    /// What is stored.
    pub record: crate::storage::SessionRecord,
    /// The secret, only in the `Set-Cookie` of the response that starts it.
    pub secret: edgekeep_protocol::token::MintedToken,
}

/// Mints a session for `member` (of `user`) signed in by `method`, with a step-up now when the
/// sign-in itself was a fresh passkey assertion.
pub fn mint(
    state: &crate::api::AppState,
    user_id: &str,
    member: &crate::storage::MemberRecord,
    method: &str,
    stepped_up: bool,
) -> Result<NewSession, crate::error::ApiError> {
    use edgekeep_protocol::token::{MintedToken, TokenKind};
    let secret = MintedToken::mint(TokenKind::Session, state.rng())
        .map_err(|_| crate::error::ApiError::internal())?;
    let now = crate::now();
    let record = crate::storage::SessionRecord {
        id: state.new_id("ses")?,
        hash: secret.hash(),
        user_id: user_id.to_owned(),
        org_id: member.org_id.clone(),
        member_id: member.id.clone(),
        method: method.to_owned(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + secs(state.config().sessions.absolute_timeout),
        stepped_up_at: stepped_up.then_some(now),
        revoked_at: None,
    };
    Ok(NewSession { record, secret })
}

/// The key CSRF tokens are derived with.
pub struct CsrfKey(hmac::Key);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

impl CsrfKey {
    /// Derives the key from the server secret's bytes.
    pub fn derive(secret: &[u8]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&root, b"edgekeep/v1/csrf-key");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// The CSRF token of the session whose secret hashes to `session_hash`.
    pub fn token(&self, session_hash: &[u8; 32]) -> String {
        edgekeep_protocol::b64_encode(hmac::sign(&self.0, session_hash).as_ref())
    }

    /// Whether `presented` is the session's CSRF token (constant time).
    pub fn verify(&self, session_hash: &[u8; 32], presented: &str) -> bool {
        let Some(tag) = edgekeep_protocol::b64_decode(presented) else {
            return false;
        };
        hmac::verify(&self.0, session_hash, &tag).is_ok()
    }
}

/// The `Set-Cookie` value that stores a session secret for `max_age`.
pub fn session_cookie(secret: &str, max_age: Duration) -> HeaderValue {
    let text = format!(
        "{SESSION_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| clear_cookie())
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-ek_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// The session secret a request presents in its `Cookie` headers, if any.
pub fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name` in a request's `Cookie` headers, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_the_key() {
        let key = CsrfKey::derive(&[7u8; 32]);
        let other_key = CsrfKey::derive(&[8u8; 32]);
        let session = [1u8; 32];
        let token = key.token(&session);
        assert!(key.verify(&session, &token));
        assert!(!key.verify(&[2u8; 32], &token), "another session's token");
        assert!(!other_key.verify(&session, &token), "another server's key");
        assert!(!key.verify(&session, ""));
        assert!(!key.verify(&session, "not base64 at all!"));
    }

    #[test]
    fn the_cookie_is_host_only_secure_and_hidden_from_scripts() {
        let cookie = session_cookie("eks_abc", Duration::from_secs(60));
        let text = cookie.to_str().unwrap();
        assert!(text.starts_with("__Host-ek_session=eks_abc;"));
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
        ] {
            assert!(text.contains(attribute), "{attribute}");
        }
        assert!(!text.contains("Domain"));
    }

    #[test]
    fn the_secret_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-ek_session=eks_x"),
        );
        assert_eq!(presented_secret(&headers), Some("eks_x"));
        let mut lookalike = HeaderMap::new();
        lookalike.append(header::COOKIE, HeaderValue::from_static("ek_session=eks_y"));
        assert_eq!(presented_secret(&lookalike), None);
    }

    #[test]
    fn idle_and_absolute_timeouts_and_the_step_up_window() {
        let limits = SessionLimits::default();
        assert!(limits.is_live(1_000, 10_000, 1_100));
        assert!(!limits.is_live(1_000, 10_000, 1_000 + 30 * 60), "idle");
        assert!(!limits.is_live(9_999, 10_000, 10_000), "absolute");
        assert!(limits.is_stepped_up(Some(1_000), 1_300));
        assert!(!limits.is_stepped_up(Some(1_000), 1_301));
        assert!(!limits.is_stepped_up(None, 1_000));
        assert!(
            !limits.is_stepped_up(Some(2_000), 1_000),
            "a step-up from the future"
        );
    }
}
