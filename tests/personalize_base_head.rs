//! The base model's own classifier, read out of the ONNX graph, reproduces the model's logits.

use edgekeep::inference::{ModelLoader, Tensor};
use edgekeep::personalize::base_head_from_onnx;
use ndarray::Array2;

#[test]
fn gemm_head_read_from_onnx_matches_the_model_logits() {
    for (file, input, dim, classes) in [
        ("transformer_tiny.onnx", "input_ids", 128, 4),
        ("mobilenet_tiny.onnx", "image", 512, 10),
    ] {
        let path = format!("{}/models/{file}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let head = base_head_from_onnx(&bytes, "embedding").unwrap().unwrap();
        assert_eq!((head.classes(), head.dim()), (classes, dim));
        let model = ModelLoader::new()
            .with_outputs(["embedding", "logits"])
            .load_bytes(&bytes)
            .unwrap();
        let tensor = if input == "input_ids" {
            Tensor::from(Array2::from_shape_fn((1, 12), |(_, j)| {
                (j * 37 % 1000) as i64
            }))
        } else {
            Tensor::from(ndarray::Array4::from_shape_fn(
                (1, 3, 160, 160),
                |(_, c, y, x)| ((x * 7 + y * 3 + c) % 17) as f32 / 17.0 - 0.5,
            ))
        };
        let out = model.run([(input, tensor)]).unwrap();
        let emb = out.get("embedding").unwrap().to_array::<f32>().unwrap();
        let emb = emb.into_shape_with_order((1, dim)).unwrap();
        let logits = out.get("logits").unwrap().to_array::<f32>().unwrap();
        let ours = head.logits(emb.view()).unwrap();
        for (a, b) in ours.iter().zip(logits.iter()) {
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "{file}: {a} vs {b}");
        }
    }
    assert!(base_head_from_onnx(b"not onnx", "embedding").is_err());
    let path = format!("{}/models/logreg.onnx", env!("CARGO_MANIFEST_DIR"));
    assert!(
        base_head_from_onnx(&std::fs::read(path).unwrap(), "X")
            .unwrap()
            .is_none()
    );
}
