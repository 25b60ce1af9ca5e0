//! Fault injection through a proxy in front of the real control plane: connections cut in
//! the middle of downloads at random offsets, 5xx storms with `Retry-After`, a slow drip.
//! The SDK must end consistent every time: the right version serving, nothing extra.

#[path = "sync_harness.rs"]
mod harness;
use harness::proxy;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgekeep::sync::{ActivationPolicy, RetryPolicy, SlotChange, SyncClient};
use harness::{Harness, model_bytes, open_store, publisher_key};
use proxy::Mitm;

const SLOT: &str = "classifier";

/// A real ONNX model grown to `extra` more bytes with an unknown protobuf field, which ONNX
/// parsers skip: a larger artifact that still loads fast.
fn padded_model(extra: usize) -> Vec<u8> {
    let mut bytes = model_bytes("logreg.onnx");
    let mut field = Vec::new();
    let mut tag: u64 = (999 << 3) | 2;
    loop {
        let b = (tag & 0x7f) as u8;
        tag >>= 7;
        if tag == 0 {
            field.push(b);
            break;
        }
        field.push(b | 0x80);
    }
    let mut len = extra as u64;
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            field.push(b);
            break;
        }
        field.push(b | 0x80);
    }
    field.extend((0..extra).map(|i| (i * 31 % 251) as u8));
    bytes.extend_from_slice(&field);
    bytes
}

