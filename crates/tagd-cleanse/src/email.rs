//! Email addresses: tagd-core's shape check and lower-case domain, then the local
//! part lower-cased and Gmail addresses folded when the options say so.
//!
//! Local-part policy: RFC 5321 lets a server treat "Zhang.Wei" and "zhang.wei" as two
//! mailboxes, but no mainstream provider does, and two spellings of one address split a
//! customer's identity. So lower-casing the whole address is the default
//! (`lowercase_email_local_part`); turn it off to keep the store's own rule (domain only).

use std::borrow::Cow;

use tagd_core::DomainError;
use tagd_core::customers;

use crate::cleaned::CleanedText;
use crate::text::normalized;

/// How far email addresses are folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EmailPolicy {
    pub lowercase_local_part: bool,
    pub fold_gmail: bool,
}

pub(crate) fn email<'a>(policy: EmailPolicy, raw: &'a str) -> CleanedText<'a> {
    if is_plainly_clean(policy, raw) {
        return CleanedText::Unchanged(Cow::Borrowed(raw));
    }
    let text = normalized(raw);
    if text.is_empty() {
        return CleanedText::Unfixable("the email address is empty".to_owned());
    }
    let unwrapped = unwrap(&text);
    let address = match customers::email("email", &unwrapped) {
        Ok(address) => address,
        Err(DomainError::Invalid { reason, .. }) => return CleanedText::Unfixable(reason),
    };
    let address = fold(policy, address);
    // Lower-casing a non-ASCII domain can leave text that NFKC changes again.
    if !address.is_ascii() && !is_stable(&address) {
        return CleanedText::Unfixable(format!(
            "{address:?} has characters without one stable lower-case form"
        ));
    }
    CleanedText::compare(raw, Cow::Owned(address))
}

/// Whether `raw` is an everyday address already in standard form, decided without
/// allocating: a narrower shape than tagd-core's rule (ASCII letters, digits and
/// `._+-` before the '@', a lower-case host name after it), so anything it passes,
/// the full path would leave unchanged too (a property test holds it to that).
fn is_plainly_clean(policy: EmailPolicy, raw: &str) -> bool {
    let Some((local, domain)) = raw.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'+' | b'-')
                || (b.is_ascii_uppercase() && !policy.lowercase_local_part)
        });
    let domain_ok = raw.len() <= 254
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    let gmail_ok = !policy.fold_gmail
        || match domain {
            "gmail.com" => {
                !local.contains(['.', '+']) && !local.bytes().any(|b| b.is_ascii_uppercase())
            }
            "googlemail.com" => false,
            _ => true,
        };
    local_ok && domain_ok && gmail_ok
}

/// The address inside the decorations people paste around it: "mailto:",
/// "Zhang Wei <zw@example.com>", a trailing full stop, the ideographic full stop "。".
fn unwrap(text: &str) -> Cow<'_, str> {
    let mut address = text;
    if let Some((_, inside)) = address.split_once('<')
        && let Some((inside, _)) = inside.split_once('>')
    {
        address = inside.trim();
    }
    if address
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
    {
        address = address[7..].trim();
    }
    address = address.trim_end_matches(['.', ',', ';']);
    if address.contains('。') {
        Cow::Owned(address.replace('。', "."))
    } else {
        Cow::Borrowed(address)
    }
}

fn fold(policy: EmailPolicy, address: String) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return address;
    };
    if policy.fold_gmail && matches!(domain, "gmail.com" | "googlemail.com") {
        // Gmail ignores dots, everything after '+', and case in the local part.
        let base = local.split_once('+').map_or(local, |(base, _)| base);
        let folded: String = base
            .chars()
            .filter(|&c| c != '.')
            .flat_map(char::to_lowercase)
            .collect();
        if !folded.is_empty() && is_stable(&format!("{folded}@gmail.com")) {
            return format!("{folded}@gmail.com");
        }
    }
    if policy.lowercase_local_part && local.chars().any(char::is_uppercase) {
        let lowered = format!("{}@{domain}", local.to_lowercase());
        // Lower-casing a few non-ASCII letters leaves a string NFKC would change again.
        if local.is_ascii() || is_stable(&lowered) {
            return lowered;
        }
    }
    address
}

