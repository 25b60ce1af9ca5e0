//! Round trips of every store collection through the public API, on real files, run
//! against both the sealed store and the benchmark's unencrypted baseline so the two
//! behave alike.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgekeep::store::{
    KeyProvider, Namespace, PassphraseKeyProvider, RawKeyProvider, RetentionPolicy, Store,
    StoreError,
};

const NS: Namespace = Namespace::new("personalize.examples");
const OTHER: Namespace = Namespace::new("sync.credentials");
const KEK: [u8; 32] = [7; 32];

fn provider() -> Arc<dyn KeyProvider> {
    Arc::new(RawKeyProvider::new(KEK))
}

fn open(path: &std::path::Path, sealed: bool) -> Store {
    let builder = Store::builder(path).key_provider(provider());
    let builder = if sealed {
        builder
    } else {
        builder.unencrypted_baseline_for_benchmarks()
    };
    builder.open().unwrap()
}

fn each_backend(body: impl Fn(&std::path::Path, bool)) {
    for sealed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        body(&dir.path().join("store.db"), sealed);
    }
}

#[test]
fn kv_round_trip_and_persistence() {
    each_backend(|path, sealed| {
        let store = open(path, sealed);
        let kv = store.kv();
        assert_eq!(kv.get(NS, b"k").unwrap(), None);
        kv.put(NS, b"k", b"v1").unwrap();
        kv.put(OTHER, b"k", b"other").unwrap();
        assert_eq!(kv.get(NS, b"k").unwrap().unwrap().as_bytes(), b"v1");
        kv.put(NS, b"k", b"v2").unwrap();
        kv.put(NS, b"", b"").unwrap();
        assert_eq!(kv.get(NS, b"k").unwrap().unwrap().as_bytes(), b"v2");
        assert_eq!(kv.get(NS, b"").unwrap().unwrap().as_bytes(), b"");
        assert_eq!(kv.get(OTHER, b"k").unwrap().unwrap().as_bytes(), b"other");
        assert_eq!(kv.len(NS).unwrap(), 2);
        assert!(kv.contains(NS, b"k").unwrap());
        assert!(kv.delete(NS, b"k").unwrap());
        assert!(!kv.delete(NS, b"k").unwrap());
        assert!(!kv.contains(NS, b"k").unwrap());
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        kv.put(NS, b"big", &big).unwrap();
        store.close().unwrap();

        let store = open(path, sealed);
        assert_eq!(
            store.kv().get(NS, b"big").unwrap().unwrap().as_bytes(),
            &big[..]
        );
        assert_eq!(
            store.kv().get(OTHER, b"k").unwrap().unwrap().as_bytes(),
            b"other"
        );
        assert_eq!(store.kv().clear(NS).unwrap(), 2);
        assert_eq!(store.kv().len(NS).unwrap(), 0);
        assert_eq!(store.kv().len(OTHER).unwrap(), 1);
    });
}

#[test]
fn events_round_trip_in_order() {
    each_backend(|path, sealed| {
        let store = open(path, sealed);
        let events = store.events();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ids: Vec<_> = (0..10u8)
            .map(|i| {
                events
                    .append_at(NS, t0 + Duration::from_secs(i.into()), &[i; 3])
                    .unwrap()
            })
            .collect();
        events.append(OTHER, b"x").unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let all = events.scan(NS, None, 100).unwrap();
        assert_eq!(all.len(), 10);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.id, ids[i]);
            assert_eq!(e.payload.as_bytes(), &[i as u8; 3]);
            assert_eq!(e.recorded_at, t0 + Duration::from_secs(i as u64));
        }
        let page = events.scan(NS, Some(ids[3]), 2).unwrap();
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![ids[4], ids[5]]
        );
        assert_eq!(events.delete_through(NS, ids[4]).unwrap(), 5);
        assert!(events.delete(NS, ids[9]).unwrap());
        assert_eq!(events.count(NS).unwrap(), 4);
        assert_eq!(events.count(OTHER).unwrap(), 1);
        store.close().unwrap();

        // Ids are never reused, even after the newest event was deleted.
        let store = open(path, sealed);
        let next = store.events().append(NS, b"later").unwrap();
        assert!(next > ids[9]);
        assert_eq!(store.events().scan(NS, None, 100).unwrap().len(), 5);
    });
}

