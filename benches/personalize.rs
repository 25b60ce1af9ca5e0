//! Personalization costs: a full softmax retrain on 1,000 × 512-dim embeddings × 10 classes
//! (goal: under 100 ms on one core), the per-example incremental update, and prototype
//! updates. Memory for that workload is printed once before the benches run.

use criterion::{Criterion, criterion_group, criterion_main};
use edgekeep::personalize::train::{self, TrainConfig};
use edgekeep::personalize::{PrototypeHead, SoftmaxHead};
use ndarray::{Array2, s};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::hint::black_box;

const N: usize = 1_000;
const DIM: usize = 512;
const CLASSES: usize = 10;

/// Clustered embeddings: class `c` has its own random centre plus noise.
fn data() -> (Array2<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let centres = Array2::from_shape_fn((CLASSES, DIM), |_| rng.random_range(-1.0f32..1.0));
    let mut x = Array2::zeros((N, DIM));
    let mut y = Vec::with_capacity(N);
    for i in 0..N {
        let c = i % CLASSES;
        for d in 0..DIM {
            x[[i, d]] = centres[[c, d]] + rng.random_range(-1.5f32..1.5);
        }
        y.push(c);
    }
    (x, y)
}

fn report_memory() {
    let f = std::mem::size_of::<f32>();
    let embeddings = N * DIM * f;
    let head = (CLASSES * DIM + CLASSES) * f;
    // Adam keeps two moments per parameter plus a gradient; each epoch trains on one
    // shuffled copy of the embeddings.
    let training = 3 * head + N * DIM * f;
    eprintln!(
        "memory: embeddings {:.2} MiB, head {:.1} KiB, training scratch {:.2} MiB",
        embeddings as f64 / (1 << 20) as f64,
        head as f64 / 1024.0,
        training as f64 / (1 << 20) as f64
    );
}

fn benches(c: &mut Criterion) {
    report_memory();
    let (x, y) = data();
    let zero = SoftmaxHead::zeros(CLASSES, DIM);
    let config = TrainConfig::default();
    let mut group = c.benchmark_group("personalize");
    group.sample_size(20);
    group.bench_function("softmax_full_retrain_1000x512x10", |b| {
        b.iter(|| train::fit(&zero, &zero, black_box(x.view()), &y, &config).unwrap())
    });
    let trained = train::fit(&zero, &zero, x.view(), &y, &config).unwrap();
    group.bench_function("softmax_update_one_example", |b| {
        b.iter(|| {
            train::update(
                &trained,
                &zero,
                (x.slice(s![N - 1.., ..]), &y[N - 1..]),
                (x.slice(s![..N - 1, ..]), &y[..N - 1]),
                N,
                &config,
                7,
            )
            .unwrap()
        })
    });
    let mut proto = PrototypeHead::new(CLASSES, DIM, 10.0).unwrap();
    group.bench_function("prototype_add_one_example", |b| {
        b.iter(|| proto.add(black_box(x.row(0)), 0).unwrap())
    });
    group.bench_function("softmax_predict_one", |b| {
        b.iter(|| trained.logits_one(black_box(x.row(3))).unwrap())
    });
    group.finish();
}

criterion_group!(personalize, benches);
criterion_main!(personalize);
