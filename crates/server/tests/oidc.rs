//! Sign-in through an org's OpenID Provider, against a real provider: panva's `oidc-provider`
//! (tests/fixtures/oidc, installed by scripts/test-deps) on loopback over HTTPS, driven without a
//! browser (the fixture signs in the account named by `login_hint`).
//!
//! Skipped with a message only when node or the fixture's packages are missing and
//! `EDGEKEEP_REQUIRE_OIDC` is unset; scripts/test (and so CI) sets it.

mod common;

use common::oidc_provider::{Client, Provider, SECRET, provider_available};
use common::{TestServer, location, now};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::people::SessionCreated;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server, a provider in front of it, and browsers to sign in with.
struct Setup {
    ts: TestServer,
    idp: Provider,
}

impl Setup {
    async fn start(clients: &[Client]) -> Option<Self> {
        Self::start_with(clients, |_| {}).await
    }

    async fn start_with(
        clients: &[Client],
        adjust: impl FnOnce(&mut edgekeep_server::ServerConfig),
    ) -> Option<Self> {
        if !provider_available() {
            return None;
        }
        // The provider's root is only known once it runs, and the redirect URI only once the
        // server runs: start the server on a reserved port.
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let redirect_uri = format!("https://127.0.0.1:{port}/v1/auth/oidc/callback");
        let idp = Provider::start(&redirect_uri, clients);
        let ca = idp.ca_path.clone();
        let ts = TestServer::start_with(|config| {
            config.listen = format!("127.0.0.1:{port}").parse().unwrap();
            config.idp_extra_roots = vec![ca];
            adjust(config);
        })
        .await;
        Some(Self { ts, idp })
    }

    /// A browser: trusts both servers, keeps cookies, follows no redirect by itself.
    fn browser(&self) -> reqwest::Client {
        let idp_ca = std::fs::read(&self.idp.ca_path).unwrap();
        self.ts.browser(&[&idp_ca])
    }

    /// Configures `org`'s provider with `client_id` through `key`.
    async fn configure(&self, key: &str, client_id: &str, domains: &[&str]) -> (StatusCode, Value) {
        self.ts
            .call(
                Method::PUT,
                "/v1/org/idp",
                key,
                Some(json!({"issuer": self.idp.issuer, "client_id": client_id,
                    "client_secret": SECRET, "allowed_email_domains": domains})),
            )
            .await
    }

