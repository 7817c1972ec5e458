//! Text normalisation: NFKC (full-width letters and digits to half-width),
//! trimmed, inner whitespace collapsed; and the case-folded key used for
//! uniqueness and search.

use unicode_normalization::UnicodeNormalization;

use crate::error::{DomainError, DomainResult};

/// The longest name (category, tag, customer) in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// NFKC, trimmed, with every run of whitespace collapsed to one space.
pub fn normalize(raw: &str) -> String {
    let nfkc: String = raw.nfkc().collect();
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The key two names are compared by: normalised, then Unicode case-folded
/// (and NFKC again, since folding can denormalise).
pub fn key(raw: &str) -> String {
    let folded = caseless::default_case_fold_str(&normalize(raw));
    folded.nfkc().collect()
}

/// A required name of 1..=200 characters after normalisation.
pub fn required_name(field: &str, raw: &str) -> DomainResult<String> {
    let name = normalize(raw);
    if name.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    bounded(field, name, MAX_NAME_CHARS)
}

/// An optional text of at most `max_chars` characters after normalisation ("" when absent).
pub fn optional(field: &str, raw: &str, max_chars: usize) -> DomainResult<String> {
    bounded(field, normalize(raw), max_chars)
}

/// Free text (descriptions): trimmed, NFKC, line breaks kept, at most `max_chars`.
pub fn free_text(field: &str, raw: &str, max_chars: usize) -> DomainResult<String> {
    let text: String = raw.trim().nfkc().collect();
    bounded(field, text, max_chars)
}

fn bounded(field: &str, text: String, max_chars: usize) -> DomainResult<String> {
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("is {chars} characters long; the limit is {max_chars}"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_width_and_whitespace() {
        assert_eq!(normalize("  张  伟\t"), "张 伟");
        assert_eq!(normalize("１３８００"), "13800");
        assert_eq!(normalize("ＶＩＰ　客户"), "VIP 客户");
    }

    #[test]
    fn keys_ignore_case_width_and_spacing() {
        assert_eq!(key(" VIP "), key("vip"));
        assert_eq!(key("ＶＩＰ"), key("Vip"));
        assert_eq!(key("Straße"), key("STRASSE"));
        assert_ne!(key("高价值"), key("低价值"));
    }

    #[test]
    fn required_name_rejects_empty_and_long() {
        assert_eq!(required_name("name", " 高价值 ").unwrap(), "高价值");
        let empty = required_name("name", " \u{3000} ").unwrap_err();
        assert_eq!(empty, DomainError::invalid("name", "must not be empty"));
        let long = "长".repeat(201);
        let err = required_name("tag.name", &long).unwrap_err();
        assert!(err.to_string().starts_with("tag.name: is 201 characters"));
        assert!(required_name("name", &"长".repeat(200)).is_ok());
    }

    #[test]
    fn optional_text_is_bounded() {
        assert_eq!(optional("company", "", 10).unwrap(), "");
        assert!(optional("company", "abcdefghijk", 10).is_err());
        assert_eq!(free_text("d", " a\nb ", 10).unwrap(), "a\nb");
    }
}
