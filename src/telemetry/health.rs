//! Health signals from the host app, reduced to coarse buckets before they are sent.

use serde::{Deserialize, Serialize};

/// The network the device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// What the host reports about the device, on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState {
    /// Battery level in percent (0..=100); `None` on mains-only devices.
    pub battery_percent: Option<u8>,
    /// Whether the device is charging (or on mains).
    pub charging: bool,
    /// The current network.
    pub network: NetworkType,
    /// Free storage in bytes.
    pub free_storage_bytes: u64,
    /// Thermal state.
    pub thermal: ThermalState,
}

/// Implemented by the host app (battery, network and thermal APIs of the platform).
///
/// Called before uploads and downloads to apply the policies, and when a health snapshot is
/// attached to a batch. Must be cheap and must not block.
pub trait DeviceStateProvider: Send + Sync {
    /// The device's current state.
    fn device_state(&self) -> DeviceState;
}

/// A provider that always reports the same state (desktop hosts, tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedDeviceState(pub DeviceState);

impl FixedDeviceState {
    /// A plugged-in device on Wi-Fi with plenty of storage.
    pub fn plugged_in() -> Self {
        Self(DeviceState {
            battery_percent: Some(100),
            charging: true,
            network: NetworkType::Wifi,
            free_storage_bytes: 64 << 30,
            thermal: ThermalState::Nominal,
        })
    }
}

impl DeviceStateProvider for FixedDeviceState {
    fn device_state(&self) -> DeviceState {
        self.0
    }
}

/// Battery level rounded into coarse buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatteryBucket {
    /// No battery.
    NoBattery,
    /// Below 15 %.
    Critical,
    /// 15 to 49 %.
    Low,
    /// 50 to 89 %.
    Medium,
    /// 90 % and above.
    High,
}

/// Free storage rounded into coarse buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBucket {
    /// Under 100 MB.
    Under100Mb,
    /// 100 MB to 1 GB.
    Under1Gb,
    /// 1 GB to 10 GB.
    Under10Gb,
    /// 10 GB or more.
    Over10Gb,
}

/// The health signals as sent: buckets and enums only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSnapshot {
    /// Battery bucket.
    pub battery: BatteryBucket,
    /// Charging or on mains.
    pub charging: bool,
    /// Network type.
    pub network: NetworkType,
    /// Free storage bucket.
    pub storage: StorageBucket,
    /// Thermal state.
    pub thermal: ThermalState,
}

impl From<DeviceState> for HealthSnapshot {
    fn from(state: DeviceState) -> Self {
        let battery = match state.battery_percent {
            None => BatteryBucket::NoBattery,
            Some(p) if p < 15 => BatteryBucket::Critical,
            Some(p) if p < 50 => BatteryBucket::Low,
            Some(p) if p < 90 => BatteryBucket::Medium,
            Some(_) => BatteryBucket::High,
        };
        let storage = match state.free_storage_bytes {
            b if b < 100_000_000 => StorageBucket::Under100Mb,
            b if b < 1_000_000_000 => StorageBucket::Under1Gb,
            b if b < 10_000_000_000 => StorageBucket::Under10Gb,
            _ => StorageBucket::Over10Gb,
        };
        Self {
            battery,
            charging: state.charging,
            network: state.network,
            storage,
            thermal: state.thermal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_coarse() {
        let mut state = FixedDeviceState::plugged_in().0;
        state.battery_percent = Some(14);
        state.free_storage_bytes = 3 << 30;
        let snap = HealthSnapshot::from(state);
        assert_eq!(snap.battery, BatteryBucket::Critical);
        assert_eq!(snap.storage, StorageBucket::Under10Gb);
    }
}
