//! The bindings' own small tokio runtime for long, blocking work (model loads, inference,
//! training) exported as async, and the handle that cancels a task when its future is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::error::{EdgeKeepError, Result};
use crate::guard::guard;

fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(2)
                .thread_name("edgekeep-ffi")
                .build()
                .ok()
        })
        .as_ref()
        .ok_or(EdgeKeepError::Internal {
            reason: "the runtime could not start".to_owned(),
        })
}

/// Runs blocking `work` on the runtime's blocking pool and waits for it without blocking the
/// caller's thread. Dropping the returned future detaches the work; its result is discarded.
pub(crate) async fn run_blocking<T: Send + 'static>(
    call: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let handle = runtime()?.spawn_blocking(move || guard(call, work));
    AbortOnDrop(handle).await
}

/// A task handle that aborts the task when dropped, so a cancelled foreign future stops
/// the work it started.
struct AbortOnDrop<T>(JoinHandle<Result<T>>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|_| {
                Err(EdgeKeepError::Internal {
                    reason: "a background task failed".to_owned(),
                })
            })
        })
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
