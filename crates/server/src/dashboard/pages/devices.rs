//! The devices page: every device of the org, filtered by group, model version and when it was
//! last seen, or searched by id; paged. Admins and Owners revoke one device or a whole group
//! (a confirmation, then the JSON API, which audits).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::Permission;
use maud::{Markup, html};

use super::paging;
use crate::api::AppState;
use crate::dashboard::layout;
use crate::dashboard::viewer::Viewer;
use crate::storage::DeviceStatusRecord;

/// The filters of the page, from its query.
#[derive(Debug, Default)]
struct Filters {
    q: String,
    group: String,
    model: String,
    seen: String,
}

impl Filters {
    fn keeps(&self, device: &DeviceStatusRecord, now: i64, window: i64) -> bool {
        let q = self.q.trim();
        let online = device.last_seen_at.is_some_and(|at| now - at <= window);
        (q.is_empty() || device.device_id.contains(q))
            && (self.group.is_empty()
                || device.device_group.as_deref() == Some(self.group.as_str()))
            && (self.model.is_empty()
                || device
                    .active_models
                    .iter()
                    .any(|m| format!("{}@{}", m.model.as_str(), m.version) == self.model))
            && match self.seen.as_str() {
                "online" => online && !device.revoked,
                "offline" => device.last_seen_at.is_some() && !online && !device.revoked,
                "never" => device.last_seen_at.is_none() && !device.revoked,
                "revoked" => device.revoked,
                _ => true,
            }
    }
}

fn last_seen(device: &DeviceStatusRecord, now: i64) -> String {
    device
        .last_seen_at
        .map_or_else(|| "never".to_owned(), |at| super::fleet::ago(now - at))
}

fn filter_form(filters: &Filters, groups: &[String], models: &[String]) -> Markup {
    html! {
        form class="filters" method="get" action="/devices" role="search" {
            div {
                label for="q" { "Device id" }
                input id="q" name="q" value=(filters.q) placeholder="dev_…";
            }
            div {
                label for="group" { "Group" }
                select id="group" name="group" {
                    option value="" { "any" }
                    @for group in groups {
                        option value=(group) selected[*group == filters.group] { (group) }
                    }
                }
            }
            div {
                label for="model" { "Model version" }
                select id="model" name="model" {
                    option value="" { "any" }
                    @for model in models {
                        option value=(model) selected[*model == filters.model] { (model.replace('@', " v")) }
                    }
                }
            }
            div {
                label for="seen" { "Last seen" }
                select id="seen" name="seen" {
                    @for (value, name) in [("", "any"), ("online", "online"), ("offline", "offline"), ("never", "never seen"), ("revoked", "revoked")] {
                        option value=(value) selected[value == filters.seen] { (name) }
                    }
                }
            }
            div class="buttons" { button type="submit" { "Filter" } }
        }
    }
}

fn device_row(device: &DeviceStatusRecord, now: i64, may_revoke: bool) -> Markup {
    html! {
        tr {
            th scope="row" { code { (device.device_id) } }
            td { (device.device_group.as_deref().unwrap_or("—")) }
            td { (device.sdk_version.map_or_else(|| "—".to_owned(), |v| v.to_string())) }
            td {
                @for (index, model) in device.active_models.iter().enumerate() {
                    @if index > 0 { ", " }
                    (model.model.as_str()) " v" (model.version)
                }
            }
            td { (last_seen(device, now)) }
            td {
                @if device.revoked {
                    "revoked"
                } @else if may_revoke {
                    form data-api=(format!("/v1/devices/{}/revoke", device.device_id))
                        data-confirm=(format!("Revoke device {}? It loses access at once.", device.device_id)) {
                        button type="submit" class="danger" aria-label=(format!("Revoke {}", device.device_id)) { "Revoke" }
                    }
                } @else {
                    "active"
                }
            }
        }
    }
}

/// `/devices` (`devices:read`; revocation for `devices:write`).
pub async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    viewer: Viewer,
) -> Response {
    if let Err(error) = viewer.caller.require(Permission::DevicesRead) {
        return super::error_page(&error);
    }
    let query = query.unwrap_or_default();
    let filters: Filters = filters_of(&query);
    let org_id = viewer.caller.org_id.clone();
    let devices = match state.blocking(move |s| s.device_statuses(&org_id)).await {
        Ok(devices) => devices,
        Err(error) => return super::error_page(&error),
    };
    let now = crate::now();
    let window = state.config().online_window_secs;
    let mut groups: Vec<String> = devices
        .iter()
        .filter_map(|d| d.device_group.clone())
        .collect();
    groups.sort();
    groups.dedup();
    let mut models: Vec<String> = devices
        .iter()
        .flat_map(|d| {
            d.active_models
                .iter()
                .map(|m| format!("{}@{}", m.model.as_str(), m.version))
        })
        .collect();
    models.sort();
    models.dedup();
    let kept: Vec<&DeviceStatusRecord> = devices
        .iter()
        .filter(|d| filters.keeps(d, now, window))
        .collect();
    let pager = paging::Pager::whole("/devices");
    let (shown, page, pages) = paging::slice(&kept, pager.current(&query));
    let may_revoke = viewer.may(Permission::DevicesWrite);
    let body = html! {
        @if devices.is_empty() {
            p class="empty" { "No device is enrolled yet. Devices enroll with a bootstrap token from an Admin." }
        } @else {
            (filter_form(&filters, &groups, &models))
            p { (kept.len()) " of " (devices.len()) " devices" }
            @if kept.is_empty() {
                p class="empty" { "No device matches these filters." }
            } @else {
                table class="wide" {
                    thead { tr {
                        th scope="col" { "Device" } th scope="col" { "Group" } th scope="col" { "SDK" }
                        th scope="col" { "Serving" } th scope="col" { "Last seen" } th scope="col" { "Access" }
                    } }
                    tbody { @for device in shown { (device_row(device, now, may_revoke)) } }
                }
                (paging::links(&pager, &query, page, pages))
            }
            @if may_revoke && !filters.group.is_empty() {
                form data-api=(format!("/v1/device-groups/{}/revoke", filters.group))
                    data-confirm=(format!("Revoke every device of group {}? They lose access at once.", filters.group)) {
                    button type="submit" class="danger" { "Revoke the whole group " (filters.group) }
                }
            }
        }
    };
    layout::page(&viewer, "Devices", "/devices", body).into_response()
}

/// Reads the filters; anything unreadable counts as no filter.
fn filters_of(query: &str) -> Filters {
    let mut filters = Filters::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "q" => filters.q = value.into_owned(),
            "group" => filters.group = value.into_owned(),
            "model" => filters.model = value.into_owned(),
            "seen" => filters.seen = value.into_owned(),
            _ => {}
        }
    }
    filters
}
