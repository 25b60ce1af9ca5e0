//! A dropped future stops its network work: dropping `EdgeKeep::enroll` while the request
//! waits on a silent server closes the connection (the SDK task is aborted, not detached).

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{XorKeyProvider, config};
use edgekeep_ffi::EdgeKeep;

#[test]
fn dropping_an_enroll_future_closes_its_connection() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), Some(url));
    let sdk = EdgeKeep::new(config, Arc::new(XorKeyProvider), None, None).unwrap();

    let (hello_seen, hello) = tokio::sync::oneshot::channel();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = silent.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 1024];
        assert!(conn.read(&mut buf).unwrap() > 0, "no ClientHello");
        hello_seen.send(()).unwrap();
        let cancelled_at = Instant::now();
        // The server never answers; the client must hang up once its future is dropped.
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Some(cancelled_at.elapsed()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::select! {
            result = sdk.enroll("org".into(), "ekb_token".into()) => {
                panic!("enroll finished against a silent server: {result:?}")
            }
            _ = hello => {} // drops the enroll future
        }
    });
    let closed_after = server.join().unwrap().expect("the connection stayed open");
    assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
}
