//! Which version each model slot of a device should run: rollout resolution (no I/O).
//!
//! Rollouts layer, newest on top. For each model, walk the org's rollouts from the newest: the
//! first one that covers the device (its group, or the whole org), is not rolled back, and
//! whose percentage includes the device's bucket ([`RolloutBucket`]) decides; a device it does
//! not include falls through to older rollouts, so it keeps what it had before. A rolled-back
//! rollout is skipped entirely: its devices go back to what the older rollouts give them. A
//! paused rollout cannot be promoted, so the set of devices on its version stays as it was.

use edgekeep_protocol::rollout::{RolloutBucket, RolloutStatus};

use crate::storage::RolloutRecord;

/// One slot's resolved version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSlot {
    /// Model name.
    pub model: String,
    /// Version to run.
    pub version: u64,
    /// The rollout that assigned it.
    pub rollout_id: Option<String>,
}

/// Resolves every model slot for a device. `rollouts` are one org's, oldest first.
pub fn resolve(
    rollouts: &[RolloutRecord],
    device_id: &str,
    device_group: Option<&str>,
) -> Vec<ResolvedSlot> {
    resolve_eligible(rollouts, device_id, device_group, |_, _| true)
}

/// Like [`resolve`], but a rollout whose version the device cannot run (`eligible(model,
/// version)` is false, e.g. its SDK is older than the manifest's minimum) is passed over like
/// one that does not include the device.
pub fn resolve_eligible(
    rollouts: &[RolloutRecord],
    device_id: &str,
    device_group: Option<&str>,
    eligible: impl Fn(&str, u64) -> bool,
) -> Vec<ResolvedSlot> {
    let mut out: Vec<ResolvedSlot> = Vec::new();
    for rollout in rollouts.iter().rev() {
        if out.iter().any(|slot| slot.model == rollout.model) {
            continue;
        }
        let covers = match &rollout.device_group {
            None => true,
            Some(group) => device_group == Some(group.as_str()),
        };
        if covers
            && rollout.status != RolloutStatus::RolledBack
            && RolloutBucket::of(&rollout.id, device_id).is_within(rollout.basis_points)
            && eligible(&rollout.model, rollout.version)
        {
            out.push(ResolvedSlot {
                model: rollout.model.clone(),
                version: rollout.version,
                rollout_id: Some(rollout.id.clone()),
            });
        }
    }
    out.sort_by(|a, b| a.model.cmp(&b.model));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(id: &str, version: u64, previous: Option<u64>, bp: u32) -> RolloutRecord {
        RolloutRecord {
            id: id.into(),
            org_id: "org".into(),
            model: "kws".into(),
            version,
            previous_version: previous,
            device_group: None,
            basis_points: bp,
            status: RolloutStatus::Active,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn version_of(rollouts: &[RolloutRecord], device: &str, group: Option<&str>) -> Option<u64> {
        resolve(rollouts, device, group).first().map(|s| s.version)
    }

    #[test]
    fn newest_covering_rollout_decides_and_groups_are_respected() {
        let mut beta = rollout("rol_b", 3, Some(2), 10_000);
        beta.device_group = Some("beta".into());
        let rollouts = vec![rollout("rol_a", 2, None, 10_000), beta];
        assert_eq!(version_of(&rollouts, "d1", Some("beta")), Some(3));
        assert_eq!(version_of(&rollouts, "d1", None), Some(2));
        assert_eq!(version_of(&rollouts, "d1", Some("other")), Some(2));
        assert!(resolve(&[rollout("r", 1, None, 0)], "d", None).is_empty());
    }

    #[test]
    fn devices_outside_a_group_rollout_keep_the_org_wide_version() {
        let mut beta = rollout("rol_b", 3, None, 0);
        beta.device_group = Some("beta".into());
        let rollouts = vec![rollout("rol_a", 2, None, 10_000), beta];
        assert_eq!(version_of(&rollouts, "d1", Some("beta")), Some(2));
        let mut rolled_back = rollouts.clone();
        rolled_back[1].basis_points = 10_000;
        assert_eq!(version_of(&rolled_back, "d1", Some("beta")), Some(3));
        rolled_back[1].status = RolloutStatus::RolledBack;
        assert_eq!(version_of(&rolled_back, "d1", Some("beta")), Some(2));
        rolled_back[0].status = RolloutStatus::RolledBack;
        assert_eq!(version_of(&rolled_back, "d1", Some("beta")), None);
    }

    #[test]
    fn ineligible_versions_are_passed_over() {
        let rollouts = vec![
            rollout("rol_a", 2, None, 10_000),
            rollout("rol_b", 3, Some(2), 10_000),
        ];
        let slots = resolve_eligible(&rollouts, "d1", None, |_, v| v < 3);
        assert_eq!(slots[0].version, 2);
    }

    #[test]
    fn pause_keeps_and_rollback_reverts_exactly_the_covered_devices() {
        let devices: Vec<String> = (0..2000).map(|i| format!("dev_{i}")).collect();
        let mut rollouts = vec![
            rollout("rol_base", 4, None, 10_000),
            rollout("rol_x", 5, Some(4), 2_500),
        ];
        let before: Vec<_> = devices
            .iter()
            .map(|d| version_of(&rollouts, d, None))
            .collect();
        rollouts[1].status = RolloutStatus::Paused;
        let paused: Vec<_> = devices
            .iter()
            .map(|d| version_of(&rollouts, d, None))
            .collect();
        assert_eq!(before, paused);
        rollouts[1].status = RolloutStatus::RolledBack;
        for (device, old) in devices.iter().zip(&before) {
            let now = version_of(&rollouts, device, None);
            assert_eq!(now, Some(4));
            let covered = RolloutBucket::of("rol_x", device).is_within(2_500);
            assert_eq!(*old == Some(5), covered);
        }
    }
}
