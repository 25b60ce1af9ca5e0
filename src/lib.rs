//! edgekeep: on-device ML SDK.
pub mod inference;
pub mod store;
pub mod personalize;
pub mod sync;
pub mod telemetry;
