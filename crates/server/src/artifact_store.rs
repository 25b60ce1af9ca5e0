//! Artifact ciphertexts, named by their SHA-256, written once and read by byte range for
//! resumable downloads: on disk (`<data>/artifacts/<hex>`, temporary file then rename) for one
//! instance on SQLite, in PostgreSQL (chunked, [`PgStorage::put_artifact`]) when several
//! instances share a database. Uploads are received in `<data>/artifacts/.incoming` either way.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::error::ServerError;
use crate::storage::{ARTIFACT_CHUNK, PgStorage};

/// Where artifact ciphertexts are kept.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
    /// The shared database, when ciphertexts live there.
    shared: Option<Arc<PgStorage>>,
}

fn valid_id(artifact_id: &str) -> bool {
    artifact_id.len() == 64
        && artifact_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ArtifactStore {
    /// Opens (creating) the folder; ciphertexts are kept in `shared` when given.
    pub fn open(root: PathBuf, shared: Option<Arc<PgStorage>>) -> Result<Self, ServerError> {
        std::fs::create_dir_all(&root).map_err(ServerError::io("creating the artifact folder"))?;
        Ok(Self { root, shared })
    }

    fn path(&self, artifact_id: &str) -> Option<PathBuf> {
        valid_id(artifact_id).then(|| self.root.join(artifact_id))
    }

    /// Stores `org_id`'s ciphertext under its id (idempotent: content addressed). Blocking.
    pub fn put(
        &self,
        org_id: &str,
        artifact_id: &str,
        ciphertext: &[u8],
    ) -> Result<(), ServerError> {
        let path = self
            .path(artifact_id)
            .ok_or(ServerError::InvalidArgument("artifact id"))?;
        if let Some(shared) = &self.shared {
            return Ok(shared.put_artifact(
                org_id,
                artifact_id,
                ciphertext,
                ciphertext.len() as u64,
            )?);
        }
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

    /// Stores `len` bytes of the file at `source` from `offset` as `org_id`'s ciphertext
    /// `artifact_id` (idempotent), copying without holding it in memory. Blocking.
    pub fn put_from_file(
        &self,
        org_id: &str,
        artifact_id: &str,
        source: &std::path::Path,
        offset: u64,
        len: u64,
    ) -> Result<(), ServerError> {
        use std::io::{Read as _, Seek as _};
        let path = self
            .path(artifact_id)
            .ok_or(ServerError::InvalidArgument("artifact id"))?;
        let mut input =
            std::fs::File::open(source).map_err(ServerError::io("opening an upload"))?;
        input
            .seek(SeekFrom::Start(offset))
            .map_err(ServerError::io("seeking in an upload"))?;
        if let Some(shared) = &self.shared {
            let input = std::io::BufReader::new(input);
            return Ok(shared.put_artifact(org_id, artifact_id, input, len)?);
        }
        if path.exists() {
            return Ok(());
        }
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

    /// Opens `len` bytes of `org_id`'s artifact from `start` as a stream for a response body.
    pub async fn read_range(
        &self,
        org_id: &str,
        artifact_id: &str,
        start: u64,
        len: u64,
    ) -> Result<axum::body::Body, ServerError> {
        let path = self
            .path(artifact_id)
            .ok_or(ServerError::InvalidArgument("artifact id"))?;
        if let Some(shared) = &self.shared {
            return Ok(chunked_range(shared, org_id, artifact_id, start, len));
        }
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

/// A body streaming `len` bytes from `start` out of the stored chunks, one chunk read (on a
/// blocking thread) at a time, at most two chunks ahead of the client.
fn chunked_range(
    shared: &Arc<PgStorage>,
    org_id: &str,
    artifact_id: &str,
    start: u64,
    len: u64,
) -> axum::body::Body {
    type Piece = Result<axum::body::Bytes, std::io::Error>;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Piece>(2);
    let (shared, org_id, artifact_id) = (
        Arc::clone(shared),
        org_id.to_owned(),
        artifact_id.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let end = start + len;
        let mut at = start;
        while at < end {
            let chunk = at / ARTIFACT_CHUNK;
            let piece = match shared.artifact_chunk(&org_id, &artifact_id, chunk) {
                Ok(Some(bytes)) => {
                    let from = (at - chunk * ARTIFACT_CHUNK) as usize;
                    let to = ((end - chunk * ARTIFACT_CHUNK) as usize).min(bytes.len());
                    if from >= to {
                        Err(std::io::Error::other("the stored artifact is short"))
                    } else {
                        at += (to - from) as u64;
                        Ok(axum::body::Bytes::from(bytes).slice(from..to))
                    }
                }
                Ok(None) => Err(std::io::Error::other("the stored artifact is short")),
                Err(err) => Err(std::io::Error::other(err.to_string())),
            };
            let failed = piece.is_err();
            if sender.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    });
    axum::body::Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_and_read_ranges() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path().join("a"), None).unwrap();
        let id = "ab".repeat(32);
        store.put("org1", &id, b"0123456789").unwrap();
        store.put("org1", &id, b"ignored").unwrap();
        let body = store.read_range("org1", &id, 3, 4).await.unwrap();
        let bytes = axum::body::to_bytes(body, 100).await.unwrap();
        assert_eq!(&bytes[..], b"3456");
        assert!(store.put("org1", "../etc", b"x").is_err());
    }

    #[test]
    fn a_range_of_a_file_is_stored_as_an_artifact() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path().join("a"), None).unwrap();
        let source = store.incoming().unwrap().join("upload");
        std::fs::write(&source, b"HEADERciphertext").unwrap();
        let id = "cd".repeat(32);
        store.put_from_file("org1", &id, &source, 6, 10).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("a").join(&id)).unwrap(),
            b"ciphertext"
        );
        let other = "ef".repeat(32);
        assert!(
            store.put_from_file("org1", &other, &source, 6, 11).is_err(),
            "short source"
        );
        assert!(!tmp.path().join("a").join(&other).exists());
    }
}
