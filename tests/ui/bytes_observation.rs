use edgekeep::telemetry::{Telemetry, metrics};

fn main() {
    let telemetry = Telemetry::new();
    let embedding: Vec<u8> = vec![1, 2, 3];
    let version = edgekeep::telemetry::ModelVersion::new("m", 1).unwrap();
    telemetry.observe(metrics::INFERENCE_LATENCY_MS, &version, embedding);
}
