//! Resumable artifact download: a transfer cut at an arbitrary byte resumes with `Range` and
//! yields identical bytes; `ETag`, `If-Range` and unsatisfiable ranges behave per RFC 9110.

mod common;

use common::{TestServer, assert_error, publisher_key};
use edgekeep_protocol::ErrorCode;
use reqwest::StatusCode;

#[tokio::test]
async fn cut_downloads_resume_to_identical_bytes() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let publisher = publisher_key();
    server.register_publisher(&owner, &publisher).await;
    let model: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let version = server.publish(&owner, &publisher, "big", 1, &model).await;
    let device = server.enroll_many(1, None).await.remove(0);
    let path = format!("/v1/device/artifacts/{}", version.artifact_id);
    let etag = format!("\"{}\"", version.artifact_id);

    let full = server.device_get(&device, &path).await;
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["etag"], etag.as_str());
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    let full = full.bytes().await.unwrap().to_vec();
    assert_eq!(full.len() as u64, version.manifest.manifest.ciphertext_len);

    // Cuts at arbitrary offsets (pseudo-random, fixed seed), including the edges.
    let len = full.len();
    let mut seed = 0x9e37_79b9_u64;
    let mut cuts = vec![0, 1, len - 1];
    for _ in 0..12 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        cuts.push((seed >> 33) as usize % len);
    }
    for cut in cuts {
        let mut received = full[..cut].to_vec();
        let response = server
            .device_get_with(
                &device,
                &path,
                &[
                    ("range", format!("bytes={cut}-")),
                    ("if-range", etag.clone()),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "cut {cut}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {cut}-{}/{len}", len - 1).as_str()
        );
        received.extend_from_slice(&response.bytes().await.unwrap());
        assert_eq!(received, full, "cut at {cut}");
    }

    // A middle slice and a suffix.
    let response = server
        .device_get_with(&device, &path, &[("range", "bytes=100-199".into())])
        .await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), &full[100..200]);
    let response = server
        .device_get_with(&device, &path, &[("range", "bytes=-10".into())])
        .await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), &full[len - 10..]);

    // A stale validator gets the whole (current) artifact, not a splice.
    let response = server
        .device_get_with(
            &device,
            &path,
            &[
                ("range", "bytes=50-".into()),
                ("if-range", "\"other\"".into()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().len(), len);

    // Out of range.
    let response = server
        .device_get_with(&device, &path, &[("range", format!("bytes={len}-"))])
        .await;
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );
    assert_error(response, ErrorCode::RangeNotSatisfiable).await;

    // Unknown artifact.
    let response = server
        .device_get(&device, &format!("/v1/device/artifacts/{}", "0".repeat(64)))
        .await;
    assert_error(response, ErrorCode::NotFound).await;
}
