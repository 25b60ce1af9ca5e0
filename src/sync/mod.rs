//! The SDK's narrow door to the network: device auth, telemetry upload, model delivery.
//!
//! [`SyncClient`] is the entry point, configured with [`SyncClientBuilder`]. It owns a small
//! tokio runtime (one worker) so callers can stay synchronous; every blocking method has an
//! `_async` twin that runs its network work on that runtime too.
//!
//! | file | what it holds |
//! |---|---|
//! | `delivery.rs` | desired state, manifest checks, resumable download, decryption |
//! | `activation.rs` | slots: stage → health check → activate, previous kept, roll back |
//! | `auth.rs` | the device auth state machine ([`SyncState`]): enroll, proofs, refresh, revocation |
//! | `clock.rs` | [`DeviceClock`]: the device's wall clock, corrected by the server's |
//! | `credentials.rs` | credentials sealed in the store |
//! | `device_key.rs` | [`DeviceKeyProvider`] and the store-sealed software key |
//! | `http.rs` | the HTTP client: retries, backoff with jitter, `Retry-After`, [`RequestObserver`] |
//! | `tls.rs` | rustls configuration, custom roots, SPKI pinning |
//! | `runtime.rs` | delivered models loaded from memory through [`crate::inference`], health check |
//! | `policy.rs` | [`UploadPolicy`], [`DownloadPolicy`] |
//! | `upload.rs` | telemetry upload and acknowledgement |
//! | `wire.rs` | queued batches → the control plane's declared telemetry schema |
//! | `error.rs` | [`SyncError`] |

#![warn(missing_docs)]

mod activation;
mod auth;
mod clock;
mod credentials;
mod delivery;
mod device_key;
mod error;
mod http;
mod policy;
mod runtime;
mod tls;
mod upload;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use activation::{ActivationPolicy, ActiveModel, ModelHealthCheck, SlotChange};
pub use auth::SyncState;
pub use clock::{DeviceClock, SystemClock};
pub use delivery::{DeliveryReport, Rejection};
pub use device_key::{DeviceKeyProvider, StoreDeviceKey};
pub use edgekeep_protocol::signing::VerifyingKey as PublisherKey;
pub use error::SyncError;
pub use http::{OutgoingRequest, RequestObserver, RetryPolicy};
pub use policy::{DownloadPolicy, UploadPolicy};
pub use tls::{SpkiPin, spki_pin_of_certificate, spki_pins_of_pem};
pub use upload::UploadReport;

use crate::store::Store;
use crate::telemetry::{
    DeviceStateProvider, FixedDeviceState, QueueLimits, Telemetry, UploadQueue,
};

use auth::DeviceAuth;
use credentials::CredentialStore;
use http::Transport;

/// Configures a [`SyncClient`]. Start with [`SyncClient::builder`].
pub struct SyncClientBuilder {
    base_url: String,
    store: Option<Arc<Store>>,
    roots_pem: Vec<Vec<u8>>,
    pins: Vec<SpkiPin>,
    device_key: Option<Arc<dyn DeviceKeyProvider>>,
    device_state: Option<Arc<dyn DeviceStateProvider>>,
    upload_policy: UploadPolicy,
    download_policy: DownloadPolicy,
    retry: RetryPolicy,
    connect_timeout: Duration,
    request_timeout: Duration,
    queue_limits: QueueLimits,
    observer: Option<Arc<dyn RequestObserver>>,
    refresh_margin: Duration,
    clock: Arc<dyn DeviceClock>,
    health_check: Option<Arc<dyn ModelHealthCheck>>,
    delivery: DeliveryConfig,
}

/// What model delivery trusts and how it activates.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryConfig {
    /// Publisher keys pinned in the app: only manifests they signed are installed.
    pub publisher_keys: Vec<PublisherKey>,
    /// The control plane's desired-state key, if pinned (else learned once and kept).
    pub desired_state_key: Option<PublisherKey>,
    /// The model slots the app uses; others are refused (empty: any).
    pub slots: Vec<String>,
    /// When verified versions start serving.
    pub activation: ActivationPolicy,
}

impl std::fmt::Debug for SyncClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClientBuilder").finish_non_exhaustive()
    }
}

impl SyncClientBuilder {
    /// The encrypted store that keeps credentials, the identity key and the telemetry
    /// queue. Required.
    pub fn store(mut self, store: Arc<Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Trusts this PEM root (self-hosted control planes) instead of the public roots.
    /// May be called several times.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots_pem.push(pem.into());
        self
    }

