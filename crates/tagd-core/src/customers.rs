//! Customer fields and their rules: names, gender, birthday, phones (E.164),
//! emails, address, channel identities and free-form attributes.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use phonenumber::Mode;
use phonenumber::country::Id as Region;

use crate::error::{DomainError, DomainResult};
use crate::text;

pub const MAX_PHONES: usize = 20;
pub const MAX_EMAILS: usize = 20;
pub const MAX_EXTERNAL_IDS: usize = 50;
pub const MAX_ATTRIBUTES: usize = 100;
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 100;
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1000;
pub const MAX_ADDRESS_PART_CHARS: usize = 100;
pub const MAX_ADDRESS_DETAIL_CHARS: usize = 500;
pub const MAX_COMPANY_CHARS: usize = 200;
pub const MAX_CHANNEL_CHARS: usize = 64;
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;
const MAX_EMAIL_CHARS: usize = 254;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gender {
    #[default]
    Unspecified,
    Male,
    Female,
    Other,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Unspecified => "unspecified",
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
        }
    }
}

impl FromStr for Gender {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "unspecified" => Gender::Unspecified,
            "male" => Gender::Male,
            "female" => Gender::Female,
            "other" => Gender::Other,
            other => return Err(format!("unknown gender {other:?}")),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
}

/// A customer's identity in one channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalId {
    pub channel: String,
    pub external_id: String,
}

/// Every field of a customer a caller may set. Built raw from a request, then
/// normalised field by field with [`ContactRules`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerFields {
    pub name: String,
    pub gender: Gender,
    pub birthday: Option<NaiveDate>,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub address: Address,
    pub company: String,
    pub source_channel: String,
    pub external_ids: Vec<ExternalId>,
    pub attributes: BTreeMap<String, String>,
}

/// A customer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub fields: CustomerFields,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A field of a customer that an update may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerField {
    Name,
    Gender,
    Birthday,
    Phones,
    Emails,
    Province,
    City,
    District,
    AddressDetail,
    Company,
    SourceChannel,
    ExternalIds,
    Attributes,
}

impl CustomerField {
    /// The fields an update-mask path names; `address` names all four parts.
    pub fn from_path(path: &str) -> Option<&'static [CustomerField]> {
        use CustomerField as F;
        Some(match path {
            "name" => &[F::Name],
            "gender" => &[F::Gender],
            "birthday" => &[F::Birthday],
            "phones" => &[F::Phones],
            "emails" => &[F::Emails],
            "address" => &[F::Province, F::City, F::District, F::AddressDetail],
            "address.province" => &[F::Province],
            "address.city" => &[F::City],
            "address.district" => &[F::District],
            "address.detail" => &[F::AddressDetail],
            "company" => &[F::Company],
            "source_channel" => &[F::SourceChannel],
            "external_ids" => &[F::ExternalIds],
            "attributes" => &[F::Attributes],
            _ => return None,
        })
    }
}

impl CustomerField {
    /// Every field, in the order reports list them.
    pub const ALL: [CustomerField; 13] = [
        CustomerField::Name,
        CustomerField::Gender,
        CustomerField::Birthday,
        CustomerField::Phones,
        CustomerField::Emails,
        CustomerField::Province,
        CustomerField::City,
        CustomerField::District,
        CustomerField::AddressDetail,
        CustomerField::Company,
        CustomerField::SourceChannel,
        CustomerField::ExternalIds,
        CustomerField::Attributes,
    ];

    /// The field's update-mask path, e.g. `address.province` (the inverse of
    /// [`CustomerField::from_path`] for single fields); reports and field history name
    /// fields by it.
    pub fn path(self) -> &'static str {
        use CustomerField as F;
        match self {
            F::Name => "name",
            F::Gender => "gender",
            F::Birthday => "birthday",
            F::Phones => "phones",
            F::Emails => "emails",
            F::Province => "address.province",
            F::City => "address.city",
            F::District => "address.district",
            F::AddressDetail => "address.detail",
            F::Company => "company",
            F::SourceChannel => "source_channel",
            F::ExternalIds => "external_ids",
            F::Attributes => "attributes",
        }
    }
}

/// What replaced a customer's field value, as its field history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldSource {
    /// A cleanse job; `source_ref` is its id.
    Cleanse,
    /// Two customers merged into one.
    Merge,
    /// An import job; `source_ref` is its id.
    Import,
    /// A person, through the API.
    Manual,
}

