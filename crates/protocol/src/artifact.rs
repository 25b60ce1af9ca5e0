//! The model artifact: encrypted model bytes plus a publisher-signed manifest.
//!
//! Format reference: `docs/artifact-format.md`. In short:
//!
//! - The model bytes are sealed once with a random 256-bit content key (AES-256-GCM), giving
//!   the *ciphertext* `nonce(12) || sealed || tag(16)`, with associated data
//!   `"edgekeep/v1/artifact" 0x00 model 0x00 version(u64 BE)`.
//! - The [`ArtifactManifest`] names the model, its monotonic version, runtime compatibility,
//!   lengths and SHA-256 of ciphertext and plaintext, and an expiry. Its canonical bytes are
//!   its JSON with keys in sorted order and no whitespace ([`ArtifactManifest::canonical_bytes`]);
//!   the publisher signs `"edgekeep/v1/manifest\n" || canonical bytes` with Ed25519.
//! - The artifact id is the hex SHA-256 of the ciphertext (content addressed, CDN cacheable).
//! - For upload, the publisher packs a *bundle*: magic, manifest, content key, ciphertext
//!   ([`ArtifactBundle`]). The server keeps the content key sealed and wraps it per device
//!   ([`wrap_content_key`]) with the key agreed at enrollment.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::key_agreement::WrappingKey;
use crate::signing::{SigningError, SigningKey, VerifyingKey};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Version of the manifest layout this code writes and accepts.
pub const FORMAT_VERSION: u32 = 1;
/// Signature context of manifests.
pub const MANIFEST_CONTEXT: &[u8] = b"edgekeep/v1/manifest\n";
/// The first eight bytes of a bundle.
pub const BUNDLE_MAGIC: [u8; 8] = *b"EKBNDL01";
/// Largest signed manifest a parser accepts, in bytes.
pub const MAX_MANIFEST_LEN: usize = 16 * 1024;
/// Largest ciphertext any parser accepts (callers may set a lower bound).
pub const MAX_CIPHERTEXT_LEN: u64 = 1 << 30;
/// Length of a content key.
pub const CONTENT_KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// Why an artifact could not be built, parsed, verified or opened. Never carries key or
/// model bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// The bytes do not have the bundle layout, or the manifest JSON is malformed.
    #[error("artifact is malformed: {0}")]
    Malformed(&'static str),
    /// Larger than the bound the caller set.
    #[error("artifact is larger than allowed")]
    TooLarge,
    /// The signature is missing, malformed or does not verify.
    #[error("manifest signature does not verify")]
    BadSignature,
    /// The manifest names a publisher key the verifier does not trust.
    #[error("manifest is signed by an untrusted key")]
    UntrustedKey,
    /// Ciphertext or plaintext length or hash differs from the manifest, or decryption failed.
    #[error("artifact bytes do not match the manifest")]
    Tampered,
    /// The manifest's expiry has passed.
    #[error("manifest has expired")]
    Expired,
    /// A content key could not be unwrapped (wrong device, wrong artifact, altered).
    #[error("content key cannot be unwrapped")]
    Unwrap,
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// The model file format inside an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// An ONNX protobuf.
    Onnx,
    /// A tract NNEF tar archive (converted once from ONNX for faster loading).
    Nnef,
}

/// A numeric `major.minor.patch` version (no pre-release text, so no free strings).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SemVer {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u16,
    /// Patch.
    pub patch: u16,
}

impl SemVer {
    /// `major.minor.patch`.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `1.2.3` (exactly three numeric parts).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u16>().ok());
        let version = Self::new(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }
}

