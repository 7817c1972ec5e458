//! Values that hold several phones or emails in one ("138…/139…", "a@x.com; b@y.com").

/// Separators between phone numbers. A ';' splits only before another number, since
/// "tel:" URIs use it for parameters.
fn phone_separator(rest_after: &str, c: char) -> bool {
    match c {
        ',' | '，' | '、' | '/' | '|' | '\n' | '；' => true,
        ';' => rest_after
            .trim_start()
            .starts_with(|n: char| n.is_ascii_digit() || n == '+' || n == '('),
        _ => false,
    }
}

/// Separators between email addresses; '/' and '|' may sit in a local part, so they
/// do not split.
fn email_separator(_: &str, c: char) -> bool {
    matches!(c, ',' | '，' | '、' | ';' | '；' | '\n')
}

fn split(raw: &str, separator: fn(&str, char) -> bool) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in raw.char_indices() {
        let end = i + c.len_utf8();
        if separator(&raw[end..], c) {
            parts.push(&raw[start..i]);
            start = end;
        }
    }
    parts.push(&raw[start..]);
    parts.retain(|part| !part.trim().is_empty());
    parts
}

/// The phone numbers in `raw`, or `raw` alone.
pub(crate) fn phones(raw: &str) -> Vec<&str> {
    split(raw, phone_separator)
}

/// The email addresses in `raw`, or `raw` alone.
pub(crate) fn emails(raw: &str) -> Vec<&str> {
    split(raw, email_separator)
}

/// Whether `raw` may hold several phones: the cheap test before [`phones`].
pub(crate) fn may_hold_phones(raw: &str) -> bool {
    raw.contains([',', '，', '、', '/', '|', '\n', ';', '；'])
}

/// Whether `raw` may hold several emails: the cheap test before [`emails`].
pub(crate) fn may_hold_emails(raw: &str) -> bool {
    raw.contains([',', '，', '、', ';', '；', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_split_on_list_punctuation() {
        assert_eq!(
            phones("13800138000/13900139000"),
            vec!["13800138000", "13900139000"]
        );
        assert_eq!(
            phones("13800138000；139 0013 9000，"),
            vec!["13800138000", "139 0013 9000"]
        );
        assert_eq!(
            phones("tel:+8613800138000;ext=1"),
            vec!["tel:+8613800138000;ext=1"]
        );
        assert_eq!(phones("138;139"), vec!["138", "139"]);
        assert_eq!(phones(""), Vec::<&str>::new());
        assert!(may_hold_phones("a,b"));
        assert!(!may_hold_phones("+86 138 0013 8000"));
    }

    #[test]
    fn emails_split_on_list_punctuation_only() {
        assert_eq!(
            emails("a@x.com; b@y.com，c@z.com"),
            vec!["a@x.com", " b@y.com", "c@z.com"]
        );
        assert_eq!(emails("a/b@x.com"), vec!["a/b@x.com"]);
        assert!(!may_hold_emails("a/b@x.com"));
    }
}
