//! Field comparators: each turns two values into one [`Comparison`]
//! outcome. Every comparator is symmetric and treats empty as missing.

use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::record::Gender;

/// The outcome of comparing one field of two records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    /// Empty on at least one side: no evidence either way.
    Missing,
    Exact,
    /// Names with the same pinyin: a same-sounding character, a pinyin
    /// spelling, or surname and given name swapped.
    SameSound,
    /// Names that sound alike under the input methods' fuzzy-pinyin rules
    /// (z/zh, n/l, an/ang …): a typing slip.
    FuzzySound,
    /// Similar text, with its similarity in 0..=1.
    Similar(f32),
    /// Phones or birthdays with one digit replaced or two adjacent digits swapped.
    OneDigitOff,
    DayMonthSwapped,
    /// One side has no city; the provinces agree.
    SameProvince,
    Different,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Missing => f.write_str("missing on one side, no evidence"),
            Comparison::Exact => f.write_str("exact match"),
            Comparison::SameSound => f.write_str(
                "same pinyin (same-sounding character, pinyin spelling or swapped order)",
            ),
            Comparison::FuzzySound => f.write_str("same fuzzy pinyin (z/zh, n/l, an/ang … slip)"),
            Comparison::Similar(similarity) => write!(f, "similar ({similarity:.2})"),
            Comparison::OneDigitOff => f.write_str("one digit differs or two digits swapped"),
            Comparison::DayMonthSwapped => f.write_str("day and month swapped"),
            Comparison::SameProvince => f.write_str("same province, no city on one side"),
            Comparison::Different => f.write_str("different"),
        }
    }
}

/// Orders two strings so a comparison sees them the same way round
/// whichever record comes first.
fn ordered<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b { (a, b) } else { (b, a) }
}

/// A name's three keys: exact, pinyin, fuzzy pinyin.
#[derive(Debug, Clone, Copy)]
pub struct NameKeys<'a> {
    pub exact: &'a str,
    pub pinyin: &'a str,
    pub fuzzy: &'a str,
}

/// Names: exact key, then pinyin key (same sound, pinyin, swapped order),
/// then fuzzy pinyin, then Jaro-Winkler of the pinyin keys.
pub fn name(a: NameKeys<'_>, b: NameKeys<'_>, similar_at: f64) -> Comparison {
    name_by_keys(a, b).unwrap_or_else(|| name_by_similarity(a, b, similar_at))
}

/// The outcomes decided by key equality alone; `None` when only the string
/// similarity can tell Similar from Different.
pub fn name_by_keys(a: NameKeys<'_>, b: NameKeys<'_>) -> Option<Comparison> {
    if a.exact.is_empty() || b.exact.is_empty() {
        return Some(Comparison::Missing);
    }
    if a.exact == b.exact {
        return Some(Comparison::Exact);
    }
    if a.pinyin.is_empty() || b.pinyin.is_empty() {
        return Some(Comparison::Different);
    }
    if a.pinyin == b.pinyin {
        return Some(Comparison::SameSound);
    }
    if a.fuzzy == b.fuzzy {
        return Some(Comparison::FuzzySound);
    }
    None
}

/// Jaro-Winkler of the pinyin keys: Similar at or above `similar_at`.
pub fn name_by_similarity(a: NameKeys<'_>, b: NameKeys<'_>, similar_at: f64) -> Comparison {
    let (x, y) = ordered(a.pinyin, b.pinyin);
    let similarity = strsim::jaro_winkler(x, y);
    if similarity >= similar_at {
        Comparison::Similar(similarity as f32)
    } else {
        Comparison::Different
    }
}

/// Phones: any shared number, else any pair one digit off.
pub fn phones(a: &[u64], b: &[u64]) -> Comparison {
    if a.is_empty() || b.is_empty() {
        return Comparison::Missing;
    }
    if a.iter().any(|x| b.contains(x)) {
        return Comparison::Exact;
    }
    if a.iter().any(|&x| b.iter().any(|&y| one_digit_off(x, y))) {
        return Comparison::OneDigitOff;
    }
    Comparison::Different
}

pub fn emails(a: &[Box<str>], b: &[Box<str>]) -> Comparison {
    if a.is_empty() || b.is_empty() {
        return Comparison::Missing;
    }
    if a.iter().any(|x| b.contains(x)) {
        Comparison::Exact
    } else {
        Comparison::Different
    }
}

