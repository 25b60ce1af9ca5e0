//! Keeps panics on the Rust side of the boundary: every exported call runs inside
//! [`guard`] (or [`guard_async`]), and a panic comes back as [`EdgeKeepError::Internal`].

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{EdgeKeepError, Result};

/// Runs `f`, turning a panic into [`EdgeKeepError::Internal`] naming `call`.
///
/// The panic payload is dropped, not reported: its text may quote data.
pub(crate) fn guard<T>(call: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked(call)))
}

/// Async twin of [`guard`]: polls `future`, turning a panic in any poll into
/// [`EdgeKeepError::Internal`].
pub(crate) async fn guard_async<T>(
    call: &'static str,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    CatchUnwind {
        call,
        future: Box::pin(future),
    }
    .await
}

pub(crate) fn panicked(call: &'static str) -> EdgeKeepError {
    tracing::error!(target: "edgekeep", call, "panic caught at the FFI boundary");
    EdgeKeepError::Internal {
        reason: format!("panic in {call}"),
    }
}

struct CatchUnwind<F> {
    call: &'static str,
    future: Pin<Box<F>>,
}

impl<T, F: Future<Output = Result<T>>> Future for CatchUnwind<F> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let call = self.call;
        let future = self.future.as_mut();
        catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
            .unwrap_or_else(|_| Poll::Ready(Err(panicked(call))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let result: Result<()> = guard("test", || panic!("boom"));
        assert!(matches!(result, Err(EdgeKeepError::Internal { .. })));
    }
}
