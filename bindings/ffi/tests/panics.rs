//! No panic crosses the boundary: a panic inside an exported call (here raised by a key
//! provider implemented on the Rust side, as a buggy foreign one could) comes back as
//! `EdgeKeepError::Internal`, and the library stays usable.

use std::sync::Arc;

mod common;

use common::{XorKeyProvider, config};
use edgekeep_ffi::{EdgeKeep, EdgeKeepError, KeyProvider};

struct PanickingKeyProvider;

impl KeyProvider for PanickingKeyProvider {
    fn wrap_key(&self, _: u32, _: Vec<u8>) -> Result<Vec<u8>, EdgeKeepError> {
        panic!("a bug in the key provider")
    }

    fn unwrap_key(&self, _: u32, _: Vec<u8>) -> Result<Vec<u8>, EdgeKeepError> {
        panic!("a bug in the key provider")
    }
}

#[test]
fn a_panic_in_an_exported_call_becomes_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let result = EdgeKeep::new(
        config(dir.path(), None),
        Arc::new(PanickingKeyProvider),
        None,
        None,
    );
    match result {
        Err(EdgeKeepError::Internal { reason }) => assert_eq!(reason, "panic in EdgeKeep.new"),
        other => panic!("expected Internal, got {other:?}"),
    }
    // The library keeps working after the caught panic.
    let sdk = EdgeKeep::new(
        config(dir.path(), None),
        Arc::new(XorKeyProvider),
        None,
        None,
    )
    .unwrap();
    sdk.store().put(b"k".to_vec(), b"v".to_vec()).unwrap();
    assert_eq!(sdk.store().get(b"k".to_vec()).unwrap(), Some(b"v".to_vec()));
}

#[test]
fn sync_calls_without_a_control_plane_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = EdgeKeep::new(
        config(dir.path(), None),
        Arc::new(XorKeyProvider),
        None,
        None,
    )
    .unwrap();
    assert!(matches!(
        sdk.active_model("slot".into()),
        Err(EdgeKeepError::SyncNotConfigured)
    ));
}
