//! Passkey (WebAuthn) ceremonies: registering a passkey for a person and signing in with one.
//!
//! [`PasskeyService`] is the entry point. It holds no storage: every ceremony returns the options
//! for the browser (`navigator.credentials.create()` / `.get()`) as JSON and an opaque ceremony
//! state as a JSON string, which the caller keeps **server side** with its expiry and hands back,
//! once, with the browser's response. Registered passkeys come back as [`StoredPasskey`]: a
//! credential id and an opaque JSON record to persist beside the user.
//!
//! The ceremonies are those of `webauthn-rs` for passkeys: user verification is required (a
//! response without the UV flag is refused), no attestation is asked for, ES256 and the other
//! algorithms `webauthn-rs` deems secure are offered. On top of `webauthn-rs` this module adds:
//!
//! - an expiry in the ceremony state (a stale state is refused even if the caller kept it);
//! - single use of a ceremony state within this process (a second finish with the same state is
//!   refused). The caller must still take the state out of its store atomically: the in-memory
//!   guard does not survive a restart and is not shared between processes;
//! - errors by cause ([`PasskeyError`]) that carry no user data.
//!
//! The caller must check that a newly registered credential id is not already registered to
//! any user before storing it, and must persist `updated_passkey_json` after a sign-in so that
//! counters keep moving forward (a regressed counter is how a cloned authenticator shows).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::replay::ReplayCache;

/// How long a ceremony stays open unless configured otherwise: five minutes, the WebAuthn
/// Level 3 recommendation, also sent to the browser as the `timeout`.
pub const DEFAULT_CEREMONY_LIFETIME: Duration = Duration::from_secs(300);

/// Why a passkey ceremony failed. Messages carry no user data: no names, no credential ids, no
/// bytes of the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    /// The browser's response is not a WebAuthn response (bad JSON, base64, CBOR or
    /// authenticator data).
    #[error("passkey response is malformed")]
    MalformedResponse,
    /// `clientDataJSON` names an origin other than the server's, or a cross-origin context.
    #[error("passkey response was made for another origin")]
    WrongOrigin,
    /// The authenticator data was made for another relying party id.
    #[error("passkey response was made for another relying party")]
    WrongRpId,
    /// The response answers another challenge than the one in this ceremony state, or is of
    /// the wrong kind (a sign-in response to a registration).
    #[error("passkey response does not answer this ceremony's challenge")]
    ChallengeMismatch,
    /// The authenticator did not verify the user (PIN or biometrics), or the user was not
    /// present. Passkeys require both.
    #[error("passkey response lacks user verification")]
    UserNotVerified,
    /// The credential is not among the ones allowed for this ceremony (not registered to this
    /// user, or unknown).
    #[error("passkey credential is not known for this sign-in")]
    UnknownCredential,
    /// The assertion signature does not verify with the registered public key.
    #[error("passkey signature does not verify")]
    SignatureInvalid,
    /// The authenticator's signature counter did not move forward: the credential may have
    /// been cloned. The caller should alert and may disable the passkey.
    #[error("passkey signature counter did not increase; the authenticator may be cloned")]
    CounterRegressed,
    /// The new credential is refused: it is in the exclusion list (already registered to this
    /// user), uses an algorithm that was not offered, or declares inconsistent backup flags.
    #[error("passkey credential is refused for registration")]
    CredentialRefused,
    /// The ceremony state is not one this service issued for this kind of ceremony.
    #[error("passkey ceremony state is invalid")]
    InvalidState,
    /// The ceremony state is past its expiry.
    #[error("passkey ceremony has expired")]
    CeremonyExpired,
    /// The ceremony state was already used to finish a ceremony.
    #[error("passkey ceremony was already used")]
    CeremonyReused,
    /// A stored passkey record cannot be read (it was not produced by this module).
    #[error("stored passkey record is unreadable")]
    StoredPasskeyUnreadable,
    /// The user name given for registration is not acceptable to WebAuthn.
    #[error("user name is not acceptable for a passkey")]
    InvalidUserName,
    /// The relying party configuration is invalid (the RP id is not the origin's host or a
    /// parent domain of it, or the origin is not a URL with a host).
    #[error("passkey relying party configuration is invalid")]
    Config,
    /// A failure inside the WebAuthn library that no input explains.
    #[error("passkey internal error")]
    Internal,
}

