//! A software passkey authenticator and WebAuthn client for tests: what a browser and a
//! platform authenticator do with the server's options, done with 1Password's `passkey` crates
//! (real origin and RP id checks, `clientDataJSON`, authenticator data, ES256 signatures).
//!
//! [`SoftAuthenticator::register`] takes the `PublicKeyCredentialCreationOptions` JSON the
//! server produced and returns the `PublicKeyCredential` JSON a browser would post back;
//! [`SoftAuthenticator::authenticate`] does the same for sign-in. Knobs turn it into an
//! attacker's or a broken device: a forged origin in `clientDataJSON`, authenticator data made
//! for another RP id, no user verification, exclusion lists ignored, a cloned device.

#![allow(dead_code)]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passkey::authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey::client::{Client, DefaultClientData, DefaultClientDataWithCustomHash};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey::types::ctap2::{Aaguid, Ctap2Error, StatusCode};
use passkey::types::webauthn::{
    CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialDescriptor,
};
use serde_json::{Value, json};
use url::Url;

/// Credentials kept by one software authenticator, by credential id.
#[derive(Clone, Default)]
pub struct SoftStore(HashMap<Vec<u8>, Passkey>);

#[async_trait::async_trait]
impl CredentialStore for SoftStore {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        allow: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        // With an allow list, credential ids are looked up as given (ids are unique), so the
        // `for_rp_id` knob can sign for another RP; without one, only this RP's discoverable
        // credentials are offered, as a real authenticator does.
        let found: Vec<Passkey> = match allow {
            Some(list) => list
                .iter()
                .filter_map(|d| self.0.get(&*d.id))
                .cloned()
                .collect(),
            None => self
                .0
                .values()
                .filter(|pk| pk.rp_id == rp_id && pk.user_handle.is_some())
                .cloned()
                .collect(),
        };
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.0.insert(cred.credential_id.to_vec(), cred);
        Ok(())
    }

    async fn update_credential(&mut self, cred: &Passkey) -> Result<(), StatusCode> {
        self.0.insert(cred.credential_id.to_vec(), cred.clone());
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::ForcedDiscoverable,
        }
    }
}

/// The person at the device: always present, verified (PIN or biometrics) only when the device
/// can verify and the client asked for it.
struct SoftUser {
    can_verify: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for SoftUser {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: verification && self.can_verify,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        self.can_verify.then_some(true)
    }
}

/// A browser with a software passkey authenticator on `origin`.
#[derive(Clone)]
pub struct SoftAuthenticator {
    origin: Url,
    store: SoftStore,
    can_verify: bool,
    downgrade_uv: bool,
    counter: bool,
    claimed_origin: Option<String>,
    rp_id_override: Option<String>,
    ignore_exclusions: bool,
}

impl SoftAuthenticator {
    /// An honest browser on `origin` with a user-verifying authenticator without counters.
    pub fn new(origin: &Url) -> Self {
        Self {
            origin: origin.clone(),
            store: SoftStore::default(),
            can_verify: true,
            downgrade_uv: false,
            counter: false,
            claimed_origin: None,
            rp_id_override: None,
            ignore_exclusions: false,
        }
    }

    /// New credentials keep a signature counter that each assertion increments.
    pub fn with_signature_counter(mut self) -> Self {
        self.counter = true;
        self
    }

    /// An authenticator that cannot verify the user, behind a client that ignores the RP's
    /// `userVerification: required` (asks for `discouraged` instead), so responses lack UV.
    pub fn without_user_verification(mut self) -> Self {
        self.can_verify = false;
        self.downgrade_uv = true;
        self
    }

    /// An authenticator that cannot verify the user behind an honest client: it refuses
    /// requests that require user verification.
    pub fn unable_to_verify(mut self) -> Self {
        self.can_verify = false;
        self
    }

    /// A compromised client that writes `origin` into `clientDataJSON` (the authenticator signs
    /// the hash of that forged client data).
    pub fn claiming_origin(mut self, origin: &str) -> Self {
        self.claimed_origin = Some(origin.to_owned());
        self
    }

    /// A client on `https://{rp_id}` asking for authenticator data for `rp_id`, while its
    /// `clientDataJSON` still claims the real origin (and an authenticator that signs with a
    /// credential of another RP when asked by id).
    pub fn for_rp_id(mut self, rp_id: &str) -> Self {
        self.rp_id_override = Some(rp_id.to_owned());
        self
    }

    /// A client that drops `excludeCredentials` before asking the authenticator.
    pub fn ignoring_exclusions(mut self) -> Self {
        self.ignore_exclusions = true;
        self
    }

    /// The same knobs with back to honest behaviour, keeping the credentials.
    pub fn honest(&self) -> Self {
        Self {
            can_verify: true,
            downgrade_uv: false,
            claimed_origin: None,
            rp_id_override: None,
            ignore_exclusions: false,
            ..self.clone()
        }
    }

    /// A copy of this device, credentials and counters included: a cloned authenticator.
    pub fn clone_device(&self) -> Self {
        self.clone()
    }

    /// How many credentials this authenticator holds.
    pub fn credential_count(&self) -> usize {
        self.store.0.len()
    }

