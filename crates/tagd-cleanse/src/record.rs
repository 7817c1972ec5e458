//! Record-level cleansing of a stored customer: every field through its rule, every
//! change and problem listed, duplicates collapsed, nothing lost.

use std::borrow::Cow;
use std::mem;

use chrono::{NaiveDate, Utc};
use tagd_core::customers::{ContactRules, CustomerField, CustomerFields};

use crate::address::{address_detail, city, district, province};
use crate::birthday;
use crate::cleaned::{Cleaned, CleanedText};
use crate::email::{self, EmailPolicy};
use crate::error::CleanseError;
use crate::phone;
use crate::regions::{is_municipality, is_special_administrative_region};
use crate::several;
use crate::text::{company, name, normalized};

/// What a cleanse may do, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanseOptions {
    /// ISO 3166 region of phone numbers written without a country code, e.g. "CN".
    pub phone_region: String,
    /// Fold Gmail addresses: dots and "+tags" dropped, googlemail.com → gmail.com.
    pub fold_gmail: bool,
    /// Lower-case the part before '@' too (the domain always is); see the email rules.
    pub lowercase_email_local_part: bool,
    /// The day birthdays are checked against (no birthday after it).
    pub today: NaiveDate,
    /// The oldest a customer can be; birthdays before 1900 are refused regardless.
    pub max_age_years: u16,
}

impl Default for CleanseOptions {
    /// Region CN, no Gmail folding, whole addresses lower-cased, today in UTC, 130 years.
    fn default() -> Self {
        Self {
            phone_region: "CN".to_owned(),
            fold_gmail: false,
            lowercase_email_local_part: true,
            today: Utc::now().date_naive(),
            max_age_years: 130,
        }
    }
}

/// How a value changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Rewritten in its standard form.
    Standardised,
    /// Dropped: it standardised to `new`, which the list already holds.
    MergedDuplicate,
    /// One value holding several ("138…/139…") became several; `new` lists them,
    /// separated by ", ".
    Split,
    /// Was empty, filled from another field (a municipality city gives its province).
    FilledIn,
}

/// One change a cleanse made, with the value before it (for the customer's history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: CustomerField,
    pub old: String,
    pub new: String,
    pub kind: ChangeKind,
}

/// A value that could not be standardised; the record keeps it as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: CustomerField,
    pub value: String,
    pub reason: String,
}

/// A cleansed customer and what the cleanse did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cleansed {
    pub fields: CustomerFields,
    pub changes: Vec<FieldChange>,
    pub problems: Vec<Problem>,
}

impl Cleansed {
    /// Whether the record needs writing back.
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// The configured rules; build once, share across threads.
#[derive(Debug, Clone)]
pub struct Cleanser {
    options: CleanseOptions,
    rules: ContactRules,
    earliest_birthday: NaiveDate,
}

impl Cleanser {
    pub fn new(options: CleanseOptions) -> Result<Self, CleanseError> {
        let rules =
            ContactRules::for_region(&options.phone_region).map_err(CleanseError::PhoneRegion)?;
        let earliest_birthday = birthday::earliest(options.today, options.max_age_years);
        Ok(Self {
            options,
            rules,
            earliest_birthday,
        })
    }

    pub fn options(&self) -> &CleanseOptions {
        &self.options
    }

