//! edgekeep: an on-device ML SDK for apps that handle sensitive data.
//!
//! Models run on the device ([`inference`]), adapt to their user on the device
//! ([`personalize`]), and everything user-derived stays on the device in an encrypted store
//! ([`store`]). The only door to the network is [`sync`], which sends declared metrics
//! ([`telemetry`]) and pulls signed, encrypted models from the control plane.

pub mod inference;
pub mod personalize;
pub mod store;
pub mod sync;
pub mod telemetry;
