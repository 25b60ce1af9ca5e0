//! Telemetry ingest: declared batches only, per-device sequence numbers, deduplicated.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::telemetry::{MAX_BATCH_BYTES, TelemetryAck, TelemetryBatch, TelemetryError};

use super::AppState;
use crate::auth::DeviceCaller;
use crate::error::ApiError;

/// Accepts a telemetry batch from the calling device. The body must match the declared
/// schema exactly (an undeclared field or a wrong type rejects the whole batch), stay within
/// size bounds, and name only model versions of the device's org. The answer acknowledges the
/// highest contiguous sequence stored; a batch seen before is acknowledged and not counted.
#[utoipa::path(post, path = "/v1/device/telemetry", tag = "device", security(("device_proof" = [])), request_body = TelemetryBatch,
    responses((status = 200, body = TelemetryAck), (status = 413, body = edgekeep_protocol::ErrorBody), (status = 422, body = edgekeep_protocol::ErrorBody)))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: DeviceCaller,
    body: Body,
) -> Result<Json<TelemetryAck>, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BATCH_BYTES)
        .await
        .map_err(|_| ApiError::from(ErrorCode::PayloadTooLarge))?;
    let batch = TelemetryBatch::parse(&bytes).map_err(|err| match err {
        TelemetryError::TooLarge => ApiError::from(ErrorCode::PayloadTooLarge),
        TelemetryError::Schema => ApiError::new(
            ErrorCode::TelemetryInvalid,
            "batch does not match the declared schema (undeclared field or wrong type)",
        ),
        TelemetryError::OutOfBounds(_) => ApiError::new(
            ErrorCode::TelemetryInvalid,
            "a value is outside its declared bounds",
        ),
    })?;
    let device = caller.device;
    if !state
        .spend(
            state.limits().telemetry_samples,
            &device.id,
            batch.samples(),
        )
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "the device reported more samples this hour than any device makes",
        ));
    }
    let mut models: Vec<(String, u64)> = batch
        .models()
        .into_iter()
        .map(|m| (m.model.as_str().to_owned(), m.version))
        .collect();
    models.sort();
    models.dedup();
    let org_id = device.org_id.clone();
    let device_id = device.id.clone();
    let now = crate::now();
    let window = state.config().telemetry_seq_window;
    let outcome = state
        .blocking(move |s| {
            for (model, version) in &models {
                if s.model_version(&org_id, model, *version)?.is_none() {
                    return Ok(Err(ApiError::new(
                        ErrorCode::TelemetryInvalid,
                        "batch names a model version unknown to the device's org",
                    )));
                }
            }
            match s.ingest_telemetry(&org_id, &device_id, &batch, now, window) {
                Ok(ack) => Ok(Ok(ack)),
                Err(crate::storage::StorageError::Conflict(_)) => Ok(Err(ApiError::new(
                    ErrorCode::TelemetryInvalid,
                    "sequence number is too far above the acknowledged one",
                ))),
                Err(other) => Err(other),
            }
        })
        .await??;
    Ok(Json(outcome))
}
