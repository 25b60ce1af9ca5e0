//! Closed label enums. Only the SDK defines labels: [`Label`] is sealed, so an app cannot
//! turn a string (or anything else) into a label.

use serde::{Deserialize, Serialize};

mod sealed {
    pub trait Sealed {}
}

/// A closed set of label values for a [`LabeledCounter`](super::LabeledCounter).
///
/// Sealed: implemented only by the enums in this module.
pub trait Label:
    sealed::Sealed + Copy + Eq + Ord + std::fmt::Debug + Send + Sync + 'static
{
    /// The label as it appears in a batch.
    fn value(self) -> LabelValue;
}

macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }

        impl sealed::Sealed for $name {}

        impl Label for $name {
            fn value(self) -> LabelValue {
                LabelValue::$name(self)
            }
        }
    };
}

label_enum!(
    /// A typed error code the SDK counts (the kind of failure, never its message).
    ErrorKind {
        /// A model failed to load.
        ModelLoad,
        /// A model failed while running.
        ModelRun,
        /// The encrypted store failed.
        Store,
        /// The network failed (connect, timeout, TLS).
        Network,
        /// The control plane answered with an error.
        Server,
        /// Device credentials were rejected and could not be refreshed.
        Auth,
        /// A download was interrupted and will resume.
        DownloadInterrupted,
        /// A staged model failed its health check.
        HealthCheck,
    }
);

label_enum!(
    /// A rejected attack or integrity failure in model delivery.
    SecurityEvent {
        /// The desired state's server signature did not verify.
        BadStateSignature,
        /// The desired state was expired (freeze attack).
        Freeze,
        /// A manifest offered a version lower than the installed one.
        Rollback,
        /// A manifest was for another model slot.
        MixAndMatch,
        /// The server sent more bytes than the manifest declares.
        EndlessData,
        /// A manifest was not signed by a pinned publisher key.
        WrongPublisherKey,
        /// The downloaded ciphertext did not match the manifest hash.
        TamperedCiphertext,
        /// The decrypted model did not match the manifest hash.
        TamperedPlaintext,
        /// The content key could not be unwrapped.
        KeyUnwrap,
        /// The server certificate did not match a pinned key.
        PinMismatch,
    }
);

label_enum!(
    /// Progress of a model rollout on this device.
    RolloutStage {
        /// The desired state names a new version.
        Assigned,
        /// The artifact is fully downloaded.
        Downloaded,
        /// Signatures and hashes verified.
        Verified,
        /// The version is active.
        Active,
        /// Delivery or activation failed.
        Failed,
        /// The device went back to the previous version.
        RolledBack,
    }
);

/// Any label value, as carried in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelValue {
    /// An [`ErrorKind`].
    ErrorKind(ErrorKind),
    /// A [`SecurityEvent`].
    SecurityEvent(SecurityEvent),
    /// A [`RolloutStage`].
    RolloutStage(RolloutStage),
}
