//! The crate's one error type: configuration a [`Cleanser`](crate::Cleanser) cannot work with.

/// Options that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleanseError {
    /// The default phone region is not an ISO 3166 code `phonenumber` knows.
    #[error("{0}")]
    PhoneRegion(String),
}
