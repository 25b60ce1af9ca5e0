//! Proof of possession for device requests, in the style of RFC 9449 (DPoP).
//!
//! A device signs, for every request, a compact JWS-like proof with its ECDSA P-256 identity
//! key: `base64url(header) "." base64url(claims) "." base64url(signature)`, where the header is
//! `{"typ":"ek-pop+jwt","alg":"ES256"}`, the claims are [`ProofClaims`] and the signature is the
//! 64-byte fixed-width `r || s` over the first two parts. It travels in the [`PROOF_HEADER`]
//! header; the access token travels as `Authorization: DPoP <token>`.
//!
//! The verifier checks the proof against the key the server registered for the device (never a
//! key carried in the proof), accepts only ES256, and checks method, URL, token hash and time.
//! Replay detection by `jti` is stateful and therefore left to the caller: it must remember
//! every `jti` it accepted for at least the freshness window.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The HTTP header that carries the proof.
pub const PROOF_HEADER: &str = "DPoP";
/// The `Authorization` scheme of device access tokens.
pub const AUTH_SCHEME: &str = "DPoP";
/// The only accepted algorithm.
pub const ALG_ES256: &str = "ES256";
/// The proof type.
pub const PROOF_TYP: &str = "ek-pop+jwt";
/// The largest proof the verifier will parse, in bytes.
pub const MAX_PROOF_LEN: usize = 2048;
/// Default freshness window: a proof's `iat` may differ from the server clock by this many seconds.
pub const DEFAULT_FRESHNESS_SECS: i64 = 60;
/// Length in bytes of an uncompressed SEC1 P-256 public key.
pub const P256_PUBLIC_KEY_LEN: usize = 65;

/// Why a proof was not built or not accepted. Never carries key material or tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof does not have the shape of a compact proof, or its parts do not decode.
    #[error("proof is malformed")]
    Malformed,
    /// The header names an algorithm or type other than ES256 / ek-pop+jwt.
    #[error("proof algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The signature does not verify against the device's registered key.
    #[error("proof signature does not verify")]
    BadSignature,
    /// The proof was made for another HTTP method.
    #[error("proof was made for another method")]
    MethodMismatch,
    /// The proof was made for another URL.
    #[error("proof was made for another URL")]
    UrlMismatch,
    /// The proof was made for another token.
    #[error("proof was made for another token")]
    TokenMismatch,
    /// The proof's time is outside the freshness window.
    #[error("proof time is outside the freshness window")]
    Stale,
    /// The signing key could not be loaded or could not sign.
    #[error("device key could not sign")]
    Signing,
}

impl From<ProofError> for crate::ErrorCode {
    fn from(err: ProofError) -> Self {
        match err {
            ProofError::Malformed | ProofError::BadSignature | ProofError::Signing => {
                Self::ProofInvalid
            }
            ProofError::UnsupportedAlgorithm => Self::ProofUnsupportedAlgorithm,
            ProofError::MethodMismatch | ProofError::UrlMismatch | ProofError::TokenMismatch => {
                Self::ProofMismatch
            }
            ProofError::Stale => Self::ProofStale,
        }
    }
}

/// The protected header of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofHeader {
    /// Always [`PROOF_TYP`].
    pub typ: String,
    /// Always [`ALG_ES256`].
    pub alg: String,
}

/// The signed claims of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofClaims {
    /// HTTP method, upper case.
    pub htm: String,
    /// Target URL without query and fragment (see [`normalize_htu`]).
    pub htu: String,
    /// Unix time in seconds when the proof was made.
    pub iat: i64,
    /// Unique id of this proof (16 to 64 characters).
    pub jti: String,
    /// [`crate::token::access_token_hash_claim`] of the token the request carries.
    pub ath: String,
}

/// Something that can sign proofs with a device's P-256 identity key.
///
/// The SDK implements it over Secure Enclave / StrongBox keys; [`SoftwareDeviceKey`] is the
/// software default.
pub trait ProofSigner {
    /// The uncompressed SEC1 public key (65 bytes) the server registers at enrollment.
    fn public_key(&self) -> Vec<u8>;
    /// Signs `message` with ECDSA P-256 / SHA-256, returning the 64-byte fixed `r || s` form.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProofError>;
}

/// A P-256 identity key held in memory.
pub struct SoftwareDeviceKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl SoftwareDeviceKey {
    /// Generates a new key. Returns it with its PKCS#8 encoding (zeroized on drop) for storage.
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>), ProofError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| ProofError::Signing)?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        let key = Self::from_pkcs8(&pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Loads a key from its PKCS#8 encoding.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, ProofError> {
        let rng = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
                .map_err(|_| ProofError::Signing)?;
        Ok(Self { pair, rng })
    }
}

