//! Passkey ceremonies end to end with real crypto: the server's `PasskeyService` against a
//! software WebAuthn client and authenticator, honest and hostile.

#[path = "common/authenticator.rs"]
mod authenticator;

use std::collections::HashMap;
use std::time::Duration;

use authenticator::{SoftAuthenticator, flip_byte};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edgekeep_server::identity::passkeys::{PasskeyError, PasskeyService, StoredPasskey};
use proptest::prelude::*;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

const ORIGIN: &str = "https://localhost:8443";

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

fn service() -> PasskeyService {
    PasskeyService::new("localhost", "edgekeep", &origin()).unwrap()
}

fn device() -> SoftAuthenticator {
    SoftAuthenticator::new(&origin())
}

/// Registers a passkey on `device` for `user`, excluding `existing`.
async fn register(
    service: &PasskeyService,
    device: &mut SoftAuthenticator,
    user: Uuid,
    existing: &[StoredPasskey],
) -> StoredPasskey {
    let (options, state) = service
        .start_registration(user, "someone@example.com", "Someone", existing)
        .unwrap();
    let response = device.register(&options).await.unwrap();
    service.finish_registration(&state, &response).unwrap()
}

/// Starts a sign-in with `allowed` and lets `device` answer; returns state and response.
async fn assertion(
    service: &PasskeyService,
    device: &mut SoftAuthenticator,
    allowed: &[StoredPasskey],
) -> (String, Value) {
    let (options, state) = service.start_authentication(allowed).unwrap();
    let response = device.authenticate(&options).await.unwrap();
    (state, response)
}

#[tokio::test]
async fn register_then_authenticate() {
    let service = service();
    let mut device = device();
    let passkey = register(&service, &mut device, Uuid::new_v4(), &[]).await;
    assert_eq!(device.credential_count(), 1);

    let (state, response) = assertion(&service, &mut device, std::slice::from_ref(&passkey)).await;
    assert_eq!(response["id"], passkey.credential_id);
    let signed = service
        .finish_authentication(&state, &response, std::slice::from_ref(&passkey))
        .unwrap();
    assert_eq!(signed.credential_id, passkey.credential_id);
    assert_eq!(
        signed.updated_passkey_json, None,
        "no counter, nothing to persist"
    );
}

#[tokio::test]
async fn options_are_the_webauthn_json_the_browser_expects() {
    let service = service();
    let user = Uuid::new_v4();
    let (options, _) = service
        .start_registration(user, "someone@example.com", "Someone", &[])
        .unwrap();
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["rp"]["name"], "edgekeep");
    assert_eq!(pk["user"]["id"], URL_SAFE_NO_PAD.encode(user.as_bytes()));
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
    assert_eq!(pk["attestation"], "none");
    assert!(
        pk["challenge"].as_str().unwrap().len() >= 43,
        "at least 32 random bytes"
    );
    assert!(
        pk["pubKeyCredParams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["alg"] == -7)
    );

    let mut device = device();
    let passkey = register(&service, &mut device, user, &[]).await;
    let (options, _) = service
        .start_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(
        options["publicKey"]["allowCredentials"][0]["id"],
        passkey.credential_id
    );
}

#[tokio::test]
async fn several_passkeys_per_user_each_authenticate() {
    let service = service();
    let user = Uuid::new_v4();
    let mut laptop = device();
    let mut phone = device();
    let first = register(&service, &mut laptop, user, &[]).await;
    let second = register(&service, &mut phone, user, std::slice::from_ref(&first)).await;
    assert_ne!(first.credential_id, second.credential_id);
    let allowed = [first.clone(), second.clone()];

    for (device, expected) in [(&mut laptop, &first), (&mut phone, &second)] {
        let (state, response) = assertion(&service, device, &allowed).await;
        let signed = service
            .finish_authentication(&state, &response, &allowed)
            .unwrap();
        assert_eq!(&signed.credential_id, &expected.credential_id);
    }
}

