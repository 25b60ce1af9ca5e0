//! People's sessions (issue 13): a session cookie authenticates like an API key of the
//! member's role, within one org; cookie-authenticated writes need the CSRF token and the
//! server's origin; Owner-level actions need a recent step-up; sessions end by timeout,
//! revocation, logout, removal of the member and deactivation of the person.

mod common;

use std::time::Duration;

use common::TestServer;
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::Role;
use edgekeep_protocol::people::{InvitationInfo, MeInfo, SessionCreated, SessionInfo};
use reqwest::{Method, StatusCode};

fn code(value: &serde_json::Value) -> &str {
    value["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_session_acts_with_its_members_role_in_its_org_only() {
    let server = TestServer::start().await;
    let member = server.person(&server.owner_key, Role::Member, false).await;
    let (status, org) = server
        .session_call(&member, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(org["id"], server.org_id.as_str());
    let (status, me) = server
        .session_call(&member, Method::GET, "/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let me: MeInfo = serde_json::from_value(me).unwrap();
    assert_eq!((me.role, me.memberships.len()), (Role::Member, 1));

    let (status, body) = server
        .session_call(&member, Method::GET, "/v1/audit", None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a Member session cannot read the audit trail: {body}"
    );
    let (status, _) = server
        .session_call(
            &member,
            Method::POST,
            "/v1/bootstrap-tokens",
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a Member session mints bootstrap tokens like a Member key"
    );

    let other = server.server.create_org("Org B").await.unwrap();
    let token = server.bootstrap(&other.owner_api_key, None).await;
    let device = server.enroll(&other.org_id, &token).await;
    let (status, _) = server
        .session_call(
            &member,
            Method::GET,
            &format!("/v1/devices/{}", device.id),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another org's device is invisible"
    );
}

#[tokio::test]
async fn an_owner_of_two_orgs_acts_in_each_only_through_that_orgs_session() {
    let server = TestServer::start().await;
    let owner_a = server.person(&server.owner_key, Role::Owner, true).await;
    let other = server.server.create_org("Org B").await.unwrap();
    let (status, value) = server
        .call(
            Method::POST,
            "/v1/invitations",
            &other.owner_api_key,
            Some(serde_json::json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let owner_b = server
        .accept(
            value["token"].as_str().unwrap(),
            Some(&owner_a.user_id),
            true,
        )
        .await;
    assert_eq!(owner_b.org_id, other.org_id);

    let b_token = server.bootstrap(&other.owner_api_key, None).await;
    let b_device = server.enroll(&other.org_id, &b_token).await;
    let revoke = format!("/v1/devices/{}/revoke", b_device.id);
    let (status, _) = server
        .session_call(&owner_a, Method::POST, &revoke, None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "org A's session cannot touch org B, whoever holds it"
    );
    let (status, _) = server
        .session_call(&owner_b, Method::POST, &revoke, None)
        .await;
    assert_eq!(status, StatusCode::OK, "org B's session can");

    let (_, me) = server
        .session_call(&owner_a, Method::GET, "/v1/me", None)
        .await;
    let me: MeInfo = serde_json::from_value(me).unwrap();
    assert_eq!(me.memberships.len(), 2);
    assert_eq!(me.org_id, server.org_id);
}

#[tokio::test]
async fn cookie_authenticated_writes_need_the_csrf_token_and_the_servers_origin() {
    let server = TestServer::start().await;
    let admin = server.person(&server.owner_key, Role::Admin, false).await;
    let body = || Some(serde_json::json!({}));
    let path = "/v1/bootstrap-tokens";
    for (headers, what) in [
        (vec![("x-csrf-token", "")], "no token"),
        (vec![("x-csrf-token", "AAAA")], "a wrong token"),
        (vec![("origin", "")], "no origin"),
        (vec![("origin", "https://evil.example")], "another origin"),
        (
            vec![("origin", ""), ("sec-fetch-site", "cross-site")],
            "a cross-site fetch",
        ),
        (vec![("sec-fetch-site", "same-site")], "a sibling site"),
    ] {
        let (status, value) = server
            .session_call_with(&admin, Method::POST, path, body(), &headers)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {value}");
        assert_eq!(code(&value), ErrorCode::CsrfRejected.as_str(), "{what}");
    }
    let other = server.person(&server.owner_key, Role::Admin, false).await;
    let (status, _) = server
        .session_call_with(
            &admin,
            Method::POST,
            path,
            body(),
            &[("x-csrf-token", other.csrf.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another session's token");
    let (status, _) = server
        .session_call_with(
            &admin,
            Method::POST,
            path,
            body(),
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let audit = server.audit(&server.owner_key).await;
    assert!(audit.iter().any(|e| e.action == "session.csrf.rejected"));
}

#[tokio::test]
async fn owner_level_actions_need_a_recent_step_up_from_a_session_but_not_from_a_key() {
    let server = TestServer::start().await;
    let fresh = server.person(&server.owner_key, Role::Owner, true).await;
    let stale = server.person(&server.owner_key, Role::Owner, false).await;
    let target = server.person(&server.owner_key, Role::Member, false).await;
    let path = format!("/v1/members/{}/role", target.member_id);
    let admin = || Some(serde_json::json!({ "role": "admin" }));

    let (status, value) = server
        .session_call(&stale, Method::PUT, &path, admin())
        .await;
    assert_eq!(
        (status, code(&value)),
        (StatusCode::FORBIDDEN, "step_up_required")
    );
    let (status, value) = server
        .session_call(
            &stale,
            Method::POST,
            "/v1/invitations",
            Some(serde_json::json!({"role": "owner"})),
        )
        .await;
    assert_eq!(
        (status, code(&value)),
        (StatusCode::FORBIDDEN, "step_up_required")
    );
    let (status, _) = server
        .session_call(
            &stale,
            Method::POST,
            "/v1/invitations",
            Some(serde_json::json!({"role": "member"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "inviting a Member is not Owner-level"
    );

    let (status, value) = server
        .session_call(&fresh, Method::PUT, &path, admin())
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (status, _) = server
        .call(
            Method::PUT,
            &path,
            &server.owner_key,
            Some(serde_json::json!({"role": "member"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "API keys are bounded by their scope, not step-up"
    );

    let admin_person = server.person(&server.owner_key, Role::Admin, true).await;
    let (status, _) = server
        .session_call(
            &admin_person,
            Method::POST,
            "/v1/invitations",
            Some(serde_json::json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an Admin cannot invite an Admin, stepped up or not"
    );
}

#[tokio::test]
async fn sessions_end_when_idle_revoked_logged_out_or_the_member_is_removed() {
    let server = TestServer::start_with(|c| c.sessions.idle_timeout = Duration::from_secs(2)).await;
    let idle = server.person(&server.owner_key, Role::Member, false).await;
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let (status, _) = server
        .session_call(&idle, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "idle timeout");

    let person = server.person(&server.owner_key, Role::Admin, false).await;
    let second = server.another_session(&person).await;
    let (status, sessions) = server
        .session_call(&person, Method::GET, "/v1/me/sessions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let sessions: Vec<SessionInfo> = serde_json::from_value(sessions).unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s.current).count(), 1);
    let (status, _) = server
        .session_call(
            &person,
            Method::DELETE,
            &format!("/v1/me/sessions/{}", second.session_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .session_call(&second, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked session");

    let stranger = server.person(&server.owner_key, Role::Member, false).await;
    let (status, _) = server
        .session_call(
            &stranger,
            Method::DELETE,
            &format!("/v1/me/sessions/{}", person.session_id),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nobody revokes another person's session"
    );

    let response = server
        .client
        .post(server.url("/v1/auth/logout"))
        .header("cookie", format!("__Host-ek_session={}", person.secret))
        .header("x-csrf-token", &person.csrf)
        .header("origin", &server.base)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cleared.starts_with("__Host-ek_session=;") && cleared.contains("Max-Age=0"));
    let (status, _) = server
        .session_call(&person, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logged out");

    let removed = server.person(&server.owner_key, Role::Member, false).await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/members/{}", removed.member_id),
            &server.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .session_call(&removed, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a removed member's session ends at once"
    );
}

#[tokio::test]
async fn logout_everywhere_ends_every_org_and_switching_org_starts_a_new_session() {
    let server = TestServer::start().await;
    let person = server.person(&server.owner_key, Role::Member, false).await;
    let other = server.server.create_org("Org B").await.unwrap();
    let (_, value) = server
        .call(
            Method::POST,
            "/v1/invitations",
            &other.owner_api_key,
            Some(serde_json::json!({"role": "member"})),
        )
        .await;
    let in_b = server
        .accept(
            value["token"].as_str().unwrap(),
            Some(&person.user_id),
            false,
        )
        .await;

    let response = server
        .client
        .post(server.url("/v1/auth/switch-org"))
        .header("cookie", format!("__Host-ek_session={}", person.secret))
        .header("x-csrf-token", &person.csrf)
        .header("origin", &server.base)
        .json(&serde_json::json!({ "org_id": other.org_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "__Host-ek_session=eks_",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let switched: SessionCreated = response.json().await.unwrap();
    assert_eq!(switched.org_id, other.org_id);
    assert_ne!(switched.session_id, person.session_id);
    let (status, _) = server
        .session_call(&person, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "switching ends the old session"
    );

    let (status, _) = server
        .session_call(&in_b, Method::POST, "/v1/auth/logout-all", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let secret = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__Host-ek_session=");
    let (status, _) = server
        .session_call(
            &common::people::Person {
                secret: secret.to_owned(),
                ..in_b.clone()
            },
            Method::GET,
            "/v1/org",
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "logout everywhere ends the switched session too"
    );
    let audit_a = server.audit(&server.owner_key).await;
    let audit_b = server.audit(&other.owner_api_key).await;
    assert!(audit_a.iter().any(|e| e.action == "session.logout_all"));
    assert!(audit_b.iter().any(|e| e.action == "session.logout_all"));
}

#[tokio::test]
async fn a_deactivated_person_and_a_forged_cookie_are_refused() {
    let server = TestServer::start().await;
    let person = server.person(&server.owner_key, Role::Member, false).await;
    let forged = common::people::Person {
        secret: format!("eks_{}", "A".repeat(43)),
        ..person.clone()
    };
    let (status, value) = server
        .session_call(&forged, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(
        (status, code(&value)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let garbage = common::people::Person {
        secret: "not-a-session".to_owned(),
        ..person.clone()
    };
    let (status, _) = server
        .session_call(&garbage, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    server.deactivate_user(&person.user_id, 1).await;
    let (status, _) = server
        .session_call(&person, Method::GET, "/v1/org", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a deactivated person");
}

#[tokio::test]
async fn invitations_are_listed_without_their_token_and_revocable() {
    let server = TestServer::start().await;
    let (status, created) = server
        .call(
            Method::POST,
            "/v1/invitations",
            &server.owner_key,
            Some(serde_json::json!({"role": "member", "email": "Grace@Example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("eki_"));
    let (_, list) = server
        .call(Method::GET, "/v1/invitations", &server.owner_key, None)
        .await;
    assert!(
        !list.to_string().contains(&token),
        "the token is shown once"
    );
    let list: Vec<InvitationInfo> = serde_json::from_value(list).unwrap();
    let mine = list
        .iter()
        .find(|i| i.id == created["invitation"]["id"])
        .unwrap();
    assert_eq!(mine.email.as_deref(), Some("grace@example.com"));
    let (status, value) = server
        .call(
            Method::POST,
            "/v1/invitations",
            &server.owner_key,
            Some(serde_json::json!({"role": "member", "email": "not an email"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/invitations/{}", mine.id),
            &server.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let other = server.server.create_org("Org B").await.unwrap();
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/invitations/{}", mine.id),
            &other.owner_api_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
