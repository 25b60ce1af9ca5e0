//! The key hierarchy: host-supplied key-encryption keys ([`KeyProvider`]), the store's data
//! keys and lookup key wrapped by them, the canary that detects a wrong key, and the
//! per-key nonce budget.
//!
//! Wrapped keys live in the `keyset` table. Each row holds one key wrapped by the provider
//! and a canary made with that key, so a wrong key-encryption key is detected before any
//! value is touched and is reported as [`StoreError::WrongKey`], never as corruption.

use std::num::NonZeroU32;
use std::sync::Mutex;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use zeroize::Zeroizing;

use super::cipher::{self, Cipher, DataKey, KEY_LEN, KeyId, LookupKey, Mode, Slot};
use super::error::{KeyProviderError, Result, StoreError};

/// Supplies the key-encryption key (KEK) that wraps the store's data keys.
///
/// The host implements it: iOS Keychain / Secure Enclave and Android Keystore through the
/// bindings, [`PassphraseKeyProvider`] or [`RawKeyProvider`] on desktop and in tests.
///
/// The trait wraps and unwraps rather than handing out the KEK, so a hardware keystore can
/// keep a non-exportable key and the KEK never enters this process. It is object-safe and
/// `Send + Sync` so the bindings can implement it from Swift or Kotlin.
///
/// `key_id` is the id of the key being wrapped; implementations should bind it as associated
/// data so wrapped keys cannot be swapped between rows.
pub trait KeyProvider: Send + Sync {
    /// Wraps (encrypts and authenticates) `key`. Called when a store is created and on
    /// rotation.
    fn wrap_key(&self, key_id: u32, key: &[u8]) -> Result<Vec<u8>, KeyProviderError>;

    /// Unwraps a blob produced by [`wrap_key`](Self::wrap_key) for the same `key_id`.
    ///
    /// Must return [`KeyProviderError::Rejected`] when the KEK does not authenticate the
    /// blob: the store reports it as [`StoreError::WrongKey`] and leaves the file untouched.
    fn unwrap_key(
        &self,
        key_id: u32,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyProviderError>;
}

const RAW_FORMAT: u8 = 1;
const PASSPHRASE_FORMAT: u8 = 2;
const WRAP_DOMAIN: &[u8] = b"edgekeep.store.wrap";
const SALT_LEN: usize = 16;

/// A [`KeyProvider`] holding a 256-bit KEK in memory; for desktop hosts with their own
/// secret storage and for tests. Wraps with AES-256-GCM.
pub struct RawKeyProvider {
    kek: Zeroizing<[u8; KEY_LEN]>,
    rng: SystemRandom,
}

impl RawKeyProvider {
    /// A provider using `kek` as the key-encryption key.
    pub fn new(kek: [u8; KEY_LEN]) -> Self {
        Self {
            kek: Zeroizing::new(kek),
            rng: SystemRandom::new(),
        }
    }

    /// A provider with a fresh random KEK (useful for ephemeral stores and tests).
    ///
    /// Fails only when the system random number generator fails.
    pub fn generate() -> Result<Self, KeyProviderError> {
        let rng = SystemRandom::new();
        let mut kek = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill(&mut kek[..])
            .map_err(|_| KeyProviderError::Unavailable)?;
        Ok(Self { kek, rng })
    }
}

impl std::fmt::Debug for RawKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawKeyProvider(<redacted>)")
    }
}

impl KeyProvider for RawKeyProvider {
    fn wrap_key(&self, key_id: u32, key: &[u8]) -> Result<Vec<u8>, KeyProviderError> {
        aead_wrap(&self.kek, &self.rng, &[RAW_FORMAT], key_id, key)
    }

