//! Passkey sign-in over HTTPS (issue 13): the first Owner accepts the invitation `init`
//! printed, signs in again, steps up, adds and removes passkeys; bad ceremonies, tampered
//! responses, cross-origin finishes and deactivated people are refused and leave nothing.

mod common;

use common::TestServer;
use common::authenticator::{SoftAuthenticator, flip_byte};
use common::people::Person;
use edgekeep_protocol::api::Role;
use edgekeep_protocol::people::{CeremonyStarted, SESSION_COOKIE, SessionCreated};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ORIGIN: &str = "https://localhost:8443";

async fn server() -> TestServer {
    TestServer::start_with(|c| c.public_url = Some(ORIGIN.to_owned())).await
}

fn device() -> SoftAuthenticator {
    SoftAuthenticator::new(&url::Url::parse(ORIGIN).unwrap())
}

/// A POST from the server's own pages: JSON, `Origin`, and a session when given.
async fn post(
    server: &TestServer,
    path: &str,
    body: Value,
    session: Option<&Person>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = server
        .client
        .post(server.url(path))
        .header("origin", ORIGIN)
        .json(&body);
    if let Some(person) = session {
        request = request
            .header("cookie", format!("{SESSION_COOKIE}={}", person.secret))
            .header("x-csrf-token", &person.csrf);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, cookie, value)
}

fn person_from(created: &SessionCreated, cookie: &str) -> Person {
    let secret = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches(&format!("{SESSION_COOKIE}="))
        .to_owned();
    Person {
        user_id: created.user_id.clone(),
        member_id: created.member_id.clone(),
        org_id: created.org_id.clone(),
        session_id: created.session_id.clone(),
        secret,
        csrf: created.csrf_token.clone(),
    }
}

async fn begin(
    server: &TestServer,
    path: &str,
    body: Value,
    session: Option<&Person>,
) -> CeremonyStarted {
    let (status, _, value) = post(server, path, body, session).await;
    assert_eq!(status, StatusCode::OK, "{path}: {value}");
    serde_json::from_value(value).unwrap()
}

