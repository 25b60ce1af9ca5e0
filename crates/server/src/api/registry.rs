//! The model registry: publisher keys (Owner), artifact upload, model versions and approval.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{Permission, valid_name};
use edgekeep_protocol::artifact::{
    ArtifactError, MAX_BUNDLE_HEAD_LEN, SignedManifest, open_artifact_in_place, parse_bundle_head,
};
use edgekeep_protocol::fleet::{ModelVersionInfo, PublisherKeyInfo, RegisterPublisherKeyRequest};
use edgekeep_protocol::signing::VerifyingKey;

use super::body_limits::{declared_length, max_upload_bytes};
use super::{ApiJson, ApiPath, AppState};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::secret::content_key_context;
use crate::storage::{ModelVersionRecord, PublisherKeyRecord};
use crate::upload::{self, UploadError};

fn key_info(record: PublisherKeyRecord) -> PublisherKeyInfo {
    PublisherKeyInfo {
        public_key: VerifyingKey::from_bytes(record.public_key).to_text(),
        key_id: record.key_id,
        name: record.name,
        created_at: record.created_at,
        revoked_at: record.revoked_at,
    }
}

/// Converts a stored version to what operators see.
pub fn version_info(record: ModelVersionRecord) -> Result<ModelVersionInfo, ApiError> {
    let manifest: SignedManifest =
        serde_json::from_str(&record.manifest_json).map_err(|_| ApiError::internal())?;
    Ok(ModelVersionInfo {
        model: record.model,
        version: record.version,
        artifact_id: record.artifact_id,
        manifest,
        uploaded_at: record.uploaded_at,
        uploaded_by: record.uploaded_by,
        approved_at: record.approved_at,
        approved_by: record.approved_by,
    })
}

