//! The encrypted local store: everything user-derived that the SDK keeps on the device.
//!
//! [`Store`] is the entry point. It keeps one SQLite file (WAL mode, one writer connection,
//! a small pool of readers) in which every sensitive value is sealed with AES-256-GCM under
//! a data key, and every key that needs equality search is an HMAC lookup hash. Data keys
//! are wrapped by a key-encryption key the host supplies through a [`KeyProvider`].
//!
//! Collections: [`Kv`] (key/value blobs), [`Events`] (append-only records with time) and
//! [`Artifacts`] (large blobs such as model files, stored as encrypted chunks).
//!
//! Every sealed value carries a version from a store-wide counter, and an authenticated
//! ledger records which version of each row is live, so a value written back over a newer
//! one, or a deleted row written back, is [`StoreError::Tampered`] (ADR 0015).
//!
//! Files: `error.rs` errors; `cipher.rs` envelope, AEAD and lookup hashes; `keys.rs`
//! key providers, wrapped key set, canary and nonce budget; `ledger.rs` rollback
//! protection (row versions, the ledger); `rotation.rs` data-key rotation; `schema.rs`
//! migrations; `kv.rs`, `events.rs`, `artifacts.rs` collections; `retention.rs` age and size
//! limits; `types.rs` namespaces and zeroizing buffers.

#![warn(missing_docs)]

mod artifacts;
mod cipher;
mod error;
mod events;
mod keys;
mod kv;
mod ledger;
mod retention;
mod rotation;
mod schema;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use artifacts::{ArtifactProgress, Artifacts};
pub use cipher::KeyId;
pub use error::{KeyProviderError, Result, StoreError, TamperKind};
pub use events::{Event, EventId, Events};
pub use keys::{KeyProvider, PassphraseKeyProvider, RawKeyProvider};
pub use kv::Kv;
pub use retention::{RetentionPolicy, RetentionReport};
pub use rotation::RotationProgress;
pub use types::{Namespace, SecretBytes};

use cipher::{Cipher, Mode};
use keys::NonceBudget;
use ledger::{Changes, Ledger};

/// Configures and opens a [`Store`].
pub struct StoreBuilder {
    path: PathBuf,
    provider: Option<Arc<dyn KeyProvider>>,
    retention: BTreeMap<Namespace, RetentionPolicy>,
    max_readers: usize,
    busy_timeout: Duration,
    mode: Mode,
}

