//! Model delivery to devices: the signed desired state, the artifact ciphertext (resumable
//! with `Range`, `ETag`), and the content key wrapped for the calling device only.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::artifact::{ContentKey, SignedManifest, wrap_content_key};
use edgekeep_protocol::desired_state::{
    DesiredState, DesiredStateKeyInfo, ModelAssignment, SignedDesiredState, WrappedContentKey,
};
use edgekeep_protocol::key_agreement::WrappingKey;

use super::{ApiPath, AppState};
use crate::auth::{DeviceCaller, KnownCredential, RequestContext, fail};
use crate::desired::{ResolvedSlot, resolve_eligible};
use crate::error::ApiError;
use crate::secret::{content_key_context, kwk_context};
use crate::storage::{DeviceRecord, ModelVersionRecord};

/// The slots of a device with their stored versions. A version whose manifest needs a newer
/// SDK than the device last reported is passed over (the device keeps what it can run). A
/// slot whose resolved version is below the one the device reports serving is left out:
/// devices never go down a version (that is their defence against a compromised server), so
/// after a rollback the device keeps what it runs instead of being told to go back and
/// refusing it as an attack.
async fn assignments(
    state: &AppState,
    device: &DeviceRecord,
) -> Result<Vec<(ResolvedSlot, ModelVersionRecord)>, ApiError> {
    let org_id = device.org_id.clone();
    let device_id = device.id.clone();
    let group = device.device_group.clone();
    state
        .blocking(move |s| {
            let rollouts = s.rollouts(&org_id)?;
            let sdk = s.device_sdk_version(&org_id, &device_id)?;
            let serving = s.device_active_models(&org_id, &device_id)?;
            let mut versions: HashMap<(String, u64), ModelVersionRecord> = HashMap::new();
            for rollout in &rollouts {
                let key = (rollout.model.clone(), rollout.version);
                if !versions.contains_key(&key)
                    && let Some(record) =
                        s.model_version(&org_id, &rollout.model, rollout.version)?
                {
                    versions.insert(key, record);
                }
            }
            let runs = |model: &str, version: u64| {
                let Some(record) = versions.get(&(model.to_owned(), version)) else {
                    return false;
                };
                let Some(sdk) = sdk else { return true };
                serde_json::from_str::<SignedManifest>(&record.manifest_json)
                    .is_ok_and(|m| m.manifest.min_sdk_version <= sdk)
            };
            let slots = resolve_eligible(&rollouts, &device_id, group.as_deref(), runs);
            Ok(slots
                .into_iter()
                .filter(|slot| {
                    !serving
                        .iter()
                        .any(|m| m.model.as_str() == slot.model && m.version > slot.version)
                })
                .filter_map(|slot| {
                    let record = versions.remove(&(slot.model.clone(), slot.version))?;
                    Some((slot, record))
                })
                .collect())
        })
        .await
}

async fn note_seen(state: &AppState, device: &DeviceRecord) {
    let now = crate::now();
    if !state.should_touch_device(&device.id, now) {
        return;
    }
    let org_id = device.org_id.clone();
    let device_id = device.id.clone();
    if let Err(err) = state
        .blocking(move |s| s.touch_device(&org_id, &device_id, now))
        .await
    {
        tracing::warn!(code = %err.code, "could not record device last-seen time");
    }
}

/// The calling device's desired state, signed by the server's desired-state key and valid
/// for a few minutes. Fetching it records the device as `assigned` in the rollouts it names.
#[utoipa::path(get, path = "/v1/device/desired-state", tag = "device", security(("device_proof" = [])),
    responses((status = 200, body = SignedDesiredState), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn desired_state(
    State(state): State<AppState>,
    caller: DeviceCaller,
) -> Result<Response, ApiError> {
    let device = caller.device;
    let slots = assignments(&state, &device).await?;
    let now = crate::now();
    let mut assigned = Vec::with_capacity(slots.len());
    for (slot, version) in &slots {
        let manifest: SignedManifest =
            serde_json::from_str(&version.manifest_json).map_err(|_| ApiError::internal())?;
        assigned.push(ModelAssignment {
            model: slot.model.clone(),
            version: slot.version,
            artifact_id: version.artifact_id.clone(),
            rollout_id: slot.rollout_id.clone(),
            manifest,
        });
    }
    let document = DesiredState {
        device_id: device.id.clone(),
        org_id: device.org_id.clone(),
        issued_at: now,
        expires_at: now + state.config().desired_state_ttl_secs,
        slots: assigned,
    };
    let signed = SignedDesiredState::sign(&document, state.desired_state_key());
    let rollouts: Vec<String> = slots
        .into_iter()
        .filter_map(|(s, _)| s.rollout_id)
        .collect();
    if !rollouts.is_empty() {
        let org_id = device.org_id.clone();
        let device_id = device.id.clone();
        state
            .blocking(move |s| {
                for rollout in rollouts {
                    if !s.has_progress(&org_id, &rollout, &device_id)? {
                        s.record_assignment(&org_id, &rollout, &device_id, now)?;
                    }
                }
                Ok(())
            })
            .await?;
    }
    note_seen(&state, &device).await;
    let mut response = Json(signed).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The server's desired-state public key, for devices to pin at enrollment.
#[utoipa::path(get, path = "/v1/desired-state-key", tag = "device", responses((status = 200, body = DesiredStateKeyInfo)))]
pub async fn desired_state_key(State(state): State<AppState>) -> Json<DesiredStateKeyInfo> {
    let public = state.desired_state_key().public_key();
    Json(DesiredStateKeyInfo {
        key_id: public.key_id(),
        public_key: public.to_text(),
    })
}

/// What a `Range` header asks of a resource of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable single range: send everything (RFC 9110 lets a server ignore the header).
    Full,
    /// Inclusive byte range `start..=end`.
    Bytes(u64, u64),
    /// The range lies outside the resource.
    Unsatisfiable,
}

/// Parses a single `bytes=` range (`a-b`, `a-`, `-n`) against a resource of `len` bytes.
pub fn parse_range(value: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let parse = |t: &str| t.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), parse(first), parse(last)) {
        (true, _, Some(suffix)) if suffix > 0 && len > 0 => {
            RangeRequest::Bytes(len.saturating_sub(suffix), len - 1)
        }
        (true, _, _) => RangeRequest::Unsatisfiable,
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            let end = end.unwrap_or(u64::MAX).min(len.saturating_sub(1));
            if start >= len || end < start {
                if end < start && start < len {
                    RangeRequest::Full
                } else {
                    RangeRequest::Unsatisfiable
                }
            } else {
                RangeRequest::Bytes(start, end)
            }
        }
        _ => RangeRequest::Full,
    }
}