    fn unwrap_key(
        &self,
        key_id: u32,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyProviderError> {
        match wrapped.split_first() {
            Some((&RAW_FORMAT, _)) => aead_unwrap(&self.kek, &wrapped[..1], key_id, &wrapped[1..]),
            _ => Err(KeyProviderError::MalformedWrappedKey),
        }
    }
}

/// A [`KeyProvider`] deriving the KEK from a passphrase with PBKDF2-HMAC-SHA256.
///
/// Each wrapped blob carries its salt and iteration count (authenticated), so the
/// iteration count can be raised later without breaking old stores. The derived KEK of the
/// last salt is cached, so opening a store costs one derivation.
pub struct PassphraseKeyProvider {
    passphrase: Zeroizing<Vec<u8>>,
    iterations: NonZeroU32,
    cache: Mutex<Option<DerivedKek>>,
    rng: SystemRandom,
}

struct DerivedKek {
    salt: [u8; SALT_LEN],
    iterations: u32,
    kek: Zeroizing<[u8; KEY_LEN]>,
}

impl PassphraseKeyProvider {
    /// Default PBKDF2-HMAC-SHA256 iteration count (OWASP 2023 guidance).
    pub const DEFAULT_ITERATIONS: u32 = 600_000;
    /// Smallest iteration count accepted, for writing and for reading.
    pub const MIN_ITERATIONS: u32 = 100_000;
    /// Largest iteration count accepted when reading a blob (bounds the work a crafted
    /// file can cause).
    pub const MAX_ITERATIONS: u32 = 10_000_000;

    /// A provider with [`DEFAULT_ITERATIONS`](Self::DEFAULT_ITERATIONS).
    ///
    /// Fails with [`KeyProviderError::InvalidConfiguration`] for an empty passphrase.
    pub fn new(passphrase: &str) -> Result<Self, KeyProviderError> {
        Self::with_iterations(passphrase, Self::DEFAULT_ITERATIONS)
    }

    /// A provider with an explicit iteration count in
    /// `MIN_ITERATIONS..=MAX_ITERATIONS`.
    pub fn with_iterations(passphrase: &str, iterations: u32) -> Result<Self, KeyProviderError> {
        if passphrase.is_empty() {
            return Err(KeyProviderError::InvalidConfiguration("empty passphrase"));
        }
        if !(Self::MIN_ITERATIONS..=Self::MAX_ITERATIONS).contains(&iterations) {
            return Err(KeyProviderError::InvalidConfiguration(
                "iteration count out of range",
            ));
        }
        let iterations = NonZeroU32::new(iterations).ok_or(
            KeyProviderError::InvalidConfiguration("iteration count out of range"),
        )?;
        Ok(Self {
            passphrase: Zeroizing::new(passphrase.as_bytes().to_vec()),
            iterations,
            cache: Mutex::new(None),
            rng: SystemRandom::new(),
        })
    }

    fn with_kek<T>(
        &self,
        salt: &[u8; SALT_LEN],
        iterations: u32,
        f: impl FnOnce(&[u8; KEY_LEN]) -> T,
    ) -> Result<T, KeyProviderError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let hit = matches!(&*cache, Some(d) if d.salt == *salt && d.iterations == iterations);
        if !hit {
            let rounds =
                NonZeroU32::new(iterations).ok_or(KeyProviderError::MalformedWrappedKey)?;
            let mut kek = Zeroizing::new([0u8; KEY_LEN]);
            pbkdf2::derive(
                pbkdf2::PBKDF2_HMAC_SHA256,
                rounds,
                salt,
                &self.passphrase,
                &mut kek[..],
            );
            *cache = Some(DerivedKek {
                salt: *salt,
                iterations,
                kek,
            });
        }
        match &*cache {
            Some(d) => Ok(f(&d.kek)),
            None => Err(KeyProviderError::Unavailable),
        }
    }
}

impl std::fmt::Debug for PassphraseKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassphraseKeyProvider")
            .field("passphrase", &"<redacted>")
            .field("iterations", &self.iterations)
            .finish()
    }
}

