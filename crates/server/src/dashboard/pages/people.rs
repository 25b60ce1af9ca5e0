//! The people and keys page: members and roles, invitations, the signed-in person's sessions and
//! passkeys, the org's API keys, and its SCIM tokens. Every list comes from the JSON API's own
//! handler called with the viewer's session (the same permission checks, the same visibility:
//! a Member sees their own keys), and every change is a form the script sends to the API.
//! Secrets (a new key, a rotated key, an invitation link, a SCIM token) are shown once.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::api::{ApiKeyInfo, MemberInfo, Permission, Role};
use edgekeep_protocol::people::{InvitationInfo, PasskeyInfo, SessionInfo};
use edgekeep_protocol::scim::ScimTokenInfo;
use maud::{Markup, html};

use crate::api::AppState;
use crate::dashboard::layout;
use crate::dashboard::pages::paging::{self, Pager};
use crate::dashboard::viewer::Viewer;

/// What a list the viewer may not see shows instead.
enum Listed<T> {
    Shown(Vec<T>),
    Hidden,
}

async fn listed<T, F>(call: F) -> Result<Listed<T>, crate::error::ApiError>
where
    F: std::future::Future<Output = Result<axum::Json<Vec<T>>, crate::error::ApiError>>,
{
    match call.await {
        Ok(axum::Json(items)) => Ok(Listed::Shown(items)),
        Err(error) if error.code == edgekeep_protocol::ErrorCode::Forbidden => Ok(Listed::Hidden),
        Err(error) => Err(error),
    }
}

fn at(when: i64) -> String {
    super::fleet::ago(crate::now() - when)
}

const MEMBERS: Pager<'static> = Pager {
    path: "/people",
    param: "members_page",
    section: "members",
    label: "Pages of members",
};

const KEYS: Pager<'static> = Pager {
    path: "/people",
    param: "keys_page",
    section: "api-keys",
    label: "Pages of API keys",
};

/// A rotatable, revocable credential in a list: its API path, what its buttons name, and the
/// questions they ask first.
struct Credential {
    path: String,
    label: String,
    rotate: String,
    revoke: String,
}

/// Rotate (the new secret shown once) and revoke, each confirmed first.
fn credential_actions(credential: &Credential) -> Markup {
    html! {
        div class="actions" {
            form data-api=(format!("{}/rotate", credential.path)) data-reveal="secret" data-confirm=(credential.rotate) {
                button type="submit" aria-label=(format!("Rotate {}", credential.label)) { "Rotate" }
                output class="secret" hidden {}
            }
            form data-api=(credential.path) data-method="DELETE" data-confirm=(credential.revoke) {
                button type="submit" class="danger" aria-label=(format!("Revoke {}", credential.label)) { "Revoke" }
            }
        }
    }
}

/// When a credential was last used: "never", or "4 minutes ago".
fn used(at_time: Option<i64>) -> String {
    at_time.map_or_else(|| "never".to_owned(), at)
}

/// When a credential expires: "never", or "in 4 minutes".
fn expires(at: Option<i64>) -> String {
    at.map_or_else(
        || "never".to_owned(),
        |e| {
            format!(
                "in {}",
                super::fleet::duration((e - crate::now()).unsigned_abs())
            )
        },
    )
}

fn members_section(members: &[MemberInfo], may_grant: bool, query: &str) -> Markup {
    let (members, page, pages) = paging::slice(members, MEMBERS.current(query));
    html! {
        section aria-labelledby="members" {
            h2 id="members" { "Members" }
            table class="wide" {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Joined" } } }
                tbody {
                    @for member in members {
                        tr {
                            th scope="row" { (member.name) }
                            td {
                                @if may_grant {
                                    form data-api=(format!("/v1/members/{}/role", member.id)) data-method="PUT"
                                        data-confirm=(format!("Change the role of {}?", member.name)) class="inline" {
                                        label class="visually-hidden" for=(format!("role-{}", member.id)) { "Role of " (member.name) }
                                        select id=(format!("role-{}", member.id)) name="role" {
                                            @for role in [Role::Member, Role::Admin, Role::Owner] {
                                                option value=(role.as_str()) selected[role == member.role] { (role.as_str()) }
                                            }
                                        }
                                        button type="submit" { "Set role" }
                                    }
                                } @else {
                                    (member.role.as_str())
                                }
                            }
                            td { (at(member.created_at)) }
                        }
                    }
                }
            }
            (paging::links(&MEMBERS, query, page, pages))
        }
    }
}

