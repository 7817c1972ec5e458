//! The minimal cleansing the matcher needs from raw channel text: NFKC and
//! whitespace, digits-only phones with the China prefix resolved, lower-cased
//! emails, a handful of birthday spellings. The full rules live in the
//! cleansing crate; this only makes raw text comparable.

use std::borrow::Cow;

use chrono::NaiveDate;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use crate::record::{Gender, MatchRecord, RawCustomer};

/// Cleanses one raw record; never fails (what cannot be read is left out).
pub fn prepare(raw: &RawCustomer) -> MatchRecord {
    MatchRecord {
        id: raw.id,
        name: normalize(&raw.name),
        gender: gender(&raw.gender),
        birthday: birthday(&raw.birthday),
        phones: unique(raw.phones.iter().filter_map(|p| phone(p))),
        emails: unique(raw.emails.iter().filter_map(|e| email(e))),
        province: normalize(&raw.province),
        city: normalize(&raw.city),
        district: normalize(&raw.district),
        detail: normalize(&raw.detail),
    }
}

/// NFKC (full-width to half-width), trimmed, whitespace runs to one space.
pub fn normalize(raw: &str) -> String {
    let nfkc = nfkc(raw);
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// NFKC, borrowing when the text is already normalised (cleansed records
/// usually are, and profiling a million of them re-checks every field).
fn nfkc(raw: &str) -> Cow<'_, str> {
    // ASCII and the CJK Unified Ideographs never change under NFKC; checking
    // the range is far cheaper than the general quick-check table.
    let stable = |c: char| c.is_ascii() || ('\u{4E00}'..='\u{9FFF}').contains(&c);
    if raw.chars().all(stable) || is_nfkc_quick(raw.chars()) == IsNormalized::Yes {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.nfkc().collect())
    }
}

fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

fn gender(raw: &str) -> Gender {
    match normalize(raw).to_lowercase().as_str() {
        "男" | "m" | "male" | "man" => Gender::Male,
        "女" | "f" | "female" | "woman" => Gender::Female,
        _ => Gender::Unknown,
    }
}

/// Digits only; a Chinese mobile with or without 86/0086 becomes
/// `+86` + 11 digits, anything else with a leading + keeps it.
pub fn phone(raw: &str) -> Option<String> {
    let text = normalize(raw);
    let plus = text.trim_start_matches(['(', ' ']).starts_with('+');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let national = if plus {
        digits.strip_prefix("86")
    } else {
        digits
            .strip_prefix("0086")
            .or_else(|| digits.strip_prefix("86").filter(|rest| rest.len() == 11))
            .or(Some(&digits))
    };
    if let Some(national) = national
        && national.len() == 11
        && national.starts_with('1')
    {
        return Some(format!("+86{national}"));
    }
    if digits.len() < 5 || digits.len() > 18 {
        return None;
    }
    Some(if plus { format!("+{digits}") } else { digits })
}

fn email(raw: &str) -> Option<String> {
    let email = normalize(raw).to_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some(email)
}

/// `1985-03-07`, `1985/3/7`, `1985.03.07`, `1985年3月7日`, `19850307`.
pub fn birthday(raw: &str) -> Option<NaiveDate> {
    let text = normalize(raw);
    let parts: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .collect();
    let (year, month, day) = match parts.as_slice() {
        [y, m, d] => (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?),
        [compact] if compact.len() == 8 => (
            compact.get(..4)?.parse().ok()?,
            compact.get(4..6)?.parse().ok()?,
            compact.get(6..)?.parse().ok()?,
        ),
        _ => return None,
    };
    if !(1900..=2100).contains(&year) {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_every_channel_style_agree() {
        let want = Some("+8613800138000".to_owned());
        for raw in [
            "13800138000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "138-0013-8000",
            "0086 13800138000",
            "(+86) 13800138000",
            "86 138 0013 8000",
            "１３８　００１３　８０００",
            "＋８６１３８００１３８０００",
        ] {
            assert_eq!(phone(raw), want, "{raw}");
        }
        assert_eq!(phone("+1 415 555 0100"), Some("+14155550100".to_owned()));
        assert_eq!(phone("n/a"), None);
        assert_eq!(phone(""), None);
    }

    #[test]
    fn birthdays_in_every_spelling_agree() {
        let want = NaiveDate::from_ymd_opt(1985, 3, 7);
        for raw in [
            "1985-03-07",
            "1985/3/7",
            "19850307",
            "1985年3月7日",
            "1985.03.07",
            "１９８５-03-07",
        ] {
            assert_eq!(birthday(raw), want, "{raw}");
        }
        assert_eq!(birthday("1985-02-30"), None);
        assert_eq!(birthday("unknown"), None);
        assert_eq!(birthday(""), None);
    }

    #[test]
    fn raw_record_is_cleansed() {
        let record = prepare(&RawCustomer {
            id: 7,
            name: "  张　伟 ".into(),
            gender: "女".into(),
            emails: vec![
                "ZhangWei@QQ.COM".into(),
                "zhangwei@qq.com".into(),
                "bad".into(),
            ],
            ..RawCustomer::default()
        });
        assert_eq!(record.name, "张 伟");
        assert_eq!(record.gender, Gender::Female);
        assert_eq!(record.emails, vec!["zhangwei@qq.com".to_owned()]);
    }
}
