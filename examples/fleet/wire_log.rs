//! What left one device: every request the SDK built, seen before TLS through the SDK's
//! request observer. The demo proves from it that only declared metrics were sent and that
//! a canary planted in the device's data never appeared.

use std::collections::BTreeSet;
use std::sync::Mutex;

use edgekeep::sync::{OutgoingRequest, RequestObserver};

/// Totals of one device's outgoing requests.
#[derive(Debug, Default, Clone)]
pub struct WireTotals {
    /// Requests sent.
    pub requests: u64,
    /// Bytes of URL, headers and body.
    pub bytes: u64,
    /// Bytes of telemetry bodies.
    pub telemetry_bytes: u64,
    /// Endpoints called (path without ids).
    pub endpoints: BTreeSet<String>,
    /// Kinds of telemetry event sent.
    pub event_kinds: BTreeSet<String>,
    /// Requests that carried the canary (must stay 0).
    pub canary_hits: u64,
}

/// A request observer that keeps [`WireTotals`].
pub struct WireLog {
    canary: Vec<u8>,
    totals: Mutex<WireTotals>,
}

impl WireLog {
    /// A log that looks for `canary` in every request.
    pub fn new(canary: &str) -> Self {
        Self {
            canary: canary.as_bytes().to_vec(),
            totals: Mutex::new(WireTotals::default()),
        }
    }

    /// The totals so far.
    pub fn totals(&self) -> WireTotals {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn contains_canary(&self, bytes: &[u8]) -> bool {
        bytes.windows(self.canary.len()).any(|w| w == self.canary)
    }
}

/// `/v1/device/artifacts/<id>/key` → `/v1/device/artifacts/{id}/key`.
fn endpoint(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| {
        rest.find('/').map_or("/", |at| &rest[at..])
    });
    let path = path.split('?').next().unwrap_or(path);
    path.split('/')
        .map(|part| if part.len() >= 32 { "{id}" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

impl RequestObserver for WireLog {
    fn on_request(&self, request: &OutgoingRequest) {
        let body = request.body.as_deref().unwrap_or_default();
        let header_bytes: usize = request
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + 4)
            .sum();
        let leaked = self.contains_canary(request.url.as_bytes())
            || self.contains_canary(body)
            || request
                .headers
                .iter()
                .any(|(_, value)| self.contains_canary(value.as_bytes()));
        let path = endpoint(&request.url);
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        totals.requests += 1;
        totals.bytes += (request.url.len() + header_bytes + body.len()) as u64;
        totals.canary_hits += u64::from(leaked);
        if path.ends_with("/device/telemetry") {
            totals.telemetry_bytes += body.len() as u64;
            if let Ok(batch) = serde_json::from_slice::<serde_json::Value>(body) {
                for event in batch["events"].as_array().into_iter().flatten() {
                    if let Some(kind) = event["type"].as_str() {
                        totals.event_kinds.insert(kind.to_owned());
                    }
                }
            }
        }
        totals.endpoints.insert(path);
    }
}

/// Adds up the totals of many devices.
pub fn merge(all: impl IntoIterator<Item = WireTotals>) -> WireTotals {
    all.into_iter().fold(WireTotals::default(), |mut sum, t| {
        sum.requests += t.requests;
        sum.bytes += t.bytes;
        sum.telemetry_bytes += t.telemetry_bytes;
        sum.endpoints.extend(t.endpoints);
        sum.event_kinds.extend(t.event_kinds);
        sum.canary_hits += t.canary_hits;
        sum
    })
}
