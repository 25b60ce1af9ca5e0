//! Sign-in through an org's OpenID Provider with `openidconnect`: discovery from the issuer,
//! the authorization code flow with PKCE (S256), a fresh `state` and `nonce` per attempt, and
//! the ID token checked for signature (the provider's JWKS, asymmetric algorithms only),
//! issuer, audience, expiry, nonce and access-token hash.
//!
//! The decisions that need no network are plain functions here ([`validate_issuer`],
//! [`admitted_email`]); [`IdpHttp`] is the only way out to a provider: HTTPS only, no
//! redirects followed, bounded time.
//!
//! Everything a rejection carries is an [`OidcRejection`]: a fixed reason, never a token, a
//! claim value or an email.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgekeep_protocol::ErrorCode;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ServerError};

/// The ceremony kind of a sign-in attempt in progress.
pub const CEREMONY_KIND: &str = "oidc";
/// The session method of a session started by an identity provider.
pub const SESSION_METHOD: &str = "oidc";
/// The cookie that binds an attempt to the browser that started it (against login CSRF).
pub const BINDING_COOKIE: &str = "__Host-ek_oidc";

/// The HTTP client for identity providers: HTTPS only, the web roots plus the configured extra
/// roots, redirects never followed (discovery names every endpoint), 5 s to connect and 15 s
/// per request, no idle connections kept (sign-ins are rare; a provider closing an idle
/// connection must not fail one).
#[derive(Debug, Clone)]
pub struct IdpHttp {
    client: reqwest::Client,
}

impl IdpHttp {
    /// Builds the client, trusting the certificates in the PEM files `extra_roots` besides the
    /// built-in web roots. Fails when a file cannot be read or holds no valid certificate.
    pub fn new(extra_roots: &[PathBuf]) -> Result<Self, ServerError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15));
        for path in extra_roots {
            let pem = std::fs::read(path).map_err(ServerError::io(
                "reading an identity provider root certificate",
            ))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| ServerError::Tls("an identity provider root is not valid PEM"))?;
            if certs.is_empty() {
                return Err(ServerError::Tls(
                    "an identity provider root file holds no certificate",
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|_| ServerError::Tls("the identity provider HTTP client"))?;
        Ok(Self { client })
    }
}

/// Why a sign-in through an identity provider was refused. Each maps to an error code from
/// `crates/protocol` and a fixed reason that goes into the audit trail (`code:reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OidcRejection {
    /// The callback lacks `state` or `code`.
    #[error("malformed callback")]
    MalformedCallback,
    /// The attempt (`state`) is unknown, used, expired, or not bound to this browser.
    #[error("unknown attempt")]
    UnknownAttempt,
    /// The org has no identity provider (any more).
    #[error("no identity provider")]
    NotConfigured,
    /// The org's identity provider changed while the attempt was in progress.
    #[error("configuration changed")]
    ConfigChanged,
    /// The provider answered the authorization with an error (`error=...`).
    #[error("provider refused")]
    ProviderRefused,
    /// Discovery, keys or the token endpoint could not be reached or were unusable.
    #[error("provider unavailable")]
    Unavailable,
    /// The token endpoint refused the code (used, expired, wrong PKCE verifier or client).
    #[error("code refused")]
    CodeRefused,
    /// The token response holds no ID token.
    #[error("no ID token")]
    IdTokenMissing,
    /// The ID token's signature does not verify with the provider's keys.
    #[error("ID token signature")]
    Signature,
    /// The ID token names another issuer.
    #[error("ID token issuer")]
    Issuer,
    /// The ID token is not for this client.
    #[error("ID token audience")]
    Audience,
    /// The ID token has expired.
    #[error("ID token expired")]
    Expired,
    /// The ID token's nonce is not this attempt's.
    #[error("ID token nonce")]
    Nonce,
    /// The ID token's access-token hash does not match the access token.
    #[error("access token hash")]
    AccessTokenHash,
    /// The ID token is otherwise unacceptable.
    #[error("ID token claims")]
    Claims,
    /// The ID token carries no usable email.
    #[error("no email")]
    EmailMissing,
    /// The provider does not say the email is verified.
    #[error("email unverified")]
    EmailUnverified,
    /// The email's domain is not one the org allows.
    #[error("domain not allowed")]
    DomainNotAllowed,
    /// The person could not be admitted.
    #[error("admission")]
    Admission(crate::identity::Admission),
}