impl KeyProvider for PassphraseKeyProvider {
    fn wrap_key(&self, key_id: u32, key: &[u8]) -> Result<Vec<u8>, KeyProviderError> {
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .as_ref()
                .filter(|d| d.iterations == self.iterations.get())
                .map(|d| d.salt)
        };
        let salt = match cached {
            Some(salt) => salt,
            None => {
                let mut salt = [0u8; SALT_LEN];
                self.rng
                    .fill(&mut salt)
                    .map_err(|_| KeyProviderError::Unavailable)?;
                salt
            }
        };
        let mut header = vec![PASSPHRASE_FORMAT];
        header.extend_from_slice(&self.iterations.get().to_be_bytes());
        header.extend_from_slice(&salt);
        self.with_kek(&salt, self.iterations.get(), |kek| {
            aead_wrap(kek, &self.rng, &header, key_id, key)
        })?
    }

    fn unwrap_key(
        &self,
        key_id: u32,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyProviderError> {
        const HEADER: usize = 1 + 4 + SALT_LEN;
        if wrapped.len() < HEADER || wrapped[0] != PASSPHRASE_FORMAT {
            return Err(KeyProviderError::MalformedWrappedKey);
        }
        let mut iterations = [0u8; 4];
        iterations.copy_from_slice(&wrapped[1..5]);
        let iterations = u32::from_be_bytes(iterations);
        if !(Self::MIN_ITERATIONS..=Self::MAX_ITERATIONS).contains(&iterations) {
            return Err(KeyProviderError::MalformedWrappedKey);
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&wrapped[5..HEADER]);
        self.with_kek(&salt, iterations, |kek| {
            aead_unwrap(kek, &wrapped[..HEADER], key_id, &wrapped[HEADER..])
        })?
    }
}

fn wrap_ad(header: &[u8], key_id: u32) -> Vec<u8> {
    let mut ad = WRAP_DOMAIN.to_vec();
    ad.extend_from_slice(header);
    ad.extend_from_slice(&key_id.to_be_bytes());
    ad
}

fn aead_wrap(
    kek: &[u8; KEY_LEN],
    rng: &SystemRandom,
    header: &[u8],
    key_id: u32,
    key: &[u8],
) -> Result<Vec<u8>, KeyProviderError> {
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, kek).map_err(|_| KeyProviderError::Unavailable)?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce)
        .map_err(|_| KeyProviderError::Unavailable)?;
    let mut body = Zeroizing::new(key.to_vec());
    let tag = aead
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(wrap_ad(header, key_id)),
            &mut body[..],
        )
        .map_err(|_| KeyProviderError::Unavailable)?;
    let mut out = header.to_vec();
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn aead_unwrap(
    kek: &[u8; KEY_LEN],
    header: &[u8],
    key_id: u32,
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyProviderError> {
    if body.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(KeyProviderError::MalformedWrappedKey);
    }
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, kek).map_err(|_| KeyProviderError::Unavailable)?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&body[..NONCE_LEN]);
    let mut buf = Zeroizing::new(body[NONCE_LEN..].to_vec());
    let len = aead
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(wrap_ad(header, key_id)),
            &mut buf[..],
        )
        .map_err(|_| KeyProviderError::Rejected)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// What a keyset row's key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// An AEAD data key.
    Data = 1,
    /// The HMAC lookup key.
    Lookup = 2,
}

/// Life-cycle state of a keyset row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Seals new values.
    Primary = 1,
    /// Only opens values not yet re-encrypted; destroyed once no value uses it.
    DecryptOnly = 2,
}

const CANARY: &[u8] = b"edgekeep.store.canary.v1";

fn lookup_canary_message(id: KeyId) -> Vec<u8> {
    let mut msg = CANARY.to_vec();
    msg.extend_from_slice(&id.to_be_bytes());
    msg
}

fn canary_slot(row: &[u8]) -> Slot<'_> {
    Slot {
        table: "keyset",
        column: "canary",
        row,
        version: None,
    }
}

/// Unix time in milliseconds; 0 if the clock is before 1970.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn fresh_key_id(conn: &Connection, rng: &SystemRandom) -> Result<KeyId> {
    loop {
        let mut id = [0u8; 4];
        rng.fill(&mut id).map_err(|_| StoreError::Random)?;
        let id = KeyId::from_be_bytes(id);
        if id == 0 {
            continue;
        }
        let taken: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM keyset WHERE key_id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if !taken {
            return Ok(id);
        }
    }
}

