//! The index itself and its mutations: one call per change the store makes,
//! each touching a handful of bitmaps (O(log n) per bitmap; deleting a
//! customer or changing an enum value also looks through that tag's value
//! list).

use std::collections::HashMap;

use chrono::NaiveDate;
use roaring::RoaringBitmap;
use tagd_condition::{CustomerField, Metric, day_number, parse_gender};
use tagd_core::customers::{CustomerFields, Gender};
use tagd_core::tags::ValueType;
use tagd_core::text;

use crate::bsi::Bsi;
use crate::error::IndexError;
use crate::ids::IdMap;
use crate::postings::{Owners, Postings};

/// Customer fields the index holds value bitmaps for. Name and company are
/// left to SQL: nearly every value is distinct, so bitmaps would not pay.
pub const INDEXED_FIELDS: [CustomerField; 4] = [
    CustomerField::Province,
    CustomerField::City,
    CustomerField::District,
    CustomerField::Channel,
];

/// The in-memory segment index. Reads take `&self` and mutations `&mut
/// self`: share it as `Arc<RwLock<SegmentIndex>>` so any number of counts
/// run at once and a write waits only for the counts in flight (each a few
/// milliseconds).
#[derive(Debug)]
pub struct SegmentIndex {
    pub(crate) ids: IdMap,
    pub(crate) tags: HashMap<String, TagPostings>,
    /// Province, city, district, channel, in [`INDEXED_FIELDS`] order.
    pub(crate) fields: Vec<Postings>,
    /// Gender by [`Gender::as_str`]; every live customer has exactly one.
    pub(crate) gender: Postings,
    /// Birthdays as day numbers.
    pub(crate) birthday: Bsi,
    pub(crate) attributes: HashMap<String, Postings>,
    pub(crate) metrics: HashMap<Metric, Bsi>,
    /// Category key → customers who ever bought in it.
    pub(crate) bought: HashMap<String, RoaringBitmap>,
    pub(crate) purchases_loaded: bool,
    pub(crate) empty: RoaringBitmap,
}

impl Default for SegmentIndex {
    fn default() -> Self {
        Self::new()
    }
}

/// One tag's bitmaps.
#[derive(Debug, Clone)]
pub(crate) struct TagPostings {
    pub value_type: ValueType,
    pub values: TagValues,
}

#[derive(Debug, Clone)]
pub(crate) enum TagValues {
    Flag(RoaringBitmap),
    /// Enum, bool and text tags.
    Text(Postings),
    /// Number tags, and date tags as day numbers.
    Number(Bsi),
}

impl TagPostings {
    fn new(value_type: ValueType) -> Self {
        let values = match value_type {
            ValueType::Flag => TagValues::Flag(RoaringBitmap::new()),
            ValueType::Enum | ValueType::Bool => TagValues::Text(Postings::new(Owners::Scan)),
            ValueType::Text => TagValues::Text(Postings::new(Owners::Sparse(HashMap::new()))),
            ValueType::Number | ValueType::Date => TagValues::Number(Bsi::default()),
        };
        Self { value_type, values }
    }

    /// Customers holding the tag.
    pub fn holders(&self) -> &RoaringBitmap {
        match &self.values {
            TagValues::Flag(members) => members,
            TagValues::Text(postings) => &postings.any,
            TagValues::Number(bsi) => &bsi.exists,
        }
    }

    fn clear(&mut self, customer: u32) -> bool {
        match &mut self.values {
            TagValues::Flag(members) => members.remove(customer),
            TagValues::Text(postings) => {
                let held = postings.any.contains(customer);
                postings.clear(customer);
                held
            }
            TagValues::Number(bsi) => {
                let held = bsi.exists.contains(customer);
                bsi.clear(customer);
                held
            }
        }
    }
}

impl SegmentIndex {
    pub fn new() -> Self {
        Self {
            ids: IdMap::default(),
            tags: HashMap::new(),
            fields: INDEXED_FIELDS
                .iter()
                .map(|_| Postings::new(Owners::Dense(Vec::new())))
                .collect(),
            gender: Postings::new(Owners::Scan),
            birthday: Bsi::default(),
            attributes: HashMap::new(),
            metrics: HashMap::new(),
            bought: HashMap::new(),
            purchases_loaded: false,
            empty: RoaringBitmap::new(),
        }
    }

    /// The dense number of `customer`, registering it (with no fields and
    /// gender `unspecified`) when new.
    fn number(&mut self, customer: &str) -> Result<u32, IndexError> {
        let (number, new) = self.ids.get_or_insert(customer)?;
        if new {
            self.gender.set(number, Gender::Unspecified.as_str());
        }
        Ok(number)
    }

