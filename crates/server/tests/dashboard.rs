//! The dashboard over HTTP: pages need a session and show only the session's org, every answer
//! carries the CSP, the public status page leaks nothing about tenants, and the fleet page shows
//! the same figures as `GET /v1/fleet/health`. The browser tests (passkeys through Chromium's
//! virtual authenticator, CSP violations, accessibility) are in `dashboard_browser.rs`.

mod common;

use common::people::Person;
use common::{TestServer, publisher_key};
use edgekeep_protocol::api::Role;
use edgekeep_protocol::people::SESSION_COOKIE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn page(t: &TestServer, path: &str, person: Option<&Person>) -> reqwest::Response {
    let client = t.browser(&[]);
    let mut request = client.get(t.url(path)).header("accept", "text/html");
    if let Some(person) = person {
        request = request.header("cookie", format!("{SESSION_COOKIE}={}", person.secret));
    }
    request.send().await.unwrap()
}

/// The HTML of `path` as `person` sees it.
async fn html_of(t: &TestServer, path: &str, person: &Person) -> String {
    page(t, path, Some(person)).await.text().await.unwrap()
}

fn assert_secured(response: &reqwest::Response) {
    let headers = response.headers();
    assert_eq!(
        headers["content-security-policy"],
        CSP,
        "{}",
        response.url()
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn pages_need_a_session_and_carry_the_csp() {
    let t = TestServer::start().await;
    for path in ["/fleet", "/"] {
        let response = page(&t, path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(common::location(&response), "/login");
    }
    // An API key does not open a page.
    let with_key = t
        .browser(&[])
        .get(t.url("/fleet"))
        .bearer_auth(&t.owner_key)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), StatusCode::SEE_OTHER);
    // A forged or ended session neither.
    let forged = Person {
        secret: "eks_forged".to_owned(),
        ..t.person(&t.owner_key, Role::Member, false).await
    };
    assert_eq!(
        page(&t, "/fleet", Some(&forged)).await.status(),
        StatusCode::SEE_OTHER
    );

    for path in ["/login", "/invite", "/status"] {
        let response = page(&t, path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_secured(&response);
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "{path}: {html}"
        );
    }
}

#[tokio::test]
async fn the_fleet_page_shows_the_sessions_org_only() {
    let t = TestServer::start().await;
    let owner = t.owner_key.clone();
    let publisher = publisher_key();
    t.register_publisher(&owner, &publisher).await;
    t.publish(&owner, &publisher, "kws", 1, b"v1").await;
    t.rollout(&owner, "kws", 1, None, 10_000).await;
    let devices = t.enroll_many(3, None).await;
    let batch = json!({"seq": 1, "recorded_at": common::now(), "events": [
        {"type": "latency", "model": {"model": "kws", "version": 1},
         "counts": [0, 4, 9, 2, 0, 0, 0, 0, 0, 0, 0, 0]},
        {"type": "health", "battery_percent": 64, "charging": false, "network": "wifi",
         "free_storage": "under10_gb", "thermal": "nominal", "completion": "completed"}]});
    let sent = t
        .device_post(
            &devices[0],
            "/v1/device/telemetry",
            batch.to_string().into_bytes(),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::OK);

    let member = t.person(&owner, Role::Member, false).await;
    let response = page(&t, "/fleet", Some(&member)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_secured(&response);
    let html = response.text().await.unwrap();
    let (_, health) = t.call(Method::GET, "/v1/fleet/health", &owner, None).await;
    let enrolled = health["devices"]["enrolled"].as_u64().unwrap();
    assert_eq!(enrolled, 3);
    assert!(
        html.contains("<span class=\"figure\">3</span> enrolled"),
        "{html}"
    );
    assert!(html.contains("kws v1"));
    assert!(
        html.contains("<svg class=\"chart\""),
        "the latency histogram is drawn"
    );
    assert!(
        html.contains("≤ 5 ms"),
        "p50 of the merged histogram: {html}"
    );
    assert!(
        html.contains("wifi") && html.contains("50–79 %"),
        "health buckets"
    );
    assert!(html.contains("name=\"csrf-token\""));
    assert!(html.contains("Org A") && html.contains("member"));

    // The hourly counts, recorded as the housekeeping does, draw the devices over time.
    let now = common::now();
    t.stored(move |storage| {
        for hours_ago in [3, 2] {
            edgekeep_server::fleet_history::record_snapshots(storage, 900, now - hours_ago * 3600)
                .unwrap();
        }
    })
    .await;
    let html = html_of(&t, "/fleet", &member).await;
    assert!(html.contains("<svg class=\"timeline\""), "{html}");
    // The server's housekeeping recorded one at start (no device then), and the two here.
    let org = t.org_id.clone();
    let history = t
        .stored(move |storage| storage.fleet_snapshots(&org, 0))
        .await
        .unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(history.iter().all(|(at, _)| at % 3600 == 0));
    assert_eq!(history[0].1.enrolled, 3, "{history:?}");
    assert_eq!(history[2].1.enrolled, 0, "{history:?}");

    // Org B's person sees org B only.
    let org_b = t.server.create_org("Org B").await.unwrap();
    let in_b = t.person(&org_b.owner_api_key, Role::Member, false).await;
    let html = page(&t, "/fleet", Some(&in_b)).await.text().await.unwrap();
    assert!(html.contains("Org B") && !html.contains("Org A"));
    assert!(html.contains("No device is enrolled yet"), "{html}");
    assert!(!html.contains("kws"));
}

#[tokio::test]
async fn status_tells_nothing_about_tenants() {
    let t = TestServer::start().await;
    let response = t.client.get(t.url("/status.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_secured(&response);
    let status: Value = response.json().await.unwrap();
    let keys: Vec<&str> = status
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{status}");
    for key in ["version", "uptime_secs", "database", "last_ingest_at"] {
        assert!(status.get(key).is_some(), "{key} in {status}");
    }
    assert_eq!(status["database"], "reachable");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let text = status.to_string();
    assert!(!text.contains(&t.org_id) && !text.contains("Org A"));
}

#[tokio::test]
async fn assets_are_versioned_and_cached_for_good() {
    let t = TestServer::start().await;
    let html = page(&t, "/login", None).await.text().await.unwrap();
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        script.starts_with("/assets/app.") && script.ends_with(".js"),
        "{script}"
    );
    let response = t.client.get(t.url(&script)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let stale = t
        .client
        .get(t.url("/assets/app.0000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_member_sees_no_admin_actions_and_is_refused_them_by_hand() {
    let t = TestServer::start().await;
    let owner = t.owner_key.clone();
    let publisher = publisher_key();
    t.register_publisher(&owner, &publisher).await;
    t.publish(&owner, &publisher, "kws", 1, b"v1").await;
    let rollout = t.rollout(&owner, "kws", 1, None, 1_000).await;

    let admin = t.person(&owner, Role::Admin, false).await;
    let html = page(&t, "/rollouts", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(">Promote<") && html.contains(">Roll back<"),
        "{html}"
    );

    let member = t.person(&owner, Role::Member, false).await;
    let response = page(&t, "/rollouts", Some(&member)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("kws v1"));
    for action in [">Promote<", ">Pause<", ">Roll back<", "Start rollout"] {
        assert!(!html.contains(action), "{action} shown to a Member");
    }
    let models = html_of(&t, "/models", &member).await;
    assert!(models.contains("kws v1") && !models.contains(">Approve<"));
    let (status, _) = t
        .session_call(
            &member,
            Method::POST,
            &format!("/v1/rollouts/{}/rollback", rollout.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn devices_filter_page_and_revoke_within_the_org() {
    let t = TestServer::start().await;
    let owner = t.owner_key.clone();
    let eu = t.enroll_many(2, Some("eu")).await;
    let other = t.enroll_many(1, None).await;
    let admin = t.person(&owner, Role::Admin, false).await;

    let html = page(&t, "/devices?group=eu", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("2 of 3 devices"), "{html}");
    assert!(html.contains(&eu[0].id) && !html.contains(&other[0].id));
    assert!(html.contains("Revoke the whole group eu"));
    let never = page(&t, "/devices?seen=never&q=", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(never.contains("3 of 3 devices"), "{never}");

    let (status, _) = t
        .session_call(
            &admin,
            Method::POST,
            &format!("/v1/devices/{}/revoke", eu[0].id),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let revoked = page(&t, "/devices?seen=revoked", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        revoked.contains("1 of 3 devices") && revoked.contains(&eu[0].id),
        "{revoked}"
    );

    let member = t.person(&owner, Role::Member, false).await;
    let html = html_of(&t, "/devices", &member).await;
    assert!(
        html.contains(&other[0].id) && !html.contains(">Revoke<"),
        "{html}"
    );
    assert!(
        !html.contains("href=\"/audit\""),
        "Members have no audit page in the navigation"
    );
    let audit = page(&t, "/audit", Some(&member)).await;
    assert_eq!(audit.status(), StatusCode::FORBIDDEN);
    assert!(audit.text().await.unwrap().contains("does not allow this"));

    let org_b = t.server.create_org("Org B").await.unwrap();
    let in_b = t.person(&org_b.owner_api_key, Role::Owner, false).await;
    let html = page(&t, "/devices", Some(&in_b))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&other[0].id) && html.contains("No device is enrolled yet"));
}

#[tokio::test]
async fn the_audit_page_filters_and_verifies_the_chain() {
    let t = TestServer::start().await;
    let owner = t.person(&t.owner_key, Role::Owner, false).await;
    t.enroll_many(1, None).await;
    let html = html_of(&t, "/audit?action=device.", &owner).await;
    assert!(html.contains("device.enroll"), "{html}");
    assert!(!html.contains("invitation.accept"), "filtered out");
    let verified = html_of(&t, "/audit?verify=1", &owner).await;
    assert!(verified.contains("The chain is intact"), "{verified}");
    let export = t
        .browser(&[])
        .get(t.url("/v1/audit"))
        .header("cookie", format!("{SESSION_COOKIE}={}", owner.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    assert!(export.text().await.unwrap().lines().count() > 3);
}

#[tokio::test]
async fn people_and_keys_show_what_the_api_shows_each_role() {
    let t = TestServer::start().await;
    let owner_key = t.owner_key.clone();
    let owner = t.person(&owner_key, Role::Owner, false).await;
    let member = t.person(&owner_key, Role::Member, false).await;
    let (status, _) = t
        .session_call(
            &member,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "member-laptop"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let html = html_of(&t, "/people", &owner).await;
    assert!(
        html.contains("Set role") && html.contains("Create invitation link"),
        "{html}"
    );
    assert!(html.contains("member-laptop") && html.contains("Create SCIM token"));
    assert!(html.contains("No SCIM token."));
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/scim-tokens",
            &owner_key,
            Some(json!({"name": "entra"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let html = html_of(&t, "/people", &owner).await;
    assert!(
        html.contains("aria-label=\"Rotate SCIM token entra\"")
            && html.contains("aria-label=\"Revoke SCIM token entra\""),
        "{html}"
    );

    let html = html_of(&t, "/people", &member).await;
    assert!(
        html.contains("member-laptop"),
        "a Member sees their own key: {html}"
    );
    let (_, all_keys) = t.call(Method::GET, "/v1/api-keys", &owner_key, None).await;
    let others: Vec<&str> = all_keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] != "member-laptop")
        .filter_map(|k| k["prefix"].as_str())
        .collect();
    assert!(!others.is_empty());
    for prefix in others {
        assert!(
            !html.contains(prefix),
            "a Member sees another's key {prefix}"
        );
    }
    for action in [
        "Set role",
        "Create invitation link",
        "Create SCIM token",
        "Identity providers",
    ] {
        assert!(!html.contains(action), "{action} shown to a Member");
    }
    let owner_page = html_of(&t, "/people", &owner).await;
    assert!(
        owner_page.contains("Identity providers") && owner_page.contains("No OpenID Provider.")
    );
}

#[tokio::test]
async fn long_member_and_key_lists_page_each_on_its_own() {
    let t = TestServer::start().await;
    let owner_key = t.owner_key.clone();
    let owner = t.person(&owner_key, Role::Owner, false).await;
    for n in 0..55 {
        let (status, _) = t
            .call(
                Method::POST,
                "/v1/members",
                &owner_key,
                Some(json!({"name": format!("person-{n:02}"), "role": "member"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = t
            .call(
                Method::POST,
                "/v1/api-keys",
                &owner_key,
                Some(json!({"name": format!("key-{n:02}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let shown = |html: &str, prefix: &str| -> Vec<String> {
        (0..55)
            .map(|n| format!("{prefix}-{n:02}<"))
            .filter(|name| html.contains(name.as_str()))
            .collect()
    };
    let first = html_of(&t, "/people", &owner).await;
    assert!(first.contains("aria-label=\"Pages of members\""), "{first}");
    assert!(first.contains("aria-label=\"Pages of API keys\""));
    assert!(first.contains("href=\"/people?members_page=2#members\""));
    let (members_1, keys_1) = (shown(&first, "person"), shown(&first, "key"));
    assert!(members_1.len() <= 50 && keys_1.len() <= 50);

    // The members' second page keeps the keys on their first.
    let second = html_of(&t, "/people?members_page=2", &owner).await;
    let members_2 = shown(&second, "person");
    assert!(!members_2.is_empty());
    assert!(members_2.iter().all(|name| !members_1.contains(name)));
    assert_eq!(members_1.len() + members_2.len(), 55);
    assert_eq!(shown(&second, "key"), keys_1);
    assert!(second.contains("href=\"/people?members_page=2&amp;keys_page=2#api-keys\""));

    let keys_2 = shown(&html_of(&t, "/people?keys_page=2", &owner).await, "key");
    assert_eq!(keys_1.len() + keys_2.len(), 55);
    assert!(keys_2.iter().all(|name| !keys_1.contains(name)));
}

#[tokio::test]
async fn passkeys_are_renamed_and_removed_from_the_page_but_never_the_last() {
    let t = TestServer::start().await;
    let owner = t.person(&t.owner_key.clone(), Role::Owner, false).await;
    let people = || html_of(&t, "/people", &owner);
    let html = people().await;
    assert!(
        html.contains("No passkey yet") && html.contains("Add a passkey"),
        "{html}"
    );

    let add = |id: &str, name: &str| {
        let record = edgekeep_server::storage::PasskeyRecord {
            id: id.to_owned(),
            user_id: owner.user_id.clone(),
            name: name.to_owned(),
            passkey_json: "{}".to_owned(),
            created_at: common::now(),
            last_used_at: None,
        };
        let audit = edgekeep_server::storage::AuditEvent {
            org_id: owner.org_id.clone(),
            actor: format!("user:{}", owner.user_id),
            action: "passkey.add".to_owned(),
            target: format!("passkey:{id}"),
            outcome: "ok".to_owned(),
            request_id: "test".to_owned(),
            at: common::now(),
        };
        t.stored(move |storage| storage.insert_passkey(&record, &audit).unwrap())
    };
    add("cred-one", "laptop").await;
    let html = people().await;
    assert!(
        html.contains("aria-label=\"Rename laptop\"")
            && html.contains("data-api=\"/v1/me/passkeys/cred-one\" data-method=\"PATCH\"")
    );
    assert!(
        html.contains("Your only passkey cannot be removed")
            && !html.contains("aria-label=\"Remove "),
        "the only passkey is offered for removal: {html}"
    );

    add("cred-two", "phone").await;
    let html = people().await;
    assert!(
        html.contains("aria-label=\"Remove laptop\"")
            && html.contains("aria-label=\"Remove phone\"")
    );
    assert!(!html.contains("Your only passkey cannot be removed"));
}
