//! Small constructors for the generated messages, so plugins stay short.

use crate::pb::{RowError, Tag};

/// Longest `raw_value` kept in a [`RowError`], in characters.
const MAX_RAW_CHARS: usize = 200;

/// Cuts `raw` to at most 200 characters (on a char boundary) for error reports.
pub fn truncate_raw(raw: &str) -> String {
    match raw.char_indices().nth(MAX_RAW_CHARS) {
        Some((at, _)) => format!("{}…", &raw[..at]),
        None => raw.to_owned(),
    }
}

impl RowError {
    /// A row error whose raw value is truncated for the report.
    pub fn new(
        row: u64,
        field: impl Into<String>,
        reason: impl Into<String>,
        raw_value: &str,
    ) -> Self {
        Self {
            row,
            field: field.into(),
            reason: reason.into(),
            raw_value: truncate_raw(raw_value),
        }
    }
}

impl Tag {
    /// A plain tag (no value).
    pub fn new(category: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            category: category.into(),
            name: name.into(),
            value: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        let long = "客".repeat(300);
        let cut = truncate_raw(&long);
        assert_eq!(cut.chars().count(), MAX_RAW_CHARS + 1);
        assert_eq!(truncate_raw("short"), "short");
    }
}
