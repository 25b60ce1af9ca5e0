//! The sealed-value envelope, AEAD sealing and keyed lookup hashes.
//!
//! Envelope layout (format 1), all integers big-endian:
//!
//! ```text
//! [format: u8 = 1][key id: u32][nonce: 12 bytes][AES-256-GCM ciphertext || 16-byte tag]
//! ```
//!
//! The associated data binds the envelope header (format and key id), the record layout
//! version, and the value's slot: table, column, row key and (record layout 2) the value's
//! version. A ciphertext copied to another row, column or table, relabelled with another
//! key id or given another version fails to open; which version is current is the ledger's
//! business (`ledger.rs`). Nonces are random 96-bit values; the per-key message budget that
//! keeps that safe is enforced by [`NonceBudget`]. See `docs/adr/0002-store-encryption.md`
//! and `docs/adr/0015-store-rollback-protection.md`.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::error::{Result, StoreError, TamperKind};

/// Envelope format byte written by this build.
pub(crate) const FORMAT_V1: u8 = 1;
/// Record layout of values without a version: key canaries, and values written before
/// schema 3 (opened once, by the upgrade that re-seals them).
const RECORD_LAYOUT_V1: u32 = 1;
/// Record layout of versioned values: the slot's version follows the row key in the
/// associated data. A layout changes only when the meaning of a sealed column changes, and
/// then a migration re-seals that column.
const RECORD_LAYOUT_V2: u32 = 2;
/// Length of a data key and of the lookup key, in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// Bytes the envelope adds to a plaintext.
pub(crate) const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Length of a keyed lookup hash.
pub(crate) const LOOKUP_LEN: usize = 32;

const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;
const AD_DOMAIN: &[u8] = b"edgekeep.store.value";
const LOOKUP_DOMAIN: &[u8] = b"edgekeep.store.lookup";
const LEDGER_KEY_DOMAIN: &[u8] = b"edgekeep.store.ledger-key.v1";

/// Identifier of a data key inside a store's key set (Tink style: random, never reused).
pub type KeyId = u32;

/// Where a sealed value lives. Bound into the associated data of its envelope.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
    /// Row key: the bytes that identify the row (namespace, lookup hash, sequence number).
    pub row: &'a [u8],
    /// The value's version from the store's ledger. `None` only for key canaries and for
    /// values written before schema 3 (record layout 1).
    pub version: Option<u64>,
}

impl Slot<'_> {
    fn tampered(&self, kind: TamperKind) -> StoreError {
        StoreError::Tampered {
            table: self.table,
            column: self.column,
            kind,
        }
    }
}

/// A data key: AES-256-GCM key material, its expanded form and its id.
///
/// The raw bytes are zeroized on drop. `ring` does not wipe its expanded key schedule;
/// it is kept for the key's lifetime because rebuilding it per value cost a large share of
/// small-value throughput (see `docs/adr/0002-store-encryption.md`).
pub(crate) struct DataKey {
    id: KeyId,
    material: Zeroizing<[u8; KEY_LEN]>,
    aead: LessSafeKey,
}

impl DataKey {
    /// Wraps existing key material; fails when it has the wrong length.
    pub(crate) fn from_bytes(id: KeyId, bytes: &[u8]) -> Result<Self> {
        let mut material = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(StoreError::KeySet("unwrapped key has the wrong length"));
        }
        material.copy_from_slice(bytes);
        let unbound = UnboundKey::new(&AES_256_GCM, &material[..])
            .map_err(|_| StoreError::KeySet("data key rejected by AEAD"))?;
        Ok(Self {
            id,
            material,
            aead: LessSafeKey::new(unbound),
        })
    }

    /// Raw key bytes, for wrapping by the key provider.
    pub(crate) fn material(&self) -> &[u8] {
        &self.material[..]
    }

    fn aead(&self) -> &LessSafeKey {
        &self.aead
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("material", &"<redacted>")
            .finish()
    }
}

/// The HMAC-SHA256 key that turns lookup keys (kv keys, artifact names) into keyed hashes.
/// Like [`DataKey`], it keeps `ring`'s precomputed HMAC state for its lifetime.
pub(crate) struct LookupKey {
    material: Zeroizing<[u8; KEY_LEN]>,
    hmac: hmac::Key,
}

