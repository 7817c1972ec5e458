//! From a plugin's raw record to a cleansed [`ImportEntry`], or the reason the
//! row is rejected: phones to E.164, emails, NFKC names, gender words,
//! birthdays in common formats, provinces and cities (see `tagd-cleanse`),
//! then the same checks every customer write passes.

use tagd_cleanse::{Cleaned, Cleanser};
use tagd_core::customers::{Address, ContactRules, CustomerFields, ExternalId, Gender};
use tagd_core::interactions::{self, RawInteraction};
use tagd_core::jobs::RejectedRow;
use tagd_core::purchases::{self, RawPurchase, RawPurchaseItem};
use tagd_core::text;
use tagd_plugin_api::{ImportRecord, RowError};
use tagd_store::{ImportEntry, ImportTag};

/// The category of tags a source gives without one (a plain "tags" column).
pub const DEFAULT_TAG_CATEGORY: &str = "标签";

/// Everything a conversion needs, built once per job.
pub(crate) struct RecordRules<'a> {
    pub cleanser: &'a Cleanser,
    pub contact: &'a ContactRules,
    /// The plugin's channel: the identity's channel and the customers' source.
    pub channel: &'a str,
}

pub(crate) fn rejected_from_plugin(error: RowError) -> RejectedRow {
    RejectedRow::new(error.row, error.field, error.reason, &error.raw_value)
}

fn rejected_at(row: u64, error: &tagd_core::DomainError, raw: &str) -> RejectedRow {
    let (field, reason) = error.parts();
    RejectedRow::new(row, field, reason, raw)
}

fn raw_purchase(raw: &tagd_plugin_api::Purchase) -> RawPurchase<'_> {
    RawPurchase {
        order_id: &raw.order_id,
        time: &raw.time,
        currency: &raw.currency,
        total: &raw.total,
        status: &raw.status,
        items: raw
            .items
            .iter()
            .map(|item| RawPurchaseItem {
                product_id: &item.product_id,
                name: &item.name,
                category: &item.category,
                quantity: &item.quantity,
                unit_price: &item.unit_price,
            })
            .collect(),
    }
}

fn raw_interaction(raw: &tagd_plugin_api::Interaction) -> RawInteraction<'_> {
    RawInteraction {
        time: &raw.time,
        channel: &raw.channel,
        direction: &raw.direction,
        staff: &raw.staff,
        summary: &raw.summary,
        outcome: &raw.outcome,
        next_follow_up: &raw.next_follow_up,
    }
}

fn text_or_raw(cleaned: Cleaned<std::borrow::Cow<'_, str>>, raw: &str) -> String {
    match cleaned {
        Cleaned::Unchanged(value) | Cleaned::Changed(value) => value.into_owned(),
        // Places the tables do not know (abroad, new districts) are kept as written, normalised.
        Cleaned::Unfixable(_) => text::normalize(raw),
    }
}

