//! Plain text: tagd-core's normalisation (NFKC, trimmed, whitespace collapsed), skipped
//! when a value is already normal; the name and company rules built on it.

use std::borrow::Cow;

use tagd_core::customers::MAX_COMPANY_CHARS;
use tagd_core::text::{self, MAX_NAME_CHARS};
use unicode_normalization::{IsNormalized, is_nfkc_quick};

use crate::cleaned::CleanedText;

/// `tagd_core::text::normalize` after removing zero-width spaces and byte-order marks
/// (which NFKC keeps and copy-pasted data is full of); borrowed when nothing changes.
pub(crate) fn normalized(raw: &str) -> Cow<'_, str> {
    if is_normal(raw) {
        return Cow::Borrowed(raw);
    }
    let out = if raw.chars().all(|c| c.is_ascii() || is_common_han(c)) {
        // NFKC leaves these alone; only the whitespace needs work.
        collapse_whitespace(raw)
    } else if raw.contains(is_invisible) {
        let visible: String = raw.chars().filter(|&c| !is_invisible(c)).collect();
        text::normalize(&visible)
    } else {
        text::normalize(raw)
    };
    if out == raw {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(out)
    }
}

/// Trimmed, every run of whitespace one space: `text::normalize` for text NFKC keeps.
fn collapse_whitespace(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for word in raw.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether `normalized` would return the value as it is, decided without allocating.
fn is_normal(raw: &str) -> bool {
    let mut after_space = true;
    for c in raw.chars() {
        if c.is_whitespace() {
            if c != ' ' || after_space {
                return false;
            }
            after_space = true;
        } else if is_invisible(c) {
            return false;
        } else {
            after_space = false;
        }
    }
    // Trailing space, or an empty string (which is normal).
    if after_space && !raw.is_empty() {
        return false;
    }
    // ASCII and the common CJK ideographs are NFKC with combining class 0, so a string
    // of nothing else is normal without the general (table-driven) check.
    raw.chars().all(|c| c.is_ascii() || is_common_han(c))
        || is_nfkc_quick(raw.chars()) == IsNormalized::Yes
}

fn is_common_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{FEFF}' | '\u{2060}')
}

/// A CJK ideograph (the characters of Chinese names and place names).
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{20000}'..='\u{2EBEF}' | '\u{30000}'..='\u{3134F}')
}

/// Spaces between two non-ASCII characters removed ("广 东 省" → "广东省"), for place
/// names, which have no spaces in Chinese; "Hong Kong" keeps its space.
pub(crate) fn compact(text: Cow<'_, str>) -> Cow<'_, str> {
    if !text.contains(' ') || text.is_ascii() {
        return text;
    }
    settle(text, |text| {
        let chars: Vec<char> = text.chars().collect();
        let joins = |i: usize| {
            chars[i] == ' '
                && i > 0
                && !chars[i - 1].is_ascii()
                && chars.get(i + 1).is_some_and(|next| !next.is_ascii())
        };
        if !(0..chars.len()).any(joins) {
            return None;
        }
        let kept = (0..chars.len()).filter(|&i| !joins(i)).map(|i| chars[i]);
        Some(kept.collect())
    })
}

/// Applies `edit` (which returns `None` when it has nothing to do) and normalises
/// again until nothing changes: removing a space can join characters that NFKC then
/// reorders or composes. Real text settles in one round; the bound is for the rest.
pub(crate) fn settle<'t>(
    mut text: Cow<'t, str>,
    edit: impl Fn(&str) -> Option<String>,
) -> Cow<'t, str> {
    for _ in 0..4 {
        match edit(&text) {
            Some(edited) => text = Cow::Owned(text::normalize(&edited)),
            None => break,
        }
    }
    text
}

/// `Some(reason)` when `text` is longer than `max` characters.
pub(crate) fn too_long(what: &str, text: &str, max: usize) -> Option<String> {
    // Bytes bound characters from above, so short values skip the count.
    if text.len() <= max {
        return None;
    }
    let chars = text.chars().count();
    (chars > max).then(|| format!("the {what} is {chars} characters long; the limit is {max}"))
}

/// A customer's name: normalised, with the dot of transliterated names
/// ("阿依古丽·买买提") written one way. An empty name is unfixable.
pub fn name(raw: &str) -> CleanedText<'_> {
    let text = normalized(raw);
    if text.is_empty() {
        return CleanedText::Unfixable("the name is empty".to_owned());
    }
    let text = name_dots(text);
    if let Some(reason) = too_long("name", &text, MAX_NAME_CHARS) {
        return CleanedText::Unfixable(reason);
    }
    CleanedText::compare(raw, text)
}

