//! Deterministic rollout bucketing, shared by server and SDK so a device can reproduce its
//! own assignment.
//!
//! A device's bucket in a rollout is `u32::from_be_bytes(SHA-256("edgekeep/v1/rollout" 0x00
//! salt 0x00 device_id)[..4]) % 10_000`; the rollout covers buckets below its percentage in
//! basis points. The salt is the rollout id, so raising the percentage only adds devices and
//! different rollouts shuffle the fleet independently.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Number of buckets; percentages are in basis points (`10_000` = 100 %).
pub const BUCKETS: u32 = 10_000;

/// A device's position in one rollout, in `0..BUCKETS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RolloutBucket(u32);

impl RolloutBucket {
    /// The bucket of `device_id` in the rollout salted with `salt`.
    pub fn of(salt: &str, device_id: &str) -> Self {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"edgekeep/v1/rollout\0");
        ctx.update(salt.as_bytes());
        ctx.update(&[0]);
        ctx.update(device_id.as_bytes());
        let digest = ctx.finish();
        let mut first = [0u8; 4];
        first.copy_from_slice(&digest.as_ref()[..4]);
        Self(u32::from_be_bytes(first) % BUCKETS)
    }

    /// The bucket number.
    pub fn value(self) -> u32 {
        self.0
    }

    /// Whether a rollout at `basis_points` (0 to 10 000) covers this bucket.
    pub fn is_within(self, basis_points: u32) -> bool {
        self.0 < basis_points.min(BUCKETS)
    }
}

/// The state of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Devices in the covered buckets get the target version; the percentage can be raised.
    Active,
    /// Devices already covered keep the target version; the percentage cannot be raised.
    Paused,
    /// Every targeted device goes back to the previous version.
    RolledBack,
}

impl RolloutStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::RolledBack => "rolled_back",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Paused, Self::RolledBack]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Where a device is with the version a rollout assigned it, from its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProgressState {
    /// The desired state names the version (set by the server when the device fetches it).
    Assigned,
    /// The ciphertext is fully downloaded.
    Downloaded,
    /// Hashes and signature checked, content key unwrapped, model decrypted.
    Verified,
    /// The version is serving.
    Active,
    /// Download, verification or activation failed.
    Failed,
    /// The device went back to its previous version.
    RolledBack,
}

impl ProgressState {
    /// Every state, in order.
    pub const ALL: [ProgressState; 6] = [
        Self::Assigned,
        Self::Downloaded,
        Self::Verified,
        Self::Active,
        Self::Failed,
        Self::RolledBack,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Downloaded => "downloaded",
            Self::Verified => "verified",
            Self::Active => "active",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ten_percent_of_ten_thousand_devices() {
        let covered = (0..10_000)
            .filter(|i| RolloutBucket::of("rol_x", &format!("dev_{i}")).is_within(1_000))
            .count();
        assert!((900..=1_100).contains(&covered), "{covered}");
    }

    #[test]
    /// Values computed independently: `int.from_bytes(sha256(b"edgekeep/v1/rollout\0rol_a\0dev_a")[:4], "big") % 10000`.
    fn golden_buckets() {
        assert_eq!(RolloutBucket::of("rol_a", "dev_a").value(), 9472);
        assert_eq!(RolloutBucket::of("rol_a", "dev_b").value(), 1242);
    }

    proptest! {
        #[test]
        fn deterministic_bounded_and_monotonic(salt in "[a-z_]{1,20}", device in "[a-zA-Z0-9_]{1,30}", a in 0u32..=10_000, b in 0u32..=10_000) {
            let bucket = RolloutBucket::of(&salt, &device);
            prop_assert_eq!(bucket, RolloutBucket::of(&salt, &device));
            prop_assert!(bucket.value() < BUCKETS);
            if bucket.is_within(a.min(b)) {
                prop_assert!(bucket.is_within(a.max(b)));
            }
            prop_assert!(bucket.is_within(BUCKETS));
            prop_assert!(!bucket.is_within(0));
        }
    }
}
