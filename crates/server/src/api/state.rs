//! Shared state of the request handlers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ring::rand::{SecureRandom, SystemRandom};

use edgekeep_protocol::signing::SigningKey;

use crate::artifact_store::ArtifactStore;
use crate::audit_throttle::AuditThrottle;
use crate::config::ServerConfig;
use crate::counters::Counters;
use crate::error::ApiError;
use crate::identity::passkeys::PasskeyService;
use crate::ratelimit::Budget;
use crate::secret::ServerSecret;
use crate::storage::{AuditEvent, Storage, StorageError};
use crate::upload::UploadGate;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    desired_state_key: SigningKey,
    artifacts: ArtifactStore,
    device_last_seen: Mutex<HashMap<String, i64>>,
    config: ServerConfig,
    secret: ServerSecret,
    rng: SystemRandom,
    counters: Counters,
    limits: Limits,
    audit_throttle: AuditThrottle,
    key_last_touched: Mutex<HashMap<String, i64>>,
    uploads: UploadGate,
    passkeys: Option<PasskeyService>,
    idp_http: crate::identity::oidc::IdpHttp,
    discovery: crate::identity::oidc::DiscoveryCache,
    started: std::time::Instant,
}

/// The rate budgets of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Enrollment attempts per org.
    pub enroll_org: Budget,
    /// Authentication failures per org.
    pub fail_org: Budget,
    /// Authentication failures per address.
    pub fail_addr: Budget,
    /// Authentication failures per known credential (API key, device, bootstrap token).
    pub fail_credential: Budget,
    /// Latency and quality samples per device (bounds what one device adds to aggregates).
    pub telemetry_samples: Budget,
    /// Sign-in starts per address.
    pub sign_in_starts: Budget,
}

/// The passkey relying party of a server: its public URL's origin, with the URL's host as the
/// relying-party id. `None` without a public URL (passkeys are bound to a stable origin) or
/// when the host cannot be one (an IP address).
fn passkey_service(config: &ServerConfig) -> Option<PasskeyService> {
    let url = url::Url::parse(config.public_url.as_deref()?).ok()?;
    let host = url.host_str()?.to_owned();
    let service = PasskeyService::new(&host, "edgekeep", &url)
        .and_then(|s| s.with_ceremony_lifetime(config.sessions.ceremony_timeout));
    match service {
        Ok(service) => Some(service),
        Err(err) => {
            tracing::warn!(error = %err, "passkeys disabled: the public URL cannot be a relying party");
            None
        }
    }
}

