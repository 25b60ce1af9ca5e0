//! [`Personalizer`]: examples in, a guarded personalized head out, one `predict` call.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};

use super::backbone::{Backbone, BaseModelId};
use super::error::{PersonalizeError, Result};
use super::eval::{self, QualityReport};
use super::guard::{GuardPolicy, Verdict};
use super::prototype::{DEFAULT_PROTOTYPE_SCALE, PrototypeHead};
use super::records::{
    ExampleRecord, HEAD_KEY, HeadParams, HeadRecord, META_KEY, MemoryRecords, MetaRecord,
    RecordStore, StoredInput, example_key,
};
use super::softmax::{SoftmaxHead, softmax_rows};
use super::store_records::StoreRecords;
use super::train::{self, TrainConfig};
use crate::inference::Tensor;
use crate::store::{Namespace, Store};

/// A class the personalizer can predict: base classes first (`0..K` for a base head with `K`
/// outputs), then classes the user defined at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub u32);

/// A stored example's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExampleId(pub u64);

/// Which head is trained on the user's examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeadKind {
    /// Multinomial logistic regression, regularized toward the base head (or zero).
    Softmax(TrainConfig),
    /// Nearest class mean over cosine similarity; `scale` is the logit scale.
    Prototype {
        /// Cosine similarity × `scale` = logit.
        scale: f32,
    },
}

impl Default for HeadKind {
    fn default() -> Self {
        HeadKind::Softmax(TrainConfig::default())
    }
}

impl HeadKind {
    /// A prototype head with the default scale.
    pub fn prototype() -> Self {
        HeadKind::Prototype {
            scale: DEFAULT_PROTOTYPE_SCALE,
        }
    }
}

/// How many examples are kept, and for how long. Oldest examples go first. An accepted head
/// keeps what it learned from evicted examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retention {
    /// Most examples kept.
    pub max_examples: usize,
    /// Examples older than this are erased; `None` keeps them until the count limit.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_examples: 5_000,
            max_age: Some(Duration::from_secs(365 * 24 * 3600)),
        }
    }
}

/// What happened to stored personalization when the personalizer was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseChange {
    /// Nothing was stored, or it was built on this very backbone.
    Unchanged,
    /// The backbone changed; examples were re-embedded from their kept inputs and the head
    /// must be retrained ([`Personalizer::retrain`]).
    Migrated {
        /// Examples carried over.
        examples: usize,
    },
    /// The backbone changed and the old embeddings could not be migrated (no kept inputs, or
    /// a different number of base classes): all personalization was erased.
    Discarded {
        /// Examples erased.
        examples: usize,
    },
}

/// The outcome of [`Personalizer::update`] or [`Personalizer::retrain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptation {
    /// Whether the candidate head went live.
    pub verdict: Verdict,
    /// Held-out quality of the base and of the candidate (aggregates only), when a held-out
    /// split exists. This is what telemetry may record.
    pub report: Option<QualityReport>,
}

/// One personalized prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Probability of each class, indexed by [`ClassId`]; sums to 1.
    pub probabilities: Array1<f32>,
    /// The most probable class.
    pub class: ClassId,
    /// Its probability.
    pub confidence: f32,
    /// Weight of the personalized head in the blend (0 = base only, 1 = head only).
    pub personalized_weight: f32,
}

/// Configures and opens a [`Personalizer`].
pub struct PersonalizerBuilder {
    backbone: Backbone,
    base_head: Option<SoftmaxHead>,
    head: HeadKind,
    guard: GuardPolicy,
    held_out_fraction: f32,
    min_train_per_class: u32,
    blend_prior: f32,
    retention: Retention,
    keep_inputs: bool,
    split_seed: u64,
    records: Arc<dyn RecordStore>,
}

impl PersonalizerBuilder {
    /// The base model's own linear classifier over the embedding (`classes × dim` weights),
    /// e.g. read from the model's last `Gemm` or shipped by the app. Without one, the head
    /// starts at and is regularized toward zero, and predictions come from the head alone.
    pub fn base_head(mut self, head: SoftmaxHead) -> Self {
        self.base_head = Some(head);
        self
    }