/// Accepts an invitation with a new passkey on `device`; returns the signed-in person.
async fn accept(server: &TestServer, token: &str, device: &mut SoftAuthenticator) -> Person {
    let started = begin(
        server,
        "/v1/auth/invitations/begin",
        json!({ "token": token, "display_name": "Ada Lovelace" }),
        None,
    )
    .await;
    let response = device.register(&started.options).await.unwrap();
    let (status, cookie, value) = post(
        server,
        "/v1/auth/invitations/finish",
        json!({ "ceremony": started.ceremony, "response": response, "name": "laptop" }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    person_from(&serde_json::from_value(value).unwrap(), &cookie.unwrap())
}

/// Signs in with a passkey on `device`.
async fn sign_in(
    server: &TestServer,
    device: &mut SoftAuthenticator,
    org: Option<&str>,
) -> (StatusCode, Option<Person>, Value) {
    let started = begin(
        server,
        "/v1/auth/passkey/begin",
        json!({ "org_id": org }),
        None,
    )
    .await;
    let response = device.authenticate(&started.options).await.unwrap();
    let (status, cookie, value) = post(
        server,
        "/v1/auth/passkey/finish",
        json!({ "ceremony": started.ceremony, "response": response }),
        None,
    )
    .await;
    let person = (status == StatusCode::CREATED).then(|| {
        person_from(
            &serde_json::from_value(value.clone()).unwrap(),
            &cookie.unwrap(),
        )
    });
    (status, person, value)
}

#[tokio::test]
async fn the_first_owner_accepts_the_init_invitation_and_signs_in_with_the_passkey() {
    let server = server().await;
    let mut laptop = device();
    let owner = accept(&server, &server.owner_invitation, &mut laptop).await;
    let (_, members) = server
        .call(Method::GET, "/v1/members", &server.owner_key, None)
        .await;
    assert_eq!(
        members.as_array().unwrap().len(),
        1,
        "the invitation links the existing Owner"
    );
    assert_eq!(owner.member_id, members[0]["id"].as_str().unwrap());
    let (status, me) = server
        .session_call(&owner, Method::GET, "/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "owner");
    assert_eq!(me["display_name"], "Ada Lovelace");

    let (status, _, value) = post(
        &server,
        "/v1/auth/invitations/begin",
        json!({ "token": server.owner_invitation, "display_name": "Mallory" }),
        None,
    )
    .await;
    assert_eq!(
        (status, value["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invitation_invalid")),
        "single use"
    );

    let (status, again, value) = sign_in(&server, &mut laptop, None).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let again = again.unwrap();
    assert_eq!(again.org_id, server.org_id);
    assert_ne!(again.session_id, owner.session_id);
    let admin = server.person(&server.owner_key, Role::Member, false).await;
    let (status, value) = server
        .session_call(
            &again,
            Method::PUT,
            &format!("/v1/members/{}/role", admin.member_id),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "signing in with a passkey is a step-up: {value}"
    );

    let actions: Vec<String> = server
        .audit(&server.owner_key)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "invitation.accept",
        "passkey.add",
        "session.start.invitation",
        "session.start.passkey",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} audited");
    }
}

#[tokio::test]
async fn a_second_passkey_needs_a_step_up_and_the_last_one_stays() {
    let server = server().await;
    let mut laptop = device();
    let owner = accept(&server, &server.owner_invitation, &mut laptop).await;
    let plain = server.another_session(&owner).await;

    let (status, _, value) = post(&server, "/v1/me/passkeys/begin", json!({}), Some(&plain)).await;
    assert_eq!(
        (status, value["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("step_up_required"))
    );
    let step = begin(&server, "/v1/auth/step-up/begin", json!({}), Some(&plain)).await;
    let response = laptop.authenticate(&step.options).await.unwrap();
    let (status, _, value) = post(
        &server,
        "/v1/auth/step-up/finish",
        json!({ "ceremony": step.ceremony, "response": response }),
        Some(&plain),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{value}");

    let mut phone = device();
    let add = begin(&server, "/v1/me/passkeys/begin", json!({}), Some(&plain)).await;
    let response = phone.register(&add.options).await.unwrap();
    let (status, _, added) = post(
        &server,
        "/v1/me/passkeys/finish",
        json!({ "ceremony": add.ceremony, "response": response, "name": "phone" }),
        Some(&plain),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let (status, signed_in, _) = sign_in(&server, &mut phone, Some(&server.org_id)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(signed_in.unwrap().user_id, owner.user_id);

    let (_, list) = server
        .session_call(&plain, Method::GET, "/v1/me/passkeys", None)
        .await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let id_of = |name: &str| {
        list.iter().find(|p| p["name"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (laptop_id, phone_id) = (id_of("laptop"), id_of("phone"));
    let (status, _) = server
        .session_call(
            &plain,
            Method::DELETE,
            &format!("/v1/me/passkeys/{laptop_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, value) = server
        .session_call(
            &plain,
            Method::DELETE,
            &format!("/v1/me/passkeys/{phone_id}"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the last passkey stays: {value}"
    );
    let (status, _, _) = sign_in(&server, &mut laptop, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a removed passkey no longer signs in"
    );
}

#[tokio::test]
async fn bad_ceremonies_and_responses_are_refused_and_leave_nothing() {
    let server = server().await;
    let mut laptop = device();
    let owner = accept(&server, &server.owner_invitation, &mut laptop).await;

    let (status, _, value) = post(
        &server,
        "/v1/auth/passkey/finish",
        json!({ "ceremony": format!("ekc_{}", "A".repeat(43)), "response": {} }),
        None,
    )
    .await;
    assert_eq!(
        (status, value["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("ceremony_invalid"))
    );

    let started = begin(&server, "/v1/auth/passkey/begin", json!({}), None).await;
    let response = laptop.authenticate(&started.options).await.unwrap();
    let mut tampered = response.clone();
    flip_byte(&mut tampered, "/response/signature", 8);
    let finish =
        |response: Value, ceremony: &str| json!({ "ceremony": ceremony, "response": response });
    let (status, _, value) = post(
        &server,
        "/v1/auth/passkey/finish",
        finish(tampered, &started.ceremony),
        None,
    )
    .await;
    assert_eq!(
        (status, value["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("passkey_rejected"))
    );
    let (status, _, value) = post(
        &server,
        "/v1/auth/passkey/finish",
        finish(response, &started.ceremony),
        None,
    )
    .await;
    assert_eq!(
        (status, value["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("ceremony_invalid")),
        "a ceremony is single use, even after a failure"
    );
    let audit = server.audit(&server.owner_key).await;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "login.passkey.rejected" && e.outcome == "passkey_rejected")
    );

    let started = begin(&server, "/v1/auth/passkey/begin", json!({}), None).await;
    let response = laptop.authenticate(&started.options).await.unwrap();
    let cross = server
        .client
        .post(server.url("/v1/auth/passkey/finish"))
        .header("origin", "https://evil.example")
        .json(&finish(response.clone(), &started.ceremony))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross.status(),
        StatusCode::FORBIDDEN,
        "login CSRF: a finish from another site"
    );

    let (_, invited) = server
        .call(
            Method::POST,
            "/v1/invitations",
            &server.owner_key,
            Some(json!({"role": "member"})),
        )
        .await;
    let token = invited["token"].as_str().unwrap();
    let registration = begin(
        &server,
        "/v1/auth/invitations/begin",
        json!({"token": token, "display_name": "Bob"}),
        None,
    )
    .await;
    let (status, _, _) = post(
        &server,
        "/v1/auth/passkey/finish",
        finish(response, &registration.ceremony),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an invitation ceremony does not finish a login"
    );
    let registration = begin(
        &server,
        "/v1/auth/invitations/begin",
        json!({"token": token, "display_name": "Bob"}),
        None,
    )
    .await;
    let mut bob = device();
    let mut created = bob.register(&registration.options).await.unwrap();
    flip_byte(&mut created, "/response/clientDataJSON", 12);
    let (status, _, _) = post(
        &server,
        "/v1/auth/invitations/finish",
        finish(created, &registration.ceremony),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, members) = server
        .call(Method::GET, "/v1/members", &server.owner_key, None)
        .await;
    assert_eq!(
        members.as_array().unwrap().len(),
        1,
        "a refused acceptance adds nobody"
    );
    let (_, list) = server
        .call(Method::GET, "/v1/invitations", &server.owner_key, None)
        .await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == invited["invitation"]["id"] && i["accepted_at"].is_null())
    );

    server.deactivate_user(&owner.user_id, 1).await;
    let (status, _, _) = sign_in(&server, &mut laptop, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a deactivated person cannot sign in"
    );
}

#[tokio::test]
async fn an_invitation_bound_to_an_email_needs_that_email() {
    let server = server().await;
    let (_, invited) = server
        .call(
            Method::POST,
            "/v1/invitations",
            &server.owner_key,
            Some(json!({"role": "member", "email": "grace@example.com"})),
        )
        .await;
    let token = invited["token"].as_str().unwrap();
    let (status, _, value) = post(
        &server,
        "/v1/auth/invitations/begin",
        json!({"token": token, "display_name": "G", "email": "eve@example.com"}),
        None,
    )
    .await;
    assert_eq!(
        (status, value["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invitation_invalid"))
    );
    let (status, _, _) = post(
        &server,
        "/v1/auth/invitations/begin",
        json!({"token": token, "display_name": "G", "email": "Grace@Example.com"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn sign_in_starts_are_throttled_per_address() {
    let server = TestServer::start_with(|c| {
        c.public_url = Some(ORIGIN.to_owned());
        c.rate_limits.sign_in_starts_per_address = 3;
    })
    .await;
    for _ in 0..3 {
        let (status, _, value) = post(&server, "/v1/auth/passkey/begin", json!({}), None).await;
        assert_eq!(status, StatusCode::OK, "{value}");
    }
    let (status, _, value) = post(&server, "/v1/auth/passkey/begin", json!({}), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{value}");
    let invitation = json!({"token": server.owner_invitation, "display_name": "Ada"});
    let (status, _, _) = post(&server, "/v1/auth/invitations/begin", invitation, None).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "one budget for every sign-in start"
    );
    let oidc = server
        .client
        .get(server.url(&format!("/v1/auth/oidc/{}/start", server.org_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(oidc.status(), StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = server
        .call(Method::GET, "/v1/org", &server.owner_key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "other requests are not throttled");
}
