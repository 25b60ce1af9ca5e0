//! Two-phase activation: stage → warm up → health check → activate atomically, keeping the
//! previous version; roll back on failure or when the app reports a crash loop.
//!
//! Installed versions are recorded per model slot in the store (manifest and content key,
//! sealed); ciphertext stays in the store's artifact chunks and is decrypted in memory only
//! when a model is loaded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edgekeep_protocol::artifact::{ArtifactManifest, ContentKey, open_artifact};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::store::{Namespace, Store};
use crate::telemetry::ModelVersion;

use super::error::SyncError;
use super::runtime;
use crate::inference::Model;

pub(crate) const ARTIFACTS: Namespace = Namespace::new("sync.artifacts");
const SLOTS: Namespace = Namespace::new("sync.slots");
/// The names of every slot with a record (slot records are found by keyed hash, so they
/// cannot be listed otherwise). Slot names come from the operator, never from the user.
const SLOT_INDEX: Namespace = Namespace::new("sync.slot_index");
const SLOT_NAMES: &[u8] = b"names";

/// When a verified version starts serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActivationPolicy {
    /// As soon as it passes its health check.
    #[default]
    Immediate,
    /// At the next start of the SDK (next [`SyncClient`](super::SyncClient) built).
    NextLaunch,
    /// When the app calls [`SyncClient::activate_staged`](super::SyncClient::activate_staged).
    Manual,
}

/// One installed version of a slot, as recorded in the store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Installed {
    #[zeroize(skip)]
    pub manifest: ArtifactManifest,
    pub content_key: [u8; 32],
}

impl std::fmt::Debug for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installed")
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

impl Installed {
    pub fn version(&self) -> u64 {
        self.manifest.version
    }
}

/// The record of one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SlotRecord {
    pub active: Option<Installed>,
    pub previous: Option<Installed>,
    pub staged: Option<Installed>,
    /// The last version that failed its health check here; not downloaded again.
    #[serde(default)]
    pub failed: Option<u64>,
}

/// The app's own probe of a newly verified version before it serves, after the SDK's
/// (it loads, runs, and gives finite outputs): e.g. predictions on a few local examples
/// agree with the version serving now. Returning `false`, or panicking, keeps the current
/// version serving and reports the new one as rolled back.
pub trait ModelHealthCheck: Send + Sync {
    /// Whether `model`, the verified `version`, may serve.
    fn is_healthy(&self, version: &ModelVersion, model: &Model) -> bool;
}

/// A model serving in a slot.
#[derive(Debug, Clone)]
pub struct ActiveModel {
    /// Slot and version (use it to record latency and quality).
    pub version: ModelVersion,
    /// The loaded model, shared.
    pub model: Model,
    /// SHA-256 of the model bytes, from the signed manifest: the identity of its embedding
    /// space for [`crate::personalize::Backbone::new`].
    pub model_sha256: [u8; 32],
}

impl ActiveModel {
    fn of(slot: &str, installed: &Installed, model: Model) -> Option<ActiveModel> {
        let hex = installed.manifest.plaintext_sha256.as_bytes();
        let mut model_sha256 = [0u8; 32];
        if hex.len() != 64 {
            return None;
        }
        for (byte, pair) in model_sha256.iter_mut().zip(hex.chunks(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(text, 16).ok()?;
        }
        Some(ActiveModel {
            version: ModelVersion::new(slot, installed.version())?,
            model,
            model_sha256,
        })
    }
}

/// What happened to a slot's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotChange {
    /// The version now serves.
    Activated(u64),
    /// The version is staged and waits for the activation policy.
    Staged(u64),
    /// Activation failed; the previous version (if any) still serves.
    RolledBack {
        /// The version that failed.
        failed: u64,
        /// The version serving now.
        serving: Option<u64>,
    },
}

/// The slots of one client.
pub(crate) struct Slots {
    store: Arc<Store>,
    live: Mutex<HashMap<String, ActiveModel>>,
    app_check: Option<Arc<dyn ModelHealthCheck>>,
}

fn slot_key(slot: &str) -> Vec<u8> {
    slot.as_bytes().to_vec()
}