impl std::fmt::Display for SemVer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What a publisher signs about one model version. Fields are declared in sorted order: the
/// struct's JSON *is* the canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ArtifactManifest {
    /// Length of the ciphertext in bytes.
    pub ciphertext_len: u64,
    /// SHA-256 of the ciphertext, lowercase hex; also the artifact id.
    pub ciphertext_sha256: String,
    /// When the publisher built the artifact (unix seconds).
    pub created_at: i64,
    /// After this time devices refuse to install it (unix seconds).
    pub expires_at: i64,
    /// Model file format.
    pub format: ModelFormat,
    /// Manifest layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Oldest SDK that can run the model.
    pub min_sdk_version: SemVer,
    /// Model name (the model slot), `[a-z0-9][a-z0-9._-]{0,63}`.
    pub model: String,
    /// ONNX opset the model needs (0 for NNEF).
    pub opset: u32,
    /// Length of the model bytes.
    pub plaintext_len: u64,
    /// SHA-256 of the model bytes, lowercase hex.
    pub plaintext_sha256: String,
    /// [`crate::signing::key_id`] of the publisher key that signed the manifest.
    pub publisher_key_id: String,
    /// tract version the publisher validated the model with.
    pub tract_version: SemVer,
    /// Monotonic version of the model, from 1.
    pub version: u64,
}

impl ArtifactManifest {
    /// The canonical bytes the publisher signs: compact JSON, keys sorted.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // A struct of numbers, strings and enums always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The artifact id (the ciphertext's SHA-256, hex).
    pub fn artifact_id(&self) -> &str {
        &self.ciphertext_sha256
    }

    /// Checks field grammar and bounds (not the signature).
    pub fn validate(&self) -> Result<(), ArtifactError> {
        if self.format_version != FORMAT_VERSION {
            return Err(ArtifactError::Malformed("unsupported format_version"));
        }
        if !valid_model_name(&self.model) {
            return Err(ArtifactError::Malformed("model name"));
        }
        if self.version == 0 || self.version > i64::MAX as u64 {
            return Err(ArtifactError::Malformed("version"));
        }
        if !is_hex_sha256(&self.ciphertext_sha256) || !is_hex_sha256(&self.plaintext_sha256) {
            return Err(ArtifactError::Malformed("hash"));
        }
        if self.ciphertext_len > MAX_CIPHERTEXT_LEN
            || self.ciphertext_len != self.plaintext_len + (NONCE_LEN + TAG_LEN) as u64
        {
            return Err(ArtifactError::Malformed("lengths"));
        }
        if self.expires_at <= self.created_at || self.publisher_key_id.len() > 64 {
            return Err(ArtifactError::Malformed("expiry or key id"));
        }
        Ok(())
    }
}

/// A manifest with the publisher's signature (base64url Ed25519 over
/// [`MANIFEST_CONTEXT`] and the canonical bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedManifest {
    /// The manifest.
    pub manifest: ArtifactManifest,
    /// Base64url Ed25519 signature.
    pub signature: String,
}

impl SignedManifest {
    /// Signs `manifest` with `key` (the manifest must already name `key`'s id).
    pub fn sign(manifest: ArtifactManifest, key: &SigningKey) -> Self {
        let signature = crate::b64_encode(&key.sign(MANIFEST_CONTEXT, &manifest.canonical_bytes()));
        Self {
            manifest,
            signature,
        }
    }

    /// Verifies the signature with the trusted key whose id the manifest names, the field
    /// grammar, and that the manifest has not expired at `now`.
    pub fn verify(&self, trusted: &[VerifyingKey], now: i64) -> Result<(), ArtifactError> {
        self.manifest.validate()?;
        let key = trusted
            .iter()
            .find(|k| k.key_id() == self.manifest.publisher_key_id)
            .ok_or(ArtifactError::UntrustedKey)?;
        self.verify_with(key)?;
        if self.manifest.expires_at <= now {
            return Err(ArtifactError::Expired);
        }
        Ok(())
    }

    /// Verifies only the signature against `key`.
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<(), ArtifactError> {
        let signature = crate::b64_decode(&self.signature).ok_or(ArtifactError::BadSignature)?;
        key.verify(
            MANIFEST_CONTEXT,
            &self.manifest.canonical_bytes(),
            &signature,
        )
        .map_err(|_: SigningError| ArtifactError::BadSignature)
    }
}