    async fn invite(&self, key: &str, email: &str, role: &str) {
        let (status, value) = self
            .ts
            .call(
                Method::POST,
                "/v1/invitations",
                key,
                Some(json!({"email": email, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }

    /// Goes from the server's start URL through the provider as `login_hint`, with `edit`
    /// applied to the authorization URL; returns the callback URL the provider sends back to.
    async fn authorize(
        &self,
        browser: &reqwest::Client,
        org_id: &str,
        login_hint: &str,
        edit: impl FnOnce(&mut reqwest::Url),
    ) -> String {
        let start = browser
            .get(self.ts.url(&format!("/v1/auth/oidc/{org_id}/start")))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::FOUND);
        let mut url = reqwest::Url::parse(location(&start)).unwrap();
        url.query_pairs_mut().append_pair("login_hint", login_hint);
        edit(&mut url);
        let mut next = url.to_string();
        for _ in 0..10 {
            if next.starts_with(&self.ts.url("/v1/auth/oidc/callback")) {
                return next;
            }
            let response = browser.get(&next).send().await.unwrap();
            assert!(
                response.status().is_redirection(),
                "the provider answered {}",
                response.status()
            );
            let target = location(&response).to_owned();
            next = reqwest::Url::parse(&next)
                .unwrap()
                .join(&target)
                .unwrap()
                .to_string();
        }
        panic!("the provider never redirected back");
    }

    /// A whole sign-in; returns the callback's response.
    async fn login(&self, org_id: &str, login_hint: &str) -> (reqwest::Client, reqwest::Response) {
        let browser = self.browser();
        let callback = self.authorize(&browser, org_id, login_hint, |_| {}).await;
        let response = browser.get(callback).send().await.unwrap();
        (browser, response)
    }

    /// The org's audit entries of `action`, as `(target, outcome)`.
    async fn audit(&self, key: &str, action: &str) -> Vec<(String, String)> {
        self.ts
            .audit(key)
            .await
            .into_iter()
            .filter(|e| e.action == action)
            .map(|e| (e.target, e.outcome))
            .collect()
    }
}

const MAIN: Client = Client {
    id: "edgekeep",
    tamper: None,
};

async fn get_with(browser: &reqwest::Client, ts: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = browser.get(ts.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_invited_verified_email_signs_in_and_becomes_a_member() {
    let Some(s) = Setup::start(&[MAIN]).await else {
        return;
    };
    let key = s.ts.owner_key.clone();
    let (status, info) = s.configure(&key, "edgekeep", &["Example.com"]).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["allowed_email_domains"], json!(["example.com"]));
    assert!(info.get("client_secret").is_none());
    s.invite(&key, "alice@example.com", "admin").await;

    let (browser, response) = s.login(&s.ts.org_id, "alice").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-ek_session=eks_"))
    );
    assert!(cookies.iter().any(|c| c.starts_with("__Host-ek_oidc=;")));
    let created: SessionCreated = response.json().await.unwrap();
    assert_eq!(created.org_id, s.ts.org_id);
    assert_eq!(created.role, edgekeep_protocol::api::Role::Admin);

    let (status, me) = get_with(&browser, &s.ts, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["display_name"], "Alice Example");
    assert_eq!(me["user_id"], created.user_id.as_str());
    let (status, org) = get_with(&browser, &s.ts, "/v1/org").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(org["id"], s.ts.org_id.as_str());
    let (_, sessions) = get_with(&browser, &s.ts, "/v1/me/sessions").await;
    assert_eq!(sessions[0]["method"], "oidc");

    // The invitation is used up, and the audit names user ids, never the email.
    let (_, invitations) = s.ts.call(Method::GET, "/v1/invitations", &key, None).await;
    let alice = invitations
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "alice@example.com")
        .unwrap();
    assert!(alice["accepted_at"].is_i64());
    let entries = s.ts.audit(&key).await;
    let login: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "login.oidc.ok")
        .collect();
    assert_eq!(login.len(), 1);
    assert_eq!(login[0].actor, format!("user:{}", created.user_id));
    assert!(entries.iter().any(|e| e.action == "invitation.accept"));
    for entry in &entries {
        assert!(!format!("{entry:?}").contains("alice@"), "{entry:?}");
    }

    // An identity provider's session is good for its org only: no switching org with it.
    let response = browser
        .post(s.ts.url("/v1/auth/switch-org"))
        .header("origin", &s.ts.base)
        .header("x-csrf-token", &created.csrf_token)
        .json(&json!({"org_id": s.ts.org_id}))
        .send()
        .await
        .unwrap();
    common::assert_error(response, ErrorCode::Forbidden).await;
}

#[tokio::test]
async fn an_existing_member_signs_in_again_and_owner_actions_need_a_step_up() {
    let Some(s) = Setup::start(&[MAIN]).await else {
        return;
    };
    let key = s.ts.owner_key.clone();
    s.configure(&key, "edgekeep", &["example.com"]).await;
    s.invite(&key, "bob@example.com", "owner").await;
    let (_, first) = s.login(&s.ts.org_id, "bob").await;
    let first: SessionCreated = first.json().await.unwrap();
    let (browser, again) = s.login(&s.ts.org_id, "bob").await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: SessionCreated = again.json().await.unwrap();
    assert_eq!(again.user_id, first.user_id);
    assert_eq!(again.member_id, first.member_id);
    assert_ne!(again.session_id, first.session_id);
    assert_eq!(s.audit(&key, "login.oidc.ok").await.len(), 2);

    // Bob is linked to his subject: another account at the provider with his email is refused.
    let (_, other_account) = s.login(&s.ts.org_id, "bob2").await;
    common::assert_error(other_account, ErrorCode::IdpLoginRejected).await;
    let rejected = s.audit(&key, "login.oidc.rejected").await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].1,
        "idp_login_rejected:linked_to_another_subject"
    );

    // An Owner signed in by the provider has no step-up: the IdP configuration stays put.
    let response = browser
        .delete(s.ts.url("/v1/org/idp"))
        .header("origin", &s.ts.base)
        .header("x-csrf-token", &again.csrf_token)
        .send()
        .await
        .unwrap();
    common::assert_error(response, ErrorCode::StepUpRequired).await;
}