impl Slots {
    pub fn new(store: Arc<Store>, app_check: Option<Arc<dyn ModelHealthCheck>>) -> Self {
        Self {
            store,
            live: Mutex::new(HashMap::new()),
            app_check,
        }
    }

    /// The SDK's probe, then the app's.
    fn check(&self, slot: &str, version: u64, model: &Model) -> Result<(), SyncError> {
        runtime::health_check(model)?;
        let (Some(check), Some(version)) = (&self.app_check, ModelVersion::new(slot, version))
        else {
            return Ok(());
        };
        let healthy = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check.is_healthy(&version, model)
        }));
        match healthy {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(SyncError::ModelRejected(
                "the app's health check refused the model",
            )),
        }
    }

    /// Whether `version` failed its health check on this device before.
    pub fn failed_before(&self, slot: &str, version: u64) -> Result<bool, SyncError> {
        Ok(self.record(slot)?.failed == Some(version))
    }

    pub fn record(&self, slot: &str) -> Result<SlotRecord, SyncError> {
        match self.store.kv().get(SLOTS, &slot_key(slot))? {
            None => Ok(SlotRecord::default()),
            Some(bytes) => serde_json::from_slice(bytes.as_bytes())
                .map_err(|_| SyncError::Config("slot record is unreadable")),
        }
    }

    fn save(&self, slot: &str, record: &SlotRecord) -> Result<(), SyncError> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(record).map_err(|_| SyncError::Config("slot encoding failed"))?,
        );
        self.store.kv().put(SLOTS, &slot_key(slot), &bytes)?;
        let mut names = self.slot_names()?;
        if !names.iter().any(|name| name == slot) {
            names.push(slot.to_owned());
            names.sort();
            let encoded = serde_json::to_vec(&names)
                .map_err(|_| SyncError::Config("slot index encoding failed"))?;
            self.store.kv().put(SLOT_INDEX, SLOT_NAMES, &encoded)?;
        }
        Ok(())
    }

    /// Every slot that has ever had a record.
    fn slot_names(&self) -> Result<Vec<String>, SyncError> {
        match self.store.kv().get(SLOT_INDEX, SLOT_NAMES)? {
            None => Ok(Vec::new()),
            Some(bytes) => serde_json::from_slice(bytes.as_bytes())
                .map_err(|_| SyncError::Config("slot index is unreadable")),
        }
    }

    /// The version serving in each slot, by slot name.
    pub fn active_versions(&self) -> Result<Vec<ModelVersion>, SyncError> {
        let mut versions = Vec::new();
        for slot in self.slot_names()? {
            if let Some(active) = self.record(&slot)?.active
                && let Some(version) = ModelVersion::new(&slot, active.version())
            {
                versions.push(version);
            }
        }
        Ok(versions)
    }

    /// The installed version of a slot (0 if none): what a new manifest must exceed.
    pub fn installed_version(&self, slot: &str) -> Result<u64, SyncError> {
        let record = self.record(slot)?;
        Ok(record
            .active
            .iter()
            .chain(record.staged.iter())
            .map(Installed::version)
            .max()
            .unwrap_or(0))
    }

    /// Decrypts an installed version from the store and loads it (memory only).
    pub fn load(&self, installed: &Installed) -> Result<Model, SyncError> {
        let manifest = &installed.manifest;
        let ciphertext = self
            .store
            .artifacts()
            .read(ARTIFACTS, manifest.artifact_id().as_bytes())?
            .ok_or(SyncError::Config(
                "installed artifact is missing from the store",
            ))?;
        let key = ContentKey::from_bytes(installed.content_key);
        let plain = open_artifact(manifest, &key, &ciphertext)
            .map_err(|_| SyncError::Integrity("installed artifact does not verify"))?;
        runtime::load(&plain)
    }

    /// Stages a verified version and, per `policy`, activates it.
    pub fn stage(
        &self,
        slot: &str,
        installed: Installed,
        model: Model,
        policy: ActivationPolicy,
    ) -> Result<SlotChange, SyncError> {
        let version = installed.version();
        let mut record = self.record(slot)?;
        record.staged = Some(installed);
        self.save(slot, &record)?;
        match policy {
            ActivationPolicy::Immediate => self.activate_with(slot, Some(model)),
            ActivationPolicy::NextLaunch | ActivationPolicy::Manual => {
                Ok(SlotChange::Staged(version))
            }
        }
    }

    /// Activates the staged version of `slot`: load (unless given), health check, then
    /// swap atomically in the store and in memory. On failure the staged version is
    /// dropped and the active one keeps serving.
    pub fn activate_with(
        &self,
        slot: &str,
        loaded: Option<Model>,
    ) -> Result<SlotChange, SyncError> {
        let mut record = self.record(slot)?;
        let Some(staged) = record.staged.take() else {
            return Err(SyncError::Config("nothing staged in this slot"));
        };
        let version = staged.version();
        let checked = match loaded {
            Some(model) => Ok(model),
            None => self.load(&staged),
        }
        .and_then(|model| self.check(slot, version, &model).map(|()| model));
        let model = match checked {
            Ok(model) => model,
            Err(_) => {
                record.failed = Some(version);
                self.save(slot, &record)?;
                self.forget_artifact(&staged, &record)?;
                return Ok(SlotChange::RolledBack {
                    failed: version,
                    serving: record.active.as_ref().map(Installed::version),
                });
            }
        };
        let Some(live) = ActiveModel::of(slot, &staged, model) else {
            return Err(SyncError::Config("slot record is not valid"));
        };
        let old_previous = record.previous.take();
        record.previous = record.active.take();
        record.active = Some(staged);
        self.save(slot, &record)?;
        if let Some(old) = old_previous {
            self.forget_artifact(&old, &record)?;
        }
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slot.to_owned(), live);
        Ok(SlotChange::Activated(version))
    }

    /// Goes back to the previous version (crash loop reported by the app).
    pub fn roll_back(&self, slot: &str) -> Result<SlotChange, SyncError> {
        let mut record = self.record(slot)?;
        let Some(previous) = record.previous.take() else {
            return Err(SyncError::Config("no previous version to roll back to"));
        };
        let model = self.load(&previous)?;
        let live = ActiveModel::of(slot, &previous, model);
        let failed = record.active.take();
        let serving = previous.version();
        record.active = Some(previous);
        self.save(slot, &record)?;
        if let Some(failed) = &failed {
            self.forget_artifact(failed, &record)?;
        }
        if let Some(live) = live {
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(slot.to_owned(), live);
        }
        Ok(SlotChange::RolledBack {
            failed: failed.as_ref().map_or(0, Installed::version),
            serving: Some(serving),
        })
    }

    /// Promotes every staged version (called at launch for [`ActivationPolicy::NextLaunch`]).
    pub fn promote_staged(&self) -> Result<Vec<(String, SlotChange)>, SyncError> {
        let mut changes = Vec::new();
        for slot in self.slot_names()? {
            if self.record(&slot)?.staged.is_some() {
                let change = self.activate_with(&slot, None)?;
                changes.push((slot, change));
            }
        }
        Ok(changes)
    }

    /// The model serving in `slot`, loading it from the store on first use.
    pub fn active(&self, slot: &str) -> Result<Option<ActiveModel>, SyncError> {
        if let Some(live) = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(slot)
        {
            return Ok(Some(live.clone()));
        }
        let record = self.record(slot)?;
        let Some(active) = record.active else {
            return Ok(None);
        };
        let model = self.load(&active)?;
        let Some(live) = ActiveModel::of(slot, &active, model) else {
            return Ok(None);
        };
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slot.to_owned(), live.clone());
        Ok(Some(live))
    }

    /// Deletes an artifact's chunks unless another record of the slot still uses them.
    fn forget_artifact(&self, gone: &Installed, record: &SlotRecord) -> Result<(), SyncError> {
        let id = gone.manifest.artifact_id();
        let in_use = [&record.active, &record.previous, &record.staged]
            .into_iter()
            .flatten()
            .any(|i| i.manifest.artifact_id() == id);
        if !in_use {
            self.store.artifacts().delete(ARTIFACTS, id.as_bytes())?;
        }
        Ok(())
    }
}
