//! Several reader threads while one thread writes and rotates keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use edgekeep::store::{Namespace, RawKeyProvider, Store};

const NS: Namespace = Namespace::new("concurrency");

#[test]
fn readers_see_consistent_values_while_one_thread_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::builder(dir.path().join("store.db"))
            .key_provider(Arc::new(RawKeyProvider::generate().unwrap()))
            .open()
            .unwrap(),
    );
    for i in 0..200u32 {
        store
            .kv()
            .put(NS, &i.to_be_bytes(), format!("stable {i}").as_bytes())
            .unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut reads = 0u64;
                let mut last_count = 0;
                while !done.load(Ordering::Acquire) {
                    let i = (reads as u32 * 7 + t) % 200;
                    let v = store.kv().get(NS, &i.to_be_bytes()).unwrap().unwrap();
                    assert_eq!(v.as_bytes(), format!("stable {i}").as_bytes());
                    let events = store.events().scan(NS, None, usize::MAX).unwrap();
                    assert!(events.len() >= last_count, "events never disappear");
                    for e in &events {
                        assert_eq!(
                            e.payload.as_bytes(),
                            format!("event {}", e.id.get()).as_bytes()
                        );
                    }
                    last_count = events.len();
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for n in 1..=300i64 {
                let id = store
                    .events()
                    .append(NS, format!("event {n}").as_bytes())
                    .unwrap();
                assert_eq!(id.get(), n);
                store
                    .kv()
                    .put(NS, format!("w{n}").as_bytes(), b"written")
                    .unwrap();
                if n % 100 == 0 {
                    store.rotate_data_key().unwrap();
                    while !store.reencrypt_batch(50).unwrap().is_complete() {}
                }
            }
        })
    };
    writer.join().unwrap();
    done.store(true, Ordering::Release);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!(store.events().count(NS).unwrap(), 300);
}
