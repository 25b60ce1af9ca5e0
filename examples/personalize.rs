//! Personalizes `models/mobilenet_tiny.onnx` for one user whose photos drift from the
//! population, and prints held-out accuracy before and after.
//!
//! The population sees four textures (vertical, horizontal, checker, rings) in neutral
//! colours; the app ships a base head trained on them. This user's camera has a warm colour
//! cast and finer textures, and the user files checkers and rings the other way round.
//!
//! Run: `cargo run --example personalize` (dependencies are optimized in the dev profile).

use std::time::Instant;

use edgekeep::inference::{ModelLoader, Tensor};
use edgekeep::personalize::train::{self, TrainConfig};
use edgekeep::personalize::{Backbone, ClassId, HeadKind, Personalizer, SoftmaxHead};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

#[path = "../tests/support/drift.rs"]
mod drift;

use drift::{CLASSES, scene, user_label};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/mobilenet_tiny.onnx");
    let bytes = std::fs::read(path)?;
    let backbone = Backbone::from_bytes(&bytes, "embedding", ModelLoader::new())?;
    println!(
        "backbone: mobilenet_tiny, embedding width {}",
        backbone.dim()
    );

    // The vendor's side: a base head trained on population images.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let per_class = 30;
    let mut x = Array2::zeros((per_class * CLASSES, backbone.dim()));
    let mut y = Vec::new();
    for i in 0..per_class * CLASSES {
        let pattern = i % CLASSES;
        let e = backbone.embed([("image", Tensor::from(scene(pattern, false, &mut rng)))])?;
        x.row_mut(i).assign(&e.row(0));
        y.push(pattern);
    }
    let config = TrainConfig {
        epochs: 60,
        ..TrainConfig::default()
    };
    let zero = SoftmaxHead::zeros(CLASSES, backbone.dim());
    let base = train::fit(&zero, &zero, x.view(), &y, &config)?;

    // The device's side: the user's own photos, labelled their way.
    let mut personalizer = Personalizer::builder(backbone)
        .base_head(base)
        .head(HeadKind::Softmax(config))
        .held_out_fraction(0.3)
        .in_memory()
        .build()?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let started = Instant::now();
    for i in 0..40 * CLASSES {
        let pattern = i % CLASSES;
        let image = Tensor::from(scene(pattern, true, &mut rng));
        personalizer.add_example([("image", image)], ClassId(user_label(pattern) as u32))?;
    }
    let embed_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let adaptation = personalizer.retrain()?;
    let train_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "{} examples embedded in {embed_ms:.0} ms; head retrained and guarded in {train_ms:.1} ms",
        personalizer.examples()
    );
    println!("guard: {:?}", adaptation.verdict);
    if let Some(r) = adaptation.report {
        println!(
            "held-out ({} images)   accuracy   log-loss   calibration error",
            r.base.examples
        );
        println!(
            "  base model          {:>7.1}%   {:>8.3}   {:>8.3}",
            100.0 * r.base.accuracy,
            r.base.log_loss,
            r.base.calibration_error
        );
        println!(
            "  personalized        {:>7.1}%   {:>8.3}   {:>8.3}",
            100.0 * r.personalized.accuracy,
            r.personalized.log_loss,
            r.personalized.calibration_error
        );
    }
    personalizer.reset()?;
    println!(
        "after reset(): personalized = {}",
        personalizer.is_personalized()
    );
    Ok(())
}
