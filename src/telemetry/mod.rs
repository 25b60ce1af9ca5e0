//! Declared telemetry: the only values the SDK may send off the device.
//!
//! Every metric is declared in [`metrics`] with a closed [`MetricId`], a kind, a description
//! and bounds. Recording goes through [`Telemetry`], whose methods accept only numbers, closed
//! label enums (the sealed [`Label`] trait) and [`ModelVersion`]s — never a string, a byte
//! buffer or an error message — so a payload cannot carry user data by construction. A
//! compile-fail test (`tests/ui/`) keeps it that way.
//!
//! | file | what it holds |
//! |---|---|
//! | `labels.rs` | the closed label enums and the sealed [`Label`] trait |
//! | `metric.rs` | metric handles ([`Counter`], [`LabeledCounter`], [`Histogram`], [`Quantity`]) |
//! | `metrics.rs` | the registry: every metric the SDK declares |
//! | `recorder.rs` | [`Telemetry`], the in-memory aggregates and opt-out |
//! | `health.rs` | [`DeviceStateProvider`] and the bucketed [`HealthSnapshot`] |
//! | `payload.rs` | the wire batch ([`TelemetryBatch`]) built only from the above |
//! | `queue.rs` | [`UploadQueue`], the durable, bounded queue of sealed batches |
//! | `error.rs` | [`TelemetryError`] |

#![warn(missing_docs)]

mod error;
mod health;
mod labels;
mod metric;
pub mod metrics;
mod payload;
mod queue;
mod recorder;

pub use error::TelemetryError;
pub use health::{
    BatteryBucket, DeviceState, DeviceStateProvider, FixedDeviceState, HealthSnapshot, NetworkType,
    StorageBucket, ThermalState,
};
pub use labels::{ErrorKind, Label, LabelValue, RolloutStage, SecurityEvent};
pub use metric::{
    Counter, Histogram, LabeledCounter, MetricId, MetricKind, ModelVersion, Quantity,
};
pub use payload::{CounterPoint, HistogramPoint, QuantityPoint, SCHEMA_VERSION, TelemetryBatch};
pub use queue::{QueueLimits, QueuedBatch, UploadQueue};
pub use recorder::Telemetry;
