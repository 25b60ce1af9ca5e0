//! People and their credentials: the passkey (WebAuthn) ceremonies a person signs in with.
//!
//! - [`passkeys`]: [`passkeys::PasskeyService`], registration and authentication ceremonies,
//!   JSON in and JSON out, with no storage and no HTTP of its own.

pub mod passkeys;
