//! The models page: every uploaded version with its signed manifest's facts (signer key id,
//! sizes, hashes, SDK minimum, expiry) and its approval; Admins and Owners approve.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::Permission;
use edgekeep_protocol::fleet::ModelVersionInfo;
use maud::{Markup, html};

use crate::api::AppState;
use crate::dashboard::layout;
use crate::dashboard::viewer::Viewer;

fn bytes(count: u64) -> String {
    match count {
        0..1024 => format!("{count} B"),
        1024..1_048_576 => format!("{:.1} KiB", count as f64 / 1024.0),
        _ => format!("{:.1} MiB", count as f64 / 1_048_576.0),
    }
}

fn short_hash(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

fn version_row(version: &ModelVersionInfo, may_approve: bool) -> Markup {
    let manifest = &version.manifest.manifest;
    let name = format!("{} v{}", version.model, version.version);
    html! {
        tr {
            th scope="row" { (name) }
            td { code { (manifest.publisher_key_id) } }
            td { (bytes(manifest.plaintext_len)) " / " (bytes(manifest.ciphertext_len)) }
            td { code title=(manifest.plaintext_sha256) { (short_hash(&manifest.plaintext_sha256)) "…" } }
            td { (manifest.min_sdk_version.to_string()) }
            td {
                @if version.approved_at.is_some() {
                    "approved"
                } @else if may_approve {
                    form data-api=(format!("/v1/models/{}/versions/{}/approve", version.model, version.version))
                        data-confirm=(format!("Approve {name} for rollout?")) {
                        button type="submit" { "Approve" }
                    }
                } @else {
                    "awaiting approval"
                }
            }
        }
    }
}

/// `/models` (`models:read`; approval for `models:approve`).
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    if let Err(error) = viewer.caller.require(Permission::ModelsRead) {
        return super::error_page(&error);
    }
    let org_id = viewer.caller.org_id.clone();
    let versions = match state.blocking(move |s| s.model_versions(&org_id)).await {
        Ok(records) => records
            .into_iter()
            .map(crate::api::registry::version_info)
            .collect::<Result<Vec<_>, _>>(),
        Err(error) => Err(error),
    };
    let versions = match versions {
        Ok(versions) => versions,
        Err(error) => return super::error_page(&error),
    };
    let may_approve = viewer.may(Permission::ModelsApprove);
    let body = html! {
        @if versions.is_empty() {
            p class="empty" { "No model is published yet. Publish one with " code { "edgekeep publish" } " and a publisher key registered by an Owner." }
        } @else {
            table class="wide" {
                thead { tr {
                    th scope="col" { "Version" } th scope="col" { "Signed by" }
                    th scope="col" { "Size (plain / encrypted)" } th scope="col" { "SHA-256" }
                    th scope="col" { "SDK minimum" } th scope="col" { "Approval" }
                } }
                tbody {
                    @for version in versions.iter().rev() { (version_row(version, may_approve)) }
                }
            }
        }
    };
    layout::page(&viewer, "Models", "/models", body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 * 1_048_576), "3.0 MiB");
        assert_eq!(short_hash("abc"), "abc");
    }
}
