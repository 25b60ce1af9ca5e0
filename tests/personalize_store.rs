//! Personalization kept in the encrypted store: persistence across reopen, nothing readable
//! on disk, base-model changes (discard or migrate), and erasure.

use std::sync::Arc;

use edgekeep::inference::{ModelLoader, Tensor};
use edgekeep::personalize::{
    Backbone, BaseChange, ClassId, Personalizer, PersonalizerBuilder, Verdict,
};
use edgekeep::store::{Namespace, RawKeyProvider, Store};
use ndarray::{Array1, Array2};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

const NS: Namespace = Namespace::new("personalize.test");
const SECRET_LABEL: &str = "Grandma-Ottilie-7731";

fn model_bytes() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/transformer_tiny.onnx"
    ))
    .unwrap()
}

fn backbone(output: &str) -> Backbone {
    Backbone::from_bytes(&model_bytes(), output, ModelLoader::new()).unwrap()
}

fn open_store(dir: &std::path::Path) -> Arc<Store> {
    Arc::new(
        Store::builder(dir.join("edgekeep.db"))
            .key_provider(Arc::new(RawKeyProvider::new([9; 32])))
            .open()
            .unwrap(),
    )
}

fn builder(backbone: Backbone, store: &Arc<Store>) -> PersonalizerBuilder {
    Personalizer::builder(backbone)
        .store(store.clone(), NS)
        .held_out_fraction(0.3)
        .keep_inputs(true)
}

/// Token sequences whose class decides which vocabulary range they draw from.
fn tokens(class: usize, rng: &mut ChaCha8Rng) -> Tensor {
    let lo = 1 + 250 * class as i64;
    let ids: Vec<i64> = (0..16).map(|_| rng.random_range(lo..lo + 250)).collect();
    Tensor::from(Array2::from_shape_vec((1, 16), ids).unwrap())
}

fn file_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn personalization_persists_sealed_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut p = builder(backbone("embedding"), &store).build().unwrap();
    let classes: Vec<ClassId> = (0..3)
        .map(|i| p.define_class(&format!("{SECRET_LABEL}-{i}")).unwrap())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for i in 0..60 {
        let c = i % 3;
        p.add_example([("input_ids", tokens(c, &mut rng))], classes[c])
            .unwrap();
    }
    let adaptation = p.retrain().unwrap();
    assert_eq!(adaptation.verdict, Verdict::Accepted, "{adaptation:?}");
    let probe = tokens(1, &mut rng);
    let before = p.predict([("input_ids", probe.clone())]).unwrap();
    let probe_embedding = p.backbone().embed([("input_ids", probe.clone())]).unwrap();
    drop(p);
    store.checkpoint().unwrap();

    let raw = file_bytes(dir.path());
    assert!(
        !contains(&raw, SECRET_LABEL.as_bytes()),
        "label in plaintext"
    );
    let emb_bytes: Vec<u8> = probe_embedding
        .iter()
        .take(4)
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert!(!contains(&raw, &emb_bytes), "embedding in plaintext");

    let reopened = builder(backbone("embedding"), &store).build().unwrap();
    assert_eq!(reopened.base_change(), BaseChange::Unchanged);
    assert_eq!(reopened.examples(), 60);
    assert!(reopened.is_personalized());
    assert_eq!(
        reopened.class_name(classes[2]),
        Some(format!("{SECRET_LABEL}-2").as_str())
    );
    let after = reopened.predict([("input_ids", probe)]).unwrap();
    assert_eq!(after, before);
}

#[test]
fn a_new_base_model_migrates_kept_inputs_or_discards() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut p = builder(backbone("embedding"), &store).build().unwrap();
    let a = p.define_class("a").unwrap();
    let b = p.define_class("b").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for i in 0..20 {
        let (c, class) = if i % 2 == 0 { (0, a) } else { (2, b) };
        p.add_example([("input_ids", tokens(c, &mut rng))], class)
            .unwrap();
    }
    p.retrain().unwrap();
    drop(p);

    // Same model bytes read at another tensor: another embedding space, same inputs.
    let mut migrated = builder(backbone("logits"), &store).build().unwrap();
    assert_eq!(
        migrated.base_change(),
        BaseChange::Migrated { examples: 20 }
    );
    assert!(!migrated.is_personalized());
    assert_eq!(migrated.base_model_id().dim(), 4);
    assert_eq!(migrated.class_name(b), Some("b"));
    migrated.retrain().unwrap();
    drop(migrated);

    // Without kept inputs the old embeddings cannot follow: everything is discarded.
    let mut p = Personalizer::builder(backbone("embedding"))
        .store(store.clone(), NS)
        .build()
        .unwrap();
    assert_eq!(p.base_change(), BaseChange::Discarded { examples: 20 });
    assert_eq!(p.examples(), 0);
    assert_eq!(p.classes(), 0);
    p.define_class("c").unwrap();
    p.add_embedding(Array1::from_elem(128, 0.5f32).view(), ClassId(0))
        .unwrap();
    drop(p);
    let p = Personalizer::builder(backbone("logits"))
        .store(store.clone(), NS)
        .build()
        .unwrap();
    assert_eq!(p.base_change(), BaseChange::Discarded { examples: 1 });
}

#[test]
fn erase_all_removes_personalization_and_reset_clears_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut p = builder(backbone("embedding"), &store).build().unwrap();
    let class = p.define_class(SECRET_LABEL).unwrap();
    p.add_embedding(Array1::from_elem(128, 1.0f32).view(), class)
        .unwrap();
    p.reset().unwrap();
    assert_eq!((p.examples(), p.classes()), (0, 0));
    let class = p.define_class(SECRET_LABEL).unwrap();
    p.add_embedding(Array1::from_elem(128, 1.0f32).view(), class)
        .unwrap();
    drop(p);
    Arc::try_unwrap(store).unwrap().erase_all().unwrap();

    let store = open_store(dir.path());
    let p = builder(backbone("embedding"), &store).build().unwrap();
    assert_eq!((p.examples(), p.classes()), (0, 0));
}

#[test]
fn bad_input_is_a_typed_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut p = builder(backbone("embedding"), &store).build().unwrap();
    let class = p.define_class("x").unwrap();
    assert!(p.add_embedding(Array1::zeros(3).view(), class).is_err());
    assert!(
        p.add_embedding(Array1::from_elem(128, f32::NAN).view(), class)
            .is_err()
    );
    assert!(
        p.add_embedding(Array1::from_elem(128, 1.0f32).view(), ClassId(9))
            .is_err()
    );
    let wrong = Tensor::from(Array2::from_elem((1, 4), 1.5f32));
    assert!(p.add_example([("input_ids", wrong)], class).is_err());
    assert!(
        p.predict_embedding(Array1::from_elem(128, 1.0f32).view())
            .is_err()
    );
    assert!(p.retrain().is_err());
    assert_eq!(p.examples(), 0);
    assert_eq!(p.classes(), 1);
}
