//! Online backups of a data folder: a consistent database snapshot, then the files it needs.
//!
//! The snapshot is taken with SQLite's `VACUUM INTO` on a read-only connection, so the server
//! keeps serving. Artifacts are write-once files named by their hash and are copied after the
//! snapshot, so every artifact the snapshot references is already on disk. The result is a
//! data folder the server can serve from as it is.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::data_dir::DataDir;
use crate::error::ServerError;
use crate::storage::StorageError;

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// Size of the database snapshot, bytes.
    pub database_bytes: u64,
    /// Artifact files copied.
    pub artifacts: u64,
    /// Their total size, bytes.
    pub artifact_bytes: u64,
}

/// Creates an empty file readable by the owner only, for SQLite to write the snapshot into.
fn create_private_empty(path: &Path) -> Result<(), ServerError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(ServerError::io("creating the snapshot"))
}

fn copy_private(from: &Path, to: &Path) -> Result<u64, ServerError> {
    let bytes = std::fs::copy(from, to).map_err(ServerError::io("copying a file"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
            .map_err(ServerError::io("restricting a copied file"))?;
    }
    Ok(bytes)
}

/// Backs up the data folder `data` into `out`, a folder that must not exist yet. Runs while
/// the server serves.
pub fn backup(data: &Path, out: &Path) -> Result<BackupReport, ServerError> {
    let source = DataDir::new(data);
    if !source.database().exists() {
        return Err(ServerError::NotInitialized);
    }
    if out.exists() {
        return Err(ServerError::InvalidArgument(
            "the backup folder must not exist yet",
        ));
    }
    let target = DataDir::new(out);
    std::fs::create_dir_all(target.artifacts()).map_err(ServerError::io("creating the backup"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700))
            .map_err(ServerError::io("restricting the backup folder"))?;
    }

    let snapshot = target.database();
    let snapshot_text = snapshot.to_str().ok_or(ServerError::InvalidArgument(
        "the backup path must be valid UTF-8",
    ))?;
    let connection = Connection::open_with_flags(
        source.database(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StorageError::from)?;
    create_private_empty(&snapshot)?;
    connection
        .execute("VACUUM INTO ?1", [snapshot_text])
        .map_err(StorageError::from)?;
    drop(connection);
    crate::storage::restrict_to_owner(&snapshot)?;
    let database_bytes = std::fs::metadata(&snapshot)
        .map_err(ServerError::io("reading the snapshot"))?
        .len();

    let mut report = BackupReport {
        database_bytes,
        artifacts: 0,
        artifact_bytes: 0,
    };
    if source.artifacts().exists() {
        let entries =
            std::fs::read_dir(source.artifacts()).map_err(ServerError::io("listing artifacts"))?;
        for entry in entries {
            let entry = entry.map_err(ServerError::io("listing artifacts"))?;
            let name = entry.file_name();
            let is_artifact = name.len() == 64
                && name
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
            if is_artifact {
                report.artifact_bytes +=
                    copy_private(&entry.path(), &target.artifacts().join(&name))?;
                report.artifacts += 1;
            }
        }
    }
    for (from, to) in [
        (source.secret(), target.secret()),
        (source.desired_state_key(), target.desired_state_key()),
    ] {
        if from.exists() {
            copy_private(&from, &to)?;
        }
    }
    let tls = data.join("tls");
    if tls.exists() {
        std::fs::create_dir_all(out.join("tls")).map_err(ServerError::io("creating tls/"))?;
        for name in ["ca.pem", "cert.pem", "key.pem"] {
            if tls.join(name).exists() {
                copy_private(&tls.join(name), &out.join("tls").join(name))?;
            }
        }
    }
    Ok(report)
}
