//! Uploaded import sources: a file the caller streams is spooled to
//! `upload_dir` under a fresh name, bounded by `max_upload_bytes`, and removed
//! when its import ends (or when the upload is abandoned).

use std::path::{Path, PathBuf};

use tagd_core::DomainError;
use tagd_core::ids::new_id;
use tokio::io::AsyncWriteExt;

use crate::error::{JobError, JobResult};
use crate::registry::Jobs;

/// A file being received, then the source of an import. Dropping it removes the file.
#[derive(Debug)]
pub struct Upload {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    limit: u64,
}

impl Jobs {
    /// Opens a spool file for `file_name` (only its last component is used, for its extension).
    pub async fn begin_upload(&self, file_name: &str) -> JobResult<Upload> {
        let name = Path::new(file_name.trim())
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| DomainError::invalid("start.file_name", "must name a file"))?;
        let dir = &self.config.upload_dir;
        tokio::fs::create_dir_all(dir).await.map_err(|error| {
            JobError::FailedPrecondition(format!(
                "cannot create the upload folder {}: {error}",
                dir.display()
            ))
        })?;
        let path = dir.join(format!("{}-{name}", new_id()));
        let file = tokio::fs::File::create(&path).await.map_err(|error| {
            JobError::FailedPrecondition(format!("cannot store the upload: {error}"))
        })?;
        Ok(Upload {
            path,
            file: Some(file),
            written: 0,
            limit: self.config.max_upload_bytes,
        })
    }
}

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> JobResult<()> {
        self.written += chunk.len() as u64;
        if self.written > self.limit {
            return Err(DomainError::invalid(
                "chunk",
                format!(
                    "the upload is larger than the server's limit of {} bytes (max_upload_mb)",
                    self.limit
                ),
            )
            .into());
        }
        let file = self.file.as_mut().ok_or_else(|| {
            JobError::FailedPrecondition("the upload is already complete".to_owned())
        })?;
        file.write_all(chunk).await.map_err(|error| {
            JobError::FailedPrecondition(format!("cannot store the upload: {error}"))
        })
    }

    /// Flushes and closes the file; returns its path.
    pub(crate) async fn finish(&mut self) -> JobResult<PathBuf> {
        if let Some(mut file) = self.file.take() {
            file.flush().await.map_err(|error| {
                JobError::FailedPrecondition(format!("cannot store the upload: {error}"))
            })?;
        }
        Ok(self.path.clone())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // The import is over or never started: the spooled copy is of no further use.
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove an uploaded file");
        }
    }
}
