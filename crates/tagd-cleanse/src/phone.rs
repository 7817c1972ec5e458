//! Phone numbers to E.164. Chinese mobile numbers in their everyday spellings take a
//! fast path; everything else goes through `tagd_core`'s `ContactRules::phone`.
//!
//! `phonenumber` takes some 20 µs a number, a hundred times the budget of a whole
//! record, so the fast path writes the number in E.164 itself and lets tagd-core judge
//! it, which for a CN mobile in E.164 looks only at its five-digit prefix.

use std::borrow::Cow;

use phonenumber::country::Id as Region;
use tagd_core::DomainError;
use tagd_core::customers::{ContactRules, cn_mobile_e164};

use crate::cleaned::CleanedText;
use crate::text::normalized;

/// One phone number, to E.164 under `rules`; see the crate documentation for what is
/// stripped ("tel:", labels such as "手机：", extensions, full-width digits).
pub(crate) fn phone<'a>(rules: &ContactRules, raw: &'a str) -> CleanedText<'a> {
    let region_cn = rules.default_region == Region::CN;
    if let Some(national) = cn_mobile(raw, region_cn) {
        return mobile(raw, &national);
    }
    let text = normalized(raw);
    if text.is_empty() {
        return CleanedText::Unfixable("the phone number is empty".to_owned());
    }
    let number = without_extension(without_label(&text));
    if let Some(national) = cn_mobile(number, region_cn) {
        return mobile(raw, &national);
    }
    if number.contains(|c: char| c.is_alphabetic()) {
        return CleanedText::Unfixable(format!(
            "{text:?} has letters in it, so it is not a phone number"
        ));
    }
    match rules.phone("phone", number) {
        Ok(e164) => CleanedText::compare(raw, Cow::Owned(e164)),
        Err(DomainError::Invalid { reason, .. }) => CleanedText::Unfixable(reason),
    }
}

fn mobile<'a>(raw: &'a str, national: &[u8; 11]) -> CleanedText<'a> {
    let mut e164 = String::with_capacity(14);
    e164.push_str("+86");
    e164.extend(national.iter().map(|&d| char::from(b'0' + d)));
    if cn_mobile_e164(&e164) != Some(true) {
        return CleanedText::Unfixable(format!("{e164:?} is not a valid phone number"));
    }
    if e164 == raw {
        CleanedText::Unchanged(Cow::Borrowed(raw))
    } else {
        CleanedText::Changed(Cow::Owned(e164))
    }
}

/// The 11 digits of a Chinese mobile number written with only digits (ASCII or
/// full-width), spacing and punctuation, and optionally +86, 0086 or 86 before it and
/// a trunk 0. Shapes `phonenumber` reads the same way; `region_cn` says whether a
/// number without a country code is Chinese.
fn cn_mobile(raw: &str, region_cn: bool) -> Option<[u8; 11]> {
    let mut digits = [0u8; 16];
    let mut count = 0;
    let mut plus = false;
    for c in raw.chars() {
        let digit = match c {
            '0'..='9' => Some(c as u32 - '0' as u32),
            '０'..='９' => Some(c as u32 - '０' as u32),
            _ => None,
        };
        if let Some(digit) = digit {
            *digits.get_mut(count)? = u8::try_from(digit).ok()?;
            count += 1;
            continue;
        }
        match c {
            '+' | '＋' if count == 0 && !plus => plus = true,
            ' ' | '\t' | '-' | '.' | '(' | ')' | '\u{A0}' | '\u{3000}' | '－' | '（' | '）'
            | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '．' => {}
            _ => return None,
        }
    }
    let digits = &digits[..count];
    let national = if plus {
        let digits = digits.strip_prefix(&[0, 0]).unwrap_or(digits);
        digits.strip_prefix(&[8, 6])?
    } else if !region_cn {
        return None;
    } else if let Some(rest) = digits.strip_prefix(&[0, 0, 8, 6]) {
        rest
    } else if digits.len() == 13 && digits.starts_with(&[8, 6, 1]) {
        &digits[2..]
    } else {
        digits
    };
    let national = match national {
        [0, rest @ ..] if rest.len() == 11 => rest,
        _ => national,
    };
    match national {
        [1, ..] => national.try_into().ok(),
        _ => None,
    }
}