/// Registers a publisher's Ed25519 public key (Owner only). Devices pin the same key.
#[utoipa::path(post, path = "/v1/publisher-keys", tag = "registry", security(("api_key" = [])), request_body = RegisterPublisherKeyRequest,
    responses((status = 201, body = PublisherKeyInfo), (status = 403, body = edgekeep_protocol::ErrorBody), (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn register_publisher_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<RegisterPublisherKeyRequest>,
) -> Result<(StatusCode, Json<PublisherKeyInfo>), ApiError> {
    caller.require(Permission::PublishersWrite)?;
    caller.require_step_up(&state)?;
    if !valid_name(&body.name) {
        return Err(ApiError::bad_request("name must be 1 to 100 characters"));
    }
    let public = VerifyingKey::from_text(&body.public_key)
        .map_err(|_| ApiError::bad_request("public_key must be a base64url Ed25519 key"))?;
    let now = crate::now();
    let record = PublisherKeyRecord {
        org_id: caller.org_id.clone(),
        key_id: public.key_id(),
        name: body.name,
        public_key: *public.as_bytes(),
        created_at: now,
        revoked_at: None,
    };
    let event = caller.event(
        "publisher_key.register",
        format!("publisher_key:{}", record.key_id),
        now,
    );
    let stored = record.clone();
    state
        .blocking(move |s| s.insert_publisher_key(&stored, &event))
        .await?;
    Ok((StatusCode::CREATED, Json(key_info(record))))
}

/// The org's publisher keys.
#[utoipa::path(get, path = "/v1/publisher-keys", tag = "registry", security(("api_key" = [])), responses((status = 200, body = [PublisherKeyInfo])))]
pub async fn list_publisher_keys(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<PublisherKeyInfo>>, ApiError> {
    caller.require(Permission::ModelsRead)?;
    let org_id = caller.org_id.clone();
    let keys = state.blocking(move |s| s.publisher_keys(&org_id)).await?;
    Ok(Json(keys.into_iter().map(key_info).collect()))
}

/// Revokes a publisher key (Owner only): its artifacts are no longer accepted on upload.
#[utoipa::path(delete, path = "/v1/publisher-keys/{key_id}", tag = "registry", security(("api_key" = [])),
    params(("key_id" = String, Path, description = "Publisher key id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn revoke_publisher_key(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(key_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::PublishersWrite)?;
    caller.require_step_up(&state)?;
    let now = crate::now();
    let event = caller.event(
        "publisher_key.revoke",
        format!("publisher_key:{key_id}"),
        now,
    );
    let org_id = caller.org_id.clone();
    let revoked = state
        .blocking(move |s| s.revoke_publisher_key(&org_id, &key_id, now, &event))
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

fn upload_error(err: ArtifactError) -> ApiError {
    match err {
        ArtifactError::Malformed(_) => ErrorCode::ArtifactMalformed.into(),
        ArtifactError::TooLarge => ErrorCode::PayloadTooLarge.into(),
        ArtifactError::BadSignature => ErrorCode::ArtifactSignatureInvalid.into(),
        ArtifactError::UntrustedKey => ErrorCode::PublisherKeyUnknown.into(),
        ArtifactError::Tampered => ErrorCode::ArtifactTampered.into(),
        ArtifactError::Expired => ErrorCode::ArtifactExpired.into(),
        ArtifactError::Unwrap | ArtifactError::Random => ApiError::internal(),
    }
}

/// Uploads an artifact bundle (`application/octet-stream`, built by `edgekeep publish` or
/// `edgekeep_protocol::artifact::build_artifact`). Accepted only if its manifest is signed by
/// a registered, unrevoked publisher key of the caller's org, unexpired, and the ciphertext
/// and decrypted model match the manifest; the version must be above every stored version of
/// the model. Rejections are audited with their code.
#[utoipa::path(post, path = "/v1/artifacts", tag = "registry", security(("api_key" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "Artifact bundle"),
    responses((status = 201, body = ModelVersionInfo), (status = 400, body = edgekeep_protocol::ErrorBody),
        (status = 413, body = edgekeep_protocol::ErrorBody), (status = 422, body = edgekeep_protocol::ErrorBody),
        (status = 409, body = edgekeep_protocol::ErrorBody)))]
pub async fn upload_artifact(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ModelVersionInfo>), ApiError> {
    caller.require(Permission::ModelsWrite)?;
    let result = match declared_length(&headers) {
        Some(len) if len > max_upload_bytes(state.config()) => {
            Err(ErrorCode::PayloadTooLarge.into())
        }
        _ => store_upload(&state, &caller, body).await,
    };
    match result {
        Err(err) if err.code != ErrorCode::Internal => {
            let mut event = caller.event(
                "model_version.upload.rejected",
                "artifact:-".into(),
                crate::now(),
            );
            event.outcome = err.code.as_str().to_owned();
            state.audit_rejection(event).await?;
            Err(err)
        }
        other => other.map(|info| (StatusCode::CREATED, Json(info))),
    }
}

fn receive_error(err: UploadError) -> ApiError {
    match err {
        UploadError::TooLarge => ErrorCode::PayloadTooLarge.into(),
        UploadError::TooSlow => ErrorCode::RequestTimeout.into(),
        UploadError::Body => ApiError::bad_request("the upload body ended early"),
        UploadError::Io { .. } => {
            tracing::error!(error = %err, "could not receive an upload");
            ApiError::internal()
        }
    }
}

/// Receives the bundle into a temporary file, then (holding one of the few check permits)
/// parses its header, verifies the signature, decrypts the ciphertext in one buffer to check
/// it, and copies the ciphertext from the file into the artifact store.
async fn store_upload(
    state: &AppState,
    caller: &ApiCaller,
    body: Body,
) -> Result<ModelVersionInfo, ApiError> {
    let _slot = state.uploads().try_enter(&caller.org_id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::RateLimited,
            "this org already has the most uploads in progress; retry when one ends",
        )
    })?;
    let max = state.config().max_artifact_bytes;
    let incoming = state.artifacts().incoming().map_err(|err| {
        tracing::error!(error = %err, "no upload folder");
        ApiError::internal()
    })?;
    let upload = upload::receive(body, &incoming, max_upload_bytes(state.config()))
        .await
        .map_err(receive_error)?;
    let org_id = caller.org_id.clone();
    let keys: Vec<VerifyingKey> = state
        .blocking(move |s| s.publisher_keys(&org_id))
        .await?
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| VerifyingKey::from_bytes(k.public_key))
        .collect();
    let _permit = state
        .uploads()
        .check_permit()
        .await
        .ok_or_else(ApiError::internal)?;
    let checker = state.clone();
    let org_id = caller.org_id.clone();
    let now = crate::now();
    let (manifest, manifest_json, sealed_key) = tokio::task::spawn_blocking(move || {
        let head_len = (upload.len() as usize).min(MAX_BUNDLE_HEAD_LEN);
        let head = upload.read_range(0, head_len).map_err(receive_error)?;
        let bundle = parse_bundle_head(&head, upload.len(), max).map_err(upload_error)?;
        bundle.manifest.verify(&keys, now).map_err(upload_error)?;
        let manifest = &bundle.manifest.manifest;
        let offset = bundle.ciphertext_offset as u64;
        let ciphertext = upload
            .read_range(offset, manifest.ciphertext_len as usize)
            .map_err(receive_error)?;
        drop(
            open_artifact_in_place(manifest, &bundle.content_key, ciphertext)
                .map_err(upload_error)?,
        );
        let artifact_id = manifest.artifact_id().to_owned();
        let sealed = checker
            .secret()
            .seal(
                &content_key_context(&org_id, &artifact_id),
                bundle.content_key.as_bytes(),
            )
            .map_err(|_| ApiError::internal())?;
        checker
            .artifacts()
            .put_from_file(
                &org_id,
                &artifact_id,
                upload.path(),
                offset,
                manifest.ciphertext_len,
            )
            .map_err(|err| {
                tracing::error!(error = %err, "could not store an artifact");
                ApiError::internal()
            })?;
        let json = serde_json::to_string(&bundle.manifest).map_err(|_| ApiError::internal())?;
        Ok::<_, ApiError>((bundle.manifest.clone(), json, sealed))
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let m = &manifest.manifest;
    let record = ModelVersionRecord {
        org_id: caller.org_id.clone(),
        model: m.model.clone(),
        version: m.version,
        artifact_id: m.artifact_id().to_owned(),
        manifest_json,
        sealed_content_key: sealed_key,
        uploaded_at: now,
        uploaded_by: caller.actor(),
        approved_at: None,
        approved_by: None,
    };
    let event = caller.event(
        "model_version.upload",
        format!("model:{}@{}", m.model, m.version),
        now,
    );
    let stored = record.clone();
    state
        .blocking(move |s| s.insert_model_version(&stored, &event))
        .await?;
    version_info(record)
}

/// Every model version of the org.
#[utoipa::path(get, path = "/v1/models", tag = "registry", security(("api_key" = [])), responses((status = 200, body = [ModelVersionInfo])))]
pub async fn list_models(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<ModelVersionInfo>>, ApiError> {
    caller.require(Permission::ModelsRead)?;
    let org_id = caller.org_id.clone();
    let versions = state.blocking(move |s| s.model_versions(&org_id)).await?;
    versions
        .into_iter()
        .map(version_info)
        .collect::<Result<_, _>>()
        .map(Json)
}

/// Approves a version for rollout (Admin+). Approving twice changes nothing.
#[utoipa::path(post, path = "/v1/models/{model}/versions/{version}/approve", tag = "registry", security(("api_key" = [])),
    params(("model" = String, Path, description = "Model name"), ("version" = u64, Path, description = "Version")),
    responses((status = 200, body = ModelVersionInfo), (status = 404, body = edgekeep_protocol::ErrorBody)))]
pub async fn approve_version(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath((model, version)): ApiPath<(String, u64)>,
) -> Result<Json<ModelVersionInfo>, ApiError> {
    caller.require(Permission::ModelsApprove)?;
    let now = crate::now();
    let event = caller.event(
        "model_version.approve",
        format!("model:{model}@{version}"),
        now,
    );
    let org_id = caller.org_id.clone();
    let actor = caller.actor();
    let record = state
        .blocking(move |s| {
            if s.model_version(&org_id, &model, version)?.is_none() {
                return Ok(None);
            }
            s.approve_model_version(&org_id, &model, version, &actor, now, &event)?;
            s.model_version(&org_id, &model, version)
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    version_info(record).map(Json)
}