/// Whether tagd-core takes the address as it is (so a second cleanse changes nothing).
fn is_stable(address: &str) -> bool {
    customers::email("email", address).is_ok_and(|again| again == address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cleaned;

    const LOWER: EmailPolicy = EmailPolicy {
        lowercase_local_part: true,
        fold_gmail: false,
    };
    const KEEP_CASE: EmailPolicy = EmailPolicy {
        lowercase_local_part: false,
        fold_gmail: false,
    };
    const GMAIL: EmailPolicy = EmailPolicy {
        lowercase_local_part: true,
        fold_gmail: true,
    };

    fn fixed(policy: EmailPolicy, raw: &str) -> String {
        email(policy, raw).into_result().unwrap().into_owned()
    }

    #[test]
    fn addresses_are_trimmed_and_lowercased() {
        assert_eq!(
            fixed(LOWER, "  Zhang.Wei@Example.COM "),
            "zhang.wei@example.com"
        );
        assert_eq!(
            fixed(KEEP_CASE, "  Zhang.Wei@Example.COM "),
            "Zhang.Wei@example.com"
        );
        assert_eq!(
            fixed(LOWER, "ｚｗ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
            "zw@example.com"
        );
        assert_eq!(fixed(LOWER, "mailto:zw@example.com"), "zw@example.com");
        assert_eq!(fixed(LOWER, "张伟 <ZW@example.com>"), "zw@example.com");
        assert_eq!(fixed(LOWER, "zw@example.com."), "zw@example.com");
        assert_eq!(fixed(LOWER, "zw@qq。com"), "zw@qq.com");
        assert_eq!(
            email(LOWER, "zw@example.com"),
            Cleaned::Unchanged(Cow::Borrowed("zw@example.com"))
        );
    }

    #[test]
    fn gmail_folding_is_optional() {
        assert_eq!(
            fixed(LOWER, "Zhang.Wei+shop@GMail.com"),
            "zhang.wei+shop@gmail.com"
        );
        assert_eq!(
            fixed(GMAIL, "Zhang.Wei+shop@GMail.com"),
            "zhangwei@gmail.com"
        );
        assert_eq!(
            fixed(GMAIL, "zhang.wei@googlemail.com"),
            "zhangwei@gmail.com"
        );
        assert_eq!(
            fixed(GMAIL, "zhang.wei+x@example.com"),
            "zhang.wei+x@example.com"
        );
        // Nothing left to fold into: kept as an ordinary address.
        assert_eq!(fixed(GMAIL, "+x@gmail.com"), "+x@gmail.com");
    }

    proptest::proptest! {
        #[test]
        fn the_plain_check_agrees_with_the_full_path(
            raw in "[a-zA-Z0-9._+@-]{1,12}(@[a-zA-Z0-9.-]{1,12})?|[a-z.+]{1,8}@g(oogle)?mail\\.com",
            lower in proptest::bool::ANY,
            fold in proptest::bool::ANY,
        ) {
            let policy = EmailPolicy { lowercase_local_part: lower, fold_gmail: fold };
            if is_plainly_clean(policy, &raw) {
                let full = customers::email("email", &raw)
                    .map(|address| fold_and_compare(policy, &raw, address));
                proptest::prop_assert_eq!(full, Ok(true), "{:?}", raw);
            }
        }
    }

    fn fold_and_compare(policy: EmailPolicy, raw: &str, address: String) -> bool {
        fold(policy, address) == raw
    }

    #[test]
    fn bad_addresses_are_unfixable_with_cores_reason() {
        assert_eq!(
            email(LOWER, "no-at-sign").reason(),
            Some("\"no-at-sign\" is not an email address: no @")
        );
        assert!(email(LOWER, "a@b").is_unfixable());
        assert!(email(LOWER, "a b@example.com").is_unfixable());
        assert_eq!(
            email(LOWER, " ").reason(),
            Some("the email address is empty")
        );
    }
}
