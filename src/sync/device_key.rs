//! The device identity key: ECDSA P-256, behind [`DeviceKeyProvider`].

use std::sync::Arc;

use edgekeep_protocol::proof::{ProofError, ProofSigner, SoftwareDeviceKey};

use crate::store::{Namespace, Store};

use super::error::SyncError;

const IDENTITY: Namespace = Namespace::new("sync.identity");
const PKCS8: &[u8] = b"p256_pkcs8";

/// Holds the device's P-256 identity key and signs request proofs with it.
///
/// The software default is [`StoreDeviceKey`]; the bindings bring one backed by Secure
/// Enclave or StrongBox, where the private key never leaves the hardware.
pub trait DeviceKeyProvider: Send + Sync {
    /// The uncompressed SEC1 public key (65 bytes).
    fn public_key(&self) -> Vec<u8>;
    /// Signs `message` with ECDSA P-256 / SHA-256 in fixed `r || s` form (64 bytes).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SyncError>;
    /// Forgets the key (after revocation). The next enrollment creates a new one.
    fn reset(&self) -> Result<(), SyncError>;
}

/// A software P-256 key whose PKCS#8 encoding is sealed in the encrypted store.
pub struct StoreDeviceKey {
    store: Arc<Store>,
    key: std::sync::Mutex<Option<Arc<SoftwareDeviceKey>>>,
}

impl std::fmt::Debug for StoreDeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDeviceKey").finish_non_exhaustive()
    }
}

impl StoreDeviceKey {
    /// Loads the key sealed in `store`, or generates and seals a new one.
    pub fn load_or_create(store: Arc<Store>) -> Result<Self, SyncError> {
        let this = Self {
            store,
            key: std::sync::Mutex::new(None),
        };
        this.current()?;
        Ok(this)
    }

    fn current(&self) -> Result<Arc<SoftwareDeviceKey>, SyncError> {
        let mut slot = self.key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = slot.as_ref() {
            return Ok(key.clone());
        }
        let key = match self.store.kv().get(IDENTITY, PKCS8)? {
            Some(pkcs8) => {
                SoftwareDeviceKey::from_pkcs8(pkcs8.as_bytes()).map_err(|_| SyncError::DeviceKey)?
            }
            None => {
                let (key, pkcs8) =
                    SoftwareDeviceKey::generate().map_err(|_| SyncError::DeviceKey)?;
                self.store.kv().put(IDENTITY, PKCS8, &pkcs8)?;
                key
            }
        };
        let key = Arc::new(key);
        *slot = Some(key.clone());
        Ok(key)
    }
}

impl DeviceKeyProvider for StoreDeviceKey {
    fn public_key(&self) -> Vec<u8> {
        self.current()
            .map(|key| ProofSigner::public_key(key.as_ref()))
            .unwrap_or_default()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SyncError> {
        self.current()?
            .sign(message)
            .map_err(|_| SyncError::DeviceKey)
    }

    fn reset(&self) -> Result<(), SyncError> {
        *self.key.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.store.kv().delete(IDENTITY, PKCS8)?;
        Ok(())
    }
}

/// Adapts a [`DeviceKeyProvider`] to the protocol's proof builder.
pub(crate) struct ProviderSigner<'a>(pub &'a dyn DeviceKeyProvider);

impl ProofSigner for ProviderSigner<'_> {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProofError> {
        self.0.sign(message).map_err(|_| ProofError::Signing)
    }
}