impl From<crate::identity::Admission> for OidcRejection {
    fn from(admission: crate::identity::Admission) -> Self {
        Self::Admission(admission)
    }
}

impl OidcRejection {
    /// The error code answered.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::MalformedCallback => ErrorCode::BadRequest,
            Self::UnknownAttempt => ErrorCode::CeremonyInvalid,
            Self::NotConfigured => ErrorCode::IdpNotConfigured,
            Self::Unavailable => ErrorCode::IdpUnavailable,
            Self::IdTokenMissing
            | Self::Signature
            | Self::Issuer
            | Self::Audience
            | Self::Expired
            | Self::Nonce
            | Self::AccessTokenHash
            | Self::Claims => ErrorCode::IdTokenInvalid,
            Self::EmailMissing | Self::EmailUnverified | Self::DomainNotAllowed => {
                ErrorCode::IdpEmailRejected
            }
            Self::ConfigChanged
            | Self::ProviderRefused
            | Self::CodeRefused
            | Self::Admission(_) => ErrorCode::IdpLoginRejected,
        }
    }

    /// The reason recorded in the audit trail, after the code (`id_token_invalid:nonce`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::MalformedCallback => "malformed_callback",
            Self::UnknownAttempt => "unknown_attempt",
            Self::NotConfigured => "not_configured",
            Self::ConfigChanged => "config_changed",
            Self::ProviderRefused => "provider_refused",
            Self::Unavailable => "unavailable",
            Self::CodeRefused => "code_refused",
            Self::IdTokenMissing => "missing",
            Self::Signature => "signature",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Expired => "expired",
            Self::Nonce => "nonce",
            Self::AccessTokenHash => "at_hash",
            Self::Claims => "claims",
            Self::EmailMissing => "email_missing",
            Self::EmailUnverified => "email_unverified",
            Self::DomainNotAllowed => "domain_not_allowed",
            Self::Admission(admission) => admission.reason(),
        }
    }

    /// The audit outcome: `code:reason`.
    pub fn outcome(self) -> String {
        format!("{}:{}", self.code().as_str(), self.reason())
    }

    /// The message answered: fixed text naming the reason, never a value.
    pub fn message(self) -> &'static str {
        match self {
            Self::MalformedCallback => "the callback needs `state` and `code`",
            Self::UnknownAttempt => {
                "the sign-in attempt is unknown, used, expired or from another browser; start again"
            }
            Self::NotConfigured => "this org has no identity provider configured",
            Self::ConfigChanged => {
                "the org's identity provider changed during sign-in; start again"
            }
            Self::ProviderRefused => "the identity provider refused the sign-in",
            Self::Unavailable => "the identity provider could not be reached or answered wrongly",
            Self::CodeRefused => "the identity provider refused the authorization code",
            Self::IdTokenMissing => "the identity provider returned no ID token",
            Self::Signature => "the ID token's signature does not verify",
            Self::Issuer => "the ID token is from another issuer",
            Self::Audience => "the ID token is not for this client",
            Self::Expired => "the ID token has expired",
            Self::Nonce => "the ID token's nonce is not this sign-in's",
            Self::AccessTokenHash => "the ID token does not match the access token",
            Self::Claims => "the ID token's claims are not acceptable",
            Self::EmailMissing => "the identity provider gave no email",
            Self::EmailUnverified => "the identity provider has not verified the email",
            Self::DomainNotAllowed => "the email's domain is not allowed by this org",
            Self::Admission(admission) => admission.message(),
        }
    }
}

impl From<OidcRejection> for ApiError {
    fn from(rejection: OidcRejection) -> Self {
        ApiError::new(rejection.code(), rejection.message())
    }
}

/// Checks an issuer URL: `https`, a host, no credentials, query or fragment.
pub fn validate_issuer(text: &str) -> Result<IssuerUrl, &'static str> {
    let issuer = IssuerUrl::new(text.trim().to_owned()).map_err(|_| "issuer is not a URL")?;
    let url = issuer.url();
    if url.scheme() != "https" {
        return Err("issuer must be an https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("issuer must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("issuer must not carry credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("issuer must not have a query or fragment");
    }
    Ok(issuer)
}

/// Reads the provider's discovery document and keys (`<issuer>/.well-known/openid-configuration`
/// and its `jwks_uri`). The document must name `issuer` exactly.
pub async fn discover(http: &IdpHttp, issuer: &str) -> Result<CoreProviderMetadata, OidcRejection> {
    let issuer = validate_issuer(issuer).map_err(|_| OidcRejection::Unavailable)?;
    CoreProviderMetadata::discover_async(issuer, &http.client)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "identity provider discovery failed");
            OidcRejection::Unavailable
        })
}