    /// Additionally requires a certificate of the server's chain to carry this key
    /// (SHA-256 of its SubjectPublicKeyInfo). May be called several times (key rotation).
    pub fn pin_spki(mut self, pin: SpkiPin) -> Self {
        self.pins.push(pin);
        self
    }

    /// The device identity key; by default a software key sealed in the store.
    pub fn device_key_provider(mut self, provider: Arc<dyn DeviceKeyProvider>) -> Self {
        self.device_key = Some(provider);
        self
    }

    /// The app's source of battery, network, storage and thermal state; by default a
    /// plugged-in device on Wi-Fi.
    pub fn device_state_provider(mut self, provider: Arc<dyn DeviceStateProvider>) -> Self {
        self.device_state = Some(provider);
        self
    }

    /// When telemetry may be uploaded.
    pub fn upload_policy(mut self, policy: UploadPolicy) -> Self {
        self.upload_policy = policy;
        self
    }

    /// When model artifacts may be downloaded.
    pub fn download_policy(mut self, policy: DownloadPolicy) -> Self {
        self.download_policy = policy;
        self
    }

    /// Retries of transient failures.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Connect and whole-request timeouts (defaults 10 s and 60 s).
    pub fn timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }

    /// Bounds of the telemetry queue.
    pub fn queue_limits(mut self, limits: QueueLimits) -> Self {
        self.queue_limits = limits;
        self
    }

    /// Pins a publisher key: only manifests it signed are installed. May be called several
    /// times (key rotation). Without any, every model is refused.
    pub fn publisher_key(mut self, key: PublisherKey) -> Self {
        self.delivery.publisher_keys.push(key);
        self
    }

    /// Pins the control plane's desired-state signing key. Without it, the key is fetched
    /// once and kept in the store (trust on first use).
    pub fn desired_state_key(mut self, key: PublisherKey) -> Self {
        self.delivery.desired_state_key = Some(key);
        self
    }

    /// Declares a model slot the app uses; once any is declared, manifests for other slots
    /// are refused.
    pub fn model_slot(mut self, slot: &str) -> Self {
        self.delivery.slots.push(slot.to_owned());
        self
    }

    /// When verified versions start serving (default immediately).
    pub fn activation_policy(mut self, policy: ActivationPolicy) -> Self {
        self.delivery.activation = policy;
        self
    }

    /// Refresh the access token when less than this is left of it (default 60 s).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The device's wall clock (default: the system clock). Time checks use it corrected
    /// by the server's `Date`, so a wrong device clock does not break sync.
    pub fn device_clock(mut self, clock: Arc<dyn DeviceClock>) -> Self {
        self.clock = clock;
        self
    }

    /// The app's own probe of each new version before it serves (after the SDK's); a
    /// refusal keeps the current version and reports an automatic rollback.
    pub fn health_check(mut self, check: Arc<dyn ModelHealthCheck>) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Sees every request before it is sent (audits, tests).
    pub fn request_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the client: checks the URL (HTTPS only), builds TLS, loads the identity key
    /// and the persisted auth state, and starts the runtime.
    pub fn build(self) -> Result<SyncClient, SyncError> {
        let store = self.store.ok_or(SyncError::Config("a store is required"))?;
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|_| SyncError::Config("control-plane URL does not parse"))?;
        if parsed.scheme() != "https" || parsed.host().is_none() {
            return Err(SyncError::Config("control-plane URL must be https://host"));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("edgekeep-sync")
            .enable_all()
            .build()
            .map_err(|_| SyncError::Runtime)?;
        let tls = tls::client_config(&self.roots_pem, &self.pins)?;
        let transport = {
            let _guard = runtime.enter();
            Transport::new(
                tls,
                self.connect_timeout,
                self.request_timeout,
                self.retry,
                self.observer,
            )?
        };
        let device_key = match self.device_key {
            Some(key) => key,
            None => Arc::new(StoreDeviceKey::load_or_create(store.clone())?),
        };
        let auth = DeviceAuth::new(
            base_url,
            transport,
            device_key,
            CredentialStore::new(store.clone()),
            self.clock,
            i64::try_from(self.refresh_margin.as_secs()).unwrap_or(i64::MAX),
        )?;
        let queue = UploadQueue::new(store.clone(), self.queue_limits);
        let telemetry = Telemetry::new();
        telemetry.set_enabled(upload::telemetry_enabled(&store)?);
        let slots = activation::Slots::new(store.clone(), self.health_check);
        if self.delivery.activation == ActivationPolicy::NextLaunch {
            slots.promote_staged()?;
        }
        let inner = Arc::new(Inner {
            auth,
            slots,
            delivery: self.delivery,
            store,
            queue,
            telemetry,
            device_state: self
                .device_state
                .unwrap_or_else(|| Arc::new(FixedDeviceState::plugged_in())),
            upload_policy: self.upload_policy,
            download_policy: self.download_policy,
        });
        Ok(SyncClient {
            inner,
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
        })
    }
}