impl std::fmt::Debug for SoftwareDeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareDeviceKey").finish_non_exhaustive()
    }
}

impl ProofSigner for SoftwareDeviceKey {
    fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ProofError> {
        self.pair
            .sign(&self.rng, message)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| ProofError::Signing)
    }
}

/// The `Authorization` header value of a device request: `DPoP <access token>`.
pub fn authorization_value(access_token: &str) -> String {
    format!("{AUTH_SCHEME} {access_token}")
}

/// Normalizes a URL for the `htu` claim: drops query and fragment and lower-cases scheme and host.
pub fn normalize_htu(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    match url.find("://") {
        Some(scheme_end) => {
            let authority_start = scheme_end + 3;
            let path_start = url[authority_start..]
                .find('/')
                .map_or(url.len(), |i| authority_start + i);
            let mut out = url[..path_start].to_ascii_lowercase();
            out.push_str(&url[path_start..]);
            if path_start == url.len() {
                out.push('/');
            }
            out
        }
        None => url.to_owned(),
    }
}

/// Builds the proof for one request.
///
/// `token` is the access token (or, for enrollment and refresh, the bootstrap or refresh token)
/// that the request carries; `now` is the current unix time in seconds. A fresh random `jti` is
/// drawn for every proof.
pub fn build_proof(
    signer: &dyn ProofSigner,
    method: &str,
    url: &str,
    token: &str,
    now: i64,
) -> Result<String, ProofError> {
    let mut jti = [0u8; 18];
    SystemRandom::new()
        .fill(&mut jti)
        .map_err(|_| ProofError::Signing)?;
    let claims = ProofClaims {
        htm: method.to_ascii_uppercase(),
        htu: normalize_htu(url),
        iat: now,
        jti: crate::b64_encode(&jti),
        ath: crate::token::access_token_hash_claim(token),
    };
    let header = ProofHeader {
        typ: PROOF_TYP.to_owned(),
        alg: ALG_ES256.to_owned(),
    };
    sign_parts(signer, &header, &claims)
}

/// Signs an arbitrary header and claims. Exposed so tests can build hostile proofs.
pub fn sign_parts(
    signer: &dyn ProofSigner,
    header: &ProofHeader,
    claims: &ProofClaims,
) -> Result<String, ProofError> {
    let header = serde_json::to_vec(header).map_err(|_| ProofError::Malformed)?;
    let claims = serde_json::to_vec(claims).map_err(|_| ProofError::Malformed)?;
    let mut text = crate::b64_encode(&header);
    text.push('.');
    text.push_str(&crate::b64_encode(&claims));
    let signature = signer.sign(text.as_bytes())?;
    text.push('.');
    text.push_str(&crate::b64_encode(&signature));
    Ok(text)
}

/// What the server expects a proof to cover.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedRequest<'a> {
    /// The request method.
    pub method: &'a str,
    /// The full request URL as the server sees it (normalized before comparison).
    pub url: &'a str,
    /// The token the request carries.
    pub token: &'a str,
    /// Current unix time in seconds.
    pub now: i64,
    /// Allowed difference between `iat` and `now`, in seconds.
    pub freshness_secs: i64,
}

/// A proof that passed every stateless check. The caller must still check `jti` for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The proof's unique id.
    pub jti: String,
    /// The proof's time.
    pub iat: i64,
}

