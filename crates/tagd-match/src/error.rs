//! The one error type of the matcher: a configuration or input it refuses.

/// Why a [`crate::MatchConfig`] or an input was refused; each names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatchError {
    /// A threshold outside `0.0..=1.0` (or not a number).
    #[error("{field}: {value} is outside 0..=1")]
    ThresholdOutOfRange { field: &'static str, value: f64 },
    /// The review threshold is above the auto-merge threshold.
    #[error("review_threshold: {review} is above auto_merge_threshold {merge}")]
    ReviewAboveMerge { review: f64, merge: f64 },
    /// A weight that is infinite or not a number.
    #[error("weights.{field}: {value} is not a finite number")]
    WeightNotFinite { field: &'static str, value: f64 },
    /// A count that must be positive (or at least some minimum) is too small.
    #[error("{field}: {value} is below the minimum {minimum}")]
    TooSmall {
        field: &'static str,
        value: usize,
        minimum: usize,
    },
    /// No blocking key is enabled, so no pair could ever be found.
    #[error("blocking_keys: at least one blocking key is needed")]
    NoBlockingKeys,
    /// Two input records carry the same caller id.
    #[error("records: id {0} is given twice")]
    DuplicateId(u32),
}
