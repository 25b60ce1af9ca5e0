//! One behaviour suite every [`Storage`] implementation must pass, run unchanged on SQLite and
//! PostgreSQL: [`suite`], [`fleet_suite`] then [`people_suite`] against a fresh, empty store.

use edgekeep_protocol::api::{Permission, Role};

use super::*;
use crate::audit::verify_org;

fn event(org: &str, action: &str) -> AuditEvent {
    AuditEvent {
        org_id: org.to_owned(),
        actor: "system".to_owned(),
        action: action.to_owned(),
        target: "t".to_owned(),
        outcome: "ok".to_owned(),
        request_id: "req".to_owned(),
        at: 1_000,
    }
}

fn key(org: &str, member: &str, id: &str, hash: u8) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.to_owned(),
        org_id: org.to_owned(),
        member_id: member.to_owned(),
        name: "k".to_owned(),
        prefix: "ek_x".to_owned(),
        hash: [hash; 32],
        scopes: vec![Permission::OrgRead, Permission::AuditRead],
        created_at: 1_000,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        replaced_by: None,
    }
}

fn member(org: &str, id: &str, role: Role) -> MemberRecord {
    MemberRecord {
        id: id.to_owned(),
        org_id: org.to_owned(),
        name: "m".to_owned(),
        role,
        created_at: 1_000,
        user_id: None,
    }
}

fn audit_len(s: &dyn Storage, org: &str) -> usize {
    s.audit_entries(org, None, None).unwrap().len()
}

fn token(hash: u8, kind: DeviceTokenKind, family: &str) -> DeviceTokenRecord {
    DeviceTokenRecord {
        hash: [hash; 32],
        kind,
        device_id: "dev1".to_owned(),
        org_id: "org1".to_owned(),
        family: family.to_owned(),
        issued_at: 1_000,
        expires_at: 9_999_999_999,
        used_at: None,
        revoked_at: None,
    }
}

