//! The dashboard's script, style sheet and icon, compiled into the binary (nothing fetched at run
//! time). Their URLs carry a hash of their content, so they are cached for good and a new build
//! is fetched at once.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("assets/icon.svg"),
    },
];

fn digest(body: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, body.as_bytes())
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn versioned() -> &'static Vec<(String, &'static Asset)> {
    static VERSIONED: OnceLock<Vec<(String, &'static Asset)>> = OnceLock::new();
    VERSIONED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let (stem, ext) = asset.name.rsplit_once('.').unwrap_or((asset.name, ""));
                (format!("{stem}.{}.{ext}", digest(asset.body)), asset)
            })
            .collect()
    })
}

/// The URL of the asset named `name` (`app.js`), with its content hash.
pub fn url(name: &str) -> String {
    versioned()
        .iter()
        .find(|(_, asset)| asset.name == name)
        .map_or_else(
            || format!("/assets/{name}"),
            |(file, _)| format!("/assets/{file}"),
        )
}

/// Serves an asset by its versioned name, cached for a year.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some((_, asset)) = versioned().iter().find(|(file, _)| *file == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
