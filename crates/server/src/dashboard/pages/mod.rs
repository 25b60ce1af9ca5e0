//! One module per page; shared here: the home redirect and error pages in words.

pub mod audit;
pub mod devices;
pub mod fleet;
pub mod login;
pub mod models;
mod paging;
pub mod people;
pub mod providers;
pub mod rollouts;
pub mod status;

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout;
use crate::error::ApiError;
use crate::identity::session;

/// `/`: the fleet for someone with a session cookie, else sign-in.
pub async fn home(parts: Parts) -> Redirect {
    if session::presented_secret(&parts.headers).is_some() {
        Redirect::to("/fleet")
    } else {
        Redirect::to("/login")
    }
}

/// An error as a page: its message in words, with the status of the error.
pub fn error_page(error: &ApiError) -> Response {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = layout::public_page(
        "Something went wrong",
        html! {
            p class="error" { (error.message) }
            p { a href="/" { "Back to the dashboard" } }
        },
    );
    (status, body).into_response()
}
