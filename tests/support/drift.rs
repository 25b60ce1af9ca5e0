//! Synthetic texture images for personalization: the population's and one drifted user's.
//!
//! Shared by `tests/personalize_scenario.rs` and `examples/personalize.rs` (`#[path]`-included).

use ndarray::Array4;
use rand::RngExt;
use rand::rngs::ChaCha8Rng;

pub const SIZE: usize = 160;
pub const CLASSES: usize = 4;

/// One normalized `1 × 3 × 160 × 160` image of texture `pattern`.
pub fn scene(pattern: usize, user: bool, rng: &mut ChaCha8Rng) -> Array4<f32> {
    let period = rng.random_range(14.0f32..22.0) / if user { 2.0 } else { 1.0 };
    let phase = rng.random_range(0.0f32..std::f32::consts::TAU);
    let base: [f32; 3] = [
        rng.random_range(0.35f32..0.65),
        rng.random_range(0.35f32..0.65),
        rng.random_range(0.35f32..0.65),
    ];
    let cast: [f32; 3] = if user { [1.35, 1.0, 0.55] } else { [1.0; 3] };
    let mean = [0.485f32, 0.456, 0.406];
    let std = [0.229f32, 0.224, 0.225];
    let k = std::f32::consts::TAU / period;
    let mut img = Array4::zeros((1, 3, SIZE, SIZE));
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (fx, fy) = (x as f32, y as f32);
            let v = match pattern {
                0 => (k * fx + phase).sin(),
                1 => (k * fy + phase).sin(),
                2 => (k * fx + phase).sin() * (k * fy + phase).sin(),
                _ => {
                    let r = ((fx - 80.0).powi(2) + (fy - 80.0).powi(2)).sqrt();
                    (k * r + phase).sin()
                }
            };
            for c in 0..3 {
                let noise = rng.random_range(-0.05f32..0.05);
                let p = ((base[c] + 0.3 * v) * cast[c] + noise).clamp(0.0, 1.0);
                img[[0, c, y, x]] = (p - mean[c]) / std[c];
            }
        }
    }
    img
}

/// The user's label for a texture: checkers and rings swapped.
pub fn user_label(pattern: usize) -> usize {
    match pattern {
        2 => 3,
        3 => 2,
        p => p,
    }
}