    /// Which head to train (default: softmax with [`TrainConfig::default`]).
    pub fn head(mut self, head: HeadKind) -> Self {
        self.head = head;
        self
    }

    /// When a candidate head may go live (default: [`GuardPolicy::default`]).
    pub fn guard(mut self, guard: GuardPolicy) -> Self {
        self.guard = guard;
        self
    }

    /// Share of new examples set aside for evaluation and the guard (default 0.2).
    pub fn held_out_fraction(mut self, fraction: f32) -> Self {
        self.held_out_fraction = fraction;
        self
    }

    /// The first examples of each class always go to training (default 2), so one-shot
    /// classes are learnable.
    pub fn min_train_per_class(mut self, n: u32) -> Self {
        self.min_train_per_class = n;
        self
    }

    /// Blend weight of the head is `n / (n + prior)` for `n` training examples (default 20).
    pub fn blend_prior(mut self, prior: f32) -> Self {
        self.blend_prior = prior;
        self
    }

    /// Example retention limits (default: 5,000 examples, one year).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Also store each example's raw inputs (encrypted), so a new base model can re-embed
    /// them instead of discarding personalization. Costs the input size per example.
    pub fn keep_inputs(mut self, keep: bool) -> Self {
        self.keep_inputs = keep;
        self
    }

    /// Seed of the held-out split (default fixed).
    pub fn split_seed(mut self, seed: u64) -> Self {
        self.split_seed = seed;
        self
    }

    /// Keeps records in memory only: nothing is persisted, everything is lost on drop.
    /// This is the default until [`store`](Self::store) is called.
    pub fn in_memory(mut self) -> Self {
        self.records = Arc::new(MemoryRecords::default());
        self
    }

    /// Keeps examples, labels, embeddings and the head sealed in `store` under `namespace`
    /// (one namespace per personalized model, e.g. `Namespace::new("personalize.keyboard")`).
    /// Don't give the namespace a store-level retention policy: the personalizer enforces its
    /// own [`Retention`] and keeps an index that store-side eviction would break.
    /// [`Store::erase_all`](crate::store::Store::erase_all) erases all of it.
    pub fn store(mut self, store: Arc<Store>, namespace: Namespace) -> Self {
        self.records = Arc::new(StoreRecords::new(store, namespace));
        self
    }

    /// Opens the personalizer, loading what is stored and reconciling it with the backbone.
    ///
    /// Fails on an invalid configuration, a base head of the wrong width, unreadable records
    /// (nothing is deleted then) or store errors.
    pub fn build(self) -> Result<Personalizer> {
        self.validate()?;
        let config = Config {
            head: self.head,
            guard: self.guard,
            held_out_fraction: self.held_out_fraction,
            min_train_per_class: self.min_train_per_class,
            blend_prior: self.blend_prior,
            retention: self.retention,
            keep_inputs: self.keep_inputs,
            split_seed: self.split_seed,
        };
        let base_classes = self.base_head.as_ref().map_or(0, SoftmaxHead::classes);
        let fresh_meta = || MetaRecord {
            base: self.backbone.id().clone(),
            classes: vec![None; base_classes],
            example_ids: Vec::new(),
            next_example_id: 0,
            updates: 0,
        };
        let mut p = Personalizer {
            meta: fresh_meta(),
            backbone: self.backbone.clone(),
            base_head: self.base_head.clone(),
            config,
            records: self.records,
            examples: Vec::new(),
            head: None,
            base_change: BaseChange::Unchanged,
        };
        let Some(bytes) = p.records.get(META_KEY)? else {
            p.save_meta()?;
            return Ok(p);
        };
        let stored = MetaRecord::decode(&bytes)?;
        let mut examples = Vec::with_capacity(stored.example_ids.len());
        for &id in &stored.example_ids {
            if let Some(bytes) = p.records.get(&example_key(id))? {
                examples.push(ExampleRecord::decode(&bytes)?);
            }
        }
        let stored_base_classes = stored.classes.iter().take_while(|c| c.is_none()).count();
        if stored.base == *p.backbone.id() && stored_base_classes == base_classes {
            p.meta = stored;
            p.examples = examples;
            if let Some(bytes) = p.records.get(HEAD_KEY)? {
                let head = HeadRecord::decode(&bytes)?;
                if head.base == p.meta.base && head.classes() == p.meta.classes.len() {
                    p.head = Some(head);
                }
            }
        } else {
            let n = examples.len();
            let migratable = p.config.keep_inputs
                && stored_base_classes == base_classes
                && examples.iter().all(|e| !e.inputs.is_empty());
            p.records.clear()?;
            if migratable {
                p.meta = MetaRecord {
                    base: p.backbone.id().clone(),
                    ..stored
                };
                for mut ex in examples {
                    let inputs = ex
                        .inputs
                        .iter()
                        .map(|i| (i.name.as_str(), i.tensor.clone()));
                    ex.embedding = single_row(p.backbone.embed(inputs)?)?;
                    p.records.put(&example_key(ex.id), &ex.encode()?)?;
                    p.examples.push(ex);
                }
                p.base_change = BaseChange::Migrated { examples: n };
            } else {
                p.meta = fresh_meta();
                p.base_change = BaseChange::Discarded { examples: n };
            }
            p.save_meta()?;
        }
        p.enforce_retention()?;
        Ok(p)
    }

