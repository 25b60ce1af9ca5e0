//! Encrypted store throughput against the same schema and SQL without sealing
//! (`unencrypted_baseline_for_benchmarks`), for small (100 B) and large (1 MiB) values.
//!
//! Run: `cargo bench --bench store`. Budget: encrypted throughput at least 70% of the
//! plaintext baseline for small values.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use edgekeep::store::{Namespace, RawKeyProvider, Store};

const NS: Namespace = Namespace::new("bench");
const SMALL: usize = 100;
const LARGE: usize = 1 << 20;
const SMALL_KEYS: u32 = 1000;
const LARGE_KEYS: u32 = 8;
const SCAN_SMALL: usize = 100;
const SCAN_LARGE: usize = 8;

/// Distinct high-entropy values. Each put writes a value different from the one stored under
/// that key, so SQLite's overwrite optimisation (which skips unchanged pages) cannot favour
/// the plaintext baseline.
fn values(count: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed | 1;
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
}

const SCAN_SMALL_NS: Namespace = Namespace::new("bench.small");
const SCAN_LARGE_NS: Namespace = Namespace::new("bench.large");

fn fixture(encrypted: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let builder = Store::builder(dir.path().join("bench.db"))
        .key_provider(Arc::new(RawKeyProvider::new([3; 32])));
    let builder = if encrypted {
        builder
    } else {
        builder.unencrypted_baseline_for_benchmarks()
    };
    let store = builder.open().expect("open store");
    for (i, value) in values(SMALL_KEYS as usize, SMALL, 3).iter().enumerate() {
        let key = (i as u32).to_be_bytes();
        store.kv().put(NS, &key, value).expect("put");
    }
    for (i, value) in values(LARGE_KEYS as usize, LARGE, 4).iter().enumerate() {
        let key = format!("large{i}");
        store.kv().put(NS, key.as_bytes(), value).expect("put");
    }
    for value in values(SCAN_SMALL, SMALL, 5) {
        store
            .events()
            .append(SCAN_SMALL_NS, &value)
            .expect("append");
    }
    for value in values(SCAN_LARGE, LARGE, 6) {
        store
            .events()
            .append(SCAN_LARGE_NS, &value)
            .expect("append");
    }
    Fixture { _dir: dir, store }
}

/// Both stores, encrypted first; each operation is measured on both back to back so that
/// load drift on a shared machine affects the pair alike.
fn stores() -> [(&'static str, Fixture); 2] {
    [("encrypted", fixture(true)), ("plaintext", fixture(false))]
}

fn bench_put(c: &mut Criterion) {
    let stores = stores();
    let mut group = c.benchmark_group("store/put");
    let small = values(SMALL_KEYS as usize + 1, SMALL, 1);
    let large = values(LARGE_KEYS as usize + 1, LARGE, 2);
    group.throughput(Throughput::Bytes(SMALL as u64));
    for (mode, f) in &stores {
        let mut n = 0usize;
        group.bench_function(BenchmarkId::new("100B", mode), |b| {
            b.iter(|| {
                n += 1;
                let key = ((n % SMALL_KEYS as usize) as u32).to_be_bytes();
                let value = black_box(&small[n % small.len()]);
                f.store.kv().put(NS, &key, value).expect("put")
            })
        });
    }
    group.throughput(Throughput::Bytes(LARGE as u64));
    for (mode, f) in &stores {
        let mut n = 0usize;
        group.bench_function(BenchmarkId::new("1MiB", mode), |b| {
            b.iter(|| {
                n += 1;
                let key = format!("large{}", n % LARGE_KEYS as usize);
                let value = black_box(&large[n % large.len()]);
                f.store.kv().put(NS, key.as_bytes(), value).expect("put")
            })
        });
    }
    group.finish();
}

fn bench_get(c: &mut Criterion) {
    let stores = stores();
    let mut group = c.benchmark_group("store/get");
    group.throughput(Throughput::Bytes(SMALL as u64));
    for (mode, f) in &stores {
        let mut i = 0u32;
        group.bench_function(BenchmarkId::new("100B", mode), |b| {
            b.iter(|| {
                i = (i + 7) % SMALL_KEYS;
                black_box(f.store.kv().get(NS, &i.to_be_bytes()).expect("get"))
            })
        });
    }
    group.throughput(Throughput::Bytes(LARGE as u64));
    for (mode, f) in &stores {
        let mut j = 0u32;
        group.bench_function(BenchmarkId::new("1MiB", mode), |b| {
            b.iter(|| {
                j = (j + 1) % LARGE_KEYS;
                let key = format!("large{j}");
                black_box(f.store.kv().get(NS, key.as_bytes()).expect("get"))
            })
        });
    }
    group.finish();
}

fn bench_scan(c: &mut Criterion) {
    let stores = stores();
    let mut group = c.benchmark_group("store/scan");
    group.throughput(Throughput::Bytes((SMALL * SCAN_SMALL) as u64));
    for (mode, f) in &stores {
        group.bench_function(BenchmarkId::new("100x100B", mode), |b| {
            b.iter(|| {
                black_box(
                    f.store
                        .events()
                        .scan(SCAN_SMALL_NS, None, SCAN_SMALL)
                        .expect("scan"),
                )
            })
        });
    }
    group.throughput(Throughput::Bytes((LARGE * SCAN_LARGE) as u64));
    for (mode, f) in &stores {
        group.bench_function(BenchmarkId::new("8x1MiB", mode), |b| {
            b.iter(|| {
                black_box(
                    f.store
                        .events()
                        .scan(SCAN_LARGE_NS, None, SCAN_LARGE)
                        .expect("scan"),
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_put, bench_get, bench_scan
}
criterion_main!(benches);
