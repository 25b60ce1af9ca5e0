use edgekeep::telemetry::{Counter, MetricId};

fn main() {
    let _ = Counter::declare(MetricId::Errors);
    let _ = Counter { id: MetricId::Errors };
}