/// How long a discovery document serves sign-in starts before it is read again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// Most issuers kept; the oldest entry goes first beyond.
const DISCOVERY_ENTRIES: usize = 1024;

/// Discovery documents by issuer for sign-in starts, kept [`DISCOVERY_TTL`]: an unauthenticated
/// start never makes the server fetch from a provider it asked moments ago. Configuration and
/// callbacks read the provider afresh (a callback is bound to a throttled, single-use start, and
/// must see rotated keys).
#[derive(Default)]
pub struct DiscoveryCache {
    entries: std::sync::Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

impl std::fmt::Debug for DiscoveryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryCache").finish_non_exhaustive()
    }
}

impl DiscoveryCache {
    /// The issuer's document: from the cache while fresh, else read and kept.
    pub async fn get(
        &self,
        http: &IdpHttp,
        issuer: &str,
    ) -> Result<CoreProviderMetadata, OidcRejection> {
        let now = Instant::now();
        let cached = self
            .lock()
            .get(issuer)
            .filter(|(at, _)| now.duration_since(*at) < DISCOVERY_TTL)
            .map(|(_, metadata)| metadata.clone());
        if let Some(metadata) = cached {
            return Ok(metadata);
        }
        let metadata = discover(http, issuer).await?;
        self.put(issuer, metadata.clone());
        Ok(metadata)
    }

    /// Keeps a document just read (configuration reads the provider first).
    pub fn put(&self, issuer: &str, metadata: CoreProviderMetadata) {
        let mut entries = self.lock();
        if entries.len() >= DISCOVERY_ENTRIES && !entries.contains_key(issuer) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(issuer.to_owned(), (Instant::now(), metadata));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, CoreProviderMetadata)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the server keeps while a person is at the provider: single use, in the ceremonies
/// table, bound to the org by the ceremony's subject.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The issuer the attempt started with.
    pub issuer: String,
    /// The client id the attempt started with.
    pub client_id: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier (its S256 challenge went to the provider).
    pub pkce_verifier: String,
    /// The redirect URI sent (the token request repeats it).
    pub redirect_uri: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An authorization request to send the person to, with what to keep until the callback.
#[derive(Debug)]
pub struct Authorization {
    /// The provider's authorization URL with `state`, `nonce` and the PKCE challenge.
    pub url: String,
    /// What to keep.
    pub pending: PendingLogin,
}

/// The longest `login_hint` passed on to a provider.
pub const MAX_LOGIN_HINT_LEN: usize = 254;

/// A `login_hint` worth passing on (OIDC Core §3.1.2.1): 1 to 254 characters, no control
/// characters. Anything else is dropped, not refused: the hint only saves typing.
pub fn login_hint(text: Option<&str>) -> Option<String> {
    let text = text?.trim();
    (!text.is_empty() && text.len() <= MAX_LOGIN_HINT_LEN && !text.chars().any(char::is_control))
        .then(|| text.to_owned())
}

/// Builds the authorization request (`openid email profile`, code flow, PKCE S256) carrying
/// `state`, with a fresh nonce and PKCE verifier, and the person's `login_hint` when given.
pub fn authorize(
    metadata: CoreProviderMetadata,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    hint: Option<String>,
) -> Result<Authorization, OidcRejection> {
    let issuer = metadata.issuer().to_string();
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| OidcRejection::Claims)?;
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.to_owned()), None)
            .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = state.to_owned();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge);
    if let Some(hint) = hint {
        request = request.set_login_hint(LoginHint::new(hint));
    }
    let (url, _, nonce) = request.url();
    Ok(Authorization {
        url: url.to_string(),
        pending: PendingLogin {
            issuer,
            client_id: client_id.to_owned(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri: redirect_uri.to_owned(),
        },
    })
}

/// Who the provider says signed in, from a verified ID token. Holds personal data: never log
/// it.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The provider's subject identifier.
    pub subject: String,
    /// The email claim, if any.
    pub email: Option<String>,
    /// The `email_verified` claim, if any.
    pub email_verified: Option<bool>,
    /// The `name` claim, if any.
    pub name: Option<String>,
}

