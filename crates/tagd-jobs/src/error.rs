//! The jobs crate's one error type.

use tagd_core::DomainError;
use tagd_store::StoreError;

/// Why a job request failed. The gRPC layer maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// `field`: what names the missing thing; `what`: the thing, e.g. `importer "csv"`.
    #[error("{field}: {what} not found{hint}")]
    NotFound {
        field: &'static str,
        what: String,
        hint: String,
    },
    /// The caller may not have the server read this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but the server's state refuses it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The server could not start the job's worker.
    #[error("{0}")]
    Worker(String),
}

pub type JobResult<T> = Result<T, JobError>;