/// A 256-bit content key. Zeroized on drop; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey(Zeroizing<[u8; CONTENT_KEY_LEN]>);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

impl ContentKey {
    /// Draws a fresh random key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, ArtifactError> {
        let mut key = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        rng.fill(key.as_mut()).map_err(|_| ArtifactError::Random)?;
        Ok(Self(key))
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; CONTENT_KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; CONTENT_KEY_LEN] {
        &self.0
    }
}

/// What a publisher states about a model version before building its artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSpec {
    /// Model name (slot).
    pub model: String,
    /// Monotonic version, from 1.
    pub version: u64,
    /// Model file format.
    pub format: ModelFormat,
    /// Oldest SDK that can run it.
    pub min_sdk_version: SemVer,
    /// tract version it was validated with.
    pub tract_version: SemVer,
    /// ONNX opset (0 for NNEF).
    pub opset: u32,
    /// Build time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// A built artifact: its signed manifest, content key and ciphertext.
#[derive(Debug, Clone)]
pub struct BuiltArtifact {
    /// The signed manifest.
    pub manifest: SignedManifest,
    /// The content key (goes to the server inside the bundle, never to devices in clear).
    pub content_key: ContentKey,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

impl BuiltArtifact {
    /// The upload bundle: `magic(8) || manifest_len(u32 BE) || signed manifest JSON ||
    /// content key(32) || ciphertext`.
    pub fn to_bundle(&self) -> Vec<u8> {
        let manifest = serde_json::to_vec(&self.manifest).unwrap_or_default();
        let mut out =
            Vec::with_capacity(12 + manifest.len() + CONTENT_KEY_LEN + self.ciphertext.len());
        out.extend_from_slice(&BUNDLE_MAGIC);
        out.extend_from_slice(&(manifest.len() as u32).to_be_bytes());
        out.extend_from_slice(&manifest);
        out.extend_from_slice(self.content_key.as_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }
}

fn content_aad(model: &str, version: u64) -> Vec<u8> {
    let mut aad = b"edgekeep/v1/artifact\0".to_vec();
    aad.extend_from_slice(model.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Encrypts `model_bytes` with a fresh content key and signs the manifest with `publisher`.
/// Runs on the publisher's machine; the signing key never leaves it.
///
/// Fails if the spec is invalid (name grammar, version 0, expiry not after creation) or the
/// model is larger than [`MAX_CIPHERTEXT_LEN`].
pub fn build_artifact(
    model_bytes: &[u8],
    spec: &ArtifactSpec,
    publisher: &SigningKey,
    rng: &dyn SecureRandom,
) -> Result<BuiltArtifact, ArtifactError> {
    if model_bytes.len() as u64 + (NONCE_LEN + TAG_LEN) as u64 > MAX_CIPHERTEXT_LEN {
        return Err(ArtifactError::TooLarge);
    }
    let content_key = ContentKey::generate(rng)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| ArtifactError::Random)?;
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, content_key.as_bytes()).map_err(|_| ArtifactError::Random)?,
    );
    let mut sealed = model_bytes.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(content_aad(&spec.model, spec.version)),
        &mut sealed,
    )
    .map_err(|_| ArtifactError::TooLarge)?;
    let mut ciphertext = Vec::with_capacity(NONCE_LEN + sealed.len());
    ciphertext.extend_from_slice(&nonce);
    ciphertext.extend_from_slice(&sealed);
    let manifest = ArtifactManifest {
        ciphertext_len: ciphertext.len() as u64,
        ciphertext_sha256: sha256_hex(&ciphertext),
        created_at: spec.created_at,
        expires_at: spec.expires_at,
        format: spec.format,
        format_version: FORMAT_VERSION,
        min_sdk_version: spec.min_sdk_version,
        model: spec.model.clone(),
        opset: spec.opset,
        plaintext_len: model_bytes.len() as u64,
        plaintext_sha256: sha256_hex(model_bytes),
        publisher_key_id: publisher.key_id(),
        tract_version: spec.tract_version,
        version: spec.version,
    };
    manifest.validate()?;
    Ok(BuiltArtifact {
        manifest: SignedManifest::sign(manifest, publisher),
        content_key,
        ciphertext,
    })
}

