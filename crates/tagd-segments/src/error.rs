//! The crate's one error type.

use tagd_condition::ConditionError;
use tagd_core::DomainError;
use tagd_store::StoreError;

/// Why a segment operation failed. The gRPC layer maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The condition given is refused (syntax, limits, names, types, cycles). The error's
    /// node path (`condition.and[1]…`) is put under the request field that held it.
    #[error("{}", under_field(field, error))]
    Condition {
        field: String,
        error: ConditionError,
    },
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// A stored segment's condition no longer binds (a tag it names was
    /// deleted since…).
    #[error("segment {name:?} can no longer be evaluated: {error}")]
    Stale { name: String, error: ConditionError },
    #[error("{0}")]
    FailedPrecondition(String),
    /// An export file could not be written (temporary storage).
    #[error("cannot write the export: {0}")]
    Export(String),
    /// The index was rebuilt while a long read (an export) walked it.
    #[error("the segment index was rebuilt during the call; retry")]
    Rebuilt,
}

pub type SegmentResult<T> = Result<T, SegmentError>;

/// `field` then the error, its node path (which starts at `condition`) continuing the field:
/// `draft.condition.and[1]: unknown attribute "x"`, not `draft.condition: condition.and[1]: …`.
fn under_field(field: &str, error: &ConditionError) -> String {
    let message = error.to_string();
    match message.strip_prefix("condition") {
        Some(rest) if rest.starts_with(['.', ':']) => {
            let parent = field.strip_suffix(".text").unwrap_or(field);
            let parent = parent.strip_suffix("condition").unwrap_or(parent);
            format!("{parent}condition{rest}")
        }
        _ => format!("{field}: {message}"),
    }
}
