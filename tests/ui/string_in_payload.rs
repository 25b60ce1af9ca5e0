use edgekeep::telemetry::{CounterPoint, MetricId};

fn main() {
    let _ = CounterPoint {
        metric: MetricId::Errors,
        label: Some(String::from("error message: file /home/user/secret.txt")),
        version: None,
        value: 1,
    };
}
