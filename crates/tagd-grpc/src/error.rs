//! The one place where errors become gRPC statuses.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tagd_core::DomainError;
use tagd_jobs::JobError;
use tagd_rules::RuleError;
use tagd_segments::SegmentError;
use tagd_store::StoreError;
use tonic::Status;

/// Maps every store error to the status a caller can act on.
pub(crate) fn status(error: StoreError) -> Status {
    match error {
        StoreError::Invalid(domain) => invalid(domain),
        error @ StoreError::NotFound { .. } => Status::not_found(error.to_string()),
        StoreError::AlreadyExists(message) => Status::already_exists(message),
        StoreError::FailedPrecondition(message) => Status::failed_precondition(message),
        error @ (StoreError::UnsupportedUrl(_) | StoreError::Migration(_)) => {
            tracing::error!(%error, "store misconfigured");
            Status::internal(error.to_string())
        }
        error @ StoreError::ShuttingDown => Status::unavailable(error.to_string()),
        error @ StoreError::Connect(_) => {
            tracing::error!(%error, "database unavailable");
            Status::unavailable(error.to_string())
        }
        StoreError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure,
            info,
        )) => {
            tracing::info!(error = info.message(), "concurrent write conflict");
            Status::aborted("a concurrent request changed the same rows; retry")
        }
        error @ StoreError::Database(_) if error.is_lock_conflict() => {
            tracing::info!(%error, "lock conflict: the transaction was rolled back");
            Status::aborted(
                "a concurrent request held the same rows and this one was rolled back; retry",
            )
        }
        error @ (StoreError::Database(_) | StoreError::Corrupt(_)) => {
            tracing::error!(%error, "database error");
            Status::internal("internal database error; see the server log")
        }
    }
}

/// Maps every job error to the status a caller can act on.
pub(crate) fn job_status(error: JobError) -> Status {
    match error {
        JobError::Store(error) => status(error),
        JobError::Invalid(domain) => invalid(domain),
        error @ JobError::NotFound { .. } => Status::not_found(error.to_string()),
        JobError::PermissionDenied(message) => Status::permission_denied(message),
        JobError::FailedPrecondition(message) => Status::failed_precondition(message),
        JobError::Worker(message) => {
            tracing::error!(%message, "job worker failed");
            Status::internal(message)
        }
    }
}

/// Maps every segment error to the status a caller can act on.
pub(crate) fn segment_status(error: SegmentError) -> Status {
    match error {
        SegmentError::Store(error) => status(error),
        SegmentError::Invalid(domain) => invalid(domain),
        error @ SegmentError::Condition { .. } => Status::invalid_argument(error.to_string()),
        error @ SegmentError::Stale { .. } => Status::failed_precondition(error.to_string()),
        SegmentError::FailedPrecondition(message) => Status::failed_precondition(message),
        error @ SegmentError::Rebuilt => Status::aborted(error.to_string()),
        error @ SegmentError::Export(_) => {
            tracing::error!(%error, "segment export failed");
            Status::internal(error.to_string())
        }
    }
}

pub(crate) fn invalid(error: DomainError) -> Status {
    Status::invalid_argument(error.to_string())
}

/// `?`-friendly conversion of domain and store results into statuses.
pub(crate) trait OrStatus<T> {
    fn or_status(self) -> Result<T, Status>;
}

impl<T> OrStatus<T> for Result<T, StoreError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(status)
    }
}

impl<T> OrStatus<T> for Result<T, JobError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(job_status)
    }
}

impl<T> OrStatus<T> for Result<T, SegmentError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(segment_status)
    }
}

/// Maps every rule error; store and segment errors map as they do everywhere.
pub(crate) fn rule_status(error: RuleError) -> Status {
    match error {
        RuleError::Store(error) => status(error),
        RuleError::Segment(error) => segment_status(error),
        RuleError::Invalid(domain) => invalid(domain),
        RuleError::FailedPrecondition(message) => Status::failed_precondition(message),
        RuleError::AlreadyExists(message) => Status::already_exists(message),
    }
}

impl<T> OrStatus<T> for Result<T, RuleError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(rule_status)
    }
}

impl<T> OrStatus<T> for Result<T, DomainError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(invalid)
    }
}
