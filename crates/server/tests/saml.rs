//! SAML 2.0 Web Browser SSO against a real identity provider: pysaml2's IdP signing with xmlsec1
//! (tests/fixtures/saml/idp.py; both installed by scripts/test-deps). The test plays the
//! browser: it follows the server's redirect as far as the `SAMLRequest`, hands that to the IdP,
//! and posts the IdP's response to the org's ACS as the IdP's form would.
//!
//! The attacks start from genuine signed responses: tampered values, a stripped signature,
//! signature wrapping (a second assertion, a moved signature, a duplicated ID, a comment inside
//! the name), the wrong key, another org's assertion, replays, and the validity window.
//!
//! Skipped with a message only when python3 with pysaml2 or xmlsec1 is missing and
//! `EDGEKEEP_REQUIRE_SAML` is unset; scripts/test (and so CI) sets it.

#![cfg(feature = "saml")]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::{TestServer, now};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::people::SessionCreated;
use edgekeep_server::identity::saml::{self, SamlRejection, SigningKey, SpEndpoints};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const IDP_ENTITY: &str = "https://idp.test/metadata";
const IDP_SSO: &str = "https://idp.test/sso";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saml/idp.py")
}

/// Whether the real IdP can run here; panics when it cannot but must.
fn idp_available() -> bool {
    let pysaml2 = Command::new("python3")
        .args(["-c", "import saml2, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    let xmlsec = Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if pysaml2 && xmlsec {
        return true;
    }
    assert!(
        std::env::var_os("EDGEKEEP_REQUIRE_SAML").is_none(),
        "EDGEKEEP_REQUIRE_SAML is set but pysaml2 or xmlsec1 is missing (run scripts/test-deps)"
    );
    eprintln!("SKIPPED: pysaml2 or xmlsec1 is missing; run scripts/test-deps to test SAML login");
    false
}

/// The running IdP; killed on drop.
struct Idp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    main_pem: String,
    other_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .arg("-W")
            .arg("ignore")
            .arg(fixture())
            .args(["--entity-id", IDP_ENTITY, "--dir"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let stderr = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap();
            panic!("the SAML IdP did not start: {line:?} {stderr}")
        });
        Self {
            child,
            stdin,
            stdout,
            main_pem: ready["certificates"]["main"].as_str().unwrap().to_owned(),
            other_pem: ready["certificates"]["other"].as_str().unwrap().to_owned(),
            _dir: dir,
        }
    }

    fn ask(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(answer.get("error").is_none(), "the IdP failed: {answer}");
        answer
    }

    fn add_sp(&mut self, metadata: &str) {
        self.ask(json!({"op": "add_sp", "metadata": metadata}));
    }

    /// The base64 `SAMLResponse` for `saml_request`, about `email`, signed by `signer`.
    fn respond(&mut self, saml_request: &str, email: &str, signer: &str) -> String {
        self.respond_as(saml_request, email, signer, None)
    }

    /// [`Self::respond`], naming the person by a persistent `NameID` when given.
    fn respond_as(
        &mut self,
        saml_request: &str,
        email: &str,
        signer: &str,
        persistent_id: Option<&str>,
    ) -> String {
        let answer = self.ask(json!({"op": "respond", "saml_request": saml_request,
            "email": email, "name": "Sam L. Person", "signer": signer,
            "persistent_id": persistent_id}));
        answer["saml_response"].as_str().unwrap().to_owned()
    }
}

/// A server with org A (and org B) using the IdP.
struct Setup {
    ts: TestServer,
    idp: Idp,
    org_b: edgekeep_server::data_dir::OrgCreated,
}

