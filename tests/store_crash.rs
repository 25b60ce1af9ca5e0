//! Crash safety: a child process (this test binary re-executed in a child role) writes or
//! rotates keys and is killed with SIGKILL at a random moment; the store must reopen and
//! every record the child reported as committed must read back.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use edgekeep::store::{KeyProvider, Namespace, RawKeyProvider, Store};
use ring::rand::{SecureRandom, SystemRandom};

const ROLE: &str = "EDGEKEEP_STORE_CRASH_ROLE";
const PATH: &str = "EDGEKEEP_STORE_CRASH_PATH";
const TRIAL: &str = "EDGEKEEP_STORE_CRASH_TRIAL";
const NS: Namespace = Namespace::new("crash");
const KEK: [u8; 32] = [0x5c; 32];
const TRIALS: u32 = 50;
const SEED_RECORDS: u32 = 200;

fn provider() -> Arc<dyn KeyProvider> {
    Arc::new(RawKeyProvider::new(KEK))
}

fn open(path: &Path) -> Store {
    Store::builder(path)
        .key_provider(provider())
        .open()
        .unwrap()
}

fn value(tag: &str, i: u32) -> Vec<u8> {
    format!("{tag}:{i}:")
        .repeat(1 + (i as usize % 40))
        .into_bytes()
}

fn random_below(rng: &SystemRandom, bound: u64) -> u64 {
    let mut b = [0u8; 8];
    rng.fill(&mut b).unwrap();
    u64::from_le_bytes(b) % bound
}

/// Entry point of the child roles; does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH).unwrap());
    let trial = std::env::var(TRIAL).unwrap();
    let store = open(&path);
    let mut out = std::io::stdout().lock();
    // Own line: the test harness prints "test crash_child ... " without a newline.
    writeln!(out, "\nopened").unwrap();
    out.flush().unwrap();
    match role.as_str() {
        "writer" => {
            for i in 0.. {
                let tag = format!("t{trial}");
                store
                    .kv()
                    .put(NS, format!("{tag}-{i}").as_bytes(), &value(&tag, i))
                    .unwrap();
                let id = store.events().append(NS, &value(&tag, i)).unwrap();
                writeln!(out, "committed {i} {}", id.get()).unwrap();
                out.flush().unwrap();
            }
        }
        "rotator" => loop {
            store.rotate_data_key().unwrap();
            while !store.reencrypt_batch(13).unwrap().is_complete() {}
            writeln!(out, "rotated").unwrap();
            out.flush().unwrap();
        },
        other => panic!("unknown role {other}"),
    }
}

/// Runs the child in `role`, kills it after a random delay counted from its "opened" line,
/// and returns every line it printed.
fn run_and_kill(
    role: &str,
    path: &Path,
    trial: u32,
    rng: &SystemRandom,
    max_delay_ms: u64,
) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .env(TRIAL, trial.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.iter().any(|l: &String| l == "opened") {
        assert!(Instant::now() < deadline, "child never opened the store");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    std::thread::sleep(Duration::from_millis(random_below(rng, max_delay_ms)));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
}

#[test]
fn killed_writers_lose_no_committed_record() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(open(&path));
    let rng = SystemRandom::new();
    let mut committed_total = 0;
    for trial in 0..TRIALS {
        let lines = run_and_kill("writer", &path, trial, &rng, 120);
        let store = open(&path);
        let tag = format!("t{trial}");
        let events = store.events().scan(NS, None, usize::MAX).unwrap();
        for line in lines.iter().filter_map(|l| l.strip_prefix("committed ")) {
            let mut parts = line.split(' ');
            let i: u32 = parts.next().unwrap().parse().unwrap();
            let id: i64 = parts.next().unwrap().parse().unwrap();
            let got = store.kv().get(NS, format!("{tag}-{i}").as_bytes()).unwrap();
            assert_eq!(
                got.unwrap().as_bytes(),
                &value(&tag, i)[..],
                "trial {trial} record {i}"
            );
            let event = events
                .iter()
                .find(|e| e.id.get() == id)
                .expect("committed event lost");
            assert_eq!(event.payload.as_bytes(), &value(&tag, i)[..]);
            committed_total += 1;
        }
        store.close().unwrap();
    }
    assert!(
        committed_total > 0,
        "children never committed before being killed"
    );
}

#[test]
fn killed_rotations_leave_a_readable_store() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let model: Vec<u8> = (0..2_200_000u32).map(|i| (i % 249) as u8).collect();
    {
        let store = open(&path);
        for i in 0..SEED_RECORDS {
            store
                .kv()
                .put(NS, &i.to_be_bytes(), &value("seed", i))
                .unwrap();
            store.events().append(NS, &value("seed", i)).unwrap();
        }
        store
            .artifacts()
            .begin(NS, b"model", model.len() as u64)
            .unwrap();
        store.artifacts().append(NS, b"model", 0, &model).unwrap();
        store.artifacts().finish(NS, b"model").unwrap();
        store.close().unwrap();
    }
    let rng = SystemRandom::new();
    let mut rotations = 0;
    let mut key_ids = std::collections::BTreeSet::new();
    for trial in 0..TRIALS {
        let lines = run_and_kill("rotator", &path, trial, &rng, 150);
        rotations += lines.iter().filter(|l| *l == "rotated").count();
        let store = open(&path);
        key_ids.insert(store.primary_key_id());
        for i in 0..SEED_RECORDS {
            let got = store.kv().get(NS, &i.to_be_bytes()).unwrap();
            assert_eq!(
                got.unwrap().as_bytes(),
                &value("seed", i)[..],
                "trial {trial} kv {i}"
            );
        }
        let events = store.events().scan(NS, None, usize::MAX).unwrap();
        assert_eq!(events.len(), SEED_RECORDS as usize, "trial {trial}");
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.payload.as_bytes(), &value("seed", i as u32)[..]);
        }
        assert_eq!(
            store
                .artifacts()
                .read(NS, b"model")
                .unwrap()
                .unwrap()
                .as_bytes(),
            &model[..]
        );
        store.close().unwrap();
    }
    assert!(key_ids.len() > 1, "rotation never committed");
    eprintln!(
        "{rotations} complete rotations, {} distinct primary keys seen",
        key_ids.len()
    );
}
