//! Small value types shared by the collections: namespaces and zeroizing byte buffers.

use std::fmt;
use std::ops::Deref;

use zeroize::Zeroizing;

use super::error::{Result, StoreError};

/// A namespace partitions each collection between SDK components (personalization,
/// sync credentials, telemetry queue, ...). Namespaces are compile-time names chosen by the
/// SDK, stored in plaintext: never put user data in one.
///
/// Valid names are 1 to 64 bytes of `a-z`, `0-9`, `.`, `_` and `-`; an invalid name makes
/// every operation fail with [`StoreError::InvalidInput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(&'static str);

impl Namespace {
    /// Longest namespace name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// A namespace with the given name (checked when used).
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The name, if it is valid.
    pub(crate) fn checked(&self) -> Result<&'static str> {
        let ok = !self.0.is_empty()
            && self.0.len() <= Self::MAX_LEN
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if ok {
            Ok(self.0)
        } else {
            Err(StoreError::InvalidInput("malformed namespace"))
        }
    }
}

/// Bytes read back from the store. Wiped from memory on drop; `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Borrow the bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The zeroizing buffer itself, for callers that keep it.
    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }
}

impl Deref for SecretBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_validation() {
        assert!(Namespace::new("personalize.examples").checked().is_ok());
        assert!(Namespace::new("sync-credentials_1").checked().is_ok());
        assert!(Namespace::new("").checked().is_err());
        assert!(Namespace::new("Upper").checked().is_err());
        assert!(Namespace::new("has space").checked().is_err());
        let long: &'static str = Box::leak("a".repeat(65).into_boxed_str());
        assert!(Namespace::new(long).checked().is_err());
    }

    #[test]
    fn secret_bytes_debug_hides_content() {
        let s = SecretBytes::from(Zeroizing::new(b"topsecret".to_vec()));
        assert_eq!(format!("{s:?}"), "SecretBytes(9 bytes)");
        assert_eq!(&*s, b"topsecret");
    }
}
