//! Fleet health for operators: devices online and last seen, SDK and model versions,
//! latency percentiles per model version merged from histograms, quality, rollout progress.
//! Percentiles and quality means weigh each device once, so one device cannot dominate them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use edgekeep_protocol::api::Permission;
use edgekeep_protocol::artifact::SemVer;
use edgekeep_protocol::fleet::{
    DeviceStatus, FleetHealth, LatencySummary, ModelVersionHealth, QualitySummary, SdkVersionCount,
};
use edgekeep_protocol::telemetry::LATENCY_BUCKETS;

use super::AppState;
use super::rollouts::rollout_infos;
use crate::auth::ApiCaller;
use crate::error::ApiError;

/// Every device of the org with its last reported status.
#[utoipa::path(get, path = "/v1/fleet/devices", tag = "fleet", security(("api_key" = [])), responses((status = 200, body = [DeviceStatus])))]
pub async fn devices(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<DeviceStatus>>, ApiError> {
    caller.require(Permission::FleetRead)?;
    let org_id = caller.org_id.clone();
    let now = crate::now();
    let window = state.config().online_window_secs;
    let records = state.blocking(move |s| s.device_statuses(&org_id)).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| DeviceStatus {
                online: crate::fleet_history::is_online(&r, now, window),
                device_id: r.device_id,
                device_group: r.device_group,
                last_seen_at: r.last_seen_at,
                sdk_version: r.sdk_version,
                active_models: r.active_models,
                health: r.health,
            })
            .collect(),
    ))
}

/// The org's fleet at a glance (telemetry within the retention window).
#[utoipa::path(get, path = "/v1/fleet/health", tag = "fleet", security(("api_key" = [])), responses((status = 200, body = FleetHealth)))]
pub async fn health(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<FleetHealth>, ApiError> {
    caller.require(Permission::FleetRead)?;
    Ok(Json(fleet_health(&state, &caller.org_id).await?))
}

/// The org's fleet health now, as `GET /v1/fleet/health` answers it (the dashboard shows the
/// same).
pub async fn fleet_health(state: &AppState, org_id: &str) -> Result<FleetHealth, ApiError> {
    let org_id = org_id.to_owned();
    let now = crate::now();
    let config = state.config();
    let window = config.online_window_secs;
    let retention = config.telemetry_retention_secs;
    let (records, telemetry, rollouts) = state
        .blocking(move |s| {
            Ok((
                s.device_statuses(&org_id)?,
                s.telemetry_window(&org_id, now - retention)?,
                rollout_infos(s, &org_id)?,
            ))
        })
        .await?;

    let devices = crate::fleet_history::device_counts(&records, now, window);
    let mut sdk: BTreeMap<SemVer, u64> = BTreeMap::new();
    let mut active: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for record in records.iter().filter(|r| !r.revoked) {
        if let Some(version) = record.sdk_version {
            *sdk.entry(version).or_default() += 1;
        }
        for model in &record.active_models {
            *active
                .entry((model.model.as_str().to_owned(), model.version))
                .or_default() += 1;
        }
    }
    let mut versions: BTreeMap<(String, u64), ModelVersionHealth> = BTreeMap::new();
    for ((model, version), count) in active {
        versions
            .entry((model.clone(), version))
            .or_insert_with(|| empty_health(&model, version))
            .devices_active = count;
    }
    for latency in telemetry.latency {
        versions
            .entry((latency.model.clone(), latency.version))
            .or_insert_with(|| empty_health(&latency.model, latency.version))
            .latency = LatencySummary::from_devices(&latency.per_device);
    }
    for quality in telemetry.quality {
        let Some(summary) = QualitySummary::from_devices(quality.metric, &quality.per_device)
        else {
            continue;
        };
        versions
            .entry((quality.model.clone(), quality.version))
            .or_insert_with(|| empty_health(&quality.model, quality.version))
            .quality
            .push(summary);
    }
    Ok(FleetHealth {
        generated_at: now,
        online_window_secs: window,
        retention_secs: retention,
        devices,
        sdk_versions: sdk
            .into_iter()
            .map(|(sdk_version, devices)| SdkVersionCount {
                sdk_version,
                devices,
            })
            .collect(),
        model_versions: versions.into_values().collect(),
        rollouts,
    })
}

fn empty_health(model: &str, version: u64) -> ModelVersionHealth {
    ModelVersionHealth {
        model: model.to_owned(),
        version,
        devices_active: 0,
        latency: LatencySummary::from_counts([0; LATENCY_BUCKETS]),
        quality: Vec::new(),
    }
}
