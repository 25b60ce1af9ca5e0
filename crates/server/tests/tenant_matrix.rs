//! The role matrix and the cross-tenant matrix: for each endpoint × role × {own org, other
//! org} × {API key, session}, the expected status; no response body ever contains another
//! org's data. The Owner's session belongs to a person who is also an Owner of the other org,
//! in another session: holding both never lets one org's session reach the other.

mod common;

use common::TestServer;
use edgekeep_protocol::api::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct World {
    t: TestServer,
    /// Org A keys by role: Member, Admin, Owner.
    keys: [String; 3],
    /// Org A sessions by role (stepped up, so Owner-level actions are allowed).
    sessions: Vec<common::people::Person>,
    b_invitation: String,
    shared_device: String,
    b_member: String,
    b_key_id: String,
    b_key: String,
    b_owner_key: String,
    b_device: common::Device,
    b_secrets: Vec<String>,
}

const ROLES: [Role; 3] = [Role::Member, Role::Admin, Role::Owner];

impl World {
    async fn new() -> Self {
        let t = TestServer::start().await;
        let mut keys = [String::new(), String::new(), t.owner_key.clone()];
        for (i, role) in [(0, "member"), (1, "admin")] {
            let member = member(&t, &t.owner_key, role).await;
            let (status, created) = t
                .call(
                    Method::POST,
                    "/v1/api-keys",
                    &t.owner_key,
                    Some(json!({ "member_id": member, "name": role })),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
            keys[i] = created["secret"].as_str().unwrap().to_owned();
        }
        let shared_device = t
            .enroll(&t.org_id, &t.bootstrap(&t.owner_key, None).await)
            .await
            .id;

        let b = t
            .server
            .create_org("Org B confidential name")
            .await
            .unwrap();
        let b_member = member(&t, &b.owner_api_key, "member").await;
        let (_, created) = t
            .call(
                Method::POST,
                "/v1/api-keys",
                &b.owner_api_key,
                Some(json!({ "member_id": b_member, "name": "b backend" })),
            )
            .await;
        let b_key_id = created["key"]["id"].as_str().unwrap().to_owned();
        let b_key = created["secret"].as_str().unwrap().to_owned();
        let bootstrap = t.bootstrap(&b.owner_api_key, Some("bgroup")).await;
        let b_device = t.enroll(&b.org_id, &bootstrap).await;
        let b_secrets = vec![
            b.org_id.clone(),
            "Org B confidential name".to_owned(),
            b.owner_member_id.clone(),
            b.owner_key_id.clone(),
            b_member.clone(),
            b_key_id.clone(),
            b_device.id.clone(),
            "b backend".to_owned(),
        ];
        let mut sessions = Vec::new();
        for role in ROLES {
            sessions.push(t.person(&t.owner_key, role, true).await);
        }
        let (_, invited) = t
            .call(
                Method::POST,
                "/v1/invitations",
                &b.owner_api_key,
                Some(json!({ "role": "owner" })),
            )
            .await;
        let b_session = t
            .accept(
                invited["token"].as_str().unwrap(),
                Some(&sessions[2].user_id),
                true,
            )
            .await;
        assert_eq!(b_session.org_id, b.org_id);
        let (_, pending) = t
            .call(
                Method::POST,
                "/v1/invitations",
                &b.owner_api_key,
                Some(json!({ "role": "member" })),
            )
            .await;
        let b_invitation = pending["invitation"]["id"].as_str().unwrap().to_owned();
        Self {
            t,
            keys,
            sessions,
            b_invitation,
            shared_device,
            b_member,
            b_key_id,
            b_key,
            b_owner_key: b.owner_api_key.clone(),
            b_device,
            b_secrets,
        }
    }

    async fn fresh_invitation(&self) -> String {
        let (_, created) = self
            .t
            .call(
                Method::POST,
                "/v1/invitations",
                &self.t.owner_key,
                Some(json!({ "role": "member" })),
            )
            .await;
        created["invitation"]["id"].as_str().unwrap().to_owned()
    }

    async fn fresh_member(&self) -> String {
        member(&self.t, &self.t.owner_key, "member").await
    }

    async fn fresh_key(&self) -> String {
        let member = self.fresh_member().await;
        let (_, created) = self
            .t
            .call(
                Method::POST,
                "/v1/api-keys",
                &self.t.owner_key,
                Some(json!({ "member_id": member, "name": "victim" })),
            )
            .await;
        created["key"]["id"].as_str().unwrap().to_owned()
    }

    async fn fresh_device(&self) -> String {
        let bootstrap = self.t.bootstrap(&self.t.owner_key, None).await;
        self.t.enroll(&self.t.org_id, &bootstrap).await.id
    }
}

async fn member(t: &TestServer, key: &str, role: &str) -> String {
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/members",
            key,
            Some(json!({ "name": format!("a {role}"), "role": role })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[derive(Clone, Copy, Debug)]
enum Case {
    GetOrg,
    ListMembers,
    CreateMember,
    CreateAdmin,
    SetRole,
    RemoveMember,
    ListKeys,
    CreateOwnKey,
    CreateKeyFor,
    RotateKey,
    RevokeKey,
    MintBootstrap,
    ListDevices,
    GetDevice,
    RevokeDevice,
    RevokeGroup,
    ExportAudit,
    VerifyAudit,
    ListInvitations,
    InviteMember,
    InviteAdmin,
    RevokeInvitation,
}

/// Expected statuses for (Member, Admin, Owner) on own-org targets, and on other-org targets
/// where the endpoint names a resource.
fn expected(case: Case) -> ([u16; 3], Option<[u16; 3]>) {
    use Case::*;
    match case {
        GetOrg | ListMembers | ListKeys | ListDevices => ([200, 200, 200], None),
        CreateMember => ([403, 201, 201], None),
        CreateAdmin => ([403, 403, 201], None),
        SetRole => ([403, 403, 200], Some([403, 403, 404])),
        RemoveMember => ([403, 204, 204], Some([403, 404, 404])),
        CreateOwnKey | MintBootstrap => ([201, 201, 201], None),
        CreateKeyFor => ([403, 201, 201], Some([404, 404, 404])),
        RotateKey => ([403, 201, 201], Some([404, 404, 404])),
        RevokeKey => ([403, 204, 204], Some([404, 404, 404])),
        GetDevice => ([200, 200, 200], Some([404, 404, 404])),
        RevokeDevice => ([403, 200, 200], Some([403, 404, 404])),
        RevokeGroup | ExportAudit | VerifyAudit => ([403, 200, 200], None),
        ListInvitations => ([200, 200, 200], None),
        InviteMember => ([403, 201, 201], None),
        InviteAdmin => ([403, 403, 201], None),
        RevokeInvitation => ([403, 204, 204], Some([403, 404, 404])),
    }
}

async fn request(w: &World, case: Case, own: bool) -> (Method, String, Option<Value>) {
    use Case::*;
    match case {
        GetOrg => (Method::GET, "/v1/org".into(), None),
        ListMembers => (Method::GET, "/v1/members".into(), None),
        CreateMember => (
            Method::POST,
            "/v1/members".into(),
            Some(json!({ "name": "n", "role": "member" })),
        ),
        CreateAdmin => (
            Method::POST,
            "/v1/members".into(),
            Some(json!({ "name": "n", "role": "admin" })),
        ),
        SetRole => {
            let id = if own {
                w.fresh_member().await
            } else {
                w.b_member.clone()
            };
            (
                Method::PUT,
                format!("/v1/members/{id}/role"),
                Some(json!({ "role": "admin" })),
            )
        }
        RemoveMember => {
            let id = if own {
                w.fresh_member().await
            } else {
                w.b_member.clone()
            };
            (Method::DELETE, format!("/v1/members/{id}"), None)
        }
        ListKeys => (Method::GET, "/v1/api-keys".into(), None),
        CreateOwnKey => (
            Method::POST,
            "/v1/api-keys".into(),
            Some(json!({ "name": "mine" })),
        ),
        CreateKeyFor => {
            let id = if own {
                w.fresh_member().await
            } else {
                w.b_member.clone()
            };
            (
                Method::POST,
                "/v1/api-keys".into(),
                Some(json!({ "name": "theirs", "member_id": id })),
            )
        }
        RotateKey => {
            let id = if own {
                w.fresh_key().await
            } else {
                w.b_key_id.clone()
            };
            (
                Method::POST,
                format!("/v1/api-keys/{id}/rotate"),
                Some(json!({})),
            )
        }
        RevokeKey => {
            let id = if own {
                w.fresh_key().await
            } else {
                w.b_key_id.clone()
            };
            (Method::DELETE, format!("/v1/api-keys/{id}"), None)
        }
        MintBootstrap => (Method::POST, "/v1/bootstrap-tokens".into(), Some(json!({}))),
        ListDevices => (Method::GET, "/v1/devices".into(), None),
        GetDevice => {
            let id = if own {
                w.shared_device.clone()
            } else {
                w.b_device.id.clone()
            };
            (Method::GET, format!("/v1/devices/{id}"), None)
        }
        RevokeDevice => {
            let id = if own {
                w.fresh_device().await
            } else {
                w.b_device.id.clone()
            };
            (Method::POST, format!("/v1/devices/{id}/revoke"), None)
        }
        RevokeGroup => (Method::POST, "/v1/device-groups/bgroup/revoke".into(), None),
        ExportAudit => (Method::GET, "/v1/audit".into(), None),
        VerifyAudit => (Method::GET, "/v1/audit/verify".into(), None),
        ListInvitations => (Method::GET, "/v1/invitations".into(), None),
        InviteMember => (
            Method::POST,
            "/v1/invitations".into(),
            Some(json!({ "role": "member" })),
        ),
        InviteAdmin => (
            Method::POST,
            "/v1/invitations".into(),
            Some(json!({ "role": "admin" })),
        ),
        RevokeInvitation => {
            let id = if own {
                w.fresh_invitation().await
            } else {
                w.b_invitation.clone()
            };
            (Method::DELETE, format!("/v1/invitations/{id}"), None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_and_cross_tenant_matrix() {
    use Case::*;
    let w = World::new().await;
    let cases = [
        GetOrg,
        ListMembers,
        CreateMember,
        CreateAdmin,
        SetRole,
        RemoveMember,
        ListKeys,
        CreateOwnKey,
        CreateKeyFor,
        RotateKey,
        RevokeKey,
        MintBootstrap,
        ListDevices,
        GetDevice,
        RevokeDevice,
        RevokeGroup,
        ExportAudit,
        VerifyAudit,
        ListInvitations,
        InviteMember,
        InviteAdmin,
        RevokeInvitation,
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for (case, by_session) in cases.iter().flat_map(|c| [(*c, false), (*c, true)]) {
        let (own_expected, other_expected) = expected(case);
        for (i, role) in ROLES.iter().enumerate() {
            let mut targets = vec![(true, own_expected[i])];
            if let Some(other) = other_expected {
                targets.push((false, other[i]));
            }
            for (own, want) in targets {
                let (method, path, body) = request(&w, case, own).await;
                let response = {
                    let mut r = w.t.client.request(method.clone(), w.t.url(&path));
                    r = if by_session {
                        let person = &w.sessions[i];
                        r.header("cookie", format!("__Host-ek_session={}", person.secret))
                            .header("x-csrf-token", &person.csrf)
                            .header("origin", &w.t.base)
                    } else {
                        r.bearer_auth(&w.keys[i])
                    };
                    if let Some(body) = &body {
                        r = r.json(body);
                    }
                    r.send().await.unwrap()
                };
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                checked += 1;
                if status != want {
                    failures.push(format!(
                        "{case:?} as {role:?} own={own} session={by_session}: got {status}, \
                         want {want}: {text}"
                    ));
                }
                if let Some(leak) = w.b_secrets.iter().find(|s| text.contains(s.as_str())) {
                    failures.push(format!(
                        "{case:?} as {role:?} own={own}: body leaks other org's {leak:?}"
                    ));
                }
                if status >= 400 {
                    let error: Value = serde_json::from_str(&text).unwrap();
                    assert!(error["code"].is_string() && error["message"].is_string());
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 2 * (22 * 3 + 8 * 3));

    // Org B is untouched by every cross-tenant attempt.
    let t = &w.t;
    assert_eq!(
        t.call(Method::GET, "/v1/org", &w.b_key, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.device_get(&w.b_device, "/v1/device/me").await.status(),
        StatusCode::OK
    );
    let b_entries = t.audit(&w.b_owner_key).await;
    assert!(
        b_entries
            .iter()
            .all(|e| !e.action.contains("revoke") && !e.action.contains("rotate"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_limit_keys_and_demotion_takes_effect() {
    let t = TestServer::start().await;
    let (status, narrow) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &t.owner_key,
            Some(json!({ "name": "narrow", "scopes": ["org:read"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let narrow = narrow["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        t.call(Method::GET, "/v1/org", &narrow, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::GET, "/v1/members", &narrow, None).await.0,
        StatusCode::FORBIDDEN
    );
    // A narrow key cannot mint a wider one.
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &narrow,
            Some(json!({ "name": "wider", "scopes": ["audit:read"] })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An Admin cannot grant roles, nor give itself `roles:grant`.
    let admin = member(&t, &t.owner_key, "admin").await;
    let (_, created) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &t.owner_key,
            Some(json!({ "member_id": admin, "name": "admin" })),
        )
        .await;
    let admin_key = created["secret"].as_str().unwrap().to_owned();
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/api-keys",
            &admin_key,
            Some(json!({ "name": "x", "scopes": ["roles:grant"] })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.call(Method::GET, "/v1/audit", &admin_key, None).await.0,
        StatusCode::OK
    );

    // Demotion by an Owner applies to the existing key on its next request.
    let (status, _) = t
        .call(
            Method::PUT,
            &format!("/v1/members/{admin}/role"),
            &t.owner_key,
            Some(json!({ "role": "member" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        t.call(Method::GET, "/v1/audit", &admin_key, None).await.0,
        StatusCode::FORBIDDEN
    );

    // The last Owner cannot be demoted or removed.
    let (_, members) = t.call(Method::GET, "/v1/members", &t.owner_key, None).await;
    let owner_id = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "owner")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = t
        .call(
            Method::PUT,
            &format!("/v1/members/{owner_id}/role"),
            &t.owner_key,
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = t
        .call(
            Method::DELETE,
            &format!("/v1/members/{owner_id}"),
            &t.owner_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let audit = t.audit(&t.owner_key).await;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "member.role.admin_to_member")
    );
}
