//! The production [`RecordStore`]: the encrypted store's key/value collection.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::error::{PersonalizeError, Result};
use super::records::RecordStore;
use crate::store::{Namespace, Store};

/// Personalization records sealed in one namespace of the encrypted [`Store`].
pub(crate) struct StoreRecords {
    store: Arc<Store>,
    namespace: Namespace,
}

impl StoreRecords {
    pub(crate) fn new(store: Arc<Store>, namespace: Namespace) -> Self {
        Self { store, namespace }
    }
}

impl RecordStore for StoreRecords {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.store
            .kv()
            .put(self.namespace, key, value)
            .map_err(PersonalizeError::Store)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.store
            .kv()
            .get(self.namespace, key)
            .map(|v| v.map(|bytes| bytes.into_zeroizing()))
            .map_err(PersonalizeError::Store)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.store
            .kv()
            .delete(self.namespace, key)
            .map(|_| ())
            .map_err(PersonalizeError::Store)
    }

    fn clear(&self) -> Result<()> {
        self.store
            .kv()
            .clear(self.namespace)
            .map(|_| ())
            .map_err(PersonalizeError::Store)
    }
}