/// Runs every check against `s`, which must be empty.
pub fn suite(s: &dyn Storage) {
    let org = OrgRecord {
        id: "org1".into(),
        name: "One".into(),
        created_at: 1_000,
    };
    let owner = member("org1", "own1", Role::Owner);
    s.create_org(
        &org,
        &owner,
        &key("org1", "own1", "key1", 1),
        &[event("org1", "org.create")],
    )
    .unwrap();
    assert_eq!(s.org("org1").unwrap().unwrap(), org);
    assert_eq!(s.org_ids().unwrap(), vec!["org1".to_owned()]);
    let (found, holder) = s.api_key_by_hash(&[1; 32]).unwrap().unwrap();
    assert_eq!((found.id.as_str(), holder.role), ("key1", Role::Owner));
    assert_eq!(
        found.scopes,
        vec![Permission::OrgRead, Permission::AuditRead]
    );

    // The last Owner stays, and a refused change leaves no audit entry behind.
    let before = audit_len(s, "org1");
    assert!(matches!(
        s.set_member_role("org1", "own1", Role::Admin, &event("org1", "x")),
        Err(StorageError::Conflict(_))
    ));
    assert!(matches!(
        s.remove_member("org1", "own1", 2_000, &event("org1", "x")),
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(audit_len(s, "org1"), before);

    // Removing a member revokes its keys and hides it from key lookup.
    s.insert_member(
        &member("org1", "mem1", Role::Member),
        &event("org1", "member.create"),
    )
    .unwrap();
    s.insert_api_key(
        &key("org1", "mem1", "key2", 2),
        &event("org1", "api_key.create"),
    )
    .unwrap();
    s.remove_member("org1", "mem1", 2_000, &event("org1", "member.remove"))
        .unwrap();
    assert!(s.api_key_by_hash(&[2; 32]).unwrap().is_none());
    assert_eq!(
        s.api_key("org1", "key2").unwrap().unwrap().revoked_at,
        Some(2_000)
    );
    assert!(s.member("org1", "mem1").unwrap().is_none());

    // Rotation: the old key expires and points to the new one; it cannot rotate twice.
    s.rotate_api_key(
        "org1",
        "key1",
        5_000,
        &key("org1", "own1", "key3", 3),
        &event("org1", "api_key.rotate"),
    )
    .unwrap();
    let old = s.api_key("org1", "key1").unwrap().unwrap();
    assert_eq!(
        (old.expires_at, old.replaced_by.as_deref()),
        (Some(5_000), Some("key3"))
    );
    assert!(matches!(
        s.rotate_api_key(
            "org1",
            "key1",
            6_000,
            &key("org1", "own1", "key4", 4),
            &event("org1", "x")
        ),
        Err(StorageError::Conflict(_))
    ));
    assert!(s.api_key("org1", "key4").unwrap().is_none());
    assert!(
        s.revoke_api_key("org1", "key3", 3_000, &event("org1", "api_key.revoke"))
            .unwrap()
    );
    assert!(
        !s.revoke_api_key("org1", "key3", 3_001, &event("org1", "x"))
            .unwrap()
    );
    // Keys of other orgs are invisible.
    assert!(s.api_key("org2", "key3").unwrap().is_none());

    // Bootstrap tokens are consumed once, only before expiry, only for their org.
    let boot = |hash: u8, expires_at: i64| BootstrapRecord {
        hash: [hash; 32],
        org_id: "org1".into(),
        device_group: Some("g".into()),
        created_by: "member:own1".into(),
        created_at: 1_000,
        expires_at,
        used_at: None,
    };
    s.insert_bootstrap_token(&boot(10, 1_600), &event("org1", "bootstrap_token.create"))
        .unwrap();
    s.insert_bootstrap_token(&boot(11, 1_100), &event("org1", "bootstrap_token.create"))
        .unwrap();
    let device = DeviceRecord {
        id: "dev1".into(),
        org_id: "org1".into(),
        device_group: Some("g".into()),
        identity_key: vec![4; 65],
        sealed_kwk: vec![9; 60],
        enrolled_at: 1_500,
        revoked_at: None,
    };
    let tokens = [
        token(20, DeviceTokenKind::Access, "fam1"),
        token(21, DeviceTokenKind::Refresh, "fam1"),
    ];
    let wrong_org = DeviceRecord {
        org_id: "org2".into(),
        ..device.clone()
    };
    assert!(matches!(
        s.enroll_device(&[10; 32], &wrong_org, &tokens, &event("org1", "x")),
        Err(StorageError::Conflict(_))
    ));
    s.enroll_device(&[10; 32], &device, &tokens, &event("org1", "device.enroll"))
        .unwrap();
    assert!(
        s.bootstrap_token(&[10; 32])
            .unwrap()
            .unwrap()
            .used_at
            .is_some()
    );
    let again = DeviceRecord {
        id: "dev2".into(),
        ..device.clone()
    };
    assert!(matches!(
        s.enroll_device(&[10; 32], &again, &[], &event("org1", "x")),
        Err(StorageError::Conflict(_))
    ));
    assert!(matches!(
        s.enroll_device(&[11; 32], &again, &[], &event("org1", "x")),
        Err(StorageError::Conflict(_))
    ));
    assert!(s.device("org1", "dev2").unwrap().is_none());
    let (access, stored) = s.device_token(&[20; 32]).unwrap().unwrap();
    assert_eq!(
        (access.kind, stored),
        (DeviceTokenKind::Access, device.clone())
    );

    // Refresh rotates once; a second use revokes the whole family.
    let next = [
        token(22, DeviceTokenKind::Access, "fam1"),
        token(23, DeviceTokenKind::Refresh, "fam1"),
    ];
    let rotate = s.rotate_refresh_token(
        &[21; 32],
        1_700,
        &next,
        &event("org1", "device.refresh"),
        &event("org1", "reuse"),
    );
    assert_eq!(rotate.unwrap(), RefreshOutcome::Rotated);
    let reuse = s.rotate_refresh_token(
        &[21; 32],
        1_800,
        &[],
        &event("org1", "x"),
        &event("org1", "device.refresh.reuse"),
    );
    assert_eq!(reuse.unwrap(), RefreshOutcome::Reused);
    for hash in [20, 21, 22, 23] {
        assert_eq!(
            s.device_token(&[hash; 32]).unwrap().unwrap().0.revoked_at,
            Some(1_800)
        );
    }

    // Revocation of a group counts only newly revoked devices of that org.
    assert_eq!(
        s.revoke_device_group("org1", "g", 1_900, &event("org1", "device_group.revoke"))
            .unwrap(),
        1
    );
    assert_eq!(
        s.revoke_device_group("org1", "g", 1_901, &event("org1", "device_group.revoke"))
            .unwrap(),
        0
    );
    assert!(
        !s.revoke_device("org1", "dev1", 1_902, &event("org1", "x"))
            .unwrap()
    );
    assert!(s.device("org2", "dev1").unwrap().is_none());
    assert_eq!(s.devices("org1").unwrap().len(), 1);

    // Every committed change is in the chain, and the chain holds.
    s.append_audit(&[event("org1", "device.auth.rejected")])
        .unwrap();
    let entries = s.audit_entries("org1", None, None).unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "org.create",
        "member.remove",
        "api_key.rotate",
        "device.enroll",
        "device.refresh.reuse",
        "device.auth.rejected",
    ] {
        assert!(actions.contains(&expected), "{expected} missing");
    }
    assert!(!actions.contains(&"x"), "a refused change was audited");
    assert_eq!(
        verify_org(s, &crate::audit::AuditKey::derive(&[3; 32]), "org1", None)
            .unwrap()
            .result,
        Ok(entries.len() as u64)
    );
    assert_eq!(
        s.audit_head("org1").unwrap().unwrap().seq,
        entries.len() as i64
    );
    assert!(
        s.audit_entries("org1", Some(2_000), None)
            .unwrap()
            .is_empty()
    );
}

/// The registry, rollout and telemetry checks; runs after [`suite`] (needs `org1`, `dev1`).
pub fn fleet_suite(s: &dyn Storage) {
    use edgekeep_protocol::rollout::{ProgressState, RolloutStatus};
    use edgekeep_protocol::telemetry::TelemetryBatch;

    let audited_before = audit_len(s, "org1");
    let publisher = PublisherKeyRecord {
        org_id: "org1".into(),
        key_id: "ed25519:k".into(),
        name: "ci".into(),
        public_key: [3; 32],
        created_at: 1_000,
        revoked_at: None,
    };
    s.insert_publisher_key(&publisher, &event("org1", "publisher_key.register"))
        .unwrap();
    assert!(matches!(
        s.insert_publisher_key(&publisher, &event("org1", "x")),
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(s.publisher_keys("org1").unwrap(), vec![publisher]);
    assert!(s.publisher_keys("org2").unwrap().is_empty());
    assert!(
        s.revoke_publisher_key(
            "org1",
            "ed25519:k",
            1_001,
            &event("org1", "publisher_key.revoke")
        )
        .unwrap()
    );
    assert!(
        !s.revoke_publisher_key("org1", "ed25519:k", 1_002, &event("org1", "x"))
            .unwrap()
    );

    let version = |v: u64, artifact: &str| ModelVersionRecord {
        org_id: "org1".into(),
        model: "kws".into(),
        version: v,
        artifact_id: artifact.into(),
        manifest_json: "{}".into(),
        sealed_content_key: vec![1, 2, 3],
        uploaded_at: 1_000,
        uploaded_by: "member:own1".into(),
        approved_at: None,
        approved_by: None,
    };
    s.insert_model_version(&version(2, "a2"), &event("org1", "model_version.upload"))
        .unwrap();
    for refused in [version(1, "a1"), version(2, "a9"), version(3, "a2")] {
        assert!(matches!(
            s.insert_model_version(&refused, &event("org1", "x")),
            Err(StorageError::Conflict(_))
        ));
    }
    assert!(
        s.approve_model_version(
            "org1",
            "kws",
            2,
            "member:own1",
            1_003,
            &event("org1", "model_version.approve")
        )
        .unwrap()
    );
    assert!(
        !s.approve_model_version("org1", "kws", 2, "member:own1", 1_004, &event("org1", "x"))
            .unwrap()
    );
    let stored = s.model_version_by_artifact("org1", "a2").unwrap().unwrap();
    assert_eq!(stored.approved_at, Some(1_003));
    assert!(s.model_version_by_artifact("org2", "a2").unwrap().is_none());
    assert!(s.model_version("org1", "kws", 1).unwrap().is_none());

    let rollout = RolloutRecord {
        id: "rol1".into(),
        org_id: "org1".into(),
        model: "kws".into(),
        version: 2,
        previous_version: None,
        device_group: None,
        basis_points: 100,
        status: RolloutStatus::Active,
        created_at: 1_005,
        updated_at: 1_005,
    };
    s.insert_rollout(&rollout, &event("org1", "rollout.create"))
        .unwrap();
    let resume = RolloutChange {
        basis_points: 100,
        status: RolloutStatus::Active,
        from: &[RolloutStatus::Paused],
        at: 1_006,
    };
    assert!(
        !s.update_rollout("org1", "rol1", &resume, &event("org1", "x"))
            .unwrap()
    );
    let promote = RolloutChange {
        basis_points: 5_000,
        status: RolloutStatus::Active,
        from: &[RolloutStatus::Active],
        at: 1_006,
    };
    assert!(
        !s.update_rollout("org2", "rol1", &promote, &event("org2", "x"))
            .unwrap()
    );
    assert!(
        s.update_rollout("org1", "rol1", &promote, &event("org1", "rollout.promote"))
            .unwrap()
    );
    assert_eq!(s.rollouts("org1").unwrap()[0].basis_points, 5_000);
    assert!(s.rollouts("org2").unwrap().is_empty());

    assert!(s.record_assignment("org1", "rol1", "dev1", 1_007).unwrap());
    assert!(!s.record_assignment("org1", "rol1", "dev1", 1_008).unwrap());
    assert!(s.has_progress("org1", "rol1", "dev1").unwrap());
    assert_eq!(
        s.rollout_progress("org1").unwrap(),
        vec![("rol1".to_owned(), ProgressState::Assigned, 1)]
    );

    let batch = |seq: u64| -> TelemetryBatch {
        serde_json::from_value(serde_json::json!({"seq": seq, "recorded_at": 1, "events": [
            {"type": "latency", "model": {"model": "kws", "version": 2},
             "counts": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]},
            {"type": "rollout_progress", "model": {"model": "kws", "version": 2}, "state": "active"}
        ]}))
        .unwrap()
    };
    let ingest = |seq: u64| {
        s.ingest_telemetry("org1", "dev1", &batch(seq), 2_000, 100)
            .unwrap()
    };
    assert_eq!((ingest(1).acked_through, ingest(1).duplicate), (1, true));
    assert_eq!((ingest(3).acked_through, ingest(3).duplicate), (1, true));
    assert_eq!(ingest(2).acked_through, 3);
    assert!(matches!(
        s.ingest_telemetry("org1", "dev1", &batch(500), 2_000, 100),
        Err(StorageError::Conflict(_))
    ));
    let window = s.telemetry_window("org1", 0).unwrap();
    assert_eq!(
        window.latency,
        vec![super::VersionLatency {
            model: "kws".to_owned(),
            version: 2,
            per_device: vec![{
                let mut c = [0u64; 12];
                c[0] = 3;
                c
            }],
        }]
    );
    assert!(s.telemetry_window("org2", 0).unwrap().latency.is_empty());
    assert_eq!(
        s.rollout_progress("org1").unwrap(),
        vec![("rol1".to_owned(), ProgressState::Active, 1)]
    );
    assert_eq!(s.device_sdk_version("org1", "dev1").unwrap(), None);
    let statuses = s.device_statuses("org1").unwrap();
    assert_eq!(statuses[0].last_seen_at, Some(2_000));
    assert_eq!(s.purge_telemetry(2_001).unwrap(), 3);
    assert!(s.telemetry_window("org1", 0).unwrap().latency.is_empty());

    let entries = s.audit_entries("org1", None, None).unwrap();
    let actions: Vec<&str> = entries[audited_before..]
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "publisher_key.register",
            "publisher_key.revoke",
            "model_version.upload",
            "model_version.approve",
            "rollout.create",
            "rollout.promote"
        ]
    );
    assert_eq!(
        verify_org(s, &crate::audit::AuditKey::derive(&[3; 32]), "org1", None)
            .unwrap()
            .result,
        Ok(entries.len() as u64)
    );
}

