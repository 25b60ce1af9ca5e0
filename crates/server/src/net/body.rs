//! Body wrappers: a request body that must arrive before a deadline, and a response body that
//! keeps its request counted as in flight until it has been sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::tracker::RequestGuard;

/// The error a request body yields once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyDeadlineExceeded;

impl BodyDeadlineExceeded {
    /// Whether `err` or one of its sources is a passed body deadline.
    pub fn caused(err: &(dyn std::error::Error + 'static)) -> bool {
        let mut current = Some(err);
        while let Some(err) = current {
            if err.is::<Self>() {
                return true;
            }
            current = err.source();
        }
        false
    }
}

/// A request body that fails with [`BodyDeadlineExceeded`] if it is not complete by a deadline
/// (a slow sender cannot hold a request open by trickling bytes).
pub struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    /// Wraps `inner`, to be complete by `deadline`.
    pub fn new(inner: Body, deadline: Instant) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyDeadlineExceeded)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body holding its request's [`RequestGuard`] until it is sent or dropped.
pub struct InFlightBody {
    inner: Body,
    _guard: RequestGuard,
}

impl InFlightBody {
    /// Wraps `inner`, releasing `guard` with it.
    pub fn new(inner: Body, guard: RequestGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl http_body::Body for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NeverEnds;

    impl http_body::Body for NeverEnds {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_completes_fails_at_its_deadline() {
        let body = DeadlineBody::new(
            Body::new(NeverEnds),
            Instant::now() + std::time::Duration::from_secs(5),
        );
        let err = axum::body::to_bytes(Body::new(body), 1024)
            .await
            .unwrap_err();
        assert!(BodyDeadlineExceeded::caused(&err));
    }

    #[tokio::test]
    async fn a_complete_body_passes_through() {
        let body = DeadlineBody::new(
            Body::from("hello"),
            Instant::now() + std::time::Duration::from_secs(5),
        );
        let bytes = axum::body::to_bytes(Body::new(body), 1024).await.unwrap();
        assert_eq!(&bytes[..], b"hello");
    }
}