#[tokio::test]
async fn wrong_replayed_expired_and_unbound_states_are_refused() {
    let Some(s) = Setup::start_with(&[MAIN], |c| {
        c.sessions.ceremony_timeout = std::time::Duration::from_secs(3);
    })
    .await
    else {
        return;
    };
    let key = s.ts.owner_key.clone();
    s.configure(&key, "edgekeep", &["example.com"]).await;
    s.invite(&key, "alice@example.com", "member").await;

    // A state the server never issued.
    let browser = s.browser();
    let callback = s.authorize(&browser, &s.ts.org_id, "alice", |_| {}).await;
    let forged = reqwest::Url::parse(&callback).unwrap();
    let code: String = forged
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let fake_state = "ekc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    // (Another browser: any callback answer clears the binding cookie of the one that sent it.)
    let attacker = s.browser();
    let response = attacker
        .get(s.ts.url(&format!(
            "/v1/auth/oidc/callback?code={code}&state={fake_state}"
        )))
        .header("cookie", format!("__Host-ek_oidc={fake_state}"))
        .send()
        .await
        .unwrap();
    common::assert_error(response, ErrorCode::CeremonyInvalid).await;

    // Malformed: no state at all.
    let response = attacker
        .get(s.ts.url("/v1/auth/oidc/callback?code=x"))
        .send()
        .await
        .unwrap();
    common::assert_error(response, ErrorCode::BadRequest).await;

    // The genuine callback from another browser (login CSRF): not bound to it.
    let other = s.browser();
    let response = other.get(&callback).send().await.unwrap();
    common::assert_error(response, ErrorCode::CeremonyInvalid).await;

    // The genuine one works once; replayed (even with the binding cookie) it is refused.
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let state = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let response = browser
        .get(&callback)
        .header("cookie", format!("__Host-ek_oidc={state}"))
        .send()
        .await
        .unwrap();
    common::assert_error(response, ErrorCode::CeremonyInvalid).await;

    // An attempt that outlived the ceremony timeout.
    let browser = s.browser();
    let callback = s.authorize(&browser, &s.ts.org_id, "alice", |_| {}).await;
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    let response = browser.get(&callback).send().await.unwrap();
    common::assert_error(response, ErrorCode::CeremonyInvalid).await;
}

#[tokio::test]
async fn a_nonce_other_than_the_attempts_is_refused() {
    let Some(s) = Setup::start(&[MAIN]).await else {
        return;
    };
    let key = s.ts.owner_key.clone();
    s.configure(&key, "edgekeep", &["example.com"]).await;
    s.invite(&key, "alice@example.com", "member").await;
    let browser = s.browser();
    // The authorization request is altered on its way to the provider: another nonce (state
    // and PKCE challenge untouched), so the provider's ID token carries a foreign nonce.
    let callback = s
        .authorize(&browser, &s.ts.org_id, "alice", |url| {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "nonce" {
                        "attacker-nonce".into()
                    } else {
                        v
                    };
                    (k.into_owned(), v.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        })
        .await;
    let response = browser.get(&callback).send().await.unwrap();
    let message = common::assert_error(response, ErrorCode::IdTokenInvalid).await;
    assert!(message.contains("nonce"), "{message}");
    assert_eq!(
        s.audit(&key, "login.oidc.rejected").await,
        [("idp".to_owned(), "id_token_invalid:nonce".to_owned())]
    );
    let (_, invitations) = s.ts.call(Method::GET, "/v1/invitations", &key, None).await;
    assert!(
        invitations
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["accepted_at"].is_null()),
        "no partial account"
    );
}

