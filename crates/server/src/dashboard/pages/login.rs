//! Signing in: with a passkey, or through the org's identity provider; and accepting an
//! invitation with a new passkey. The ceremonies run in `app.js` against the JSON API
//! (`/v1/auth/...`); these pages only lay out the controls.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use maud::{Markup, html};

use crate::dashboard::layout;

/// Turns a sign-in's JSON answer (a started session, with its cookie) into the page a browser
/// lands on after its identity provider: it moves on to the dashboard by itself. A page, not a
/// redirect, so the `SameSite=Strict` session cookie goes with the next request (a redirect
/// would continue the provider's cross-site navigation).
pub fn signed_in(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0; url=/fleet";
                title { "Signed in · edgekeep" }
            }
            body { main { p { "Signed in. " a href="/fleet" { "Continue to the dashboard" } } } }
        }
    };
    let headers = &mut parts.headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::dashboard::CONTENT_SECURITY_POLICY),
    );
    Response::from_parts(parts, Body::from(page.into_string()))
}

/// `/login`.
pub async fn page() -> Markup {
    layout::public_page(
        "Sign in",
        html! {
            section aria-labelledby="with-passkey" {
                h2 id="with-passkey" { "With a passkey" }
                p { "Use the passkey you registered for edgekeep on this device or your phone." }
                button type="button" data-action="passkey-sign-in" { "Sign in with a passkey" }
            }
            section aria-labelledby="with-idp" {
                h2 id="with-idp" { "Through your organization" }
                p { "If your organization signs you in with its identity provider, enter its org id." }
                form data-action="idp-sign-in" {
                    label for="org-id" { "Org id" }
                    input id="org-id" name="org_id" required autocomplete="organization"
                        pattern="org_[A-Za-z0-9_-]+" placeholder="org_…";
                    label for="login-hint" { "Your email (optional, OpenID Connect)" }
                    input id="login-hint" name="login_hint" type="email" autocomplete="username";
                    div class="buttons" {
                        button type="submit" name="provider" value="oidc" { "Continue with OpenID Connect" }
                        button type="submit" name="provider" value="saml" { "Continue with SAML" }
                    }
                }
            }
            p { "Invited? Open the invitation link you were sent." }
        },
    )
}

/// `/invite#<token>`: the token stays in the fragment, so it never reaches the server's logs;
/// the script posts it to `/v1/auth/invitations/begin`.
pub async fn invite() -> Markup {
    layout::public_page(
        "Accept an invitation",
        html! {
            form data-action="accept-invitation" {
                p { "You are creating a passkey for edgekeep. Your device asks you to confirm it's you." }
                label for="display-name" { "Your name" }
                input id="display-name" name="display_name" required maxlength="100" autocomplete="name";
                label for="passkey-name" { "Name this passkey (optional)" }
                input id="passkey-name" name="name" maxlength="100" placeholder="laptop";
                button type="submit" { "Create passkey and join" }
            }
        },
    )
}
