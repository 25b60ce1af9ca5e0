//! The fleet page: devices enrolled, online and never seen; SDK versions; per model version the
//! active devices, latency percentiles and the merged latency histogram, and quality; the
//! devices' last health signals in buckets. The same figures as `GET /v1/fleet/health`.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::Permission;
use edgekeep_protocol::fleet::{FleetHealth, ModelVersionHealth};
use edgekeep_protocol::telemetry::LATENCY_BUCKET_BOUNDS_MS;
use maud::{Markup, html};

use crate::api::AppState;
use crate::dashboard::viewer::Viewer;
use crate::dashboard::{charts, layout};

/// "3 h 5 min" for a number of seconds.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// "5 min ago" for an age in seconds.
pub fn ago(secs: i64) -> String {
    format!("{} ago", duration(secs.max(0).unsigned_abs()))
}

fn le(ms: Option<u32>) -> String {
    ms.map_or_else(|| "over 2 s".to_owned(), |ms| format!("≤ {ms} ms"))
}

fn bucket_labels() -> Vec<String> {
    LATENCY_BUCKET_BOUNDS_MS
        .iter()
        .map(|ms| format!("≤{ms}"))
        .chain(std::iter::once("more".to_owned()))
        .collect()
}

/// The name a wire enum serializes to (`wifi`, `nominal`).
fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn battery_bucket(percent: u8) -> &'static str {
    match percent {
        0..=19 => "under 20 %",
        20..=49 => "20–49 %",
        50..=79 => "50–79 %",
        _ => "80 % and more",
    }
}

/// Counts of the devices' last health signals per bucket, by signal.
struct HealthBuckets {
    battery: BTreeMap<&'static str, u64>,
    network: BTreeMap<String, u64>,
    thermal: BTreeMap<String, u64>,
}

async fn health_buckets(
    state: &AppState,
    org_id: &str,
) -> Result<HealthBuckets, crate::error::ApiError> {
    let org_id = org_id.to_owned();
    let records = state.blocking(move |s| s.device_statuses(&org_id)).await?;
    let mut buckets = HealthBuckets {
        battery: BTreeMap::new(),
        network: BTreeMap::new(),
        thermal: BTreeMap::new(),
    };
    for health in records
        .iter()
        .filter(|r| !r.revoked)
        .filter_map(|r| r.health.as_ref())
    {
        *buckets
            .battery
            .entry(battery_bucket(health.battery_percent))
            .or_default() += 1;
        *buckets
            .network
            .entry(wire_name(&health.network))
            .or_default() += 1;
        *buckets
            .thermal
            .entry(wire_name(&health.thermal))
            .or_default() += 1;
    }
    Ok(buckets)
}

fn counts_table<K: AsRef<str>>(caption: &str, rows: &BTreeMap<K, u64>) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th scope="col" { "Bucket" } th scope="col" { "Devices" } } }
            tbody {
                @for (bucket, count) in rows {
                    tr { th scope="row" { (bucket.as_ref()) } td { (count) } }
                }
            }
        }
    }
}

fn version_section(version: &ModelVersionHealth) -> Markup {
    let name = format!("{} v{}", version.model, version.version);
    let latency = &version.latency;
    html! {
        section class="version" aria-label=(name) {
            h3 { (name) }
            dl class="facts" {
                dt { "Active on" } dd { (version.devices_active) " devices" }
                dt { "Inferences" } dd { (latency.samples) }
                dt { "p50" } dd { (le(latency.p50_le_ms)) }
                dt { "p90" } dd { (le(latency.p90_le_ms)) }
                dt { "p99" } dd { (le(latency.p99_le_ms)) }
                @for quality in &version.quality {
                    dt { (wire_name(&quality.metric)) }
                    dd { (format!("{:.3}", quality.mean)) " (" (quality.count) " observations)" }
                }
            }
            @if latency.samples > 0 {
                (charts::histogram(
                    &format!("Latency of {name} in milliseconds, inferences per bucket"),
                    &bucket_labels(),
                    &latency.counts,
                ))
            }
        }
    }
}