    fn validate(&self) -> Result<()> {
        if let Some(h) = &self.base_head
            && h.dim() != self.backbone.dim()
        {
            return Err(PersonalizeError::DimensionMismatch {
                expected: self.backbone.dim(),
                actual: h.dim(),
            });
        }
        match self.head {
            HeadKind::Softmax(c) => c.validate()?,
            HeadKind::Prototype { scale } => {
                PrototypeHead::new(0, 0, scale)?;
            }
        }
        if !(0.0..1.0).contains(&self.held_out_fraction) {
            return Err(PersonalizeError::InvalidConfig(
                "held_out_fraction must be in [0, 1)",
            ));
        }
        if !(self.blend_prior.is_finite() && self.blend_prior >= 0.0) {
            return Err(PersonalizeError::InvalidConfig(
                "blend_prior must be finite and >= 0",
            ));
        }
        if self.retention.max_examples == 0 {
            return Err(PersonalizeError::InvalidConfig("max_examples must be > 0"));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Config {
    head: HeadKind,
    guard: GuardPolicy,
    held_out_fraction: f32,
    min_train_per_class: u32,
    blend_prior: f32,
    retention: Retention,
    keep_inputs: bool,
    split_seed: u64,
}

/// Personalizes a frozen backbone for one user, on the device.
///
/// Examples, labels, embeddings and head weights live only in the record store given at build
/// time (the encrypted store) and in memory. Nothing here touches the network; only
/// [`QualityReport`] aggregates are meant for telemetry.
pub struct Personalizer {
    backbone: Backbone,
    base_head: Option<SoftmaxHead>,
    config: Config,
    records: Arc<dyn RecordStore>,
    meta: MetaRecord,
    examples: Vec<ExampleRecord>,
    head: Option<HeadRecord>,
    base_change: BaseChange,
}

impl std::fmt::Debug for Personalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Personalizer")
            .field("base", self.backbone.id())
            .field("classes", &self.meta.classes.len())
            .field("examples", &self.examples.len())
            .field("personalized", &self.head.is_some())
            .finish_non_exhaustive()
    }
}

impl Personalizer {
    /// Starts configuring a personalizer over `backbone`, with records in memory until
    /// a store is given.
    pub fn builder(backbone: Backbone) -> PersonalizerBuilder {
        PersonalizerBuilder {
            backbone,
            base_head: None,
            head: HeadKind::default(),
            guard: GuardPolicy::default(),
            held_out_fraction: 0.2,
            min_train_per_class: 2,
            blend_prior: 20.0,
            retention: Retention::default(),
            keep_inputs: false,
            split_seed: 0x0073_706c_6974,
            records: Arc::new(MemoryRecords::default()),
        }
    }

    /// The backbone.
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// The embedding space stored personalization belongs to.
    pub fn base_model_id(&self) -> &BaseModelId {
        &self.meta.base
    }