/// Signs in through a client whose ID tokens the provider alters in one way; expects the
/// refusal `reason`.
async fn tampered(tamper: &'static str, reason: &str) {
    let client = Client {
        id: "edgekeep-tampered",
        tamper: Some(tamper),
    };
    let Some(s) = Setup::start(&[client]).await else {
        return;
    };
    let key = s.ts.owner_key.clone();
    s.configure(&key, "edgekeep-tampered", &["example.com"])
        .await;
    s.invite(&key, "alice@example.com", "member").await;
    let (browser, response) = s.login(&s.ts.org_id, "alice").await;
    common::assert_error(response, ErrorCode::IdTokenInvalid).await;
    assert_eq!(
        s.audit(&key, "login.oidc.rejected").await,
        [("idp".to_owned(), format!("id_token_invalid:{reason}"))]
    );
    let (status, _) = get_with(&browser, &s.ts, "/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no session");
    let (_, invitations) = s.ts.call(Method::GET, "/v1/invitations", &key, None).await;
    assert!(
        invitations
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["accepted_at"].is_null()),
        "no partial account"
    );
}

#[tokio::test]
async fn a_tampered_id_token_signature_is_refused() {
    tampered("signature", "signature").await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    tampered("expired", "expired").await;
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    tampered("audience", "audience").await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    tampered("issuer", "issuer").await;
}

#[tokio::test]
async fn unverified_and_foreign_domain_emails_and_strangers_are_refused() {
    let Some(s) = Setup::start(&[MAIN]).await else {
        return;
    };
    let key = s.ts.owner_key.clone();
    s.configure(&key, "edgekeep", &["example.com"]).await;
    s.invite(&key, "carol@example.com", "member").await;
    s.invite(&key, "dave@elsewhere.test", "member").await;

    let (_, response) = s.login(&s.ts.org_id, "carol").await;
    let message = common::assert_error(response, ErrorCode::IdpEmailRejected).await;
    assert!(message.contains("verified"), "{message}");
    let (_, response) = s.login(&s.ts.org_id, "dave").await;
    let message = common::assert_error(response, ErrorCode::IdpEmailRejected).await;
    assert!(message.contains("domain"), "{message}");
    // Verified, allowed domain, but neither a member nor invited.
    let (_, response) = s.login(&s.ts.org_id, "bob").await;
    common::assert_error(response, ErrorCode::IdpLoginRejected).await;
    let outcomes: Vec<String> = s
        .audit(&key, "login.oidc.rejected")
        .await
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            "idp_email_rejected:email_unverified",
            "idp_email_rejected:domain_not_allowed",
            "idp_login_rejected:not_invited"
        ]
    );
    let (_, invitations) = s.ts.call(Method::GET, "/v1/invitations", &key, None).await;
    assert!(
        invitations
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["accepted_at"].is_null())
    );
}

#[tokio::test]
async fn a_deactivated_person_is_refused() {
    let Some(s) = Setup::start(&[MAIN]).await else {
        return;
    };
    let key = s.ts.owner_key.clone();
    s.configure(&key, "edgekeep", &["example.com"]).await;
    s.invite(&key, "alice@example.com", "member").await;
    let (_, response) = s.login(&s.ts.org_id, "alice").await;
    let created: SessionCreated = response.json().await.unwrap();
    s.ts.deactivate_user(&created.user_id, now()).await;
    let (_, response) = s.login(&s.ts.org_id, "alice").await;
    common::assert_error(response, ErrorCode::IdpLoginRejected).await;
    assert_eq!(
        s.audit(&key, "login.oidc.rejected").await,
        [(
            format!("user:{}", created.user_id),
            "idp_login_rejected:deactivated".to_owned()
        )]
    );
}

