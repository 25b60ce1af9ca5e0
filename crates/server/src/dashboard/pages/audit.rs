//! The audit page: the org's hash-chained trail, newest first, filtered by action and actor,
//! paged; the chain verified on request (and where it breaks); a JSON Lines export. Admins and
//! Owners (`audit:read`).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::{AuditEntry, Permission};
use maud::{Markup, html};

use super::paging;
use crate::api::AppState;
use crate::dashboard::layout;
use crate::dashboard::viewer::Viewer;

/// `2026-12-03 11:32:07 UTC` for Unix seconds.
fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn entry_row(entry: &AuditEntry) -> Markup {
    html! {
        tr {
            td { (entry.seq) }
            td { (when(entry.at)) }
            td { code { (entry.actor) } }
            td { (entry.action) }
            td { code { (entry.target) } }
            td { (entry.outcome) }
        }
    }
}

/// `/audit?action=…&actor=…&verify=1&page=…`.
pub async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    viewer: Viewer,
) -> Response {
    if let Err(error) = viewer.caller.require(Permission::AuditRead) {
        return super::error_page(&error);
    }
    let query = query.unwrap_or_default();
    let mut action = String::new();
    let mut actor = String::new();
    let mut verify = false;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "action" => action = value.trim().to_owned(),
            "actor" => actor = value.trim().to_owned(),
            "verify" => verify = value == "1",
            _ => {}
        }
    }
    let org_id = viewer.caller.org_id.clone();
    let entries = match state
        .blocking(move |s| s.audit_entries(&org_id, None, None))
        .await
    {
        Ok(entries) => entries,
        Err(error) => return super::error_page(&error),
    };
    let verification = if verify {
        match crate::api::audit::verification(&state, viewer.caller.org_id.clone(), None).await {
            Ok(report) => Some(report.0),
            Err(error) => return super::error_page(&error),
        }
    } else {
        None
    };
    let kept: Vec<&AuditEntry> = entries
        .iter()
        .rev()
        .filter(|e| action.is_empty() || e.action.starts_with(&action))
        .filter(|e| actor.is_empty() || e.actor.contains(&actor))
        .collect();
    let pager = paging::Pager::whole("/audit");
    let (shown, page, pages) = paging::slice(&kept, pager.current(&query));
    let body = html! {
        section aria-labelledby="chain" {
            h2 id="chain" { "Integrity" }
            @match &verification {
                Some(report) if report.intact => {
                    p class="reachable" { "The chain is intact: " (report.entries) " entries verified." }
                }
                Some(report) => {
                    p class="unreachable" { "The chain is broken: " (report.problem.as_deref().unwrap_or("unknown problem")) }
                }
                None => {
                    p {
                        a href="/audit?verify=1" { "Verify the chain" }
                        " · "
                        a href="/v1/audit" download="audit.jsonl" { "Export as JSON Lines" }
                    }
                }
            }
        }
        section aria-labelledby="entries" {
            h2 id="entries" { "Entries" }
            form class="filters" method="get" action="/audit" role="search" {
                div {
                    label for="action" { "Action starts with" }
                    input id="action" name="action" value=(action) placeholder="login.";
                }
                div {
                    label for="actor" { "Actor contains" }
                    input id="actor" name="actor" value=(actor) placeholder="user:";
                }
                div class="buttons" { button type="submit" { "Filter" } }
            }
            @if kept.is_empty() {
                p class="empty" { "No entry matches." }
            } @else {
                table class="wide" {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" }
                        th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Outcome" }
                    } }
                    tbody { @for entry in shown { (entry_row(entry)) } }
                }
                (paging::links(&pager, &query, page, pages))
            }
        }
    };
    layout::page(&viewer, "Audit", "/audit", body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_utc() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_796_297_527), "2026-12-03 11:32:07 UTC");
        assert_eq!(when(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
