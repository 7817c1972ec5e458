//! The crate's one error type.

/// Why the index could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The condition has a predicate the index does not hold the data for;
    /// the caller answers it another way (SQL). `predicate` says which.
    #[error("the segment index cannot answer {predicate}")]
    Unsupported { predicate: String },
    /// A stored tag value that does not read as its tag's type.
    #[error("tag {tag}: {value:?} is not a valid {value_type} value")]
    BadValue {
        tag: String,
        value: String,
        value_type: &'static str,
    },
    /// A tag was first indexed with another value type; drop it and reload.
    #[error("tag {tag} is indexed as {indexed}, not {given}")]
    TypeChanged {
        tag: String,
        indexed: &'static str,
        given: &'static str,
    },
    /// Dense ids are u32; the index holds at most `u32::MAX` customers over
    /// its lifetime (deleted ones included) until it is rebuilt.
    #[error("the index has run out of customer numbers; rebuild it")]
    Full,
}