    /// One phone number to E.164 ("+86 138-0013-8000" → "+8613800138000"); strips
    /// "tel:", labels ("手机："), extensions ("转 123", "ext 123", "#123"); letters and
    /// invalid numbers are unfixable.
    pub fn phone<'a>(&self, raw: &'a str) -> CleanedText<'a> {
        phone::phone(&self.rules, raw)
    }

    /// Every number in a value that may hold several ("138…/139…", "138…，139…").
    pub fn phones_in<'a>(&self, raw: &'a str) -> Vec<CleanedText<'a>> {
        several::phones(raw)
            .into_iter()
            .map(|p| self.phone(p))
            .collect()
    }

    /// One email address: trimmed, NFKC, validated by tagd-core, lower-cased and
    /// Gmail-folded as the options say; "mailto:" and "Name <…>" unwrapped.
    pub fn email<'a>(&self, raw: &'a str) -> CleanedText<'a> {
        email::email(self.email_policy(), raw)
    }

    /// Every address in a value that may hold several ("a@x.com; b@y.com").
    pub fn emails_in<'a>(&self, raw: &'a str) -> Vec<CleanedText<'a>> {
        several::emails(raw)
            .into_iter()
            .map(|e| self.email(e))
            .collect()
    }

    /// A birthday from text in a common format ("1990/1/2", "19900102", "1990年1月2日"),
    /// checked against today; "" is no birthday.
    pub fn birthday(&self, raw: &str) -> Cleaned<Option<NaiveDate>> {
        let text = normalized(raw);
        if text.is_empty() {
            return if raw.is_empty() {
                Cleaned::Unchanged(None)
            } else {
                Cleaned::Changed(None)
            };
        }
        let date = match birthday::parse(&text) {
            Ok(date) => date,
            Err(reason) => return Cleaned::Unfixable(reason),
        };
        if let Err(reason) = self.check_birthday(date) {
            return Cleaned::Unfixable(reason);
        }
        // chrono's Display for a NaiveDate is the canonical YYYY-MM-DD.
        if raw.len() == 10 && date.to_string() == raw {
            Cleaned::Unchanged(Some(date))
        } else {
            Cleaned::Changed(Some(date))
        }
    }

    /// Why a stored birthday is impossible (in the future, or too long ago), if it is.
    pub fn check_birthday(&self, date: NaiveDate) -> Result<(), String> {
        birthday::check(
            date,
            self.options.today,
            self.earliest_birthday,
            self.options.max_age_years,
        )
    }

    /// Cleanses a whole customer. Unfixable values stay as they were and are listed in
    /// `problems`; cleansing the result again changes nothing.
    pub fn cleanse(&self, mut fields: CustomerFields) -> Cleansed {
        use CustomerField as F;
        let mut log = Log::default();
        log.text(F::Name, &mut fields.name, name);
        if let Some(date) = fields.birthday
            && let Err(reason) = self.check_birthday(date)
        {
            log.problem(F::Birthday, date.to_string(), reason);
        }
        log.list(F::Phones, &mut fields.phones, &PHONES, |raw| {
            self.phone(raw)
        });
        log.list(F::Emails, &mut fields.emails, &EMAILS, |raw| {
            self.email(raw)
        });
        let address = &mut fields.address;
        log.text(F::Province, &mut address.province, province);
        let province_now = mem::take(&mut address.province);
        log.text(F::City, &mut address.city, |raw| city(raw, &province_now));
        address.province = province_now;
        if address.province.is_empty()
            && (is_municipality(&address.city) || is_special_administrative_region(&address.city))
        {
            address.province.clone_from(&address.city);
            log.change(
                F::Province,
                String::new(),
                address.city.clone(),
                ChangeKind::FilledIn,
            );
        }
        log.text(F::District, &mut address.district, district);
        log.text(F::AddressDetail, &mut address.detail, address_detail);
        log.text(F::Company, &mut fields.company, company);
        Cleansed {
            fields,
            changes: log.changes,
            problems: log.problems,
        }
    }

    fn email_policy(&self) -> EmailPolicy {
        EmailPolicy {
            lowercase_local_part: self.options.lowercase_email_local_part,
            fold_gmail: self.options.fold_gmail,
        }
    }
}

/// Changes and problems as a record is cleansed.
#[derive(Default)]
struct Log {
    changes: Vec<FieldChange>,
    problems: Vec<Problem>,
}

impl Log {
    fn change(&mut self, field: CustomerField, old: String, new: String, kind: ChangeKind) {
        self.changes.push(FieldChange {
            field,
            old,
            new,
            kind,
        });
    }

    fn problem(&mut self, field: CustomerField, value: String, reason: String) {
        self.problems.push(Problem {
            field,
            value,
            reason,
        });
    }