impl AppState {
    /// Builds the state over opened storage and its shared counters, the loaded server
    /// secret, the desired-state signing key, the artifact store and the HTTP client for
    /// identity providers.
    pub fn new(
        storage: Arc<dyn Storage>,
        counters: Counters,
        config: ServerConfig,
        secret: ServerSecret,
        desired_state_key: SigningKey,
        artifacts: ArtifactStore,
        idp_http: crate::identity::oidc::IdpHttp,
    ) -> Self {
        let rates = &config.rate_limits;
        let limits = Limits {
            enroll_org: Budget::per_minute("enroll_org", rates.enrollments_per_org),
            fail_org: Budget::per_minute("fail_org", rates.auth_failures_per_org),
            fail_addr: Budget::per_minute("fail_addr", rates.auth_failures_per_address),
            fail_credential: Budget::per_minute(
                "fail_credential",
                rates.auth_failures_per_credential,
            ),
            telemetry_samples: Budget::per_hour(
                "telemetry_samples",
                rates.telemetry_samples_per_device_hour,
            ),
            sign_in_starts: Budget::per_minute("sign_in_starts", rates.sign_in_starts_per_address),
        };
        let uploads = UploadGate::new(
            config.connections.uploads_per_org,
            config.connections.concurrent_upload_checks,
        );
        let passkeys = passkey_service(&config);
        Self {
            inner: Arc::new(Inner {
                uploads,
                passkeys,
                idp_http,
                discovery: crate::identity::oidc::DiscoveryCache::default(),
                started: std::time::Instant::now(),
                storage,
                desired_state_key,
                artifacts,
                device_last_seen: Mutex::new(HashMap::new()),
                counters,
                config,
                secret,
                rng: SystemRandom::new(),
                limits,
                audit_throttle: AuditThrottle::new(std::time::Duration::from_secs(60)),
                key_last_touched: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The server secret.
    pub fn secret(&self) -> &ServerSecret {
        &self.inner.secret
    }

    /// The key that signs desired states.
    pub fn desired_state_key(&self) -> &SigningKey {
        &self.inner.desired_state_key
    }

    /// The artifact ciphertext store.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.inner.artifacts
    }

    /// Whether a device's last-seen time should be written now (at most every 30 seconds).
    pub fn should_touch_device(&self, device_id: &str, now: i64) -> bool {
        let mut seen = self
            .inner
            .device_last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match seen.get(device_id) {
            Some(last) if now - *last < 30 => false,
            _ => {
                seen.insert(device_id.to_owned(), now);
                true
            }
        }
    }

    /// Upload slots per org and the permits to check uploads.
    pub fn uploads(&self) -> &UploadGate {
        &self.inner.uploads
    }

    /// The passkey relying party, when the server knows its public URL.
    pub fn passkeys(&self) -> Option<&PasskeyService> {
        self.inner.passkeys.as_ref()
    }

    /// The HTTP client that talks to orgs' identity providers.
    pub fn idp_http(&self) -> &crate::identity::oidc::IdpHttp {
        &self.inner.idp_http
    }

    /// The random generator.
    pub fn rng(&self) -> &SystemRandom {
        &self.inner.rng
    }

    /// The rate budgets.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Records a device proof's id in `scope` for as long as the proof could pass the
    /// freshness check; `false` when it was used before (on any instance).
    pub async fn first_use_proof(
        &self,
        scope: &str,
        jti: &str,
        now: i64,
    ) -> Result<bool, ApiError> {
        let expires_at = now + 2 * self.inner.config.proof_freshness_secs + 1;
        let counters = self.inner.counters.clone();
        if !counters.blocks() {
            return Ok(counters.first_use(scope, jti, expires_at, now)?);
        }
        let (scope, jti) = (scope.to_owned(), jti.to_owned());
        tokio::task::spawn_blocking(move || counters.first_use(&scope, &jti, expires_at, now))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(ApiError::from)
    }

    /// Takes `n` tokens from `key`'s bucket of `budget` (shared by every instance); whether
    /// the events are allowed.
    pub async fn spend(&self, budget: Budget, key: &str, n: u64) -> Result<bool, ApiError> {
        let counters = self.inner.counters.clone();
        if !counters.blocks() {
            return Ok(counters.take(&budget, key, n)?);
        }
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || counters.take(&budget, &key, n))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(ApiError::from)
    }

    /// [`Self::spend`] for synchronous code on async threads (the failure budgets): a
    /// counter in the database is read on a thread of its own, since the PostgreSQL client
    /// must not block inside the runtime. A counter that cannot be read refuses.
    pub fn spend_now(&self, budget: &Budget, key: &str, n: u64) -> bool {
        let counters = &self.inner.counters;
        let take = || counters.take(budget, key, n);
        let taken = if counters.blocks() {
            std::thread::scope(|scope| {
                scope.spawn(take).join().unwrap_or_else(|_| {
                    Err(crate::storage::StorageError::Unavailable(
                        "a counter thread".to_owned(),
                    ))
                })
            })
        } else {
            take()
        };
        taken.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "a rate budget could not be read: refused");
            false
        })
    }

    /// The shared counters (for housekeeping).
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// How long this server has been running.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// The discovery documents of OpenID Providers, cached for sign-in starts.
    pub fn discovery(&self) -> &crate::identity::oidc::DiscoveryCache {
        &self.inner.discovery
    }

    /// Spends one of the address's sign-in starts; `rate_limited` when none is left.
    pub async fn admit_sign_in_start(
        &self,
        extensions: &axum::http::Extensions,
    ) -> Result<(), crate::error::ApiError> {
        let addr = crate::auth::address_key(extensions);
        if self
            .spend(self.inner.limits.sign_in_starts, &addr, 1)
            .await?
        {
            Ok(())
        } else {
            Err(edgekeep_protocol::ErrorCode::RateLimited.into())
        }
    }

    /// A new random id with a type prefix (`dev_...`).
    pub fn new_id(&self, prefix: &str) -> Result<String, ApiError> {
        let mut bytes = [0u8; 12];
        self.inner
            .rng
            .fill(&mut bytes)
            .map_err(|_| ApiError::internal())?;
        Ok(format!(
            "{prefix}_{}",
            edgekeep_protocol::b64_encode(&bytes)
        ))
    }

    /// Runs a storage call on the blocking pool.
    pub async fn blocking<T, F>(&self, body: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
    {
        let storage = Arc::clone(&self.inner.storage);
        tokio::task::spawn_blocking(move || body(storage.as_ref()))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(ApiError::from)
    }

    /// Appends one audit event on its own (for rejected attempts).
    pub async fn audit(&self, event: AuditEvent) -> Result<(), ApiError> {
        self.blocking(move |s| s.append_audit(std::slice::from_ref(&event)))
            .await
    }

    /// Appends the audit event of a rejected attempt, aggregating identical ones
    /// ([`AuditThrottle`]): a flood of one refused request writes one row per minute.
    pub async fn audit_rejection(&self, event: AuditEvent) -> Result<(), ApiError> {
        match self.inner.audit_throttle.admit(event) {
            Some(event) => self.audit(event).await,
            None => Ok(()),
        }
    }

    /// Whether an API key's last-used time should be written now (at most once a minute).
    pub fn should_touch_key(&self, key_id: &str, now: i64) -> bool {
        let mut touched = self
            .inner
            .key_last_touched
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match touched.get(key_id) {
            Some(last) if now - *last < 60 => false,
            _ => {
                touched.insert(key_id.to_owned(), now);
                true
            }
        }
    }
}