    /// Sets the indexed fields of a customer from its stored fields: gender,
    /// birthday, province, city, district, source channel and every
    /// attribute (attributes not in `fields` are dropped).
    pub fn upsert_customer(
        &mut self,
        customer: &str,
        fields: &CustomerFields,
    ) -> Result<u32, IndexError> {
        let number = self.number(customer)?;
        self.gender.set(number, fields.gender.as_str());
        match fields.birthday {
            Some(birthday) => self.birthday.set(number, day_number(birthday)),
            None => self.birthday.clear(number),
        }
        let values = [
            &fields.address.province,
            &fields.address.city,
            &fields.address.district,
            &fields.source_channel,
        ];
        for (postings, value) in self.fields.iter_mut().zip(values) {
            if value.is_empty() {
                postings.clear(number);
            } else {
                postings.set(number, value);
            }
        }
        for (key, postings) in &mut self.attributes {
            if !fields.attributes.contains_key(key) {
                postings.clear(number);
            }
        }
        for (key, value) in &fields.attributes {
            self.attribute_postings(key).set(number, value);
        }
        Ok(number)
    }

    fn attribute_postings(&mut self, key: &str) -> &mut Postings {
        self.attributes
            .entry(key.to_owned())
            .or_insert_with(|| Postings::new(Owners::Sparse(HashMap::new())))
    }

    /// Sets (`Some`) or removes (`None`) one attribute; `key` as stored
    /// (normalised).
    pub fn set_attribute(
        &mut self,
        customer: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), IndexError> {
        let number = self.number(customer)?;
        match value {
            Some(value) => self.attribute_postings(key).set(number, value),
            None => {
                if let Some(postings) = self.attributes.get_mut(key) {
                    postings.clear(number);
                }
            }
        }
        Ok(())
    }

    /// Sets one indexed field (gender by its stored name, e.g. `female`, or
    /// as a condition would write it). An empty value clears the field.
    pub fn set_field(
        &mut self,
        customer: &str,
        field: CustomerField,
        value: &str,
    ) -> Result<(), IndexError> {
        let number = self.number(customer)?;
        if field == CustomerField::Gender {
            let gender = value
                .parse::<Gender>()
                .ok()
                .or_else(|| parse_gender(value))
                .unwrap_or(Gender::Unspecified);
            self.gender.set(number, gender.as_str());
            return Ok(());
        }
        let Some(position) = INDEXED_FIELDS.iter().position(|indexed| *indexed == field) else {
            return Err(IndexError::Unsupported {
                predicate: format!("the field {}", field.keyword()),
            });
        };
        let postings = &mut self.fields[position];
        if value.is_empty() {
            postings.clear(number);
        } else {
            postings.set(number, value);
        }
        Ok(())
    }

    /// Sets or clears the birthday.
    pub fn set_birthday(
        &mut self,
        customer: &str,
        birthday: Option<NaiveDate>,
    ) -> Result<(), IndexError> {
        let number = self.number(customer)?;
        match birthday {
            Some(birthday) => self.birthday.set(number, day_number(birthday)),
            None => self.birthday.clear(number),
        }
        Ok(())
    }

    /// Records that `customer` holds `tag` with `value` as stored (canonical;
    /// `None` for flags), replacing the previous value.
    pub fn assign(
        &mut self,
        customer: &str,
        tag: &str,
        value_type: ValueType,
        value: Option<&str>,
    ) -> Result<(), IndexError> {
        let bad_value = || IndexError::BadValue {
            tag: tag.to_owned(),
            value: value.unwrap_or_default().to_owned(),
            value_type: value_type.as_str(),
        };
        // Read the value before touching anything, so a bad one changes nothing.
        let number_value = match value_type {
            ValueType::Number => Some(
                value
                    .and_then(|raw| raw.trim().parse::<f64>().ok())
                    .filter(|number| number.is_finite())
                    .ok_or_else(bad_value)?,
            ),
            ValueType::Date => Some(
                value
                    .and_then(|raw| NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok())
                    .map(day_number)
                    .ok_or_else(bad_value)?,
            ),
            _ => None,
        };
        if let Some(existing) = self.tags.get(tag)
            && existing.value_type != value_type
        {
            return Err(IndexError::TypeChanged {
                tag: tag.to_owned(),
                indexed: existing.value_type.as_str(),
                given: value_type.as_str(),
            });
        }
        let number = self.number(customer)?;
        let postings = self
            .tags
            .entry(tag.to_owned())
            .or_insert_with(|| TagPostings::new(value_type));
        match &mut postings.values {
            TagValues::Flag(members) => {
                members.insert(number);
            }
            TagValues::Text(text_postings) => text_postings.set(number, value.unwrap_or_default()),
            TagValues::Number(bsi) => {
                if let Some(number_value) = number_value {
                    bsi.set(number, number_value);
                }
            }
        }
        Ok(())
    }

    /// Records that `customer` no longer holds `tag`; whether it did.
    pub fn unassign(&mut self, customer: &str, tag: &str) -> bool {
        let Some(number) = self.ids.get(customer) else {
            return false;
        };
        self.tags
            .get_mut(tag)
            .is_some_and(|postings| postings.clear(number))
    }

    /// Forgets a deleted tag and all its assignments.
    pub fn drop_tag(&mut self, tag: &str) -> bool {
        self.tags.remove(tag).is_some()
    }

