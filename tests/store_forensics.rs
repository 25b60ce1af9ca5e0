//! Forensics: user data written, half deleted, then every byte of every file the store
//! left in its directory is scanned for the plaintext and for key bytes.

use std::path::Path;
use std::sync::Arc;

use edgekeep::store::{Namespace, PassphraseKeyProvider, RawKeyProvider, Store};

const NS: Namespace = Namespace::new("forensics");
const KEK: [u8; 32] = *b"KEK-BYTES-THAT-MUST-NOT-BE-SEEN!";
const PASSPHRASE: &str = "passphrase-that-must-not-be-seen";

fn canaries() -> Vec<String> {
    (0..1000)
        .map(|i| format!("CANARY-{i:04}-user-data-{}", i * 7919 % 10007))
        .collect()
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Number of (file, canary) pairs where the canary occurs in the file. Finds the common
/// prefix, then reads the canary's index after it, so one pass per file suffices.
fn canary_hits(dir: &Path, canaries: &[String]) -> usize {
    let mut hits = 0;
    for (_, bytes) in files(dir) {
        let mut found = std::collections::BTreeSet::new();
        for start in 0..bytes.len().saturating_sub(11) {
            if &bytes[start..start + 7] != b"CANARY-" {
                continue;
            }
            let Some(i) = std::str::from_utf8(&bytes[start + 7..start + 11])
                .ok()
                .and_then(|d| d.parse::<usize>().ok())
            else {
                continue;
            };
            if canaries
                .get(i)
                .is_some_and(|c| bytes[start..].starts_with(c.as_bytes()))
            {
                found.insert(i);
            }
        }
        hits += found.len();
    }
    hits
}

fn write_and_delete_half(store: &Store, canaries: &[String]) {
    for (i, c) in canaries.iter().enumerate() {
        store.kv().put(NS, c.as_bytes(), c.as_bytes()).unwrap();
        if i % 4 == 0 {
            store.events().append(NS, c.as_bytes()).unwrap();
        }
    }
    store
        .artifacts()
        .begin(NS, canaries[0].as_bytes(), canaries.concat().len() as u64)
        .unwrap();
    store
        .artifacts()
        .append(NS, canaries[0].as_bytes(), 0, canaries.concat().as_bytes())
        .unwrap();
    for c in canaries.iter().step_by(2) {
        assert!(store.kv().delete(NS, c.as_bytes()).unwrap());
    }
    let events = store.events().scan(NS, None, 1000).unwrap();
    store
        .events()
        .delete_through(NS, events[events.len() / 2].id)
        .unwrap();
}

#[test]
fn no_plaintext_or_key_bytes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let canaries = canaries();
    let store = Store::builder(&path)
        .key_provider(Arc::new(RawKeyProvider::new(KEK)))
        .open()
        .unwrap();
    write_and_delete_half(&store, &canaries);
    assert_eq!(store.kv().len(NS).unwrap(), 500);
    assert_eq!(
        store
            .kv()
            .get(NS, canaries[1].as_bytes())
            .unwrap()
            .unwrap()
            .as_bytes(),
        canaries[1].as_bytes()
    );

    // While open: database, WAL and shared memory.
    assert_eq!(canary_hits(dir.path(), &canaries), 0);
    store.close().unwrap();
    // After close.
    let after = files(dir.path());
    assert!(after.iter().any(|(name, _)| name.ends_with("store.db")));
    assert_eq!(canary_hits(dir.path(), &canaries), 0);
    for (name, bytes) in &after {
        assert_eq!(occurrences(bytes, &KEK), 0, "KEK bytes in {name}");
        assert_eq!(occurrences(bytes, &KEK[..16]), 0, "KEK prefix in {name}");
    }
}

#[test]
fn passphrase_is_never_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let provider =
        PassphraseKeyProvider::with_iterations(PASSPHRASE, PassphraseKeyProvider::MIN_ITERATIONS)
            .unwrap();
    let store = Store::builder(&path)
        .key_provider(Arc::new(provider))
        .open()
        .unwrap();
    store.kv().put(NS, b"k", PASSPHRASE.as_bytes()).unwrap();
    store.close().unwrap();
    for (name, bytes) in files(dir.path()) {
        assert_eq!(
            occurrences(&bytes, PASSPHRASE.as_bytes()),
            0,
            "passphrase in {name}"
        );
    }
}

/// Control: the same scan over the unencrypted benchmark baseline finds the surviving
/// canaries, so the scanner above can fail.
#[test]
fn scanner_finds_plaintext_in_the_unencrypted_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let canaries = canaries();
    let store = Store::builder(&path)
        .key_provider(Arc::new(RawKeyProvider::new(KEK)))
        .unencrypted_baseline_for_benchmarks()
        .open()
        .unwrap();
    write_and_delete_half(&store, &canaries);
    store.close().unwrap();
    let hits = canary_hits(dir.path(), &canaries);
    assert!(hits >= 500, "hits {hits}");
}