impl Setup {
    async fn start() -> Option<Self> {
        if !idp_available() {
            return None;
        }
        let ts = TestServer::start().await;
        let idp = Idp::start();
        let org_b = ts.server.create_org("Org B").await.unwrap();
        let mut setup = Self { ts, idp, org_b };
        let owner = setup.ts.owner_key.clone();
        let org_b_owner = setup.org_b.owner_api_key.clone();
        let pem = setup.idp.main_pem.clone();
        for key in [&owner, &org_b_owner] {
            let (status, value) = setup.configure(key, &pem, false).await;
            assert_eq!(status, StatusCode::OK, "{value}");
            let metadata = setup
                .ts
                .client
                .get(value["metadata_url"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(
                metadata.headers()["content-type"],
                "application/samlmetadata+xml"
            );
            let metadata = metadata.text().await.unwrap();
            setup.idp.add_sp(&metadata);
        }
        Some(setup)
    }

    async fn configure(&self, key: &str, pem: &str, sso_required: bool) -> (StatusCode, Value) {
        self.ts
            .call(
                Method::PUT,
                "/v1/org/saml",
                key,
                Some(json!({"idp_entity_id": IDP_ENTITY, "sso_url": IDP_SSO,
                    "certificate_pem": pem, "allowed_email_domains": ["example.com"],
                    "sso_required": sso_required})),
            )
            .await
    }

    async fn invite(&self, key: &str, email: &str) {
        let (status, value) = self
            .ts
            .call(
                Method::POST,
                "/v1/invitations",
                key,
                Some(json!({"email": email, "role": "member"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }

    fn browser(&self) -> reqwest::Client {
        self.ts.browser(&[])
    }

    /// Starts a sign-in to `org_id` in `browser`; returns the `SAMLRequest` sent to the IdP.
    async fn start_login(&self, browser: &reqwest::Client, org_id: &str) -> String {
        let start = browser
            .get(self.ts.url(&format!("/v1/auth/saml/{org_id}/start")))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::FOUND);
        let location = common::location(&start);
        let url = reqwest::Url::parse(location).unwrap();
        assert!(location.starts_with(IDP_SSO), "{location}");
        url.query_pairs()
            .find(|(name, _)| name == "SAMLRequest")
            .unwrap()
            .1
            .into_owned()
    }

    /// Posts a `SAMLResponse` to `org_id`'s ACS as the IdP's form does.
    async fn post(
        &self,
        browser: &reqwest::Client,
        org_id: &str,
        response: &str,
    ) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", response)
            .append_pair("RelayState", "")
            .finish();
        browser
            .post(self.ts.url(&format!("/v1/auth/saml/{org_id}/acs")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "https://idp.test")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A new browser's sign-in to org A as `email`, with `edit` applied to the decoded
    /// response XML before it is posted.
    async fn login_edited(
        &mut self,
        email: &str,
        signer: &str,
        edit: impl FnOnce(String) -> String,
    ) -> (reqwest::Client, reqwest::Response) {
        let browser = self.browser();
        let org = self.ts.org_id.clone();
        let request = self.start_login(&browser, &org).await;
        let response = self.idp.respond(&request, email, signer);
        let edited = encode(&edit(decode(&response)));
        let answer = self.post(&browser, &org, &edited).await;
        (browser, answer)
    }

    /// A genuine response for a fresh attempt of `browser` in `org_id`.
    async fn genuine(&mut self, browser: &reqwest::Client, org_id: &str, email: &str) -> String {
        let request = self.start_login(browser, org_id).await;
        self.idp.respond(&request, email, "main")
    }

    async fn rejections(&self, key: &str) -> Vec<String> {
        self.ts
            .audit(key)
            .await
            .into_iter()
            .filter(|entry| entry.action == "login.saml.rejected")
            .map(|entry| entry.outcome)
            .collect()
    }
}

fn decode(response: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(response)
            .unwrap(),
    )
    .unwrap()
}

fn encode(xml: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(xml)
}

/// The byte range of the element named `local` (any prefix), from its `<` to the end of its
/// closing tag. The first one, or the `nth`.
fn element(xml: &str, local: &str, nth: usize) -> std::ops::Range<usize> {
    let mut from = 0;
    let mut found = None;
    for _ in 0..=nth {
        let open = (from..xml.len())
            .find(|&i| {
                xml[i..].starts_with('<') && {
                    let name: String = xml[i + 1..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                        .collect();
                    name == local || name.ends_with(&format!(":{local}"))
                }
            })
            .unwrap_or_else(|| panic!("no {local} in {xml}"));
        found = Some(open);
        from = open + 1;
    }
    let open = found.unwrap();
    let qname: String = xml[open + 1..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    let close = format!("</{qname}>");
    let end = xml[open..].find(&close).unwrap() + open + close.len();
    open..end
}

fn assertion(xml: &str) -> &str {
    &xml[element(xml, "Assertion", 0)]
}

fn without_signature(assertion: &str) -> String {
    let range = element(assertion, "Signature", 0);
    format!("{}{}", &assertion[..range.start], &assertion[range.end..])
}

fn with_id(assertion: &str, id: &str) -> String {
    let start = assertion.find(" ID=\"").unwrap() + 5;
    let end = start + assertion[start..].find('"').unwrap();
    format!("{}{id}{}", &assertion[..start], &assertion[end..])
}

/// `xml` without the first attribute called `name` (the envelope's, as the root comes first).
fn without_first_attribute(xml: &str, name: &str) -> String {
    let start = xml.find(&format!(" {name}=\"")).unwrap();
    let value = start + name.len() + 3;
    let end = value + xml[value..].find('"').unwrap() + 1;
    format!("{}{}", &xml[..start], &xml[end..])
}

fn assertion_id(assertion: &str) -> String {
    let start = assertion.find(" ID=\"").unwrap() + 5;
    let end = start + assertion[start..].find('"').unwrap();
    assertion[start..end].to_owned()
}

#[tokio::test]
async fn an_invited_person_signs_in_and_a_member_signs_in_again() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let owner = s.ts.owner_key.clone();
    s.invite(&owner, "sam@example.com").await;
    let (browser, response) = s.login_edited("Sam@Example.com", "main", |xml| xml).await;
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-ek_session="))
    );
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-ek_saml=;"))
    );
    let created: SessionCreated = response.json().await.unwrap();
    let me = browser.get(s.ts.url("/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "sam@example.com");
    assert_eq!(me["display_name"], "Sam L. Person");
    assert_eq!(created.org_id, s.ts.org_id);

    let (_, again) = s.login_edited("sam@example.com", "main", |xml| xml).await;
    assert_eq!(again.status(), StatusCode::OK);
    let second: SessionCreated = again.json().await.unwrap();
    assert_eq!(second.user_id, created.user_id);

    let actions: Vec<String> =
        s.ts.audit(&owner)
            .await
            .into_iter()
            .map(|e| e.action)
            .collect();
    assert_eq!(actions.iter().filter(|a| *a == "login.saml.ok").count(), 2);
    assert!(actions.iter().any(|a| a == "invitation.accept"));
}

#[tokio::test]
async fn nobody_uninvited_gets_in_and_the_email_is_not_echoed() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let (_, response) = s
        .login_edited("stranger@example.com", "main", |xml| xml)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let text = response.text().await.unwrap();
    assert!(text.contains("idp_login_rejected"), "{text}");
    assert!(!text.contains("stranger"), "{text}");
    let (_, response) = s
        .login_edited("sam@elsewhere.test", "main", |xml| xml)
        .await;
    common::assert_error(response, ErrorCode::IdpEmailRejected).await;
    let owner = s.ts.owner_key.clone();
    assert_eq!(
        s.rejections(&owner).await,
        [
            "idp_login_rejected:not_invited",
            "idp_email_rejected:domain_not_allowed"
        ]
    );
}

#[tokio::test]
async fn tampered_and_unsigned_assertions_are_refused() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let owner = s.ts.owner_key.clone();
    s.invite(&owner, "victim@example.com").await;

    let (_, tampered) = s
        .login_edited("mallory@example.com", "main", |xml| {
            xml.replace("mallory@example.com", "victim@example.com")
        })
        .await;
    common::assert_error(tampered, ErrorCode::AssertionInvalid).await;

    let (_, unsigned) = s
        .login_edited("victim@example.com", "main", |xml| {
            let a = assertion(&xml).to_owned();
            xml.replace(&a, &without_signature(&a))
        })
        .await;
    common::assert_error(unsigned, ErrorCode::AssertionInvalid).await;

    let (_, wrong_key) = s
        .login_edited("victim@example.com", "other", |xml| xml)
        .await;
    common::assert_error(wrong_key, ErrorCode::AssertionInvalid).await;

    let (_, sha1) = s
        .login_edited("victim@example.com", "sha1", |xml| xml)
        .await;
    common::assert_error(sha1, ErrorCode::AssertionInvalid).await;

    assert_eq!(
        s.rejections(&owner).await,
        [
            "assertion_invalid:digest",
            "assertion_invalid:unsigned",
            "assertion_invalid:signature",
            "assertion_invalid:algorithm"
        ]
    );
}

#[tokio::test]
async fn signature_wrapping_is_refused() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let owner = s.ts.owner_key.clone();
    s.invite(&owner, "victim@example.com").await;
    let evil = |a: &str| a.replace("mallory@example.com", "victim@example.com");

    // A forged, unsigned assertion beside the signed one.
    let (_, two) = s
        .login_edited("mallory@example.com", "main", |xml| {
            let a = assertion(&xml).to_owned();
            let forged = with_id(&without_signature(&evil(&a)), "forged");
            xml.replace(&a, &format!("{forged}{a}"))
        })
        .await;
    common::assert_error(two, ErrorCode::AssertionInvalid).await;

    // The forged assertion carries the genuine signature, the genuine assertion hidden in it.
    let (_, moved) = s
        .login_edited("mallory@example.com", "main", |xml| {
            let a = assertion(&xml).to_owned();
            let signature = &a[element(&a, "Signature", 0)];
            let forged = with_id(&evil(&a), "forged");
            let hidden = without_signature(&a);
            let forged = forged.replacen(signature, &format!("{signature}{hidden}"), 1);
            xml.replace(&a, &forged)
        })
        .await;
    common::assert_error(moved, ErrorCode::AssertionInvalid).await;

    // The forged assertion keeps the genuine one's ID and signature; the genuine one moves
    // into the response's Extensions, where a resolver by ID might find it.
    let (_, same_id) = s
        .login_edited("mallory@example.com", "main", |xml| {
            let a = assertion(&xml).to_owned();
            let forged = evil(&a);
            let status = element(&xml, "Status", 0);
            let end = xml.find(":Response").unwrap();
            let prefix = &xml[xml[..end].rfind('<').unwrap() + 1..end];
            let moved = xml.replace(&a, &forged);
            let at = moved.find(&xml[status.clone()]).unwrap();
            format!(
                "{}<{prefix}:Extensions>{a}</{prefix}:Extensions>{}",
                &moved[..at],
                &moved[at..]
            )
        })
        .await;
    common::assert_error(same_id, ErrorCode::AssertionInvalid).await;

    // A comment splits the signed name: c14n drops comments, so the signature still holds,
    // and only the whole signed text may be read (victim@example.com.evil.test, not victim).
    let (_, comment) = s
        .login_edited("victim@example.com.evil.test", "main", |xml| {
            xml.replace(
                "victim@example.com.evil.test",
                "victim@example.com<!---->.evil.test",
            )
        })
        .await;
    common::assert_error(comment, ErrorCode::IdpEmailRejected).await;

    // The second `reference` refusal is identical to the first, so the audit throttle counts
    // it into the first entry's window instead of writing a row.
    assert_eq!(
        s.rejections(&owner).await,
        [
            "assertion_invalid:structure",
            "assertion_invalid:reference",
            "idp_email_rejected:domain_not_allowed"
        ]
    );
}

#[tokio::test]
async fn replays_and_other_orgs_and_other_browsers_are_refused() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let owner = s.ts.owner_key.clone();
    let org_a = s.ts.org_id.clone();
    let org_b = s.org_b.org_id.clone();
    s.invite(&owner, "sam@example.com").await;
    s.invite(&s.org_b.owner_api_key.clone(), "sam@example.com")
        .await;

    let browser = s.browser();
    let response = s.genuine(&browser, &org_a, "sam@example.com").await;
    assert_eq!(
        s.post(&browser, &org_a, &response).await.status(),
        StatusCode::OK
    );
    // The same response again: the attempt is used.
    common::assert_error(
        s.post(&browser, &org_a, &response).await,
        ErrorCode::CeremonyInvalid,
    )
    .await;
    // The same response for a new attempt: it answers another request.
    s.start_login(&browser, &org_a).await;
    common::assert_error(
        s.post(&browser, &org_a, &response).await,
        ErrorCode::AssertionInvalid,
    )
    .await;

    // Org A's assertion posted to org B's ACS with an org B attempt.
    let other = s.browser();
    let for_a = s.genuine(&other, &org_a, "sam@example.com").await;
    s.start_login(&other, &org_b).await;
    common::assert_error(
        s.post(&other, &org_b, &for_a).await,
        ErrorCode::AssertionInvalid,
    )
    .await;
    // The same with the unsigned envelope's Destination and InResponseTo dropped: the signed
    // audience refuses it.
    let for_a = s.genuine(&other, &org_a, "sam@example.com").await;
    let undirected = encode(&without_first_attribute(
        &without_first_attribute(&decode(&for_a), "Destination"),
        "InResponseTo",
    ));
    s.start_login(&other, &org_b).await;
    common::assert_error(
        s.post(&other, &org_b, &undirected).await,
        ErrorCode::AssertionInvalid,
    )
    .await;

    // A response posted from a browser that never started an attempt (login CSRF).
    let victim = s.browser();
    let attacker = s.browser();
    let attackers = s.genuine(&attacker, &org_a, "sam@example.com").await;
    common::assert_error(
        s.post(&victim, &org_a, &attackers).await,
        ErrorCode::CeremonyInvalid,
    )
    .await;

    assert_eq!(
        s.rejections(&owner).await,
        ["assertion_invalid:in_response_to"]
    );
    let org_b_rejections = s.rejections(&s.org_b.owner_api_key.clone()).await;
    assert_eq!(
        org_b_rejections,
        ["assertion_invalid:recipient", "assertion_invalid:audience"]
    );
}

/// The validity window, the audience and the request binding, checked on genuine responses
/// through the verifier itself (the server's clock cannot be moved).
#[tokio::test]
async fn the_validity_window_audience_and_request_are_checked() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let org = s.ts.org_id.clone();
    let browser = s.browser();
    let request = s.start_login(&browser, &org).await;
    let xml = decode(&s.idp.respond(&request, "sam@example.com", "main"));
    let key = SigningKey::from_pem(&s.idp.main_pem).unwrap();
    let request_id = {
        use base64::Engine as _;
        use std::io::Read as _;
        let deflated = base64::engine::general_purpose::STANDARD
            .decode(&request)
            .unwrap();
        let mut text = String::new();
        flate2::read::DeflateDecoder::new(&deflated[..])
            .read_to_string(&mut text)
            .unwrap();
        let start = text.find(" ID=\"").unwrap() + 5;
        text[start..start + text[start..].find('"').unwrap()].to_owned()
    };
    let entity_id = format!("{}/v1/auth/saml/{org}/metadata", s.ts.origin);
    let acs_url = format!("{}/v1/auth/saml/{org}/acs", s.ts.origin);
    let sp = SpEndpoints {
        entity_id: &entity_id,
        acs_url: &acs_url,
    };
    let verify = |sp: SpEndpoints<'_>, request_id: &str, at: i64| {
        saml::verify_response(&xml, IDP_ENTITY, &key, sp, request_id, at)
    };
    let identity = verify(sp, &request_id, now()).unwrap();
    assert_eq!(identity.email.as_deref(), Some("sam@example.com"));
    assert_eq!(identity.assertion_id, assertion_id(assertion(&xml)));
    assert!(identity.valid_until > now() && identity.valid_until <= now() + 6 * 60);