#[tokio::test]
async fn excluded_credential_is_refused_at_registration() {
    let service = service();
    let user = Uuid::new_v4();
    let mut laptop = device();
    let first = register(&service, &mut laptop, user, &[]).await;

    let (options, _) = service
        .start_registration(
            user,
            "someone@example.com",
            "Someone",
            std::slice::from_ref(&first),
        )
        .unwrap();
    assert!(
        laptop.register(&options).await.is_err(),
        "an honest authenticator refuses to register twice"
    );

    let (options, state) = service
        .start_registration(
            user,
            "someone@example.com",
            "Someone",
            std::slice::from_ref(&first),
        )
        .unwrap();
    let mut careless = laptop.clone().ignoring_exclusions();
    let response = careless.register(&options).await.unwrap();
    // A careless client makes a new credential on the same device; only the exact excluded
    // credential id is refused by the server, which this one is not.
    assert_ne!(response["id"], first.credential_id);
    service.finish_registration(&state, &response).unwrap();
}

#[tokio::test]
async fn tampered_assertions_are_refused() {
    let service = service();
    let mut device = device();
    let passkey = register(&service, &mut device, Uuid::new_v4(), &[]).await;
    let allowed = std::slice::from_ref(&passkey);

    // clientDataJSON still valid JSON with the right challenge and origin, but not what
    // was signed.
    let (state, mut response) = assertion(&service, &mut device, allowed).await;
    let raw = URL_SAFE_NO_PAD
        .decode(response["response"]["clientDataJSON"].as_str().unwrap())
        .unwrap();
    let mut client_data: Value = serde_json::from_slice(&raw).unwrap();
    client_data["tokenBinding"] = json!({"status": "supported"});
    response["response"]["clientDataJSON"] =
        json!(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&client_data).unwrap()));
    assert_eq!(
        service.finish_authentication(&state, &response, allowed),
        Err(PasskeyError::SignatureInvalid)
    );

    // One bit anywhere in clientDataJSON.
    let (state, mut response) = assertion(&service, &mut device, allowed).await;
    flip_byte(&mut response, "/response/clientDataJSON", 20);
    assert!(
        service
            .finish_authentication(&state, &response, allowed)
            .is_err()
    );

    // The signature counter (last byte of authenticator data).
    let (state, mut response) = assertion(&service, &mut device, allowed).await;
    flip_byte(&mut response, "/response/authenticatorData", -1);
    assert_eq!(
        service.finish_authentication(&state, &response, allowed),
        Err(PasskeyError::SignatureInvalid)
    );

    // The RP id hash (first byte of authenticator data).
    let (state, mut response) = assertion(&service, &mut device, allowed).await;
    flip_byte(&mut response, "/response/authenticatorData", 0);
    assert_eq!(
        service.finish_authentication(&state, &response, allowed),
        Err(PasskeyError::WrongRpId)
    );

    // The signature itself.
    let (state, mut response) = assertion(&service, &mut device, allowed).await;
    flip_byte(&mut response, "/response/signature", -1);
    assert_eq!(
        service.finish_authentication(&state, &response, allowed),
        Err(PasskeyError::SignatureInvalid)
    );
}

#[tokio::test]
async fn wrong_origin_is_refused() {
    let service = service();
    let user = Uuid::new_v4();

    // An honest browser on another site cannot even use the RP id. (passkey-client lets any
    // origin use `localhost` once insecure localhost is allowed, so this uses a real domain.)
    let public = PasskeyService::new(
        "edgekeep.example",
        "edgekeep",
        &Url::parse("https://edgekeep.example").unwrap(),
    )
    .unwrap();
    let mut phished = SoftAuthenticator::new(&Url::parse("https://evil.example").unwrap());
    let (options, _) = public
        .start_registration(user, "someone@example.com", "Someone", &[])
        .unwrap();
    let refused = phished.register(&options).await.unwrap_err();
    assert!(refused.contains("OriginRpMissmatch"), "{refused}");

    // A compromised client that forges the origin in clientDataJSON.
    let mut forger = device().claiming_origin("https://evil.example");
    let (options, state) = service
        .start_registration(user, "someone@example.com", "Someone", &[])
        .unwrap();
    let response = forger.register(&options).await.unwrap();
    assert_eq!(
        service.finish_registration(&state, &response),
        Err(PasskeyError::WrongOrigin)
    );

    // Same host, another port: another origin.
    let mut device = device();
    let passkey = register(&service, &mut device, user, &[]).await;
    let mut other_port = device.clone().claiming_origin("https://localhost:9443");
    let (state, response) =
        assertion(&service, &mut other_port, std::slice::from_ref(&passkey)).await;
    assert_eq!(
        service.finish_authentication(&state, &response, &[passkey]),
        Err(PasskeyError::WrongOrigin)
    );
}

