//! One card's properties turned into an import record.

use tagd_plugin_api::{Customer, ImportRecord, RowError, Tag};

use crate::content::{Property, split_escaped, unescape};

/// A card being read, from `BEGIN:VCARD` on.
#[derive(Debug)]
pub struct Card {
    pub start_line: u64,
    record: ImportRecord,
    structured_name: Option<String>,
    has_address: bool,
    pub errors: Vec<RowError>,
}

fn is_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// `N:family;given;…` → a display name, family first for Chinese names.
fn name_from_n(value: &str) -> String {
    let parts = split_escaped(value, ';');
    let family = parts.first().map_or("", |s| s.trim());
    let given = parts.get(1).map_or("", |s| s.trim());
    match (family.is_empty(), given.is_empty()) {
        (true, _) => given.to_owned(),
        (false, true) => family.to_owned(),
        _ if is_cjk(family) || is_cjk(given) => format!("{family}{given}"),
        _ => format!("{given} {family}"),
    }
}

/// A 4.0 URI value (`tel:+1…`, `mailto:a@b`) without its scheme.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> &'a str {
    match value.get(..scheme.len()) {
        Some(head) if head.eq_ignore_ascii_case(scheme) => &value[scheme.len()..],
        _ => value,
    }
}

impl Card {
    pub fn new(start_line: u64) -> Self {
        Self {
            start_line,
            record: ImportRecord {
                position: start_line,
                customer: Some(Customer::default()),
                ..ImportRecord::default()
            },
            structured_name: None,
            has_address: false,
            errors: Vec::new(),
        }
    }

    fn customer(&mut self) -> &mut Customer {
        self.record.customer.get_or_insert_with(Customer::default)
    }

    /// Takes one property in; unknown ones are ignored.
    pub fn add(&mut self, property: &Property, tag_category: &str) {
        let value = property.value.trim();
        match property.name.as_str() {
            "FN" => self.customer().name = unescape(value).trim().to_owned(),
            "N" => self.structured_name = Some(name_from_n(value)),
            "UID" => {
                self.record.external_id = strip_scheme(&unescape(value), "urn:uuid:").to_owned()
            }
            "TEL" => {
                let phone = strip_scheme(value, "tel:").trim().to_owned();
                if !phone.is_empty() {
                    self.customer().phones.push(phone);
                }
            }
            "EMAIL" => {
                let email = strip_scheme(value, "mailto:").trim().to_owned();
                if !email.is_empty() {
                    self.customer().emails.push(email);
                }
            }
            "ORG" => {
                let parts = split_escaped(value, ';');
                let customer = self.customer();
                customer.company = parts
                    .first()
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default();
                let units: Vec<&str> = parts
                    .iter()
                    .skip(1)
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .collect();
                if !units.is_empty() {
                    customer
                        .attributes
                        .insert("department".to_owned(), units.join(" / "));
                }
            }
            "TITLE" | "ROLE" | "NOTE" | "URL" | "NICKNAME" => {
                let key = property.name.to_ascii_lowercase();
                self.customer().attributes.insert(key, unescape(value));
            }
            "BDAY" => self.customer().birthday = value.to_owned(),
            "GENDER" | "X-GENDER" => {
                self.customer().gender = split_escaped(value, ';')
                    .first()
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default();
            }
            // The first address wins; a preferred (pref/TYPE=pref) one replaces it.
            "ADR"
                if !self.has_address
                    || property.has_type("pref")
                    || property.param("PREF") == Some("1") =>
            {
                self.has_address = true;
                self.set_address(value);
            }
            "CATEGORIES" => {
                for name in split_escaped(value, ',') {
                    let name = name.trim();
                    if !name.is_empty() {
                        self.record.tags.push(Tag::new(tag_category, name));
                    }
                }
            }
            _ => {}
        }
    }

    /// `ADR:pobox;ext;street;locality;region;code;country`.
    fn set_address(&mut self, value: &str) {
        let parts = split_escaped(value, ';');
        let part = |i: usize| {
            parts
                .get(i)
                .map_or(String::new(), |s| s.trim().replace('\n', " "))
        };
        let detail = [part(2), part(1), part(0)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let customer = self.customer();
        customer.detail = detail;
        customer.city = part(3);
        customer.province = part(4);
        for (key, value) in [("postal_code", part(5)), ("country", part(6))] {
            if value.is_empty() {
                customer.attributes.remove(key);
            } else {
                customer.attributes.insert(key.to_owned(), value);
            }
        }
    }

    /// The finished record, or why the card is unusable.
    pub fn finish(mut self) -> Result<ImportRecord, RowError> {
        if let Some(name) = self.structured_name.take()
            && self.customer().name.is_empty()
        {
            self.customer().name = name;
        }
        let customer = self.customer();
        if customer.name.is_empty() && customer.phones.is_empty() && customer.emails.is_empty() {
            return Err(RowError::new(
                self.start_line,
                "",
                "card has no name (FN/N), phone (TEL) or email (EMAIL)",
                "",
            ));
        }
        Ok(self.record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str, params: &[(&str, &str)], value: &str) -> Property {
        Property {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            value: value.to_owned(),
        }
    }

    #[test]
    fn builds_a_record() {
        let mut card = Card::new(7);
        card.add(&prop("N", &[], "张;三;;;"), "");
        card.add(
            &prop("TEL", &[("TYPE", "CELL")], "tel:+86-138-0000-0001"),
            "",
        );
        card.add(&prop("TEL", &[], "010 1234"), "");
        card.add(&prop("ORG", &[], r"示例科技;销售部"), "");
        card.add(
            &prop("ADR", &[], r";;人民路 1 号;杭州;浙江;310000;中国"),
            "",
        );
        card.add(&prop("ADR", &[("TYPE", "work")], r";;ignored;x;y;;"), "");
        card.add(&prop("CATEGORIES", &[], r"VIP,老客户,a\,b"), "来源");
        card.add(&prop("UID", &[], "urn:uuid:abc"), "");
        let record = card.finish().unwrap();
        let c = record.customer.unwrap();
        assert_eq!(
            (
                c.name.as_str(),
                record.position,
                record.external_id.as_str()
            ),
            ("张三", 7, "abc")
        );
        assert_eq!(c.phones, vec!["+86-138-0000-0001", "010 1234"]);
        assert_eq!(
            (c.company.as_str(), c.attributes["department"].as_str()),
            ("示例科技", "销售部")
        );
        assert_eq!(
            (c.province.as_str(), c.city.as_str(), c.detail.as_str()),
            ("浙江", "杭州", "人民路 1 号")
        );
        assert_eq!(c.attributes["postal_code"], "310000");
        let tags: Vec<_> = record
            .tags
            .iter()
            .map(|t| (t.category.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            tags,
            vec![("来源", "VIP"), ("来源", "老客户"), ("来源", "a,b")]
        );
    }

    #[test]
    fn western_name_order_and_empty_card() {
        assert_eq!(name_from_n("Doe;Jane;;Dr.;"), "Jane Doe");
        assert!(Card::new(1).finish().is_err());
    }
}
