//! [`EdgeKeep`]: the SDK's entry point for apps — the encrypted store, models,
//! personalization and sync, built from one [`EdgeKeepConfig`].

use std::path::PathBuf;
use std::sync::Arc;

use edgekeep::personalize::{self as core_personalize, Backbone};
use edgekeep::store::{Namespace, Store};
use edgekeep::sync::{PublisherKey, SyncClient};

use crate::callbacks::{
    DeviceKeyBridge, DeviceKeyProvider, DeviceStateBridge, DeviceStateProvider, KeyProvider,
    KeyProviderBridge,
};
use crate::config::EdgeKeepConfig;
use crate::error::{EdgeKeepError, Result};
use crate::guard::{guard, guard_async};
use crate::model::Model;
use crate::personalize::Personalizer;
use crate::runtime::run_blocking;
use crate::store::EncryptedStore;
use crate::sync::{ActiveModel, DeliveryReport, SlotChange, SyncState, UploadReport};

/// File name of the encrypted store inside `data_dir`.
const STORE_FILE: &str = "edgekeep.db";
/// Where the personalizer keeps its examples and classifier.
const PERSONALIZATION: Namespace = Namespace::new("app.personalization");

/// The SDK for one app: open it once at start-up and share it. Thread-safe.
#[derive(uniffi::Object)]
pub struct EdgeKeep {
    store: Arc<Store>,
    sync: Option<SyncClient>,
}

impl std::fmt::Debug for EdgeKeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeKeep")
            .field("sync", &self.sync.is_some())
            .finish_non_exhaustive()
    }
}

impl EdgeKeep {
    fn sync_client(&self) -> Result<SyncClient> {
        self.sync.clone().ok_or(EdgeKeepError::SyncNotConfigured)
    }

    fn open(
        config: EdgeKeepConfig,
        key_provider: Arc<dyn KeyProvider>,
        device_key_provider: Option<Arc<dyn DeviceKeyProvider>>,
        device_state_provider: Option<Arc<dyn DeviceStateProvider>>,
    ) -> Result<Self> {
        if config.data_dir.is_empty() {
            return Err(EdgeKeepError::invalid("data_dir is empty"));
        }
        let store = Arc::new(
            Store::builder(PathBuf::from(&config.data_dir).join(STORE_FILE))
                .key_provider(Arc::new(KeyProviderBridge(key_provider)))
                .open()?,
        );
        let sync = match config.control_plane_url.as_deref() {
            None | Some("") => None,
            Some(url) => {
                let mut builder = SyncClient::builder(url)
                    .store(store.clone())
                    .upload_policy(config.upload_policy.into())
                    .download_policy(config.download_policy.into())
                    .activation_policy(config.activation_policy.into());
                if let Some(pem) = config.root_certificate_pem {
                    builder = builder.root_certificate_pem(pem.into_bytes());
                }
                for key in &config.publisher_keys {
                    let key = PublisherKey::from_text(key)
                        .map_err(|_| EdgeKeepError::invalid("a publisher key does not parse"))?;
                    builder = builder.publisher_key(key);
                }
                for slot in &config.model_slots {
                    builder = builder.model_slot(slot);
                }
                if let Some(provider) = device_key_provider {
                    builder = builder.device_key_provider(Arc::new(DeviceKeyBridge(provider)));
                }
                if let Some(provider) = device_state_provider {
                    builder = builder.device_state_provider(Arc::new(DeviceStateBridge(provider)));
                }
                Some(builder.build()?)
            }
        };
        tracing::info!(target: "edgekeep", sync = sync.is_some(), "edgekeep opened");
        Ok(Self { store, sync })
    }
}

#[uniffi::export]
impl EdgeKeep {
    /// Opens the SDK: the encrypted store in `config.data_dir` (created on first use,
    /// unlocked through `key_provider`) and, when `config.control_plane_url` is set, the
    /// sync client.
    ///
    /// `device_key_provider` is the device identity key (default: a software key sealed in
    /// the store); `device_state_provider` reports battery, network, storage and thermal
    /// state (default: a plugged-in device on Wi-Fi).
    ///
    /// Fails with `WrongKey` when the store exists and the key does not open it (nothing is
    /// changed), `KeyUnavailable` when the key cannot be reached now, `InvalidArgument` for a
    /// bad URL or publisher key.
    #[uniffi::constructor]
    pub fn new(
        config: EdgeKeepConfig,
        key_provider: Arc<dyn KeyProvider>,
        device_key_provider: Option<Arc<dyn DeviceKeyProvider>>,
        device_state_provider: Option<Arc<dyn DeviceStateProvider>>,
    ) -> Result<Arc<Self>> {
        guard("EdgeKeep.new", || {
            Self::open(
                config,
                key_provider,
                device_key_provider,
                device_state_provider,
            )
            .map(Arc::new)
        })
    }

