//! edgekeep: on-device ML SDK.
pub mod inference;