/// The name dot variants (•, ・, ‧, ∙, ⋅) become "·", without spaces around it, in names
/// written in Chinese characters.
fn name_dots(text: Cow<'_, str>) -> Cow<'_, str> {
    let is_dot = |c: char| matches!(c, '•' | '・' | '‧' | '∙' | '⋅' | '·');
    let has_variant = text.contains(|c: char| is_dot(c) && c != '·')
        || text.contains(" ·")
        || text.contains("· ");
    if !has_variant || !text.contains(is_han) {
        return text;
    }
    settle(text, |text| {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if is_dot(c) {
                if out.ends_with(' ') {
                    out.pop();
                }
                out.push('·');
            } else if !(c == ' ' && out.ends_with('·')) {
                out.push(c);
            }
        }
        (out != text).then_some(out)
    })
}

/// A company name: normalised, at most 200 characters.
pub fn company(raw: &str) -> CleanedText<'_> {
    plain(raw, "company name", MAX_COMPANY_CHARS)
}

/// Normalised text of at most `max` characters.
pub(crate) fn plain<'a>(raw: &'a str, what: &str, max: usize) -> CleanedText<'a> {
    let text = normalized(raw);
    if let Some(reason) = too_long(what, &text, max) {
        return CleanedText::Unfixable(reason);
    }
    CleanedText::compare(raw, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cleaned;

    #[test]
    fn normalized_agrees_with_core() {
        for raw in [
            "",
            "张伟",
            "  张  伟\t",
            "ＶＩＰ　客户",
            "a b",
            "a  b",
            " a",
            "a ",
            "a\u{3000}b",
            "e\u{301}",
            "ﬁ",
        ] {
            assert_eq!(normalized(raw), text::normalize(raw), "{raw:?}");
        }
        assert!(matches!(normalized("张 伟"), Cow::Borrowed(_)));
        assert_eq!(normalized("张\u{200B}伟\u{FEFF}"), "张伟");
    }

    #[test]
    fn names_are_trimmed_nfkc_and_collapsed() {
        assert_eq!(name("张伟"), Cleaned::Unchanged(Cow::Borrowed("张伟")));
        assert_eq!(name("  张  伟 ").into_value().unwrap(), "张 伟");
        assert_eq!(
            name("Ｚｈａｎｇ　Ｗｅｉ").into_value().unwrap(),
            "Zhang Wei"
        );
        assert_eq!(name("John\t\tSmith").into_value().unwrap(), "John Smith");
        assert!(name("John Smith").value().is_some_and(|_| true));
        assert!(!name("John Smith").is_changed());
    }

    #[test]
    fn name_dots_are_unified() {
        assert_eq!(
            name("阿依古丽•买买提").into_value().unwrap(),
            "阿依古丽·买买提"
        );
        assert_eq!(
            name("阿依古丽 ・ 买买提").into_value().unwrap(),
            "阿依古丽·买买提"
        );
        assert_eq!(
            name("阿依古丽·买买提"),
            Cleaned::Unchanged(Cow::Borrowed("阿依古丽·买买提"))
        );
        // Latin names keep their punctuation.
        assert!(!name("A • B").is_changed());
    }

    #[test]
    fn empty_and_long_names_are_unfixable() {
        assert_eq!(name(" \u{3000} ").reason(), Some("the name is empty"));
        let long = "长".repeat(201);
        assert_eq!(
            name(&long).reason(),
            Some("the name is 201 characters long; the limit is 200")
        );
    }

    #[test]
    fn compact_joins_chinese_but_not_latin() {
        assert_eq!(compact(Cow::Borrowed("广 东 省")), "广东省");
        assert_eq!(compact(Cow::Borrowed("Hong Kong")), "Hong Kong");
        assert_eq!(compact(Cow::Borrowed("北京 Beijing")), "北京 Beijing");
    }

    #[test]
    fn company_is_normalised() {
        assert_eq!(company(" 腾讯  科技 ").into_value().unwrap(), "腾讯 科技");
        assert!(!company("").is_changed());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn normalized_is_cores_normalize_without_invisibles(raw in "\\PC{0,20}|[ a\u{3000}\u{200B}\t]{0,6}|[张伟广东 ·\u{3400}\u{9FFF}ａ１]{0,8}") {
            let visible: String = raw.chars().filter(|&c| !is_invisible(c)).collect();
            prop_assert_eq!(normalized(&raw), text::normalize(&visible));
        }
    }
}
