//! Property tests: no rule panics on any input, and cleansing is idempotent and loses
//! nothing, field by field and record by record.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use proptest::prelude::*;
use tagd_cleanse::{
    Cleaned, CleanedText, CleanseOptions, Cleanser, address_detail, city, company, district,
    gender, name, province,
};
use tagd_core::customers::{Address, CustomerFields, Gender};

/// Pieces of the messy values customers come with.
const FRAGMENTS: &[&str] = &[
    "1",
    "3",
    "8",
    "0",
    "13800138000",
    "１３８",
    "+86",
    "＋８６",
    "0086",
    "86",
    " ",
    "  ",
    "\u{3000}",
    "\t",
    "-",
    "－",
    "(",
    ")",
    ".",
    "/",
    ",",
    "，",
    ";",
    "；",
    "、",
    "|",
    "\n",
    "tel:",
    "手机：",
    "转",
    "ext",
    "x",
    "#",
    "@",
    "＠",
    "。",
    "gmail.com",
    "googlemail.com",
    "Example.COM",
    "qq.com",
    "+",
    "Zhang",
    ".Wei",
    "mailto:",
    "<",
    ">",
    "张",
    "伟",
    "•",
    "・",
    "·",
    "阿依古丽",
    "省",
    "市",
    "地区",
    "盟",
    "自治区",
    "自治州",
    "壮族",
    "维吾尔",
    "特别行政区",
    "北京",
    "广东",
    "广西",
    "内蒙古",
    "香港",
    "吉林",
    "海南",
    "延边",
    "深圳",
    "阿里",
    "锡林郭勒",
    "中国",
    "Guangdong",
    "Province",
    "Hong Kong",
    "SAR",
    "年",
    "月",
    "日",
    "号",
    "1990",
    "01",
    "02",
    "13",
    "T00:00:00",
    ":",
    "男",
    "女",
    "M",
    "f",
    "Mr.",
    "\u{200B}",
    "\u{FEFF}",
    "e\u{301}",
    "ﬁ",
    "İ",
    "Σ",
    "\u{0345}",
    "\u{00B4}",
];

fn messy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(FRAGMENTS), 0..8).prop_map(|v| v.concat()),
        1 => any::<String>(),
        1 => "\\PC{0,12}",
    ]
}

fn cleanser(fold_gmail: bool, lowercase_email_local_part: bool) -> Cleanser {
    Cleanser::new(CleanseOptions {
        fold_gmail,
        lowercase_email_local_part,
        today: NaiveDate::from_ymd_opt(2026, 5, 1).expect("a date"),
        ..CleanseOptions::default()
    })
    .expect("CN is a region")
}

/// A changed value, cleansed again, is unchanged.
fn assert_stable(raw: &str, rule: impl Fn(&str) -> Cleaned<String>) -> Result<(), TestCaseError> {
    if let Cleaned::Changed(value) = rule(raw) {
        prop_assert_eq!(
            rule(&value),
            Cleaned::Unchanged(value.clone()),
            "{:?} → {:?}",
            raw,
            value
        );
    }
    Ok(())
}

fn owned(outcome: CleanedText<'_>) -> Cleaned<String> {
    outcome.map(std::borrow::Cow::into_owned)
}

fn customer() -> impl Strategy<Value = CustomerFields> {
    (
        messy(),
        prop::collection::vec(messy(), 0..4),
        prop::collection::vec(messy(), 0..4),
        (messy(), messy(), messy(), messy()),
        messy(),
        prop::option::of(0i64..60_000),
    )
        .prop_map(
            |(name, phones, emails, (province, city, district, detail), company, days)| {
                CustomerFields {
                    name,
                    gender: Gender::Female,
                    birthday: days.and_then(|d| {
                        NaiveDate::from_ymd_opt(1900, 1, 1)?
                            .checked_add_signed(chrono::TimeDelta::days(d))
                    }),
                    phones,
                    emails,
                    address: Address {
                        province,
                        city,
                        district,
                        detail,
                    },
                    company,
                    attributes: BTreeMap::new(),
                    ..CustomerFields::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn field_rules_never_panic_and_are_idempotent(raw in messy(), context in messy()) {
        let c = cleanser(true, true);
        assert_stable(&raw, |v| owned(name(v)))?;
        assert_stable(&raw, |v| owned(company(v)))?;
        assert_stable(&raw, |v| owned(province(v)))?;
        assert_stable(&raw, |v| owned(city(v, &context)))?;
        assert_stable(&raw, |v| owned(district(v)))?;
        assert_stable(&raw, |v| owned(address_detail(v)))?;
        assert_stable(&raw, |v| owned(c.phone(v)))?;
        assert_stable(&raw, |v| owned(c.email(v)))?;
        let _ = c.phones_in(&raw);
        let _ = c.emails_in(&raw);
        let _ = c.birthday(&raw);
        if let Cleaned::Changed(g) = gender(&raw) {
            prop_assert!(!gender(g.as_str()).is_changed());
        }
        if let Cleaned::Changed(Some(date)) = c.birthday(&raw) {
            prop_assert_eq!(c.birthday(&date.to_string()), Cleaned::Unchanged(Some(date)));
        }
    }

    #[test]
    fn records_are_cleansed_idempotently(fields in customer(), fold in any::<bool>(), lower in any::<bool>()) {
        let c = cleanser(fold, lower);
        let once = c.cleanse(fields.clone());
        let twice = c.cleanse(once.fields.clone());
        prop_assert_eq!(&twice.fields, &once.fields);
        prop_assert!(twice.changes.is_empty(), "{:?}", twice.changes);
        prop_assert_eq!(twice.problems, once.problems);
    }

    #[test]
    fn records_lose_nothing(fields in customer()) {
        let c = cleanser(false, true);
        let done = c.cleanse(fields.clone());
        for (raw, kept, field) in [
            (&fields.phones, &done.fields.phones, tagd_core::customers::CustomerField::Phones),
            (&fields.emails, &done.fields.emails, tagd_core::customers::CustomerField::Emails),
        ] {
            for value in raw {
                let traced = kept.contains(value)
                    || done.changes.iter().any(|ch| ch.field == field && &ch.old == value);
                prop_assert!(traced, "{:?} vanished", value);
            }
            for change in done.changes.iter().filter(|ch| ch.field == field) {
                for new in change.new.split(", ") {
                    prop_assert!(kept.iter().any(|k| k == new), "{:?} not kept", new);
                }
            }
        }
        for problem in &done.problems {
            let f = &done.fields;
            let present = [&f.name, &f.address.province, &f.address.city, &f.address.district,
                &f.address.detail, &f.company].iter().any(|v| **v == problem.value)
                || f.phones.contains(&problem.value)
                || f.emails.contains(&problem.value)
                || f.birthday.map(|d| d.to_string()) == Some(problem.value.clone());
            prop_assert!(present, "unfixable {:?} was not kept", problem.value);
        }
    }
}