#[test]
fn artifacts_resumable_chunked_round_trip() {
    each_backend(|path, sealed| {
        let store = open(path, sealed);
        let model: Vec<u8> = (0..(3 << 20) + 12345u32)
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        let arts = store.artifacts();
        let p = arts.begin(NS, b"model-v3", model.len() as u64).unwrap();
        assert_eq!((p.stored_len, p.complete), (0, false));
        let first = 1_500_000;
        arts.append(NS, b"model-v3", 0, &model[..first]).unwrap();
        assert!(matches!(
            arts.read(NS, b"model-v3"),
            Err(StoreError::ArtifactState(_))
        ));
        assert!(matches!(
            arts.finish(NS, b"model-v3"),
            Err(StoreError::ArtifactState(_))
        ));
        store.close().unwrap();

        // Resume after a restart from the stored length.
        let store = open(path, sealed);
        let arts = store.artifacts();
        let p = arts.begin(NS, b"model-v3", model.len() as u64).unwrap();
        assert_eq!(p.stored_len, first as u64);
        assert!(matches!(
            arts.append(NS, b"model-v3", 0, &model[..10]),
            Err(StoreError::ArtifactState(_))
        ));
        let mut offset = p.stored_len as usize;
        for piece in model[offset..].chunks(700_001) {
            let p = arts.append(NS, b"model-v3", offset as u64, piece).unwrap();
            offset += piece.len();
            assert_eq!(p.stored_len, offset as u64);
        }
        assert!(matches!(
            arts.append(NS, b"model-v3", offset as u64, b"extra"),
            Err(StoreError::ArtifactState(_))
        ));
        arts.finish(NS, b"model-v3").unwrap();
        assert!(arts.progress(NS, b"model-v3").unwrap().unwrap().complete);
        assert_eq!(
            arts.read(NS, b"model-v3").unwrap().unwrap().as_bytes(),
            &model[..]
        );
        assert_eq!(arts.read(NS, b"missing").unwrap(), None);
        assert!(matches!(
            arts.begin(NS, b"model-v3", 5),
            Err(StoreError::ArtifactState(_))
        ));
        arts.begin(NS, b"empty", 0).unwrap();
        arts.finish(NS, b"empty").unwrap();
        assert!(arts.read(NS, b"empty").unwrap().unwrap().is_empty());
        assert!(arts.delete(NS, b"model-v3").unwrap());
        assert_eq!(arts.progress(NS, b"model-v3").unwrap(), None);
    });
}

#[test]
fn retention_limits_age_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let policy = RetentionPolicy::new()
        .max_age(Duration::from_secs(3600))
        .max_bytes(10_000);
    let store = Store::builder(&path)
        .key_provider(provider())
        .retention(NS, policy)
        .open()
        .unwrap();
    let events = store.events();
    let old = SystemTime::now() - Duration::from_secs(7200);
    events.append_at(NS, old, b"too old").unwrap();
    events
        .append_at(OTHER, old, b"other namespace, no policy")
        .unwrap();
    assert_eq!(
        events.count(NS).unwrap(),
        0,
        "too old already: dropped in the same write"
    );
    assert_eq!(
        events.count(OTHER).unwrap(),
        1,
        "namespaces without a policy keep everything"
    );
    events.append(NS, b"fresh").unwrap();
    assert_eq!(events.count(NS).unwrap(), 1);

    for i in 0..100u32 {
        events.append(NS, &[i as u8; 500]).unwrap();
        assert!(events.stored_bytes(NS).unwrap() <= 10_000);
    }
    let kept = events.scan(NS, None, 1000).unwrap();
    assert!(kept.len() >= 15 && kept.len() < 25, "kept {}", kept.len());
    assert_eq!(kept.last().unwrap().payload.as_bytes(), &[99u8; 500]);

    for i in 0..40u32 {
        store.kv().put(NS, &i.to_be_bytes(), &[1; 1000]).unwrap();
    }
    assert!(store.kv().len(NS).unwrap() < 10);
    assert!(store.kv().contains(NS, &39u32.to_be_bytes()).unwrap());
    store.close().unwrap();

    // Enforced at open as well.
    let tight = RetentionPolicy::new().max_bytes(1);
    let store = Store::builder(&path)
        .key_provider(provider())
        .retention(NS, tight)
        .open()
        .unwrap();
    assert_eq!(store.events().count(NS).unwrap(), 0);
    assert_eq!(store.events().count(OTHER).unwrap(), 1);
}

#[test]
fn rotation_reencrypts_and_destroys_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path, true);
    for i in 0..50u32 {
        store
            .kv()
            .put(NS, &i.to_be_bytes(), format!("value {i}").as_bytes())
            .unwrap();
        store
            .events()
            .append(NS, format!("event {i}").as_bytes())
            .unwrap();
    }
    let model = vec![9u8; 2_500_000];
    store
        .artifacts()
        .begin(NS, b"m", model.len() as u64)
        .unwrap();
    store.artifacts().append(NS, b"m", 0, &model).unwrap();
    store.artifacts().finish(NS, b"m").unwrap();

    let old = store.primary_key_id();
    let new = store.rotate_data_key().unwrap();
    assert_ne!(old, new);
    assert_eq!(store.primary_key_id(), new);
    store
        .kv()
        .put(NS, b"after", b"sealed with the new key")
        .unwrap();
    let mut batches = 0;
    loop {
        let p = store.reencrypt_batch(17).unwrap();
        batches += 1;
        // Every value stays readable in the middle of a rotation.
        assert_eq!(
            store
                .kv()
                .get(NS, &3u32.to_be_bytes())
                .unwrap()
                .unwrap()
                .as_bytes(),
            b"value 3"
        );
        if p.is_complete() {
            assert_eq!(p.destroyed_keys, 1);
            break;
        }
        assert!(batches < 100);
    }
    assert!(batches > 3);
    store.close().unwrap();

    let store = open(&path, true);
    assert_eq!(store.primary_key_id(), new);
    for i in 0..50u32 {
        assert_eq!(
            store
                .kv()
                .get(NS, &i.to_be_bytes())
                .unwrap()
                .unwrap()
                .as_bytes(),
            format!("value {i}").as_bytes()
        );
    }
    assert_eq!(store.events().scan(NS, None, 100).unwrap().len(), 50);
    assert_eq!(
        store
            .artifacts()
            .read(NS, b"m")
            .unwrap()
            .unwrap()
            .as_bytes(),
        &model[..]
    );
    let raw = rusqlite::Connection::open(&path).unwrap();
    let keys: i64 = raw
        .query_row("SELECT COUNT(*) FROM keyset", [], |r| r.get(0))
        .unwrap();
    assert_eq!(keys, 2, "lookup key and the new data key remain");
}