    /// A text field through its rule, replaced only when the rule changed it.
    fn text(
        &mut self,
        field: CustomerField,
        value: &mut String,
        rule: impl for<'a> Fn(&'a str) -> CleanedText<'a>,
    ) {
        let new = match rule(value) {
            Cleaned::Unchanged(_) => return,
            Cleaned::Changed(new) => new.into_owned(),
            Cleaned::Unfixable(reason) => {
                self.problem(field, value.clone(), reason);
                return;
            }
        };
        let old = mem::replace(value, new.clone());
        self.change(field, old, new, ChangeKind::Standardised);
    }

    /// A list field (phones, emails): each value through its rule, values holding several
    /// split, duplicates after standardising dropped, order kept.
    fn list(
        &mut self,
        field: CustomerField,
        values: &mut Vec<String>,
        kind: &ListKind,
        rule: impl for<'a> Fn(&'a str) -> CleanedText<'a>,
    ) {
        if values.is_empty() {
            return;
        }
        let mut kept: Vec<String> = Vec::with_capacity(values.len());
        for raw in values.drain(..) {
            let mut whole = None;
            if (kind.may_hold_several)(&raw) {
                // A valid whole ("a/b@x.com") stays whole, unless a whole would swallow
                // its neighbours (phonenumber reads "138…/139…" as one number).
                let outcome = (!kind.split_first).then(|| rule(&raw).map(Cow::into_owned));
                if outcome.as_ref().is_none_or(Cleaned::is_unfixable) {
                    let parts = (kind.split)(&raw);
                    if parts.len() > 1 {
                        self.split(field, &mut kept, &raw, &parts, &rule);
                        continue;
                    }
                }
                whole = outcome;
            }
            match whole.unwrap_or_else(|| rule(&raw).map(Cow::into_owned)) {
                Cleaned::Unchanged(_) => push_or_merge(self, field, &mut kept, raw, None),
                Cleaned::Changed(new) => push_or_merge(self, field, &mut kept, raw, Some(new)),
                Cleaned::Unfixable(reason) => self.keep_unfixable(field, &mut kept, raw, reason),
            }
        }
        *values = kept;
    }

    /// A value holding several: replaced by its parts when every part is valid, else
    /// kept whole and reported.
    fn split(
        &mut self,
        field: CustomerField,
        kept: &mut Vec<String>,
        raw: &str,
        parts: &[&str],
        rule: &impl for<'a> Fn(&'a str) -> CleanedText<'a>,
    ) {
        let cleaned: Result<Vec<String>, String> = parts
            .iter()
            .map(|part| rule(part).into_result().map(Cow::into_owned))
            .collect();
        match cleaned {
            Ok(parts) => {
                let new = parts.join(", ");
                for part in parts {
                    if !kept.contains(&part) {
                        kept.push(part);
                    }
                }
                self.change(field, raw.to_owned(), new, ChangeKind::Split);
            }
            Err(reason) => self.keep_unfixable(field, kept, raw.to_owned(), reason),
        }
    }

    /// An unfixable value stays in the list and is reported, once: a second copy of it
    /// is a duplicate like any other.
    fn keep_unfixable(
        &mut self,
        field: CustomerField,
        kept: &mut Vec<String>,
        raw: String,
        reason: String,
    ) {
        if !kept.contains(&raw) {
            self.problem(field, raw.clone(), reason);
        }
        push_or_merge(self, field, kept, raw, None);
    }
}

/// How a list field's values may hold several.
struct ListKind {
    may_hold_several: fn(&str) -> bool,
    split: fn(&str) -> Vec<&str>,
    /// Split before trying the whole value.
    split_first: bool,
}

const PHONES: ListKind = ListKind {
    may_hold_several: several::may_hold_phones,
    split: several::phones,
    split_first: true,
};

const EMAILS: ListKind = ListKind {
    may_hold_several: several::may_hold_emails,
    split: several::emails,
    split_first: false,
};