#[tokio::test]
async fn wrong_rp_id_is_refused() {
    let service = service();
    let user = Uuid::new_v4();

    let mut other_rp = device().for_rp_id("evil.example");
    let (options, state) = service
        .start_registration(user, "someone@example.com", "Someone", &[])
        .unwrap();
    let response = other_rp.register(&options).await.unwrap();
    assert_eq!(
        service.finish_registration(&state, &response),
        Err(PasskeyError::WrongRpId)
    );

    let mut device = device();
    let passkey = register(&service, &mut device, user, &[]).await;
    let mut relayed = device.clone().for_rp_id("evil.example");
    let (state, response) = assertion(&service, &mut relayed, std::slice::from_ref(&passkey)).await;
    assert_eq!(
        service.finish_authentication(&state, &response, &[passkey]),
        Err(PasskeyError::WrongRpId)
    );
}

#[tokio::test]
async fn replayed_assertions_are_refused() {
    let service = service();
    let mut device = device();
    let passkey = register(&service, &mut device, Uuid::new_v4(), &[]).await;
    let allowed = std::slice::from_ref(&passkey);

    let (state, response) = assertion(&service, &mut device, allowed).await;
    service
        .finish_authentication(&state, &response, allowed)
        .unwrap();
    assert_eq!(
        service.finish_authentication(&state, &response, allowed),
        Err(PasskeyError::CeremonyReused),
        "the same state and response, twice"
    );

    let (_, fresh_state) = service.start_authentication(allowed).unwrap();
    assert_eq!(
        service.finish_authentication(&fresh_state, &response, allowed),
        Err(PasskeyError::ChallengeMismatch),
        "an old response against a new challenge"
    );

    let (options, state) = service
        .start_registration(Uuid::new_v4(), "someone@example.com", "Someone", &[])
        .unwrap();
    let registration = device.register(&options).await.unwrap();
    service.finish_registration(&state, &registration).unwrap();
    assert_eq!(
        service.finish_registration(&state, &registration),
        Err(PasskeyError::CeremonyReused)
    );
}

#[tokio::test]
async fn a_failed_attempt_uses_up_the_ceremony() {
    let service = service();
    let mut device = device();
    let passkey = register(&service, &mut device, Uuid::new_v4(), &[]).await;
    let allowed = std::slice::from_ref(&passkey);

    let (state, response) = assertion(&service, &mut device, allowed).await;
    let mut broken = response.clone();
    flip_byte(&mut broken, "/response/signature", -1);
    assert!(
        service
            .finish_authentication(&state, &broken, allowed)
            .is_err()
    );
    assert_eq!(
        service.finish_authentication(&state, &response, allowed),
        Err(PasskeyError::CeremonyReused)
    );
}

#[tokio::test]
async fn expired_ceremonies_are_refused() {
    let lasting = service();
    let mut device = device();
    let passkey = register(&lasting, &mut device, Uuid::new_v4(), &[]).await;

    let instant = service().with_ceremony_lifetime(Duration::ZERO).unwrap();
    let (options, state) = instant
        .start_registration(Uuid::new_v4(), "someone@example.com", "Someone", &[])
        .unwrap();
    let response = device.register(&options).await.unwrap();
    assert_eq!(
        instant.finish_registration(&state, &response),
        Err(PasskeyError::CeremonyExpired)
    );

    let (state, response) = assertion(&instant, &mut device, std::slice::from_ref(&passkey)).await;
    assert_eq!(
        instant.finish_authentication(&state, &response, &[passkey]),
        Err(PasskeyError::CeremonyExpired)
    );
}

