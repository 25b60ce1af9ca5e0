//! Device credentials, kept only in the encrypted store.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::store::{Namespace, Store};

use super::error::SyncError;

const AUTH: Namespace = Namespace::new("sync.auth");
const CREDENTIALS: &[u8] = b"credentials";
const REVOKED: &[u8] = b"revoked";

/// What the device holds after enrollment. Zeroized on drop; `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Credentials {
    pub device_id: String,
    pub org_id: String,
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: String,
    pub refresh_expires_at: i64,
    /// The key-wrapping key agreed at enrollment (unwraps artifact content keys).
    pub wrapping_key: [u8; 32],
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// The persisted auth state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Persisted {
    Unenrolled,
    Enrolled(Credentials),
    Revoked,
}

/// Reads and writes credentials in the store.
#[derive(Debug, Clone)]
pub(crate) struct CredentialStore {
    store: Arc<Store>,
}

impl CredentialStore {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    pub fn load(&self) -> Result<Persisted, SyncError> {
        let kv = self.store.kv();
        if kv.contains(AUTH, REVOKED)? {
            return Ok(Persisted::Revoked);
        }
        match kv.get(AUTH, CREDENTIALS)? {
            None => Ok(Persisted::Unenrolled),
            Some(bytes) => serde_json::from_slice(bytes.as_bytes())
                .map(Persisted::Enrolled)
                .map_err(|_| SyncError::Config("stored credentials are unreadable")),
        }
    }

    pub fn save(&self, credentials: &Credentials) -> Result<(), SyncError> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(credentials)
                .map_err(|_| SyncError::Config("credentials encoding failed"))?,
        );
        let kv = self.store.kv();
        kv.delete(AUTH, REVOKED)?;
        kv.put(AUTH, CREDENTIALS, &bytes)?;
        Ok(())
    }

    /// Wipes the credentials and remembers the revocation.
    pub fn mark_revoked(&self) -> Result<(), SyncError> {
        let kv = self.store.kv();
        kv.delete(AUTH, CREDENTIALS)?;
        kv.put(AUTH, REVOKED, &[1])?;
        Ok(())
    }
}
