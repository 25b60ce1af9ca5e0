//! Calls made by devices: enrollment, credential refresh, and an authenticated identity check.

use axum::Json;
use axum::extract::State;
use edgekeep_protocol::ErrorCode;
use edgekeep_protocol::api::{
    DeviceCredentials, DeviceInfo, EnrollRequest, EnrollResponse, RefreshRequest,
};
use edgekeep_protocol::key_agreement::{EphemeralAgreement, X25519_PUBLIC_KEY_LEN};
use edgekeep_protocol::proof::P256_PUBLIC_KEY_LEN;
use edgekeep_protocol::token::{MintedToken, ParsedToken, TokenKind};

use super::devices::device_info;
use super::{ApiJson, AppState};
use crate::auth::{DeviceCaller, KnownCredential, ProofCheck, RequestContext, fail};
use crate::error::ApiError;
use crate::secret::kwk_context;
use crate::storage::{
    AuditEvent, DeviceRecord, DeviceTokenKind, DeviceTokenRecord, RefreshOutcome,
};

/// A fresh access and refresh token pair in one family, with their records.
fn mint_credentials(
    state: &AppState,
    device: &DeviceRecord,
    family: &str,
    now: i64,
) -> Result<(DeviceCredentials, Vec<DeviceTokenRecord>), ApiError> {
    let access =
        MintedToken::mint(TokenKind::Access, state.rng()).map_err(|_| ApiError::internal())?;
    let refresh =
        MintedToken::mint(TokenKind::Refresh, state.rng()).map_err(|_| ApiError::internal())?;
    let config = state.config();
    let record = |token: &MintedToken, kind, ttl: i64| DeviceTokenRecord {
        hash: token.hash(),
        kind,
        device_id: device.id.clone(),
        org_id: device.org_id.clone(),
        family: family.to_owned(),
        issued_at: now,
        expires_at: now + ttl,
        used_at: None,
        revoked_at: None,
    };
    let records = vec![
        record(
            &access,
            DeviceTokenKind::Access,
            config.access_token_ttl_secs,
        ),
        record(
            &refresh,
            DeviceTokenKind::Refresh,
            config.refresh_token_ttl_secs,
        ),
    ];
    let credentials = DeviceCredentials {
        access_token: access.expose().to_owned(),
        access_expires_at: now + config.access_token_ttl_secs,
        refresh_token: refresh.expose().to_owned(),
        refresh_expires_at: now + config.refresh_token_ttl_secs,
    };
    Ok((credentials, records))
}

fn device_event(
    device: &DeviceRecord,
    action: &str,
    outcome: &str,
    request_id: &str,
    at: i64,
) -> AuditEvent {
    AuditEvent {
        org_id: device.org_id.clone(),
        actor: format!("device:{}", device.id),
        action: action.to_owned(),
        target: format!("device:{}", device.id),
        outcome: outcome.to_owned(),
        request_id: request_id.to_owned(),
        at,
    }
}

