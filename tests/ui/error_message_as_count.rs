use edgekeep::telemetry::{Telemetry, metrics};

fn main() {
    let telemetry = Telemetry::new();
    let err = std::io::Error::other("path /home/user/diary.txt");
    telemetry.add(metrics::TELEMETRY_BATCHES_DROPPED, err);
}