/// The devices over the recorded history: enrolled, online and never seen, with the same
/// figures as a table.
fn history_section(history: &[(i64, edgekeep_protocol::fleet::DeviceCounts)]) -> Markup {
    let times: Vec<i64> = history.iter().map(|(at, _)| *at).collect();
    let series = [
        charts::Series {
            name: "enrolled",
            class: "l-enrolled",
            values: history.iter().map(|(_, c)| c.enrolled).collect(),
        },
        charts::Series {
            name: "online",
            class: "l-online",
            values: history.iter().map(|(_, c)| c.online).collect(),
        },
        charts::Series {
            name: "never seen",
            class: "l-never",
            values: history.iter().map(|(_, c)| c.never_seen).collect(),
        },
    ];
    let now = crate::now();
    html! {
        section aria-labelledby="history" {
            h2 id="history" { "Devices over time" }
            @if history.len() < 2 {
                p class="empty" { "The server records the counts every hour; the chart appears after two records." }
            } @else {
                (charts::timeline("Devices enrolled, online and never seen over time", &times, &series))
                p class="legend" {
                    span class="key l-enrolled" { "enrolled" } " "
                    span class="key l-online" { "online" } " "
                    span class="key l-never" { "never seen" }
                }
                details {
                    summary { "The figures" }
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Enrolled" } th scope="col" { "Online" } th scope="col" { "Never seen" } } }
                        tbody {
                            @for (at, counts) in history.iter().rev() {
                                tr { th scope="row" { (ago(now - at)) } td { (counts.enrolled) } td { (counts.online) } td { (counts.never_seen) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn body(
    health: &FleetHealth,
    buckets: &HealthBuckets,
    history: &[(i64, edgekeep_protocol::fleet::DeviceCounts)],
    may_enroll: bool,
) -> Markup {
    let devices = &health.devices;
    html! {
        section aria-labelledby="devices" {
            h2 id="devices" { "Devices" }
            @if devices.enrolled == 0 {
                p class="empty" {
                    "No device is enrolled yet. "
                    @if may_enroll {
                        "Create a bootstrap token (POST /v1/bootstrap-tokens) and give it to the app's first launch."
                    } @else {
                        "An Admin of this org enrolls devices with bootstrap tokens."
                    }
                }
            } @else {
                ul class="cards" {
                    li { span class="figure" { (devices.enrolled) } " enrolled" }
                    li { span class="figure" { (devices.online) } " online (seen in the last " (duration(health.online_window_secs.unsigned_abs())) ")" }
                    li { span class="figure" { (devices.never_seen) } " never seen" }
                }
            }
        }
        @if devices.enrolled > 0 { (history_section(history)) }
        @if !health.sdk_versions.is_empty() {
            section aria-labelledby="sdk" {
                h2 id="sdk" { "SDK versions" }
                table {
                    thead { tr { th scope="col" { "SDK" } th scope="col" { "Devices" } } }
                    tbody {
                        @for sdk in &health.sdk_versions {
                            tr { th scope="row" { (sdk.sdk_version.to_string()) } td { (sdk.devices) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="models" {
            h2 id="models" { "Model versions" }
            @if health.model_versions.is_empty() {
                p class="empty" { "No model version is active or reporting yet. Publish a model and roll it out." }
            }
            @for version in &health.model_versions {
                (version_section(version))
            }
        }
        @if !buckets.battery.is_empty() {
            section aria-labelledby="health" {
                h2 id="health" { "Health" }
                div class="tables" {
                    (counts_table("Battery", &buckets.battery))
                    (counts_table("Network", &buckets.network))
                    (counts_table("Thermal state", &buckets.thermal))
                }
            }
        }
        p class="note" { "Telemetry of the last " (duration(health.retention_secs.unsigned_abs())) "." }
    }
}

/// `/fleet` (`fleet:read`).
pub async fn page(
    axum::extract::State(state): axum::extract::State<AppState>,
    viewer: Viewer,
) -> Response {
    if let Err(error) = viewer.caller.require(Permission::FleetRead) {
        return super::error_page(&error);
    }
    let org_id = viewer.caller.org_id.clone();
    let since = crate::now() - 30 * 86_400;
    let history_org = org_id.clone();
    let history = state.blocking(move |s| s.fleet_snapshots(&history_org, since));
    let (health, buckets, history) = match tokio::try_join!(
        crate::api::fleet::fleet_health(&state, &org_id),
        health_buckets(&state, &org_id),
        history,
    ) {
        Ok(found) => found,
        Err(error) => return super::error_page(&error),
    };
    let may_enroll = viewer.may(Permission::DevicesWrite);
    layout::page(
        &viewer,
        "Fleet",
        "/fleet",
        body(&health, &buckets, &history, may_enroll),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(3 * 3600 + 300), "3 h 5 min");
        assert_eq!(duration(2 * 86_400 + 3600), "2 d 1 h");
        assert_eq!(ago(-5), "0 s ago");
        assert_eq!(le(None), "over 2 s");
        assert_eq!(battery_bucket(19), "under 20 %");
    }
}
