//! One simulated phone: its own encrypted store, sync client, model and personal data.

use std::sync::Arc;
use std::time::Instant;

use edgekeep::inference::Tensor;
use edgekeep::personalize::{
    Backbone, ClassId, HeadKind, Personalizer, QualityReport, SoftmaxHead, TrainConfig,
};
use edgekeep::store::{Namespace, RawKeyProvider, Store};
use edgekeep::sync::{
    DeliveryReport, ModelHealthCheck, PublisherKey, SyncClient, SyncError, SyncState, UploadReport,
};
use edgekeep::telemetry::{ModelVersion, metrics};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use ring::rand::{SecureRandom, SystemRandom};

use crate::drift::{CLASSES, scene, user_label};
use crate::wire_log::WireLog;

/// The model slot the demo app uses.
pub const SLOT: &str = "camera";
/// Where the app keeps its own notes (the canary lives there).
const APP_NOTES: Namespace = Namespace::new("app.notes");
/// Where personalization keeps examples, embeddings and the personal head.
const PERSONAL: Namespace = Namespace::new("app.camera.personal");
/// The embedding tensor of the camera model.
pub const EMBEDDING: &str = "embedding";

/// The app's probe of a new version before it serves: on an image from this device's own
/// camera, it must give a finite embedding of the width the personal head was trained on.
struct EmbeddingProbe {
    width: usize,
    /// The demo's injected fault: this device refuses every version after the first.
    fault_injected: bool,
}