impl std::fmt::Debug for VerifiedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifiedIdentity(<personal data>)")
    }
}

/// The ID token signature algorithms accepted: asymmetric ones only (never `none`, never an
/// HMAC keyed with the client secret), whatever the provider advertises.
const ACCEPTED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Redeems the authorization `code` of `pending` at the provider's token endpoint (client
/// secret, PKCE verifier) and verifies the ID token: signature with the provider's keys,
/// issuer, audience (this client only), expiry, nonce and, when present, the access-token hash.
pub async fn redeem(
    http: &IdpHttp,
    metadata: CoreProviderMetadata,
    client_secret: &str,
    pending: &PendingLogin,
    code: &str,
) -> Result<VerifiedIdentity, OidcRejection> {
    let redirect =
        RedirectUrl::new(pending.redirect_uri.clone()).map_err(|_| OidcRejection::Claims)?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(pending.client_id.clone()),
        Some(ClientSecret::new(client_secret.to_owned())),
    )
    .set_redirect_uri(redirect);
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|_| OidcRejection::Unavailable)?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&http.client)
        .await
        .map_err(|err| match err {
            RequestTokenError::ServerResponse(_) => OidcRejection::CodeRefused,
            other => {
                tracing::warn!(error = %other, "identity provider token request failed");
                OidcRejection::Unavailable
            }
        })?;
    let id_token = response.id_token().ok_or(OidcRejection::IdTokenMissing)?;
    let verifier = client.id_token_verifier().set_allowed_algs(ACCEPTED_ALGS);
    let nonce = Nonce::new(pending.nonce.clone());
    let claims = id_token
        .claims(&verifier, &nonce)
        .map_err(claims_rejection)?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|_| OidcRejection::Signature)?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|_| OidcRejection::Signature)?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
            .map_err(|_| OidcRejection::AccessTokenHash)?;
        if actual != *expected {
            return Err(OidcRejection::AccessTokenHash);
        }
    }
    Ok(VerifiedIdentity {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|email| email.as_str().to_owned()),
        email_verified: claims.email_verified(),
        name: claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned()),
    })
}

fn claims_rejection(err: ClaimsVerificationError) -> OidcRejection {
    match err {
        ClaimsVerificationError::Expired(_) => OidcRejection::Expired,
        ClaimsVerificationError::InvalidAudience(_) => OidcRejection::Audience,
        ClaimsVerificationError::InvalidIssuer(_) => OidcRejection::Issuer,
        ClaimsVerificationError::InvalidNonce(_) => OidcRejection::Nonce,
        ClaimsVerificationError::SignatureVerification(_) => OidcRejection::Signature,
        _ => OidcRejection::Claims,
    }
}

/// The email a verified identity may sign in with: present, well formed, verified by the
/// provider (`email_verified` exactly `true`), and of one of `allowed_domains` (exact match).
pub fn admitted_email(
    identity: &VerifiedIdentity,
    allowed_domains: &[String],
) -> Result<String, OidcRejection> {
    let email = identity
        .email
        .as_deref()
        .and_then(edgekeep_protocol::people::normalize_email)
        .ok_or(OidcRejection::EmailMissing)?;
    if identity.email_verified != Some(true) {
        return Err(OidcRejection::EmailUnverified);
    }
    if !super::domain_allowed(&email, allowed_domains) {
        return Err(OidcRejection::DomainNotAllowed);
    }
    Ok(email)
}

/// The display name of a person created by a sign-in: the `name` claim when it is a valid
/// name, else the email's local part.
pub fn display_name(identity: &VerifiedIdentity, email: &str) -> String {
    super::display_name(identity.name.as_deref(), email)
}

/// The `Set-Cookie` value binding an attempt to the browser: `SameSite=Lax`, since the
/// provider's redirect back is a cross-site top-level navigation.
pub fn binding_cookie(state: &str, max_age: Duration) -> String {
    format!(
        "{BINDING_COOKIE}={state}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        max_age.as_secs()
    )
}

/// The `Set-Cookie` value removing the binding cookie.
pub fn clear_binding_cookie() -> &'static str {
    "__Host-ek_oidc=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
}

