//! Which version each model slot of a device should run: rollout resolution (no I/O).
//!
//! For each model, the newest rollout whose target covers the device (its group, or the whole
//! org) decides. Active or paused: devices whose bucket ([`RolloutBucket`]) is within the
//! percentage get the target version, the others the rollout's previous version. Rolled back:
//! every targeted device gets the previous version. A paused rollout cannot be promoted, so
//! the set of devices on the target version stays what it was.

use edgekeep_protocol::rollout::{RolloutBucket, RolloutStatus};

use crate::storage::RolloutRecord;

/// One slot's resolved version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSlot {
    /// Model name.
    pub model: String,
    /// Version to run.
    pub version: u64,
    /// The rollout whose target version this is (`None` for a previous version).
    pub rollout_id: Option<String>,
}

/// Resolves every model slot for a device. `rollouts` are one org's, oldest first.
pub fn resolve(
    rollouts: &[RolloutRecord],
    device_id: &str,
    device_group: Option<&str>,
) -> Vec<ResolvedSlot> {
    let mut decided: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for rollout in rollouts.iter().rev() {
        if decided.contains(&rollout.model.as_str()) {
            continue;
        }
        let covers = match &rollout.device_group {
            None => true,
            Some(group) => device_group == Some(group.as_str()),
        };
        if !covers {
            continue;
        }
        decided.push(&rollout.model);
        let in_target = rollout.status != RolloutStatus::RolledBack
            && RolloutBucket::of(&rollout.id, device_id).is_within(rollout.basis_points);
        let slot = if in_target {
            Some((rollout.version, Some(rollout.id.clone())))
        } else {
            rollout.previous_version.map(|v| (v, None))
        };
        if let Some((version, rollout_id)) = slot {
            out.push(ResolvedSlot {
                model: rollout.model.clone(),
                version,
                rollout_id,
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
    fn pause_keeps_and_rollback_reverts_exactly_the_covered_devices() {
        let devices: Vec<String> = (0..2000).map(|i| format!("dev_{i}")).collect();
        let mut rollouts = vec![rollout("rol_x", 5, Some(4), 2_500)];
        let before: Vec<_> = devices
            .iter()
            .map(|d| version_of(&rollouts, d, None))
            .collect();
        rollouts[0].status = RolloutStatus::Paused;
        let paused: Vec<_> = devices
            .iter()
            .map(|d| version_of(&rollouts, d, None))
            .collect();
        assert_eq!(before, paused);
        rollouts[0].status = RolloutStatus::RolledBack;
        for (device, old) in devices.iter().zip(&before) {
            let now = version_of(&rollouts, device, None);
            assert_eq!(now, Some(4));
            let covered = RolloutBucket::of("rol_x", device).is_within(2_500);
            assert_eq!(*old == Some(5), covered);
        }
    }
}