impl FieldSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldSource::Cleanse => "cleanse",
            FieldSource::Merge => "merge",
            FieldSource::Import => "import",
            FieldSource::Manual => "manual",
        }
    }
}

impl FromStr for FieldSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "cleanse" => FieldSource::Cleanse,
            "merge" => FieldSource::Merge,
            "import" => FieldSource::Import,
            "manual" => FieldSource::Manual,
            other => return Err(format!("unknown field history source {other:?}")),
        })
    }
}

/// One replaced value of one customer field, kept so the change can be traced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldHistoryEntry {
    pub id: String,
    pub customer_id: String,
    pub field: CustomerField,
    /// The value before, as [`CustomerFields::field_text`] writes it.
    pub old_value: String,
    pub new_value: String,
    pub source: FieldSource,
    /// What made the change, e.g. the job id.
    pub source_ref: String,
    pub actor: String,
    pub changed_at: NaiveDateTime,
}

impl CustomerFields {
    /// Copies the named field from `other` into `self`.
    pub fn set(&mut self, field: CustomerField, other: &CustomerFields) {
        use CustomerField as F;
        match field {
            F::Name => self.name.clone_from(&other.name),
            F::Gender => self.gender = other.gender,
            F::Birthday => self.birthday = other.birthday,
            F::Phones => self.phones.clone_from(&other.phones),
            F::Emails => self.emails.clone_from(&other.emails),
            F::Province => self.address.province.clone_from(&other.address.province),
            F::City => self.address.city.clone_from(&other.address.city),
            F::District => self.address.district.clone_from(&other.address.district),
            F::AddressDetail => self.address.detail.clone_from(&other.address.detail),
            F::Company => self.company.clone_from(&other.company),
            F::SourceChannel => self.source_channel.clone_from(&other.source_channel),
            F::ExternalIds => self.external_ids.clone_from(&other.external_ids),
            F::Attributes => self.attributes.clone_from(&other.attributes),
        }
    }

    /// One field's value as text for field history: scalars as they are (a birthday as
    /// YYYY-MM-DD, "" when unknown), lists and maps as JSON, so the old value is exact.
    pub fn field_text(&self, field: CustomerField) -> String {
        use CustomerField as F;
        // Serialising strings, maps and pairs of strings cannot fail.
        let json = |text: serde_json::Result<String>| text.unwrap_or_default();
        match field {
            F::Name => self.name.clone(),
            F::Gender => self.gender.as_str().to_owned(),
            F::Birthday => self.birthday.map(|day| day.to_string()).unwrap_or_default(),
            F::Phones => json(serde_json::to_string(&self.phones)),
            F::Emails => json(serde_json::to_string(&self.emails)),
            F::Province => self.address.province.clone(),
            F::City => self.address.city.clone(),
            F::District => self.address.district.clone(),
            F::AddressDetail => self.address.detail.clone(),
            F::Company => self.company.clone(),
            F::SourceChannel => self.source_channel.clone(),
            F::ExternalIds => json(serde_json::to_string(
                &self
                    .external_ids
                    .iter()
                    .map(|id| (&id.channel, &id.external_id))
                    .collect::<Vec<_>>(),
            )),
            F::Attributes => json(serde_json::to_string(&self.attributes)),
        }
    }

    /// The fields whose value differs from `before`, with the old and new value as text.
    pub fn changes_since(&self, before: &CustomerFields) -> Vec<(CustomerField, String, String)> {
        CustomerField::ALL
            .into_iter()
            .filter_map(|field| {
                let old = before.field_text(field);
                let new = self.field_text(field);
                (old != new).then_some((field, old, new))
            })
            .collect()
    }

