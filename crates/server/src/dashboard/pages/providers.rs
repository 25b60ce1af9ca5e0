//! The identity-provider part of the people page (Owners): the org's OpenID Provider and SAML
//! IdP as `GET /v1/org/idp` and `/v1/org/saml` show them, and forms that `PUT` or `DELETE`
//! them through the API (which asks for a passkey step-up).

use edgekeep_protocol::idp::IdpConfigInfo;
#[cfg(feature = "saml")]
use edgekeep_protocol::idp::SamlConfigInfo;
use maud::{Markup, html};

use crate::api::AppState;
use crate::error::ApiError;

/// The org's providers, for an Owner.
pub struct Providers {
    oidc: Option<IdpConfigInfo>,
    #[cfg(feature = "saml")]
    saml: Option<SamlConfigInfo>,
}

/// Reads the org's providers.
pub async fn load(state: &AppState, org_id: &str, origin: &str) -> Result<Providers, ApiError> {
    let id = org_id.to_owned();
    let oidc = state.blocking(move |s| s.idp_config(&id)).await?;
    #[cfg(feature = "saml")]
    let saml = {
        let id = org_id.to_owned();
        match state.blocking(move |s| s.saml_config(&id)).await? {
            Some(record) => Some(crate::api::saml::info(record, origin)?),
            None => None,
        }
    };
    Ok(Providers {
        oidc: oidc.map(|record| crate::api::oidc::info(record, origin)),
        #[cfg(feature = "saml")]
        saml,
    })
}

fn domains_field(id: &str, current: Option<&[String]>) -> Markup {
    html! {
        label for=(id) { "Allowed email domains (comma separated)" }
        input id=(id) name="allowed_email_domains" data-type="list" required
            value=(current.map(|d| d.join(", ")).unwrap_or_default()) placeholder="example.com";
    }
}

fn sso_field(id: &str, current: bool) -> Markup {
    html! {
        div class="check" {
            input id=(id) name="sso_required" type="checkbox" checked[current];
            label for=(id) { "Require signing in through an identity provider (no passkey sign-in)" }
        }
    }
}

fn oidc_form(current: Option<&IdpConfigInfo>) -> Markup {
    html! {
        h3 { "OpenID Connect" }
        @if let Some(info) = current {
            dl class="facts" {
                dt { "Issuer" } dd { (info.issuer) }
                dt { "Client id" } dd { (info.client_id) }
                dt { "Redirect URI" } dd { code { (info.redirect_uri) } }
                dt { "Sign-in link" } dd { code { (info.login_url) } }
            }
            form data-api="/v1/org/idp" data-method="DELETE" data-confirm="Remove the OpenID Provider? Its sessions stay until they end." {
                button type="submit" class="danger" { "Remove OpenID Provider" }
            }
        } @else {
            p class="empty" { "No OpenID Provider." }
        }
        form data-api="/v1/org/idp" data-method="PUT" data-confirm="Save the OpenID Provider?" {
            label for="oidc-issuer" { "Issuer URL" }
            input id="oidc-issuer" name="issuer" type="url" required value=(current.map_or("", |i| i.issuer.as_str())) placeholder="https://login.example.com";
            label for="oidc-client" { "Client id" }
            input id="oidc-client" name="client_id" required value=(current.map_or("", |i| i.client_id.as_str()));
            label for="oidc-secret" { "Client secret (stored sealed, never shown again)" }
            input id="oidc-secret" name="client_secret" type="password" required autocomplete="off";
            (domains_field("oidc-domains", current.map(|i| i.allowed_email_domains.as_slice())))
            (sso_field("oidc-sso", current.is_some_and(|i| i.sso_required)))
            div class="buttons" { button type="submit" { "Save OpenID Provider" } }
        }
    }
}

#[cfg(feature = "saml")]
fn saml_form(current: Option<&SamlConfigInfo>) -> Markup {
    html! {
        h3 { "SAML 2.0" }
        @if let Some(info) = current {
            dl class="facts" {
                dt { "IdP entity id" } dd { (info.idp_entity_id) }
                dt { "Certificate SHA-256" } dd { code { (info.certificate_sha256) } }
                dt { "SP metadata" } dd { code { (info.metadata_url) } }
                dt { "ACS URL" } dd { code { (info.acs_url) } }
                dt { "Sign-in link" } dd { code { (info.login_url) } }
            }
            form data-api="/v1/org/saml" data-method="DELETE" data-confirm="Remove the SAML IdP?" {
                button type="submit" class="danger" { "Remove SAML IdP" }
            }
        } @else {
            p class="empty" { "No SAML IdP." }
        }
        form data-api="/v1/org/saml" data-method="PUT" data-confirm="Save the SAML IdP?" {
            label for="saml-entity" { "IdP entity id" }
            input id="saml-entity" name="idp_entity_id" required value=(current.map_or("", |i| i.idp_entity_id.as_str()));
            label for="saml-sso" { "IdP single sign-on URL (HTTP-Redirect)" }
            input id="saml-sso" name="sso_url" type="url" required value=(current.map_or("", |i| i.sso_url.as_str()));
            label for="saml-cert" { "IdP signing certificate (PEM)" }
            textarea id="saml-cert" name="certificate_pem" rows="6" required {}
            (domains_field("saml-domains", current.map(|i| i.allowed_email_domains.as_slice())))
            (sso_field("saml-sso-required", current.is_some_and(|i| i.sso_required)))
            div class="buttons" { button type="submit" { "Save SAML IdP" } }
        }
    }
}

/// The section.
pub fn section(providers: &Providers) -> Markup {
    html! {
        section aria-labelledby="providers" {
            h2 id="providers" { "Identity providers" }
            (oidc_form(providers.oidc.as_ref()))
            @if cfg!(feature = "saml") {
                (saml_section(providers))
            }
        }
    }
}

#[cfg(feature = "saml")]
fn saml_section(providers: &Providers) -> Markup {
    saml_form(providers.saml.as_ref())
}

#[cfg(not(feature = "saml"))]
fn saml_section(_: &Providers) -> Markup {
    html! {}
}
