//! Ed25519 keys: the publisher key that signs artifact manifests (held outside the server) and
//! the server's online key that signs desired-state documents.
//!
//! A key is named by its [`key_id`]: `ed25519:` followed by the base64url SHA-256 of the 32-byte
//! public key, truncated to 16 bytes. Private keys are stored as PKCS#8 v2 documents (what
//! `ring` generates), encoded as base64url text in key files.

use ring::rand::SecureRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use zeroize::Zeroizing;

/// Length of an Ed25519 public key in bytes.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// Why a key could not be generated, loaded or used. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The key text or bytes are not an Ed25519 key of the expected form.
    #[error("key is malformed")]
    MalformedKey,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// The identifier of an Ed25519 public key (`ed25519:<22 base64url characters>`).
pub fn key_id(public_key: &[u8; ED25519_PUBLIC_KEY_LEN]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    format!("ed25519:{}", crate::b64_encode(&digest.as_ref()[..16]))
}

/// An Ed25519 private key (publisher or server). Its PKCS#8 bytes are zeroized on drop.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

/// The key a publisher signs manifests with.
pub type PublisherKey = SigningKey;
/// The server's online key that signs desired-state documents.
pub type DesiredStateKey = SigningKey;

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, SigningError> {
        let doc = Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| SigningError::Random)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads a key from its PKCS#8 v2 document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SigningError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SigningError::MalformedKey)?;
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
        })
    }

    /// Loads a key from the text of a key file (base64url PKCS#8, surrounding whitespace ignored).
    pub fn from_text(text: &str) -> Result<Self, SigningError> {
        let bytes =
            Zeroizing::new(crate::b64_decode(text.trim()).ok_or(SigningError::MalformedKey)?);
        Self::from_pkcs8(&bytes)
    }

    /// The text of a key file for this key (base64url PKCS#8). Secret: store it `0600`.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::b64_encode(&self.pkcs8))
    }

    /// The public half.
    pub fn public_key(&self) -> VerifyingKey {
        let mut bytes = [0u8; ED25519_PUBLIC_KEY_LEN];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey(bytes)
    }

    /// The key's identifier.
    pub fn key_id(&self) -> String {
        self.public_key().key_id()
    }

    /// Signs `context || message` (the context separates what a signature can mean).
    pub fn sign(&self, context: &[u8], message: &[u8]) -> [u8; ED25519_SIGNATURE_LEN] {
        let mut data = Vec::with_capacity(context.len() + message.len());
        data.extend_from_slice(context);
        data.extend_from_slice(message);
        let mut out = [0u8; ED25519_SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(&data).as_ref());
        out
    }
}

/// An Ed25519 public key (a publisher key devices pin, or the server's desired-state key).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey([u8; ED25519_PUBLIC_KEY_LEN]);

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.key_id())
    }
}

impl VerifyingKey {
    /// Wraps 32 raw public key bytes.
    pub fn from_bytes(bytes: [u8; ED25519_PUBLIC_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses base64url text of 32 bytes.
    pub fn from_text(text: &str) -> Result<Self, SigningError> {
        let bytes = crate::b64_decode(text.trim()).ok_or(SigningError::MalformedKey)?;
        let bytes: [u8; ED25519_PUBLIC_KEY_LEN] =
            bytes.try_into().map_err(|_| SigningError::MalformedKey)?;
        Ok(Self(bytes))
    }

    /// Base64url text of the key (the form key files and the API use).
    pub fn to_text(&self) -> String {
        crate::b64_encode(&self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; ED25519_PUBLIC_KEY_LEN] {
        &self.0
    }

    /// The key's identifier.
    pub fn key_id(&self) -> String {
        key_id(&self.0)
    }

    /// Verifies `signature` over `context || message`.
    pub fn verify(
        &self,
        context: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SigningError> {
        let mut data = Vec::with_capacity(context.len() + message.len());
        data.extend_from_slice(context);
        data.extend_from_slice(message);
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&data, signature)
            .map_err(|_| SigningError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn sign_verify_text_round_trip_and_context_separation() {
        let key = SigningKey::generate(&SystemRandom::new()).unwrap();
        let loaded = SigningKey::from_text(&key.to_text()).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        let public = VerifyingKey::from_text(&key.public_key().to_text()).unwrap();
        let sig = key.sign(b"ctx-a", b"message");
        public.verify(b"ctx-a", b"message", &sig).unwrap();
        assert!(public.verify(b"ctx-b", b"message", &sig).is_err());
        assert!(public.verify(b"ctx-a", b"messagf", &sig).is_err());
        assert!(key.key_id().starts_with("ed25519:"));
        assert!(!format!("{key:?}").contains(key.to_text().as_str()));
        assert!(SigningKey::from_text("not a key").is_err());
        assert!(VerifyingKey::from_text("AAAA").is_err());
    }
}