/// A task on the SDK runtime that is aborted when its waiter goes away.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The SDK's runtime; shut down in the background on drop, so dropping the last client from
/// async code does not block or panic.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn get(&self) -> Result<&tokio::runtime::Runtime, SyncError> {
        self.0.as_ref().ok_or(SyncError::Runtime)
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Inner {
    fn report_change(&self, slot: &str, change: &SlotChange) {
        use crate::telemetry::{RolloutStage, metrics};
        let (version, stage) = match change {
            SlotChange::Activated(v) => (*v, RolloutStage::Active),
            SlotChange::Staged(_) => return,
            SlotChange::RolledBack { failed, .. } => (*failed, RolloutStage::RolledBack),
        };
        if let Some(version) = crate::telemetry::ModelVersion::new(slot, version) {
            self.telemetry
                .add_labeled(metrics::ROLLOUT_PROGRESS, stage, Some(version), 1);
        }
    }

    async fn check_credentials(&self) -> Result<(), SyncError> {
        let response = self
            .auth
            .call(reqwest::Method::GET, "/v1/device/me", None, &[])
            .await?;
        if response.status.is_success() {
            Ok(())
        } else {
            Err(auth::server_error(&response))
        }
    }
}

struct Inner {
    auth: DeviceAuth,
    slots: activation::Slots,
    delivery: DeliveryConfig,
    store: Arc<Store>,
    queue: UploadQueue,
    telemetry: Telemetry,
    device_state: Arc<dyn DeviceStateProvider>,
    upload_policy: UploadPolicy,
    download_policy: DownloadPolicy,
}

/// The sync entry point. Cheap to clone; clones share one runtime, one HTTP client and one
/// auth state.
#[derive(Clone)]
pub struct SyncClient {
    inner: Arc<Inner>,
    runtime: Arc<OwnedRuntime>,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient").finish_non_exhaustive()
    }
}

impl SyncClient {
    /// Starts configuring a client for the control plane at `control_plane_url`
    /// (`https://host[:port]`).
    pub fn builder(control_plane_url: &str) -> SyncClientBuilder {
        SyncClientBuilder {
            base_url: control_plane_url.to_owned(),
            store: None,
            roots_pem: Vec::new(),
            pins: Vec::new(),
            device_key: None,
            device_state: None,
            upload_policy: UploadPolicy::default(),
            download_policy: DownloadPolicy::default(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            queue_limits: QueueLimits::default(),
            observer: None,
            refresh_margin: Duration::from_secs(auth::DEFAULT_REFRESH_MARGIN_SECS as u64),
            clock: Arc::new(SystemClock),
            health_check: None,
            delivery: DeliveryConfig::default(),
        }
    }

    /// Runs `work` on the SDK runtime and waits for it from async code. Dropping the returned
    /// future aborts the work (a cancelled caller stops its network requests).
    async fn on_runtime<T, F>(&self, work: impl FnOnce(Arc<Inner>) -> F) -> Result<T, SyncError>
    where
        F: Future<Output = Result<T, SyncError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut task = AbortOnDrop(self.runtime.get()?.spawn(work(self.inner.clone())));
        (&mut task.0).await.map_err(|_| SyncError::Runtime)?
    }