/// Creates the lookup key and the first data key of a new store.
pub(crate) fn create_keyset(tx: &Transaction<'_>, provider: &dyn KeyProvider) -> Result<()> {
    let rng = SystemRandom::new();
    let lookup_id = fresh_key_id(tx, &rng)?;
    let lookup = LookupKey::from_bytes(&cipher::random_key(&rng)?[..])?;
    let wrapped = provider.wrap_key(lookup_id, lookup.material())?;
    let canary = lookup.sign_raw(&lookup_canary_message(lookup_id));
    tx.execute(
        "INSERT INTO keyset (key_id, purpose, status, wrapped, canary, nonce_reserved, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        params![
            lookup_id,
            Purpose::Lookup as i64,
            Status::Primary as i64,
            wrapped,
            &canary[..],
            now_millis()
        ],
    )?;
    add_primary_data_key(tx, provider)?;
    Ok(())
}

/// Adds a new primary data key and demotes the previous primary to decrypt-only.
pub(crate) fn add_primary_data_key(
    tx: &Transaction<'_>,
    provider: &dyn KeyProvider,
) -> Result<KeyId> {
    let rng = SystemRandom::new();
    let id = fresh_key_id(tx, &rng)?;
    let key = DataKey::from_bytes(id, &cipher::random_key(&rng)?[..])?;
    let wrapped = provider.wrap_key(id, key.material())?;
    let id_bytes = id.to_be_bytes();
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| StoreError::Random)?;
    let canary = cipher::seal_with(&key, nonce, canary_slot(&id_bytes), CANARY)?;
    tx.execute(
        "UPDATE keyset SET status = ?1 WHERE purpose = ?2 AND status = ?3",
        params![
            Status::DecryptOnly as i64,
            Purpose::Data as i64,
            Status::Primary as i64
        ],
    )?;
    tx.execute(
        "INSERT INTO keyset (key_id, purpose, status, wrapped, canary, nonce_reserved, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        params![
            id,
            Purpose::Data as i64,
            Status::Primary as i64,
            wrapped,
            canary,
            now_millis()
        ],
    )?;
    Ok(id)
}

/// Re-wraps every key under a new provider's KEK (passphrase change, keystore migration).
pub(crate) fn rewrap_all(
    tx: &Transaction<'_>,
    old: &dyn KeyProvider,
    new: &dyn KeyProvider,
) -> Result<()> {
    let rows: Vec<(KeyId, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT key_id, wrapped FROM keyset")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (id, wrapped) in rows {
        let key = old.unwrap_key(id, &wrapped).map_err(provider_error)?;
        let rewrapped = new.wrap_key(id, &key)?;
        tx.execute(
            "UPDATE keyset SET wrapped = ?1 WHERE key_id = ?2",
            params![rewrapped, id],
        )?;
    }
    Ok(())
}

fn provider_error(err: KeyProviderError) -> StoreError {
    match err {
        KeyProviderError::Rejected => StoreError::WrongKey,
        other => StoreError::KeyProvider(other),
    }
}

