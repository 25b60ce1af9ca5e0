//! Model delivery: fetch the signed desired state, verify it and every manifest, download
//! the ciphertext resumably into the store, verify hashes, unwrap the content key, decrypt
//! in memory, and hand the model to two-phase activation.
//!
//! Each rejection is a typed [`SecurityEvent`], counted in telemetry, and leaves the
//! installed model serving.

use std::time::Duration;

use edgekeep_protocol::artifact::{
    ArtifactError, SignedManifest, open_artifact, sha256_hex, unwrap_content_key,
};
use edgekeep_protocol::desired_state::{
    DesiredStateError, DesiredStateKeyInfo, ModelAssignment, SignedDesiredState, WrappedContentKey,
};
use edgekeep_protocol::key_agreement::WrappingKey;
use edgekeep_protocol::signing::VerifyingKey;
use edgekeep_protocol::{ErrorBody, ErrorCode};
use reqwest::{Method, StatusCode};

use crate::telemetry::{ErrorKind, ModelVersion, RolloutStage, SecurityEvent, metrics};

use super::Inner;
use super::activation::{ARTIFACTS, Installed, SlotChange};
use super::auth::{parse_json, server_error};
use super::error::SyncError;

/// How many times one download resumes after a cut connection within one update.
const DOWNLOAD_ATTEMPTS: u32 = 8;
/// Bytes gathered before one store append (what a cut connection can cost twice).
const WRITE_BUFFER: usize = 64 << 10;

/// What one model update did, per slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Slots whose version changed (activated, staged or rolled back).
    pub changes: Vec<(String, SlotChange)>,
    /// Slots left as they were, with the reason.
    pub rejected: Vec<(String, Rejection)>,
    /// Ciphertext bytes received in this update.
    pub bytes_downloaded: u64,
}

/// A log-safe, comparable summary of why a slot was not updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A security event.
    Security(SecurityEvent),
    /// The download policy said no (reason).
    Deferred(&'static str),
    /// The model failed to load or its health check.
    Unhealthy,
    /// A transient failure; the next update resumes.
    Transient,
}

impl Inner {
    fn security(&self, event: SecurityEvent, version: Option<&ModelVersion>) -> SyncError {
        tracing::warn!(?event, "model delivery refused");
        self.telemetry
            .add_labeled(metrics::SECURITY_EVENTS, event, None, 1);
        if let Some(version) = version {
            self.telemetry.add_labeled(
                metrics::ROLLOUT_PROGRESS,
                RolloutStage::Failed,
                Some(version.clone()),
                1,
            );
        }
        SyncError::Security(event)
    }

    fn progress(&self, version: &ModelVersion, stage: RolloutStage) {
        let (slot, number) = (version.slot(), version.version());
        match stage {
            RolloutStage::Active | RolloutStage::RolledBack | RolloutStage::Failed => {
                tracing::info!(slot, version = number, ?stage, "model version")
            }
            _ => tracing::debug!(slot, version = number, ?stage, "model version"),
        }
        self.telemetry
            .add_labeled(metrics::ROLLOUT_PROGRESS, stage, Some(version.clone()), 1);
    }

    /// The server's desired-state key: pinned in the config, or learned once and kept in
    /// the store (trust on first use).
    async fn desired_state_key(&self) -> Result<VerifyingKey, SyncError> {
        if let Some(key) = &self.delivery.desired_state_key {
            return Ok(*key);
        }
        const PINNED: crate::store::Namespace = crate::store::Namespace::new("sync.pins");
        if let Some(text) = self.store.kv().get(PINNED, b"desired_state_key")? {
            let text = std::str::from_utf8(text.as_bytes())
                .map_err(|_| SyncError::Config("stored key is unreadable"))?;
            return VerifyingKey::from_text(text)
                .map_err(|_| SyncError::Config("stored key is unreadable"));
        }
        let url = self.auth.url("/v1/desired-state-key");
        let mut make = || {
            Ok(super::http::OutgoingRequest {
                method: Method::GET,
                url: url.clone(),
                headers: Vec::new(),
                body: None,
            })
        };
        let response = self.auth.transport().send_with_retry(&mut make).await?;
        if !response.status.is_success() {
            return Err(server_error(&response));
        }
        let info: DesiredStateKeyInfo = parse_json(&response)?;
        let key = VerifyingKey::from_text(&info.public_key)
            .map_err(|_| SyncError::Protocol { status: 200 })?;
        self.store
            .kv()
            .put(PINNED, b"desired_state_key", key.to_text().as_bytes())?;
        Ok(key)
    }

