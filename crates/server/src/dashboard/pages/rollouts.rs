//! The rollouts page: each rollout's progress as a stacked bar by device state (assigned,
//! downloaded, verified, active, failed, rolled back), with promote, pause, resume and roll
//! back for Admins and Owners (a confirmation, then the JSON API, which audits), and a form to
//! roll out an approved version.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::Permission;
use edgekeep_protocol::fleet::{ModelVersionInfo, RolloutInfo};
use edgekeep_protocol::rollout::RolloutStatus;
use maud::{Markup, html};

use crate::api::AppState;
use crate::dashboard::charts::{self, Segment};
use crate::dashboard::layout;
use crate::dashboard::viewer::Viewer;

fn percent(basis_points: u32) -> String {
    let whole = basis_points / 100;
    match basis_points % 100 {
        0 => format!("{whole} %"),
        rest => format!("{whole}.{rest:02} %"),
    }
}

fn segments(rollout: &RolloutInfo) -> [Segment<'static>; 6] {
    let p = &rollout.progress;
    [
        Segment {
            name: "active",
            count: p.active,
            class: "s-active",
        },
        Segment {
            name: "verified",
            count: p.verified,
            class: "s-verified",
        },
        Segment {
            name: "downloaded",
            count: p.downloaded,
            class: "s-downloaded",
        },
        Segment {
            name: "assigned",
            count: p.assigned,
            class: "s-assigned",
        },
        Segment {
            name: "failed",
            count: p.failed,
            class: "s-failed",
        },
        Segment {
            name: "rolled back",
            count: p.rolled_back,
            class: "s-rolled-back",
        },
    ]
}

fn actions(rollout: &RolloutInfo, name: &str) -> Markup {
    let path = format!("/v1/rollouts/{}", rollout.id);
    html! {
        div class="actions" {
            @if rollout.status == RolloutStatus::Active && rollout.basis_points < 10_000 {
                form data-api=(format!("{path}/promote"))
                    data-confirm=(format!("Promote {name}? More devices will get it.")) {
                    label for=(format!("promote-{}", rollout.id)) { "New share (%)" }
                    input id=(format!("promote-{}", rollout.id)) name="basis_points" data-type="percent"
                        type="number" min="0.01" max="100" step="0.01" required
                        value=(f64::from(rollout.basis_points.saturating_mul(2).min(10_000)) / 100.0);
                    button type="submit" { "Promote" }
                }
            }
            @match rollout.status {
                RolloutStatus::Active => {
                    form data-api=(format!("{path}/pause")) data-confirm=(format!("Pause {name}?")) {
                        button type="submit" { "Pause" }
                    }
                }
                RolloutStatus::Paused => {
                    form data-api=(format!("{path}/resume")) data-confirm=(format!("Resume {name}?")) {
                        button type="submit" { "Resume" }
                    }
                }
                RolloutStatus::RolledBack => {}
            }
            @if rollout.status != RolloutStatus::RolledBack {
                form data-api=(format!("{path}/rollback"))
                    data-confirm=(format!("Roll back {name}? Every targeted device goes back to the previous version.")) {
                    button type="submit" class="danger" { "Roll back" }
                }
            }
        }
    }
}

fn rollout_section(rollout: &RolloutInfo, may_write: bool) -> Markup {
    let name = format!("{} v{}", rollout.model, rollout.version);
    let p = &rollout.progress;
    html! {
        section class="rollout" aria-label=(format!("Rollout of {name}")) {
            h2 { (name) }
            dl class="facts" {
                dt { "Target" } dd { (rollout.device_group.as_deref().unwrap_or("the whole org")) }
                dt { "Share" } dd { (percent(rollout.basis_points)) }
                dt { "Status" } dd { (rollout.status.as_str().replace('_', " ")) }
                @if let Some(previous) = rollout.previous_version {
                    dt { "Before" } dd { "v" (previous) }
                }
            }
            (charts::stacked_bar(&format!("Devices of the rollout of {name} by state"), &segments(rollout)))
            table class="legend" {
                thead { tr {
                    th scope="col" { "Assigned" } th scope="col" { "Downloaded" } th scope="col" { "Verified" }
                    th scope="col" { "Active" } th scope="col" { "Failed" } th scope="col" { "Rolled back" }
                } }
                tbody { tr {
                    td { (p.assigned) } td { (p.downloaded) } td { (p.verified) }
                    td { (p.active) } td { (p.failed) } td { (p.rolled_back) }
                } }
            }
            @if may_write { (actions(rollout, &name)) }
        }
    }
}

fn create_form(approved: &[&ModelVersionInfo]) -> Markup {
    html! {
        section aria-labelledby="new-rollout" {
            h2 id="new-rollout" { "Roll out an approved version" }
            @if approved.is_empty() {
                p class="empty" { "No version is approved yet. Approve one on the Models page first." }
            } @else {
                form data-api="/v1/rollouts" data-confirm="Start this rollout?" {
                    label for="rollout-version" { "Version" }
                    select id="rollout-version" name="model_version" data-type="model-version" required {
                        @for version in approved {
                            option value=(format!("{}@{}", version.model, version.version)) {
                                (version.model) " v" (version.version)
                            }
                        }
                    }
                    label for="rollout-group" { "Device group (empty: the whole org)" }
                    input id="rollout-group" name="device_group" maxlength="64";
                    label for="rollout-share" { "Share (%)" }
                    input id="rollout-share" name="basis_points" data-type="percent" type="number"
                        min="0" max="100" step="0.01" value="10" required;
                    div class="buttons" { button type="submit" { "Start rollout" } }
                }
            }
        }
    }
}

/// `/rollouts` (`models:read`; actions for `rollouts:write`).
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    if let Err(error) = viewer.caller.require(Permission::ModelsRead) {
        return super::error_page(&error);
    }
    let org_id = viewer.caller.org_id.clone();
    let found = state
        .blocking(move |s| {
            Ok((
                crate::api::rollouts::rollout_infos(s, &org_id)?,
                s.model_versions(&org_id)?,
            ))
        })
        .await;
    let (rollouts, versions) = match found {
        Ok(found) => found,
        Err(error) => return super::error_page(&error),
    };
    let versions: Vec<ModelVersionInfo> = match versions
        .into_iter()
        .map(crate::api::registry::version_info)
        .collect()
    {
        Ok(versions) => versions,
        Err(error) => return super::error_page(&error),
    };
    let approved: Vec<&ModelVersionInfo> = versions
        .iter()
        .filter(|v| v.approved_at.is_some())
        .collect();
    let may_write = viewer.may(Permission::RolloutsWrite);
    let body = html! {
        @if rollouts.is_empty() {
            p class="empty" { "No rollout yet." }
        }
        @for rollout in rollouts.iter().rev() {
            (rollout_section(rollout, may_write))
        }
        @if may_write { (create_form(&approved)) }
    };
    layout::page(&viewer, "Rollouts", "/rollouts", body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_read_as_percentages() {
        assert_eq!(percent(10_000), "100 %");
        assert_eq!(percent(1_050), "10.50 %");
        assert_eq!(percent(5), "0.05 %");
    }
}