/// Reads, unwraps and verifies every key of the store. Read-only: a wrong key changes
/// nothing on disk.
pub(crate) fn load_cipher(
    conn: &Connection,
    provider: &dyn KeyProvider,
    mode: Mode,
) -> Result<Cipher> {
    let mut stmt = conn.prepare("SELECT key_id, purpose, status, wrapped, canary FROM keyset")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, KeyId>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, Vec<u8>>(4)?,
        ))
    })?;
    let mut data_keys = Vec::new();
    let mut primary = None;
    let mut lookup = None;
    for row in rows {
        let (id, purpose, status, wrapped, canary) = row?;
        let material = provider.unwrap_key(id, &wrapped).map_err(provider_error)?;
        let id_bytes = id.to_be_bytes();
        if purpose == Purpose::Lookup as i64 {
            if material.len() != KEY_LEN {
                return Err(StoreError::WrongKey);
            }
            let key = LookupKey::from_bytes(&material)?;
            if !key.verify_raw(&lookup_canary_message(id), &canary) {
                return Err(StoreError::WrongKey);
            }
            lookup = Some(key);
        } else if purpose == Purpose::Data as i64 {
            if material.len() != KEY_LEN {
                return Err(StoreError::WrongKey);
            }
            let key = DataKey::from_bytes(id, &material)?;
            let opened = cipher::open_with(&key, canary_slot(&id_bytes), &canary)
                .map_err(|_| StoreError::WrongKey)?;
            if opened.as_slice() != CANARY {
                return Err(StoreError::WrongKey);
            }
            if status == Status::Primary as i64 {
                if primary.is_some() {
                    return Err(StoreError::KeySet("two primary data keys"));
                }
                primary = Some(id);
            }
            data_keys.push(key);
        } else {
            return Err(StoreError::KeySet("unknown key purpose"));
        }
    }
    let lookup = lookup.ok_or(StoreError::KeySet("lookup key missing"))?;
    let primary = primary.ok_or(StoreError::KeySet("primary data key missing"))?;
    Cipher::new(mode, data_keys, primary, lookup)
}

