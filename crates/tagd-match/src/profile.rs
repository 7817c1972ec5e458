//! A record made ready for comparison: keys computed once per record so
//! that scoring a pair only compares numbers and short strings.

use chrono::NaiveDate;

use crate::compare::NameKeys;
use crate::names::{exact_key, fuzzy_key, pinyin_key};
use crate::prepare::normalize;
use crate::record::{Gender, MatchRecord, RecordId};

/// The comparison-ready form of a [`MatchRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: RecordId,
    pub(crate) name_key: Box<str>,
    pub(crate) pinyin_key: Box<str>,
    pub(crate) fuzzy_key: Box<str>,
    /// Phone digits as numbers (national number for +86), sorted.
    pub(crate) phones: Box<[u64]>,
    pub(crate) emails: Box<[Box<str>]>,
    pub(crate) birthday: Option<NaiveDate>,
    pub(crate) gender: Gender,
    pub(crate) province_key: Box<str>,
    pub(crate) city_key: Box<str>,
    pub(crate) detail_key: Box<str>,
}

impl Profile {
    pub fn new(record: &MatchRecord) -> Self {
        let name = normalize(&record.name);
        // The same key as `name_pinyin`, which the store keeps per customer.
        let mut phones: Vec<u64> = record
            .phones
            .iter()
            .filter_map(|p| phone_number(p))
            .collect();
        phones.sort_unstable();
        phones.dedup();
        let emails = record
            .emails
            .iter()
            .map(|e| normalize(e).to_lowercase())
            .filter(|e| !e.is_empty())
            .map(String::into_boxed_str)
            .collect();
        let province = compact(&record.province);
        let city = compact(&record.city);
        let district = compact(&record.district);
        let detail_key = detail_key([&province, &city, &district], &record.detail);
        let province_key = without_suffix(&province).to_owned();
        let city_key = without_suffix(&city).to_owned();
        let pinyin = pinyin_key(&name);
        Self {
            id: record.id,
            name_key: exact_key(&name).into(),
            fuzzy_key: fuzzy_key(&pinyin).into(),
            pinyin_key: pinyin.into(),
            phones: phones.into(),
            emails,
            birthday: record.birthday,
            gender: record.gender,
            province_key: province_key.into(),
            city_key: city_key.into(),
            detail_key: detail_key.into(),
        }
    }
}

impl Profile {
    pub(crate) fn name_keys(&self) -> NameKeys<'_> {
        NameKeys {
            exact: &self.name_key,
            pinyin: &self.pinyin_key,
            fuzzy: &self.fuzzy_key,
        }
    }
}

/// Digits of a phone as one number, the +86 / 0086 prefix dropped.
fn phone_number(phone: &str) -> Option<u64> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.strip_prefix("86") {
        Some(rest) if rest.len() == 11 => rest,
        _ => digits.strip_prefix("0086").unwrap_or(&digits),
    };
    if national.is_empty() || national.len() > 19 {
        return None;
    }
    national.parse().ok()
}

/// Normalised with every space removed (区划 names have none that matter).
fn compact(text: &str) -> String {
    normalize(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Administrative suffixes dropped so 广东省 = 广东 and 深圳市 = 深圳.
fn without_suffix(name: &str) -> &str {
    for suffix in [
        "特别行政区",
        "维吾尔自治区",
        "壮族自治区",
        "回族自治区",
        "自治区",
        "自治州",
        "省",
        "市",
        "地区",
    ] {
        if let Some(stem) = name.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return stem;
        }
    }
    name
}

/// The street part of an address: spaces removed, and the record's own
/// province, city and district (compacted) dropped from its start when
/// repeated there, with or without their suffix.
fn detail_key(regions: [&str; 3], detail: &str) -> String {
    let key = compact(detail).to_lowercase();
    let mut rest = key.as_str();
    for region in regions {
        for prefix in [region, without_suffix(region)] {
            if !prefix.is_empty()
                && let Some(after) = rest.strip_prefix(prefix)
            {
                rest = after;
                break;
            }
        }
    }
    rest.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_lose_their_suffix() {
        let region_key = |name: &str| without_suffix(&compact(name)).to_owned();
        assert_eq!(region_key("广东省"), "广东");
        assert_eq!(region_key("广东"), "广东");
        assert_eq!(region_key("深圳市"), "深圳");
        assert_eq!(region_key("广西壮族自治区"), "广西");
        assert_eq!(region_key("市"), "市");
    }

    #[test]
    fn detail_drops_its_own_region_prefix() {
        assert_eq!(
            detail_key(
                ["广东省", "深圳市", "南山区"],
                "广东深圳市南山区 科技园路12号"
            ),
            "科技园路12号"
        );
        assert_eq!(detail_key(["", "", ""], "科技园路12号"), "科技园路12号");
    }

    #[test]
    fn phones_become_national_numbers() {
        assert_eq!(phone_number("+8613800138000"), Some(13_800_138_000));
        assert_eq!(phone_number("13800138000"), Some(13_800_138_000));
        assert_eq!(phone_number("008613800138000"), Some(13_800_138_000));
        assert_eq!(phone_number(""), None);
    }
}