impl LookupKey {
    /// Wraps existing key material; fails when it has the wrong length.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut material = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(StoreError::KeySet("unwrapped key has the wrong length"));
        }
        material.copy_from_slice(bytes);
        let hmac = hmac::Key::new(hmac::HMAC_SHA256, &material[..]);
        Ok(Self { material, hmac })
    }

    /// Raw key bytes, for wrapping by the key provider.
    pub(crate) fn material(&self) -> &[u8] {
        &self.material[..]
    }

    /// HMAC-SHA256 over length-prefixed parts, under a domain separator.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; LOOKUP_LEN] {
        let len = LOOKUP_DOMAIN.len() + parts.iter().map(|p| 8 + p.len()).sum::<usize>();
        let mut msg = Zeroizing::new(Vec::with_capacity(len));
        msg.extend_from_slice(LOOKUP_DOMAIN);
        for part in parts {
            msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
            msg.extend_from_slice(part);
        }
        let tag = hmac::sign(&self.hmac, &msg);
        let mut out = [0u8; LOOKUP_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl LookupKey {
    /// Plain HMAC-SHA256 of `msg` (used for the key's canary).
    pub(crate) fn sign_raw(&self, msg: &[u8]) -> Vec<u8> {
        hmac::sign(&self.hmac, msg).as_ref().to_vec()
    }

    /// Constant-time check of a tag made by [`sign_raw`](Self::sign_raw).
    pub(crate) fn verify_raw(&self, msg: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.hmac, msg, tag).is_ok()
    }
}

impl std::fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupKey(<redacted>)")
    }
}

impl LookupKey {
    /// The ledger key: HMAC-SHA256(lookup key, domain). Derived, never stored, so it sits
    /// under the same key-encryption key as the lookup key it comes from.
    fn derive_ledger_key(&self) -> LedgerKey {
        let derived = Zeroizing::new(self.sign_raw(LEDGER_KEY_DOMAIN));
        LedgerKey {
            hmac: hmac::Key::new(hmac::HMAC_SHA256, &derived),
        }
    }
}

/// The HMAC-SHA256 key that authenticates the ledger (`ledger.rs`): its per-row entries and
/// its state. Kept apart from the lookup key so no ledger tag is ever a lookup hash.
pub(crate) struct LedgerKey {
    hmac: hmac::Key,
}

impl LedgerKey {
    fn message(parts: &[&[u8]]) -> Vec<u8> {
        let mut msg = Vec::with_capacity(parts.iter().map(|p| 8 + p.len()).sum());
        for part in parts {
            msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
            msg.extend_from_slice(part);
        }
        msg
    }

    /// HMAC-SHA256 over length-prefixed parts.
    fn mac(&self, parts: &[&[u8]]) -> [u8; LOOKUP_LEN] {
        let tag = hmac::sign(&self.hmac, &Self::message(parts));
        let mut out = [0u8; LOOKUP_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Constant-time check of a [`mac`](Self::mac).
    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        hmac::verify(&self.hmac, &Self::message(parts), tag).is_ok()
    }
}

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerKey(<redacted>)")
    }
}

/// Fresh random key material.
pub(crate) fn random_key(rng: &SystemRandom) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill(&mut key[..]).map_err(|_| StoreError::Random)?;
    Ok(key)
}

/// Random nonces drawn from the OS generator in batches: one system call per 64 seals
/// instead of one per seal. Nonces are public, so buffering them exposes nothing.
#[derive(Debug)]
struct NoncePool {
    buf: [u8; NONCE_LEN * NoncePool::BATCH],
    next: usize,
    rng: SystemRandom,
}

impl NoncePool {
    const BATCH: usize = 64;

    fn new() -> Self {
        Self {
            buf: [0; NONCE_LEN * Self::BATCH],
            next: Self::BATCH,
            rng: SystemRandom::new(),
        }
    }

    fn take(&mut self) -> Result<[u8; NONCE_LEN]> {
        if self.next == Self::BATCH {
            self.rng
                .fill(&mut self.buf)
                .map_err(|_| StoreError::Random)?;
            self.next = 0;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&self.buf[self.next * NONCE_LEN..(self.next + 1) * NONCE_LEN]);
        self.next += 1;
        Ok(nonce)
    }
}

/// Whether values are sealed. `Plain` exists only for the benchmark baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Sealed,
    Plain,
}

/// The keys a store holds in memory: every live data key, the primary one used for new
/// values, and the lookup key.
#[derive(Debug)]
pub(crate) struct Cipher {
    mode: Mode,
    keys: HashMap<KeyId, DataKey>,
    primary: KeyId,
    lookup: LookupKey,
    ledger: LedgerKey,
    nonces: Mutex<NoncePool>,
}