/// Keeps `new` (or `raw` when it needs no change), unless the list already holds it.
fn push_or_merge(
    log: &mut Log,
    field: CustomerField,
    kept: &mut Vec<String>,
    raw: String,
    new: Option<String>,
) {
    let value = new.as_ref().unwrap_or(&raw);
    if kept.contains(value) {
        let value = value.clone();
        log.change(field, raw, value, ChangeKind::MergedDuplicate);
        return;
    }
    match new {
        Some(new) => {
            kept.push(new.clone());
            log.change(field, raw, new, ChangeKind::Standardised);
        }
        None => kept.push(raw),
    }
}

#[cfg(test)]
mod tests {
    use tagd_core::customers::{Address, Gender};

    use super::*;

    fn cleanser() -> Cleanser {
        Cleanser::new(CleanseOptions {
            today: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
            ..CleanseOptions::default()
        })
        .unwrap()
    }

    fn messy() -> CustomerFields {
        CustomerFields {
            name: "  张  伟 ".into(),
            gender: Gender::Male,
            birthday: NaiveDate::from_ymd_opt(1990, 1, 2),
            phones: vec![
                "138-0013-8000".into(),
                "+86 138 0013 8000".into(),
                "13900139000/13700137000".into(),
                "12345".into(),
            ],
            emails: vec![
                " Zhang.Wei@Example.COM".into(),
                "zhang.wei@example.com".into(),
                "not-an-email".into(),
            ],
            address: Address {
                province: "广东省".into(),
                city: "广东省深圳市".into(),
                district: " 南山 区".into(),
                detail: "科技园  路１号".into(),
            },
            company: "腾讯 ".into(),
            ..CustomerFields::default()
        }
    }