fn invitations_section(invitations: &[InvitationInfo], may_invite: bool) -> Markup {
    let now = crate::now();
    let open: Vec<&InvitationInfo> = invitations
        .iter()
        .filter(|i| i.accepted_at.is_none() && i.expires_at > now)
        .collect();
    html! {
        section aria-labelledby="invitations" {
            h2 id="invitations" { "Invitations" }
            @if open.is_empty() {
                p class="empty" { "No open invitation." }
            } @else {
                table class="wide" {
                    thead { tr { th scope="col" { "For" } th scope="col" { "Role" } th scope="col" { "Expires" } th scope="col" { "" } } }
                    tbody {
                        @for invitation in &open {
                            tr {
                                th scope="row" { (invitation.email.as_deref().unwrap_or("anyone with the link")) }
                                td { (invitation.role.as_str()) }
                                td { "in " (super::fleet::duration((invitation.expires_at - now).unsigned_abs())) }
                                td {
                                    @if may_invite {
                                        form data-api=(format!("/v1/invitations/{}", invitation.id)) data-method="DELETE"
                                            data-confirm="Revoke this invitation?" {
                                            button type="submit" class="danger" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if may_invite {
                form data-api="/v1/invitations" data-reveal="token" data-reveal-prefix="/invite#" {
                    label for="invite-email" { "Email (optional: binds the invitation to it)" }
                    input id="invite-email" name="email" type="email" autocomplete="off";
                    label for="invite-role" { "Role" }
                    select id="invite-role" name="role" {
                        @for role in [Role::Member, Role::Admin, Role::Owner] {
                            option value=(role.as_str()) { (role.as_str()) }
                        }
                    }
                    div class="buttons" { button type="submit" { "Create invitation link" } }
                    output class="secret" hidden {}
                }
            }
        }
    }
}

fn keys_section(keys: &[ApiKeyInfo], may_write: bool, query: &str) -> Markup {
    let live: Vec<&ApiKeyInfo> = keys.iter().filter(|k| k.revoked_at.is_none()).collect();
    let (shown, page, pages) = paging::slice(&live, KEYS.current(query));
    html! {
        section aria-labelledby="api-keys" {
            h2 id="api-keys" { "API keys" }
            p { "For backends, CI and scripts. People sign in with passkeys instead." }
            @if live.is_empty() {
                p class="empty" { "No API key." }
            } @else {
                table class="wide" {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "" } } }
                    tbody {
                        @for key in shown {
                            tr {
                                th scope="row" { (key.name) }
                                td { code { (key.prefix) } }
                                td { (at(key.created_at)) }
                                td { (expires(key.expires_at)) }
                                td {
                                    @if may_write {
                                        (credential_actions(&Credential {
                                            path: format!("/v1/api-keys/{}", key.id),
                                            label: key.name.clone(),
                                            rotate: format!("Rotate {}? The old secret keeps working for 5 minutes.", key.name),
                                            revoke: format!("Revoke {}? It stops working at once.", key.name),
                                        }))
                                    }
                                }
                            }
                        }
                    }
                }
                (paging::links(&KEYS, query, page, pages))
            }
            @if may_write {
                form data-api="/v1/api-keys" data-reveal="secret" {
                    label for="key-name" { "Name of a new key" }
                    input id="key-name" name="name" required maxlength="100" placeholder="ci-publisher";
                    div class="buttons" { button type="submit" { "Create API key" } }
                    output class="secret" hidden {}
                }
            }
        }
    }
}

fn me_section(sessions: &[SessionInfo], passkeys: &Listed<PasskeyInfo>) -> Markup {
    html! {
        section aria-labelledby="me" {
            h2 id="me" { "You" }
            table class="wide" {
                caption { "Your sessions" }
                thead { tr { th scope="col" { "Started by" } th scope="col" { "Started" } th scope="col" { "Last seen" } th scope="col" { "" } } }
                tbody {
                    @for session in sessions {
                        tr {
                            th scope="row" { (session.method) @if session.current { " (this one)" } }
                            td { (at(session.created_at)) }
                            td { (at(session.last_seen_at)) }
                            td {
                                @if !session.current {
                                    form data-api=(format!("/v1/me/sessions/{}", session.id)) data-method="DELETE"
                                        data-confirm="End this session?" {
                                        button type="submit" class="danger" { "End" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Listed::Shown(passkeys) = passkeys { (passkeys_table(passkeys)) }
        }
    }
}

fn passkeys_table(passkeys: &[PasskeyInfo]) -> Markup {
    let removable = passkeys.len() > 1;
    html! {
        @if passkeys.is_empty() {
            p class="empty" { "No passkey yet: add one to sign in with it." }
        } @else {
            (passkeys_rows(passkeys, removable))
        }
        @if passkeys.len() == 1 {
            p class="note" { "Your only passkey cannot be removed: add another first." }
        }
        form data-action="add-passkey" {
            label for="new-passkey-name" { "Name of a new passkey (optional)" }
            input id="new-passkey-name" name="name" maxlength="100" placeholder="work laptop";
            div class="buttons" { button type="submit" { "Add a passkey" } }
        }
    }
}

fn passkeys_rows(passkeys: &[PasskeyInfo], removable: bool) -> Markup {
    html! {
        table class="wide" {
            caption { "Your passkeys" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Added" } th scope="col" { "Last used" } th scope="col" { "" } } }
            tbody {
                @for passkey in passkeys {
                    tr {
                        th scope="row" { (passkey.name) }
                        td { (at(passkey.created_at)) }
                        td { (used(passkey.last_used_at)) }
                        td {
                            div class="actions" {
                                form data-api=(format!("/v1/me/passkeys/{}", passkey.id)) data-method="PATCH" class="inline" {
                                    label class="visually-hidden" for=(format!("passkey-{}", passkey.id)) { "New name of " (passkey.name) }
                                    input id=(format!("passkey-{}", passkey.id)) name="name" required maxlength="100" value=(passkey.name);
                                    button type="submit" aria-label=(format!("Rename {}", passkey.name)) { "Rename" }
                                }
                                @if removable {
                                    form data-api=(format!("/v1/me/passkeys/{}", passkey.id)) data-method="DELETE"
                                        data-confirm=(format!("Remove the passkey {}? You can no longer sign in with it.", passkey.name)) {
                                        button type="submit" class="danger" aria-label=(format!("Remove {}", passkey.name)) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn scim_section(tokens: &[ScimTokenInfo]) -> Markup {
    let live: Vec<&ScimTokenInfo> = tokens.iter().filter(|t| t.revoked_at.is_none()).collect();
    html! {
        section aria-labelledby="scim" {
            h2 id="scim" { "Directory sync (SCIM)" }
            @if live.is_empty() {
                p class="empty" { "No SCIM token. Create one for your directory (Entra ID, Okta) to provision people." }
            } @else {
                table class="wide" {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { "" } } }
                    tbody {
                        @for token in &live {
                            tr {
                                th scope="row" { (token.name) }
                                td { code { (token.prefix) } }
                                td { (at(token.created_at)) }
                                td { (used(token.last_used_at)) }
                                td { (expires(token.expires_at)) }
                                td {
                                    (credential_actions(&Credential {
                                        path: format!("/v1/scim-tokens/{}", token.id),
                                        label: format!("SCIM token {}", token.name),
                                        rotate: format!("Rotate the SCIM token {}? The old one keeps working for 5 minutes: update the directory now.", token.name),
                                        revoke: format!("Revoke the SCIM token {}? The directory stops syncing at once.", token.name),
                                    }))
                                }
                            }
                        }
                    }
                }
            }
            form data-api="/v1/scim-tokens" data-reveal="secret" {
                label for="scim-name" { "Name of a new SCIM token" }
                input id="scim-name" name="name" required maxlength="100" placeholder="entra-id";
                div class="buttons" { button type="submit" { "Create SCIM token" } }
                output class="secret" hidden {}
            }
        }
    }
}

/// `/people`.
pub async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    parts: axum::http::request::Parts,
    viewer: Viewer,
) -> Response {
    let query = query.unwrap_or_default();
    let caller = || viewer.caller.clone();
    let st = || State(state.clone());
    let found = async {
        Ok::<_, crate::error::ApiError>((
            listed(crate::api::members::list_members(st(), caller())).await?,
            listed(crate::api::people::list_invitations(st(), caller())).await?,
            listed(crate::api::keys::list_keys(st(), caller())).await?,
            listed(crate::api::people::list_sessions(st(), caller())).await?,
            listed(crate::api::people::list_passkeys(st(), caller())).await?,
            listed(crate::scim::tokens::list_tokens(st(), caller())).await?,
        ))
    }
    .await;
    let (members, invitations, keys, sessions, passkeys, scim) = match found {
        Ok(found) => found,
        Err(error) => return super::error_page(&error),
    };
    let providers = if viewer.may(Permission::RolesGrant) {
        let origin = crate::auth::request_origin(&state, &parts);
        match super::providers::load(&state, &viewer.caller.org_id, &origin).await {
            Ok(providers) => Some(providers),
            Err(error) => return super::error_page(&error),
        }
    } else {
        None
    };
    let body = html! {
        p class="note" { "Owner-level changes (roles, SCIM tokens) ask for your passkey again if you have not confirmed it in the last 5 minutes." }
        @if let Listed::Shown(members) = &members { (members_section(members, viewer.may(Permission::RolesGrant), &query)) }
        @if let Listed::Shown(invitations) = &invitations { (invitations_section(invitations, viewer.may(Permission::MembersWrite))) }
        @if let Listed::Shown(sessions) = &sessions { (me_section(sessions, &passkeys)) }
        @if let Listed::Shown(keys) = &keys { (keys_section(keys, viewer.may(Permission::KeysWrite), &query)) }
        @if let Listed::Shown(tokens) = &scim { (scim_section(tokens)) }
        @if let Some(providers) = &providers { (super::providers::section(providers)) }
    };
    layout::page(&viewer, "People & keys", "/people", body).into_response()
}