/// Without a leading label ending in a colon: "手机：138…", "Tel: 138…", "tel:+86…".
fn without_label(text: &str) -> &str {
    match text.split_once([':', '：']) {
        Some((label, number)) if !label.contains(|c: char| c.is_ascii_digit()) => number.trim(),
        _ => text,
    }
}

/// Without an extension: "转 123", "分机 123", "ext. 123", "x123", "#123", ";ext=123".
fn without_extension(text: &str) -> &str {
    let lower_ext = text
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '转' | '#' | ';' | 'x' | 'X')
                || text[i..].starts_with("分机")
                || text[i..]
                    .get(..3)
                    .is_some_and(|s| s.eq_ignore_ascii_case("ext"))
        })
        .map(|(i, _)| i);
    match lower_ext {
        Some(i) if i > 0 => text[..i].trim(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN: ContactRules = ContactRules {
        default_region: Region::CN,
    };
    use crate::Cleaned;

    fn fixed(raw: &str) -> String {
        phone(&CN, raw).into_result().unwrap().into_owned()
    }

    #[test]
    fn chinese_mobiles_in_every_spelling() {
        for raw in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "(+86)13800138000",
            "+86 (0) 138 0013 8000",
            "8613800138000",
            "0086 13800138000",
            "013800138000",
            "１３８００１３８０００",
            "＋８６ １３８－００１３－８０００",
            "tel:+86-138-0013-8000",
            "tel:+86-138-0013-8000;ext=12",
            "TEL:13800138000",
            "手机：13800138000",
            "Mobile: 138 0013 8000",
            "13800138000 ext 123",
            "13800138000转123",
            "13800138000 分机 123",
            "138 0013 8000#123",
            "13800138000 x123",
            " 13800138000\u{3000}",
        ] {
            assert_eq!(fixed(raw), "+8613800138000", "{raw:?}");
        }
        assert_eq!(
            phone(&CN, "+8613800138000"),
            Cleaned::Unchanged(Cow::Borrowed("+8613800138000"))
        );
    }

    #[test]
    fn other_numbers_go_through_core() {
        assert_eq!(fixed("010-12345678"), "+861012345678");
        assert_eq!(fixed("(010)12345678"), "+861012345678");
        assert_eq!(fixed("+1 650-253-0000"), "+16502530000");
        assert_eq!(fixed("+852 9123 4567"), "+85291234567");
        let us = ContactRules::for_region("US").unwrap();
        assert_eq!(
            phone(&us, "(650) 253-0000").into_value().unwrap(),
            "+16502530000"
        );
        assert_eq!(
            phone(&us, "+86 138 0013 8000").into_value().unwrap(),
            "+8613800138000"
        );
    }

    #[test]
    fn bad_numbers_are_unfixable() {
        assert_eq!(
            phone(&CN, "17406012345").reason(),
            Some("\"+8617406012345\" is not a valid phone number")
        );
        assert_eq!(
            phone(&CN, "1-800-FLOWERS").reason(),
            Some("\"1-800-FLOWERS\" has letters in it, so it is not a phone number")
        );
        assert!(phone(&CN, "12345").is_unfixable());
        assert!(phone(&CN, "1380013800").is_unfixable());
        assert_eq!(phone(&CN, "  ").reason(), Some("the phone number is empty"));
    }

    #[test]
    fn the_fast_path_agrees_with_core() {
        // Every 7th prefix, with a suffix that varies, in three spellings.
        for prefix in (10_000..20_000u64).step_by(7) {
            let national = format!("{prefix}{:06}", prefix * 7919 % 1_000_000);
            for raw in [
                national.clone(),
                format!("+86 {national}"),
                format!("0{national}"),
            ] {
                let fast = phone(&CN, &raw).into_result().map(Cow::into_owned);
                let core = CN.phone("p", &raw).map_err(|e| e.to_string());
                assert_eq!(fast.is_ok(), core.is_ok(), "{raw:?}: {fast:?} vs {core:?}");
                if let (Ok(fast), Ok(core)) = (fast, core) {
                    assert_eq!(fast, core);
                }
            }
        }
    }
}