#[tokio::test]
async fn org_b_identity_provider_cannot_sign_anyone_into_org_a() {
    let other = Client {
        id: "edgekeep-org-b",
        tamper: None,
    };
    let Some(s) = Setup::start(&[MAIN, other]).await else {
        return;
    };
    let key_a = s.ts.owner_key.clone();
    s.configure(&key_a, "edgekeep", &["example.com"]).await;
    s.invite(&key_a, "alice@example.com", "member").await;
    let (_, response) = s.login(&s.ts.org_id, "alice").await;
    assert_eq!(response.status(), StatusCode::OK);

    let org_b = s.ts.server.create_org("Org B").await.unwrap();
    let key_b = org_b.owner_api_key.clone();
    let (status, value) = s
        .configure(&key_b, "edgekeep-org-b", &["example.com"])
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    // Alice (a member of A only) through B's provider: refused, and no session anywhere.
    let (browser, response) = s.login(&org_b.org_id, "alice").await;
    common::assert_error(response, ErrorCode::IdpLoginRejected).await;
    let (status, _) = get_with(&browser, &s.ts, "/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.audit(&key_b, "login.oidc.rejected").await[0].1,
        "idp_login_rejected:existing_person_not_member"
    );
    // Even invited into B by B's Owner, an existing person is not linked by B's provider.
    s.invite(&key_b, "alice@example.com", "member").await;
    let (_, response) = s.login(&org_b.org_id, "alice").await;
    common::assert_error(response, ErrorCode::IdpLoginRejected).await;
    assert!(s.audit(&key_a, "login.oidc.rejected").await.is_empty());
}

#[tokio::test]
async fn configuration_is_owner_only_validated_audited_and_the_secret_sealed() {
    let Some(s) = Setup::start(&[MAIN]).await else {
        return;
    };
    let key = s.ts.owner_key.clone();
    let put = |body: Value| {
        let ts = &s.ts;
        let key = key.clone();
        async move { ts.call(Method::PUT, "/v1/org/idp", &key, Some(body)).await }
    };
    for bad in [
        json!({"issuer": "http://127.0.0.1:1", "client_id": "a", "client_secret": "b", "allowed_email_domains": ["example.com"]}),
        json!({"issuer": s.idp.issuer, "client_id": "", "client_secret": "b", "allowed_email_domains": ["example.com"]}),
        json!({"issuer": s.idp.issuer, "client_id": "a", "client_secret": "b", "allowed_email_domains": []}),
        json!({"issuer": s.idp.issuer, "client_id": "a", "client_secret": "b", "allowed_email_domains": ["*.example.com"]}),
    ] {
        let (status, value) = put(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    }
    // An issuer that does not answer discovery.
    let (status, value) = put(json!({"issuer": "https://127.0.0.1:9", "client_id": "a",
        "client_secret": "b", "allowed_email_domains": ["example.com"]}))
    .await;
    assert_eq!(value["code"], "idp_unavailable", "{status} {value}");
    let (status, value) = s.ts.call(Method::GET, "/v1/org/idp", &key, None).await;
    assert_eq!(value["code"], "idp_not_configured", "{status}");

    // A Member's key cannot configure it.
    let (_, member) =
        s.ts.call(
            Method::POST,
            "/v1/members",
            &key,
            Some(json!({"name": "m", "role": "member"})),
        )
        .await;
    let (_, member_key) =
        s.ts.call(
            Method::POST,
            "/v1/api-keys",
            &key,
            Some(json!({"member_id": member["id"], "name": "k"})),
        )
        .await;
    let member_key = member_key["secret"].as_str().expect("a member key");
    let (status, _) = s.configure(member_key, "edgekeep", &["example.com"]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = s.configure(&key, "edgekeep", &["example.com"]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, info) = s.ts.call(Method::GET, "/v1/org/idp", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["redirect_uri"], s.ts.url("/v1/auth/oidc/callback"));
    assert!(!info.to_string().contains(SECRET));
    let org = s.ts.org_id.clone();
    assert!(!s.ts.stored(move |st| st.sso_required(&org)).await.unwrap());

    // The secret is nowhere in the database files in plaintext.
    for entry in std::fs::read_dir(s.ts.data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{} holds the client secret",
                path.display()
            );
        }
    }
    let audit = s.ts.audit(&key).await;
    assert!(audit.iter().any(|e| e.action == "idp.configure"));
    assert!(!format!("{audit:?}").contains(SECRET));

    let (status, _) = s.ts.call(Method::DELETE, "/v1/org/idp", &key, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        s.ts.audit(&key)
            .await
            .iter()
            .any(|e| e.action == "idp.remove")
    );
    let response = s
        .browser()
        .get(s.ts.url(&format!("/v1/auth/oidc/{}/start", s.ts.org_id)))
        .send()
        .await
        .unwrap();
    common::assert_error(response, ErrorCode::IdpNotConfigured).await;
}
