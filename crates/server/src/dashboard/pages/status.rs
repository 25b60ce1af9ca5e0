//! The public status page and `/status.json`: version, uptime, whether the database answers,
//! and when telemetry last arrived. Nothing about any tenant: no org, device or count.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Serialize;

use crate::api::AppState;
use crate::dashboard::layout;

/// `GET /status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The server's version.
    pub version: &'static str,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Whether the database answered.
    pub database: &'static str,
    /// When the last telemetry batch was accepted (Unix seconds), any org.
    pub last_ingest_at: Option<i64>,
}

async fn status(state: &AppState) -> Status {
    let probed = state
        .blocking(|s| {
            s.ping()?;
            s.last_ingest_at()
        })
        .await;
    let (database, last_ingest_at) = match probed {
        Ok(last) => ("reachable", last),
        Err(_) => ("unreachable", None),
    };
    Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.uptime().as_secs(),
        database,
        last_ingest_at,
    }
}

fn code(status: &Status) -> StatusCode {
    if status.database == "reachable" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `/status.json`: `200`, or `503` when the database does not answer.
pub async fn json(State(state): State<AppState>) -> Response {
    let status = status(&state).await;
    (code(&status), Json(status)).into_response()
}

/// `/status`.
pub async fn page(State(state): State<AppState>) -> Response {
    let status = status(&state).await;
    let body = layout::public_page(
        "Status",
        html! {
            dl class="facts" {
                dt { "Version" } dd { (status.version) }
                dt { "Up for" } dd { (crate::dashboard::pages::fleet::duration(status.uptime_secs)) }
                dt { "Database" } dd class=(status.database) { (status.database) }
                dt { "Last telemetry" }
                dd {
                    @match status.last_ingest_at {
                        Some(at) => { (crate::dashboard::pages::fleet::ago(crate::now() - at)) }
                        None => { "none yet" }
                    }
                }
            }
            p { "Machine-readable: " a href="/status.json" { "/status.json" } }
        },
    );
    (code(&status), body).into_response()
}