    /// Runs `navigator.credentials.create()` with the server's options JSON and returns the
    /// `PublicKeyCredential` JSON (`toJSON()` form) the browser would send, or the client's error.
    pub async fn register(&mut self, options: &Value) -> Result<Value, String> {
        let mut options = options.clone();
        if self.downgrade_uv {
            options["publicKey"]["authenticatorSelection"]["userVerification"] =
                json!("discouraged");
        }
        if self.ignore_exclusions
            && let Some(pk) = options["publicKey"].as_object_mut()
        {
            pk.remove("excludeCredentials");
        }
        // CTAP2 makeCredential step 1, which passkey-authenticator 0.6 only prompts for
        // without failing: a credential of the exclusion list on this device ends the
        // ceremony with CTAP2_ERR_CREDENTIAL_EXCLUDED.
        let excluded = options["publicKey"]["excludeCredentials"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str())
            .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
            .any(|id| self.store.0.contains_key(&id));
        if excluded {
            return Err("authenticator: CredentialExcluded".to_owned());
        }
        let (origin, rp_id) = self.client_origin();
        if let Some(rp_id) = &rp_id {
            options["publicKey"]["rp"]["id"] = json!(rp_id);
        }
        let custom = self.forged_client_data("webauthn.create", &options);
        let request: CredentialCreationOptions =
            serde_json::from_value(options).map_err(|e| format!("options: {e}"))?;

        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let created = match &custom {
            Some((_, hash)) => {
                client
                    .register(
                        &origin,
                        request,
                        DefaultClientDataWithCustomHash(hash.clone()),
                    )
                    .await
            }
            None => client.register(&origin, request, DefaultClientData).await,
        };
        self.store = client.authenticator().store().clone();
        let created = created.map_err(|e| format!("client: {e:?}"))?;

        let client_data = match custom {
            Some((json, _)) => json,
            None => created.response.client_data_json.to_vec(),
        };
        Ok(json!({
            "id": created.id,
            "rawId": b64(&created.raw_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&created.response.attestation_object),
                "transports": serde_json::to_value(&created.response.transports)
                    .unwrap_or(Value::Null),
            },
            "clientExtensionResults": serde_json::to_value(&created.client_extension_results)
                .unwrap_or_else(|_| json!({})),
        }))
    }

    /// Runs `navigator.credentials.get()` with the server's options JSON and returns the
    /// assertion JSON the browser would send, or the client's error.
    pub async fn authenticate(&mut self, options: &Value) -> Result<Value, String> {
        let mut options = options.clone();
        if self.downgrade_uv {
            options["publicKey"]["userVerification"] = json!("discouraged");
        }
        let (origin, rp_id) = self.client_origin();
        if let Some(rp_id) = &rp_id {
            options["publicKey"]["rpId"] = json!(rp_id);
        }
        let custom = self.forged_client_data("webauthn.get", &options);
        let request: CredentialRequestOptions =
            serde_json::from_value(options).map_err(|e| format!("options: {e}"))?;

        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let asserted = match &custom {
            Some((_, hash)) => {
                client
                    .authenticate(
                        &origin,
                        request,
                        DefaultClientDataWithCustomHash(hash.clone()),
                    )
                    .await
            }
            None => {
                client
                    .authenticate(&origin, request, DefaultClientData)
                    .await
            }
        };
        self.store = client.authenticator().store().clone();
        let asserted = asserted.map_err(|e| format!("client: {e:?}"))?;

        let client_data = match custom {
            Some((json, _)) => json,
            None => asserted.response.client_data_json.to_vec(),
        };
        Ok(json!({
            "id": asserted.id,
            "rawId": b64(&asserted.raw_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&asserted.response.authenticator_data),
                "signature": b64(&asserted.response.signature),
                "userHandle": asserted.response.user_handle.as_ref().map(|h| b64(h)),
            },
            "clientExtensionResults": serde_json::to_value(&asserted.client_extension_results)
                .unwrap_or_else(|_| json!({})),
        }))
    }

    fn authenticator(&self) -> Authenticator<SoftStore, SoftUser, RustCryptoBackend> {
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            self.store.clone(),
            SoftUser {
                can_verify: self.can_verify,
            },
            RustCryptoBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(self.counter);
        authenticator
    }

    /// The origin the client runs on and the RP id it asks for, if not the origin's host.
    fn client_origin(&self) -> (Url, Option<String>) {
        match &self.rp_id_override {
            Some(rp_id) => {
                let origin = Url::parse(&format!("https://{rp_id}")).expect("rp id is a host");
                (origin, Some(rp_id.clone()))
            }
            None => (self.origin.clone(), None),
        }
    }

    /// The `clientDataJSON` and its SHA-256 when the knobs make the client data differ from
    /// what the client would write on its own origin.
    fn forged_client_data(&self, ty: &str, options: &Value) -> Option<(Vec<u8>, Vec<u8>)> {
        let origin = match (&self.claimed_origin, &self.rp_id_override) {
            (Some(claimed), _) => claimed.clone(),
            (None, Some(_)) => self.origin.as_str().trim_end_matches('/').to_owned(),
            (None, None) => return None,
        };
        let json = serde_json::to_vec(&json!({
            "type": ty,
            "challenge": options["publicKey"]["challenge"],
            "origin": origin,
            "crossOrigin": false,
        }))
        .expect("client data serializes");
        let hash = ring::digest::digest(&ring::digest::SHA256, &json)
            .as_ref()
            .to_vec();
        Some((json, hash))
    }
}

/// Base64url without padding, as WebAuthn JSON encodes bytes.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Flips one bit of byte `index` (from the end when negative) of the base64url field at JSON
/// `pointer` (e.g. `/response/signature`).
pub fn flip_byte(response: &mut Value, pointer: &str, index: isize) {
    let field = response.pointer_mut(pointer).expect("field exists");
    let mut bytes = URL_SAFE_NO_PAD
        .decode(field.as_str().expect("field is a string"))
        .expect("field is base64url");
    let at = if index < 0 {
        bytes.len() - index.unsigned_abs()
    } else {
        index as usize
    };
    bytes[at] ^= 0x01;
    *field = json!(b64(&bytes));
}
