use edgekeep::telemetry::{Label, LabelValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Leaky;

impl Label for Leaky {
    fn value(self) -> LabelValue {
        unimplemented!()
    }
}

fn main() {}