#[tokio::test]
async fn another_users_ceremony_state_is_refused() {
    let service = service();
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut alice_device = device();
    let mut bob_device = device();

    // Registration: Alice's response finished with Bob's state.
    let (alice_options, _) = service
        .start_registration(alice, "alice@example.com", "Alice", &[])
        .unwrap();
    let (_, bob_state) = service
        .start_registration(bob, "bob@example.com", "Bob", &[])
        .unwrap();
    let response = alice_device.register(&alice_options).await.unwrap();
    assert_eq!(
        service.finish_registration(&bob_state, &response),
        Err(PasskeyError::ChallengeMismatch)
    );

    let alice_key = register(&service, &mut alice_device, alice, &[]).await;
    let bob_key = register(&service, &mut bob_device, bob, &[]).await;

    // Sign-in: Alice's assertion for her own challenge, finished with Bob's state.
    let (_, alice_response) = assertion(
        &service,
        &mut alice_device,
        std::slice::from_ref(&alice_key),
    )
    .await;
    let (_, bob_state) = service
        .start_authentication(std::slice::from_ref(&bob_key))
        .unwrap();
    // A state that also allows Alice's passkey (say Bob's step-up listing both) still holds
    // Bob's challenge.
    let (_, bob_state_2) = service
        .start_authentication(&[bob_key.clone(), alice_key.clone()])
        .unwrap();
    // webauthn-rs looks the credential up among the allowed ones before the challenge.
    assert_eq!(
        service.finish_authentication(&bob_state, &alice_response, std::slice::from_ref(&bob_key)),
        Err(PasskeyError::UnknownCredential)
    );
    assert_eq!(
        service.finish_authentication(
            &bob_state_2,
            &alice_response,
            std::slice::from_ref(&alice_key)
        ),
        Err(PasskeyError::ChallengeMismatch)
    );

    // Alice's passkey signing Bob's challenge: not among Bob's credentials.
    let (mut bob_options, bob_state) = service
        .start_authentication(std::slice::from_ref(&bob_key))
        .unwrap();
    bob_options["publicKey"]["allowCredentials"] = json!([{
        "type": "public-key",
        "id": alice_key.credential_id,
    }]);
    let response = alice_device.authenticate(&bob_options).await.unwrap();
    assert_eq!(
        service.finish_authentication(&bob_state, &response, &[bob_key]),
        Err(PasskeyError::UnknownCredential)
    );
}

#[tokio::test]
async fn missing_user_verification_is_refused() {
    let service = service();
    let user = Uuid::new_v4();

    // An authenticator that cannot verify refuses a UV-required request by itself.
    let (options, _) = service
        .start_registration(user, "someone@example.com", "Someone", &[])
        .unwrap();
    let mut unable = device().unable_to_verify();
    assert!(unable.register(&options).await.is_err());
    assert_eq!(unable.credential_count(), 0);

    // A client that downgrades the request gets a response without the UV flag.
    let mut no_uv = device().without_user_verification();
    let (options, state) = service
        .start_registration(user, "someone@example.com", "Someone", &[])
        .unwrap();
    let response = no_uv.register(&options).await.unwrap();
    assert_eq!(
        service.finish_registration(&state, &response),
        Err(PasskeyError::UserNotVerified)
    );

    let mut device = device();
    let passkey = register(&service, &mut device, user, &[]).await;
    let mut lost_uv = device.clone().without_user_verification();
    let (state, response) = assertion(&service, &mut lost_uv, std::slice::from_ref(&passkey)).await;
    assert_eq!(
        service.finish_authentication(&state, &response, &[passkey]),
        Err(PasskeyError::UserNotVerified)
    );
}

#[tokio::test]
async fn unknown_credentials_are_refused() {
    let service = service();
    let mut mine = device();
    let mut stranger = device();
    let my_key = register(&service, &mut mine, Uuid::new_v4(), &[]).await;
    let _their_key = register(&service, &mut stranger, Uuid::new_v4(), &[]).await;

    let (options, state) = service
        .start_authentication(std::slice::from_ref(&my_key))
        .unwrap();
    assert!(
        stranger.authenticate(&options).await.is_err(),
        "the stranger's authenticator holds none of the allowed credentials"
    );

    // A client that drops the allow list lets the stranger's passkey answer.
    let mut open_options = options.clone();
    open_options["publicKey"]
        .as_object_mut()
        .unwrap()
        .remove("allowCredentials");
    let response = stranger.authenticate(&open_options).await.unwrap();
    assert_eq!(
        service.finish_authentication(&state, &response, &[my_key]),
        Err(PasskeyError::UnknownCredential)
    );
}