    /// Merges what an upsert brings into a stored customer: non-empty scalar
    /// fields replace, lists and attributes are unioned (nothing is dropped).
    pub fn merge_from(&mut self, incoming: &CustomerFields) {
        fn replace(target: &mut String, value: &str) {
            if !value.is_empty() {
                value.clone_into(target);
            }
        }
        replace(&mut self.name, &incoming.name);
        if incoming.gender != Gender::Unspecified {
            self.gender = incoming.gender;
        }
        if incoming.birthday.is_some() {
            self.birthday = incoming.birthday;
        }
        for phone in &incoming.phones {
            push_unique(&mut self.phones, phone.clone());
        }
        for email in &incoming.emails {
            push_unique(&mut self.emails, email.clone());
        }
        replace(&mut self.address.province, &incoming.address.province);
        replace(&mut self.address.city, &incoming.address.city);
        replace(&mut self.address.district, &incoming.address.district);
        replace(&mut self.address.detail, &incoming.address.detail);
        replace(&mut self.company, &incoming.company);
        if self.source_channel.is_empty() {
            self.source_channel.clone_from(&incoming.source_channel);
        }
        for id in &incoming.external_ids {
            if !self
                .external_ids
                .iter()
                .any(|seen| seen.channel == id.channel)
            {
                self.external_ids.push(id.clone());
            }
        }
        for (key, value) in &incoming.attributes {
            self.attributes.insert(key.clone(), value.clone());
        }
    }
}

/// Rules that depend on configuration (the region of numbers without a country code).
#[derive(Debug, Clone, Copy)]
pub struct ContactRules {
    pub default_region: Region,
}

impl ContactRules {
    /// Rules for a region given as an ISO 3166 code such as "CN".
    pub fn for_region(code: &str) -> Result<Self, String> {
        let default_region = code.trim().to_uppercase().parse::<Region>().map_err(|_| {
            format!("unknown phone region {code:?}: expected an ISO 3166 code such as CN")
        })?;
        Ok(Self { default_region })
    }

    /// Normalises every field of a whole customer; the name is required.
    pub fn customer(&self, raw: CustomerFields) -> DomainResult<CustomerFields> {
        Ok(CustomerFields {
            name: text::required_name("name", &raw.name)?,
            gender: raw.gender,
            birthday: raw.birthday,
            phones: self.phones(&raw.phones)?,
            emails: emails(&raw.emails)?,
            address: address(&raw.address)?,
            company: text::optional("company", &raw.company, MAX_COMPANY_CHARS)?,
            source_channel: optional_channel("source_channel", &raw.source_channel)?,
            external_ids: external_ids(&raw.external_ids)?,
            attributes: attributes(&raw.attributes)?,
        })
    }

    /// One phone number in E.164, e.g. "138 0013 8000" → "+8613800138000".
    pub fn phone(&self, field: &str, raw: &str) -> DomainResult<String> {
        if let Some(valid) = cn_mobile_e164(raw) {
            return if valid {
                Ok(raw.to_owned())
            } else {
                Err(DomainError::invalid(
                    field,
                    format!("{raw:?} is not a valid phone number"),
                ))
            };
        }
        self.parse_phone(field, raw)
    }

    fn parse_phone(&self, field: &str, raw: &str) -> DomainResult<String> {
        let cleaned = text::normalize(raw);
        let number = phonenumber::parse(Some(self.default_region), &cleaned).map_err(|e| {
            DomainError::invalid(field, format!("{cleaned:?} is not a phone number ({e})"))
        })?;
        if !phonenumber::is_valid(&number) {
            return Err(DomainError::invalid(
                field,
                format!("{cleaned:?} is not a valid phone number"),
            ));
        }
        Ok(number.format().mode(Mode::E164).to_string())
    }

    /// Phones in E.164, duplicates dropped, order kept.
    pub fn phones(&self, raw: &[String]) -> DomainResult<Vec<String>> {
        limit("phones", raw.len(), MAX_PHONES)?;
        let mut phones = Vec::with_capacity(raw.len());
        for (index, phone) in raw.iter().enumerate() {
            push_unique(&mut phones, self.phone(&format!("phones[{index}]"), phone)?);
        }
        Ok(phones)
    }
}

/// Valid CN mobile prefixes "1dddd", filled on first use.
static CN_MOBILE_PREFIX_VALID: [OnceLock<bool>; 10_000] = [const { OnceLock::new() }; 10_000];

/// For a number already in E.164 as a CN mobile ("+861" and ten more digits), whether it
/// is valid; `None` for anything else. `phonenumber` takes some 20 µs a number and every
/// import row and customer write checks its phones (an import's rows arrive in E.164 from
/// the cleanser); the CN mobile pattern looks only at the first five of the 11 digits, so
/// the answer is asked of `phonenumber` once per prefix.
pub fn cn_mobile_e164(raw: &str) -> Option<bool> {
    let national = raw.strip_prefix("+86")?.as_bytes();
    if national.len() != 11 || national[0] != b'1' || !national.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let index = national[1..5]
        .iter()
        .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0'));
    Some(*CN_MOBILE_PREFIX_VALID[index].get_or_init(|| {
        let probe = format!("+86{}000000", String::from_utf8_lossy(&national[..5]));
        ContactRules {
            default_region: Region::CN,
        }
        .parse_phone("phone", &probe)
        .is_ok()
    }))
}