/// Verifies `proof` against the device's registered public key and the expected request.
///
/// Checks, in order: shape and size, header (`alg` must be ES256), signature, method, URL,
/// token hash, freshness. Costs one ECDSA verification.
pub fn verify_proof(
    proof: &str,
    device_public_key: &[u8],
    expected: &ExpectedRequest<'_>,
) -> Result<VerifiedProof, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let header_bytes = crate::b64_decode(header_b64).ok_or(ProofError::Malformed)?;
    let header: ProofHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| ProofError::Malformed)?;
    if header.alg != ALG_ES256 || header.typ != PROOF_TYP {
        return Err(ProofError::UnsupportedAlgorithm);
    }
    let signature_bytes = crate::b64_decode(sig_b64).ok_or(ProofError::Malformed)?;
    let signed_len = header_b64.len() + 1 + claims_b64.len();
    let key =
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, device_public_key);
    key.verify(&proof.as_bytes()[..signed_len], &signature_bytes)
        .map_err(|_| ProofError::BadSignature)?;
    let claims_bytes = crate::b64_decode(claims_b64).ok_or(ProofError::Malformed)?;
    let claims: ProofClaims =
        serde_json::from_slice(&claims_bytes).map_err(|_| ProofError::Malformed)?;
    if !(16..=64).contains(&claims.jti.len()) {
        return Err(ProofError::Malformed);
    }
    if claims.htm != expected.method.to_ascii_uppercase() {
        return Err(ProofError::MethodMismatch);
    }
    if claims.htu != normalize_htu(expected.url) {
        return Err(ProofError::UrlMismatch);
    }
    if claims.ath != crate::token::access_token_hash_claim(expected.token) {
        return Err(ProofError::TokenMismatch);
    }
    if (claims.iat - expected.now).abs() > expected.freshness_secs {
        return Err(ProofError::Stale);
    }
    Ok(VerifiedProof {
        jti: claims.jti,
        iat: claims.iat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const URL: &str = "https://127.0.0.1:8443/v1/device/me";

    fn expected<'a>(now: i64) -> ExpectedRequest<'a> {
        ExpectedRequest {
            method: "GET",
            url: URL,
            token: "eka_token",
            now,
            freshness_secs: DEFAULT_FRESHNESS_SECS,
        }
    }

    #[test]
    fn good_proof_verifies() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let proof = build_proof(&key, "get", URL, "eka_token", 1000).unwrap();
        let verified = verify_proof(&proof, &key.public_key(), &expected(1010)).unwrap();
        assert_eq!(verified.iat, 1000);
    }

    #[test]
    fn every_mismatch_is_named() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let (other, _) = SoftwareDeviceKey::generate().unwrap();
        let proof = build_proof(&key, "GET", URL, "eka_token", 1000).unwrap();
        let pk = key.public_key();
        let check = |exp: ExpectedRequest<'_>, pk: &[u8]| verify_proof(&proof, pk, &exp);
        assert_eq!(
            check(expected(1000), &other.public_key()),
            Err(ProofError::BadSignature)
        );
        assert_eq!(
            check(
                ExpectedRequest {
                    method: "POST",
                    ..expected(1000)
                },
                &pk
            ),
            Err(ProofError::MethodMismatch)
        );
        assert_eq!(
            check(
                ExpectedRequest {
                    url: "https://127.0.0.1:8443/v1/devices",
                    ..expected(1000)
                },
                &pk
            ),
            Err(ProofError::UrlMismatch)
        );
        assert_eq!(
            check(
                ExpectedRequest {
                    token: "eka_other",
                    ..expected(1000)
                },
                &pk
            ),
            Err(ProofError::TokenMismatch)
        );
        assert_eq!(check(expected(1061), &pk), Err(ProofError::Stale));
        assert_eq!(check(expected(939), &pk), Err(ProofError::Stale));
    }

    #[test]
    fn alg_downgrade_is_rejected_before_signature() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let header = ProofHeader {
            typ: PROOF_TYP.into(),
            alg: "none".into(),
        };
        let claims = ProofClaims {
            htm: "GET".into(),
            htu: URL.into(),
            iat: 1000,
            jti: "abcdefghijklmnopqrstuvwx".into(),
            ath: crate::token::access_token_hash_claim("eka_token"),
        };
        let signed = sign_parts(&key, &header, &claims).unwrap();
        let unsigned = signed.rsplit_once('.').unwrap().0.to_owned() + ".";
        for proof in [signed, unsigned] {
            assert_eq!(
                verify_proof(&proof, &key.public_key(), &expected(1000)),
                Err(ProofError::UnsupportedAlgorithm)
            );
        }
    }

    #[test]
    fn htu_ignores_query_fragment_and_host_case() {
        assert_eq!(
            normalize_htu("HTTPS://Example.COM:8443/v1/A?x=1#f"),
            "https://example.com:8443/v1/A"
        );
        assert_eq!(normalize_htu("https://h"), "https://h/");
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_garbage(text in ".{0,300}") {
            let (key, _) = SoftwareDeviceKey::generate().unwrap();
            let _ = verify_proof(&text, &key.public_key(), &expected(0));
        }

        #[test]
        fn flipping_any_byte_breaks_the_proof(index in 0usize..400, bit in 0u8..7) {
            let (key, _) = SoftwareDeviceKey::generate().unwrap();
            let proof = build_proof(&key, "GET", URL, "eka_token", 1000).unwrap();
            let mut bytes = proof.into_bytes();
            let i = index % bytes.len();
            bytes[i] ^= 1 << bit;
            if let Ok(text) = String::from_utf8(bytes) {
                prop_assert!(verify_proof(&text, &key.public_key(), &expected(1000)).is_err());
            }
        }
    }
}