impl PasskeyError {
    /// Maps an error from finishing a ceremony: anything not named is a response this server
    /// cannot accept as well formed.
    fn from_finish(err: WebauthnError) -> Self {
        use WebauthnError as W;
        match err {
            W::InvalidRPOrigin | W::CredentialCrossOrigin => Self::WrongOrigin,
            W::InvalidRPIDHash => Self::WrongRpId,
            W::MismatchedChallenge | W::ChallengeNotFound | W::InvalidClientDataType => {
                Self::ChallengeMismatch
            }
            W::UserNotVerified | W::UserNotPresent | W::InconsistentUserVerificationPolicy => {
                Self::UserNotVerified
            }
            W::CredentialNotFound | W::InvalidUserUniqueId => Self::UnknownCredential,
            W::AuthenticationFailure | W::SignatureInvalid => Self::SignatureInvalid,
            W::CredentialPossibleCompromise => Self::CounterRegressed,
            // webauthn-rs reports an excluded credential as `CredentialAlteredAlgFromRequest`.
            W::CredentialAlteredAlgFromRequest
            | W::CredentialExcludedFromRequest
            | W::CredentialAlreadyExists
            | W::CredentialInsecureCryptography
            | W::CredentialMayNotBeHardwareBound
            | W::CredentialBackupEligibilityInconsistent => Self::CredentialRefused,
            W::Configuration => Self::Config,
            _ => Self::MalformedResponse,
        }
    }

    /// Maps an error from starting a ceremony, where only configuration and input can be wrong.
    fn from_start(err: WebauthnError) -> Self {
        match err {
            WebauthnError::InvalidUsername => Self::InvalidUserName,
            WebauthnError::Configuration => Self::Config,
            _ => Self::Internal,
        }
    }
}

/// A registered passkey as the caller stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// The credential id, base64url without padding, as the browser reports it in `id`. Unique
    /// per passkey; index it to find the passkey of a discoverable sign-in.
    pub credential_id: String,
    /// The `webauthn-rs` passkey record (public key, counter, backup flags) as JSON. Opaque:
    /// store it as is and replace it with `updated_passkey_json` after a sign-in.
    pub passkey_json: String,
}

impl StoredPasskey {
    fn from_passkey(passkey: &Passkey) -> Result<Self, PasskeyError> {
        Ok(Self {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice()),
            passkey_json: serde_json::to_string(passkey).map_err(|_| PasskeyError::Internal)?,
        })
    }

    fn passkey(&self) -> Result<Passkey, PasskeyError> {
        let passkey: Passkey = serde_json::from_str(&self.passkey_json)
            .map_err(|_| PasskeyError::StoredPasskeyUnreadable)?;
        if URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice()) != self.credential_id {
            return Err(PasskeyError::StoredPasskeyUnreadable);
        }
        Ok(passkey)
    }
}

/// A successful sign-in with a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedPasskey {
    /// Which of the user's passkeys signed (base64url, as in [`StoredPasskey::credential_id`]).
    pub credential_id: String,
    /// The passkey record with its new counter or backup state, when they changed: the caller
    /// must persist it in place of the stored `passkey_json`.
    pub updated_passkey_json: Option<String>,
}

/// Asks the authenticator for a discoverable credential (`residentKey: required`). webauthn-rs
/// asks for `discouraged`, which platform authenticators ignore but security keys and
/// Chromium's virtual authenticator honour, making a passkey the username-less sign-in
/// ([`PasskeyService::start_discoverable_authentication`]) cannot find.
fn require_discoverable(options: &mut serde_json::Value) {
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".to_owned(), "required".into());
        selection.insert("requireResidentKey".to_owned(), true.into());
    }
}

