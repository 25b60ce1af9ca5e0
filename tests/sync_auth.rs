//! Device auth against the real control plane over HTTPS: enrollment, refresh before expiry
//! (one at a time), credentials only in the store, pinning, revocation.

#[path = "sync_harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use edgekeep::sync::{SyncError, SyncState, spki_pins_of_pem};
use harness::{Harness, RequestLog, open_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolls_and_persists_credentials_in_the_store() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let client = h.client_builder(store.clone()).build().unwrap();
    assert_eq!(client.state_async().await.unwrap(), SyncState::Unenrolled);
    assert!(matches!(
        client.check_credentials_async().await,
        Err(SyncError::NotEnrolled)
    ));
    let bootstrap = h.bootstrap().await;
    let device_id = client.enroll_async(&h.org_id, &bootstrap).await.unwrap();
    client.check_credentials_async().await.unwrap();
    drop(client);

    // A new client over the same store is still enrolled: credentials were persisted.
    let again = h.client_builder(store.clone()).build().unwrap();
    assert_eq!(
        again.state_async().await.unwrap(),
        SyncState::Enrolled {
            device_id: device_id.clone()
        }
    );
    again.check_credentials_async().await.unwrap();

    // Nothing secret is in the database file in plaintext.
    drop(again);
    store.checkpoint().unwrap();
    let raw = std::fs::read(dir.path().join("edgekeep.db")).unwrap();
    for needle in ["eka_", "ekr_", "ekb_", bootstrap.as_str()] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} found in the database file"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_bootstrap_token_is_a_typed_error() {
    let h = Harness::start().await;
    let bootstrap = h.bootstrap().await;
    let first = tempfile::tempdir().unwrap();
    let a = h.client_builder(open_store(first.path())).build().unwrap();
    a.enroll_async(&h.org_id, &bootstrap).await.unwrap();
    let second = tempfile::tempdir().unwrap();
    let b = h.client_builder(open_store(second.path())).build().unwrap();
    match b.enroll_async(&h.org_id, &bootstrap).await {
        Err(SyncError::Server { status: 401, code }) => {
            assert_eq!(code, edgekeep_protocol::ErrorCode::BootstrapTokenUsed)
        }
        other => panic!("expected bootstrap_token_used, got {other:?}"),
    }
    assert_eq!(b.state_async().await.unwrap(), SyncState::Unenrolled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_before_expiry_once_for_concurrent_callers() {
    let h = Harness::start_with(|c| c.access_token_ttl_secs = 30).await;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(RequestLog::default());
    let client = h
        .enroll(
            h.client_builder(open_store(dir.path()))
                .refresh_margin(Duration::from_secs(28))
                .request_observer(log.clone()),
        )
        .await;
    client.check_credentials_async().await.unwrap();
    assert_eq!(log.count_path("/v1/device/refresh"), 0);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.check_credentials_async().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(log.count_path("/v1/device/refresh"), 1);
    assert_eq!(log.count_path("/v1/device/me"), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_stops_syncing_and_wipes_credentials() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let client = h.client_builder(store.clone()).build().unwrap();
    let device_id = client
        .enroll_async(&h.org_id, &h.bootstrap().await)
        .await
        .unwrap();
    client.check_credentials_async().await.unwrap();

    h.revoke(&device_id).await;
    assert!(matches!(
        client.check_credentials_async().await,
        Err(SyncError::Revoked)
    ));
    assert_eq!(client.state_async().await.unwrap(), SyncState::Revoked);
    assert!(matches!(client.sync_async().await, Err(SyncError::Revoked)));
    drop(client);

    let reopened = h.client_builder(store).build().unwrap();
    assert_eq!(reopened.state_async().await.unwrap(), SyncState::Revoked);

    // A new bootstrap token brings the device back with a new identity.
    let new_id = reopened
        .enroll_async(&h.org_id, &h.bootstrap().await)
        .await
        .unwrap();
    assert_ne!(new_id, device_id);
    reopened.check_credentials_async().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spki_pinning_accepts_the_pinned_key_and_refuses_others() {
    let h = Harness::start().await;
    let leaf = std::fs::read(h.data.path().join("tls/cert.pem")).unwrap();
    let pins = spki_pins_of_pem(&leaf).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pinned = h
        .client_builder(open_store(dir.path()))
        .pin_spki(pins[0])
        .build()
        .unwrap();
    pinned
        .enroll_async(&h.org_id, &h.bootstrap().await)
        .await
        .unwrap();

    let other = tempfile::tempdir().unwrap();
    let wrong = h
        .client_builder(open_store(other.path()))
        .pin_spki([0u8; 32])
        .retry_policy(edgekeep::sync::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        })
        .build()
        .unwrap();
    assert!(matches!(
        wrong.enroll_async(&h.org_id, &h.bootstrap().await).await,
        Err(SyncError::Network(_))
    ));
}

#[test]
fn blocking_api_works_outside_async_and_refuses_inside() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let h = runtime.block_on(Harness::start());
    let bootstrap = runtime.block_on(h.bootstrap());
    let dir = tempfile::tempdir().unwrap();
    let client = h.client_builder(open_store(dir.path())).build().unwrap();
    client.enroll(&h.org_id, &bootstrap).unwrap();
    client.check_credentials().unwrap();
    let inside = runtime.block_on(async { client.check_credentials() });
    assert!(matches!(inside, Err(SyncError::BlockingInAsync)));
}