    /// What happened to stored personalization at open.
    pub fn base_change(&self) -> BaseChange {
        self.base_change
    }

    /// Number of classes (base plus user-defined).
    pub fn classes(&self) -> usize {
        self.meta.classes.len()
    }

    /// Number of stored examples.
    pub fn examples(&self) -> usize {
        self.examples.len()
    }

    /// Whether a personalized head is live.
    pub fn is_personalized(&self) -> bool {
        self.head.is_some()
    }

    /// The name the user gave a class (`None` for base classes and unknown ids).
    pub fn class_name(&self, class: ClassId) -> Option<&str> {
        self.meta
            .classes
            .get(class.0 as usize)
            .and_then(|c| c.as_deref())
    }

    /// Defines a new class at run time (say, the user's own label) and returns its id.
    ///
    /// The name is stored encrypted with the examples. A live head grows a class that starts
    /// with no evidence. Fails on store errors.
    pub fn define_class(&mut self, name: &str) -> Result<ClassId> {
        let id = u32::try_from(self.meta.classes.len())
            .map_err(|_| PersonalizeError::InvalidConfig("too many classes"))?;
        self.meta.classes.push(Some(name.to_string()));
        if let Some(head) = &mut self.head {
            match &mut head.params {
                HeadParams::Softmax(h) => {
                    let dim = h.dim();
                    h.push_class(Array1::zeros(dim).view(), 0.0)?;
                }
                HeadParams::Prototype(h) => h.push_class(),
            }
            self.records.put(HEAD_KEY, &head.encode())?;
        }
        self.save_meta()?;
        Ok(ClassId(id))
    }

    /// Runs the backbone on one example (batch of one) and stores it with its label.
    ///
    /// The head does not change until [`update`](Self::update) or [`retrain`](Self::retrain).
    /// Fails on an unknown class, a batch other than one, inference or store errors.
    pub fn add_example<S: AsRef<str>>(
        &mut self,
        inputs: impl IntoIterator<Item = (S, Tensor)>,
        class: ClassId,
    ) -> Result<ExampleId> {
        self.check_class(class)?;
        let inputs: Vec<StoredInput> = inputs
            .into_iter()
            .map(|(n, t)| StoredInput {
                name: n.as_ref().to_string(),
                tensor: t,
            })
            .collect();
        let embedding = single_row(
            self.backbone
                .embed(inputs.iter().map(|i| (i.name.as_str(), i.tensor.clone())))?,
        )?;
        let kept = if self.config.keep_inputs {
            inputs
        } else {
            Vec::new()
        };
        self.store_example(embedding, class, kept)
    }

    /// Stores an example whose embedding the app computed with this backbone (e.g. batched).
    ///
    /// Fails on a wrong width, non-finite values, an unknown class or store errors.
    pub fn add_embedding(
        &mut self,
        embedding: ArrayView1<'_, f32>,
        class: ClassId,
    ) -> Result<ExampleId> {
        self.check_class(class)?;
        self.check_embedding(embedding)?;
        self.store_example(embedding.to_owned(), class, Vec::new())
    }

    /// Incrementally folds examples added since the last accepted head into it (a few
    /// optimizer passes with replay for softmax, running means for prototypes), then runs the
    /// guard. Without a live head this is a full [`retrain`](Self::retrain).
    pub fn update(&mut self) -> Result<Adaptation> {
        let candidate = match &self.head {
            Some(head) if head.classes() == self.classes() => self.incremental(head)?,
            _ => return self.retrain(),
        };
        match candidate {
            Some(c) => self.judge_and_apply(c),
            None => Ok(Adaptation {
                verdict: Verdict::Accepted,
                report: self.evaluate_current()?,
            }),
        }
    }

    /// Trains a head from scratch on every training example (starting from the base weights)
    /// and runs the guard. Fails when no training example exists.
    pub fn retrain(&mut self) -> Result<Adaptation> {
        let candidate = self.retrain_params()?;
        self.judge_and_apply(candidate)
    }

