//! SCIM 2.0 over real HTTPS: the user lifecycle (deprovisioning ends access at once), groups
//! mapped to roles, pagination, strict filters, bounded bodies, tenant isolation, SCIM token
//! rotation and revocation, and every operation in a verifying audit chain.

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

async fn scim_token(t: &TestServer, owner_key: &str) -> (String, String) {
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/scim-tokens",
            owner_key,
            Some(json!({"name": "directory"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ekscim_"));
    (body["token"]["id"].as_str().unwrap().to_owned(), secret)
}

async fn scim(
    t: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = t
        .client
        .request(method, t.url(&format!("/scim/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if status != StatusCode::NO_CONTENT {
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(kind, "application/scim+json", "{status}");
    }
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, value)
}

fn assert_scim_error(status: StatusCode, body: &Value, expected: u16, scim_type: Option<&str>) {
    assert_eq!(status.as_u16(), expected, "{body}");
    assert_eq!(body["schemas"][0], ERROR);
    assert_eq!(body["status"], expected.to_string());
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
}

async fn create_user(t: &TestServer, token: &str, user_name: &str) -> Value {
    let (status, body) = scim(
        t,
        Method::POST,
        "/Users",
        token,
        Some(json!({
            "schemas": [USER],
            "userName": user_name,
            "externalId": format!("ext-{user_name}"),
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "displayName": format!("Ada {user_name}"),
            "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}],
            "title": "ignored: not kept",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The member behind a SCIM user, found by its display name.
async fn member_named(t: &TestServer, key: &str, name: &str) -> Option<Value> {
    let (_, members) = t.call(Method::GET, "/v1/members", key, None).await;
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

async fn key_for(t: &TestServer, owner_key: &str, member_id: &str) -> String {
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            owner_key,
            Some(json!({"member_id": member_id, "name": "laptop"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn user_lifecycle_deprovisioning_ends_access_at_once() {
    let t = TestServer::start().await;
    let (_, token) = scim_token(&t, &t.owner_key).await;
    let created = create_user(&t, &token, "ada").await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["active"], true);
    assert!(created.get("title").is_none());
    assert!(
        created["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}"))
    );

    let (status, got) = scim(&t, Method::GET, &format!("/Users/{id}"), &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["userName"], "ada");

    // Filters: userName compares without regard to case, externalId exactly.
    let (_, found) = scim(
        &t,
        Method::GET,
        "/Users?filter=userName%20eq%20%22ADA%22",
        &token,
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], id.as_str());
    let (_, found) = scim(
        &t,
        Method::GET,
        "/Users?filter=externalId%20eq%20%22EXT-ADA%22",
        &token,
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 0);
    let (_, found) = scim(
        &t,
        Method::GET,
        "/Users?filter=externalId%20eq%20%22ext-ada%22",
        &token,
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 1);

    // A duplicate userName is a uniqueness conflict.
    let (status, body) = scim(
        &t,
        Method::POST,
        "/Users",
        &token,
        Some(json!({"schemas": [USER], "userName": "Ada"})),
    )
    .await;
    assert_scim_error(status, &body, 409, Some("uniqueness"));

    // PATCH with a path and the path-less form Azure AD sends.
    let (status, patched) = scim(&t, Method::PATCH, &format!("/Users/{id}"), &token, Some(json!({
        "schemas": [PATCH],
        "Operations": [
            {"op": "replace", "path": "name.givenName", "value": "Augusta"},
            {"op": "Replace", "value": {"displayName": "Augusta Ada", "externalId": "e-2"}},
            {"op": "add", "path": "emails[type eq \"home\"].value", "value": "ada@home.example"},
        ]
    }))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"]["givenName"], "Augusta");
    assert_eq!(patched["displayName"], "Augusta Ada");
    assert_eq!(patched["externalId"], "e-2");
    assert_eq!(patched["emails"].as_array().unwrap().len(), 2);

    // The person's membership, and an API key it owns, work until deprovisioning.
    let member = member_named(&t, &t.owner_key, "Augusta Ada")
        .await
        .expect("member");
    assert_eq!(member["role"], "member");
    let key = key_for(&t, &t.owner_key, member["id"].as_str().unwrap()).await;
    let (status, _) = t.call(Method::GET, "/v1/org", &key, None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = scim(
        &t,
        Method::PATCH,
        &format!("/Users/{id}"),
        &token,
        Some(json!({
            "schemas": [PATCH],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false);
    let (status, _) = t.call(Method::GET, "/v1/org", &key, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the member's key must stop at once"
    );
    assert!(
        member_named(&t, &t.owner_key, "Augusta Ada")
            .await
            .is_none()
    );

    // Reactivation gives a fresh membership (the old key stays revoked).
    let mut replaced = got.clone();
    replaced["active"] = json!(true);
    replaced["displayName"] = json!("Ada Again");
    let (status, body) = scim(
        &t,
        Method::PUT,
        &format!("/Users/{id}"),
        &token,
        Some(replaced),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(member_named(&t, &t.owner_key, "Ada Again").await.is_some());
    let (status, _) = t.call(Method::GET, "/v1/org", &key, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = scim(&t, Method::DELETE, &format!("/Users/{id}"), &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = scim(&t, Method::GET, &format!("/Users/{id}"), &token, None).await;
    assert_scim_error(status, &body, 404, None);
    assert!(member_named(&t, &t.owner_key, "Ada Again").await.is_none());

    // Every operation is in the org's chain, by the SCIM token, without emails; it verifies.
    let audit = t.audit(&t.owner_key).await;
    let actions: Vec<&str> = audit
        .iter()
        .filter(|e| e.actor.starts_with("scim_token:"))
        .map(|e| e.action.as_str())
        .collect();
    for expected in [
        "scim.user.create",
        "scim.user.update",
        "scim.user.deactivate",
        "scim.user.reactivate",
        "scim.user.delete",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(audit.iter().all(|e| !e.target.contains('@')));
    let (status, verify) = t
        .call(Method::GET, "/v1/audit/verify", &t.owner_key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{verify}");
    assert_eq!(verify["intact"], true, "{verify}");
}

#[tokio::test]
async fn groups_map_to_roles_and_the_last_owner_stays() {
    let t = TestServer::start().await;
    let (_, token) = scim_token(&t, &t.owner_key).await;
    let ada = create_user(&t, &token, "ada").await;
    let ada_id = ada["id"].as_str().unwrap();
    let (status, group) = scim(
        &t,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({
            "schemas": [GROUP], "displayName": "edgekeep-admins", "members": []
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();

    let (status, body) = t
        .call(
            Method::PUT,
            &format!("/v1/scim-groups/{group_id}/role"),
            &t.owner_key,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let add = json!({"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": ada_id}]}]});
    let (status, body) = scim(
        &t,
        Method::PATCH,
        &format!("/Groups/{group_id}"),
        &token,
        Some(add),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["members"][0]["value"], ada_id);
    let member = member_named(&t, &t.owner_key, "Ada ada").await.unwrap();
    assert_eq!(member["role"], "admin");

    // An unknown or other-org member is refused.
    let (status, body) = scim(&t, Method::PATCH, &format!("/Groups/{group_id}"), &token, Some(json!({
        "schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "scu_nope"}]}]
    }))).await;
    assert_scim_error(status, &body, 400, Some("invalidValue"));

    // Removing the member drops it back to Member.
    let remove = json!({"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": format!("members[value eq \"{ada_id}\"]")}]});
    let (status, _) = scim(
        &t,
        Method::PATCH,
        &format!("/Groups/{group_id}"),
        &token,
        Some(remove),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        member_named(&t, &t.owner_key, "Ada ada").await.unwrap()["role"],
        "member"
    );

    // An owners group: Ada becomes Owner; the init Owner leaves; the last Owner cannot be
    // demoted or deprovisioned through SCIM.
    let (_, owners) = scim(
        &t,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({
            "schemas": [GROUP], "displayName": "edgekeep-owners", "members": [{"value": ada_id}]
        })),
    )
    .await;
    let owners_id = owners["id"].as_str().unwrap().to_owned();
    let (status, _) = t
        .call(
            Method::PUT,
            &format!("/v1/scim-groups/{owners_id}/role"),
            &t.owner_key,
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let ada_member = member_named(&t, &t.owner_key, "Ada ada").await.unwrap();
    assert_eq!(ada_member["role"], "owner");
    let ada_key = key_for(&t, &t.owner_key, ada_member["id"].as_str().unwrap()).await;
    let (_, org) = t.call(Method::GET, "/v1/org", &t.owner_key, None).await;
    let _ = org;
    let (_, members) = t.call(Method::GET, "/v1/members", &t.owner_key, None).await;
    let init_owner = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "owner" && m["name"] != "Ada ada")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = t
        .call(
            Method::DELETE,
            &format!("/v1/members/{init_owner}"),
            &ada_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, body) = scim(
        &t,
        Method::DELETE,
        &format!("/Groups/{owners_id}"),
        &token,
        None,
    )
    .await;
    assert_scim_error(status, &body, 409, None);
    let (status, body) = scim(
        &t,
        Method::PATCH,
        &format!("/Users/{ada_id}"),
        &token,
        Some(json!({
            "schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": false}]
        })),
    )
    .await;
    assert_scim_error(status, &body, 409, None);
    let (status, _) = t.call(Method::GET, "/v1/org", &ada_key, None).await;
    assert_eq!(status, StatusCode::OK, "the refused change changed nothing");

    let (_, groups) = t.call(Method::GET, "/v1/scim-groups", &ada_key, None).await;
    assert_eq!(groups.as_array().unwrap().len(), 2, "{groups}");
    let audit = t.audit(&ada_key).await;
    assert!(audit.iter().any(|e| e.action == "scim.role.owner"));
    assert!(audit.iter().any(|e| e.action == "scim_group.role.admin"));
    assert!(audit.iter().any(|e| e.action == "scim.group.create"));
}

/// Roles set by hand stay while the org maps no group to a role; once it does, the directory
/// decides the roles of the members it provisioned, and a change by hand is refused.
#[tokio::test]
async fn hand_set_roles_stay_until_the_directory_assigns_roles() {
    let t = TestServer::start().await;
    let (_, token) = scim_token(&t, &t.owner_key).await;
    let ada = create_user(&t, &token, "ada").await;
    let ada_id = ada["id"].as_str().unwrap();
    let member_id = member_named(&t, &t.owner_key, "Ada ada").await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set_role = |role: &'static str| {
        let path = format!("/v1/members/{member_id}/role");
        let key = t.owner_key.clone();
        let t = &t;
        async move {
            t.call(Method::PUT, &path, &key, Some(json!({"role": role})))
                .await
        }
    };
    let (status, body) = set_role("admin").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, group) = scim(
        &t,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({
            "schemas": [GROUP], "displayName": "staff", "members": [{"value": ada_id}]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(
        member_named(&t, &t.owner_key, "Ada ada").await.unwrap()["role"],
        "admin",
        "an unmapped group leaves the role set by hand"
    );

    let (status, _) = t
        .call(
            Method::PUT,
            &format!("/v1/scim-groups/{group_id}/role"),
            &t.owner_key,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = set_role("member").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("directory"));

    let (status, _) = t
        .call(
            Method::PUT,
            &format!("/v1/scim-groups/{group_id}/role"),
            &t.owner_key,
            Some(json!({"role": null})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        member_named(&t, &t.owner_key, "Ada ada").await.unwrap()["role"],
        "member",
        "removing the mapping takes back the role it gave"
    );
    let (status, body) = set_role("admin").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn pagination_filters_and_bodies() {
    let t = TestServer::start().await;
    let (_, token) = scim_token(&t, &t.owner_key).await;
    for i in 0..5 {
        create_user(&t, &token, &format!("user{i}")).await;
    }
    let (_, page) = scim(&t, Method::GET, "/Users?startIndex=2&count=2", &token, None).await;
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    assert_eq!(page["Resources"][0]["userName"], "user1");
    let (_, page) = scim(
        &t,
        Method::GET,
        "/Users?startIndex=0&count=-1",
        &token,
        None,
    )
    .await;
    assert_eq!(
        (page["startIndex"].as_u64(), page["itemsPerPage"].as_u64()),
        (Some(1), Some(0))
    );
    let (_, page) = scim(&t, Method::GET, "/Users?attributes=userName", &token, None).await;
    assert!(page["Resources"][0].get("emails").is_none());
    assert!(page["Resources"][0].get("id").is_some());

    for bad in [
        "userName%20co%20%22a%22",
        "userName%20eq%20%22a%22%20or%20userName%20eq%20%22b%22",
        "title%20eq%20%22x%22",
        "userName%20eq",
        "(userName%20eq%20%22a%22)",
    ] {
        let (status, body) = scim(
            &t,
            Method::GET,
            &format!("/Users?filter={bad}"),
            &token,
            None,
        )
        .await;
        assert_scim_error(status, &body, 400, Some("invalidFilter"));
    }

    let (status, body) = scim(
        &t,
        Method::POST,
        "/Users",
        &token,
        Some(json!({"schemas": [USER], "userName": "big", "displayName": "x".repeat(70 * 1024)})),
    )
    .await;
    assert_scim_error(status, &body, 413, None);
    let (status, body) = scim(
        &t,
        Method::POST,
        "/Users",
        &token,
        Some(json!(["not", "an", "object"])),
    )
    .await;
    assert_scim_error(status, &body, 400, Some("invalidSyntax"));
    let (status, body) = scim(
        &t,
        Method::PATCH,
        "/Users/whatever",
        &token,
        Some(json!({})),
    )
    .await;
    assert_scim_error(status, &body, 404, None);
    let (status, body) = scim(&t, Method::GET, "/Nope", &token, None).await;
    assert_scim_error(status, &body, 404, None);

    let (status, config) = scim(&t, Method::GET, "/ServiceProviderConfig", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["patch"]["supported"], true);
    let (_, schemas) = scim(&t, Method::GET, "/Schemas", &token, None).await;
    assert_eq!(schemas["totalResults"], 2);
    let (_, types) = scim(&t, Method::GET, "/ResourceTypes/User", &token, None).await;
    assert_eq!(types["endpoint"], "/Users");
}

#[tokio::test]
async fn tenants_and_credentials_are_isolated() {
    let t = TestServer::start().await;
    let b = t.server.create_org("Org B").await.unwrap();
    let (_, a_token) = scim_token(&t, &t.owner_key).await;
    let (_, b_token) = scim_token(&t, &b.owner_api_key).await;
    let b_user = create_user(&t, &b_token, "bea").await;
    let b_id = b_user["id"].as_str().unwrap();
    let (_, b_group) = scim(
        &t,
        Method::POST,
        "/Groups",
        &b_token,
        Some(json!({
        "schemas": [GROUP], "displayName": "b-team"})),
    )
    .await;
    let b_group_id = b_group["id"].as_str().unwrap();

    // Org A's token neither sees nor changes org B's users and groups.
    let (_, list) = scim(
        &t,
        Method::GET,
        "/Users?filter=userName%20eq%20%22bea%22",
        &a_token,
        None,
    )
    .await;
    assert_eq!(list["totalResults"], 0);
    for (method, path, body) in [
        (Method::GET, format!("/Users/{b_id}"), None),
        (
            Method::PUT,
            format!("/Users/{b_id}"),
            Some(json!({"schemas": [USER], "userName": "x"})),
        ),
        (
            Method::PATCH,
            format!("/Users/{b_id}"),
            Some(
                json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            ),
        ),
        (Method::DELETE, format!("/Users/{b_id}"), None),
        (Method::GET, format!("/Groups/{b_group_id}"), None),
        (Method::DELETE, format!("/Groups/{b_group_id}"), None),
    ] {
        let (status, body) = scim(&t, method, &path, &a_token, body).await;
        assert_scim_error(status, &body, 404, None);
    }
    // Nor puts B's user into an A group, nor maps B's group to a role.
    let (status, body) = scim(
        &t,
        Method::POST,
        "/Groups",
        &a_token,
        Some(json!({
        "schemas": [GROUP], "displayName": "steal", "members": [{"value": b_id}]})),
    )
    .await;
    assert_scim_error(status, &body, 400, Some("invalidValue"));
    let (status, _) = t
        .call(
            Method::PUT,
            &format!("/v1/scim-groups/{b_group_id}/role"),
            &t.owner_key,
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, still) = scim(&t, Method::GET, &format!("/Users/{b_id}"), &b_token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["active"], true);

    // A SCIM token is no API key, and API keys and sessions do not work on /scim/v2.
    let (status, _) = t.call(Method::GET, "/v1/org", &a_token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = scim(&t, Method::GET, "/Users", &t.owner_key, None).await;
    assert_scim_error(status, &body, 401, None);
    let response = t
        .client
        .get(t.url("/scim/v2/Users"))
        .header(
            "cookie",
            "__Host-ek_session=eks_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Only an Owner manages SCIM tokens.
    let (_, member) = t
        .call(
            Method::POST,
            "/v1/members",
            &t.owner_key,
            Some(json!({"name": "admin", "role": "admin"})),
        )
        .await;
    let admin_key = key_for(&t, &t.owner_key, member["id"].as_str().unwrap()).await;
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/scim-tokens",
            &admin_key,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn scim_tokens_rotate_with_overlap_and_revoke() {
    let t = TestServer::start().await;
    let (id, old) = scim_token(&t, &t.owner_key).await;
    let (status, rotated) = t
        .call(
            Method::POST,
            &format!("/v1/scim-tokens/{id}/rotate"),
            &t.owner_key,
            Some(json!({"overlap_seconds": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_id = rotated["token"]["id"].as_str().unwrap().to_owned();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    // Both work during the overlap.
    for token in [&old, &new] {
        let (status, _) = scim(&t, Method::GET, "/Users", token, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = t
        .call(
            Method::POST,
            &format!("/v1/scim-tokens/{id}/rotate"),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a token rotates once");
    // Revocation is immediate; listing shows metadata, never a secret.
    let (status, _) = t
        .call(
            Method::DELETE,
            &format!("/v1/scim-tokens/{id}"),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = scim(&t, Method::GET, "/Users", &old, None).await;
    assert_scim_error(status, &body, 401, None);
    let (status, _) = scim(&t, Method::GET, "/Users", &new, None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = t
        .call(Method::GET, "/v1/scim-tokens", &t.owner_key, None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&new));
    let (status, _) = t
        .call(
            Method::DELETE,
            &format!("/v1/scim-tokens/{new_id}"),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = scim(&t, Method::GET, "/Users", &new, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let audit = t.audit(&t.owner_key).await;
    for action in [
        "scim_token.create",
        "scim_token.rotate",
        "scim_token.revoke",
        "scim_token.auth.rejected",
    ] {
        assert!(audit.iter().any(|e| e.action == action), "{action}");
    }
    let (_, verify) = t
        .call(Method::GET, "/v1/audit/verify", &t.owner_key, None)
        .await;
    assert_eq!(verify["intact"], true, "{verify}");
}
