//! When the SDK may use the network: the app's upload and download policies.

use crate::telemetry::{DeviceState, NetworkType};

/// When telemetry may be uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    /// Upload over cellular too (default: Wi-Fi / wired only).
    pub allow_cellular: bool,
    /// Wait until at least this many batches are queued, to save battery (default 1).
    pub min_batches: u64,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        Self {
            allow_cellular: false,
            min_batches: 1,
        }
    }
}

impl UploadPolicy {
    /// Why an upload may not run now, if it may not.
    pub fn refusal(&self, state: &DeviceState, queued: u64) -> Option<&'static str> {
        match state.network {
            NetworkType::None => return Some("offline"),
            NetworkType::Cellular if !self.allow_cellular => return Some("cellular"),
            _ => {}
        }
        (queued < self.min_batches).then_some("batching")
    }
}

/// When model artifacts may be downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadPolicy {
    /// Only on Wi-Fi / wired (default true).
    pub wifi_only: bool,
    /// Only while charging (default false).
    pub charging_only: bool,
    /// Least battery percent (default 20).
    pub min_battery_percent: u8,
    /// Least free storage left after the download, in bytes (default 200 MiB).
    pub min_free_storage_bytes: u64,
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        Self {
            wifi_only: true,
            charging_only: false,
            min_battery_percent: 20,
            min_free_storage_bytes: 200 << 20,
        }
    }
}

impl DownloadPolicy {
    /// Why a download of `len` bytes may not run now, if it may not.
    pub fn refusal(&self, state: &DeviceState, len: u64) -> Option<&'static str> {
        match state.network {
            NetworkType::None => return Some("offline"),
            NetworkType::Cellular if self.wifi_only => return Some("cellular"),
            _ => {}
        }
        if self.charging_only && !state.charging {
            return Some("not charging");
        }
        if state
            .battery_percent
            .is_some_and(|p| p < self.min_battery_percent && !state.charging)
        {
            return Some("battery low");
        }
        if state.free_storage_bytes.saturating_sub(len) < self.min_free_storage_bytes {
            return Some("storage low");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::FixedDeviceState;

    #[test]
    fn policies_refuse_with_reasons() {
        let mut state = FixedDeviceState::plugged_in().0;
        assert_eq!(UploadPolicy::default().refusal(&state, 1), None);
        assert_eq!(DownloadPolicy::default().refusal(&state, 1 << 20), None);
        state.network = NetworkType::Cellular;
        assert_eq!(UploadPolicy::default().refusal(&state, 1), Some("cellular"));
        assert_eq!(
            DownloadPolicy::default().refusal(&state, 1),
            Some("cellular")
        );
        state.network = NetworkType::Wifi;
        state.charging = false;
        state.battery_percent = Some(10);
        assert_eq!(
            DownloadPolicy::default().refusal(&state, 1),
            Some("battery low")
        );
        state.battery_percent = Some(90);
        state.free_storage_bytes = 100 << 20;
        assert_eq!(
            DownloadPolicy::default().refusal(&state, 1),
            Some("storage low")
        );
    }
}