/// A parsed upload bundle, borrowing the ciphertext from the input.
#[derive(Debug)]
pub struct ArtifactBundle<'a> {
    /// The signed manifest (signature not yet checked).
    pub manifest: SignedManifest,
    /// The content key.
    pub content_key: ContentKey,
    /// The ciphertext; its length and SHA-256 match the manifest.
    pub ciphertext: &'a [u8],
}

/// The header of an upload bundle: everything before the ciphertext.
#[derive(Debug)]
pub struct BundleHead {
    /// The signed manifest (signature not yet checked).
    pub manifest: SignedManifest,
    /// The content key.
    pub content_key: ContentKey,
    /// Where the ciphertext starts in the bundle.
    pub ciphertext_offset: usize,
}

/// The longest bundle header: magic, manifest length, manifest and content key.
pub const MAX_BUNDLE_HEAD_LEN: usize = BUNDLE_MAGIC.len() + 4 + MAX_MANIFEST_LEN + CONTENT_KEY_LEN;

/// Parses a bundle's header from its first bytes (`head`, at least the whole header) given the
/// bundle's total length, without the ciphertext: lets a receiver keep the ciphertext on disk.
/// Checks the bounds (`max_ciphertext_len`, capped at [`MAX_CIPHERTEXT_LEN`], and
/// [`MAX_MANIFEST_LEN`]), the manifest grammar and the ciphertext length against it; the
/// ciphertext's hash and the signature are checked later ([`open_artifact_in_place`],
/// [`SignedManifest::verify`]).
pub fn parse_bundle_head(
    head: &[u8],
    total_len: u64,
    max_ciphertext_len: u64,
) -> Result<BundleHead, ArtifactError> {
    let max = max_ciphertext_len.min(MAX_CIPHERTEXT_LEN);
    if total_len > max.saturating_add(MAX_BUNDLE_HEAD_LEN as u64) {
        return Err(ArtifactError::TooLarge);
    }
    let rest = head
        .strip_prefix(&BUNDLE_MAGIC)
        .ok_or(ArtifactError::Malformed("magic"))?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(ArtifactError::Malformed("truncated header"))?;
    let manifest_len = u32::from_be_bytes(*len) as usize;
    if manifest_len > MAX_MANIFEST_LEN {
        return Err(ArtifactError::Malformed("manifest too long"));
    }
    let ciphertext_offset = BUNDLE_MAGIC.len() + 4 + manifest_len + CONTENT_KEY_LEN;
    if rest.len() < manifest_len + CONTENT_KEY_LEN || total_len < ciphertext_offset as u64 {
        return Err(ArtifactError::Malformed("truncated"));
    }
    let (manifest_bytes, rest) = rest.split_at(manifest_len);
    let ciphertext_len = total_len - ciphertext_offset as u64;
    if ciphertext_len > max {
        return Err(ArtifactError::TooLarge);
    }
    let manifest: SignedManifest = serde_json::from_slice(manifest_bytes)
        .map_err(|_| ArtifactError::Malformed("manifest JSON"))?;
    manifest.manifest.validate()?;
    if manifest.manifest.ciphertext_len != ciphertext_len {
        return Err(ArtifactError::Tampered);
    }
    let mut raw = [0u8; CONTENT_KEY_LEN];
    raw.copy_from_slice(&rest[..CONTENT_KEY_LEN]);
    let content_key = ContentKey::from_bytes(raw);
    raw.iter_mut().for_each(|b| *b = 0);
    Ok(BundleHead {
        manifest,
        content_key,
        ciphertext_offset,
    })
}