pub fn birthdays(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Comparison {
    let (Some(a), Some(b)) = (a, b) else {
        return Comparison::Missing;
    };
    if a == b {
        return Comparison::Exact;
    }
    if a.year() == b.year() && a.month() == b.day() && a.day() == b.month() {
        return Comparison::DayMonthSwapped;
    }
    let compact = |d: NaiveDate| {
        u64::try_from(d.year()).unwrap_or(0) * 10_000 + u64::from(d.month() * 100 + d.day())
    };
    if one_digit_off(compact(a), compact(b)) {
        Comparison::OneDigitOff
    } else {
        Comparison::Different
    }
}

pub fn genders(a: Gender, b: Gender) -> Comparison {
    match (a, b) {
        (Gender::Unknown, _) | (_, Gender::Unknown) => Comparison::Missing,
        (x, y) if x == y => Comparison::Exact,
        _ => Comparison::Different,
    }
}

/// City keys (suffix-free) when both have one, else provinces.
pub fn cities(a_province: &str, a_city: &str, b_province: &str, b_city: &str) -> Comparison {
    if !a_city.is_empty() && !b_city.is_empty() {
        return if a_city == b_city {
            Comparison::Exact
        } else {
            Comparison::Different
        };
    }
    if a_province.is_empty() || b_province.is_empty() {
        return Comparison::Missing;
    }
    // A municipality is its own province: 北京 the city matches 北京 the province.
    let a_region = if a_city.is_empty() {
        a_province
    } else {
        a_city
    };
    let b_region = if b_city.is_empty() {
        b_province
    } else {
        b_city
    };
    if a_province == b_province || a_region == b_region {
        Comparison::SameProvince
    } else {
        Comparison::Different
    }
}

/// Street addresses: equal, or one ending with the other (the other spelled
/// the region out first), else normalised Levenshtein. Addresses in
/// different cities are different without computing the distance.
pub fn addresses(a: &str, b: &str, city: Comparison, similar_at: f64) -> Comparison {
    if a.is_empty() || b.is_empty() {
        return Comparison::Missing;
    }
    let (x, y) = ordered(a, b);
    if x == y {
        return Comparison::Exact;
    }
    let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
    if short.chars().count() >= 6 && long.ends_with(short) {
        return Comparison::Exact;
    }
    if city == Comparison::Different {
        return Comparison::Different;
    }
    let (a_len, b_len) = (x.chars().count(), y.chars().count());
    if (a_len.min(b_len) as f64) < similar_at * a_len.max(b_len) as f64 {
        return Comparison::Different;
    }
    let similarity = strsim::normalized_levenshtein(x, y);
    if similarity >= similar_at {
        Comparison::Similar(similarity as f32)
    } else {
        Comparison::Different
    }
}

/// True when the decimal digits of `a` and `b` have the same length and
/// differ in one place, or in two adjacent places holding swapped digits.
pub fn one_digit_off(a: u64, b: u64) -> bool {
    if a == b {
        return false;
    }
    let (mut x, mut y) = (a, b);
    let mut differing = [(0u64, 0u64); 2];
    let mut count = 0;
    let mut position = 0;
    let mut first_at = 0;
    while x > 0 || y > 0 {
        if x == 0 || y == 0 {
            return false;
        }
        let (dx, dy) = (x % 10, y % 10);
        if dx != dy {
            if count == 2 {
                return false;
            }
            if count == 0 {
                first_at = position;
            } else if position != first_at + 1 {
                return false;
            }
            differing[count] = (dx, dy);
            count += 1;
        }
        x /= 10;
        y /= 10;
        position += 1;
    }
    count == 1 || (differing[0].0 == differing[1].1 && differing[0].1 == differing[1].0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{exact_key, fuzzy_key, pinyin_key};

    fn names(a: &str, b: &str) -> Comparison {
        let keys = |n: &str| (exact_key(n), pinyin_key(n), fuzzy_key(&pinyin_key(n)));
        let (a, b) = (keys(a), keys(b));
        fn view(k: &(String, String, String)) -> NameKeys<'_> {
            NameKeys {
                exact: &k.0,
                pinyin: &k.1,
                fuzzy: &k.2,
            }
        }
        name(view(&a), view(&b), 0.9)
    }

    #[test]
    fn name_outcomes() {
        assert_eq!(names("张伟", "张 伟"), Comparison::Exact);
        assert_eq!(names("张伟", "Zhang Wei"), Comparison::SameSound);
        assert_eq!(names("张伟", "Wei Zhang"), Comparison::SameSound);
        assert_eq!(names("Zhang Wei", "Wei Zhang"), Comparison::SameSound);
        assert_eq!(names("张伟", "张玮"), Comparison::SameSound);
        assert_eq!(names("张敏华", "张明华"), Comparison::FuzzySound);
        assert_eq!(names("李超", "李曹"), Comparison::FuzzySound);
        assert_eq!(names("李超", "Cao Li"), Comparison::FuzzySound);
        assert_ne!(names("李婷", "李明"), Comparison::FuzzySound);
        assert!(matches!(
            names("张伟明", "张伟强"),
            Comparison::Different | Comparison::Similar(_)
        ));
        assert_eq!(names("王伟", "黄伟"), Comparison::Different);
        assert_eq!(names("张伟明", "张伟铭"), Comparison::SameSound);
        assert_eq!(names("张伟", ""), Comparison::Missing);
        assert_eq!(names("张伟", "   "), Comparison::Missing);
        assert_eq!(names("王芳", "李娜"), Comparison::Different);
    }

    #[test]
    fn phone_outcomes() {
        assert_eq!(
            phones(&[13_800_138_000], &[1, 13_800_138_000]),
            Comparison::Exact
        );
        assert_eq!(
            phones(&[13_800_138_000], &[13_800_138_001]),
            Comparison::OneDigitOff
        );
        assert_eq!(
            phones(&[13_800_138_000], &[13_800_183_000]),
            Comparison::OneDigitOff
        );
        assert_eq!(
            phones(&[13_800_138_000], &[13_900_138_001]),
            Comparison::Different
        );
        assert_eq!(phones(&[], &[13_800_138_000]), Comparison::Missing);
    }

    #[test]
    fn one_digit_off_rules() {
        assert!(one_digit_off(12_345, 12_346));
        assert!(one_digit_off(12_345, 21_345));
        assert!(!one_digit_off(12_345, 12_345));
        assert!(!one_digit_off(12_345, 1_234));
        assert!(!one_digit_off(12_345, 13_254));
        assert!(!one_digit_off(12_345, 52_341));
    }

    #[test]
    fn birthday_outcomes() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(birthdays(d(1985, 3, 7), d(1985, 3, 7)), Comparison::Exact);
        assert_eq!(
            birthdays(d(1985, 3, 7), d(1985, 7, 3)),
            Comparison::DayMonthSwapped
        );
        assert_eq!(
            birthdays(d(1985, 3, 7), d(1985, 3, 8)),
            Comparison::OneDigitOff
        );
        assert_eq!(
            birthdays(d(1985, 3, 7), d(1958, 3, 7)),
            Comparison::OneDigitOff
        );
        assert_eq!(
            birthdays(d(1985, 3, 7), d(1990, 11, 21)),
            Comparison::Different
        );
        assert_eq!(birthdays(None, d(1985, 3, 7)), Comparison::Missing);
    }

    #[test]
    fn email_gender_city_outcomes() {
        let a: Vec<Box<str>> = vec!["zw@qq.com".into()];
        let b: Vec<Box<str>> = vec!["x@163.com".into(), "zw@qq.com".into()];
        assert_eq!(emails(&a, &b), Comparison::Exact);
        assert_eq!(emails(&a, &b[..1]), Comparison::Different);
        assert_eq!(emails(&a, &[]), Comparison::Missing);
        assert_eq!(genders(Gender::Male, Gender::Male), Comparison::Exact);
        assert_eq!(genders(Gender::Male, Gender::Female), Comparison::Different);
        assert_eq!(
            genders(Gender::Unknown, Gender::Female),
            Comparison::Missing
        );
        assert_eq!(cities("广东", "深圳", "广东", "深圳"), Comparison::Exact);
        assert_eq!(
            cities("广东", "深圳", "广东", "广州"),
            Comparison::Different
        );
        assert_eq!(cities("广东", "", "广东", "广州"), Comparison::SameProvince);
        assert_eq!(cities("", "北京", "北京", ""), Comparison::Missing);
        assert_eq!(cities("北京", "", "北京", "北京"), Comparison::SameProvince);
    }

    #[test]
    fn address_outcomes() {
        let same_city = Comparison::Exact;
        let a = "科技园路12号阳光花园3栋2单元501室";
        assert_eq!(addresses(a, a, same_city, 0.8), Comparison::Exact);
        let spelled_out = "广东深圳南山区科技园路12号阳光花园3栋2单元501室";
        assert_eq!(
            addresses(a, spelled_out, Comparison::Missing, 0.8),
            Comparison::Exact
        );
        let typo = "科技园路12号阳光花园3栋2单元502室";
        assert!(matches!(
            addresses(a, typo, same_city, 0.8),
            Comparison::Similar(_)
        ));
        assert_eq!(
            addresses(a, "人民路8号", same_city, 0.8),
            Comparison::Different
        );
        assert_eq!(
            addresses(a, typo, Comparison::Different, 0.8),
            Comparison::Different
        );
        assert_eq!(addresses(a, "", same_city, 0.8), Comparison::Missing);
    }
}
