//! The one HTTP client of the SDK: rustls, timeouts, bounded retries with exponential
//! backoff and full jitter on retryable failures only, `Retry-After` honoured, and an
//! observer that sees every request exactly as it is sent.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};

use super::error::SyncError;

/// A request as the SDK builds it, before it goes on the wire.
#[derive(Clone)]
pub struct OutgoingRequest {
    /// HTTP method.
    pub method: Method,
    /// Full URL.
    pub url: String,
    /// Headers added by the SDK (authorization, proof, content type, range).
    pub headers: Vec<(&'static str, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingRequest")
            .field("method", &self.method)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// Sees every request right before it is sent, retries included (for audits and the
/// canary test). Must not block.
pub trait RequestObserver: Send + Sync {
    /// Called once per attempt.
    fn on_request(&self, request: &OutgoingRequest);
}

/// How requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, at least 1.
    pub max_attempts: u32,
    /// The first backoff ceiling; doubles on every retry.
    pub base_delay: Duration,
    /// Largest backoff, and largest `Retry-After` honoured.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 200 ms base, 30 s ceiling.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter backoff before retry number `retry` (1-based): uniform in
    /// `[0, min(max_delay, base_delay * 2^(retry-1))]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let ceiling = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let mut bytes = [0u8; 4];
        let unit = match SystemRandom::new().fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_be_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 1.0,
        };
        ceiling.mul_f64(unit)
    }
}

/// A response read completely (bodies of the control plane are small, except downloads,
/// which are streamed by the delivery module).
#[derive(Debug)]
pub(crate) struct ReadResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The HTTP client.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    retry: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Whether a status is worth retrying.
fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is treated as absent).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn network_reason(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_body() || err.is_decode() {
        "body"
    } else {
        "request"
    }
}

impl Transport {
    pub fn new(
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
        request_timeout: Duration,
        retry: RetryPolicy,
        observer: Option<Arc<dyn RequestObserver>>,
    ) -> Result<Self, SyncError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("edgekeep/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| SyncError::Config("HTTP client could not be built"))?;
        Ok(Self {
            client,
            retry: RetryPolicy {
                max_attempts: retry.max_attempts.max(1),
                ..retry
            },
            observer,
        })
    }

    /// Sends one attempt of `request` and reads the whole body.
    pub async fn send_once(&self, request: &OutgoingRequest) -> Result<ReadResponse, SyncError> {
        let response = self.start(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| SyncError::Network(network_reason(&e)))?
            .to_vec();
        Ok(ReadResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends one attempt and returns the response with its body unread (downloads).
    pub async fn start(&self, request: &OutgoingRequest) -> Result<reqwest::Response, SyncError> {
        if let Some(observer) = &self.observer {
            observer.on_request(request);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| SyncError::Config("header value is not valid"))?;
            headers.insert(*name, value);
        }
        let mut builder = self
            .client
            .request(request.method.clone(), &request.url)
            .headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder
            .send()
            .await
            .map_err(|e| SyncError::Network(network_reason(&e)))
    }

    /// Sends a request built fresh for every attempt by `make` (each attempt needs a new
    /// proof), retrying network failures, 429 and 5xx with backoff; other answers return
    /// at once.
    pub async fn send_with_retry(
        &self,
        make: &mut (dyn FnMut() -> Result<OutgoingRequest, SyncError> + Send),
    ) -> Result<ReadResponse, SyncError> {
        let mut attempt = 1;
        loop {
            let request = make()?;
            let outcome = self.send_once(&request).await;
            let wait = match &outcome {
                Ok(response) if retryable_status(response.status) => retry_after(&response.headers)
                    .map(|d| d.min(self.retry.max_delay))
                    .unwrap_or_else(|| self.retry.backoff(attempt)),
                Err(SyncError::Network(_)) => self.retry.backoff(attempt),
                _ => return outcome,
            };
            if attempt >= self.retry.max_attempts {
                return outcome;
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        for retry in 1..20 {
            let d = policy.backoff(retry);
            assert!(d <= policy.max_delay);
            let ceiling =
                Duration::from_millis(100 * (1u64 << (retry - 1).min(10))).min(policy.max_delay);
            assert!(d <= ceiling, "{retry}: {d:?}");
        }
    }

    #[test]
    fn retry_after_seconds_parse() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
        assert!(retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!retryable_status(StatusCode::UNAUTHORIZED));
    }
}