/// The binding cookie a request presents, if any.
pub fn presented_binding(headers: &axum::http::HeaderMap) -> Option<&str> {
    super::session::cookie(headers, BINDING_COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hints_are_passed_on_only_when_plain() {
        assert_eq!(
            login_hint(Some(" ada@example.com ")).as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(login_hint(Some("")), None);
        assert_eq!(login_hint(Some("a\nb")), None);
        assert_eq!(login_hint(Some(&"a".repeat(255))), None);
        assert_eq!(login_hint(None), None);
    }

    #[tokio::test]
    async fn a_fresh_discovery_document_is_served_without_asking_the_provider() {
        let issuer = "https://provider.invalid";
        let metadata: CoreProviderMetadata = serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": "https://provider.invalid/auth",
            "jwks_uri": "https://provider.invalid/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }))
        .unwrap();
        let http = IdpHttp::new(&[]).unwrap();
        let cache = DiscoveryCache::default();
        assert_eq!(
            cache.get(&http, issuer).await.err(),
            Some(OidcRejection::Unavailable)
        );
        cache.put(issuer, metadata.clone());
        let served = cache.get(&http, issuer).await.unwrap();
        assert_eq!(served.issuer(), metadata.issuer());
    }

    fn identity(email: Option<&str>, verified: Option<bool>) -> VerifiedIdentity {
        VerifiedIdentity {
            subject: "sub".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: None,
        }
    }

    #[test]
    fn only_verified_emails_of_allowed_domains_are_admitted() {
        let allowed = vec!["example.com".to_owned()];
        assert_eq!(
            admitted_email(&identity(Some("Ada@Example.com"), Some(true)), &allowed),
            Ok("ada@example.com".to_owned())
        );
        assert_eq!(
            admitted_email(&identity(Some("ada@example.com"), Some(false)), &allowed),
            Err(OidcRejection::EmailUnverified)
        );
        assert_eq!(
            admitted_email(&identity(Some("ada@example.com"), None), &allowed),
            Err(OidcRejection::EmailUnverified)
        );
        assert_eq!(
            admitted_email(&identity(None, Some(true)), &allowed),
            Err(OidcRejection::EmailMissing)
        );
        assert_eq!(
            admitted_email(&identity(Some("not an email"), Some(true)), &allowed),
            Err(OidcRejection::EmailMissing)
        );
        for other in [
            "ada@sub.example.com",
            "ada@example.com.evil.test",
            "ada@evilexample.com",
        ] {
            assert_eq!(
                admitted_email(&identity(Some(other), Some(true)), &allowed),
                Err(OidcRejection::DomainNotAllowed),
                "{other}"
            );
        }
    }

    #[test]
    fn issuers_must_be_plain_https_urls() {
        assert!(validate_issuer("https://idp.example.com").is_ok());
        assert!(validate_issuer("https://idp.example.com/realms/a").is_ok());
        for bad in [
            "http://idp.example.com",
            "idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?a=1",
            "https://idp.example.com/#x",
            "file:///etc/passwd",
        ] {
            assert!(validate_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejections_name_a_code_and_a_reason_only() {
        assert_eq!(
            OidcRejection::Nonce.outcome(),
            "id_token_invalid:nonce".to_owned()
        );
        assert_eq!(
            OidcRejection::UnknownAttempt.code(),
            ErrorCode::CeremonyInvalid
        );
        assert_eq!(
            OidcRejection::DomainNotAllowed.code(),
            ErrorCode::IdpEmailRejected
        );
        let error: ApiError = OidcRejection::Audience.into();
        assert_eq!(error.code, ErrorCode::IdTokenInvalid);
    }

    #[test]
    fn the_binding_cookie_is_found_and_goes_cross_site_on_navigation() {
        let cookie = binding_cookie("ekc_abc", Duration::from_secs(300));
        assert!(cookie.starts_with("__Host-ek_oidc=ekc_abc;"));
        assert!(cookie.contains("SameSite=Lax") && cookie.contains("Secure"));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("a=1; __Host-ek_oidc=ekc_abc"),
        );
        assert_eq!(presented_binding(&headers), Some("ekc_abc"));
    }

    #[test]
    fn display_names_fall_back_to_the_local_part() {
        let mut who = identity(Some("ada@example.com"), Some(true));
        assert_eq!(display_name(&who, "ada@example.com"), "ada");
        who.name = Some("Ada Lovelace".into());
        assert_eq!(display_name(&who, "ada@example.com"), "Ada Lovelace");
        who.name = Some("bad\u{7}name".into());
        assert_eq!(display_name(&who, "ada@example.com"), "ada");
    }
}