impl Cipher {
    /// Builds a cipher; fails when `primary` is not among `keys`.
    pub(crate) fn new(
        mode: Mode,
        keys: Vec<DataKey>,
        primary: KeyId,
        lookup: LookupKey,
    ) -> Result<Self> {
        let keys: HashMap<KeyId, DataKey> = keys.into_iter().map(|k| (k.id, k)).collect();
        if !keys.contains_key(&primary) {
            return Err(StoreError::KeySet("primary data key missing"));
        }
        let ledger = lookup.derive_ledger_key();
        Ok(Self {
            mode,
            keys,
            primary,
            lookup,
            ledger,
            nonces: Mutex::new(NoncePool::new()),
        })
    }

    /// Keyed hash of one live row for the ledger's digests: table tag, row key and version.
    /// All zeros in the benchmark's plaintext mode.
    pub(crate) fn ledger_entry(&self, table: u8, row: &[u8], version: u64) -> [u8; LOOKUP_LEN] {
        match self.mode {
            Mode::Sealed => {
                self.ledger
                    .mac(&[&b"entry"[..], &[table][..], row, &version.to_be_bytes()[..]])
            }
            Mode::Plain => [0; LOOKUP_LEN],
        }
    }

    /// Tag of the ledger's state. Empty in the benchmark's plaintext mode.
    pub(crate) fn ledger_tag(&self, state: &[u8]) -> Vec<u8> {
        match self.mode {
            Mode::Sealed => self.ledger.mac(&[&b"state"[..], state]).to_vec(),
            Mode::Plain => Vec::new(),
        }
    }

    /// Constant-time check of a [`ledger_tag`](Self::ledger_tag).
    pub(crate) fn verify_ledger_tag(&self, state: &[u8], tag: &[u8]) -> bool {
        match self.mode {
            Mode::Sealed => self.ledger.verify(&[&b"state"[..], state], tag),
            Mode::Plain => true,
        }
    }

    /// Id of the key new values are sealed with.
    pub(crate) fn primary_id(&self) -> KeyId {
        self.primary
    }

    /// Every key's raw bytes, for tests that scan files for key material.
    #[cfg(test)]
    pub(crate) fn all_key_material(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self.keys.values().map(|k| k.material().to_vec()).collect();
        out.push(self.lookup.material().to_vec());
        out
    }

    /// Mode of this cipher.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Keyed lookup hash of `key` within `table` and `namespace`.
    pub(crate) fn lookup(&self, table: &str, namespace: &str, key: &[u8]) -> Vec<u8> {
        match self.mode {
            Mode::Sealed => self
                .lookup
                .mac(&[table.as_bytes(), namespace.as_bytes(), key])
                .to_vec(),
            Mode::Plain => key.to_vec(),
        }
    }

    /// Seals `plaintext` for `slot` under the primary key.
    pub(crate) fn seal(&self, slot: Slot<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.mode == Mode::Plain {
            return Ok(plaintext.to_vec());
        }
        let key = self
            .keys
            .get(&self.primary)
            .ok_or(StoreError::KeySet("primary data key missing"))?;
        let nonce = self
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        seal_with(key, nonce, slot, plaintext)
    }

    /// Opens an envelope read from `slot`.
    pub(crate) fn open(&self, slot: Slot<'_>, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.mode == Mode::Plain {
            return Ok(Zeroizing::new(envelope.to_vec()));
        }
        let header = parse_header(slot, envelope)?;
        let key = self
            .keys
            .get(&header.key_id)
            .ok_or(slot.tampered(TamperKind::UnknownKeyId))?;
        open_with(key, slot, envelope)
    }
}

struct Header {
    key_id: KeyId,
}

fn parse_header(slot: Slot<'_>, envelope: &[u8]) -> Result<Header> {
    if envelope.len() < OVERHEAD {
        return Err(slot.tampered(TamperKind::Truncated));
    }
    if envelope[0] != FORMAT_V1 {
        return Err(slot.tampered(TamperKind::UnknownFormat));
    }
    let mut id = [0u8; 4];
    id.copy_from_slice(&envelope[1..5]);
    Ok(Header {
        key_id: KeyId::from_be_bytes(id),
    })
}

/// Calls `f` with the associated data of `slot` under envelope `header`, built on the stack
/// when it fits (the common case) to keep an allocation off every value.
fn with_associated_data<T>(header: &[u8], slot: Slot<'_>, f: impl FnOnce(&[u8]) -> T) -> T {
    const STACK: usize = 256;
    let parts = [slot.table.as_bytes(), slot.column.as_bytes(), slot.row];
    let version_len = if slot.version.is_some() { 8 } else { 0 };
    let len =
        AD_DOMAIN.len() + 5 + 4 + parts.iter().map(|p| 8 + p.len()).sum::<usize>() + version_len;
    let mut stack = [0u8; STACK];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= STACK {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap[..]
    };
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(AD_DOMAIN);
    put(&header[..5]);
    let layout = match slot.version {
        Some(_) => RECORD_LAYOUT_V2,
        None => RECORD_LAYOUT_V1,
    };
    put(&layout.to_be_bytes());
    for part in parts {
        put(&(part.len() as u64).to_be_bytes());
        put(part);
    }
    if let Some(version) = slot.version {
        put(&version.to_be_bytes());
    }
    f(buf)
}