    /// Sets (`Some`) or clears (`None`) a customer's metric. The first call
    /// for a metric makes it answerable (see [`SegmentIndex::declare_metric`]).
    pub fn set_metric(
        &mut self,
        customer: &str,
        metric: Metric,
        value: Option<f64>,
    ) -> Result<(), IndexError> {
        let number = self.number(customer)?;
        let bsi = self.metrics.entry(metric).or_default();
        match value.filter(|value| value.is_finite()) {
            Some(value) => bsi.set(number, value),
            None => bsi.clear(number),
        }
        Ok(())
    }

    /// Declares that the metric is loaded, even if no customer has a value
    /// yet; conditions on undeclared metrics are [`IndexError::Unsupported`].
    pub fn declare_metric(&mut self, metric: Metric) {
        self.metrics.entry(metric).or_default();
    }

    /// Records a purchase category for `bought_category(…)`.
    pub fn mark_bought(&mut self, customer: &str, category: &str) -> Result<(), IndexError> {
        let number = self.number(customer)?;
        self.bought
            .entry(text::key(category))
            .or_default()
            .insert(number);
        Ok(())
    }

    /// Replaces the categories `customer` is recorded as having bought.
    pub fn set_bought<'a>(
        &mut self,
        customer: &str,
        categories: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), IndexError> {
        let number = self.number(customer)?;
        for members in self.bought.values_mut() {
            members.remove(number);
        }
        for category in categories {
            self.bought
                .entry(text::key(category))
                .or_default()
                .insert(number);
        }
        Ok(())
    }

    /// Declares that every customer's purchase categories are loaded, so
    /// `bought_category(…)` is answered here; until then it is unsupported.
    pub fn set_purchases_loaded(&mut self, loaded: bool) {
        self.purchases_loaded = loaded;
    }

    /// Removes a customer from every bitmap. Its number is not reused.
    pub fn delete_customer(&mut self, customer: &str) -> bool {
        let Some(number) = self.ids.remove(customer) else {
            return false;
        };
        for postings in self.tags.values_mut() {
            postings.clear(number);
        }
        for postings in self.fields.iter_mut().chain(self.attributes.values_mut()) {
            postings.clear(number);
        }
        self.gender.clear(number);
        self.birthday.clear(number);
        for bsi in self.metrics.values_mut() {
            bsi.clear(number);
        }
        for members in self.bought.values_mut() {
            members.remove(number);
        }
        true
    }

    /// Gives back capacity grown while loading (vectors and tables double
    /// as they grow) and stores bitmaps as runs where that is smaller. Call
    /// after a bulk load; later mutations keep working on the compacted form.
    pub fn compact(&mut self) {
        self.ids.shrink();
        for postings in self.tags.values_mut() {
            match &mut postings.values {
                TagValues::Flag(members) => {
                    members.optimize();
                }
                TagValues::Text(text) => text.shrink(),
                TagValues::Number(bsi) => bsi.shrink(),
            }
        }
        for postings in self.fields.iter_mut().chain(self.attributes.values_mut()) {
            postings.shrink();
        }
        self.gender.shrink();
        self.birthday.shrink();
        for bsi in self.metrics.values_mut() {
            bsi.shrink();
        }
        for members in self.bought.values_mut() {
            members.optimize();
        }
        self.tags.shrink_to_fit();
        self.attributes.shrink_to_fit();
    }

    /// Removes `tag` from the customer with dense number `number`; whether
    /// it held it. For callers that keep numbers rather than ids.
    pub fn unassign_dense(&mut self, number: u32, tag: &str) -> bool {
        self.tags
            .get_mut(tag)
            .is_some_and(|postings| postings.clear(number))
    }

    /// Live customers.
    pub fn customer_count(&self) -> u64 {
        self.ids.alive.len()
    }

    /// The dense number of a customer id, if indexed.
    pub fn dense_id(&self, customer: &str) -> Option<u32> {
        self.ids.get(customer)
    }

    /// The customer id of a dense number, unless deleted.
    pub fn customer_id(&self, number: u32) -> Option<String> {
        self.ids.id(number)
    }

    /// Calls `f` with the customer id of `number` without allocating (a
    /// stream of millions of ids); false for a number no longer held.
    pub fn with_customer_id(&self, number: u32, f: impl FnOnce(&str)) -> bool {
        self.ids.with_id(number, f)
    }

    /// The first dense number whose customer id sorts after `id`, when
    /// numbers follow id order (customers first seen in id order, as a build
    /// loads them and as UUIDv7 ids are made); None when they do not, so the
    /// caller sorts ids instead.
    pub fn number_after(&self, id: &str) -> Option<u32> {
        self.ids.number_after(id)
    }

    /// Whether dense number order is customer id order.
    pub fn numbers_follow_ids(&self) -> bool {
        self.ids.ordered()
    }

    /// Live customers' dense numbers.
    pub fn alive(&self) -> &RoaringBitmap {
        &self.ids.alive
    }
}