/// Whether the store has any key rows yet.
pub(crate) fn keyset_exists(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM keyset LIMIT 1", [], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Ids of decrypt-only data keys.
pub(crate) fn decrypt_only_keys(conn: &Connection) -> Result<Vec<KeyId>> {
    let mut stmt = conn.prepare("SELECT key_id FROM keyset WHERE purpose = ?1 AND status = ?2")?;
    let ids = stmt
        .query_map(
            params![Purpose::Data as i64, Status::DecryptOnly as i64],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Destroys a decrypt-only data key (its wrapped copy is overwritten, `secure_delete`).
pub(crate) fn destroy_key(tx: &Transaction<'_>, id: KeyId) -> Result<()> {
    tx.execute(
        "DELETE FROM keyset WHERE key_id = ?1 AND purpose = ?2 AND status = ?3",
        params![id, Purpose::Data as i64, Status::DecryptOnly as i64],
    )?;
    Ok(())
}

/// Counts `count` seals under `key_id` inside `tx`, for re-sealing done outside the
/// writer's [`NonceBudget`] (the schema-3 upgrade); the writer loads the raised
/// reservation afterwards.
pub(crate) fn reserve_nonces_in(tx: &Transaction<'_>, key_id: KeyId, count: u64) -> Result<()> {
    let reserved: i64 = tx.query_row(
        "SELECT nonce_reserved FROM keyset WHERE key_id = ?1",
        [key_id],
        |r| r.get(0),
    )?;
    let needed = u64::try_from(reserved)
        .unwrap_or(NonceBudget::LIMIT)
        .saturating_add(count);
    if needed > NonceBudget::LIMIT {
        return Err(StoreError::KeySet("nonce budget exhausted"));
    }
    tx.execute(
        "UPDATE keyset SET nonce_reserved = ?1 WHERE key_id = ?2",
        params![i64::try_from(needed).unwrap_or(i64::MAX), key_id],
    )?;
    Ok(())
}

/// Counts messages sealed under the primary key, against NIST SP 800-38D's limit for
/// random 96-bit nonces (2^32 messages per key).
///
/// Reservations are persisted in blocks before use, so a crash can only over-count.
#[derive(Debug)]
pub(crate) struct NonceBudget {
    key_id: KeyId,
    used: u64,
    reserved: u64,
}

impl NonceBudget {
    /// Messages per key allowed with random nonces.
    pub(crate) const LIMIT: u64 = 1 << 32;
    /// Reservation block size.
    pub(crate) const BLOCK: u64 = 1 << 16;

    /// Loads the budget of `key_id`: everything reserved before counts as used.
    pub(crate) fn load(conn: &Connection, key_id: KeyId) -> Result<Self> {
        let reserved: i64 = conn.query_row(
            "SELECT nonce_reserved FROM keyset WHERE key_id = ?1",
            [key_id],
            |r| r.get(0),
        )?;
        let reserved = u64::try_from(reserved).unwrap_or(Self::LIMIT);
        Ok(Self {
            key_id,
            used: reserved,
            reserved,
        })
    }

    /// Key id this budget counts for.
    pub(crate) fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Whether `count` more messages fit under the limit.
    pub(crate) fn fits(&self, count: u64) -> bool {
        self.used.saturating_add(count) <= Self::LIMIT
    }

    /// Makes room for `count` messages, persisting a new reservation in its own
    /// transaction when needed. The caller checked [`fits`](Self::fits).
    pub(crate) fn reserve(&mut self, conn: &mut Connection, count: u64) -> Result<()> {
        let needed = self.used.saturating_add(count);
        if needed > self.reserved {
            let blocks = (needed - self.reserved).div_ceil(Self::BLOCK);
            let reserved = self
                .reserved
                .saturating_add(blocks.saturating_mul(Self::BLOCK))
                .min(Self::LIMIT);
            let stored = i64::try_from(reserved).unwrap_or(i64::MAX);
            conn.execute(
                "UPDATE keyset SET nonce_reserved = ?1 WHERE key_id = ?2",
                params![stored, self.key_id],
            )?;
            self.reserved = reserved;
        }
        self.used = needed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_provider_round_trips_and_binds_key_id() {
        let p = RawKeyProvider::generate().unwrap();
        let wrapped = p.wrap_key(5, b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            &p.unwrap_key(5, &wrapped).unwrap()[..],
            b"0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            p.unwrap_key(6, &wrapped).unwrap_err(),
            KeyProviderError::Rejected
        );
        let other = RawKeyProvider::generate().unwrap();
        assert_eq!(
            other.unwrap_key(5, &wrapped).unwrap_err(),
            KeyProviderError::Rejected
        );
        assert_eq!(
            p.unwrap_key(5, &wrapped[..10]).unwrap_err(),
            KeyProviderError::MalformedWrappedKey
        );
        assert_eq!(
            p.unwrap_key(5, &[]).unwrap_err(),
            KeyProviderError::MalformedWrappedKey
        );
    }

    #[test]
    fn passphrase_provider_round_trips_and_rejects_other_passphrase() {
        let p = PassphraseKeyProvider::with_iterations(
            "correct horse",
            PassphraseKeyProvider::MIN_ITERATIONS,
        )
        .unwrap();
        let wrapped = p.wrap_key(1, &[7u8; 32]).unwrap();
        assert_eq!(&p.unwrap_key(1, &wrapped).unwrap()[..], &[7u8; 32]);
        let q = PassphraseKeyProvider::with_iterations(
            "battery staple",
            PassphraseKeyProvider::MIN_ITERATIONS,
        )
        .unwrap();
        assert_eq!(
            q.unwrap_key(1, &wrapped).unwrap_err(),
            KeyProviderError::Rejected
        );
        let mut lowered = wrapped.clone();
        lowered[1..5].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(
            p.unwrap_key(1, &lowered).unwrap_err(),
            KeyProviderError::MalformedWrappedKey
        );
    }

    #[test]
    fn passphrase_provider_refuses_weak_settings() {
        assert!(PassphraseKeyProvider::new("").is_err());
        assert!(PassphraseKeyProvider::with_iterations("x", 1000).is_err());
    }

    #[test]
    fn providers_debug_is_redacted() {
        let p = PassphraseKeyProvider::with_iterations(
            "hunter22",
            PassphraseKeyProvider::MIN_ITERATIONS,
        )
        .unwrap();
        assert!(!format!("{p:?}").contains("hunter22"));
        let r = RawKeyProvider::new([0xAB; 32]);
        assert!(!format!("{r:?}").to_lowercase().contains("ab"));
    }
}