    assert_eq!(
        verify(sp, &request_id, now() + 3600),
        Err(SamlRejection::Expired)
    );
    assert_eq!(
        verify(sp, &request_id, now() - 3600),
        Err(SamlRejection::NotYetValid)
    );
    assert_eq!(
        verify(sp, "ekc_other", now()),
        Err(SamlRejection::InResponseTo)
    );
    let elsewhere = SpEndpoints {
        entity_id: "https://sp.test/other",
        acs_url: &acs_url,
    };
    assert_eq!(
        verify(elsewhere, &request_id, now()),
        Err(SamlRejection::Audience)
    );
    let other_issuer =
        saml::verify_response(&xml, "https://idp.test/other", &key, sp, &request_id, now());
    assert_eq!(other_issuer, Err(SamlRejection::Issuer));
    let other_key = SigningKey::from_pem(&s.idp.other_pem).unwrap();
    assert!(matches!(
        saml::verify_response(&xml, IDP_ENTITY, &other_key, sp, &request_id, now()),
        Err(SamlRejection::Signature(_))
    ));
    let with_dtd = format!("<!DOCTYPE r [<!ENTITY x \"y\">]>{xml}");
    assert_eq!(
        saml::verify_response(&with_dtd, IDP_ENTITY, &key, sp, &request_id, now()),
        Err(SamlRejection::Malformed)
    );
}