#[test]
fn sqlite_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(
        &dir.path().join("db.sqlite"),
        2,
        crate::audit::AuditKey::derive(&[3; 32]),
    )
    .unwrap();
    suite(&storage);
    fleet_suite(&storage);
    people_suite(&storage);
}

#[test]
fn postgres_passes_the_suite() {
    let Some(cluster) = postgres::cluster::TestCluster::start_unless_absent() else {
        return;
    };
    let url = cluster.fresh_database("conformance").unwrap();
    let storage = PgStorage::open(&url, 4, crate::audit::AuditKey::derive(&[3; 32]))
        .unwrap_or_else(|e| panic!("{e}: {}", cluster.log()));
    suite(&storage);
    fleet_suite(&storage);
    people_suite(&storage);
}

fn user(id: &str, email: Option<&str>) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        handle: format!("handle-{id}"),
        email: email.map(str::to_owned),
        display_name: "Ada".to_owned(),
        created_at: 1_000,
        deactivated_at: None,
    }
}

fn session(id: &str, hash: u8, user: &str) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        hash: [hash; 32],
        user_id: user.to_owned(),
        org_id: "set by acceptance".to_owned(),
        member_id: "set by acceptance".to_owned(),
        method: "invitation".to_owned(),
        created_at: 1_000,
        last_seen_at: 1_000,
        expires_at: 50_000,
        stepped_up_at: Some(1_000),
        revoked_at: None,
    }
}

