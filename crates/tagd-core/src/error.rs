//! The domain crate's one error type: an input that breaks a rule.

/// An input that breaks a domain rule, naming the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// `field` (a request path such as `customer.phones[1]`) is not acceptable.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl DomainError {
    /// The field at fault and why.
    pub fn parts(&self) -> (&str, &str) {
        match self {
            Self::Invalid { field, reason } => (field, reason),
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix.` put before the field path (e.g. the row of a batch).
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Invalid { field, reason } => Self::Invalid {
                field: format!("{prefix}.{field}"),
                reason,
            },
        }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
