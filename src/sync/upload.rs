//! Telemetry upload: queue the current window, send queued batches oldest first, delete
//! what the server acknowledged. Opt-out clears the queue and stops recording.

use std::sync::Arc;

use edgekeep_protocol::telemetry::{TelemetryAck, VersionReport};
use reqwest::Method;

use crate::store::{Namespace, Store};
use crate::telemetry::{HealthSnapshot, Telemetry, TelemetryBatch, UploadQueue};

use super::Inner;
use super::auth::{parse_json, server_error};
use super::error::SyncError;

const SETTINGS: Namespace = Namespace::new("telemetry.settings");
const OPTED_OUT: &[u8] = b"opted_out";
/// Batches sent per sync at most.
const MAX_BATCHES_PER_SYNC: usize = 32;

/// What one sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadReport {
    /// Batches sent.
    pub sent: u64,
    /// Highest sequence the server acknowledged, if it answered.
    pub acked_through: Option<u64>,
    /// Batches still queued.
    pub queued: u64,
    /// Why nothing was sent, if the policy said no.
    pub deferred: Option<&'static str>,
}

pub(crate) fn telemetry_enabled(store: &Store) -> Result<bool, SyncError> {
    Ok(!store.kv().contains(SETTINGS, OPTED_OUT)?)
}

pub(crate) fn set_telemetry_enabled(
    store: &Arc<Store>,
    queue: &UploadQueue,
    telemetry: &Telemetry,
    enabled: bool,
) -> Result<(), SyncError> {
    telemetry.set_enabled(enabled);
    if enabled {
        store.kv().delete(SETTINGS, OPTED_OUT)?;
    } else {
        store.kv().put(SETTINGS, OPTED_OUT, &[1])?;
        queue.clear()?;
    }
    Ok(())
}

/// The body sent for a queued batch.
fn wire_body(
    batch: &TelemetryBatch,
    abandoned_through: Option<u64>,
    versions: &VersionReport,
) -> Result<Vec<u8>, SyncError> {
    serde_json::to_vec(&super::wire::to_wire(
        batch,
        abandoned_through,
        Some(versions),
    ))
    .map_err(|_| SyncError::Config("telemetry encoding failed"))
}

impl Inner {
    pub(crate) async fn sync(&self) -> Result<UploadReport, SyncError> {
        if matches!(self.auth.state().await, super::SyncState::Revoked) {
            return Err(SyncError::Revoked);
        }
        let state = self.device_state.device_state();
        if self.telemetry.is_enabled() {
            self.queue
                .enqueue(&self.telemetry, Some(HealthSnapshot::from(state)))?;
        }
        let queued = self.queue.len()?;
        if let Some(reason) = self.upload_policy.refusal(&state, queued) {
            return Ok(UploadReport {
                queued,
                deferred: Some(reason),
                ..UploadReport::default()
            });
        }
        let mut report = UploadReport::default();
        let pending = self.queue.pending(MAX_BATCHES_PER_SYNC)?;
        // Everything below the oldest queued batch was acknowledged or dropped by the bound.
        let abandoned = pending.first().map(|q| q.batch.seq.saturating_sub(1));
        let versions = super::wire::version_report(&self.slots.active_versions()?);
        for queued in pending {
            let body = wire_body(&queued.batch, abandoned, &versions)?;
            let response = self
                .auth
                .call(Method::POST, "/v1/device/telemetry", Some(body), &[])
                .await?;
            if !response.status.is_success() {
                return Err(server_error(&response));
            }
            let ack: TelemetryAck = parse_json(&response)?;
            report.sent += 1;
            report.acked_through = Some(ack.acked_through);
            self.queue.acknowledge(ack.acked_through)?;
        }
        report.queued = self.queue.len()?;
        Ok(report)
    }
}