fn passkey(id: &str, user: &str) -> PasskeyRecord {
    PasskeyRecord {
        id: id.to_owned(),
        user_id: user.to_owned(),
        name: "laptop".to_owned(),
        passkey_json: "{}".to_owned(),
        created_at: 1_000,
        last_used_at: None,
    }
}

fn invitation(id: &str, hash: u8, role: Role, member_id: Option<&str>) -> InvitationRecord {
    InvitationRecord {
        id: id.to_owned(),
        org_id: "org1".to_owned(),
        token_hash: [hash; 32],
        email: None,
        role,
        member_id: member_id.map(str::to_owned),
        created_by: "member:own1".to_owned(),
        created_at: 1_000,
        expires_at: 10_000,
        accepted_at: None,
        revoked_at: None,
    }
}

fn accept_in(
    s: &dyn Storage,
    hash: u8,
    user: &UserRecord,
    new_user: bool,
    passkey: Option<&PasskeyRecord>,
    session: &SessionRecord,
    audit: &[AuditEvent],
) -> Result<MemberRecord, StorageError> {
    s.accept_invitation(&Acceptance {
        token_hash: [hash; 32],
        user,
        new_user,
        passkey,
        new_member: &member("ignored", "mem_new", Role::Member),
        session,
        audit,
        at: 2_000,
    })
}

