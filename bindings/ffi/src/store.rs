//! [`EncryptedStore`]: the app's share of the SDK's encrypted store — key/value entries and
//! append-only events, every value sealed on disk.

use std::sync::Arc;

use edgekeep::store::{EventId, Namespace, Store};

use crate::error::Result;
use crate::guard::guard;

const APP_KV: Namespace = Namespace::new("app.kv");
const APP_EVENTS: Namespace = Namespace::new("app.events");

/// An event read back from the store.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct StoredEvent {
    /// Its id, increasing in append order.
    pub id: i64,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
    /// The payload as appended.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for StoredEvent {
    /// Id and time only: the payload is user data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEvent")
            .field("id", &self.id)
            .field("recorded_at_ms", &self.recorded_at_ms)
            .finish_non_exhaustive()
    }
}

/// The app's encrypted key/value entries and events. Values and keys are sealed (keys are
/// looked up by keyed hash); reads fail with `StoreDamaged` if anything was altered.
#[derive(Debug, uniffi::Object)]
pub struct EncryptedStore {
    store: Arc<Store>,
}

impl EncryptedStore {
    pub(crate) fn new(store: Arc<Store>) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

#[uniffi::export]
impl EncryptedStore {
    /// Stores `value` under `key`, replacing any previous value. One transaction.
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        guard("EncryptedStore.put", || {
            Ok(self.store.kv().put(APP_KV, &key, &value)?)
        })
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        guard("EncryptedStore.get", || {
            Ok(self
                .store
                .kv()
                .get(APP_KV, &key)?
                .map(|v| v.as_bytes().to_vec()))
        })
    }

    /// Whether a value is stored under `key`.
    pub fn contains(&self, key: Vec<u8>) -> Result<bool> {
        guard("EncryptedStore.contains", || {
            Ok(self.store.kv().contains(APP_KV, &key)?)
        })
    }

    /// Deletes the value under `key`; returns whether there was one.
    pub fn delete(&self, key: Vec<u8>) -> Result<bool> {
        guard("EncryptedStore.delete", || {
            Ok(self.store.kv().delete(APP_KV, &key)?)
        })
    }

    /// How many key/value entries the app has stored.
    pub fn count(&self) -> Result<u64> {
        guard("EncryptedStore.count", || {
            Ok(self.store.kv().len(APP_KV)?)
        })
    }

    /// Appends an event recorded now; returns its id.
    pub fn append_event(&self, payload: Vec<u8>) -> Result<i64> {
        guard("EncryptedStore.append_event", || {
            Ok(self.store.events().append(APP_EVENTS, &payload)?.get())
        })
    }

    /// Up to `limit` events with ids greater than `after` (from the start when `None`),
    /// oldest first.
    pub fn events(&self, after: Option<i64>, limit: u32) -> Result<Vec<StoredEvent>> {
        guard("EncryptedStore.events", || {
            let after = after.map(EventId::from_raw);
            Ok(self
                .store
                .events()
                .scan(APP_EVENTS, after, limit as usize)?
                .into_iter()
                .map(|e| StoredEvent {
                    id: e.id.get(),
                    recorded_at_ms: e
                        .recorded_at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                    payload: e.payload.as_bytes().to_vec(),
                })
                .collect())
        })
    }

    /// Starts a data-key rotation and re-seals every value under the new key.
    pub fn rotate_data_key(&self) -> Result<()> {
        guard("EncryptedStore.rotate_data_key", || {
            self.store.rotate_data_key()?;
            while !self.store.reencrypt_batch(256)?.is_complete() {}
            Ok(())
        })
    }
}