    /// The app's encrypted key/value entries and events.
    pub fn store(&self) -> Arc<EncryptedStore> {
        EncryptedStore::new(self.store.clone())
    }

    /// Loads an ONNX or NNEF model file, on the SDK's worker threads.
    pub async fn load_model(&self, path: String) -> Result<Arc<Model>> {
        run_blocking("EdgeKeep.load_model", move || Model::load_path(path)).await
    }

    /// Loads a model from memory (for example decrypted by the app), on the SDK's worker
    /// threads.
    pub async fn load_model_bytes(&self, bytes: Vec<u8>) -> Result<Arc<Model>> {
        run_blocking("EdgeKeep.load_model_bytes", move || {
            Model::load_bytes(&bytes)
        })
        .await
    }

    /// Opens personalization over the model file at `model_path`, whose output
    /// `embedding_output` is the embedding a classifier reads. When the model ends in a
    /// linear classifier over that embedding, its classes are the base classes.
    ///
    /// Examples, class names and the learned classifier are kept in the encrypted store (one
    /// personalization per app: opening another base model migrates or discards it).
    pub async fn open_personalizer(
        &self,
        model_path: String,
        embedding_output: String,
    ) -> Result<Arc<Personalizer>> {
        let store = self.store.clone();
        run_blocking("EdgeKeep.open_personalizer", move || {
            let bytes = std::fs::read(&model_path).map_err(|_| EdgeKeepError::ModelLoad {
                reason: "cannot read the model file".to_owned(),
            })?;
            let backbone = Backbone::from_bytes(
                &bytes,
                &embedding_output,
                edgekeep::inference::ModelLoader::new(),
            )?;
            let mut builder =
                core_personalize::Personalizer::builder(backbone).store(store, PERSONALIZATION);
            if let Some(head) = core_personalize::base_head_from_onnx(&bytes, &embedding_output)? {
                builder = builder.base_head(head);
            }
            Ok(Personalizer::new(builder.build()?))
        })
        .await
    }

    /// Enrolls the device with a single-use bootstrap token from the app's backend; returns
    /// the device id. An enrolled device returns its id without a request. Cancelling the
    /// call stops its network requests.
    pub async fn enroll(&self, org_id: String, bootstrap_token: String) -> Result<String> {
        let client = self.sync_client()?;
        guard_async("EdgeKeep.enroll", async move {
            Ok(client.enroll_async(&org_id, &bootstrap_token).await?)
        })
        .await
    }

    /// Where the device stands with the control plane.
    pub async fn sync_state(&self) -> Result<SyncState> {
        let client = self.sync_client()?;
        guard_async("EdgeKeep.sync_state", async move {
            Ok(client.state_async().await?.into())
        })
        .await
    }

    /// One sync now: closes the current telemetry window into a batch (with a health
    /// snapshot) and uploads the queue if the upload policy allows. Cancelling the call stops
    /// its network requests; unsent batches stay queued.
    pub async fn sync_now(&self) -> Result<UploadReport> {
        let client = self.sync_client()?;
        guard_async("EdgeKeep.sync_now", async move {
            Ok(client.sync_async().await?.into())
        })
        .await
    }

    /// Fetches the signed desired state and installs the models it names (verify, download,
    /// decrypt in memory, health check, activate per the activation policy).
    pub async fn update_models(&self) -> Result<DeliveryReport> {
        let client = self.sync_client()?;
        guard_async("EdgeKeep.update_models", async move {
            Ok(client.update_models_async().await?.into())
        })
        .await
    }

    /// The delivered model serving in `slot`, if any.
    pub fn active_model(&self, slot: String) -> Result<Option<ActiveModel>> {
        guard("EdgeKeep.active_model", || {
            Ok(self.sync_client()?.active_model(&slot)?.map(Into::into))
        })
    }

    /// Activates the staged version of `slot` (manual activation policy).
    pub fn activate_staged(&self, slot: String) -> Result<SlotChange> {
        guard("EdgeKeep.activate_staged", || {
            Ok(self.sync_client()?.activate_staged(&slot)?.into())
        })
    }

    /// Switches telemetry on or off (persisted). Off clears what was recorded and queued.
    pub fn set_telemetry_enabled(&self, enabled: bool) -> Result<()> {
        guard("EdgeKeep.set_telemetry_enabled", || {
            Ok(self.sync_client()?.set_telemetry_enabled(enabled)?)
        })
    }
}

/// The SDK's version.
#[uniffi::export]
pub fn sdk_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
