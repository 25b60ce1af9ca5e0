//! `edgekeep run` as a new user tries it: a model whose file leaves its input sizes open, an
//! input `.npy` of any width, no `--shape`.

use std::path::Path;
use std::process::Command;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::WriteNpyExt;

fn ppocr_cls() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/ppocr_cls.onnx")
        .display()
        .to_string()
}

fn line(dir: &Path, width: usize) -> String {
    let image = ArrayD::from_shape_fn(IxDyn(&[1, 3, 48, width]), |ix| {
        ((ix[2] * 7 + ix[3] * 3) % 255) as f32 / 127.5 - 1.0
    });
    let path = dir.join(format!("line{width}.npy"));
    image
        .write_npy(std::fs::File::create(&path).unwrap())
        .unwrap();
    path.display().to_string()
}

#[test]
fn run_takes_the_shapes_from_the_npy_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for width in [192, 320] {
        let input = format!("x={}", line(dir.path(), width));
        let out = Command::new(env!("CARGO_BIN_EXE_edgekeep"))
            .args(["run", &ppocr_cls(), "--input", &input])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "width {width}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("f32 [1, 2]"), "width {width}: {stdout}");
    }
    let inspect = Command::new(env!("CARGO_BIN_EXE_edgekeep"))
        .args(["inspect", &ppocr_cls()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("input shapes open"), "{text}");
}