impl StoreBuilder {
    /// Sets the key provider that wraps the store's data keys. Required.
    pub fn key_provider(mut self, provider: Arc<dyn KeyProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Sets the retention policy of a namespace, applied to its kv entries and events.
    pub fn retention(mut self, namespace: Namespace, policy: RetentionPolicy) -> Self {
        self.retention.insert(namespace, policy);
        self
    }

    /// Most reader connections kept open (default 4). At least one is used.
    pub fn max_readers(mut self, readers: usize) -> Self {
        self.max_readers = readers.max(1);
        self
    }

    /// How long a connection waits for a lock held by another process (default 5 s)
    /// before failing with [`StoreError::Busy`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Benchmark baseline only: the same schema and SQL with sealing, opening and lookup
    /// hashing skipped. Values are stored in PLAINTEXT. Never use it for real data.
    #[doc(hidden)]
    pub fn unencrypted_baseline_for_benchmarks(mut self) -> Self {
        self.mode = Mode::Plain;
        self
    }

    /// Opens the store, creating the file (and its parent directory) when missing.
    ///
    /// For an existing file the key set is unwrapped and its canaries checked before
    /// anything is written: a wrong key fails with [`StoreError::WrongKey`] and leaves the
    /// file untouched. Then every row is checked against the store's authenticated ledger:
    /// a row written back, deleted or added behind the store's back fails with
    /// [`StoreError::Tampered`] (nothing is deleted). Other failures: [`StoreError::Corrupt`]
    /// for a file that is not a store, [`StoreError::UnsupportedVersion`] for a newer schema,
    /// [`StoreError::KeyProvider`] when the host's provider fails.
    ///
    /// Cost: one provider unwrap per key (one PBKDF2 derivation with the passphrase
    /// provider), one HMAC per stored value for the ledger check (no decryption), plus
    /// migrations and retention on first open; upgrading a store written before schema 3
    /// re-seals every value once. Memory: the live version of every row is kept while the
    /// store is open (on the order of 100 bytes per row).
    pub fn open(self) -> Result<Store> {
        let provider = self
            .provider
            .ok_or(StoreError::InvalidInput("a key provider is required"))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = open_connection(&self.path, false, self.busy_timeout)?;
        let existing = schema::check_supported(&conn)? > 0;
        if existing {
            // Read-only check before the first write.
            keys::load_cipher(&conn, provider.as_ref(), self.mode)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            schema::migrate(&tx)?;
            if !keys::keyset_exists(&tx)? {
                keys::create_keyset(&tx, provider.as_ref())?;
            }
            if !ledger::exists(&tx)? {
                let cipher = keys::load_cipher(&tx, provider.as_ref(), self.mode)?;
                ledger::authenticate_existing(&tx, &cipher)?;
            }
            tx.commit()?;
        }
        let cipher = keys::load_cipher(&conn, provider.as_ref(), self.mode)?;
        let ledger = Ledger::load(&conn, &cipher)?;
        let budget = NonceBudget::load(&conn, cipher.primary_id())?;
        let store = Store {
            path: self.path,
            writer: Mutex::new(Writer { conn, budget }),
            readers: Mutex::new(Vec::new()),
            cipher: RwLock::new(Arc::new(cipher)),
            ledger: RwLock::new(ledger),
            provider: RwLock::new(provider),
            retention: self.retention,
            max_readers: self.max_readers,
            busy_timeout: self.busy_timeout,
        };
        if !store.retention.is_empty() {
            store.enforce_retention()?;
        }
        Ok(store)
    }
}

struct Writer {
    conn: Connection,
    budget: NonceBudget,
}

/// The encrypted store. `Send + Sync`: share it with `Arc`; writes are serialized on one
/// connection, reads run concurrently on a pool of reader connections.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    cipher: RwLock<Arc<Cipher>>,
    /// Live row versions; changed only by the writer, after its transaction commits.
    ledger: RwLock<Ledger>,
    provider: RwLock<Arc<dyn KeyProvider>>,
    retention: BTreeMap<Namespace, RetentionPolicy>,
    max_readers: usize,
    busy_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_lock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn open_connection(path: &Path, read_only: bool, busy_timeout: Duration) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    // Deleted content is overwritten in the file; temporary tables and indices stay in
    // memory so no temp file ever holds decrypted-adjacent data.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if !read_only {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    Ok(conn)
}