/// The artifact's ciphertext. Any device of the org may download it (it is useless without
/// a content key); `Range` makes downloads resumable, `ETag` is the artifact id, and a
/// stale `If-Range` gets the whole artifact.
#[utoipa::path(get, path = "/v1/device/artifacts/{artifact_id}", tag = "device", security(("device_proof" = [])),
    params(("artifact_id" = String, Path, description = "Artifact id (ciphertext SHA-256, hex)")),
    responses((status = 200, description = "The whole ciphertext", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 404, body = edgekeep_protocol::ErrorBody), (status = 416, body = edgekeep_protocol::ErrorBody)))]
pub async fn download_artifact(
    State(state): State<AppState>,
    caller: DeviceCaller,
    ApiPath(artifact_id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let device = caller.device;
    let org_id = device.org_id.clone();
    let lookup = artifact_id.clone();
    let version = state
        .blocking(move |s| s.model_version_by_artifact(&org_id, &lookup))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let manifest: SignedManifest =
        serde_json::from_str(&version.manifest_json).map_err(|_| ApiError::internal())?;
    let len = manifest.manifest.ciphertext_len;
    let etag = format!("\"{artifact_id}\"");
    let if_range_matches = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let request = if if_range_matches {
        parse_range(range, len)
    } else {
        RangeRequest::Full
    };
    let (status, start, end) = match request {
        RangeRequest::Full => (StatusCode::OK, 0, len.saturating_sub(1)),
        RangeRequest::Bytes(start, end) => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::from(ErrorCode::RangeNotSatisfiable).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let body = state
        .artifacts()
        .read_range(&version.org_id, &artifact_id, start, count)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "could not read an artifact");
            ApiError::internal()
        })?;
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

/// Whether `id` has the form of an artifact id: the ciphertext's SHA-256 as 64 lowercase hex
/// digits.
pub fn is_artifact_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The artifact's content key, wrapped with the calling device's key-wrapping key (agreed at
/// enrollment) and bound to the artifact and device ids. Only a device whose current desired
/// state names the artifact gets it; a refusal is audited and counted against the org's
/// failure budget (once spent: `rate_limited`, not audited, so nobody can flood the trail).
#[utoipa::path(get, path = "/v1/device/artifacts/{artifact_id}/key", tag = "device", security(("device_proof" = [])),
    params(("artifact_id" = String, Path, description = "Artifact id")),
    responses((status = 200, body = WrappedContentKey), (status = 403, body = edgekeep_protocol::ErrorBody)))]
pub async fn artifact_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    caller: DeviceCaller,
    ApiPath(artifact_id): ApiPath<String>,
) -> Result<Json<WrappedContentKey>, ApiError> {
    let device = caller.device;
    let slots = assignments(&state, &device).await?;
    let Some((_, version)) = slots.iter().find(|(_, v)| v.artifact_id == artifact_id) else {
        let subject = format!("device:{}", device.id);
        let known = KnownCredential {
            subject: &subject,
            org_id: &device.org_id,
        };
        let error = fail(&state, &ctx.addr, Some(known), ErrorCode::NotAssigned);
        if error.code == ErrorCode::RateLimited {
            return Err(error);
        }
        // Only an id that parses as one is audited: the path is the device's own text.
        let target = if is_artifact_id(&artifact_id) {
            format!("artifact:{artifact_id}")
        } else {
            "artifact:(malformed id)".to_owned()
        };
        let event = crate::storage::AuditEvent {
            org_id: device.org_id.clone(),
            actor: subject,
            action: "artifact.key.denied".to_owned(),
            target,
            outcome: ErrorCode::NotAssigned.as_str().to_owned(),
            request_id: caller.request_id.clone(),
            at: crate::now(),
        };
        state.audit_rejection(event).await?;
        return Err(error);
    };
    let secret = state.secret();
    let kwk_bytes = secret
        .open(&kwk_context(&device.org_id, &device.id), &device.sealed_kwk)
        .map_err(|_| ApiError::internal())?;
    let kwk = WrappingKey::from_bytes(
        kwk_bytes
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::internal())?,
    );
    let content = secret
        .open(
            &content_key_context(&device.org_id, &version.artifact_id),
            &version.sealed_content_key,
        )
        .map_err(|_| ApiError::internal())?;
    let content = ContentKey::from_bytes(
        content
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::internal())?,
    );
    let wrapped = wrap_content_key(&kwk, &artifact_id, &device.id, &content, state.rng())
        .map_err(|_| ApiError::internal())?;
    Ok(Json(WrappedContentKey {
        artifact_id,
        wrapped_key: wrapped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Bytes(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Bytes(5, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Bytes(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Bytes(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Bytes(0, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), Full);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Full);
    }
}