#[tokio::test]
async fn counter_regression_shows_a_cloned_authenticator() {
    let service = service();
    let mut device = device().with_signature_counter();
    let mut stored = register(&service, &mut device, Uuid::new_v4(), &[]).await;
    let mut clone = device.clone_device();

    for _ in 0..2 {
        let (state, response) =
            assertion(&service, &mut device, std::slice::from_ref(&stored)).await;
        let signed = service
            .finish_authentication(&state, &response, std::slice::from_ref(&stored))
            .unwrap();
        stored.passkey_json = signed
            .updated_passkey_json
            .expect("a moving counter is persisted");
    }

    // The clone's counter is behind: it signs with 1, the server has seen 2.
    let (state, response) = assertion(&service, &mut clone, std::slice::from_ref(&stored)).await;
    assert_eq!(
        service.finish_authentication(&state, &response, std::slice::from_ref(&stored)),
        Err(PasskeyError::CounterRegressed)
    );
}

#[tokio::test]
async fn discoverable_sign_in_finds_the_user() {
    let service = service();
    let user = Uuid::new_v4();
    let mut device = device();
    let passkey = register(&service, &mut device, user, &[]).await;
    let directory: HashMap<(Uuid, String), StoredPasskey> =
        HashMap::from([((user, passkey.credential_id.clone()), passkey.clone())]);
    let lookup = |u: &Uuid, id: &str| directory.get(&(*u, id.to_owned())).cloned();

    let (options, state) = service.start_discoverable_authentication().unwrap();
    assert!(
        options["publicKey"]
            .get("allowCredentials")
            .is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty()))
    );
    let response = device.authenticate(&options).await.unwrap();
    let found = service
        .finish_discoverable_authentication(&state, &response, lookup)
        .unwrap();
    assert_eq!(found.user_handle, user);
    assert_eq!(found.passkey.credential_id, passkey.credential_id);

    // A passkey the server does not know.
    let (options, state) = service.start_discoverable_authentication().unwrap();
    let mut stranger = SoftAuthenticator::new(&origin());
    register(&service, &mut stranger, Uuid::new_v4(), &[]).await;
    let response = stranger.authenticate(&options).await.unwrap();
    assert_eq!(
        service.finish_discoverable_authentication(&state, &response, lookup),
        Err(PasskeyError::UnknownCredential)
    );

    // A user handle swapped for another user's: the lookup finds nothing under it.
    let (options, state) = service.start_discoverable_authentication().unwrap();
    let mut response = device.authenticate(&options).await.unwrap();
    response["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes()));
    assert_eq!(
        service.finish_discoverable_authentication(&state, &response, lookup),
        Err(PasskeyError::UnknownCredential)
    );
}

#[tokio::test]
async fn error_messages_carry_no_user_data() {
    let service = service();
    let mut device = device();
    let passkey = register(&service, &mut device, Uuid::new_v4(), &[]).await;
    let (state, mut response) =
        assertion(&service, &mut device, std::slice::from_ref(&passkey)).await;
    flip_byte(&mut response, "/response/signature", -1);
    let err = service
        .finish_authentication(&state, &response, std::slice::from_ref(&passkey))
        .unwrap_err();
    let message = err.to_string();
    assert!(!message.contains(&passkey.credential_id));
    assert!(!message.contains("someone"));
    assert!(!format!("{err:?}").contains(&passkey.credential_id));
}

/// One real registration and one real sign-in, each with its state, to mutate.
struct Recorded {
    registration: (String, Value),
    authentication: (String, Value),
    passkey: StoredPasskey,
}