fn is_download(c: &proxy::Captured) -> bool {
    c.path.starts_with("/v1/device/artifacts/") && !c.path.ends_with("/key")
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

async fn client(
    h: &Harness,
    mitm: &Mitm,
    publisher: &edgekeep_protocol::signing::SigningKey,
    dir: &std::path::Path,
) -> SyncClient {
    h.enroll(
        SyncClient::builder(&mitm.base_url())
            .store(open_store(dir))
            .root_certificate_pem(mitm.ca_pem.as_bytes().to_vec())
            .publisher_key(publisher.public_key())
            .activation_policy(ActivationPolicy::Immediate)
            .retry_policy(fast_retries()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_resume_after_cuts_at_random_offsets() {
    let mitm = Mitm::start().await;
    let h = Harness::start_behind(&mitm).await;
    let publisher = publisher_key();
    h.register_publisher(&publisher).await;
    let dir = tempfile::tempdir().unwrap();
    let client = client(&h, &mitm, &publisher, dir.path()).await;
    let model = padded_model(300 << 10);

    let cut_next = Arc::new(Mutex::new(None::<usize>));
    let downloaded = Arc::new(AtomicU64::new(0));
    let (cut, counted) = (cut_next.clone(), downloaded.clone());
    mitm.set_hook(move |c, mut a| {
        if is_download(c) && a.status / 100 == 2 {
            if let Some(at) = cut.lock().unwrap().take() {
                a.cut_after = Some(at.min(a.body.len()));
            }
            counted.fetch_add(
                a.cut_after.unwrap_or(a.body.len()) as u64,
                Ordering::Relaxed,
            );
        }
        a
    });
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let trials: u64 = std::env::var("EDGEKEEP_CUT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let (mut total_received, mut total_size) = (0u64, 0u64);
    for trial in 1..=trials {
        let built = edgekeep_protocol::artifact::build_artifact(
            &model,
            &harness::spec(SLOT, trial),
            &publisher,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        let size = built.ciphertext.len() as u64;
        h.upload_approve(&built, SLOT, trial).await;
        h.roll_out(SLOT, trial).await;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *cut_next.lock().unwrap() = Some((seed % size) as usize);
        downloaded.store(0, Ordering::Relaxed);
        let mut activated = false;
        let mut received = 0;
        for _ in 0..3 {
            let report = client.update_models_async().await.unwrap();
            received += report.bytes_downloaded;
            if report.changes == vec![(SLOT.to_owned(), SlotChange::Activated(trial))] {
                activated = true;
                break;
            }
        }
        assert!(activated, "trial {trial}: not activated");
        assert_eq!(
            client
                .active_model(SLOT)
                .unwrap()
                .unwrap()
                .version
                .version(),
            trial
        );
        // Bytes the device received over all attempts (the proxy's count includes bytes
        // it queued but never flushed before cutting the connection).
        assert!(downloaded.load(Ordering::Relaxed) >= size);
        assert!(
            received * 2 <= size * 3,
            "trial {trial}: {received} bytes received for a {size}-byte artifact"
        );
        total_received += received;
        total_size += size;
    }
    println!(
        "{trials} cut downloads: {total_received} bytes received for {total_size} bytes of artifacts ({:.3}x)",
        total_received as f64 / total_size as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_storm_and_a_slow_drip_end_consistent() {
    let mitm = Mitm::start().await;
    let h = Harness::start_behind(&mitm).await;
    let publisher = publisher_key();
    h.register_publisher(&publisher).await;
    let dir = tempfile::tempdir().unwrap();
    let client = client(&h, &mitm, &publisher, dir.path()).await;
    h.publish_and_roll_out(&publisher, SLOT, 1, &padded_model(64 << 10))
        .await;

    // Every second request fails with 503 + Retry-After: 0 for a while.
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = failures.clone();
    mitm.set_hook(move |c, mut a| {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        if n < 12 && n.is_multiple_of(2) {
            a.status = 503;
            a.body = br#"{"code":"internal","message":"overloaded"}"#.to_vec();
            a.headers = vec![("retry-after".into(), "0".into())];
        } else if is_download(c) {
            a.drip = Some((4096, Duration::from_millis(5)));
        }
        a
    });
    let report = client.update_models_async().await.unwrap();
    assert_eq!(
        report.changes,
        vec![(SLOT.to_owned(), SlotChange::Activated(1))]
    );
    let upload = client.sync_async().await.unwrap();
    assert_eq!(upload.queued, 0);
    assert!(failures.load(Ordering::Relaxed) >= 6);
}

/// A device clock wrong by a fixed number of seconds.
struct SkewedClock(i64);

impl edgekeep::sync::DeviceClock for SkewedClock {
    fn unix_seconds(&self) -> i64 {
        edgekeep::sync::SystemClock.unix_seconds() + self.0
    }
}

/// A device whose clock is hours off still enrolls, verifies fresh signed state, installs
/// and reports: the first stale proof teaches it the server's clock, and every later call
/// goes through without another retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_clock_hours_off_still_syncs() {
    use edgekeep::sync::DeviceClock;
    let h = Harness::start().await;
    let publisher = publisher_key();
    h.register_publisher(&publisher).await;
    for (version, skew) in (1u64..).zip([3 * 3600, -3 * 3600, 2 * 86_400]) {
        assert!((SkewedClock(skew).unix_seconds() - harness::now() - skew).abs() <= 1);
        let log = Arc::new(harness::RequestLog::default());
        let dir = tempfile::tempdir().unwrap();
        let client = h
            .enroll(
                h.client_builder(open_store(dir.path()))
                    .publisher_key(publisher.public_key())
                    .device_clock(Arc::new(SkewedClock(skew)))
                    .request_observer(log.clone()),
            )
            .await;
        assert_eq!(
            log.count_path("/v1/device/enroll"),
            2,
            "skew {skew}: one stale proof, then one retry"
        );
        h.publish_and_roll_out(&publisher, SLOT, version, &model_bytes("logreg.onnx"))
            .await;
        let report = client.update_models_async().await.unwrap();
        assert_eq!(
            report.changes,
            vec![(SLOT.to_owned(), SlotChange::Activated(version))],
            "skew {skew}"
        );
        let upload = client.sync_async().await.unwrap();
        assert_eq!(upload.queued, 0, "skew {skew}: {upload:?}");
        assert_eq!(log.count_path("/v1/device/telemetry"), 1, "skew {skew}");
        assert_eq!(log.count_path("/v1/device/refresh"), 0, "skew {skew}");
    }
}
