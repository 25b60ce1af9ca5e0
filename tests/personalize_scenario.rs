//! Personalization with a real backbone (`models/mobilenet_tiny.onnx`, its `embedding` output)
//! where the user's data differs from the population the base head was trained on.
//!
//! Population: four texture classes (vertical, horizontal, checker, rings) in neutral colours.
//! The app's base head is a softmax trained on population embeddings. The user's camera has a
//! warm colour cast and finer textures, and the user files checkers and rings the other way
//! round (their own meaning of two labels). The base head gets about half of the user's
//! held-out images right; the personalized head must beat it by at least 25 points.

use edgekeep::inference::{ModelLoader, Tensor};
use edgekeep::personalize::train::{self, TrainConfig};
use edgekeep::personalize::{
    Backbone, ClassId, GuardPolicy, HeadKind, Personalizer, SoftmaxHead, Verdict,
};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

#[path = "support/drift.rs"]
mod drift;

use drift::{CLASSES, scene, user_label};

fn backbone() -> Backbone {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/mobilenet_tiny.onnx");
    let bytes = std::fs::read(path).unwrap();
    Backbone::from_bytes(&bytes, "embedding", ModelLoader::new()).unwrap()
}

/// The app's base head: trained on population embeddings, as a vendor would.
fn population_head(backbone: &Backbone) -> SoftmaxHead {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let per_class = 30;
    let mut x = Array2::zeros((per_class * CLASSES, backbone.dim()));
    let mut y = Vec::new();
    for i in 0..per_class * CLASSES {
        let pattern = i % CLASSES;
        let e = backbone
            .embed([("image", Tensor::from(scene(pattern, false, &mut rng)))])
            .unwrap();
        x.row_mut(i).assign(&e.row(0));
        y.push(pattern);
    }
    let zero = SoftmaxHead::zeros(CLASSES, backbone.dim());
    let config = TrainConfig {
        epochs: 60,
        ..TrainConfig::default()
    };
    train::fit(&zero, &zero, x.view(), &y, &config).unwrap()
}

#[test]
fn personalized_head_beats_base_on_a_drifted_user() {
    let backbone = backbone();
    let base = population_head(&backbone);
    let mut p = Personalizer::builder(backbone)
        .base_head(base)
        .head(HeadKind::Softmax(TrainConfig {
            epochs: 60,
            ..TrainConfig::default()
        }))
        .held_out_fraction(0.3)
        .in_memory()
        .build()
        .unwrap();

    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let probe = scene(2, true, &mut rng);
    let before = p.predict([("image", Tensor::from(probe.clone()))]).unwrap();
    assert_eq!(before.personalized_weight, 0.0);

    for i in 0..30 * CLASSES {
        let pattern = i % CLASSES;
        let image = Tensor::from(scene(pattern, true, &mut rng));
        p.add_example([("image", image)], ClassId(user_label(pattern) as u32))
            .unwrap();
    }
    let adaptation = p.retrain().unwrap();
    let report = adaptation.report.expect("a held-out split exists");
    eprintln!("held-out: {report:?}");
    assert_eq!(adaptation.verdict, Verdict::Accepted);
    assert!(report.base.examples >= 20, "{report:?}");
    assert!(
        report.personalized.accuracy >= report.base.accuracy + 0.25,
        "base {:.3} personalized {:.3}",
        report.base.accuracy,
        report.personalized.accuracy
    );
    assert!(report.personalized.log_loss < report.base.log_loss);

    let after = p.predict([("image", Tensor::from(probe.clone()))]).unwrap();
    assert!(after.personalized_weight > 0.5);
    assert_eq!(after.class, ClassId(3), "the user's checkers are class 3");

    p.reset().unwrap();
    let reset = p.predict([("image", Tensor::from(probe))]).unwrap();
    let bits = |a: &ndarray::Array1<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&reset.probabilities), bits(&before.probabilities));
    assert_eq!(reset, before);
    assert_eq!(p.examples(), 0);
    assert!(!p.is_personalized());
}

#[test]
fn user_defined_class_is_learned_few_shot_with_a_prototype_head() {
    let backbone = backbone();
    let mut p = Personalizer::builder(backbone)
        .head(HeadKind::prototype())
        .guard(GuardPolicy {
            min_held_out: 2,
            ..GuardPolicy::default()
        })
        .min_train_per_class(3)
        .held_out_fraction(0.4)
        .in_memory()
        .build()
        .unwrap();
    let stripes = p.define_class("stripes").unwrap();
    let rings = p.define_class("rings").unwrap();
    assert_eq!(p.class_name(rings), Some("rings"));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..8 {
        p.add_example([("image", Tensor::from(scene(0, true, &mut rng)))], stripes)
            .unwrap();
        p.add_example([("image", Tensor::from(scene(3, true, &mut rng)))], rings)
            .unwrap();
    }
    let adaptation = p.update().unwrap();
    assert_eq!(adaptation.verdict, Verdict::Accepted, "{adaptation:?}");
    let checker = p.define_class("checker").unwrap();
    for _ in 0..3 {
        p.add_example([("image", Tensor::from(scene(2, true, &mut rng)))], checker)
            .unwrap();
    }
    p.update().unwrap();
    let mut correct = 0;
    for (pattern, class) in [(0, stripes), (3, rings), (2, checker)] {
        for _ in 0..4 {
            let pred = p
                .predict([("image", Tensor::from(scene(pattern, true, &mut rng)))])
                .unwrap();
            correct += usize::from(pred.class == class);
        }
    }
    assert!(correct >= 10, "{correct}/12");
}