/// People: invitations accepted once, the first Owner linked, sessions bound to the
/// membership and ended with it, the last passkey kept, ceremonies single use. Runs after
/// [`suite`] (org `org1` with Owner `own1`).
pub fn people_suite(s: &dyn Storage) {
    let audit = [event("org1", "invitation.accept")];
    s.insert_invitation(
        &invitation("inv1", 41, Role::Owner, Some("own1")),
        &audit[0],
    )
    .unwrap();
    s.insert_invitation(&invitation("inv2", 42, Role::Admin, None), &audit[0])
        .unwrap();
    let ada = user("usr1", Some("ada@example.com"));
    let first_key = passkey("cred1", "usr1");
    let accept = |hash: u8,
                  user: &UserRecord,
                  new_user: bool,
                  key: Option<&PasskeyRecord>,
                  session: SessionRecord| {
        accept_in(s, hash, user, new_user, key, &session, &audit)
    };
    let linked = accept(
        41,
        &ada,
        true,
        Some(&first_key),
        session("ses1", 51, "usr1"),
    )
    .unwrap();
    assert_eq!(
        (linked.id.as_str(), linked.role, linked.user_id.as_deref()),
        ("own1", Role::Owner, Some("usr1")),
        "the first Owner's membership is linked, not duplicated"
    );
    let again = accept(
        41,
        &user("usr2", None),
        true,
        None,
        session("ses2", 52, "usr2"),
    );
    assert!(
        matches!(again, Err(StorageError::Conflict(_))),
        "an invitation is single use"
    );
    assert!(
        s.user("usr2").unwrap().is_none(),
        "a refused acceptance creates nobody"
    );
    assert!(s.session_by_hash(&[52; 32]).unwrap().is_none());

    let (found, member, person) = s.session_by_hash(&[51; 32]).unwrap().unwrap();
    assert_eq!(
        (found.org_id.as_str(), member.id.as_str()),
        ("org1", "own1")
    );
    assert_eq!(person.email.as_deref(), Some("ada@example.com"));
    assert_eq!(s.user_by_handle("handle-usr1").unwrap().unwrap().id, "usr1");
    assert_eq!(
        s.user_by_email("ada@example.com").unwrap().unwrap().id,
        "usr1"
    );

    let expired = InvitationRecord {
        expires_at: 1_500,
        ..invitation("inv3", 43, Role::Member, None)
    };
    s.insert_invitation(&expired, &audit[0]).unwrap();
    let bob = user("usr3", None);
    assert!(accept(43, &bob, true, None, session("ses3", 53, "usr3")).is_err());
    assert!(
        s.revoke_invitation("org1", "inv2", 2_000, &audit[0])
            .unwrap()
    );
    assert!(
        !s.revoke_invitation("org1", "inv2", 2_000, &audit[0])
            .unwrap()
    );
    assert!(
        accept(42, &bob, true, None, session("ses3", 53, "usr3")).is_err(),
        "revoked"
    );

    s.insert_invitation(&invitation("inv4", 44, Role::Admin, None), &audit[0])
        .unwrap();
    let bob_member = accept(
        44,
        &bob,
        true,
        Some(&passkey("cred3", "usr3")),
        session("ses4", 54, "usr3"),
    )
    .unwrap();
    assert_eq!(
        (bob_member.role, bob_member.org_id.as_str()),
        (Role::Admin, "org1")
    );
    s.insert_invitation(&invitation("inv5", 45, Role::Member, None), &audit[0])
        .unwrap();
    assert!(
        accept(45, &bob, false, None, session("ses5", 55, "usr3")).is_err(),
        "a person is a member of an org once"
    );
    assert_eq!(
        s.invitations("org1")
            .unwrap()
            .iter()
            .find(|i| i.id == "inv5")
            .unwrap()
            .accepted_at,
        None,
        "the refused acceptance rolled back"
    );
    assert_eq!(s.memberships("usr3").unwrap().len(), 1);

    let second_key = passkey("cred2", "usr1");
    s.insert_passkey(&second_key, &audit[0]).unwrap();
    assert!(
        matches!(
            s.insert_passkey(&passkey("cred2", "usr3"), &audit[0]),
            Err(StorageError::Conflict(_))
        ),
        "a credential id belongs to one person"
    );
    assert!(
        s.rename_passkey("usr1", "cred2", "phone", &audit[0])
            .unwrap()
    );
    assert!(
        !s.rename_passkey("usr3", "cred2", "stolen", &audit[0])
            .unwrap(),
        "not theirs"
    );
    s.record_passkey_use("cred2", Some("{\"counter\":5}"), 3_000)
        .unwrap();
    let used = s.passkey("cred2").unwrap().unwrap();
    assert_eq!(
        (
            used.last_used_at,
            used.passkey_json.as_str(),
            used.name.as_str()
        ),
        (Some(3_000), "{\"counter\":5}", "phone")
    );
    assert!(s.remove_passkey("usr1", "cred1", &audit[0]).unwrap());
    assert!(
        matches!(
            s.remove_passkey("usr1", "cred2", &audit[0]),
            Err(StorageError::Conflict(_))
        ),
        "the last passkey stays"
    );
    assert_eq!(s.passkeys("usr1").unwrap().len(), 1);

    assert_eq!(s.sessions_of_user("usr3", 2_000).unwrap().len(), 1);
    s.step_up_session("org1", "ses4", 2_500, &audit[0]).unwrap();
    assert_eq!(
        s.session_by_hash(&[54; 32])
            .unwrap()
            .unwrap()
            .0
            .stepped_up_at,
        Some(2_500)
    );
    s.remove_member(
        "org1",
        &bob_member.id,
        3_000,
        &event("org1", "member.remove"),
    )
    .unwrap();
    assert!(
        s.session_by_hash(&[54; 32]).unwrap().is_none(),
        "removing a member ends its sessions at once"
    );
    assert!(s.revoke_session("usr1", "ses1", 3_000, &audit[0]).unwrap());
    assert!(!s.revoke_session("usr1", "ses1", 3_000, &audit[0]).unwrap());
    assert!(s.sessions_of_user("usr1", 3_000).unwrap().is_empty());

    let ceremony = CeremonyRecord {
        hash: [61; 32],
        kind: "login".to_owned(),
        subject: "-".to_owned(),
        state: "{}".to_owned(),
        expires_at: 5_000,
    };
    s.insert_ceremony(&ceremony, 1_000).unwrap();
    assert!(
        s.take_ceremony(&[61; 32], "register", 1_000)
            .unwrap()
            .is_none(),
        "wrong kind"
    );
    assert!(
        s.take_ceremony(&[61; 32], "login", 1_000)
            .unwrap()
            .is_none(),
        "a wrong-kind take spends it"
    );
    s.insert_ceremony(
        &CeremonyRecord {
            hash: [62; 32],
            ..ceremony.clone()
        },
        1_000,
    )
    .unwrap();
    assert_eq!(
        s.take_ceremony(&[62; 32], "login", 1_000)
            .unwrap()
            .unwrap()
            .state,
        "{}"
    );
    assert!(
        s.take_ceremony(&[62; 32], "login", 1_000)
            .unwrap()
            .is_none(),
        "single use"
    );
    s.insert_ceremony(
        &CeremonyRecord {
            hash: [63; 32],
            ..ceremony
        },
        1_000,
    )
    .unwrap();
    assert!(
        s.take_ceremony(&[63; 32], "login", 5_000)
            .unwrap()
            .is_none(),
        "expired"
    );

    assert_eq!(
        verify_org(s, &crate::audit::AuditKey::derive(&[3; 32]), "org1", None)
            .unwrap()
            .result
            .map(|n| n > 0),
        Ok(true),
        "the chain holds through every people change"
    );
}