    /// Fetches, verifies and applies the desired state.
    pub(crate) async fn update_models(&self) -> Result<DeliveryReport, SyncError> {
        let server_key = self.desired_state_key().await?;
        let device_id = match self.auth.state().await {
            super::SyncState::Enrolled { device_id } => device_id,
            super::SyncState::Unenrolled => return Err(SyncError::NotEnrolled),
            super::SyncState::Revoked => return Err(SyncError::Revoked),
        };
        let response = self
            .auth
            .call(Method::GET, "/v1/device/desired-state", None, &[])
            .await?;
        if !response.status.is_success() {
            return Err(server_error(&response));
        }
        let signed: SignedDesiredState = parse_json(&response)?;
        let state = signed
            .verify(&server_key, &device_id, self.auth.server_now())
            .map_err(|err| match err {
                DesiredStateError::Stale => self.security(SecurityEvent::Freeze, None),
                DesiredStateError::BadSignature
                | DesiredStateError::WrongDevice
                | DesiredStateError::Malformed => {
                    self.security(SecurityEvent::BadStateSignature, None)
                }
            })?;
        let mut report = DeliveryReport::default();
        for assignment in &state.slots {
            let slot = assignment.model.clone();
            match self.apply(assignment, &mut report).await {
                Ok(Some(change)) => report.changes.push((slot, change)),
                Ok(None) => {}
                Err(SyncError::Security(event)) => {
                    report.rejected.push((slot, Rejection::Security(event)))
                }
                Err(SyncError::Policy(reason)) => {
                    report.rejected.push((slot, Rejection::Deferred(reason)))
                }
                Err(SyncError::ModelRejected(_)) => {
                    report.rejected.push((slot, Rejection::Unhealthy))
                }
                Err(SyncError::Revoked) => return Err(SyncError::Revoked),
                Err(err) if err.is_transient() => {
                    self.telemetry.add_labeled(
                        metrics::ERRORS,
                        ErrorKind::DownloadInterrupted,
                        None,
                        1,
                    );
                    report.rejected.push((slot, Rejection::Transient))
                }
                Err(err) => return Err(err),
            }
        }
        Ok(report)
    }

