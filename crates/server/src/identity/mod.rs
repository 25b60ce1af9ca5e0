//! People and their credentials: sessions bound to one org (cookies, CSRF, step-up),
//! invitations, and passkeys. API keys stay for backends and CI; people use sessions.
//!
//! Files: [`session`] (session secrets, cookies, CSRF tokens, timeouts), [`csrf`] (the
//! same-origin checks of cookie-authenticated writes), [`passkeys`] (WebAuthn registration and
//! authentication ceremonies, JSON in and JSON out, no storage or HTTP of their own), [`oidc`]
//! (sign-in through an org's OpenID Provider: discovery, authorization code with PKCE, ID token
//! checks, who may enter).

pub mod csrf;
pub mod oidc;
pub mod passkeys;
pub mod session;

/// Why an identity operation failed. Carries no user data.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The random generator failed.
    #[error("random generator failed")]
    Random,
}