/// Parses an upload bundle from untrusted bytes. Bounds are checked before anything is
/// allocated: the total against `max_ciphertext_len` (capped at [`MAX_CIPHERTEXT_LEN`]), the
/// manifest against [`MAX_MANIFEST_LEN`]. Checks the manifest grammar and the ciphertext's
/// length and hash against it; does not check the signature (see [`SignedManifest::verify`]).
pub fn parse_bundle(
    bytes: &[u8],
    max_ciphertext_len: u64,
) -> Result<ArtifactBundle<'_>, ArtifactError> {
    let head = parse_bundle_head(bytes, bytes.len() as u64, max_ciphertext_len)?;
    let ciphertext = &bytes[head.ciphertext_offset..];
    if head.manifest.manifest.ciphertext_sha256 != sha256_hex(ciphertext) {
        return Err(ArtifactError::Tampered);
    }
    Ok(ArtifactBundle {
        manifest: head.manifest,
        content_key: head.content_key,
        ciphertext,
    })
}

/// Checks `ciphertext` against the manifest, decrypts it with `key` and checks the plaintext's
/// length and hash. The model bytes are returned in memory only, zeroized on drop.
pub fn open_artifact(
    manifest: &ArtifactManifest,
    key: &ContentKey,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ArtifactError> {
    check_ciphertext(manifest, ciphertext)?;
    open_checked(manifest, key, Zeroizing::new(ciphertext.to_vec()))
}

/// [`open_artifact`] decrypting in the ciphertext's own buffer: one artifact-sized allocation
/// instead of two (for receivers that hold the ciphertext elsewhere, e.g. on disk).
pub fn open_artifact_in_place(
    manifest: &ArtifactManifest,
    key: &ContentKey,
    ciphertext: Vec<u8>,
) -> Result<Zeroizing<Vec<u8>>, ArtifactError> {
    let ciphertext = Zeroizing::new(ciphertext);
    check_ciphertext(manifest, &ciphertext)?;
    open_checked(manifest, key, ciphertext)
}

fn check_ciphertext(manifest: &ArtifactManifest, ciphertext: &[u8]) -> Result<(), ArtifactError> {
    if ciphertext.len() as u64 != manifest.ciphertext_len
        || ciphertext.len() < NONCE_LEN + TAG_LEN
        || sha256_hex(ciphertext) != manifest.ciphertext_sha256
    {
        return Err(ArtifactError::Tampered);
    }
    Ok(())
}

fn open_checked(
    manifest: &ArtifactManifest,
    key: &ContentKey,
    mut buffer: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, ArtifactError> {
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&buffer[..NONCE_LEN]);
    let opener = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key.as_bytes()).map_err(|_| ArtifactError::Tampered)?,
    );
    let plain_len = opener
        .open_within(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(content_aad(&manifest.model, manifest.version)),
            buffer.as_mut_slice(),
            NONCE_LEN..,
        )
        .map_err(|_| ArtifactError::Tampered)?
        .len();
    buffer.truncate(plain_len);
    if plain_len as u64 != manifest.plaintext_len
        || sha256_hex(&buffer) != manifest.plaintext_sha256
    {
        return Err(ArtifactError::Tampered);
    }
    Ok(buffer)
}

fn wrap_aad(artifact_id: &str, device_id: &str) -> Vec<u8> {
    format!("edgekeep/v1/content-key\0{artifact_id}\0{device_id}").into_bytes()
}

