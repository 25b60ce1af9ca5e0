//! Shared by the FFI crate's tests: a trivial key provider and a config with the SDK's
//! default policies.

use edgekeep_ffi::{
    ActivationPolicy, DownloadPolicy, EdgeKeepConfig, EdgeKeepError, KeyProvider, UploadPolicy,
};

/// Wraps by XOR: enough for tests that are not about the store's encryption.
pub struct XorKeyProvider;

impl KeyProvider for XorKeyProvider {
    fn wrap_key(&self, _: u32, key: Vec<u8>) -> Result<Vec<u8>, EdgeKeepError> {
        Ok(key.iter().map(|b| b ^ 0x5a).collect())
    }

    fn unwrap_key(&self, id: u32, wrapped: Vec<u8>) -> Result<Vec<u8>, EdgeKeepError> {
        self.wrap_key(id, wrapped)
    }
}

/// A config over `dir`, talking to `control_plane_url` if given.
pub fn config(dir: &std::path::Path, control_plane_url: Option<String>) -> EdgeKeepConfig {
    EdgeKeepConfig {
        data_dir: dir.to_string_lossy().into_owned(),
        control_plane_url,
        root_certificate_pem: None,
        publisher_keys: vec![],
        model_slots: vec![],
        upload_policy: UploadPolicy {
            allow_cellular: false,
            min_batches: 1,
        },
        download_policy: DownloadPolicy {
            wifi_only: true,
            charging_only: false,
            min_battery_percent: 20,
            min_free_storage_bytes: 0,
        },
        activation_policy: ActivationPolicy::Immediate,
    }
}