#[tokio::test]
async fn configuration_is_owner_only_and_checks_the_certificate() {
    let Some(s) = Setup::start().await else {
        return;
    };
    let admin =
        s.ts.person(&s.ts.owner_key, edgekeep_protocol::api::Role::Admin, true)
            .await;
    let pem = s.idp.main_pem.clone();
    let body = json!({"idp_entity_id": IDP_ENTITY, "sso_url": IDP_SSO,
        "certificate_pem": pem, "allowed_email_domains": ["example.com"]});
    let (status, _) =
        s.ts.session_call(&admin, Method::PUT, "/v1/org/saml", Some(body))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, info) =
        s.ts.session_call(&admin, Method::GET, "/v1/org/saml", None)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        info["certificate_sha256"],
        SigningKey::from_pem(&pem).unwrap().fingerprint()
    );
    assert_eq!(
        info["acs_url"],
        format!("{}/v1/auth/saml/{}/acs", s.ts.origin, s.ts.org_id)
    );

    let owner = s.ts.owner_key.clone();
    let not_a_certificate = pem.replace("CERTIFICATE", "PUBLIC KEY");
    let (status, value) = s.configure(&owner, &not_a_certificate, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    let (status, _) =
        s.ts.call(
            Method::PUT,
            "/v1/org/saml",
            &owner,
            Some(
                json!({"idp_entity_id": IDP_ENTITY, "sso_url": "http://idp.test/sso",
                "certificate_pem": pem, "allowed_email_domains": ["example.com"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = s.configure(&owner, &pem, true).await;
    assert_eq!(status, StatusCode::OK);
    let org = s.ts.org_id.clone();
    assert!(s.ts.stored(move |st| st.sso_required(&org)).await.unwrap());

    let (status, _) =
        s.ts.call(Method::DELETE, "/v1/org/saml", &owner, None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let metadata =
        s.ts.client
            .get(s.ts.url(&format!("/v1/auth/saml/{}/metadata", s.ts.org_id)))
            .send()
            .await
            .unwrap();
    common::assert_error(metadata, ErrorCode::IdpNotConfigured).await;
    let actions: Vec<String> =
        s.ts.audit(&owner)
            .await
            .into_iter()
            .map(|e| e.action)
            .collect();
    assert!(actions.iter().any(|a| a == "saml.configure"));
    assert!(actions.iter().any(|a| a == "saml.remove"));
}

/// Org B's IdP can vouch for a person in org B only: the session it starts cannot switch into
/// org A, see or end the person's org A sessions, or touch the person's passkeys.
#[tokio::test]
async fn a_session_from_an_org_idp_acts_only_in_that_org() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let in_a =
        s.ts.person(&s.ts.owner_key, edgekeep_protocol::api::Role::Member, false)
            .await;
    let user_id = in_a.user_id.clone();
    let email =
        s.ts.stored(move |st| st.user(&user_id))
            .await
            .unwrap()
            .unwrap()
            .email
            .unwrap();
    let org_b_key = s.org_b.owner_api_key.clone();
    let (status, value) =
        s.ts.call(
            Method::POST,
            "/v1/invitations",
            &org_b_key,
            Some(json!({"email": email, "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    s.ts.accept(value["token"].as_str().unwrap(), Some(&in_a.user_id), false)
        .await;

    let browser = s.browser();
    let org_b = s.org_b.org_id.clone();
    let response = s.genuine(&browser, &org_b, &email).await;
    let signed_in = s.post(&browser, &org_b, &response).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let created: SessionCreated = signed_in.json().await.unwrap();
    let write = |method: Method, path: &str| {
        browser
            .request(method, s.ts.url(path))
            .header("x-csrf-token", &created.csrf_token)
            .header("origin", &s.ts.origin)
    };

    let switch = write(Method::POST, "/v1/auth/switch-org")
        .json(&json!({"org_id": s.ts.org_id}))
        .send()
        .await
        .unwrap();
    common::assert_error(switch, ErrorCode::Forbidden).await;
    let sessions: Vec<Value> = browser
        .get(s.ts.url("/v1/me/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!sessions.is_empty());
    assert!(
        sessions
            .iter()
            .all(|session| session["org_id"] == org_b.as_str())
    );
    let revoke = write(
        Method::DELETE,
        &format!("/v1/me/sessions/{}", in_a.session_id),
    )
    .send()
    .await
    .unwrap();
    common::assert_error(revoke, ErrorCode::NotFound).await;
    let passkeys = browser
        .get(s.ts.url("/v1/me/passkeys"))
        .send()
        .await
        .unwrap();
    common::assert_error(passkeys, ErrorCode::Forbidden).await;
    let logout_all = write(Method::POST, "/v1/auth/logout-all")
        .send()
        .await
        .unwrap();
    assert_eq!(logout_all.status(), StatusCode::NO_CONTENT);

    let (status, _) = s.ts.session_call(&in_a, Method::GET, "/v1/me", None).await;
    assert_eq!(status, StatusCode::OK, "the org A session survives");
    let (status, all) =
        s.ts.session_call(&in_a, Method::GET, "/v1/me/sessions", None)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|session| session["org_id"] != org_b.as_str()),
        "the org B sessions ended: {all}"
    );
}

/// A persistent `NameID` links the person: it keeps signing them in when the IdP's email for
/// them changes, and another IdP account asserting their email is refused.
#[tokio::test]
async fn a_persistent_name_id_links_the_person() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let owner = s.ts.owner_key.clone();
    let org = s.ts.org_id.clone();
    s.invite(&owner, "sam@example.com").await;
    let mut login = async |email: &str, persistent_id: &str| {
        let browser = s.browser();
        let request = s.start_login(&browser, &org).await;
        let response = s
            .idp
            .respond_as(&request, email, "main", Some(persistent_id));
        s.post(&browser, &org, &response).await
    };
    let first = login("sam@example.com", "p-7781").await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: SessionCreated = first.json().await.unwrap();
    let renamed = login("samuel@example.com", "p-7781").await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let renamed: SessionCreated = renamed.json().await.unwrap();
    assert_eq!(renamed.user_id, first.user_id);
    let other_account = login("sam@example.com", "p-0042").await;
    common::assert_error(other_account, ErrorCode::IdpLoginRejected).await;
    assert_eq!(
        s.rejections(&owner).await,
        ["idp_login_rejected:linked_to_another_subject"]
    );
}