    /// Runs `work` on the SDK runtime and blocks until it is done. Fails with
    /// [`SyncError::BlockingInAsync`] when called from inside an async runtime.
    fn blocking<T, F>(&self, work: impl FnOnce(Arc<Inner>) -> F) -> Result<T, SyncError>
    where
        F: Future<Output = Result<T, SyncError>> + Send + 'static,
        T: Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SyncError::BlockingInAsync);
        }
        self.runtime.get()?.block_on(work(self.inner.clone()))
    }

    /// Enrolls the device with a single-use bootstrap token from the app's backend; returns
    /// the device id. A device that is already enrolled returns its id without a request; a
    /// revoked device gets a new identity key and enrolls afresh.
    pub fn enroll(&self, org_id: &str, bootstrap_token: &str) -> Result<String, SyncError> {
        let (org, token) = (org_id.to_owned(), bootstrap_token.to_owned());
        self.blocking(|inner| async move { inner.auth.enroll(&org, &token).await })
    }

    /// Async twin of [`enroll`](Self::enroll).
    pub async fn enroll_async(
        &self,
        org_id: &str,
        bootstrap_token: &str,
    ) -> Result<String, SyncError> {
        let (org, token) = (org_id.to_owned(), bootstrap_token.to_owned());
        self.on_runtime(|inner| async move { inner.auth.enroll(&org, &token).await })
            .await
    }

    /// Where the device stands with the control plane.
    pub fn state(&self) -> Result<SyncState, SyncError> {
        self.blocking(|inner| async move { Ok(inner.auth.state().await) })
    }

    /// Async twin of [`state`](Self::state).
    pub async fn state_async(&self) -> Result<SyncState, SyncError> {
        self.on_runtime(|inner| async move { Ok(inner.auth.state().await) })
            .await
    }

    /// Asks the control plane whether the credentials are still good (`GET /v1/device/me`),
    /// refreshing them if needed. A revoked device fails with [`SyncError::Revoked`].
    pub fn check_credentials(&self) -> Result<(), SyncError> {
        self.blocking(|inner| async move { inner.check_credentials().await })
    }

    /// Async twin of [`check_credentials`](Self::check_credentials).
    pub async fn check_credentials_async(&self) -> Result<(), SyncError> {
        self.on_runtime(|inner| async move { inner.check_credentials().await })
            .await
    }

    /// Fetches the signed desired state and installs what it names: verify, download
    /// (resumable), decrypt in memory, health check, activate per the activation policy.
    /// Rejections are reported per slot (and counted as security events); the installed
    /// model keeps serving.
    pub fn update_models(&self) -> Result<DeliveryReport, SyncError> {
        self.blocking(|inner| async move { inner.update_models().await })
    }

    /// Async twin of [`update_models`](Self::update_models).
    pub async fn update_models_async(&self) -> Result<DeliveryReport, SyncError> {
        self.on_runtime(|inner| async move { inner.update_models().await })
            .await
    }

    /// The model serving in `slot`, if any (decrypted from the store on first use).
    pub fn active_model(&self, slot: &str) -> Result<Option<ActiveModel>, SyncError> {
        self.inner.slots.active(slot)
    }

    /// Activates the staged version of `slot` ([`ActivationPolicy::Manual`]): load, health
    /// check, swap; on failure the current version keeps serving.
    pub fn activate_staged(&self, slot: &str) -> Result<SlotChange, SyncError> {
        let change = self.inner.slots.activate_with(slot, None)?;
        self.inner.report_change(slot, &change);
        Ok(change)
    }

    /// The app saw the model in `slot` crash repeatedly: go back to the previous version
    /// and report it.
    pub fn report_crash_loop(&self, slot: &str) -> Result<SlotChange, SyncError> {
        let change = self.inner.slots.roll_back(slot)?;
        self.inner.report_change(slot, &change);
        Ok(change)
    }

    /// The recorder of declared metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// The encrypted store the client uses.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Switches telemetry on or off (persisted). Off clears the queue and what was recorded
    /// and stops recording.
    pub fn set_telemetry_enabled(&self, enabled: bool) -> Result<(), SyncError> {
        upload::set_telemetry_enabled(
            &self.inner.store,
            &self.inner.queue,
            &self.inner.telemetry,
            enabled,
        )
    }

    /// Batches queued for upload.
    pub fn queued_batches(&self) -> Result<u64, SyncError> {
        Ok(self.inner.queue.len()?)
    }

    /// One sync: closes the current telemetry window into a batch (with a health snapshot,
    /// which is also the heartbeat) and uploads the queue if the policy allows. A revoked
    /// device fails with [`SyncError::Revoked`] and stays revoked.
    pub fn sync(&self) -> Result<UploadReport, SyncError> {
        self.blocking(|inner| async move { inner.sync().await })
    }

    /// Async twin of [`sync`](Self::sync).
    pub async fn sync_async(&self) -> Result<UploadReport, SyncError> {
        self.on_runtime(|inner| async move { inner.sync().await })
            .await
    }
}
