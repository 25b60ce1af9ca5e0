//! Plans specialized to the concrete inputs they run on, for models whose file leaves shapes
//! undetermined (an OCR line of any width, a sequence of any length): the graph is kept as
//! parsed, and each new input signature (element types and shapes) gets its own optimized
//! plan, built on first use and kept in a bounded, least-recently-used cache shared by every
//! thread running the model.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::runtime::RunOptions;

use super::error::reason;
use super::{ComputePool, InferenceError};

pub(crate) type Plan = TypedSimplePlan;

/// How many specialized plans a model keeps unless told otherwise.
pub const DEFAULT_PLAN_CACHE_CAPACITY: usize = 8;

/// The element types and shapes of one run's inputs, in model order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signature(Vec<(DatumType, TVec<usize>)>);

impl Signature {
    pub(crate) fn of(values: &[TValue]) -> Signature {
        Signature(
            values
                .iter()
                .map(|v| (v.datum_type(), v.shape().into()))
                .collect(),
        )
    }
}

/// What a model's plan cache has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanCacheStats {
    /// Runs that found their signature's plan already built.
    pub hits: u64,
    /// Runs that had to specialize and optimize the graph for their signature.
    pub misses: u64,
    /// Plans held now.
    pub entries: usize,
    /// The most plans held at once.
    pub capacity: usize,
}

/// A parsed graph and the plans specialized from it.
pub(crate) struct Specializer {
    graph: InferenceModel,
    pool: Option<ComputePool>,
    cache: PlanCache<Arc<Plan>>,
}

impl Specializer {
    pub(crate) fn new(
        graph: InferenceModel,
        pool: Option<ComputePool>,
        capacity: usize,
    ) -> Specializer {
        Specializer {
            graph,
            pool,
            cache: PlanCache::new(capacity),
        }
    }

    /// The plan for inputs of `signature`, from the cache or specialized now.
    ///
    /// Two threads missing on one signature at once both specialize; the first to finish is
    /// kept, so the cache never holds two plans for one signature.
    pub(crate) fn plan_for(&self, signature: Signature) -> Result<Arc<Plan>, InferenceError> {
        if let Some(plan) = self.cache.get(&signature) {
            return Ok(plan);
        }
        let plan = self.specialize(&signature)?;
        Ok(self.cache.insert(signature, plan))
    }

    pub(crate) fn stats(&self) -> PlanCacheStats {
        self.cache.stats()
    }

    fn specialize(&self, signature: &Signature) -> Result<Arc<Plan>, InferenceError> {
        let analysis = |e: TractError| InferenceError::Analysis { reason: reason(&e) };
        let mut graph = self.graph.clone();
        for (ix, (datum_type, shape)) in signature.0.iter().enumerate() {
            graph
                .set_input_fact(ix, InferenceFact::dt_shape(*datum_type, shape.clone()))
                .map_err(analysis)?;
        }
        let optimized = graph.into_optimized().map_err(analysis)?;
        let options = RunOptions {
            executor: self.pool.as_ref().map(ComputePool::executor),
            ..RunOptions::default()
        };
        optimized
            .into_runnable_with_options(&options)
            .map_err(analysis)
    }
}

/// A bounded map from signature to plan that forgets the least recently used plan first.
/// Linear in its size, which is a handful: a lookup is one short scan under a lock.
struct PlanCache<P> {
    capacity: usize,
    entries: Mutex<Vec<Entry<P>>>,
    clock: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Entry<P> {
    signature: Signature,
    plan: P,
    last_used: u64,
}

impl<P: Clone> PlanCache<P> {
    fn new(capacity: usize) -> PlanCache<P> {
        PlanCache {
            capacity: capacity.max(1),
            entries: Mutex::new(Vec::new()),
            clock: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry<P>>> {
        // A panic while holding the lock cannot leave an entry half-written: every change is
        // one push, one remove or one store of a counter.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn get(&self, signature: &Signature) -> Option<P> {
        let now = self.tick();
        let mut entries = self.entries();
        let found = entries.iter_mut().find(|e| &e.signature == signature);
        match found {
            Some(entry) => {
                entry.last_used = now;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.plan.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps `plan` for `signature` unless another thread got there first, whose plan is then
    /// returned instead.
    fn insert(&self, signature: Signature, plan: P) -> P {
        let now = self.tick();
        let mut entries = self.entries();
        if let Some(existing) = entries.iter_mut().find(|e| e.signature == signature) {
            existing.last_used = now;
            return existing.plan.clone();
        }
        if entries.len() >= self.capacity
            && let Some(oldest) = entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(ix, _)| ix)
        {
            entries.swap_remove(oldest);
        }
        entries.push(Entry {
            signature,
            plan: plan.clone(),
            last_used: now,
        });
        plan
    }

    fn stats(&self) -> PlanCacheStats {
        PlanCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries().len(),
            capacity: self.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(width: usize) -> Signature {
        Signature(vec![(DatumType::F32, tvec![1, 3, 48, width])])
    }

    #[test]
    fn a_hit_returns_the_built_plan_and_counts() {
        let cache = PlanCache::new(4);
        assert_eq!(cache.get(&signature(192)), None);
        assert_eq!(cache.insert(signature(192), 192), 192);
        assert_eq!(cache.get(&signature(192)), Some(192));
        assert_eq!(cache.get(&signature(320)), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 1));
    }

    #[test]
    fn the_least_recently_used_plan_goes_first() {
        let cache = PlanCache::new(2);
        cache.insert(signature(1), 1);
        cache.insert(signature(2), 2);
        assert_eq!(cache.get(&signature(1)), Some(1));
        cache.insert(signature(3), 3);
        assert_eq!(
            cache.get(&signature(2)),
            None,
            "2 was the least recently used"
        );
        assert_eq!(cache.get(&signature(1)), Some(1));
        assert_eq!(cache.get(&signature(3)), Some(3));
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn a_racing_second_plan_for_one_signature_is_not_kept() {
        let cache = PlanCache::new(2);
        assert_eq!(cache.insert(signature(1), 10), 10);
        assert_eq!(cache.insert(signature(1), 11), 10);
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn element_types_are_part_of_the_signature() {
        let cache = PlanCache::new(2);
        cache.insert(signature(1), 1);
        let other = Signature(vec![(DatumType::F16, tvec![1, 3, 48, 1])]);
        assert_eq!(cache.get(&other), None);
    }

    #[test]
    fn a_capacity_of_zero_still_keeps_one_plan() {
        let cache = PlanCache::new(0);
        cache.insert(signature(1), 1);
        assert_eq!(cache.get(&signature(1)), Some(1));
        assert_eq!(cache.stats().capacity, 1);
    }
}