/// Wraps a content key for one device: AES-256-GCM under the device's key-wrapping key with
/// associated data binding the artifact id and device id. Returns base64url
/// `nonce || sealed key || tag`.
pub fn wrap_content_key(
    kwk: &WrappingKey,
    artifact_id: &str,
    device_id: &str,
    key: &ContentKey,
    rng: &dyn SecureRandom,
) -> Result<String, ArtifactError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| ArtifactError::Random)?;
    let sealer = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, kwk.as_bytes()).map_err(|_| ArtifactError::Random)?,
    );
    let mut body = Zeroizing::new(key.as_bytes().to_vec());
    sealer
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(wrap_aad(artifact_id, device_id)),
            &mut *body,
        )
        .map_err(|_| ArtifactError::Random)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(crate::b64_encode(&out))
}

/// Unwraps what [`wrap_content_key`] produced, for the same artifact and device.
pub fn unwrap_content_key(
    kwk: &WrappingKey,
    artifact_id: &str,
    device_id: &str,
    wrapped: &str,
) -> Result<ContentKey, ArtifactError> {
    let bytes = crate::b64_decode(wrapped).ok_or(ArtifactError::Unwrap)?;
    if bytes.len() != NONCE_LEN + CONTENT_KEY_LEN + TAG_LEN {
        return Err(ArtifactError::Unwrap);
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ArtifactError::Unwrap)?;
    let opener = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, kwk.as_bytes()).map_err(|_| ArtifactError::Unwrap)?,
    );
    let mut body = Zeroizing::new(sealed.to_vec());
    let plain = opener
        .open_in_place(
            nonce,
            Aad::from(wrap_aad(artifact_id, device_id)),
            body.as_mut_slice(),
        )
        .map_err(|_| ArtifactError::Unwrap)?;
    let raw: [u8; CONTENT_KEY_LEN] = plain.try_into().map_err(|_| ArtifactError::Unwrap)?;
    Ok(ContentKey::from_bytes(raw))
}

