//! The page shell: head (style sheet and script from `/assets`, nothing inline), the signed-in
//! header with the org, the role and sign-out, navigation, and the main landmark.

use edgekeep_protocol::api::Permission;
use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::viewer::Viewer;

/// The pages in the navigation: name, path, and the permission that opens it.
const PAGES: &[(&str, &str, Permission)] = &[
    ("Fleet", "/fleet", Permission::FleetRead),
    ("Rollouts", "/rollouts", Permission::ModelsRead),
    ("Models", "/models", Permission::ModelsRead),
    ("Devices", "/devices", Permission::DevicesRead),
    ("People & keys", "/people", Permission::MembersRead),
    ("Audit", "/audit", Permission::AuditRead),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · edgekeep" }
            link rel="icon" type="image/svg+xml" href=(assets::url("icon.svg"));
            link rel="stylesheet" href=(assets::url("app.css"));
            script type="module" src=(assets::url("app.js")) {}
        }
    }
}

/// A page for a signed-in viewer; `current` is the navigation entry's path.
pub fn page(viewer: &Viewer, title: &str, current: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                meta name="csrf-token" content=(viewer.csrf_token);
                header class="top" {
                    a class="brand" href="/fleet" { "edgekeep" }
                    nav aria-label="Pages" {
                        ul {
                            @for (name, path, _) in PAGES.iter().filter(|(_, _, p)| viewer.may(*p)) {
                                li {
                                    @if *path == current {
                                        a href=(path) aria-current="page" { (name) }
                                    } @else {
                                        a href=(path) { (name) }
                                    }
                                }
                            }
                        }
                    }
                    div class="who" {
                        span class="org" { (viewer.org_name) }
                        " · "
                        span class="role" { (viewer.role.as_str()) }
                        button type="button" data-action="logout" { "Sign out" }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    p class="alert" role="alert" hidden {}
                    (body)
                }
            }
        }
    }
}

/// A page for someone not signed in (sign-in, invitation, status).
pub fn public_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header class="top" {
                    a class="brand" href="/" { "edgekeep" }
                }
                main id="main" {
                    h1 { (title) }
                    p class="alert" role="alert" hidden {}
                    (body)
                }
            }
        }
    }
}