/// A successful discoverable sign-in: who signed in and with which passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredPasskey {
    /// The user handle the passkey was registered with (the `user_handle` of
    /// [`PasskeyService::start_registration`]).
    pub user_handle: Uuid,
    /// The passkey that signed and its record to persist.
    pub passkey: AuthenticatedPasskey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CeremonyKind {
    Registration,
    Authentication,
    DiscoverableAuthentication,
}

/// The ceremony state the caller stores: which ceremony, when it ends, the `webauthn-rs` state.
#[derive(Serialize, Deserialize)]
struct CeremonyState<T> {
    kind: CeremonyKind,
    id: Uuid,
    expires_at_ms: i64,
    state: T,
}

/// The relying party: this server, its passkey ceremonies and their single-use guard.
///
/// Cheap to share behind an `Arc`; all methods take `&self`. Each call costs one or two
/// signature checks and a few small JSON (de)serializations.
pub struct PasskeyService {
    webauthn: Webauthn,
    rp_id: String,
    rp_name: String,
    origin: Url,
    lifetime: Duration,
    used: ReplayCache,
}

impl std::fmt::Debug for PasskeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyService")
            .field("rp_id", &self.rp_id)
            .field("origin", &self.origin.as_str())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl PasskeyService {
    /// A relying party `rp_id` (the host of `origin`, or a parent domain of it) named
    /// `rp_name` for people, accepting responses made on `origin` only (scheme, host and port,
    /// e.g. `https://localhost:8443`). Ceremonies last [`DEFAULT_CEREMONY_LIFETIME`].
    ///
    /// Fails with [`PasskeyError::Config`] when `rp_id` does not match `origin`.
    pub fn new(rp_id: &str, rp_name: &str, origin: &Url) -> Result<Self, PasskeyError> {
        Self::build(rp_id, rp_name, origin, DEFAULT_CEREMONY_LIFETIME)
    }

    /// The same service with ceremonies open for `lifetime` (sent to the browser as the
    /// `timeout` too).
    pub fn with_ceremony_lifetime(self, lifetime: Duration) -> Result<Self, PasskeyError> {
        Self::build(&self.rp_id, &self.rp_name, &self.origin, lifetime)
    }

    fn build(
        rp_id: &str,
        rp_name: &str,
        origin: &Url,
        lifetime: Duration,
    ) -> Result<Self, PasskeyError> {
        let webauthn = WebauthnBuilder::new(rp_id, origin)
            .map_err(|_| PasskeyError::Config)?
            .rp_name(rp_name)
            .timeout(lifetime)
            .build()
            .map_err(|_| PasskeyError::Config)?;
        let keep_secs = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 4);
        Ok(Self {
            webauthn,
            rp_id: rp_id.to_owned(),
            rp_name: rp_name.to_owned(),
            origin: origin.clone(),
            lifetime,
            used: ReplayCache::new(keep_secs.saturating_add(1)),
        })
    }

    /// The relying party id passkeys are bound to.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Starts registering a new passkey for the user `user_handle` (a stable random id, never
    /// an email; it is stored on the authenticator and returned by discoverable sign-ins).
    /// `user_name` and `display_name` are shown by the authenticator only. `exclude` lists the
    /// user's passkeys so the same authenticator is not registered twice.
    ///
    /// Returns the `PublicKeyCredentialCreationOptions` for the browser (the JSON of
    /// `CreationChallengeResponse`, `{"publicKey": {...}}`) and the ceremony state to keep.
    pub fn start_registration(
        &self,
        user_handle: Uuid,
        user_name: &str,
        display_name: &str,
        exclude: &[StoredPasskey],
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        let exclude = exclude
            .iter()
            .map(|stored| stored.passkey().map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<CredentialID>, _>>()?;
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_handle, user_name, display_name, exclude)
            .map_err(PasskeyError::from_start)?;
        let (mut options, state) = self.issue(CeremonyKind::Registration, &options, state)?;
        require_discoverable(&mut options);
        Ok((options, state))
    }

    /// Finishes a registration with the browser's `PublicKeyCredential` JSON (what
    /// `navigator.credentials.create()` returned, `toJSON()` form).
    pub fn finish_registration(
        &self,
        state: &str,
        response: &serde_json::Value,
    ) -> Result<StoredPasskey, PasskeyError> {
        let state: PasskeyRegistration = self.redeem(CeremonyKind::Registration, state)?;
        let response = RegisterPublicKeyCredential::deserialize(response)
            .map_err(|_| PasskeyError::MalformedResponse)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(PasskeyError::from_finish)?;
        StoredPasskey::from_passkey(&passkey)
    }

    /// Starts a sign-in (or a step-up) by a known user with one of `allowed`, the user's
    /// passkeys. Returns the `PublicKeyCredentialRequestOptions` for the browser (the JSON of
    /// `RequestChallengeResponse`) and the ceremony state to keep.
    ///
    /// Fails with [`PasskeyError::UnknownCredential`] when `allowed` is empty.
    pub fn start_authentication(
        &self,
        allowed: &[StoredPasskey],
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        if allowed.is_empty() {
            return Err(PasskeyError::UnknownCredential);
        }
        let passkeys = parse_all(allowed)?;
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(PasskeyError::from_start)?;
        self.issue(CeremonyKind::Authentication, &options, state)
    }

    /// Finishes a sign-in with the browser's assertion JSON. `allowed` is the same list the
    /// ceremony was started with, as currently stored (its records are used to compute the
    /// updated one).
    pub fn finish_authentication(
        &self,
        state: &str,
        response: &serde_json::Value,
        allowed: &[StoredPasskey],
    ) -> Result<AuthenticatedPasskey, PasskeyError> {
        let state: PasskeyAuthentication = self.redeem(CeremonyKind::Authentication, state)?;
        let response = PublicKeyCredential::deserialize(response)
            .map_err(|_| PasskeyError::MalformedResponse)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&response, &state)
            .map_err(PasskeyError::from_finish)?;
        for stored in allowed {
            let mut passkey = stored.passkey()?;
            if let Some(changed) = passkey.update_credential(&result) {
                return Ok(AuthenticatedPasskey {
                    credential_id: stored.credential_id.clone(),
                    updated_passkey_json: updated_json(changed, &passkey)?,
                });
            }
        }
        Err(PasskeyError::UnknownCredential)
    }

    /// Starts a sign-in where the browser offers the user's discoverable passkeys for this RP
    /// (no email typed first). The options ask for conditional mediation (autofill UI).
    ///
    /// Passkeys registered by [`start_registration`](Self::start_registration) are
    /// discoverable on platform and password-manager authenticators; a security key may have
    /// made a non-discoverable one, which only [`start_authentication`](Self::start_authentication)
    /// can use.
    pub fn start_discoverable_authentication(
        &self,
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(PasskeyError::from_start)?;
        self.issue(CeremonyKind::DiscoverableAuthentication, &options, state)
    }

    /// Finishes a discoverable sign-in. `lookup` gets the user handle and the credential id
    /// (base64url) the response claims and returns that user's stored passkey with this id, or
    /// `None`; the claim is then verified against it.
    pub fn finish_discoverable_authentication(
        &self,
        state: &str,
        response: &serde_json::Value,
        lookup: impl Fn(&Uuid, &str) -> Option<StoredPasskey>,
    ) -> Result<DiscoveredPasskey, PasskeyError> {
        let state: DiscoverableAuthentication =
            self.redeem(CeremonyKind::DiscoverableAuthentication, state)?;
        let response = PublicKeyCredential::deserialize(response)
            .map_err(|_| PasskeyError::MalformedResponse)?;
        let (user_handle, credential_id) = self
            .webauthn
            .identify_discoverable_authentication(&response)
            .map_err(|_| PasskeyError::UnknownCredential)?;
        let credential_id = URL_SAFE_NO_PAD.encode(credential_id);
        let stored = lookup(&user_handle, &credential_id).ok_or(PasskeyError::UnknownCredential)?;
        if stored.credential_id != credential_id {
            return Err(PasskeyError::UnknownCredential);
        }
        let mut passkey = stored.passkey()?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&response, state, &passkey)
            .map_err(PasskeyError::from_finish)?;
        let changed = passkey
            .update_credential(&result)
            .ok_or(PasskeyError::UnknownCredential)?;
        Ok(DiscoveredPasskey {
            user_handle,
            passkey: AuthenticatedPasskey {
                credential_id,
                updated_passkey_json: updated_json(changed, &passkey)?,
            },
        })
    }

    fn issue<O: Serialize, T: Serialize>(
        &self,
        kind: CeremonyKind,
        options: &O,
        state: T,
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        let lifetime_ms = i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        let envelope = CeremonyState {
            kind,
            id: Uuid::new_v4(),
            expires_at_ms: now_ms().saturating_add(lifetime_ms),
            state,
        };
        let options = serde_json::to_value(options).map_err(|_| PasskeyError::Internal)?;
        let state = serde_json::to_string(&envelope).map_err(|_| PasskeyError::Internal)?;
        Ok((options, state))
    }

    /// Reads a ceremony state of `kind`, refuses it when expired or already redeemed, and
    /// marks it redeemed: one attempt per state, successful or not.
    fn redeem<T: for<'de> Deserialize<'de>>(
        &self,
        kind: CeremonyKind,
        state: &str,
    ) -> Result<T, PasskeyError> {
        let envelope: CeremonyState<T> =
            serde_json::from_str(state).map_err(|_| PasskeyError::InvalidState)?;
        if envelope.kind != kind {
            return Err(PasskeyError::InvalidState);
        }
        let now = now_ms();
        if now >= envelope.expires_at_ms {
            return Err(PasskeyError::CeremonyExpired);
        }
        if !self
            .used
            .first_use("passkey-ceremony", &envelope.id.to_string(), now / 1000)
        {
            return Err(PasskeyError::CeremonyReused);
        }
        Ok(envelope.state)
    }
}