#[test]
fn passphrase_provider_opens_and_change_of_provider_rewraps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let iterations = PassphraseKeyProvider::MIN_ITERATIONS;
    let pass =
        Arc::new(PassphraseKeyProvider::with_iterations("correct horse", iterations).unwrap());
    let store = Store::builder(&path).key_provider(pass).open().unwrap();
    store.kv().put(NS, b"k", b"v").unwrap();
    store.close().unwrap();

    let wrong =
        Arc::new(PassphraseKeyProvider::with_iterations("battery staple", iterations).unwrap());
    assert!(matches!(
        Store::builder(&path).key_provider(wrong).open(),
        Err(StoreError::WrongKey)
    ));
    let pass =
        Arc::new(PassphraseKeyProvider::with_iterations("correct horse", iterations).unwrap());
    let store = Store::builder(&path).key_provider(pass).open().unwrap();
    assert_eq!(store.kv().get(NS, b"k").unwrap().unwrap().as_bytes(), b"v");
    store.change_key_provider(provider()).unwrap();
    store.close().unwrap();

    let store = open(&path, true);
    assert_eq!(store.kv().get(NS, b"k").unwrap().unwrap().as_bytes(), b"v");
}

#[test]
fn bad_files_and_arguments_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert!(matches!(
        Store::builder(&garbage).key_provider(provider()).open(),
        Err(StoreError::Corrupt)
    ));
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        vec![0x5a; 8192],
        "a corrupt file is never replaced"
    );

    let newer = dir.path().join("newer.db");
    {
        let store = open(&newer, true);
        store.close().unwrap();
        let raw = rusqlite::Connection::open(&newer).unwrap();
        raw.pragma_update(None, "user_version", 99).unwrap();
    }
    assert!(matches!(
        Store::builder(&newer).key_provider(provider()).open(),
        Err(StoreError::UnsupportedVersion { found: 99, .. })
    ));

    assert!(matches!(
        Store::builder(dir.path().join("x.db")).open(),
        Err(StoreError::InvalidInput(_))
    ));
    let store = open(&dir.path().join("ok.db"), true);
    assert!(matches!(
        store.kv().put(Namespace::new("Bad Name"), b"k", b"v"),
        Err(StoreError::InvalidInput(_))
    ));
}

#[test]
fn erase_all_crypto_shreds_and_removes_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path, true);
    store.kv().put(NS, b"k", b"secret").unwrap();
    store.erase_all().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("store.db"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    Store::remove_files(&path).unwrap();
    // A fresh store at the same path starts empty.
    let store = open(&path, true);
    assert_eq!(store.kv().get(NS, b"k").unwrap(), None);
}

#[test]
fn interrupted_erasure_is_reported_and_can_be_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path, true);
    store.kv().put(NS, b"k", b"secret").unwrap();
    store.close().unwrap();
    // As if erase_all was killed after destroying the keys, before removing the file.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM keyset", [])
        .unwrap();
    assert!(matches!(
        Store::builder(&path).key_provider(provider()).open(),
        Err(StoreError::KeySet(_))
    ));
    assert!(path.exists(), "opening never deletes");
    Store::remove_files(&path).unwrap();
    assert!(!path.exists());
    assert_eq!(open(&path, true).kv().get(NS, b"k").unwrap(), None);
}

#[test]
fn a_lock_held_elsewhere_is_reported_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = Store::builder(&path)
        .key_provider(provider())
        .busy_timeout(Duration::from_millis(50))
        .open()
        .unwrap();
    store.kv().put(NS, b"k", b"v").unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(matches!(
        store.kv().put(NS, b"k2", b"v2"),
        Err(StoreError::Busy)
    ));
    // Readers are not blocked by a writer (WAL).
    assert_eq!(store.kv().get(NS, b"k").unwrap().unwrap().as_bytes(), b"v");
    other.execute_batch("COMMIT").unwrap();
    store.kv().put(NS, b"k2", b"v2").unwrap();
}