fn record() -> Recorded {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let service = service();
        let mut device = device();
        let passkey = register(&service, &mut device, Uuid::new_v4(), &[]).await;
        let (options, reg_state) = service
            .start_registration(Uuid::new_v4(), "someone@example.com", "Someone", &[])
            .unwrap();
        let registration = device.register(&options).await.unwrap();
        let (auth_state, authentication) =
            assertion(&service, &mut device, std::slice::from_ref(&passkey)).await;
        Recorded {
            registration: (reg_state, registration),
            authentication: (auth_state, authentication),
            passkey,
        }
    })
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|b| Value::from(URL_SAFE_NO_PAD.encode(b))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("rawId".to_owned()),
                    Just("type".to_owned()),
                    Just("response".to_owned()),
                    Just("clientDataJSON".to_owned()),
                    Just("authenticatorData".to_owned()),
                    Just("attestationObject".to_owned()),
                    Just("signature".to_owned()),
                    Just("userHandle".to_owned()),
                    "[a-zA-Z]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "/id",
    "/rawId",
    "/type",
    "/response/clientDataJSON",
    "/response/authenticatorData",
    "/response/attestationObject",
    "/response/signature",
    "/response/userHandle",
];

/// Replaces one field (or a byte of it) of a real response.
fn mutate(mut response: Value, field: usize, replacement: Value, byte: usize, flip: bool) -> Value {
    let pointer = FIELDS[field % FIELDS.len()];
    if let Some(slot) = response.pointer_mut(pointer) {
        let decoded = slot.as_str().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        match decoded {
            Some(mut bytes) if flip && !bytes.is_empty() => {
                let at = byte % bytes.len();
                bytes[at] = bytes[at].wrapping_add(1 + (byte % 255) as u8);
                *slot = json!(URL_SAFE_NO_PAD.encode(&bytes));
            }
            Some(mut bytes) if !flip => {
                bytes.truncate(byte % (bytes.len() + 1));
                *slot = json!(URL_SAFE_NO_PAD.encode(&bytes));
            }
            _ => *slot = replacement,
        }
    }
    response
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_json_never_panics(value in arbitrary_json()) {
        let service = service();
        let (_, reg_state) = service
            .start_registration(Uuid::new_v4(), "someone", "Someone", &[])
            .unwrap();
        prop_assert!(service.finish_registration(&reg_state, &value).is_err());
        let (_, state) = service.start_discoverable_authentication().unwrap();
        prop_assert!(service.finish_discoverable_authentication(&state, &value, |_, _| None).is_err());
        prop_assert!(service.finish_authentication(&reg_state, &value, &[]).is_err());
        prop_assert!(service.finish_registration(&value.to_string(), &value).is_err());
    }

    #[test]
    fn mutated_responses_never_panic(
        field in 0usize..FIELDS.len(),
        replacement in arbitrary_json(),
        byte in any::<usize>(),
        flip in any::<bool>(),
    ) {
        let recorded = RECORDED.with(|r| r.clone());
        // A new service per case: the recorded state has not been used there yet.
        let service = service();
        let (state, response) = &recorded.registration;
        let mutated = mutate(response.clone(), field, replacement.clone(), byte, flip);
        // Registration responses carry no signature with `none` attestation: some mutations
        // (the AAGUID, the id string) may pass; none may panic.
        let _ = service.finish_registration(state, &mutated);

        let (state, response) = &recorded.authentication;
        let mutated = mutate(response.clone(), field, replacement, byte, flip);
        let result = service.finish_authentication(state, &mutated, std::slice::from_ref(&recorded.passkey));
        if mutated != *response {
            let covered = matches!(
                FIELDS[field % FIELDS.len()],
                "/rawId" | "/response/clientDataJSON" | "/response/authenticatorData" | "/response/signature"
            );
            if covered {
                prop_assert!(result.is_err(), "mutated assertion accepted: {}", FIELDS[field % FIELDS.len()]);
            }
        }
    }
}

thread_local! {
    static RECORDED: Recorded = record();
}

impl Clone for Recorded {
    fn clone(&self) -> Self {
        Self {
            registration: self.registration.clone(),
            authentication: self.authentication.clone(),
            passkey: self.passkey.clone(),
        }
    }
}
