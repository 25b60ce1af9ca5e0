//! The fleet summary, read from the control plane's fleet health API, and the demo's final
//! checks on it.

use edgekeep_protocol::fleet::{FleetHealth, LatencySummary, RolloutInfo};
use edgekeep_protocol::telemetry::QualityMetric;

use crate::device::{LocalWork, SLOT};
use crate::wire_log::WireTotals;

/// Endpoints a device may call; anything else fails the demo.
const DEVICE_ENDPOINTS: &[&str] = &[
    "/v1/device/enroll",
    "/v1/device/refresh",
    "/v1/device/me",
    "/v1/device/desired-state",
    "/v1/desired-state-key",
    "/v1/device/artifacts/{id}",
    "/v1/device/artifacts/{id}/key",
    "/v1/device/telemetry",
];

/// What the summary shows.
pub struct Summary<'a> {
    /// From `GET /v1/fleet/health`.
    pub health: &'a FleetHealth,
    /// The two rollouts, in order.
    pub rollouts: [&'a str; 2],
    /// The revoked device's id.
    pub revoked: &'a str,
    /// What each device did locally.
    pub work: &'a [LocalWork],
    /// What left the devices.
    pub wire: &'a WireTotals,
}

fn ms(bound: Option<u32>) -> String {
    bound.map_or_else(|| "—".to_owned(), |b| format!("≤{b} ms"))
}

fn latency(l: &LatencySummary) -> String {
    format!(
        "{:>4} inferences  p50 {:>8}  p90 {:>8}  p99 {:>8}",
        l.samples,
        ms(l.p50_le_ms),
        ms(l.p90_le_ms),
        ms(l.p99_le_ms)
    )
}

fn progress_line(r: &RolloutInfo) -> String {
    let p = &r.progress;
    format!(
        "{SLOT} v{} → {:>3}% {:?}: assigned {}, downloaded {}, verified {}, active {}, failed {}, rolled back {}",
        r.version,
        r.basis_points / 100,
        r.status,
        p.assigned,
        p.downloaded,
        p.verified,
        p.active,
        p.failed,
        p.rolled_back
    )
}

/// Prints the fleet summary.
pub fn print(s: &Summary<'_>) {
    let h = s.health;
    println!("\n7. fleet health (GET /v1/fleet/health)");
    println!(
        "   devices: {} enrolled (revoked ones excluded), {} online, {} never seen; revoked: {}",
        h.devices.enrolled, h.devices.online, h.devices.never_seen, s.revoked
    );
    for sdk in &h.sdk_versions {
        println!("   SDK {}: {} devices", sdk.sdk_version, sdk.devices);
    }
    println!("   model versions:");
    for m in &h.model_versions {
        println!(
            "     {} v{}: {:>3} devices  {}",
            m.model,
            m.version,
            m.devices_active,
            latency(&m.latency)
        );
        let mean = |metric| {
            m.quality
                .iter()
                .find(|q| q.metric == metric)
                .map(|q| (q.mean, q.count))
        };
        if let (Some((before, n)), Some((after, _))) = (
            mean(QualityMetric::Accuracy),
            mean(QualityMetric::PersonalizedAccuracy),
        ) {
            println!(
                "       held-out accuracy on the users' own photos: base {:.1}% → personalized {:.1}%  (mean of {n} devices)",
                100.0 * before,
                100.0 * after
            );
        }
    }
    println!("   rollouts:");
    for id in s.rollouts {
        if let Some(r) = h.rollouts.iter().find(|r| r.id == id) {
            println!("     {}", progress_line(r));
        }
    }
    let examples: usize = s.work.iter().map(|w| w.examples).sum();
    let inferences: usize = s.work.iter().map(|w| w.inferences).sum();
    let w = s.wire;
    println!("\n8. what left the devices");
    println!(
        "   {} requests, {} bytes in all (URL + headers + body, before TLS); telemetry bodies {} bytes",
        w.requests, w.bytes, w.telemetry_bytes
    );
    println!(
        "   telemetry event kinds: {}",
        w.event_kinds.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    println!(
        "   endpoints: {}",
        w.endpoints.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    println!(
        "   no raw data left: {examples} personal photos with their labels, their embeddings, the trained heads \
         and the inputs of {inferences} inferences stayed in the devices' encrypted stores;\n   \
         a canary planted in every store was found in {} of {} requests.",
        w.canary_hits, w.requests
    );
}

/// The demo's final checks on what the control plane reports.
pub fn check(
    health: &FleetHealth,
    second_rollout: &str,
    devices: usize,
    wire: &WireTotals,
) -> Result<(), String> {
    let active = |version: u64| {
        health
            .model_versions
            .iter()
            .find(|m| m.model == SLOT && m.version == version)
            .map_or(0, |m| m.devices_active)
    };
    let devices = devices as u64;
    if health.devices.enrolled != devices - 1 {
        return Err(format!(
            "fleet health lists {} enrolled devices, expected {}",
            health.devices.enrolled,
            devices - 1
        ));
    }
    if active(1) != 1 || active(2) != devices - 2 {
        return Err(format!(
            "fleet health shows v1 on {} and v2 on {} devices, expected 1 and {}",
            active(1),
            active(2),
            devices - 2
        ));
    }
    let rollout = health
        .rollouts
        .iter()
        .find(|r| r.id == second_rollout)
        .ok_or("the v2 rollout is missing from fleet health")?;
    if rollout.progress.rolled_back != 1 {
        return Err(format!(
            "the v2 rollout shows {} rolled back devices, expected 1",
            rollout.progress.rolled_back
        ));
    }
    let samples: u64 = health
        .model_versions
        .iter()
        .map(|m| m.latency.samples)
        .sum();
    if samples == 0 {
        return Err("fleet health has no latency samples".into());
    }
    if wire.canary_hits != 0 {
        return Err(format!(
            "the canary left a device in {} requests",
            wire.canary_hits
        ));
    }
    if let Some(unexpected) = wire
        .endpoints
        .iter()
        .find(|e| !DEVICE_ENDPOINTS.contains(&e.as_str()))
    {
        return Err(format!(
            "a device called an undeclared endpoint: {unexpected}"
        ));
    }
    Ok(())
}