/// One email: trimmed, NFKC, domain lower-cased, shape checked.
pub fn email(field: &str, raw: &str) -> DomainResult<String> {
    let cleaned = text::normalize(raw);
    let invalid = |why: &str| {
        DomainError::invalid(field, format!("{cleaned:?} is not an email address: {why}"))
    };
    if cleaned.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid("too long"));
    }
    let (local, domain) = cleaned.rsplit_once('@').ok_or_else(|| invalid("no @"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(invalid("the part before @ must be 1 to 64 bytes"));
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c == '@' || c.is_control())
    {
        return Err(invalid("the part before @ has spaces or a second @"));
    }
    let domain = domain.to_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
        || !domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return Err(invalid("the domain is not a host name like example.com"));
    }
    Ok(format!("{local}@{domain}"))
}

/// Emails normalised, duplicates dropped, order kept.
pub fn emails(raw: &[String]) -> DomainResult<Vec<String>> {
    limit("emails", raw.len(), MAX_EMAILS)?;
    let mut emails = Vec::with_capacity(raw.len());
    for (index, value) in raw.iter().enumerate() {
        push_unique(&mut emails, email(&format!("emails[{index}]"), value)?);
    }
    Ok(emails)
}

/// A birthday given as YYYY-MM-DD ("" when unknown); from 1900 to today.
pub fn birthday(raw: &str, today: NaiveDate) -> DomainResult<Option<NaiveDate>> {
    let cleaned = text::normalize(raw);
    if cleaned.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(&cleaned, "%Y-%m-%d").map_err(|_| {
        DomainError::invalid(
            "birthday",
            format!("{cleaned:?} is not a date (YYYY-MM-DD)"),
        )
    })?;
    if date.year() < 1900 || date > today {
        return Err(DomainError::invalid(
            "birthday",
            format!("{cleaned} is outside 1900-01-01 ..= today"),
        ));
    }
    Ok(Some(date))
}

pub fn address(raw: &Address) -> DomainResult<Address> {
    Ok(Address {
        province: text::optional("address.province", &raw.province, MAX_ADDRESS_PART_CHARS)?,
        city: text::optional("address.city", &raw.city, MAX_ADDRESS_PART_CHARS)?,
        district: text::optional("address.district", &raw.district, MAX_ADDRESS_PART_CHARS)?,
        detail: text::optional("address.detail", &raw.detail, MAX_ADDRESS_DETAIL_CHARS)?,
    })
}

pub fn company(raw: &str) -> DomainResult<String> {
    text::optional("company", raw, MAX_COMPANY_CHARS)
}

/// A channel name: lower-case letters, digits, `_`, `-` and `.`, 1..=64 characters.
pub fn channel(field: &str, raw: &str) -> DomainResult<String> {
    let channel = text::normalize(raw).to_lowercase();
    if channel.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if channel.len() > MAX_CHANNEL_CHARS
        || !channel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(DomainError::invalid(
            field,
            format!(
                "{channel:?} is not a channel name (up to {MAX_CHANNEL_CHARS} of a-z 0-9 _ - .)"
            ),
        ));
    }
    Ok(channel)
}

/// A channel name, or "" when not given.
pub fn optional_channel(field: &str, raw: &str) -> DomainResult<String> {
    if raw.trim().is_empty() {
        Ok(String::new())
    } else {
        channel(field, raw)
    }
}

pub fn external_id(field: &str, raw: &ExternalId) -> DomainResult<ExternalId> {
    let channel = channel(&format!("{field}.channel"), &raw.channel)?;
    let id_field = format!("{field}.external_id");
    let external_id = text::optional(&id_field, &raw.external_id, MAX_EXTERNAL_ID_CHARS)?;
    if external_id.is_empty() {
        return Err(DomainError::invalid(id_field, "must not be empty"));
    }
    Ok(ExternalId {
        channel,
        external_id,
    })
}