    /// Predicts one example (batch of one): base head and personalized head blended, with the
    /// personalized part temperature-calibrated on held-out data.
    ///
    /// Fails when nothing can predict (no base head, no accepted head), on a batch other than
    /// one, or on inference errors.
    pub fn predict<S: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (S, Tensor)>,
    ) -> Result<Prediction> {
        let embedding = single_row(self.backbone.embed(inputs)?)?;
        self.predict_embedding(embedding.view())
    }

    /// Like [`predict`](Self::predict) for an embedding computed by this backbone.
    pub fn predict_embedding(&self, embedding: ArrayView1<'_, f32>) -> Result<Prediction> {
        self.check_embedding(embedding)?;
        let probs = self.probabilities(self.head.as_ref(), embedding.insert_axis(Axis(0)))?;
        let probabilities = probs.row(0).to_owned();
        let (top, confidence) = eval::argmax(probabilities.view());
        Ok(Prediction {
            class: ClassId(u32::try_from(top).unwrap_or(u32::MAX)),
            confidence,
            personalized_weight: self.head_weight(self.head.as_ref()),
            probabilities,
        })
    }

    /// Base versus current quality on the held-out split, or `None` without held-out data.
    pub fn evaluate(&self) -> Result<Option<QualityReport>> {
        self.evaluate_current()
    }

    /// Forgets all personalization: examples, user classes and the head are erased from the
    /// store and memory. Predictions are then exactly (bit for bit) the base model's.
    pub fn reset(&mut self) -> Result<()> {
        self.records.clear()?;
        self.examples.clear();
        self.head = None;
        let base_classes = self.base_head.as_ref().map_or(0, SoftmaxHead::classes);
        self.meta = MetaRecord {
            base: self.backbone.id().clone(),
            classes: vec![None; base_classes],
            example_ids: Vec::new(),
            next_example_id: 0,
            updates: 0,
        };
        self.save_meta()
    }

    fn check_class(&self, class: ClassId) -> Result<()> {
        if (class.0 as usize) < self.classes() {
            Ok(())
        } else {
            Err(PersonalizeError::UnknownClass(class.0))
        }
    }

    fn check_embedding(&self, embedding: ArrayView1<'_, f32>) -> Result<()> {
        if embedding.len() != self.backbone.dim() {
            return Err(PersonalizeError::DimensionMismatch {
                expected: self.backbone.dim(),
                actual: embedding.len(),
            });
        }
        if embedding.iter().any(|v| !v.is_finite()) {
            return Err(PersonalizeError::NonFinite("embedding"));
        }
        Ok(())
    }

    fn store_example(
        &mut self,
        embedding: Array1<f32>,
        class: ClassId,
        inputs: Vec<StoredInput>,
    ) -> Result<ExampleId> {
        let id = self.meta.next_example_id;
        let trained_in_class = self
            .examples
            .iter()
            .filter(|e| e.class == class.0 && !e.held_out)
            .count();
        let held_out = trained_in_class >= self.config.min_train_per_class as usize
            && eval::is_held_out(self.config.split_seed, id, self.config.held_out_fraction);
        let record = ExampleRecord {
            id,
            class: class.0,
            created_unix_ms: now_ms(),
            held_out,
            embedding,
            inputs,
        };
        self.records.put(&example_key(id), &record.encode()?)?;
        self.examples.push(record);
        self.meta.example_ids.push(id);
        self.meta.next_example_id = id.saturating_add(1);
        self.enforce_retention()?;
        self.save_meta()?;
        Ok(ExampleId(id))
    }

    fn enforce_retention(&mut self) -> Result<()> {
        let Retention {
            max_examples,
            max_age,
        } = self.config.retention;
        let cutoff = max_age.map_or(0, |age| {
            now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
        });
        let excess = self.examples.len().saturating_sub(max_examples);
        let mut evicted = Vec::new();
        let mut i = 0;
        self.examples.retain(|e| {
            let drop = i < excess || e.created_unix_ms < cutoff;
            i += 1;
            if drop {
                evicted.push(e.id);
            }
            !drop
        });
        if evicted.is_empty() {
            return Ok(());
        }
        for id in &evicted {
            self.records.delete(&example_key(*id))?;
        }
        self.meta.example_ids = self.examples.iter().map(|e| e.id).collect();
        self.save_meta()
    }