impl ModelHealthCheck for EmbeddingProbe {
    fn is_healthy(&self, version: &ModelVersion, model: &edgekeep::inference::Model) -> bool {
        if self.fault_injected && version.version() > 1 {
            return false;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(version.version());
        let image = Tensor::from(scene(0, true, &mut rng));
        let Ok(outputs) = model.run([("image", image)]) else {
            return false;
        };
        outputs
            .get(EMBEDDING)
            .and_then(|t| t.as_slice::<f32>().map(<[f32]>::to_vec))
            .is_ok_and(|e| e.len() == self.width && e.iter().all(|x| x.is_finite()))
    }
}

/// What a device's local work produced (aggregates only).
#[derive(Debug, Clone, Copy)]
pub struct LocalWork {
    /// Inferences run.
    pub inferences: usize,
    /// Personal examples added (they stay in the encrypted store).
    pub examples: usize,
    /// Held-out quality before and after personalization.
    pub quality: Option<QualityReport>,
}

/// A simulated device.
pub struct Device {
    /// Position in the fleet (for display).
    pub index: usize,
    id: std::sync::OnceLock<String>,
    client: SyncClient,
    /// Everything the SDK sent.
    pub wire: Arc<WireLog>,
}

/// Where the fleet's devices come from.
pub struct DeviceFactory {
    /// Control plane URL.
    pub base_url: String,
    /// The control plane's CA (self-hosted).
    pub ca_pem: String,
    /// The publisher key the app pins.
    pub publisher: PublisherKey,
    /// The text planted in every device's store; it must never leave.
    pub canary: String,
    /// Folder under which each device gets its own.
    pub root: std::path::PathBuf,
    /// Embedding width of the camera model.
    pub embedding_width: usize,
}

fn failed(what: &str) -> impl Fn(SyncError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl DeviceFactory {
    /// A new device: fresh encrypted store with its own key, and a sync client.
    pub fn create(&self, index: usize, faulty: bool) -> Result<Device, String> {
        let dir = self.root.join(format!("device-{index:03}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("device folder: {e}"))?;
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "no system randomness")?;
        let store = Store::builder(dir.join("edgekeep.db"))
            .key_provider(Arc::new(RawKeyProvider::new(key)))
            .open()
            .map_err(|e| format!("opening the store: {e}"))?;
        store
            .kv()
            .put(APP_NOTES, b"note", self.canary.as_bytes())
            .map_err(|e| format!("writing a note: {e}"))?;
        let wire = Arc::new(WireLog::new(&self.canary));
        let client = SyncClient::builder(&self.base_url)
            .store(Arc::new(store))
            .root_certificate_pem(self.ca_pem.as_bytes().to_vec())
            .publisher_key(self.publisher)
            .model_slot(SLOT)
            .health_check(Arc::new(EmbeddingProbe {
                width: self.embedding_width,
                fault_injected: faulty,
            }))
            .request_observer(wire.clone())
            .build()
            .map_err(failed("building the sync client"))?;
        Ok(Device {
            index,
            id: std::sync::OnceLock::new(),
            client,
            wire,
        })
    }
}

impl Device {
    /// Enrolls with a bootstrap token from the app's backend.
    pub fn enroll(&self, org_id: &str, token: &str) -> Result<(), String> {
        let id = self
            .client
            .enroll(org_id, token)
            .map_err(failed("enrolling"))?;
        self.id.set(id).map_err(|_| "enrolled twice".to_owned())
    }

    /// The id the control plane gave it at enrollment (empty before).
    pub fn id(&self) -> &str {
        self.id.get().map_or("", String::as_str)
    }

    /// Pulls the desired state and installs what it names.
    pub fn update(&self) -> Result<DeliveryReport, String> {
        self.client
            .update_models()
            .map_err(failed("updating models"))
    }

    /// The version serving in the camera slot.
    pub fn serving(&self) -> Option<u64> {
        self.client
            .active_model(SLOT)
            .ok()
            .flatten()
            .map(|m| m.version.version())
    }

    /// Runs the serving model on `count` images from this device's camera, recording
    /// latency through the declared histogram.
    pub fn infer(&self, count: usize, seed: u64) -> Result<usize, String> {
        let active = self
            .client
            .active_model(SLOT)
            .map_err(failed("loading the model"))?
            .ok_or("no model serving")?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for i in 0..count {
            let image = Tensor::from(scene(i % CLASSES, true, &mut rng));
            let started = Instant::now();
            active
                .model
                .run([("image", image)])
                .map_err(|e| format!("inference: {e}"))?;
            self.client.telemetry().observe(
                metrics::INFERENCE_LATENCY_MS,
                &active.version,
                started.elapsed().as_secs_f64() * 1e3,
            );
        }
        Ok(count)
    }

    /// Personalizes the serving model on this user's own photos and labels, kept in the
    /// encrypted store; reports held-out quality before and after as declared aggregates.
    pub fn personalize(
        &self,
        base_head: &SoftmaxHead,
        per_class: usize,
        seed: u64,
    ) -> Result<LocalWork, String> {
        let active = self
            .client
            .active_model(SLOT)
            .map_err(failed("loading the model"))?
            .ok_or("no model serving")?;
        let backbone = Backbone::new(active.model.clone(), EMBEDDING, active.model_sha256)
            .map_err(|e| format!("backbone: {e}"))?;
        let config = TrainConfig {
            epochs: 60,
            ..TrainConfig::default()
        };
        let mut personalizer = Personalizer::builder(backbone)
            .base_head(base_head.clone())
            .head(HeadKind::Softmax(config))
            .held_out_fraction(0.3)
            .split_seed(seed)
            .store(self.client.store().clone(), PERSONAL)
            .build()
            .map_err(|e| format!("personalizer: {e}"))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let examples = per_class * CLASSES;
        for i in 0..examples {
            let pattern = i % CLASSES;
            let image = Tensor::from(scene(pattern, true, &mut rng));
            personalizer
                .add_example([("image", image)], ClassId(user_label(pattern) as u32))
                .map_err(|e| format!("adding an example: {e}"))?;
        }
        let adaptation = personalizer
            .retrain()
            .map_err(|e| format!("training: {e}"))?;
        if let Some(report) = &adaptation.report {
            report.record(self.client.telemetry(), &active.version);
        }
        Ok(LocalWork {
            inferences: 0,
            examples,
            quality: adaptation.report,
        })
    }

    /// Uploads queued telemetry (and the heartbeat).
    pub fn sync(&self) -> Result<UploadReport, SyncError> {
        self.client.sync()
    }

    /// Where the device stands with the control plane.
    pub fn state(&self) -> Result<SyncState, String> {
        self.client.state().map_err(failed("reading the state"))
    }
}
