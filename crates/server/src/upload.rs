//! Receiving artifact uploads without holding them in memory: the body streams to a temporary
//! file under a size bound, each org has a few upload slots, and at most a few uploads are
//! checked (one ciphertext decrypted in memory each) at once.

use std::collections::HashMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http_body::Body as _;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::net::BodyDeadlineExceeded;

/// Why an upload body could not be received.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body is larger than the limit.
    #[error("upload larger than the limit")]
    TooLarge,
    /// The body did not arrive before its deadline.
    #[error("upload did not arrive in time")]
    TooSlow,
    /// The client ended or broke the body.
    #[error("upload body broken")]
    Body,
    /// The temporary file could not be written or read.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> UploadError {
    move |source| UploadError::Io { context, source }
}

/// A received upload: a temporary file, deleted on drop, and its length.
#[derive(Debug)]
pub struct ReceivedUpload {
    file: tempfile::NamedTempFile,
    len: u64,
}

impl ReceivedUpload {
    /// The bundle's length, bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the bundle is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads `len` bytes from `offset` into one exactly sized buffer.
    pub fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, UploadError> {
        let mut file = self.file.reopen().map_err(io("reopening an upload"))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(io("seeking in an upload"))?;
        let mut buffer = Vec::with_capacity(len);
        file.take(len as u64)
            .read_to_end(&mut buffer)
            .map_err(io("reading an upload"))?;
        if buffer.len() != len {
            return Err(UploadError::Body);
        }
        Ok(buffer)
    }

    /// The temporary file's path (to copy the ciphertext into the artifact store).
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Streams `body` into a new temporary file in `dir`, refusing it once it passes `max` bytes.
pub async fn receive(mut body: Body, dir: &Path, max: u64) -> Result<ReceivedUpload, UploadError> {
    let file = tempfile::NamedTempFile::new_in(dir).map_err(io("creating an upload file"))?;
    let mut writer = tokio::fs::File::from_std(file.reopen().map_err(io("opening an upload"))?);
    let mut len = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|err| {
            if BodyDeadlineExceeded::caused(&err) {
                UploadError::TooSlow
            } else {
                UploadError::Body
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len() as u64;
        if len > max {
            return Err(UploadError::TooLarge);
        }
        writer
            .write_all(&data)
            .await
            .map_err(io("writing an upload"))?;
    }
    writer.flush().await.map_err(io("writing an upload"))?;
    Ok(ReceivedUpload { file, len })
}

/// Upload slots per org and the shared permits to check uploads.
#[derive(Debug)]
pub struct UploadGate {
    per_org: usize,
    in_progress: Arc<Mutex<HashMap<String, usize>>>,
    checks: Arc<Semaphore>,
}

impl UploadGate {
    /// A gate with `per_org` slots per org and `checks` concurrent checks.
    pub fn new(per_org: usize, checks: usize) -> Self {
        Self {
            per_org: per_org.max(1),
            in_progress: Arc::new(Mutex::new(HashMap::new())),
            checks: Arc::new(Semaphore::new(checks.max(1))),
        }
    }

    /// Takes one of `org_id`'s upload slots, or `None` when all are in use.
    pub fn try_enter(&self, org_id: &str) -> Option<UploadSlot> {
        let mut open = self.in_progress.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(org_id.to_owned()).or_default();
        if *count >= self.per_org {
            return None;
        }
        *count += 1;
        Some(UploadSlot {
            in_progress: Arc::clone(&self.in_progress),
            org_id: org_id.to_owned(),
        })
    }

    /// Waits for a permit to check an upload (bounds the ciphertexts held in memory); `None`
    /// only if the gate is shutting down.
    pub async fn check_permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.checks).acquire_owned().await.ok()
    }
}

/// One upload in progress for an org; frees the slot on drop.
#[derive(Debug)]
pub struct UploadSlot {
    in_progress: Arc<Mutex<HashMap<String, usize>>>,
    org_id: String,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut open = self.in_progress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.org_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.org_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_has_a_bounded_number_of_slots_and_others_are_unaffected() {
        let gate = UploadGate::new(2, 1);
        let a1 = gate.try_enter("org_a").unwrap();
        let _a2 = gate.try_enter("org_a").unwrap();
        assert!(gate.try_enter("org_a").is_none());
        assert!(gate.try_enter("org_b").is_some());
        drop(a1);
        assert!(gate.try_enter("org_a").is_some());
    }

    #[tokio::test]
    async fn a_body_is_streamed_to_a_file_and_refused_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let upload = receive(Body::from(vec![7u8; 1000]), dir.path(), 1000)
            .await
            .unwrap();
        assert_eq!(upload.len(), 1000);
        assert_eq!(upload.read_range(10, 5).unwrap(), vec![7u8; 5]);
        assert!(matches!(upload.read_range(999, 5), Err(UploadError::Body)));
        let too_large = receive(Body::from(vec![7u8; 1001]), dir.path(), 1000).await;
        assert!(matches!(too_large, Err(UploadError::TooLarge)));
        drop(upload);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp files are removed"
        );
    }
}