    fn save_meta(&self) -> Result<()> {
        self.records.put(META_KEY, &self.meta.encode())
    }

    /// Embeddings and labels of the training (`held_out == false`) or held-out split,
    /// restricted to ids `>= from_id`.
    fn split(&self, held_out: bool, from_id: u64) -> (Array2<f32>, Vec<usize>) {
        let picked: Vec<&ExampleRecord> = self
            .examples
            .iter()
            .filter(|e| e.held_out == held_out && e.id >= from_id)
            .collect();
        let mut x = Array2::zeros((picked.len(), self.backbone.dim()));
        for (mut row, e) in x.outer_iter_mut().zip(&picked) {
            row.assign(&e.embedding);
        }
        (x, picked.iter().map(|e| e.class as usize).collect())
    }

    /// The base head padded with zero rows for user classes (or all zeros).
    fn anchor(&self) -> SoftmaxHead {
        let (classes, dim) = (self.classes(), self.backbone.dim());
        let mut w = Array2::zeros((classes, dim));
        let mut b = Array1::zeros(classes);
        if let Some(base) = &self.base_head {
            let k = base.classes().min(classes);
            w.slice_mut(s![..k, ..])
                .assign(&base.weights().slice(s![..k, ..]));
            b.slice_mut(s![..k]).assign(&base.bias().slice(s![..k]));
        }
        SoftmaxHead::from_parts(w, b).unwrap_or_else(|_| SoftmaxHead::zeros(classes, dim))
    }

    fn incremental(&self, head: &HeadRecord) -> Result<Option<HeadRecord>> {
        let (new_x, new_y) = self.split(false, head.next_unseen_id);
        if new_y.is_empty() {
            return Ok(None);
        }
        let (all_x, all_y) = self.split(false, 0);
        let params = match (&head.params, self.config.head) {
            (HeadParams::Softmax(current), HeadKind::Softmax(cfg)) => {
                let old = all_y.len() - new_y.len();
                let seed = cfg.seed ^ self.meta.updates.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                HeadParams::Softmax(train::update(
                    current,
                    &self.anchor(),
                    (new_x.view(), &new_y),
                    (all_x.slice(s![..old, ..]), &all_y[..old]),
                    all_y.len(),
                    &cfg,
                    seed,
                )?)
            }
            (HeadParams::Prototype(current), HeadKind::Prototype { .. }) => {
                let mut h = current.clone();
                for (row, &label) in new_x.outer_iter().zip(&new_y) {
                    h.add(row, label)?;
                }
                HeadParams::Prototype(h)
            }
            _ => return self.retrain_params().map(Some),
        };
        Ok(Some(self.finish_candidate(params, all_y.len())))
    }

    fn retrain_params(&self) -> Result<HeadRecord> {
        let (x, y) = self.split(false, 0);
        if y.is_empty() {
            return Err(PersonalizeError::NoExamples("training"));
        }
        let params = match self.config.head {
            HeadKind::Softmax(cfg) => {
                let anchor = self.anchor();
                HeadParams::Softmax(train::fit(&anchor, &anchor, x.view(), &y, &cfg)?)
            }
            HeadKind::Prototype { scale } => {
                let mut h = PrototypeHead::new(self.classes(), self.backbone.dim(), scale)?;
                for (row, &label) in x.outer_iter().zip(&y) {
                    h.add(row, label)?;
                }
                HeadParams::Prototype(h)
            }
        };
        Ok(self.finish_candidate(params, y.len()))
    }

    /// Fits the temperature on held-out data (when there is enough of it) and wraps the head.
    fn finish_candidate(&self, params: HeadParams, trained_on: usize) -> HeadRecord {
        let mut candidate = HeadRecord {
            base: self.backbone.id().clone(),
            params,
            temperature: 1.0,
            trained_on: u32::try_from(trained_on).unwrap_or(u32::MAX),
            next_unseen_id: self.meta.next_example_id,
        };
        let (hx, hy) = self.split(true, 0);
        if hy.len() >= self.config.guard.min_held_out.max(1) as usize
            && let Ok(logits) = head_logits(&candidate.params, hx.view())
        {
            candidate.temperature = eval::fit_temperature(logits.view(), &hy);
        }
        candidate
    }

