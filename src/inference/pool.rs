//! Threads a model may use for its matrix products.

use std::fmt;

use tract_linalg::multithread::Executor;

/// A pool of worker threads shared by the models loaded with it.
///
/// Multithreading pays off on models of roughly 0.3 GMAC and more; small models run as fast or
/// faster on the caller's thread, which is the default when no pool is given. Cloning is cheap
/// (the pool is reference counted).
#[derive(Clone)]
pub struct ComputePool {
    executor: Executor,
    threads: usize,
}

impl ComputePool {
    /// A pool of `threads` workers (at least one).
    pub fn new(threads: usize) -> ComputePool {
        let threads = threads.max(1);
        let executor = if threads == 1 {
            Executor::SingleThread
        } else {
            Executor::multithread_with_name(threads, "edgekeep-compute")
        };
        ComputePool { executor, threads }
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub(crate) fn executor(&self) -> Executor {
        self.executor.clone()
    }
}

impl fmt::Debug for ComputePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComputePool")
            .field("threads", &self.threads)
            .finish()
    }
}
