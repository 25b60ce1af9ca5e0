//! [`Storage`](super::Storage) on PostgreSQL: several server instances on one database. ADR 0018
//! records the driver and the tenant-isolation design.

mod artifacts;
pub mod cluster;
mod copy;
mod counters;
mod fleet;
mod idp;
mod people;
pub mod schema;
mod scim;
mod store;
mod tls;

pub use artifacts::ARTIFACT_CHUNK;
pub use copy::CopyReport;
pub use store::PgStorage;
pub use tls::Protection;

#[cfg(test)]
mod tests {
    use super::cluster::TestCluster;

    fn cluster() -> Option<TestCluster> {
        TestCluster::start_unless_absent()
    }

    #[test]
    fn a_test_cluster_serves_on_loopback_with_passwords_only() {
        let Some(cluster) = cluster() else { return };
        let mut client = postgres::Client::connect(&cluster.admin_url(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("{e}: {}", cluster.log()));
        let row = client.query_one("SELECT 1 + 1", &[]).unwrap();
        assert_eq!(row.get::<_, i32>(0), 2);
        client.batch_execute("CREATE DATABASE fresh").unwrap();
        assert!(postgres::Client::connect(&cluster.url("fresh"), postgres::NoTls).is_ok());

        let wrong = cluster.admin_url().replace("edgekeep:", "edgekeep:x");
        let Err(refused) = postgres::Client::connect(&wrong, postgres::NoTls) else {
            panic!("a wrong password was accepted");
        };
        assert_eq!(
            refused.code(),
            Some(&postgres::error::SqlState::INVALID_PASSWORD),
            "{refused:?}"
        );
    }

    #[test]
    fn opening_migrates_once_refuses_superusers_newer_schemas_and_bad_urls() {
        use crate::storage::StorageError;
        let Some(cluster) = cluster() else { return };
        let url = cluster.fresh_database("opening").unwrap();
        let pool = super::schema::open(&url, 2).unwrap_or_else(|e| panic!("{e}"));
        let mut client = pool.get().unwrap();
        assert_eq!(super::schema::schema_version(&mut **client).unwrap(), 4);
        drop(client);
        // Opening again (another instance) finds the work done.
        super::schema::open(&url, 2).unwrap();

        let superuser = super::schema::open(&cluster.url("opening"), 1).unwrap_err();
        assert!(matches!(superuser, StorageError::Unusable(ref m) if m.contains("superuser")));

        let mut client = pool.get().unwrap();
        client
            .execute("INSERT INTO schema_migrations VALUES (99, 0)", &[])
            .unwrap();
        assert!(matches!(
            super::schema::open(&url, 1),
            Err(StorageError::SchemaTooNew(99))
        ));

        let wrong_password = url.replace("edgekeep_server:", "edgekeep_server:x");
        assert!(matches!(
            super::schema::open(&wrong_password, 1),
            Err(StorageError::Unusable(ref m)) if m.starts_with("28P01")
        ));
        let no_database = url.replace("/opening", "/absent");
        assert!(matches!(
            super::schema::open(&no_database, 1),
            Err(StorageError::Unusable(ref m)) if m.starts_with("3D000")
        ));
        assert!(matches!(
            super::schema::open("postgres://[::1", 1),
            Err(StorageError::Unusable(_))
        ));
    }

    /// Connections are protected as the URL asks: a verified session is TLS on the server's
    /// side too, a certificate from another CA or for another name is refused (the name only
    /// under `verify-full`), `disable` is plain, and a role may sign in with a client
    /// certificate and no password.
    #[test]
    fn tls_to_the_database_is_verified_as_the_url_asks() {
        use crate::storage::StorageError;
        let Some(cluster) = cluster() else { return };
        let url = cluster.fresh_database("protected").unwrap();
        let session_is_tls = |url: &str| {
            let pool = super::schema::open(url, 1).unwrap_or_else(|e| panic!("{url}: {e}"));
            let mut client = pool.get().unwrap();
            client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .unwrap()
                .get::<_, bool>(0)
        };
        assert!(url.contains("sslmode=verify-full"));
        assert!(session_is_tls(&url));
        let plain = url.replace("sslmode=verify-full", "sslmode=disable");
        assert!(!session_is_tls(&plain));

        let elsewhere = tempfile::tempdir().unwrap();
        let other_ca = elsewhere.path().join("other-ca.pem");
        let other = crate::tls::DevAuthority::generate("someone else").unwrap();
        std::fs::write(&other_ca, other.ca_pem()).unwrap();
        let ca = cluster.ca_path();
        let wrong_ca = url.replace(
            &super::cluster::url_encoded(&ca),
            &super::cluster::url_encoded(&other_ca),
        );
        match super::schema::open(&wrong_ca, 1) {
            Err(StorageError::Unusable(why)) => {
                assert!(why.contains("UnknownIssuer"), "{why}")
            }
            other => panic!("a certificate from another CA: {other:?}"),
        }

        // Connect to 127.0.0.1 while expecting a host the certificate does not name.
        let misnamed = url.replace("@127.0.0.1:", "@db.example:").replace(
            "sslmode=verify-full",
            "hostaddr=127.0.0.1&sslmode=verify-full",
        );
        match super::schema::open(&misnamed, 1) {
            Err(StorageError::Unusable(why)) => {
                assert!(why.contains("not valid for name"), "{why}")
            }
            other => panic!("a certificate for another name: {other:?}"),
        }
        let chain_only = misnamed.replace("sslmode=verify-full", "sslmode=verify-ca");
        assert!(session_is_tls(&chain_only));

        cluster
            .fresh_database_for_certificate("by_certificate", "fleet_ops")
            .unwrap();
        let (cert, key) = cluster.issue_client_certificate("fleet_ops").unwrap();
        let base = format!(
            "postgres://fleet_ops@127.0.0.1:{}/by_certificate?sslmode=verify-full&sslrootcert={}",
            cluster.port(),
            super::cluster::url_encoded(&ca)
        );
        let with_certificate = format!(
            "{base}&sslcert={}&sslkey={}",
            super::cluster::url_encoded(&cert),
            super::cluster::url_encoded(&key)
        );
        assert!(session_is_tls(&with_certificate));
        assert!(matches!(
            super::schema::open(&base, 1),
            Err(StorageError::Unusable(_))
        ));
    }

    /// A query that forgets `WHERE org_id` sees only the org its transaction names, and
    /// nothing without one; a row for another org cannot be written.
    #[test]
    fn the_policies_scope_an_unscoped_query_to_the_transactions_org() {
        let Some(cluster) = cluster() else { return };
        let url = cluster.fresh_database("policies").unwrap();
        let pool = super::schema::open(&url, 1).unwrap_or_else(|e| panic!("{e}"));
        let mut client = pool.get().unwrap();
        for org in ["org_a", "org_b"] {
            let mut tx = client.transaction().unwrap();
            tx.execute("SELECT set_config('edgekeep.org_id', $1, true)", &[&org])
                .unwrap();
            tx.execute(
                "INSERT INTO orgs (id, name, created_at) VALUES ($1, $1, 0)",
                &[&org],
            )
            .unwrap();
            for n in 0..3 {
                tx.execute(
                    "INSERT INTO devices (id, org_id, identity_key, sealed_kwk, enrolled_at) \
                     VALUES ($1, $2, '\\x00', '\\x00', 0)",
                    &[&format!("{org}_dev{n}"), &org],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }

        let mut tx = client.transaction().unwrap();
        tx.execute("SELECT set_config('edgekeep.org_id', 'org_a', true)", &[])
            .unwrap();
        let unscoped: Vec<String> = tx
            .query("SELECT id FROM devices ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(unscoped, ["org_a_dev0", "org_a_dev1", "org_a_dev2"]);
        let orgs: i64 = tx
            .query_one("SELECT count(*) FROM orgs", &[])
            .unwrap()
            .get(0);
        assert_eq!(orgs, 1);
        let forged = tx.execute(
            "INSERT INTO devices (id, org_id, identity_key, sealed_kwk, enrolled_at) \
             VALUES ('forged', 'org_b', '\\x00', '\\x00', 0)",
            &[],
        );
        assert!(
            forged.is_err(),
            "a row for org B written while scoped to org A"
        );
        drop(tx);

        // The setting is transaction-local: the next transaction, naming no org, sees nothing.
        let mut tx = client.transaction().unwrap();
        let none: i64 = tx
            .query_one("SELECT count(*) FROM devices", &[])
            .unwrap()
            .get(0);
        assert_eq!(none, 0);
        drop(tx);

        // The audit trail refuses changes even from its owner.
        let mut tx = client.transaction().unwrap();
        tx.execute("SELECT set_config('edgekeep.org_id', 'org_a', true)", &[])
            .unwrap();
        tx.execute(
            "INSERT INTO audit_log VALUES ('org_a', 1, 0, 'a', 'b', 'c', 'ok', 'r', 'p', 'h')",
            &[],
        )
        .unwrap();
        assert!(
            tx.execute("UPDATE audit_log SET outcome = 'x'", &[])
                .is_err()
        );
    }

    /// Two instances (two pools on one database) appending to one org's chain at once, from
    /// several threads each, leave one chain that verifies, with every entry in it.
    #[test]
    fn concurrent_appends_from_two_instances_keep_one_chain() {
        use crate::audit::{AuditKey, verify_org};
        use crate::storage::{ApiKeyRecord, AuditEvent, MemberRecord, OrgRecord, Storage};
        use edgekeep_protocol::api::Role;

        let Some(cluster) = cluster() else { return };
        let url = cluster.fresh_database("chain").unwrap();
        let key = AuditKey::derive(&[5; 32]);
        let instances = [
            super::PgStorage::open(&url, 4, key.clone()).unwrap(),
            super::PgStorage::open(&url, 4, key.clone()).unwrap(),
        ];
        let event = |action: String| AuditEvent {
            org_id: "org1".into(),
            actor: "system".into(),
            action,
            target: "t".into(),
            outcome: "ok".into(),
            request_id: "req".into(),
            at: 1_000,
        };
        instances[0]
            .create_org(
                &OrgRecord {
                    id: "org1".into(),
                    name: "One".into(),
                    created_at: 1_000,
                },
                &MemberRecord {
                    id: "own1".into(),
                    org_id: "org1".into(),
                    name: "o".into(),
                    role: Role::Owner,
                    created_at: 1_000,
                    user_id: None,
                },
                &ApiKeyRecord {
                    id: "key1".into(),
                    org_id: "org1".into(),
                    member_id: "own1".into(),
                    name: "k".into(),
                    prefix: "ek_x".into(),
                    hash: [1; 32],
                    scopes: vec![],
                    created_at: 1_000,
                    expires_at: None,
                    revoked_at: None,
                    last_used_at: None,
                    replaced_by: None,
                },
                &[event("org.create".into())],
            )
            .unwrap();
        const THREADS: usize = 4;
        const APPENDS: usize = 25;
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let storage = &instances[thread % 2];
                let event = &event;
                scope.spawn(move || {
                    for n in 0..APPENDS {
                        storage
                            .append_audit(&[event(format!("test.{thread}.{n}"))])
                            .unwrap();
                    }
                });
            }
        });
        let report = verify_org(&instances[1], &key, "org1", None).unwrap();
        assert_eq!(report.result, Ok((THREADS * APPENDS + 1) as u64));
    }

    /// A proof id recorded by one instance is refused by another (and by itself), once, even
    /// when several threads race; a rate budget is one budget across instances and refills.
    #[test]
    fn proof_ids_and_budgets_are_shared_by_instances() {
        use crate::audit::AuditKey;
        use crate::ratelimit::Budget;

        let Some(cluster) = cluster() else { return };
        let url = cluster.fresh_database("counters").unwrap();
        let key = AuditKey::derive(&[6; 32]);
        let a = super::PgStorage::open(&url, 4, key.clone()).unwrap();
        let b = super::PgStorage::open(&url, 4, key).unwrap();

        assert!(a.first_use("dev1", "jti1", 200, 100).unwrap());
        assert!(
            !b.first_use("dev1", "jti1", 200, 150).unwrap(),
            "replayed elsewhere"
        );
        assert!(
            !a.first_use("dev1", "jti1", 200, 150).unwrap(),
            "replayed here"
        );
        assert!(
            b.first_use("dev2", "jti1", 200, 150).unwrap(),
            "another scope"
        );
        assert!(
            a.first_use("dev1", "jti1", 400, 200).unwrap(),
            "after it expired"
        );
        let winners = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8)
                .map(|n| {
                    let instance = if n % 2 == 0 { &a } else { &b };
                    scope.spawn(move || instance.first_use("dev3", "raced", 500, 100).unwrap())
                })
                .collect();
            racers
                .into_iter()
                .map(|racer| racer.join().unwrap())
                .filter(|won| *won)
                .count()
        });
        assert_eq!(winners, 1);

        let budget = Budget::per_minute("test", 3);
        let taken = (0..6)
            .filter(|n| {
                let instance = if n % 2 == 0 { &a } else { &b };
                instance.take_tokens(&budget, "org1", 1, 1_000.0).unwrap()
            })
            .count();
        assert_eq!(taken, 3, "one budget across both instances");
        assert!(
            a.take_tokens(&budget, "org2", 1, 1_000.0).unwrap(),
            "another key"
        );
        assert!(
            !a.take_tokens(&budget, "org1", 1, 1_010.0).unwrap(),
            "10 s refill 0.5"
        );
        assert!(
            b.take_tokens(&budget, "org1", 1, 1_020.0).unwrap(),
            "20 s refill 1"
        );
        assert!(
            !a.take_tokens(&budget, "org1", 4, 5_000.0).unwrap(),
            "more than a burst"
        );
        assert!(
            a.take_tokens(&budget, "org1", 3, 5_000.0).unwrap(),
            "a full burst"
        );
        // Three proof ids have expired; org2's bucket has been idle over two hours, org1's not.
        assert_eq!(a.prune_counters(10_000).unwrap(), 3 + 1);
    }

    /// An SQLite deployment (everything the conformance suites leave behind) copied into an
    /// empty PostgreSQL database: every row of every table, credentials found again by their
    /// hash, the audit chains verifying with the same key; a second copy is refused.
    #[test]
    fn an_sqlite_deployment_moves_up_whole() {
        use crate::audit::{AuditKey, verify_all};
        use crate::storage::{FleetStorage, SqliteStorage, Storage, StorageError, conformance};

        let Some(cluster) = cluster() else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let key = AuditKey::derive(&[3; 32]);
        let sqlite = SqliteStorage::open(&path, 1, key.clone()).unwrap();
        conformance::suite(&sqlite);
        conformance::fleet_suite(&sqlite);
        conformance::people_suite(&sqlite);

        let url = cluster.fresh_database("moving").unwrap();
        let pg = super::PgStorage::open(&url, 2, key.clone()).unwrap();
        let source = rusqlite::Connection::open(&path).unwrap();
        let versions: Vec<(String, String)> = source
            .prepare("SELECT org_id, artifact_id FROM model_versions")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!versions.is_empty());
        let artifacts = dir.path().join("artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        // A folder that lost a ciphertext: refused, and nothing is left behind.
        assert!(matches!(
            pg.copy_from_sqlite(&path, Some(&artifacts)),
            Err(StorageError::Io(ref m)) if m.contains("missing")
        ));
        assert!(pg.org_ids().unwrap().is_empty());
        for (_, artifact_id) in &versions {
            std::fs::write(artifacts.join(artifact_id), artifact_id.as_bytes()).unwrap();
        }
        let report = pg.copy_from_sqlite(&path, Some(&artifacts)).unwrap();
        assert_eq!(report.artifacts, versions.len() as u64);
        for (org, artifact_id) in &versions {
            assert_eq!(
                pg.artifact_chunk(org, artifact_id, 0).unwrap().as_deref(),
                Some(artifact_id.as_bytes())
            );
        }
        for (table, rows) in &report.tables {
            let expected: u64 = source
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                    row.get(0)
                })
                .unwrap();
            assert_eq!(*rows, expected, "{table}");
        }
        let copied: u64 = report.tables.iter().map(|(_, rows)| rows).sum();
        assert!(copied > 50, "{report:?}");

        assert_eq!(pg.org_ids().unwrap(), sqlite.org_ids().unwrap());
        let reports = verify_all(&pg, &key, &[]).unwrap();
        assert!(
            !reports.is_empty() && reports.iter().all(|r| r.result.is_ok()),
            "{reports:?}"
        );
        for org in sqlite.org_ids().unwrap() {
            assert_eq!(
                pg.audit_entries(&org, None, None).unwrap(),
                sqlite.audit_entries(&org, None, None).unwrap()
            );
            assert_eq!(pg.members(&org).unwrap(), sqlite.members(&org).unwrap());
            assert_eq!(pg.devices(&org).unwrap(), sqlite.devices(&org).unwrap());
            assert_eq!(pg.rollouts(&org).unwrap(), sqlite.rollouts(&org).unwrap());
        }
        for hash in 0..=u8::MAX {
            assert_eq!(
                pg.api_key_by_hash(&[hash; 32]).unwrap(),
                sqlite.api_key_by_hash(&[hash; 32]).unwrap()
            );
            assert_eq!(
                pg.device_token(&[hash; 32]).unwrap(),
                sqlite.device_token(&[hash; 32]).unwrap()
            );
        }
        assert!(matches!(
            pg.copy_from_sqlite(&path, None),
            Err(StorageError::Conflict(_))
        ));
    }

    fn with_org(storage: &super::PgStorage, org: &str) {
        use crate::storage::{ApiKeyRecord, AuditEvent, MemberRecord, OrgRecord, Storage};
        use edgekeep_protocol::api::Role;
        let hash = ring::digest::digest(&ring::digest::SHA256, org.as_bytes());
        storage
            .create_org(
                &OrgRecord {
                    id: org.into(),
                    name: org.into(),
                    created_at: 1,
                },
                &MemberRecord {
                    id: format!("{org}_owner"),
                    org_id: org.into(),
                    name: "o".into(),
                    role: Role::Owner,
                    created_at: 1,
                    user_id: None,
                },
                &ApiKeyRecord {
                    id: format!("{org}_key"),
                    org_id: org.into(),
                    member_id: format!("{org}_owner"),
                    name: "k".into(),
                    prefix: "ek_x".into(),
                    hash: hash.as_ref().try_into().unwrap(),
                    scopes: vec![],
                    created_at: 1,
                    expires_at: None,
                    revoked_at: None,
                    last_used_at: None,
                    replaced_by: None,
                },
                &[AuditEvent {
                    org_id: org.into(),
                    actor: "system".into(),
                    action: "org.create".into(),
                    target: "t".into(),
                    outcome: "ok".into(),
                    request_id: "r".into(),
                    at: 1,
                }],
            )
            .unwrap();
    }

    /// Ciphertexts in the database: ranges across chunk boundaries come back byte for byte, a
    /// second store changes nothing, a short source stores nothing, and another org cannot
    /// read them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn artifacts_are_chunked_ranged_and_scoped() {
        use super::ARTIFACT_CHUNK;
        use crate::artifact_store::ArtifactStore;

        let Some((storage, cluster)) = tokio::task::spawn_blocking(|| {
            let cluster = cluster()?;
            let url = cluster.fresh_database("artifacts").unwrap();
            let storage = std::sync::Arc::new(
                super::PgStorage::open(&url, 4, crate::audit::AuditKey::derive(&[8; 32])).unwrap(),
            );
            with_org(&storage, "org_a");
            with_org(&storage, "org_b");
            Some((storage, cluster))
        })
        .await
        .unwrap() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().to_owned(), Some(storage.clone())).unwrap();
        let bytes: Vec<u8> = (0..2 * ARTIFACT_CHUNK + 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let id = "ab".repeat(32);
        let (put, ciphertext, artifact) = (store.clone(), bytes.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            put.put("org_a", &artifact, &ciphertext).unwrap();
            put.put("org_a", &artifact, b"ignored: already stored")
                .unwrap();
        })
        .await
        .unwrap();
        let read = |org: &'static str, start: u64, len: u64| {
            let (store, id) = (store.clone(), id.clone());
            async move {
                let body = store.read_range(org, &id, start, len).await.unwrap();
                axum::body::to_bytes(body, usize::MAX).await
            }
        };
        let total = bytes.len() as u64;
        for (start, len) in [
            (0, total),
            (ARTIFACT_CHUNK - 5, 10),
            (ARTIFACT_CHUNK, ARTIFACT_CHUNK),
            (total - 1, 1),
            (3, 2 * ARTIFACT_CHUNK - 1),
        ] {
            let got = read("org_a", start, len).await.unwrap();
            assert_eq!(&got[..], &bytes[start as usize..(start + len) as usize]);
        }
        assert!(
            read("org_b", 0, 10).await.is_err(),
            "another org's ciphertext"
        );

        let short = dir.path().join("short");
        std::fs::write(&short, b"HEADER0123").unwrap();
        let (put, other) = (store.clone(), "cd".repeat(32));
        let refused = tokio::task::spawn_blocking(move || {
            let refused = put.put_from_file("org_a", &other, &short, 6, 5).is_err();
            (refused, storage.artifact_chunk("org_a", &other, 0).unwrap())
        })
        .await
        .unwrap();
        assert_eq!(refused, (true, None));
        tokio::task::spawn_blocking(move || drop(cluster))
            .await
            .unwrap();
    }
}