    fn judge_and_apply(&mut self, candidate: HeadRecord) -> Result<Adaptation> {
        self.meta.updates = self.meta.updates.wrapping_add(1);
        self.save_meta()?;
        let report = self.held_out_report(Some(&candidate))?;
        let verdict = self
            .config
            .guard
            .judge(report.as_ref().map(|r| (&r.base, &r.personalized)));
        if verdict == Verdict::Accepted {
            self.records.put(HEAD_KEY, &candidate.encode())?;
            self.head = Some(candidate);
        }
        Ok(Adaptation { verdict, report })
    }

    fn evaluate_current(&self) -> Result<Option<QualityReport>> {
        self.held_out_report(self.head.as_ref())
    }

    fn held_out_report(&self, head: Option<&HeadRecord>) -> Result<Option<QualityReport>> {
        let (hx, hy) = self.split(true, 0);
        if hy.is_empty() {
            return Ok(None);
        }
        let base_probs = match self.base_probabilities(hx.view()) {
            Some(p) => p,
            None => Array2::from_elem((hy.len(), self.classes()), 1.0 / self.classes() as f32),
        };
        let base = eval::evaluate(base_probs.view(), &hy)?;
        let personalized = match head {
            Some(_) => eval::evaluate(self.probabilities(head, hx.view())?.view(), &hy)?,
            None => base,
        };
        Ok(Some(QualityReport {
            base,
            personalized,
            training_examples: head.map_or(0, |h| h.trained_on),
            classes: u32::try_from(self.classes()).unwrap_or(u32::MAX),
        }))
    }

    fn head_weight(&self, head: Option<&HeadRecord>) -> f32 {
        match (head, &self.base_head) {
            (None, _) => 0.0,
            (Some(_), None) => 1.0,
            (Some(h), Some(_)) => {
                let n = h.trained_on as f32;
                if n + self.config.blend_prior > 0.0 {
                    n / (n + self.config.blend_prior)
                } else {
                    1.0
                }
            }
        }
    }

    /// Base probabilities padded with zeros for user classes, if there is a base head.
    fn base_probabilities(&self, x: ArrayView2<'_, f32>) -> Option<Array2<f32>> {
        let base = self.base_head.as_ref()?;
        let mut logits = base.logits_unchecked(x);
        softmax_rows(&mut logits);
        let mut out = Array2::zeros((x.nrows(), self.classes()));
        let k = base.classes().min(self.classes());
        out.slice_mut(s![.., ..k])
            .assign(&logits.slice(s![.., ..k]));
        Some(out)
    }

    fn probabilities(
        &self,
        head: Option<&HeadRecord>,
        x: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        let base = self.base_probabilities(x);
        let Some(head) = head else {
            return base.ok_or(PersonalizeError::NoClassifier);
        };
        let mut personal = head_logits(&head.params, x)?;
        let t = head.temperature;
        personal.mapv_inplace(|v| v / t);
        softmax_rows(&mut personal);
        let Some(base) = base else {
            return Ok(personal);
        };
        let alpha = self.head_weight(Some(head));
        Ok(personal * alpha + base * (1.0 - alpha))
    }
}

fn head_logits(params: &HeadParams, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    match params {
        HeadParams::Softmax(h) => h.logits(x),
        HeadParams::Prototype(h) => h.logits(x),
    }
}

