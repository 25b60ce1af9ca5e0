use edgekeep::telemetry::{Telemetry, metrics};

fn main() {
    let telemetry = Telemetry::new();
    telemetry.add_labeled(metrics::ERRORS, String::from("user@example.com"), None, 1);
}