/// Seals `plaintext` with `key` for `slot` under `nonce`, which must be fresh and random.
pub(crate) fn seal_with(
    key: &DataKey,
    nonce: [u8; NONCE_LEN],
    slot: Slot<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&key.id.to_be_bytes());
    out.extend_from_slice(&nonce);
    let mut header = [0u8; 5];
    header.copy_from_slice(&out[..5]);
    out.extend_from_slice(plaintext);
    let tag = with_associated_data(&header, slot, |ad| {
        key.aead().seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(ad),
            &mut out[HEADER_LEN..],
        )
    })
    .map_err(|_| StoreError::InvalidInput("value too large to seal"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens `envelope` with `key`; the caller has checked that the header names `key`.
pub(crate) fn open_with(
    key: &DataKey,
    slot: Slot<'_>,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let header = parse_header(slot, envelope)?;
    if header.key_id != key.id {
        return Err(slot.tampered(TamperKind::UnknownKeyId));
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&envelope[5..HEADER_LEN]);
    let mut buf = Zeroizing::new(envelope[HEADER_LEN..].to_vec());
    let len = with_associated_data(envelope, slot, |ad| {
        key.aead()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad),
                &mut buf[..],
            )
            .map(|plain| plain.len())
    })
    .map_err(|_| slot.tampered(TamperKind::AuthenticationFailed))?;
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cipher_with(ids: &[KeyId], primary: KeyId) -> Cipher {
        let rng = SystemRandom::new();
        let keys = ids
            .iter()
            .map(|&id| DataKey::from_bytes(id, &random_key(&rng).unwrap()[..]).unwrap())
            .collect();
        let lookup = LookupKey::from_bytes(&random_key(&rng).unwrap()[..]).unwrap();
        Cipher::new(Mode::Sealed, keys, primary, lookup).unwrap()
    }

    fn slot(row: &[u8]) -> Slot<'_> {
        Slot {
            table: "kv",
            column: "value",
            row,
            version: Some(1),
        }
    }

    #[test]
    fn envelope_layout_is_header_ciphertext_tag() {
        let cipher = cipher_with(&[7], 7);
        let env = cipher.seal(slot(b"r"), b"hello").unwrap();
        assert_eq!(env.len(), OVERHEAD + 5);
        assert_eq!(env[0], FORMAT_V1);
        assert_eq!(&env[1..5], &7u32.to_be_bytes());
        assert!(!env.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn nonces_differ_between_seals() {
        let cipher = cipher_with(&[1], 1);
        let a = cipher.seal(slot(b"r"), b"same").unwrap();
        let b = cipher.seal(slot(b"r"), b"same").unwrap();
        assert_ne!(a[5..HEADER_LEN], b[5..HEADER_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn lookup_depends_on_table_namespace_and_key() {
        let cipher = cipher_with(&[1], 1);
        let base = cipher.lookup("kv", "ns", b"k");
        assert_eq!(base, cipher.lookup("kv", "ns", b"k"));
        assert_ne!(base, cipher.lookup("artifacts", "ns", b"k"));
        assert_ne!(base, cipher.lookup("kv", "ns2", b"k"));
        assert_ne!(base, cipher.lookup("kv", "ns", b"k2"));
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            cipher.lookup("kv", "ab", b"c"),
            cipher.lookup("kv", "a", b"bc")
        );
    }

    #[test]
    fn old_keys_still_open_after_primary_changes() {
        let old = cipher_with(&[1], 1);
        let env = old.seal(slot(b"r"), b"v").unwrap();
        let rng = SystemRandom::new();
        let same_key = DataKey::from_bytes(1, old.keys[&1].material()).unwrap();
        let new_key = DataKey::from_bytes(2, &random_key(&rng).unwrap()[..]).unwrap();
        let lookup = LookupKey::from_bytes(old.lookup.material()).unwrap();
        let rotated = Cipher::new(Mode::Sealed, vec![same_key, new_key], 2, lookup).unwrap();
        assert_eq!(&rotated.open(slot(b"r"), &env).unwrap()[..], b"v");
        assert_eq!(
            &rotated.seal(slot(b"r"), b"v").unwrap()[1..5],
            &2u32.to_be_bytes()
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let cipher = cipher_with(&[1], 1);
        let text = format!("{cipher:?}");
        assert!(text.contains("<redacted>"));
        let hex: String = cipher.keys[&1]
            .material()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!text.contains(&hex));
        assert!(!text.contains(&format!("{:?}", cipher.keys[&1].material())));
    }

    fn kind(err: StoreError) -> TamperKind {
        match err {
            StoreError::Tampered { kind, .. } => kind,
            other => panic!("expected Tampered, got {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn seal_open_round_trips(value in proptest::collection::vec(any::<u8>(), 0..2048),
                                 row in proptest::collection::vec(any::<u8>(), 0..64)) {
            let cipher = cipher_with(&[3], 3);
            let env = cipher.seal(slot(&row), &value).unwrap();
            prop_assert_eq!(&cipher.open(slot(&row), &env).unwrap()[..], &value[..]);
        }

        #[test]
        fn any_single_bit_flip_is_rejected(value in proptest::collection::vec(any::<u8>(), 0..256),
                                           bit in any::<prop::sample::Index>()) {
            let cipher = cipher_with(&[3], 3);
            let mut env = cipher.seal(slot(b"row"), &value).unwrap();
            let i = bit.index(env.len() * 8);
            env[i / 8] ^= 1 << (i % 8);
            let err = cipher.open(slot(b"row"), &env).unwrap_err();
            let in_slot = matches!(err, StoreError::Tampered { table: "kv", column: "value", .. });
            prop_assert!(in_slot);
        }

        #[test]
        fn moved_ciphertext_is_rejected(value in proptest::collection::vec(any::<u8>(), 0..256),
                                        row_a in proptest::collection::vec(any::<u8>(), 0..16),
                                        row_b in proptest::collection::vec(any::<u8>(), 0..16)) {
            prop_assume!(row_a != row_b);
            let cipher = cipher_with(&[3], 3);
            let env = cipher.seal(slot(&row_a), &value).unwrap();
            prop_assert_eq!(kind(cipher.open(slot(&row_b), &env).unwrap_err()), TamperKind::AuthenticationFailed);
            let other_column = Slot { table: "kv", column: "other", row: &row_a, version: Some(1) };
            prop_assert_eq!(kind(cipher.open(other_column, &env).unwrap_err()), TamperKind::AuthenticationFailed);
            let other_table = Slot { table: "events", column: "value", row: &row_a, version: Some(1) };
            let other_version = Slot { version: Some(2), ..slot(&row_a) };
            prop_assert_eq!(kind(cipher.open(other_version, &env).unwrap_err()), TamperKind::AuthenticationFailed);
            let unversioned = Slot { version: None, ..slot(&row_a) };
            prop_assert_eq!(kind(cipher.open(unversioned, &env).unwrap_err()), TamperKind::AuthenticationFailed);
            prop_assert_eq!(kind(cipher.open(other_table, &env).unwrap_err()), TamperKind::AuthenticationFailed);
        }

        #[test]
        fn truncation_is_rejected(value in proptest::collection::vec(any::<u8>(), 0..128),
                                  cut in any::<prop::sample::Index>()) {
            let cipher = cipher_with(&[3], 3);
            let env = cipher.seal(slot(b"r"), &value).unwrap();
            let keep = cut.index(env.len());
            let err = cipher.open(slot(b"r"), &env[..keep]).unwrap_err();
            prop_assert!(matches!(kind(err), TamperKind::Truncated | TamperKind::AuthenticationFailed));
        }
    }

    #[test]
    fn wrong_version_and_unknown_key_id_are_typed() {
        let cipher = cipher_with(&[3, 4], 3);
        let env = cipher.seal(slot(b"r"), b"v").unwrap();
        let mut bad_version = env.clone();
        bad_version[0] = 9;
        assert_eq!(
            kind(cipher.open(slot(b"r"), &bad_version).unwrap_err()),
            TamperKind::UnknownFormat
        );
        let mut unknown = env.clone();
        unknown[1..5].copy_from_slice(&99u32.to_be_bytes());
        assert_eq!(
            kind(cipher.open(slot(b"r"), &unknown).unwrap_err()),
            TamperKind::UnknownKeyId
        );
        let mut relabelled = env;
        relabelled[1..5].copy_from_slice(&4u32.to_be_bytes());
        assert_eq!(
            kind(cipher.open(slot(b"r"), &relabelled).unwrap_err()),
            TamperKind::AuthenticationFailed
        );
    }
}
