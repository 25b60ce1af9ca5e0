//! Wire protocol shared by the edgekeep SDK and control plane (no I/O).
//!
//! Everything both sides must agree on byte for byte lives here:
//!
//! - [`error`]: the closed set of error codes and the `{code, message}` error body.
//! - [`token`]: the formats of API keys, bootstrap tokens, access tokens and refresh tokens.
//! - [`proof`]: the DPoP-style (RFC 9449) request proof, its builder and its verifier.
//! - [`key_agreement`]: the X25519 + HKDF derivation of the per-device key-wrapping key.
//! - [`api`]: request and response bodies of the `/v1` JSON API, roles and permissions.
//! - [`signing`]: Ed25519 publisher and desired-state keys.
//! - [`artifact`]: the model artifact (manifest, canonical bytes, bundle parser, encryption,
//!   per-device content key wrapping).
//! - [`desired_state`]: the signed per-device desired state.
//! - [`rollout`]: deterministic rollout bucketing and rollout/progress states.
//! - [`telemetry`]: the declared telemetry schema (batches, events, acknowledgements).
//! - [`fleet`]: registry, rollout and fleet-health bodies for operators.
//! - [`people`]: invitations, sessions and passkeys; [`idp`]: an org's OpenID Provider.

#![warn(missing_docs)]

pub mod api;
pub mod artifact;
pub mod desired_state;
pub mod error;
pub mod fleet;
pub mod idp;
pub mod key_agreement;
pub mod people;
pub mod proof;
pub mod rollout;
pub mod scim;
pub mod signing;
pub mod telemetry;
pub mod token;

pub use error::{ErrorBody, ErrorCode};

/// The path prefix of the current API version.
pub const API_PREFIX: &str = "/v1";

/// Encodes bytes as unpadded base64url, the only binary encoding used on the wire.
pub fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; `None` if the text is not valid base64url.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.as_bytes())
        .ok()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}