/// Whether `name` is a valid model name: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn valid_model_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn is_hex_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;

    fn spec() -> ArtifactSpec {
        ArtifactSpec {
            model: "kws".into(),
            version: 3,
            format: ModelFormat::Onnx,
            min_sdk_version: SemVer::new(0, 1, 0),
            tract_version: SemVer::new(0, 23, 9),
            opset: 17,
            created_at: 1_700_000_000,
            expires_at: 1_800_000_000,
        }
    }

    fn built(model: &[u8]) -> (SigningKey, BuiltArtifact) {
        let rng = SystemRandom::new();
        let key = SigningKey::generate(&rng).unwrap();
        let artifact = build_artifact(model, &spec(), &key, &rng).unwrap();
        (key, artifact)
    }

    #[test]
    fn build_parse_verify_open_round_trip() {
        let (key, artifact) = built(b"model bytes");
        let bundle = artifact.to_bundle();
        let parsed = parse_bundle(&bundle, 1 << 20).unwrap();
        parsed
            .manifest
            .verify(&[key.public_key()], 1_700_000_001)
            .unwrap();
        let plain = open_artifact(
            &parsed.manifest.manifest,
            &parsed.content_key,
            parsed.ciphertext,
        )
        .unwrap();
        assert_eq!(plain.as_slice(), b"model bytes");
    }

    #[test]
    fn verification_failures_are_typed() {
        let (key, artifact) = built(b"m");
        let other = SigningKey::generate(&SystemRandom::new()).unwrap();
        let m = &artifact.manifest;
        assert_eq!(
            m.verify(&[other.public_key()], 0),
            Err(ArtifactError::UntrustedKey)
        );
        assert_eq!(
            m.verify(&[key.public_key()], 1_900_000_000),
            Err(ArtifactError::Expired)
        );
        let mut changed = m.clone();
        changed.manifest.version = 4;
        assert_eq!(
            changed.verify(&[key.public_key()], 0),
            Err(ArtifactError::BadSignature)
        );
        let mut forged = SignedManifest::sign(m.manifest.clone(), &other);
        forged.manifest.publisher_key_id = key.key_id();
        assert_eq!(
            forged.verify(&[key.public_key()], 0),
            Err(ArtifactError::BadSignature)
        );
    }

    #[test]
    fn tampered_ciphertext_and_wrong_key_fail_to_open() {
        let (_, artifact) = built(b"weights");
        let mut ciphertext = artifact.ciphertext.clone();
        ciphertext[NONCE_LEN] ^= 1;
        let m = &artifact.manifest.manifest;
        assert_eq!(
            open_artifact(m, &artifact.content_key, &ciphertext),
            Err(ArtifactError::Tampered)
        );
        let wrong = ContentKey::from_bytes([1; 32]);
        assert_eq!(
            open_artifact(m, &wrong, &artifact.ciphertext),
            Err(ArtifactError::Tampered)
        );
    }

    #[test]
    fn content_key_wrap_is_bound_to_artifact_and_device() {
        let rng = SystemRandom::new();
        let kwk = WrappingKey::from_bytes([5; 32]);
        let key = ContentKey::generate(&rng).unwrap();
        let wrapped = wrap_content_key(&kwk, "art", "dev", &key, &rng).unwrap();
        assert_eq!(
            unwrap_content_key(&kwk, "art", "dev", &wrapped).unwrap(),
            key
        );
        assert!(unwrap_content_key(&kwk, "art", "dev2", &wrapped).is_err());
        assert!(unwrap_content_key(&kwk, "art2", "dev", &wrapped).is_err());
        let other = WrappingKey::from_bytes([6; 32]);
        assert!(unwrap_content_key(&other, "art", "dev", &wrapped).is_err());
        assert!(!format!("{key:?}").contains('5'));
    }

    #[test]
    fn canonical_bytes_have_sorted_keys_and_no_whitespace() {
        let (_, artifact) = built(b"m");
        let bytes = artifact.manifest.manifest.canonical_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(!text.contains(' ') && !text.contains('\n'));
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\"")).unwrap())
            .collect();
        let mut ordered = positions.clone();
        ordered.sort();
        assert_eq!(positions, ordered);
        assert_eq!(keys.len(), 14);
    }

    #[test]
    fn bounds_are_checked_first() {
        let (_, artifact) = built(&[7u8; 1000]);
        let bundle = artifact.to_bundle();
        assert_eq!(
            parse_bundle(&bundle, 100).unwrap_err(),
            ArtifactError::TooLarge
        );
        let mut huge_manifest = bundle.clone();
        huge_manifest[8..12].copy_from_slice(&(u32::MAX).to_be_bytes());
        assert!(matches!(
            parse_bundle(&huge_manifest, 1 << 20),
            Err(ArtifactError::Malformed(_))
        ));
        let mut extra = bundle.clone();
        extra.push(0);
        assert_eq!(
            parse_bundle(&extra, 1 << 20).unwrap_err(),
            ArtifactError::Tampered
        );
        assert!(parse_bundle(b"", 10).is_err());
        assert!(SemVer::parse("1.2.3").is_some() && SemVer::parse("1.2").is_none());
        assert!(
            valid_model_name("kws-v2.small") && !valid_model_name("Kws") && !valid_model_name("")
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_bundle(&bytes, 1 << 20);
        }

        #[test]
        fn any_flipped_byte_is_rejected(index in any::<prop::sample::Index>(), bit in 0u8..8) {
            let rng = SystemRandom::new();
            let key = SigningKey::generate(&rng).unwrap();
            let artifact = build_artifact(b"small model", &spec(), &key, &rng).unwrap();
            let mut bundle = artifact.to_bundle();
            let at = index.index(bundle.len());
            bundle[at] ^= 1 << bit;
            let accepted = parse_bundle(&bundle, 1 << 20).and_then(|b| {
                b.manifest.verify(&[key.public_key()], 1_700_000_001)?;
                open_artifact(&b.manifest.manifest, &b.content_key, b.ciphertext).map(|_| ())
            });
            prop_assert!(accepted.is_err());
        }
    }
}