/// The single row of a batch-of-one embedding.
fn single_row(rows: Array2<f32>) -> Result<Array1<f32>> {
    if rows.nrows() != 1 {
        return Err(PersonalizeError::DimensionMismatch {
            expected: 1,
            actual: rows.nrows(),
        });
    }
    Ok(rows.row(0).to_owned())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::ModelLoader;
    use crate::personalize::guard::Rejection;
    use ndarray::Array2;

    fn backbone() -> Backbone {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/transformer_tiny.onnx");
        let bytes = std::fs::read(path).unwrap();
        Backbone::from_bytes(&bytes, "embedding", ModelLoader::new()).unwrap()
    }

    /// 128-dim embeddings: class `c` is `3·e_c` plus a little structured noise.
    fn embedding(class: usize, i: usize) -> Array1<f32> {
        Array1::from_shape_fn(128, |d| {
            let noise = (((i * 31 + d * 17) % 13) as f32 - 6.0) * 0.05;
            if d == class { 3.0 + noise } else { noise }
        })
    }

    fn trained() -> Personalizer {
        let base = SoftmaxHead::from_parts(
            Array2::from_shape_fn((3, 128), |(c, d)| if c == d { 1.0 } else { 0.0 }),
            Array1::zeros(3),
        )
        .unwrap();
        let mut p = Personalizer::builder(backbone())
            .base_head(base)
            .held_out_fraction(0.3)
            .build()
            .unwrap();
        for i in 0..60 {
            p.add_embedding(embedding(i % 3, i).view(), ClassId((i % 3) as u32))
                .unwrap();
        }
        assert_eq!(p.retrain().unwrap().verdict, Verdict::Accepted);
        p
    }

    #[test]
    fn guard_rejects_a_poisoned_head_and_keeps_the_live_one() {
        let mut p = trained();
        let live = p.head.clone().unwrap();
        let stored = p.records.get(HEAD_KEY).unwrap().unwrap().to_vec();
        let HeadParams::Softmax(good) = &live.params else {
            panic!("softmax head expected");
        };
        let poisoned =
            SoftmaxHead::from_parts(good.weights().mapv(|w| -w), good.bias().to_owned()).unwrap();
        let candidate = HeadRecord {
            params: HeadParams::Softmax(poisoned),
            ..live.clone()
        };
        let adaptation = p.judge_and_apply(candidate).unwrap();
        assert_eq!(
            adaptation.verdict,
            Verdict::Rejected(Rejection::AccuracyDropped)
        );
        assert_eq!(p.head.as_ref(), Some(&live));
        assert_eq!(p.records.get(HEAD_KEY).unwrap().unwrap().to_vec(), stored);
    }

    #[test]
    fn incremental_update_folds_only_new_examples() {
        let mut p = trained();
        let seen = p.head.as_ref().unwrap().next_unseen_id;
        let extra = p.define_class("new").unwrap();
        for i in 0..12 {
            p.add_embedding(embedding(5, i).view(), extra).unwrap();
        }
        let adaptation = p.update().unwrap();
        assert_eq!(adaptation.verdict, Verdict::Accepted, "{adaptation:?}");
        let head = p.head.as_ref().unwrap();
        assert!(head.next_unseen_id > seen);
        assert_eq!(head.classes(), 4);
        let pred = p.predict_embedding(embedding(5, 99).view()).unwrap();
        assert_eq!(pred.class, extra);
        let pred = p.predict_embedding(embedding(1, 99).view()).unwrap();
        assert_eq!(pred.class, ClassId(1));
    }

    #[test]
    fn retention_evicts_oldest_examples() {
        let mut p = Personalizer::builder(backbone())
            .retention(Retention {
                max_examples: 5,
                max_age: None,
            })
            .build()
            .unwrap();
        let c = p.define_class("c").unwrap();
        for i in 0..8 {
            p.add_embedding(embedding(0, i).view(), c).unwrap();
        }
        assert_eq!(p.examples(), 5);
        assert_eq!(p.meta.example_ids, vec![3, 4, 5, 6, 7]);
        assert!(p.records.get(&example_key(2)).unwrap().is_none());
        assert!(p.records.get(&example_key(3)).unwrap().is_some());
    }

    #[test]
    fn predictions_blend_toward_the_head_as_examples_accumulate() {
        let p = trained();
        let pred = p.predict_embedding(embedding(2, 7).view()).unwrap();
        let n = p.head.as_ref().unwrap().trained_on as f32;
        assert!((pred.personalized_weight - n / (n + 20.0)).abs() < 1e-6);
        assert!((pred.probabilities.sum() - 1.0).abs() < 1e-5);
        assert_eq!(pred.class, ClassId(2));
    }
}
