//! Artifact ciphertexts on disk, named by their SHA-256 (`<data>/artifacts/<hex>`), written
//! once (temporary file, then rename) and read by byte range for resumable downloads.

use std::io::SeekFrom;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::error::ServerError;

/// The folder of artifact ciphertexts.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

fn valid_id(artifact_id: &str) -> bool {
    artifact_id.len() == 64
        && artifact_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ArtifactStore {
    /// Opens (creating) the folder.
    pub fn open(root: PathBuf) -> Result<Self, ServerError> {
        std::fs::create_dir_all(&root).map_err(ServerError::io("creating the artifact folder"))?;
        Ok(Self { root })
    }

    fn path(&self, artifact_id: &str) -> Option<PathBuf> {
        valid_id(artifact_id).then(|| self.root.join(artifact_id))
    }

    /// Stores a ciphertext under its id (idempotent: content addressed).
    pub fn put(&self, artifact_id: &str, ciphertext: &[u8]) -> Result<(), ServerError> {
        let path = self
            .path(artifact_id)
            .ok_or(ServerError::InvalidArgument("artifact id"))?;
        if path.exists() {
            return Ok(());
        }
        let tmp = self.root.join(format!(".{artifact_id}.tmp"));
        std::fs::write(&tmp, ciphertext).map_err(ServerError::io("writing an artifact"))?;
        std::fs::rename(&tmp, &path).map_err(ServerError::io("storing an artifact"))
    }

    /// The folder where uploads are received before they are checked (same file system, so
    /// nothing large ever waits in memory).
    pub fn incoming(&self) -> Result<PathBuf, ServerError> {
        let dir = self.root.join(".incoming");
        std::fs::create_dir_all(&dir).map_err(ServerError::io("creating the upload folder"))?;
        Ok(dir)
    }

    /// Stores `len` bytes of the file at `source` from `offset` as the ciphertext `artifact_id`
    /// (idempotent), copying without holding it in memory.
    pub fn put_from_file(
        &self,
        artifact_id: &str,
        source: &std::path::Path,
        offset: u64,
        len: u64,
    ) -> Result<(), ServerError> {
        use std::io::{Read as _, Seek as _};
        let path = self
            .path(artifact_id)
            .ok_or(ServerError::InvalidArgument("artifact id"))?;
        if path.exists() {
            return Ok(());
        }
        let mut input =
            std::fs::File::open(source).map_err(ServerError::io("opening an upload"))?;
        input
            .seek(SeekFrom::Start(offset))
            .map_err(ServerError::io("seeking in an upload"))?;
        let tmp = self.root.join(format!(".{artifact_id}.tmp"));
        let mut output =
            std::fs::File::create(&tmp).map_err(ServerError::io("writing an artifact"))?;
        let copied = std::io::copy(&mut input.take(len), &mut output)
            .map_err(ServerError::io("writing an artifact"))?;
        if copied != len {
            let _ = std::fs::remove_file(&tmp);
            return Err(ServerError::InvalidArgument(
                "upload shorter than its manifest",
            ));
        }
        output
            .sync_all()
            .map_err(ServerError::io("writing an artifact"))?;
        std::fs::rename(&tmp, &path).map_err(ServerError::io("storing an artifact"))
    }

    /// Opens `len` bytes of an artifact from `start` as a stream for a response body.
    pub async fn read_range(
        &self,
        artifact_id: &str,
        start: u64,
        len: u64,
    ) -> Result<axum::body::Body, ServerError> {
        let path = self
            .path(artifact_id)
            .ok_or(ServerError::InvalidArgument("artifact id"))?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(ServerError::io("opening an artifact"))?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(ServerError::io("seeking in an artifact"))?;
        let stream = tokio_util::io::ReaderStream::new(file.take(len));
        Ok(axum::body::Body::from_stream(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_and_read_ranges() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path().join("a")).unwrap();
        let id = "ab".repeat(32);
        store.put(&id, b"0123456789").unwrap();
        store.put(&id, b"ignored").unwrap();
        let body = store.read_range(&id, 3, 4).await.unwrap();
        let bytes = axum::body::to_bytes(body, 100).await.unwrap();
        assert_eq!(&bytes[..], b"3456");
        assert!(store.put("../etc", b"x").is_err());
    }

    #[test]
    fn a_range_of_a_file_is_stored_as_an_artifact() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path().join("a")).unwrap();
        let source = store.incoming().unwrap().join("upload");
        std::fs::write(&source, b"HEADERciphertext").unwrap();
        let id = "cd".repeat(32);
        store.put_from_file(&id, &source, 6, 10).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("a").join(&id)).unwrap(),
            b"ciphertext"
        );
        let other = "ef".repeat(32);
        assert!(
            store.put_from_file(&other, &source, 6, 11).is_err(),
            "short source"
        );
        assert!(!tmp.path().join("a").join(&other).exists());
    }
}