/// Channel identities normalised; a channel may appear once.
pub fn external_ids(raw: &[ExternalId]) -> DomainResult<Vec<ExternalId>> {
    limit("external_ids", raw.len(), MAX_EXTERNAL_IDS)?;
    let mut ids: Vec<ExternalId> = Vec::with_capacity(raw.len());
    for (index, id) in raw.iter().enumerate() {
        let field = format!("external_ids[{index}]");
        let id = external_id(&field, id)?;
        if ids.iter().any(|seen| seen.channel == id.channel) {
            if ids.contains(&id) {
                continue;
            }
            return Err(DomainError::invalid(
                field,
                format!("channel {:?} is given twice with different ids", id.channel),
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Attributes with normalised, non-empty keys and bounded values.
pub fn attributes(raw: &BTreeMap<String, String>) -> DomainResult<BTreeMap<String, String>> {
    limit("attributes", raw.len(), MAX_ATTRIBUTES)?;
    let mut attributes = BTreeMap::new();
    for (key, value) in raw {
        let field = format!("attributes[{key:?}]");
        let clean_key = text::optional(&field, key, MAX_ATTRIBUTE_KEY_CHARS)?;
        if clean_key.is_empty() {
            return Err(DomainError::invalid(
                field,
                "an attribute name must not be empty",
            ));
        }
        let clean_value = text::free_text(&field, value, MAX_ATTRIBUTE_VALUE_CHARS)?;
        if attributes.insert(clean_key.clone(), clean_value).is_some() {
            return Err(DomainError::invalid(
                field,
                format!("{clean_key:?} is given twice"),
            ));
        }
    }
    Ok(attributes)
}

fn limit(field: &str, count: usize, max: usize) -> DomainResult<()> {
    if count > max {
        return Err(DomainError::invalid(
            field,
            format!("has {count} entries; the limit is {max}"),
        ));
    }
    Ok(())
}

fn push_unique(values: &mut Vec<String>, value: String) {
    if !values.contains(&value) {
        values.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_cn_mobiles_are_judged_as_phonenumber_judges_them() {
        let rules = ContactRules {
            default_region: Region::CN,
        };
        // Every five-digit prefix, with varied tails: valid and invalid prefixes alike.
        for prefix in 10_000..20_000_u32 {
            for tail in ["000000", "987654"] {
                let raw = format!("+86{prefix}{tail}");
                let slow = rules.parse_phone("phone", &raw);
                let fast = rules.phone("phone", &raw);
                assert_eq!(fast.is_ok(), slow.is_ok(), "{raw}: {fast:?} vs {slow:?}");
                if let (Ok(fast), Ok(slow)) = (fast, slow) {
                    assert_eq!(fast, slow);
                }
            }
        }
        // Not the fast path's shape: decided by phonenumber as before.
        assert_eq!(cn_mobile_e164("+8613800138000"), Some(true));
        assert_eq!(cn_mobile_e164("+86138001380001"), None);
        assert_eq!(cn_mobile_e164("+861380013800a"), None);
        assert_eq!(cn_mobile_e164("+12025550123"), None);
        assert!(rules.phone("phone", "+86 138 0013 8000").is_ok());
    }

    #[test]
    fn field_paths_round_trip_and_sources_parse() {
        for field in CustomerField::ALL {
            assert_eq!(CustomerField::from_path(field.path()), Some(&[field][..]));
        }
        for source in [
            FieldSource::Cleanse,
            FieldSource::Merge,
            FieldSource::Import,
            FieldSource::Manual,
        ] {
            assert_eq!(source.as_str().parse::<FieldSource>(), Ok(source));
        }
        assert!("robot".parse::<FieldSource>().is_err());
    }

    #[test]
    fn changes_list_each_changed_field_with_exact_old_values() {
        let before = CustomerFields {
            name: "张  伟".into(),
            phones: vec!["138-0013-8000".into(), "+8613900139000".into()],
            address: Address {
                province: "北京市".into(),
                ..Address::default()
            },
            ..CustomerFields::default()
        };
        let mut after = before.clone();
        after.name = "张 伟".into();
        after.phones = vec!["+8613800138000".into(), "+8613900139000".into()];
        after.address.province = "北京".into();
        assert_eq!(
            after.changes_since(&before),
            vec![
                (CustomerField::Name, "张  伟".into(), "张 伟".into()),
                (
                    CustomerField::Phones,
                    r#"["138-0013-8000","+8613900139000"]"#.into(),
                    r#"["+8613800138000","+8613900139000"]"#.into()
                ),
                (CustomerField::Province, "北京市".into(), "北京".into()),
            ]
        );
        assert!(before.changes_since(&before).is_empty());
    }

    fn cn() -> ContactRules {
        ContactRules::for_region("CN").unwrap()
    }

    #[test]
    fn phones_become_e164() {
        let rules = cn();
        assert_eq!(rules.phone("p", "138-0013-8000").unwrap(), "+8613800138000");
        assert_eq!(
            rules.phone("p", "+86 138 0013 8000").unwrap(),
            "+8613800138000"
        );
        assert_eq!(
            rules.phone("p", "１３８００１３８０００").unwrap(),
            "+8613800138000"
        );
        assert_eq!(rules.phone("p", "+1 650-253-0000").unwrap(), "+16502530000");
        let err = rules.phone("phones[0]", "12345").unwrap_err();
        assert!(err.to_string().starts_with("phones[0]: "), "{err}");
        assert!(rules.phone("p", "not a phone").is_err());
        let us = ContactRules::for_region("us").unwrap();
        assert_eq!(us.phone("p", "(650) 253-0000").unwrap(), "+16502530000");
        assert!(ContactRules::for_region("XX").is_err());
    }

    #[test]
    fn phone_lists_drop_duplicates() {
        let phones = cn()
            .phones(&[
                "13800138000".into(),
                "+8613800138000".into(),
                "13900139000".into(),
            ])
            .unwrap();
        assert_eq!(phones, vec!["+8613800138000", "+8613900139000"]);
        let err = cn()
            .phones(&["13800138000".into(), "x".into()])
            .unwrap_err();
        assert!(err.to_string().starts_with("phones[1]:"));
    }

    #[test]
    fn emails_are_trimmed_with_lowercase_domain() {
        assert_eq!(
            email("e", "  Zhang.Wei@Example.COM ").unwrap(),
            "Zhang.Wei@example.com"
        );
        assert!(email("e", "no-at-sign").is_err());
        assert!(email("e", "a@b").is_err());
        assert!(email("e", "a b@example.com").is_err());
        assert!(email("e", "@example.com").is_err());
        assert!(email("e", "a@-x.com").is_err());
        assert_eq!(
            emails(&["a@X.com".into(), "a@x.com".into()]).unwrap(),
            vec!["a@x.com"]
        );
    }

    #[test]
    fn birthdays_are_dates_in_range() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(birthday("", today).unwrap(), None);
        assert_eq!(
            birthday("1990-01-02", today).unwrap(),
            NaiveDate::from_ymd_opt(1990, 1, 2)
        );
        assert!(birthday("1990/01/02", today).is_err());
        assert!(birthday("2027-01-01", today).is_err());
        assert!(birthday("1899-12-31", today).is_err());
    }

    #[test]
    fn channels_and_external_ids() {
        assert_eq!(channel("c", " WeCom ").unwrap(), "wecom");
        assert!(channel("c", "we com").is_err());
        assert!(channel("c", "").is_err());
        let same = ExternalId {
            channel: "shop".into(),
            external_id: "1".into(),
        };
        let other = ExternalId {
            channel: "shop".into(),
            external_id: "2".into(),
        };
        assert_eq!(
            external_ids(&[same.clone(), same.clone()]).unwrap(),
            vec![same.clone()]
        );
        assert!(external_ids(&[same, other]).is_err());
    }

    #[test]
    fn attributes_are_normalised() {
        let mut raw = BTreeMap::new();
        raw.insert(" 会员等级 ".to_owned(), " 金卡 ".to_owned());
        let clean = attributes(&raw).unwrap();
        assert_eq!(clean.get("会员等级").map(String::as_str), Some("金卡"));
        raw.insert("会员等级".to_owned(), "银卡".to_owned());
        assert!(attributes(&raw).is_err());
        let mut empty_key = BTreeMap::new();
        empty_key.insert(" ".to_owned(), "x".to_owned());
        assert!(attributes(&empty_key).is_err());
    }

    #[test]
    fn whole_customer_requires_a_name() {
        let raw = CustomerFields {
            name: "  ".into(),
            ..CustomerFields::default()
        };
        assert_eq!(
            cn().customer(raw).unwrap_err(),
            DomainError::invalid("name", "must not be empty")
        );
        let raw = CustomerFields {
            name: "张 伟".into(),
            phones: vec!["13800138000".into()],
            ..CustomerFields::default()
        };
        assert_eq!(cn().customer(raw).unwrap().phones, vec!["+8613800138000"]);
    }
}
