//! Errors of the encrypted store.
//!
//! Every variant is log-safe: it names tables, columns and reasons, never values, keys or
//! lookup keys.

use std::fmt;

/// What was wrong with a sealed value that failed to open, or with the set of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TamperKind {
    /// The stored envelope is shorter than its header and tag.
    Truncated,
    /// The envelope's format byte is not one this build writes.
    UnknownFormat,
    /// The envelope names a data key the store does not hold.
    UnknownKeyId,
    /// Authentication failed: the bytes were altered or moved from another row or column.
    AuthenticationFailed,
    /// The value authenticates but is not the latest one written to its row: an older copy
    /// written back, or a deleted row written back.
    Replayed,
    /// The rows differ from the set the store's ledger authenticates: a row is missing, was
    /// added behind the store's back, or the ledger was rolled back while the store was open.
    RowSetChanged,
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TamperKind::Truncated => "truncated envelope",
            TamperKind::UnknownFormat => "unknown envelope format",
            TamperKind::UnknownKeyId => "unknown key id",
            TamperKind::AuthenticationFailed => "authentication failed",
            TamperKind::Replayed => "not the latest value of its row",
            TamperKind::RowSetChanged => "rows differ from the authenticated ledger",
        })
    }
}

/// A failure reported by a [`KeyProvider`](super::KeyProvider).
///
/// Host implementations (Keychain, Android Keystore) map their platform errors onto these
/// variants; none of them carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProviderError {
    /// The key-encryption key does not match the one that wrapped the data key
    /// (wrong passphrase, wrong raw key, replaced keystore entry).
    #[error("the key-encryption key was rejected")]
    Rejected,
    /// The key-encryption key exists but cannot be used now (device locked, keystore
    /// unavailable). Retrying later may succeed.
    #[error("the key-encryption key is unavailable")]
    Unavailable,
    /// A wrapped key blob is malformed (wrong length or format byte).
    #[error("the wrapped key is malformed")]
    MalformedWrappedKey,
    /// The provider's own configuration is invalid (for example an empty passphrase).
    #[error("invalid key provider configuration: {0}")]
    InvalidConfiguration(&'static str),
    /// A platform keystore failure, with the platform's numeric status code.
    #[error("platform keystore failure (status {0})")]
    Platform(i64),
}

/// Errors of [`Store`](super::Store) and its collections.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The key provider's key does not open this store. Nothing was changed on disk; retry
    /// with the right key.
    #[error("wrong key: the store's data key cannot be unwrapped with this key provider")]
    WrongKey,
    /// A sealed value failed to open (altered, truncated, moved between rows), is older
    /// than its row's latest write, or the rows differ from the store's authenticated
    /// ledger (deleted, re-inserted or rolled back). Nothing is deleted; reading other rows
    /// may still work, but the file was changed behind the store's back.
    #[error("tampered value in {table}.{column}: {kind}")]
    Tampered {
        /// Table holding the value.
        table: &'static str,
        /// Column holding the value.
        column: &'static str,
        /// Why the value was rejected.
        kind: TamperKind,
    },
    /// The file is not a SQLite database or SQLite reports it malformed.
    #[error("the store file is corrupt or not a store")]
    Corrupt,
    /// The disk is full; the last write was rolled back.
    #[error("the disk is full")]
    DiskFull,
    /// Another connection or process holds the database lock longer than the busy timeout.
    #[error("the store is busy or locked by another connection")]
    Busy,
    /// The file was written by a newer version of edgekeep.
    #[error("unsupported schema version {found} (this build supports up to {supported})")]
    UnsupportedVersion {
        /// Version recorded in the file.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// The store's key bookkeeping is inconsistent (no primary data key, canary missing).
    #[error("inconsistent key set: {0}")]
    KeySet(&'static str),
    /// The host's key provider failed.
    #[error("key provider failed: {0}")]
    KeyProvider(#[from] KeyProviderError),
    /// The caller passed an argument the store refuses (say, a malformed namespace).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// An artifact operation does not match the artifact's state.
    #[error("artifact state: {0}")]
    ArtifactState(&'static str),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A file-system operation failed (creating the directory, erasing files).
    #[error("file system error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other SQLite failure; the source names the SQLite code, never bound values.
    #[error("database error")]
    Database(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt,
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Database(err),
        }
    }
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
