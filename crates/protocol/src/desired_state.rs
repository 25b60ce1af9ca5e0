//! The desired state: which model version each model slot of one device should run, signed
//! by the server's online Ed25519 key with a short expiry (freshness).
//!
//! The signed document carries the exact JSON text of [`DesiredState`] as `payload`; the
//! signature covers `"edgekeep/v1/desired-state\n" || payload bytes`, so the device verifies
//! the bytes it received before parsing them (no canonicalization needed). Each assignment
//! still carries its publisher-signed manifest: the server's signature proves freshness, the
//! publisher's proves the model (a compromised server cannot push a model).

use serde::{Deserialize, Serialize};

use crate::artifact::SignedManifest;
use crate::signing::{SigningKey, VerifyingKey};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Signature context of desired-state documents.
pub const DESIRED_STATE_CONTEXT: &[u8] = b"edgekeep/v1/desired-state\n";
/// Largest payload a device parses, in bytes.
pub const MAX_DESIRED_STATE_LEN: usize = 256 * 1024;
/// Most model slots in one desired state.
pub const MAX_SLOTS: usize = 64;
/// Allowed clock difference when checking `issued_at`, seconds.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// Why a desired-state document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredStateError {
    /// Too large, not JSON of the expected shape, or too many slots.
    #[error("desired state is malformed")]
    Malformed,
    /// Signed by another key, or the signature does not verify.
    #[error("desired state signature does not verify")]
    BadSignature,
    /// Expired, or issued in the future beyond the allowed skew (a freeze or replay).
    #[error("desired state is not fresh")]
    Stale,
    /// Made for another device.
    #[error("desired state is for another device")]
    WrongDevice,
}

/// One model slot's assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelAssignment {
    /// Model name (slot); equals `manifest.manifest.model`.
    pub model: String,
    /// The version to run; equals `manifest.manifest.version`.
    pub version: u64,
    /// The artifact id (ciphertext SHA-256, hex): download path
    /// `/v1/device/artifacts/{artifact_id}`, key at `.../{artifact_id}/key`.
    pub artifact_id: String,
    /// The rollout that assigned it, if a rollout did.
    pub rollout_id: Option<String>,
    /// The publisher-signed manifest.
    pub manifest: SignedManifest,
}

/// What one device should run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    /// The device this is for.
    pub device_id: String,
    /// Its org.
    pub org_id: String,
    /// Issue time (unix seconds).
    pub issued_at: i64,
    /// After this time the device must not act on it; it keeps its current model.
    pub expires_at: i64,
    /// One entry per model slot that has an assigned version.
    pub slots: Vec<ModelAssignment>,
}

/// Answer of `GET /v1/device/desired-state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedDesiredState {
    /// The exact JSON text of a [`DesiredState`].
    pub payload: String,
    /// [`crate::signing::key_id`] of the server key that signed it.
    pub key_id: String,
    /// Base64url Ed25519 signature over [`DESIRED_STATE_CONTEXT`] and the payload bytes.
    pub signature: String,
}

impl SignedDesiredState {
    /// Serializes and signs `state`.
    pub fn sign(state: &DesiredState, key: &SigningKey) -> Self {
        let payload = serde_json::to_string(state).unwrap_or_default();
        let signature = crate::b64_encode(&key.sign(DESIRED_STATE_CONTEXT, payload.as_bytes()));
        Self {
            payload,
            key_id: key.key_id(),
            signature,
        }
    }

    /// Verifies the signature with `server_key` before parsing, then freshness at `now` and
    /// that it names `device_id`. Does not check the manifests (the SDK checks each against
    /// its pinned publisher keys).
    pub fn verify(
        &self,
        server_key: &VerifyingKey,
        device_id: &str,
        now: i64,
    ) -> Result<DesiredState, DesiredStateError> {
        if self.payload.len() > MAX_DESIRED_STATE_LEN {
            return Err(DesiredStateError::Malformed);
        }
        if self.key_id != server_key.key_id() {
            return Err(DesiredStateError::BadSignature);
        }
        let signature =
            crate::b64_decode(&self.signature).ok_or(DesiredStateError::BadSignature)?;
        server_key
            .verify(DESIRED_STATE_CONTEXT, self.payload.as_bytes(), &signature)
            .map_err(|_| DesiredStateError::BadSignature)?;
        let state: DesiredState =
            serde_json::from_str(&self.payload).map_err(|_| DesiredStateError::Malformed)?;
        if state.slots.len() > MAX_SLOTS {
            return Err(DesiredStateError::Malformed);
        }
        if state.expires_at <= now || state.issued_at > now + CLOCK_SKEW_SECS {
            return Err(DesiredStateError::Stale);
        }
        if state.device_id != device_id {
            return Err(DesiredStateError::WrongDevice);
        }
        Ok(state)
    }
}

/// Answer of `GET /v1/desired-state-key`: the server's desired-state public key, for devices
/// to pin at enrollment (or for operators to configure in the SDK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DesiredStateKeyInfo {
    /// Key id.
    pub key_id: String,
    /// Base64url Ed25519 public key.
    pub public_key: String,
}

/// Answer of `GET /v1/device/artifacts/{artifact_id}/key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WrappedContentKey {
    /// The artifact.
    pub artifact_id: String,
    /// The content key wrapped for the calling device
    /// ([`crate::artifact::unwrap_content_key`] with the enrollment key-wrapping key).
    pub wrapped_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn state(now: i64) -> DesiredState {
        DesiredState {
            device_id: "dev_1".into(),
            org_id: "org_1".into(),
            issued_at: now,
            expires_at: now + 300,
            slots: vec![],
        }
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_documents(payload in ".{0,300}", signature in "[A-Za-z0-9_-]{0,100}") {
            let key = SigningKey::generate(&SystemRandom::new()).unwrap();
            let doc = SignedDesiredState { payload, key_id: key.key_id(), signature };
            proptest::prop_assert!(doc.verify(&key.public_key(), "dev_1", 1000).is_err());
        }
    }

    #[test]
    fn verify_checks_key_signature_freshness_and_device() {
        let rng = SystemRandom::new();
        let key = SigningKey::generate(&rng).unwrap();
        let other = SigningKey::generate(&rng).unwrap();
        let signed = SignedDesiredState::sign(&state(1000), &key);
        let public = key.public_key();
        assert_eq!(signed.verify(&public, "dev_1", 1001).unwrap(), state(1000));
        assert_eq!(
            signed.verify(&other.public_key(), "dev_1", 1001),
            Err(DesiredStateError::BadSignature)
        );
        assert_eq!(
            signed.verify(&public, "dev_1", 1300),
            Err(DesiredStateError::Stale)
        );
        assert_eq!(
            signed.verify(&public, "dev_2", 1001),
            Err(DesiredStateError::WrongDevice)
        );
        let mut tampered = signed.clone();
        tampered.payload = tampered.payload.replace("1300", "9999");
        assert_eq!(
            tampered.verify(&public, "dev_1", 1001),
            Err(DesiredStateError::BadSignature)
        );
    }
}
