//! The crate's one error type.

use tagd_core::DomainError;
use tagd_segments::SegmentError;
use tagd_store::StoreError;

/// Why a rule operation failed. The gRPC layer maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Binding or evaluating the condition failed (its errors name the field).
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The rule cannot run or install as things stand (a stale condition, no buyers
    /// for a template, a tag of the wrong type).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
}

pub type RuleResult<T> = Result<T, RuleError>;
