//! The traits the app implements in Swift or Kotlin (or Python), and the bridges that plug
//! them into the SDK's own traits.

use std::sync::Arc;

use edgekeep::store::{self as core_store, KeyProviderError};
use edgekeep::sync::{self as core_sync, SyncError};
use edgekeep::telemetry as core_telemetry;
use zeroize::Zeroizing;

use crate::error::{EdgeKeepError, Result};

/// Wraps and unwraps the store's data keys with a key-encryption key the platform keeps
/// (iOS Keychain, Android Keystore). The key-encryption key never has to enter the SDK.
///
/// Throw `EdgeKeepError.WrongKey` when the key does not authenticate a wrapped blob,
/// `KeyUnavailable` when it cannot be reached now (device locked); anything else is
/// reported as `KeyProviderFailed(status = -1)`. The data key crosses the boundary as a byte
/// array: clear the app's copy once wrapped or handed back.
#[uniffi::export(with_foreign)]
pub trait KeyProvider: Send + Sync {
    /// Encrypts and authenticates `key` (32 bytes); bind `key_id` as associated data.
    fn wrap_key(&self, key_id: u32, key: Vec<u8>) -> Result<Vec<u8>>;
    /// Reverses [`wrap_key`](KeyProvider::wrap_key) for the same `key_id`.
    fn unwrap_key(&self, key_id: u32, wrapped: Vec<u8>) -> Result<Vec<u8>>;
}

/// The device identity key: ECDSA P-256, ideally in the Secure Enclave or StrongBox.
///
/// Without one, the SDK keeps a software key sealed in its encrypted store.
#[uniffi::export(with_foreign)]
pub trait DeviceKeyProvider: Send + Sync {
    /// The uncompressed SEC1 public key (65 bytes, `0x04 || x || y`).
    fn public_key(&self) -> Vec<u8>;
    /// Signs `message` with ECDSA P-256 / SHA-256; the signature as raw `r || s` (64 bytes).
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>>;
    /// Replaces the key with a fresh one (after the device was revoked).
    fn reset(&self) -> Result<()>;
}

/// Reports battery, network, storage and thermal state. Called before uploads and
/// downloads (to apply the policies) and for the health snapshot; must be cheap.
///
/// If it throws, the SDK assumes the device is offline and defers network work.
#[uniffi::export(with_foreign)]
pub trait DeviceStateProvider: Send + Sync {
    /// The device's current state.
    fn device_state(&self) -> Result<DeviceState>;
}

/// The network the device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NetworkType {
    /// No connectivity.
    None,
    /// Wi-Fi or wired (unmetered).
    Wifi,
    /// Cellular (metered).
    Cellular,
    /// The app could not tell.
    Unknown,
}

/// The device's thermal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ThermalState {
    /// Normal.
    Nominal,
    /// Slightly warm.
    Fair,
    /// Hot: defer heavy work.
    Serious,
    /// Critical: do nothing optional.
    Critical,
}

/// What the app reports about the device. Only coarse buckets of it are ever sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DeviceState {
    /// Battery level in percent (0..=100); `None` on mains-only devices.
    pub battery_percent: Option<u8>,
    /// Charging or on mains.
    pub charging: bool,
    /// The current network.
    pub network: NetworkType,
    /// Free storage in bytes.
    pub free_storage_bytes: u64,
    /// Thermal state.
    pub thermal: ThermalState,
}

impl From<DeviceState> for core_telemetry::DeviceState {
    fn from(s: DeviceState) -> Self {
        Self {
            battery_percent: s.battery_percent.map(|p| p.min(100)),
            charging: s.charging,
            network: match s.network {
                NetworkType::None => core_telemetry::NetworkType::None,
                NetworkType::Wifi => core_telemetry::NetworkType::Wifi,
                NetworkType::Cellular => core_telemetry::NetworkType::Cellular,
                NetworkType::Unknown => core_telemetry::NetworkType::Unknown,
            },
            free_storage_bytes: s.free_storage_bytes,
            thermal: match s.thermal {
                ThermalState::Nominal => core_telemetry::ThermalState::Nominal,
                ThermalState::Fair => core_telemetry::ThermalState::Fair,
                ThermalState::Serious => core_telemetry::ThermalState::Serious,
                ThermalState::Critical => core_telemetry::ThermalState::Critical,
            },
        }
    }
}

/// The app's [`KeyProvider`] as the store's.
pub(crate) struct KeyProviderBridge(pub Arc<dyn KeyProvider>);

fn key_provider_error(err: EdgeKeepError) -> KeyProviderError {
    match err {
        EdgeKeepError::WrongKey => KeyProviderError::Rejected,
        EdgeKeepError::KeyUnavailable => KeyProviderError::Unavailable,
        EdgeKeepError::KeyProviderFailed { status } => KeyProviderError::Platform(status),
        _ => KeyProviderError::Platform(-1),
    }
}

impl core_store::KeyProvider for KeyProviderBridge {
    fn wrap_key(&self, key_id: u32, key: &[u8]) -> Result<Vec<u8>, KeyProviderError> {
        self.0
            .wrap_key(key_id, key.to_vec())
            .map_err(key_provider_error)
    }

    fn unwrap_key(
        &self,
        key_id: u32,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyProviderError> {
        self.0
            .unwrap_key(key_id, wrapped.to_vec())
            .map(Zeroizing::new)
            .map_err(key_provider_error)
    }
}

/// The app's [`DeviceKeyProvider`] as the sync module's.
pub(crate) struct DeviceKeyBridge(pub Arc<dyn DeviceKeyProvider>);

impl core_sync::DeviceKeyProvider for DeviceKeyBridge {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SyncError> {
        self.0
            .sign(message.to_vec())
            .map_err(|_| SyncError::DeviceKey)
    }

    fn reset(&self) -> Result<(), SyncError> {
        self.0.reset().map_err(|_| SyncError::DeviceKey)
    }
}

/// The app's [`DeviceStateProvider`] as the telemetry module's.
pub(crate) struct DeviceStateBridge(pub Arc<dyn DeviceStateProvider>);

impl core_telemetry::DeviceStateProvider for DeviceStateBridge {
    fn device_state(&self) -> core_telemetry::DeviceState {
        match self.0.device_state() {
            Ok(state) => state.into(),
            Err(_) => {
                tracing::warn!(target: "edgekeep", "device state provider failed; assuming offline");
                core_telemetry::DeviceState {
                    battery_percent: None,
                    charging: false,
                    network: core_telemetry::NetworkType::None,
                    free_storage_bytes: 0,
                    thermal: core_telemetry::ThermalState::Nominal,
                }
            }
        }
    }
}