    async fn apply(
        &self,
        assignment: &ModelAssignment,
        report: &mut DeliveryReport,
    ) -> Result<Option<SlotChange>, SyncError> {
        let signed: &SignedManifest = &assignment.manifest;
        let manifest = &signed.manifest;
        let slot = assignment.model.as_str();
        let claimed = ModelVersion::new(slot, assignment.version);
        if manifest.model != slot
            || manifest.version != assignment.version
            || manifest.artifact_id() != assignment.artifact_id
            || (!self.delivery.slots.is_empty() && !self.delivery.slots.iter().any(|s| s == slot))
        {
            return Err(self.security(SecurityEvent::MixAndMatch, claimed.as_ref()));
        }
        let Some(version) = claimed else {
            return Err(self.security(SecurityEvent::MixAndMatch, None));
        };
        signed
            .verify(&self.delivery.publisher_keys, self.auth.server_now())
            .map_err(|err| match err {
                ArtifactError::Expired => self.security(SecurityEvent::Freeze, Some(&version)),
                _ => self.security(SecurityEvent::WrongPublisherKey, Some(&version)),
            })?;
        let installed = self.slots.installed_version(slot)?;
        if manifest.version < installed {
            return Err(self.security(SecurityEvent::Rollback, Some(&version)));
        }
        if manifest.version == installed || self.slots.failed_before(slot, manifest.version)? {
            return Ok(None);
        }
        self.progress(&version, RolloutStage::Assigned);
        let state = self.device_state.device_state();
        if let Some(reason) = self
            .download_policy
            .refusal(&state, manifest.ciphertext_len)
        {
            return Err(SyncError::Policy(reason));
        }
        report.bytes_downloaded += self
            .download(&assignment.artifact_id, manifest.ciphertext_len, &version)
            .await?;
        self.progress(&version, RolloutStage::Downloaded);

        let id = manifest.artifact_id().as_bytes();
        let ciphertext = self
            .store
            .artifacts()
            .read(ARTIFACTS, id)?
            .ok_or(SyncError::Integrity("downloaded artifact is missing"))?;
        if sha256_hex(&ciphertext) != manifest.ciphertext_sha256 {
            self.store.artifacts().delete(ARTIFACTS, id)?;
            return Err(self.security(SecurityEvent::TamperedCiphertext, Some(&version)));
        }
        let key = self.content_key(&assignment.artifact_id, &version).await?;
        let plain = match open_artifact(manifest, &key, &ciphertext) {
            Ok(plain) => plain,
            Err(_) => {
                self.store.artifacts().delete(ARTIFACTS, id)?;
                return Err(self.security(SecurityEvent::TamperedPlaintext, Some(&version)));
            }
        };
        self.progress(&version, RolloutStage::Verified);
        let model = match super::runtime::load(&plain) {
            Ok(model) => model,
            Err(_) => {
                self.telemetry
                    .add_labeled(metrics::ERRORS, ErrorKind::ModelLoad, None, 1);
                self.progress(&version, RolloutStage::Failed);
                self.store.artifacts().delete(ARTIFACTS, id)?;
                return Err(SyncError::ModelRejected("model does not load"));
            }
        };
        drop(plain);
        let installed = Installed {
            manifest: manifest.clone(),
            content_key: *key.as_bytes(),
        };
        let change = self
            .slots
            .stage(slot, installed, model, self.delivery.activation)?;
        match &change {
            SlotChange::Activated(_) => self.progress(&version, RolloutStage::Active),
            SlotChange::RolledBack { serving, .. } => {
                self.telemetry
                    .add_labeled(metrics::ERRORS, ErrorKind::HealthCheck, None, 1);
                let stage = if serving.is_some() {
                    RolloutStage::RolledBack
                } else {
                    RolloutStage::Failed
                };
                self.progress(&version, stage);
            }
            SlotChange::Staged(_) => {}
        }
        Ok(Some(change))
    }

    async fn content_key(
        &self,
        artifact_id: &str,
        version: &ModelVersion,
    ) -> Result<edgekeep_protocol::artifact::ContentKey, SyncError> {
        let path = format!("/v1/device/artifacts/{artifact_id}/key");
        let response = self.auth.call(Method::GET, &path, None, &[]).await?;
        if !response.status.is_success() {
            return Err(server_error(&response));
        }
        let wrapped: WrappedContentKey = parse_json(&response)?;
        let kwk = WrappingKey::from_bytes(*self.auth.wrapping_key().await?);
        let device_id = match self.auth.state().await {
            super::SyncState::Enrolled { device_id } => device_id,
            _ => return Err(SyncError::NotEnrolled),
        };
        unwrap_content_key(&kwk, artifact_id, &device_id, &wrapped.wrapped_key)
            .map_err(|_| self.security(SecurityEvent::KeyUnwrap, Some(version)))
    }

