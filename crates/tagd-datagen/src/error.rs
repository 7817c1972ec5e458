//! The one error type of the generator: a configuration value out of range.

/// Why a [`crate::GeneratorConfig`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatagenError {
    /// A probability or rate outside `0.0..=1.0` (or not a number).
    #[error("{field}: {value} is not a probability in 0..=1")]
    NotAProbability { field: &'static str, value: f64 },
    /// A count that must be positive is zero.
    #[error("{field}: must be at least 1")]
    Zero { field: &'static str },
}
