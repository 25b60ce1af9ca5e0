//! The device auth state machine: enroll with a bootstrap token, sign a proof for every
//! call, refresh before expiry (one refresh at a time), refresh-and-retry once on 401, and on
//! revocation wipe the credentials and report [`SyncState::Revoked`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use edgekeep_protocol::api::{DeviceCredentials, EnrollRequest, EnrollResponse, RefreshRequest};
use edgekeep_protocol::key_agreement::EphemeralAgreement;
use edgekeep_protocol::proof::{self, PROOF_HEADER};
use edgekeep_protocol::{ErrorBody, ErrorCode};
use reqwest::header::{DATE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::clock::DeviceClock;
use super::credentials::{CredentialStore, Credentials, Persisted};
use super::device_key::{DeviceKeyProvider, ProviderSigner};
use super::error::SyncError;
use super::http::{OutgoingRequest, ReadResponse, Transport};

/// Where the device stands with the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// No credentials: enroll with a bootstrap token.
    Unenrolled,
    /// Enrolled as the given device.
    Enrolled {
        /// The device id the control plane assigned.
        device_id: String,
    },
    /// The control plane revoked the device. Credentials are wiped and syncing stopped;
    /// only a new enrollment (new bootstrap token) brings it back.
    Revoked,
}

/// By default, refresh when the access token has less than this many seconds left.
pub(crate) const DEFAULT_REFRESH_MARGIN_SECS: i64 = 60;

/// Reads the protocol error code of a non-2xx answer.
pub(crate) fn server_error(response: &ReadResponse) -> SyncError {
    let status = response.status.as_u16();
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(body) => SyncError::Server {
            status,
            code: body.code,
        },
        Err(_) => SyncError::Protocol { status },
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(response: &ReadResponse) -> Result<T, SyncError> {
    serde_json::from_slice(&response.body).map_err(|_| SyncError::Protocol {
        status: response.status.as_u16(),
    })
}

fn is_revocation(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DeviceRevoked | ErrorCode::RefreshTokenReused
    )
}

pub(crate) struct DeviceAuth {
    base_url: String,
    transport: Transport,
    key: Arc<dyn DeviceKeyProvider>,
    credentials: CredentialStore,
    state: tokio::sync::Mutex<Persisted>,
    clock: Arc<dyn DeviceClock>,
    /// Server clock minus device clock, seconds, learned from `Date` headers.
    clock_offset: AtomicI64,
    refresh_margin: i64,
}