impl RecordRules<'_> {
    pub(crate) fn entry(&self, record: ImportRecord) -> Result<ImportEntry, RejectedRow> {
        let row = record.position;
        let reject =
            |field: &str, reason: String, raw: &str| RejectedRow::new(row, field, reason, raw);
        let raw = record.customer.unwrap_or_default();
        let mut fields = CustomerFields {
            source_channel: self.channel.to_owned(),
            ..CustomerFields::default()
        };
        if !raw.name.trim().is_empty() {
            fields.name = tagd_cleanse::name(&raw.name)
                .into_result()
                .map_err(|reason| reject("name", reason, &raw.name))?
                .into_owned();
        }
        if !raw.gender.trim().is_empty() {
            fields.gender = tagd_cleanse::gender(&raw.gender)
                .into_result()
                .map_err(|reason| reject("gender", reason, &raw.gender))?;
        } else {
            fields.gender = Gender::Unspecified;
        }
        if !raw.birthday.trim().is_empty() {
            fields.birthday = self
                .cleanser
                .birthday(&raw.birthday)
                .into_result()
                .map_err(|reason| reject("birthday", reason, &raw.birthday))?;
        }
        for (index, value) in raw.phones.iter().enumerate() {
            for phone in self.cleanser.phones_in(value) {
                let phone = phone
                    .into_result()
                    .map_err(|reason| reject(&format!("phones[{index}]"), reason, value))?;
                if !fields.phones.iter().any(|known| *known == *phone) {
                    fields.phones.push(phone.into_owned());
                }
            }
        }
        for (index, value) in raw.emails.iter().enumerate() {
            for email in self.cleanser.emails_in(value) {
                let email = email
                    .into_result()
                    .map_err(|reason| reject(&format!("emails[{index}]"), reason, value))?;
                if !fields.emails.iter().any(|known| *known == *email) {
                    fields.emails.push(email.into_owned());
                }
            }
        }
        let province = text_or_raw(tagd_cleanse::province(&raw.province), &raw.province);
        fields.address = Address {
            city: text_or_raw(tagd_cleanse::city(&raw.city, &province), &raw.city),
            province,
            district: text_or_raw(tagd_cleanse::district(&raw.district), &raw.district),
            detail: text_or_raw(tagd_cleanse::address_detail(&raw.detail), &raw.detail),
        };
        fields.company = text_or_raw(tagd_cleanse::company(&raw.company), &raw.company);
        fields.attributes = raw.attributes.into_iter().collect();
        for other in record.other_ids {
            fields.external_ids.push(ExternalId {
                channel: other.channel,
                external_id: other.id,
            });
        }
        let key = ExternalId {
            channel: self.channel.to_owned(),
            external_id: self.identity(&record.external_id, &fields).ok_or_else(|| {
                reject(
                    "external_id",
                    "the row has no customer id, phone, email or name to know the customer by"
                        .to_owned(),
                    "",
                )
            })?,
        };
        let fields = self.contact.customer(fields).map_err(|error| {
            let (field, reason) = error.parts();
            reject(field, reason.to_owned(), "")
        })?;
        let mut tags = Vec::with_capacity(record.tags.len());
        for (index, tag) in record.tags.into_iter().enumerate() {
            if tag.name.trim().is_empty() {
                return Err(reject(
                    &format!("tags[{index}]"),
                    "a tag needs a name".to_owned(),
                    &format!("{}/{}", tag.category, tag.name),
                ));
            }
            let category = if tag.category.trim().is_empty() {
                DEFAULT_TAG_CATEGORY.to_owned()
            } else {
                tag.category
            };
            tags.push(ImportTag {
                category,
                name: tag.name,
                value: tag.value,
            });
        }
        let mut purchases = Vec::with_capacity(record.purchases.len());
        for (index, raw) in record.purchases.iter().enumerate() {
            let field = format!("purchases[{index}]");
            let parsed = purchases::purchase(&field, self.channel, &raw_purchase(raw))
                .map_err(|error| rejected_at(row, &error, raw.order_id.as_str()))?;
            purchases.push(parsed);
        }
        let mut interactions = Vec::with_capacity(record.interactions.len());
        for (index, raw) in record.interactions.iter().enumerate() {
            let field = format!("interactions[{index}]");
            let parsed = interactions::interaction(&field, &raw_interaction(raw))
                .map_err(|error| rejected_at(row, &error, raw.time.as_str()))?;
            interactions.push(parsed);
        }
        Ok(ImportEntry {
            row,
            key,
            fields,
            tags,
            purchases,
            interactions,
            link_to: None,
        })
    }

    /// The id the channel gave, or one derived from the cleansed contact fields,
    /// so that importing the same file again finds the same customers.
    fn identity(&self, external_id: &str, fields: &CustomerFields) -> Option<String> {
        let given = external_id.trim();
        if !given.is_empty() {
            return Some(given.to_owned());
        }
        if let Some(phone) = fields.phones.first() {
            return Some(format!("phone:{phone}"));
        }
        if let Some(email) = fields.emails.first() {
            return Some(format!("email:{email}"));
        }
        (!fields.name.is_empty()).then(|| format!("name:{}", text::key(&fields.name)))
    }
}