    #[test]
    fn a_messy_record_is_cleansed() {
        let done = cleanser().cleanse(messy());
        let f = &done.fields;
        assert_eq!(f.name, "张 伟");
        assert_eq!(
            f.phones,
            vec![
                "+8613800138000",
                "+8613900139000",
                "+8613700137000",
                "12345"
            ]
        );
        assert_eq!(f.emails, vec!["zhang.wei@example.com", "not-an-email"]);
        assert_eq!(f.address.province, "广东");
        assert_eq!(f.address.city, "深圳");
        assert_eq!(f.address.district, "南山区");
        assert_eq!(f.address.detail, "科技园 路1号");
        assert_eq!(f.company, "腾讯");
        assert_eq!(f.gender, Gender::Male);

        let merged: Vec<_> = done
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::MergedDuplicate)
            .map(|c| (c.field, c.old.as_str(), c.new.as_str()))
            .collect();
        assert_eq!(
            merged,
            vec![
                (CustomerField::Phones, "+86 138 0013 8000", "+8613800138000"),
                (
                    CustomerField::Emails,
                    "zhang.wei@example.com",
                    "zhang.wei@example.com"
                ),
            ]
        );
        assert!(done.changes.contains(&FieldChange {
            field: CustomerField::Phones,
            old: "13900139000/13700137000".into(),
            new: "+8613900139000, +8613700137000".into(),
            kind: ChangeKind::Split,
        }));
        assert!(done.changes.contains(&FieldChange {
            field: CustomerField::City,
            old: "广东省深圳市".into(),
            new: "深圳".into(),
            kind: ChangeKind::Standardised,
        }));
        let problems: Vec<_> = done
            .problems
            .iter()
            .map(|p| (p.field, p.value.as_str()))
            .collect();
        assert_eq!(
            problems,
            vec![
                (CustomerField::Phones, "12345"),
                (CustomerField::Emails, "not-an-email"),
            ]
        );
    }

    #[test]
    fn cleansing_twice_changes_nothing() {
        let cleanser = cleanser();
        let once = cleanser.cleanse(messy());
        let twice = cleanser.cleanse(once.fields.clone());
        assert_eq!(twice.fields, once.fields);
        assert!(twice.changes.is_empty(), "{:?}", twice.changes);
        assert_eq!(twice.problems, once.problems);
    }

    #[test]
    fn a_clean_record_is_untouched() {
        let clean = cleanser().cleanse(messy()).fields;
        let done = cleanser().cleanse(clean.clone());
        assert!(!done.is_changed());
        assert_eq!(done.fields, clean);
    }

    #[test]
    fn unfixable_values_are_kept_as_they_were() {
        let raw = CustomerFields {
            name: "   ".into(),
            phones: vec!["call me".into(), "13800138000/xyz".into()],
            address: Address {
                province: " California ".into(),
                ..Address::default()
            },
            ..CustomerFields::default()
        };
        let done = cleanser().cleanse(raw.clone());
        assert_eq!(done.fields, raw);
        assert!(done.changes.is_empty());
        let fields: Vec<_> = done.problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            vec![
                CustomerField::Name,
                CustomerField::Phones,
                CustomerField::Phones,
                CustomerField::Province
            ]
        );
    }

    #[test]
    fn a_municipality_city_fills_an_empty_province() {
        let raw = CustomerFields {
            name: "李雷".into(),
            address: Address {
                city: "上海市".into(),
                ..Address::default()
            },
            ..CustomerFields::default()
        };
        let done = cleanser().cleanse(raw);
        assert_eq!(done.fields.address.province, "上海");
        assert_eq!(done.fields.address.city, "上海");
        assert!(done.changes.contains(&FieldChange {
            field: CustomerField::Province,
            old: String::new(),
            new: "上海".into(),
            kind: ChangeKind::FilledIn,
        }));
    }

    #[test]
    fn impossible_birthdays_are_reported_not_dropped() {
        let raw = CustomerFields {
            name: "李雷".into(),
            birthday: NaiveDate::from_ymd_opt(2030, 1, 1),
            ..CustomerFields::default()
        };
        let done = cleanser().cleanse(raw.clone());
        assert_eq!(done.fields, raw);
        assert_eq!(
            done.problems,
            vec![Problem {
                field: CustomerField::Birthday,
                value: "2030-01-01".into(),
                reason: "2030-01-01 is in the future".into(),
            }]
        );
    }

    #[test]
    fn email_options_apply() {
        let folding = Cleanser::new(CleanseOptions {
            fold_gmail: true,
            ..CleanseOptions::default()
        })
        .unwrap();
        let raw = CustomerFields {
            name: "x".into(),
            emails: vec![
                "Zhang.Wei+shop@gmail.com".into(),
                "zhangwei@googlemail.com".into(),
            ],
            ..CustomerFields::default()
        };
        assert_eq!(
            folding.cleanse(raw.clone()).fields.emails,
            vec!["zhangwei@gmail.com"]
        );
        let keeping_case = Cleanser::new(CleanseOptions {
            lowercase_email_local_part: false,
            ..CleanseOptions::default()
        })
        .unwrap();
        assert_eq!(
            keeping_case.cleanse(raw).fields.emails,
            vec!["Zhang.Wei+shop@gmail.com", "zhangwei@googlemail.com"]
        );
    }

    #[test]
    fn field_level_helpers() {
        let c = cleanser();
        assert_eq!(
            c.birthday("1990年1月2日"),
            Cleaned::Changed(NaiveDate::from_ymd_opt(1990, 1, 2))
        );
        assert_eq!(
            c.birthday("1990-01-02"),
            Cleaned::Unchanged(NaiveDate::from_ymd_opt(1990, 1, 2))
        );
        assert_eq!(c.birthday(""), Cleaned::Unchanged(None));
        assert_eq!(c.birthday(" "), Cleaned::Changed(None));
        assert_eq!(
            c.birthday("2027-01-01").reason(),
            Some("2027-01-01 is in the future")
        );
        let phones: Vec<_> = c
            .phones_in("13800138000，139 0013 9000")
            .into_iter()
            .map(|p| p.into_value().unwrap().into_owned())
            .collect();
        assert_eq!(phones, vec!["+8613800138000", "+8613900139000"]);
        assert_eq!(c.emails_in("a@x.com; b@y.com").len(), 2);
    }

    #[test]
    fn a_bad_region_is_an_error() {
        let err = Cleanser::new(CleanseOptions {
            phone_region: "XX".into(),
            ..CleanseOptions::default()
        })
        .unwrap_err();
        assert!(matches!(err, CleanseError::PhoneRegion(_)));
    }
}