impl DeviceAuth {
    pub fn new(
        base_url: String,
        transport: Transport,
        key: Arc<dyn DeviceKeyProvider>,
        credentials: CredentialStore,
        clock: Arc<dyn DeviceClock>,
        refresh_margin: i64,
    ) -> Result<Self, SyncError> {
        let persisted = credentials.load()?;
        Ok(Self {
            base_url,
            transport,
            key,
            credentials,
            state: tokio::sync::Mutex::new(persisted),
            clock,
            clock_offset: AtomicI64::new(0),
            refresh_margin,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Device time corrected by the offset learned from the server.
    pub fn server_now(&self) -> i64 {
        self.now()
    }

    fn now(&self) -> i64 {
        self.clock
            .unix_seconds()
            .saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    /// Learns the server clock from a response's `Date` header.
    fn learn_clock(&self, headers: &HeaderMap) {
        let server = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        if let Some(server) = server {
            self.clock_offset.store(
                server.saturating_sub(self.clock.unix_seconds()),
                Ordering::Relaxed,
            );
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub async fn state(&self) -> SyncState {
        match &*self.state.lock().await {
            Persisted::Unenrolled => SyncState::Unenrolled,
            Persisted::Enrolled(c) => SyncState::Enrolled {
                device_id: c.device_id.clone(),
            },
            Persisted::Revoked => SyncState::Revoked,
        }
    }

    /// The key-wrapping key agreed at enrollment.
    pub async fn wrapping_key(&self) -> Result<zeroize::Zeroizing<[u8; 32]>, SyncError> {
        match &*self.state.lock().await {
            Persisted::Enrolled(c) => Ok(zeroize::Zeroizing::new(c.wrapping_key)),
            Persisted::Unenrolled => Err(SyncError::NotEnrolled),
            Persisted::Revoked => Err(SyncError::Revoked),
        }
    }

    fn signed(
        &self,
        method: Method,
        url: &str,
        token: &str,
        authorization: bool,
        body: Option<Vec<u8>>,
        extra: &[(&'static str, String)],
    ) -> Result<OutgoingRequest, SyncError> {
        let signer = ProviderSigner(self.key.as_ref());
        let proof = proof::build_proof(&signer, method.as_str(), url, token, self.now())
            .map_err(|_| SyncError::DeviceKey)?;
        let mut headers = vec![(PROOF_HEADER, proof)];
        if authorization {
            headers.push(("authorization", proof::authorization_value(token)));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        headers.extend(extra.iter().cloned());
        Ok(OutgoingRequest {
            method,
            url: url.to_owned(),
            headers,
            body,
        })
    }

    /// Sends an unauthenticated-by-token exchange (enroll, refresh); on a stale proof, learns
    /// the server clock and tries once more.
    async fn exchange(
        &self,
        make: &mut (dyn FnMut() -> Result<OutgoingRequest, SyncError> + Send),
    ) -> Result<ReadResponse, SyncError> {
        let mut response = self.transport.send_with_retry(make).await?;
        if response.status == StatusCode::UNAUTHORIZED
            && matches!(
                server_error(&response),
                SyncError::Server {
                    code: ErrorCode::ProofStale,
                    ..
                }
            )
        {
            self.learn_clock(&response.headers);
            response = self.transport.send_with_retry(make).await?;
        }
        self.learn_clock(&response.headers);
        Ok(response)
    }

    /// Enrolls with a bootstrap token from the app's backend. Replaces a revoked state.
    pub async fn enroll(&self, org_id: &str, bootstrap_token: &str) -> Result<String, SyncError> {
        let mut state = self.state.lock().await;
        if let Persisted::Enrolled(c) = &*state {
            return Ok(c.device_id.clone());
        }
        if matches!(*state, Persisted::Revoked) {
            self.key.reset()?;
        }
        let agreement = EphemeralAgreement::generate().map_err(|_| SyncError::DeviceKey)?;
        let body = serde_json::to_vec(&EnrollRequest::new(
            org_id,
            bootstrap_token,
            &self.key.public_key(),
            agreement.public_key(),
        ))
        .map_err(|_| SyncError::Config("enrollment encoding failed"))?;
        let url = self.url("/v1/device/enroll");
        let mut make = || {
            self.signed(
                Method::POST,
                &url,
                bootstrap_token,
                false,
                Some(body.clone()),
                &[],
            )
        };
        let response = self.exchange(&mut make).await?;
        if response.status != StatusCode::OK {
            return Err(server_error(&response));
        }
        let enrolled: EnrollResponse = parse_json(&response)?;
        let server_public = edgekeep_protocol::b64_decode(&enrolled.server_agreement_public_key)
            .ok_or(SyncError::Protocol { status: 200 })?;
        let kwk = agreement
            .derive(&server_public, &enrolled.org_id, &enrolled.device_id)
            .map_err(|_| SyncError::Protocol { status: 200 })?;
        let credentials = from_wire(
            &enrolled.device_id,
            &enrolled.org_id,
            &enrolled.credentials,
            *kwk.as_bytes(),
        );
        self.credentials.save(&credentials)?;
        let device_id = credentials.device_id.clone();
        *state = Persisted::Enrolled(credentials);
        tracing::info!("device enrolled");
        Ok(device_id)
    }

    /// The access token to use now, refreshing first if it is about to expire.
    async fn access_token(&self) -> Result<String, SyncError> {
        let mut state = self.state.lock().await;
        let needs_refresh = match &*state {
            Persisted::Enrolled(c) => c.access_expires_at - self.refresh_margin <= self.now(),
            Persisted::Unenrolled => return Err(SyncError::NotEnrolled),
            Persisted::Revoked => return Err(SyncError::Revoked),
        };
        if needs_refresh {
            self.refresh_locked(&mut state).await?;
        }
        match &*state {
            Persisted::Enrolled(c) => Ok(c.access_token.clone()),
            _ => Err(SyncError::NotEnrolled),
        }
    }

    /// Refreshes unless another caller already replaced `used` (one refresh at a time).
    async fn refresh_if_still(&self, used: &str) -> Result<(), SyncError> {
        let mut state = self.state.lock().await;
        match &*state {
            Persisted::Enrolled(c) if c.access_token == used => {
                self.refresh_locked(&mut state).await
            }
            Persisted::Enrolled(_) => Ok(()),
            Persisted::Unenrolled => Err(SyncError::NotEnrolled),
            Persisted::Revoked => Err(SyncError::Revoked),
        }
    }

    async fn refresh_locked(&self, state: &mut Persisted) -> Result<(), SyncError> {
        let Persisted::Enrolled(current) = &*state else {
            return Err(SyncError::NotEnrolled);
        };
        let current = current.clone();
        let url = self.url("/v1/device/refresh");
        let body = serde_json::to_vec(&RefreshRequest {
            refresh_token: current.refresh_token.clone(),
        })
        .map_err(|_| SyncError::Config("refresh encoding failed"))?;
        let mut make = || {
            self.signed(
                Method::POST,
                &url,
                &current.refresh_token,
                false,
                Some(body.clone()),
                &[],
            )
        };
        let response = self.exchange(&mut make).await?;
        if response.status != StatusCode::OK {
            let err = server_error(&response);
            if let SyncError::Server { code, .. } = &err
                && (is_revocation(*code) || *code == ErrorCode::InvalidCredentials)
            {
                self.revoke_locally(state)?;
                return Err(SyncError::Revoked);
            }
            return Err(err);
        }
        let fresh: DeviceCredentials = parse_json(&response)?;
        let next = from_wire(
            &current.device_id,
            &current.org_id,
            &fresh,
            current.wrapping_key,
        );
        self.credentials.save(&next)?;
        *state = Persisted::Enrolled(next);
        tracing::debug!("device credentials refreshed");
        Ok(())
    }

    fn revoke_locally(&self, state: &mut Persisted) -> Result<(), SyncError> {
        self.credentials.mark_revoked()?;
        *state = Persisted::Revoked;
        tracing::warn!("the control plane revoked this device: credentials wiped, sync stopped");
        Ok(())
    }

    /// Records a revocation the caller learned of (e.g. a 401 `device_revoked`).
    async fn revoked(&self) -> SyncError {
        let mut state = self.state.lock().await;
        match self.revoke_locally(&mut state) {
            Ok(()) => SyncError::Revoked,
            Err(err) => err,
        }
    }

    /// An authenticated device call: proof on every attempt, retries on transient failures,
    /// one refresh-and-retry on 401, one re-sync of the clock on a stale proof. Non-2xx
    /// answers other than those come back as they are, for the caller to interpret.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extra: &[(&'static str, String)],
    ) -> Result<ReadResponse, SyncError> {
        let url = self.url(path);
        let mut retried_auth = false;
        let mut retried_clock = false;
        loop {
            let token = self.access_token().await?;
            let mut make = || self.signed(method.clone(), &url, &token, true, body.clone(), extra);
            let response = self.transport.send_with_retry(&mut make).await?;
            if response.status != StatusCode::UNAUTHORIZED {
                self.learn_clock(&response.headers);
                return Ok(response);
            }
            let code = match server_error(&response) {
                SyncError::Server { code, .. } => Some(code),
                _ => None,
            };
            match code {
                Some(code) if is_revocation(code) => return Err(self.revoked().await),
                Some(ErrorCode::ProofStale) if !retried_clock => {
                    retried_clock = true;
                    self.learn_clock(&response.headers);
                }
                _ if !retried_auth => {
                    retried_auth = true;
                    self.refresh_if_still(&token).await?;
                }
                _ => return Err(server_error(&response)),
            }
        }
    }

    /// Builds a signed request for a streaming download (the caller sends it).
    pub async fn signed_download(
        &self,
        url: &str,
        extra: &[(&'static str, String)],
    ) -> Result<(OutgoingRequest, String), SyncError> {
        let token = self.access_token().await?;
        let request = self.signed(Method::GET, url, &token, true, None, extra)?;
        Ok((request, token))
    }

    /// After a 401 on a download: refresh (or learn revocation) before the next attempt.
    pub async fn on_unauthorized(
        &self,
        response_code: Option<ErrorCode>,
        used_token: &str,
    ) -> Result<(), SyncError> {
        match response_code {
            Some(code) if is_revocation(code) => Err(self.revoked().await),
            _ => self.refresh_if_still(used_token).await,
        }
    }
}

fn from_wire(
    device_id: &str,
    org_id: &str,
    wire: &DeviceCredentials,
    wrapping_key: [u8; 32],
) -> Credentials {
    Credentials {
        device_id: device_id.to_owned(),
        org_id: org_id.to_owned(),
        access_token: wire.access_token.clone(),
        access_expires_at: wire.access_expires_at,
        refresh_token: wire.refresh_token.clone(),
        refresh_expires_at: wire.refresh_expires_at,
        wrapping_key,
    }
}