impl Store {
    /// Starts configuring a store kept in the file at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> StoreBuilder {
        StoreBuilder {
            path: path.into(),
            provider: None,
            retention: BTreeMap::new(),
            max_readers: 4,
            busy_timeout: Duration::from_secs(5),
            mode: Mode::Sealed,
        }
    }

    /// Key/value blobs.
    pub fn kv(&self) -> Kv<'_> {
        Kv::new(self)
    }

    /// Append-only event records.
    pub fn events(&self) -> Events<'_> {
        Events::new(self)
    }

    /// Chunked large blobs (model artifacts).
    pub fn artifacts(&self) -> Artifacts<'_> {
        Artifacts::new(self)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Id of the data key that seals new values.
    pub fn primary_key_id(&self) -> KeyId {
        self.cipher().primary_id()
    }

    /// Starts a data-key rotation: a new random data key becomes primary and seals every
    /// new value; older keys only open values until [`reencrypt_batch`](Self::reencrypt_batch)
    /// has re-sealed them, then they are destroyed. One transaction: a crash leaves either
    /// the old or the new key set, both readable.
    pub fn rotate_data_key(&self) -> Result<KeyId> {
        let mut w = lock(&self.writer);
        self.rotate_locked(&mut w)
    }

    /// Re-seals up to `max_values` values still under an older data key with the primary
    /// key, in one transaction, and destroys older keys no value uses any more. Call it
    /// repeatedly (for example from idle time) until [`RotationProgress::is_complete`].
    pub fn reencrypt_batch(&self, max_values: usize) -> Result<RotationProgress> {
        let max = max_values.max(1);
        let mut w = lock(&self.writer);
        self.reserve_nonces(&mut w, max as u64)?;
        let cipher = self.cipher();
        let progress = {
            let tx = w
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let progress = rotation::reencrypt_batch(&tx, &cipher, max)?;
            tx.commit()?;
            progress
        };
        if progress.destroyed_keys > 0 {
            self.reload_cipher(&mut w)?;
            w.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        }
        Ok(progress)
    }

    /// Re-wraps every key with `provider` (passphrase change, move to a hardware keystore).
    /// Values are not touched. One transaction.
    pub fn change_key_provider(&self, provider: Arc<dyn KeyProvider>) -> Result<()> {
        let mut w = lock(&self.writer);
        let old = self
            .provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        keys::rewrap_all(&tx, old.as_ref(), provider.as_ref())?;
        tx.commit()?;
        *self.provider.write().unwrap_or_else(|e| e.into_inner()) = provider;
        Ok(())
    }

    /// Applies every namespace's retention policy now (it also runs at open and on writes
    /// to a namespace with a policy).
    pub fn enforce_retention(&self) -> Result<RetentionReport> {
        let report = self.write(0, |tx, cipher, changes| {
            let mut total = RetentionReport::default();
            for (ns, policy) in &self.retention {
                let ns = ns.checked()?;
                total += retention::enforce(tx, cipher, changes, ns, policy, keys::now_millis())?;
            }
            Ok(total)
        })?;
        if report.deleted() > 0 {
            self.checkpoint()?;
        }
        Ok(report)
    }

    /// Copies the WAL into the database file and truncates the WAL, so deleted records do
    /// not linger in it.
    pub fn checkpoint(&self) -> Result<()> {
        let w = lock(&self.writer);
        w.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        Ok(())
    }

    /// Checkpoints and closes every connection, reporting failures that dropping would
    /// hide.
    pub fn close(self) -> Result<()> {
        self.checkpoint()?;
        for conn in lock(&self.readers).drain(..) {
            conn.close().map_err(|(_, e)| StoreError::from(e))?;
        }
        let writer = self.writer.into_inner().unwrap_or_else(|e| e.into_inner());
        writer.conn.close().map_err(|(_, e)| StoreError::from(e))?;
        Ok(())
    }

    /// Erases everything for a user's right to erasure, by crypto-shredding: the wrapped
    /// keys are deleted (and overwritten, `secure_delete`) and checkpointed out of the WAL
    /// first, so every sealed value is unreadable; then the database, WAL and shared-memory
    /// files are removed. Keys held in memory are zeroized when the store is dropped here.
    pub fn erase_all(self) -> Result<()> {
        {
            let mut w = lock(&self.writer);
            let tx = w
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM keyset", [])?;
            tx.commit()?;
            w.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        }
        let path = self.path.clone();
        drop(self);
        Self::remove_files(&path)
    }

    /// Removes the database file at `path` and its WAL, shared-memory and journal files,
    /// without opening it. Use it to finish an [`erase_all`](Self::erase_all) interrupted
    /// after the keys were destroyed (the store then fails to open with
    /// [`StoreError::KeySet`]). Missing files are not an error.
    pub fn remove_files(path: &Path) -> Result<()> {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub(crate) fn cipher(&self) -> Arc<Cipher> {
        self.cipher
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn retention_for(&self, namespace: &Namespace) -> Option<&RetentionPolicy> {
        self.retention.get(namespace)
    }

    /// Runs `f` in an immediate write transaction after reserving nonce budget for `seals`
    /// sealed values. `f` records its ledger changes; the new ledger row is written in the
    /// same transaction and the in-memory ledger updated only after the commit.
    pub(crate) fn write<T>(
        &self,
        seals: u64,
        f: impl FnOnce(&Transaction<'_>, &Cipher, &mut Changes<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut w = lock(&self.writer);
        if seals > 0 {
            self.reserve_nonces(&mut w, seals)?;
        }
        let cipher = self.cipher();
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_lock(&self.ledger).sync(&tx, &cipher)?;
        let (out, update) = {
            let ledger = read_lock(&self.ledger);
            let mut changes = ledger.begin();
            let out = f(&tx, &cipher, &mut changes)?;
            (out, changes.finish(&tx, &cipher)?)
        };
        tx.commit()?;
        if let Some(update) = update {
            write_lock(&self.ledger).apply(update);
        }
        Ok(out)
    }

    /// Runs `f` on a reader connection. A value sealed under a key added or destroyed by a
    /// concurrent rotation is retried once with the current keys and a fresh snapshot. A
    /// version the ledger disputes is decided again with writes held off (the snapshot may
    /// predate a write the ledger already knows, or follow one it has not applied yet), after
    /// taking in any ledger another connection wrote.
    pub(crate) fn read<T>(
        &self,
        f: impl Fn(&Connection, &Cipher, &Ledger) -> Result<T>,
    ) -> Result<T> {
        let conn = self.take_reader()?;
        let attempt = |cipher: &Cipher| f(&conn, cipher, &read_lock(&self.ledger));
        let cipher = self.cipher();
        let mut out = attempt(&cipher);
        if let Err(StoreError::Tampered {
            kind: TamperKind::UnknownKeyId,
            ..
        }) = out
        {
            let current = self.cipher();
            if !Arc::ptr_eq(&current, &cipher) {
                out = attempt(&current);
            }
        }
        if let Err(StoreError::Tampered {
            kind: TamperKind::Replayed | TamperKind::RowSetChanged,
            ..
        }) = out
        {
            let w = lock(&self.writer);
            let cipher = self.cipher();
            let synced = write_lock(&self.ledger).sync(&w.conn, &cipher);
            out = synced.and_then(|()| attempt(&cipher));
            drop(w);
        }
        let mut pool = lock(&self.readers);
        if pool.len() < self.max_readers {
            pool.push(conn);
        }
        out
    }

    fn take_reader(&self) -> Result<Connection> {
        if let Some(conn) = lock(&self.readers).pop() {
            return Ok(conn);
        }
        open_connection(&self.path, true, self.busy_timeout)
    }

    fn reserve_nonces(&self, w: &mut Writer, count: u64) -> Result<()> {
        let cipher = self.cipher();
        if cipher.mode() == Mode::Plain {
            return Ok(());
        }
        if w.budget.key_id() != cipher.primary_id() {
            w.budget = NonceBudget::load(&w.conn, cipher.primary_id())?;
        }
        if !w.budget.fits(count) {
            self.rotate_locked(w)?;
        }
        w.budget.reserve(&mut w.conn, count)
    }

    fn rotate_locked(&self, w: &mut Writer) -> Result<KeyId> {
        let provider = self
            .provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let id = {
            let tx = w
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = keys::add_primary_data_key(&tx, provider.as_ref())?;
            tx.commit()?;
            id
        };
        self.reload_cipher(w)?;
        Ok(id)
    }

    fn reload_cipher(&self, w: &mut Writer) -> Result<()> {
        let provider = self
            .provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mode = self.cipher().mode();
        let cipher = keys::load_cipher(&w.conn, provider.as_ref(), mode)?;
        w.budget = NonceBudget::load(&w.conn, cipher.primary_id())?;
        *self.cipher.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cipher);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_is_typed_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::builder(dir.path().join("store.db"))
            .key_provider(Arc::new(RawKeyProvider::generate().unwrap()))
            .open()
            .unwrap();
        let ns = Namespace::new("full");
        store.kv().put(ns, b"before", b"kept").unwrap();
        let pages: i64 = lock(&store.writer)
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        // SQLite reports SQLITE_FULL when the page limit is reached, as on a full disk.
        lock(&store.writer)
            .conn
            .pragma_update(None, "max_page_count", pages + 2)
            .unwrap();
        let err = store.kv().put(ns, b"big", &vec![1u8; 1 << 20]).unwrap_err();
        assert!(matches!(err, StoreError::DiskFull), "{err:?}");
        assert_eq!(
            store.kv().get(ns, b"before").unwrap().unwrap().as_bytes(),
            b"kept"
        );
        assert_eq!(store.kv().get(ns, b"big").unwrap(), None);
        store.kv().put(ns, b"small", b"still writable").unwrap();
    }

    #[test]
    fn no_data_or_lookup_key_bytes_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Store::builder(&path)
            .key_provider(Arc::new(RawKeyProvider::generate().unwrap()))
            .open()
            .unwrap();
        let ns = Namespace::new("keys");
        for i in 0..200u32 {
            store.kv().put(ns, &i.to_be_bytes(), &[7; 300]).unwrap();
        }
        store.rotate_data_key().unwrap();
        let mut material = store.cipher().all_key_material();
        while !store.reencrypt_batch(64).unwrap().is_complete() {}
        material.extend(store.cipher().all_key_material());
        assert_eq!(
            material.len(),
            5,
            "old data key, new data key, lookup key (twice)"
        );
        let mut files = vec![std::fs::read(&path).unwrap()];
        if let Ok(wal) = std::fs::read(dir.path().join("store.db-wal")) {
            files.push(wal);
        }
        store.close().unwrap();
        files.push(std::fs::read(&path).unwrap());
        for file in &files {
            for key in &material {
                assert!(!file.windows(key.len()).any(|w| w == &key[..]));
                assert!(!file.windows(12).any(|w| w == &key[..12]));
            }
        }
    }
}
