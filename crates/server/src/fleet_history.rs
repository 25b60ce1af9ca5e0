//! The fleet over time: each org's device counts (enrolled, online, never seen) recorded once an
//! hour by the server's housekeeping, kept 90 days, and drawn on the dashboard's fleet page.

use edgekeep_protocol::fleet::DeviceCounts;

use crate::storage::{DeviceStatusRecord, Storage, StorageError};

/// How often the counts are recorded, seconds; snapshots fall on whole periods.
pub const SNAPSHOT_PERIOD_SECS: i64 = 3600;

/// Whether a device was seen within `window` seconds of `now`.
pub fn is_online(record: &DeviceStatusRecord, now: i64, window: i64) -> bool {
    record.last_seen_at.is_some_and(|at| now - at <= window)
}

/// Devices enrolled (not revoked), online within `window` seconds of `now`, and never seen.
pub fn device_counts(records: &[DeviceStatusRecord], now: i64, window: i64) -> DeviceCounts {
    let mut devices = DeviceCounts::default();
    for record in records.iter().filter(|r| !r.revoked) {
        devices.enrolled += 1;
        devices.online += u64::from(is_online(record, now, window));
        devices.never_seen += u64::from(record.last_seen_at.is_none());
    }
    devices
}

/// Records every org's counts for the period holding `now` (again within a period: the last
/// write wins); returns how many orgs.
pub fn record_snapshots(
    storage: &dyn Storage,
    online_window: i64,
    now: i64,
) -> Result<usize, StorageError> {
    let at = now - now.rem_euclid(SNAPSHOT_PERIOD_SECS);
    let orgs = storage.org_ids()?;
    for org_id in &orgs {
        let records = storage.device_statuses(org_id)?;
        storage.record_fleet_snapshot(org_id, at, &device_counts(&records, now, online_window))?;
    }
    Ok(orgs.len())
}
