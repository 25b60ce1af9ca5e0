//! The server secret: a 256-bit key in `<data>/server.key` that seals secrets kept in the
//! database (per-device key-wrapping keys) with AES-256-GCM, so a copied database alone does
//! not reveal them.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::ServerError;

/// The loaded server secret.
pub struct ServerSecret {
    key: LessSafeKey,
    audit_key: crate::audit::AuditKey,
    csrf_key: crate::identity::session::CsrfKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

/// Length of the secret in bytes.
pub const SECRET_LEN: usize = 32;

impl ServerSecret {
    /// Draws fresh secret bytes.
    pub fn generate_bytes() -> Result<Zeroizing<[u8; SECRET_LEN]>, ServerError> {
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| ServerError::Random)?;
        Ok(bytes)
    }

    /// Loads the secret from its raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ServerError> {
        if bytes.len() != SECRET_LEN {
            return Err(ServerError::BadSecret);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| ServerError::BadSecret)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            audit_key: crate::audit::AuditKey::derive(bytes),
            csrf_key: crate::identity::session::CsrfKey::derive(bytes),
            rng: SystemRandom::new(),
        })
    }

    /// The key that authenticates audit chain heads, derived from this secret.
    pub fn audit_key(&self) -> crate::audit::AuditKey {
        self.audit_key.clone()
    }

    /// The key that derives sessions' CSRF tokens, derived from this secret.
    pub fn csrf_key(&self) -> &crate::identity::session::CsrfKey {
        &self.csrf_key
    }

    /// Seals `plaintext`, bound to `context`: returns `nonce || ciphertext || tag`.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ServerError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| ServerError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .map_err(|_| ServerError::BadSecret)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`ServerSecret::seal`] produced for the same `context`.
    ///
    /// Fails if the data was altered, moved to another context, or sealed with another secret.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ServerError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(ServerError::BadSecret);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ServerError::BadSecret)?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), body.as_mut_slice())
            .map_err(|_| ServerError::BadSecret)?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

/// The sealing context of a device's key-wrapping key.
pub fn kwk_context(org_id: &str, device_id: &str) -> Vec<u8> {
    format!("edgekeep/v1/kwk\0{org_id}\0{device_id}").into_bytes()
}

/// The sealing context of an artifact's content key.
pub fn content_key_context(org_id: &str, artifact_id: &str) -> Vec<u8> {
    format!("edgekeep/v1/content-key\0{org_id}\0{artifact_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_context_binding() {
        let secret = ServerSecret::from_bytes(&[9u8; 32]).unwrap();
        let sealed = secret.seal(b"a", b"key material").unwrap();
        assert_eq!(
            secret.open(b"a", &sealed).unwrap().as_slice(),
            b"key material"
        );
        assert!(secret.open(b"b", &sealed).is_err());
        let other = ServerSecret::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open(b"a", &sealed).is_err());
        assert!(ServerSecret::from_bytes(&[1u8; 5]).is_err());
    }
}
