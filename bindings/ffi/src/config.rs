//! [`EdgeKeepConfig`]: what the app decides once, at start-up.

use crate::sync::{ActivationPolicy, DownloadPolicy, UploadPolicy};

/// How the SDK is set up: where it keeps its data, which control plane it talks to, which
/// publishers it trusts, and when it may use the network.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EdgeKeepConfig {
    /// A folder private to the app (Application Support / `filesDir`); the encrypted store
    /// lives in it. Created when missing.
    pub data_dir: String,
    /// The control plane, `https://host[:port]`; `None` turns sync off.
    #[uniffi(default = None)]
    pub control_plane_url: Option<String>,
    /// A PEM root certificate to trust instead of the public roots (self-hosted control
    /// planes).
    #[uniffi(default = None)]
    pub root_certificate_pem: Option<String>,
    /// Publisher keys (base64url text, as in the `.pub` file of `edgekeep keygen`) whose
    /// signed models may be installed.
    /// Without any, every delivered model is refused.
    #[uniffi(default = [])]
    pub publisher_keys: Vec<String>,
    /// The model slots the app uses; delivered models for other slots are refused (empty:
    /// any slot).
    #[uniffi(default = [])]
    pub model_slots: Vec<String>,
    /// When telemetry may be uploaded.
    pub upload_policy: UploadPolicy,
    /// When models may be downloaded.
    pub download_policy: DownloadPolicy,
    /// When a verified model starts serving.
    pub activation_policy: ActivationPolicy,
}