fn parse_all(stored: &[StoredPasskey]) -> Result<Vec<Passkey>, PasskeyError> {
    stored.iter().map(StoredPasskey::passkey).collect()
}

fn updated_json(changed: bool, passkey: &Passkey) -> Result<Option<String>, PasskeyError> {
    if !changed {
        return Ok(None);
    }
    serde_json::to_string(passkey)
        .map(Some)
        .map_err(|_| PasskeyError::Internal)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> PasskeyService {
        let origin = Url::parse("https://localhost:8443").unwrap();
        PasskeyService::new("localhost", "edgekeep", &origin).unwrap()
    }

    #[test]
    fn rp_id_must_match_origin() {
        let origin = Url::parse("https://edgekeep.example").unwrap();
        assert_eq!(
            PasskeyService::new("other.example", "edgekeep", &origin).unwrap_err(),
            PasskeyError::Config
        );
        assert!(PasskeyService::new("edgekeep.example", "edgekeep", &origin).is_ok());
    }

    #[test]
    fn registration_options_require_user_verification() {
        let (options, _) = service()
            .start_registration(Uuid::new_v4(), "someone", "Someone", &[])
            .unwrap();
        let selection = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    }

    #[test]
    fn state_of_one_kind_is_refused_by_another() {
        let service = service();
        let (_, state) = service
            .start_registration(Uuid::new_v4(), "someone", "Someone", &[])
            .unwrap();
        let err = service
            .finish_authentication(&state, &serde_json::json!({}), &[])
            .unwrap_err();
        assert_eq!(err, PasskeyError::InvalidState);
    }

    #[test]
    fn empty_allow_list_is_refused() {
        assert_eq!(
            service().start_authentication(&[]).unwrap_err(),
            PasskeyError::UnknownCredential
        );
    }

    #[test]
    fn unreadable_stored_passkey_is_an_error() {
        let stored = StoredPasskey {
            credential_id: "AAAA".into(),
            passkey_json: "{}".into(),
        };
        assert_eq!(
            service().start_authentication(&[stored]).unwrap_err(),
            PasskeyError::StoredPasskeyUnreadable
        );
    }
}
