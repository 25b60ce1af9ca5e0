//! Agreement of the per-device key-wrapping key at enrollment.
//!
//! The device sends an ephemeral X25519 public key with its enrollment; the server answers with
//! its own ephemeral X25519 public key. Both run X25519 and HKDF-SHA256 (salt
//! [`KWK_SALT`], info `org_id 0x00 device_id`) to get the same 32-byte [`WrappingKey`], which
//! later wraps artifact content keys for this device only.

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::hkdf;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

/// Length in bytes of an X25519 public key.
pub const X25519_PUBLIC_KEY_LEN: usize = 32;
/// HKDF salt, fixed per protocol version.
pub const KWK_SALT: &[u8] = b"edgekeep/v1/device-key-wrapping-key";

/// Why agreement failed. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    /// The peer's public key is not a valid X25519 key, or the agreement failed.
    #[error("key agreement failed")]
    Failed,
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// A 32-byte symmetric key that wraps content keys for one device. Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappingKey(Zeroizing<[u8; 32]>);

impl WrappingKey {
    /// Wraps raw key bytes (e.g. after the server decrypts its stored copy).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrappingKey(<redacted>)")
    }
}

/// One side's ephemeral X25519 key, used exactly once.
pub struct EphemeralAgreement {
    private: EphemeralPrivateKey,
    public: Vec<u8>,
}

impl EphemeralAgreement {
    /// Generates a fresh ephemeral key pair.
    pub fn generate() -> Result<Self, AgreementError> {
        let rng = SystemRandom::new();
        let private =
            EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| AgreementError::Random)?;
        let public = private
            .compute_public_key()
            .map_err(|_| AgreementError::Random)?
            .as_ref()
            .to_vec();
        Ok(Self { private, public })
    }

    /// This side's public key, to send to the peer.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// Agrees with `peer_public` and derives the wrapping key bound to `org_id` and `device_id`.
    ///
    /// Fails if the peer key is not 32 bytes or yields an all-zero shared secret.
    pub fn derive(
        self,
        peer_public: &[u8],
        org_id: &str,
        device_id: &str,
    ) -> Result<WrappingKey, AgreementError> {
        if peer_public.len() != X25519_PUBLIC_KEY_LEN {
            return Err(AgreementError::Failed);
        }
        let peer = UnparsedPublicKey::new(&X25519, peer_public);
        agreement::agree_ephemeral(self.private, &peer, |shared| {
            derive_from_shared(shared, org_id, device_id)
        })
        .map_err(|_| AgreementError::Failed)?
    }
}

impl std::fmt::Debug for EphemeralAgreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralAgreement").finish_non_exhaustive()
    }
}

fn derive_from_shared(
    shared: &[u8],
    org_id: &str,
    device_id: &str,
) -> Result<WrappingKey, AgreementError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KWK_SALT).extract(shared);
    let info = [org_id.as_bytes(), &[0u8], device_id.as_bytes()];
    let okm = prk
        .expand(&info, hkdf::HKDF_SHA256)
        .map_err(|_| AgreementError::Failed)?;
    let mut key = Zeroizing::new([0u8; 32]);
    okm.fill(key.as_mut()).map_err(|_| AgreementError::Failed)?;
    Ok(WrappingKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_derive_the_same_key_bound_to_ids() {
        let device = EphemeralAgreement::generate().unwrap();
        let server = EphemeralAgreement::generate().unwrap();
        let device_pub = device.public_key().to_vec();
        let server_pub = server.public_key().to_vec();
        let a = device.derive(&server_pub, "org1", "dev1").unwrap();
        let b = server.derive(&device_pub, "org1", "dev1").unwrap();
        assert_eq!(a, b);

        let device = EphemeralAgreement::generate().unwrap();
        let server = EphemeralAgreement::generate().unwrap();
        let server_pub = server.public_key().to_vec();
        let device_pub = device.public_key().to_vec();
        let a = device.derive(&server_pub, "org1", "dev1").unwrap();
        let b = server.derive(&device_pub, "org2", "dev1").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn bad_peer_key_is_an_error() {
        let side = EphemeralAgreement::generate().unwrap();
        assert_eq!(
            side.derive(&[1u8; 5], "o", "d").unwrap_err(),
            AgreementError::Failed
        );
        let side = EphemeralAgreement::generate().unwrap();
        assert_eq!(
            side.derive(&[0u8; 32], "o", "d").unwrap_err(),
            AgreementError::Failed
        );
    }

    #[test]
    fn debug_redacts() {
        let key = WrappingKey::from_bytes([7u8; 32]);
        assert!(!format!("{key:?}").contains('7'));
    }
}