/// The first 8 bytes of a token hash as hex: a stable, non-secret name for a bootstrap token.
fn short_hex(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Enrolls a device with a bootstrap token. The `DPoP` proof must be signed by the identity key
/// in the body and bound (`ath`) to the bootstrap token. Rejections with a known token are
/// audited under the token's org.
#[utoipa::path(post, path = "/v1/device/enroll", tag = "device", security(("device_proof" = [])), request_body = EnrollRequest,
    responses((status = 200, body = EnrollResponse), (status = 401, body = edgekeep_protocol::ErrorBody), (status = 429, body = edgekeep_protocol::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    let token = ParsedToken::parse(&body.bootstrap_token, TokenKind::Bootstrap)
        .map_err(|_| fail(&state, &ctx.addr, None, ErrorCode::BootstrapTokenInvalid))?;
    let identity_key = edgekeep_protocol::b64_decode(&body.identity_public_key)
        .filter(|k| k.len() == P256_PUBLIC_KEY_LEN && k[0] == 4)
        .ok_or_else(|| {
            ApiError::bad_request("identity_public_key must be an uncompressed P-256 key")
        })?;
    let agreement_key = edgekeep_protocol::b64_decode(&body.agreement_public_key)
        .filter(|k| k.len() == X25519_PUBLIC_KEY_LEN)
        .ok_or_else(|| ApiError::bad_request("agreement_public_key must be an X25519 key"))?;
    let hash = token.hash();
    let bootstrap = state
        .blocking(move |s| s.bootstrap_token(&hash))
        .await?
        .ok_or_else(|| fail(&state, &ctx.addr, None, ErrorCode::BootstrapTokenInvalid))?;

    let now = crate::now();
    let device = DeviceRecord {
        id: state.new_id("dev")?,
        org_id: bootstrap.org_id.clone(),
        device_group: bootstrap.device_group.clone(),
        identity_key,
        sealed_kwk: Vec::new(),
        enrolled_at: now,
        revoked_at: None,
    };
    let check = ProofCheck {
        state: &state,
        device: &device,
        subject: format!("bootstrap:{}", short_hex(&hash)),
        token: &body.bootstrap_token,
        method: &ctx.method,
        url: ctx.url.clone(),
        addr: &ctx.addr,
        request_id: &ctx.request_id,
        action: "device.enroll.rejected",
    };
    let rejection = if bootstrap.org_id != body.org_id {
        Some(ErrorCode::BootstrapTokenInvalid)
    } else if bootstrap.used_at.is_some() {
        Some(ErrorCode::BootstrapTokenUsed)
    } else if bootstrap.expires_at <= now {
        Some(ErrorCode::BootstrapTokenExpired)
    } else {
        None
    };
    if let Some(code) = rejection {
        return Err(check.reject(code).await);
    }
    check.verify(ctx.proof.as_deref()).await?;
    // Only a valid, unused token with a good proof spends the org's enrollment budget, so
    // replayed or forged attempts cannot starve real enrollments.
    if !state
        .spend(state.limits().enroll_org, &bootstrap.org_id, 1)
        .await?
    {
        return Err(ErrorCode::RateLimited.into());
    }

    let server_agreement = EphemeralAgreement::generate().map_err(|_| ApiError::internal())?;
    let server_public = edgekeep_protocol::b64_encode(server_agreement.public_key());
    let kwk = server_agreement
        .derive(&agreement_key, &device.org_id, &device.id)
        .map_err(|_| ApiError::bad_request("agreement_public_key is not usable"))?;
    let sealed_kwk = state
        .secret()
        .seal(&kwk_context(&device.org_id, &device.id), kwk.as_bytes())
        .map_err(|_| ApiError::internal())?;
    let device = DeviceRecord {
        sealed_kwk,
        ..device
    };
    let family = state.new_id("fam")?;
    let (credentials, records) = mint_credentials(&state, &device, &family, now)?;
    let event = device_event(&device, "device.enroll", "ok", &ctx.request_id, now);
    let stored = device.clone();
    let result = state
        .blocking(move |s| s.enroll_device(&hash, &stored, &records, &event))
        .await;
    match result {
        Ok(()) => {}
        Err(err) if err.code == ErrorCode::Conflict => {
            return Err(ErrorCode::BootstrapTokenUsed.into());
        }
        Err(err) => return Err(err),
    }
    Ok(Json(EnrollResponse {
        device_id: device.id,
        org_id: device.org_id,
        device_group: device.device_group,
        server_agreement_public_key: server_public,
        credentials,
    }))
}

/// Rotates a device's credentials. The `DPoP` proof is bound to the refresh token. Presenting
/// a refresh token a second time revokes every credential of its family (audited).
#[utoipa::path(post, path = "/v1/device/refresh", tag = "device", security(("device_proof" = [])), request_body = RefreshRequest,
    responses((status = 200, body = DeviceCredentials), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<DeviceCredentials>, ApiError> {
    let token = ParsedToken::parse(&body.refresh_token, TokenKind::Refresh)
        .map_err(|_| fail(&state, &ctx.addr, None, ErrorCode::InvalidCredentials))?;
    let hash = token.hash();
    let (record, device) = state
        .blocking(move |s| s.device_token(&hash))
        .await?
        .filter(|(record, _)| record.kind == DeviceTokenKind::Refresh)
        .ok_or_else(|| fail(&state, &ctx.addr, None, ErrorCode::InvalidCredentials))?;
    let check = ProofCheck {
        state: &state,
        device: &device,
        subject: format!("device:{}", device.id),
        token: &body.refresh_token,
        method: &ctx.method,
        url: ctx.url.clone(),
        addr: &ctx.addr,
        request_id: &ctx.request_id,
        action: "device.refresh.rejected",
    };
    let now = crate::now();
    if device.revoked_at.is_some() {
        return Err(check.reject(ErrorCode::DeviceRevoked).await);
    }
    check.verify(ctx.proof.as_deref()).await?;
    if record.revoked_at.is_some() || record.expires_at <= now {
        return Err(check.reject(ErrorCode::InvalidCredentials).await);
    }
    let (credentials, records) = mint_credentials(&state, &device, &record.family, now)?;
    let event = device_event(&device, "device.refresh", "ok", &ctx.request_id, now);
    let reuse_event = device_event(
        &device,
        "device.refresh.reuse_detected",
        ErrorCode::RefreshTokenReused.as_str(),
        &ctx.request_id,
        now,
    );
    let outcome = state
        .blocking(move |s| s.rotate_refresh_token(&hash, now, &records, &event, &reuse_event))
        .await?;
    match outcome {
        RefreshOutcome::Rotated => Ok(Json(credentials)),
        RefreshOutcome::Reused => Err(fail(
            &state,
            &ctx.addr,
            Some(KnownCredential {
                subject: &check.subject,
                org_id: &device.org_id,
            }),
            ErrorCode::RefreshTokenReused,
        )),
    }
}

/// The calling device, as the server knows it. The cheapest authenticated device call.
#[utoipa::path(get, path = "/v1/device/me", tag = "device", security(("device_proof" = [])),
    responses((status = 200, body = DeviceInfo), (status = 401, body = edgekeep_protocol::ErrorBody)))]
pub async fn me(caller: DeviceCaller) -> Json<DeviceInfo> {
    Json(device_info(caller.device))
}