    /// Downloads the ciphertext into store chunks, resuming with `Range` after a cut.
    /// Returns the bytes received. Refuses (and discards) anything beyond `expected_len`.
    async fn download(
        &self,
        artifact_id: &str,
        expected_len: u64,
        version: &ModelVersion,
    ) -> Result<u64, SyncError> {
        let artifacts = self.store.artifacts();
        let name = artifact_id.as_bytes();
        let url = self
            .auth
            .url(&format!("/v1/device/artifacts/{artifact_id}"));
        let mut received = 0u64;
        let mut last_error = SyncError::Network("download did not complete");
        for attempt in 0..DOWNLOAD_ATTEMPTS {
            let progress = match artifacts.begin(ARTIFACTS, name, expected_len) {
                Ok(progress) => progress,
                Err(crate::store::StoreError::ArtifactState(_)) => {
                    artifacts.delete(ARTIFACTS, name)?;
                    artifacts.begin(ARTIFACTS, name, expected_len)?
                }
                Err(err) => return Err(err.into()),
            };
            if progress.complete {
                return Ok(received);
            }
            if progress.stored_len < expected_len {
                match self
                    .download_from(
                        &url,
                        name,
                        progress.stored_len,
                        expected_len,
                        version,
                        &mut received,
                    )
                    .await
                {
                    Ok(()) => {}
                    Err(err @ SyncError::Security(_)) => return Err(err),
                    Err(SyncError::Revoked) => return Err(SyncError::Revoked),
                    Err(err) if err.is_transient() => {
                        last_error = err;
                        let backoff = self.auth.transport().retry_policy().backoff(attempt + 1);
                        tokio::time::sleep(backoff.min(Duration::from_secs(2))).await;
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            }
            artifacts.finish(ARTIFACTS, name)?;
            return Ok(received);
        }
        Err(last_error)
    }

    async fn download_from(
        &self,
        url: &str,
        name: &[u8],
        offset: u64,
        expected_len: u64,
        version: &ModelVersion,
        received: &mut u64,
    ) -> Result<(), SyncError> {
        let range = [("range", format!("bytes={offset}-"))];
        let (request, token) = self
            .auth
            .signed_download(url, if offset > 0 { &range } else { &[] })
            .await?;
        let mut response = self.auth.transport().start(&request).await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            let code = response
                .json::<ErrorBody>()
                .await
                .ok()
                .map(|b: ErrorBody| b.code);
            self.auth.on_unauthorized(code, &token).await?;
            return Err(SyncError::Network("credentials refreshed"));
        }
        let mut at = match (status, offset) {
            (StatusCode::PARTIAL_CONTENT, _) => offset,
            (StatusCode::OK, 0) => 0,
            (StatusCode::OK, _) => {
                // The server ignored the range: start over.
                self.store.artifacts().delete(ARTIFACTS, name)?;
                self.store
                    .artifacts()
                    .begin(ARTIFACTS, name, expected_len)?;
                0
            }
            (status, _) => {
                return Err(SyncError::Server {
                    status: status.as_u16(),
                    code: if status.as_u16() >= 500 {
                        ErrorCode::Internal
                    } else {
                        ErrorCode::BadRequest
                    },
                });
            }
        };
        let mut buffer: Vec<u8> = Vec::with_capacity(WRITE_BUFFER);
        let outcome = loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break Ok(()),
                Err(_) => break Err(SyncError::Network("download cut")),
            };
            *received += chunk.len() as u64;
            if at + (buffer.len() + chunk.len()) as u64 > expected_len {
                self.store.artifacts().delete(ARTIFACTS, name)?;
                return Err(self.security(SecurityEvent::EndlessData, Some(version)));
            }
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= WRITE_BUFFER {
                self.store
                    .artifacts()
                    .append(ARTIFACTS, name, at, &buffer)?;
                at += buffer.len() as u64;
                buffer.clear();
            }
        };
        if !buffer.is_empty() {
            self.store
                .artifacts()
                .append(ARTIFACTS, name, at, &buffer)?;
            at += buffer.len() as u64;
        }
        outcome?;
        if at < expected_len {
            return Err(SyncError::Network("download cut"));
        }
        Ok(())
    }
}
