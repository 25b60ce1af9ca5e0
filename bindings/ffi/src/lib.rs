//! UniFFI bindings of the edgekeep SDK: the one crate with UniFFI in it. It mirrors the SDK's
//! public API with owned types and `From` conversions, so the SDK stays free of FFI concerns
//! and any change here is visibly a possible breaking change for Swift and Kotlin apps.
//!
//! | file | what it holds |
//! |---|---|
//! | `edgekeep.rs` | [`EdgeKeep`], the entry point: store, models, personalization, sync |
//! | `config.rs` | [`EdgeKeepConfig`] |
//! | `callbacks.rs` | traits the app implements: [`KeyProvider`], [`DeviceKeyProvider`], [`DeviceStateProvider`] |
//! | `log.rs` | [`LogSink`] and the `tracing` forwarder |
//! | `model.rs`, `tensor.rs` | [`Model`], [`Tensor`] and declared shapes |
//! | `personalize.rs` | [`Personalizer`] and its reports |
//! | `store.rs` | [`EncryptedStore`], the app's key/value entries and events |
//! | `sync.rs` | policies, [`SyncState`], upload and delivery reports |
//! | `error.rs` | [`EdgeKeepError`] and every conversion into it |
//! | `guard.rs` | panics caught at the boundary |
//! | `runtime.rs` | the worker runtime for async exports; cancellation on drop |

uniffi::setup_scaffolding!();

mod callbacks;
mod config;
mod edgekeep;
mod error;
mod guard;
mod log;
mod model;
mod personalize;
mod runtime;
mod store;
mod sync;
mod tensor;

pub use callbacks::{
    DeviceKeyProvider, DeviceState, DeviceStateProvider, KeyProvider, NetworkType, ThermalState,
};
pub use config::EdgeKeepConfig;
pub use edgekeep::{EdgeKeep, sdk_version};
pub use error::EdgeKeepError;
pub use log::{LogLevel, LogSink, clear_log_sink, set_log_sink};
pub use model::Model;
pub use personalize::{
    Adaptation, Evaluation, GuardRejection, Personalizer, Prediction, QualityReport,
};
pub use store::{EncryptedStore, StoredEvent};
pub use sync::{
    ActivationPolicy, ActiveModel, DeliveryReport, DownloadPolicy, SecurityEvent, SlotChange,
    SlotRefusal, SlotRejection, SlotUpdate, SyncState, UploadPolicy, UploadReport,
};
pub use tensor::{
    DType, Dim, Tensor, TensorSpec, tensor_from_f32, tensor_from_i64, tensor_to_f32, tensor_to_i64,
};
