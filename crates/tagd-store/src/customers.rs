//! Customers: the record, its phones, emails and channel identities.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::DomainError;
use tagd_core::customers::{Address, Customer, CustomerField, CustomerFields, ExternalId};
use tagd_core::ids::new_id;
use tagd_core::paging::{PageRequest, finish_page};
use tagd_core::text;

use crate::customer_reads::Read;
use crate::db::{
    BackendOps, BatchInsert, CachedByText, IN_CHUNK, MysqlConn, MysqlLoadRows as _, SqliteConn,
    SqliteLoadRows as _, now, removing_transaction, with_conn, write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::merges::MergeQueries;
use crate::schema::{
    cleanse_unfixable, customer_emails, customer_external_ids, customer_field_history,
    customer_phones, customer_tags, customers, interactions, purchase_items, purchases,
    tag_history,
};
use crate::tags::page_limit;
use crate::{Page, Store};

/// Filters of `ListCustomers`; every given one must match. Values are already normalised.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub name_contains: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub tag_id: Option<String>,
}

/// One entry of an upsert: the channel identity it is keyed by, and the
/// normalised fields it brings (empty ones leave stored values alone).
#[derive(Debug, Clone)]
pub struct UpsertEntry {
    pub key: ExternalId,
    pub fields: CustomerFields,
    /// A stored customer this entry is the same person as: when no customer
    /// holds `key`, the entry updates this one (which gains `key`) instead of
    /// creating a twin. Ignored when `key` is held, or when it is gone.
    pub link_to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertResult {
    pub customer_id: String,
    pub outcome: UpsertOutcome,
    /// The fields before an update (for imports to record what to restore).
    pub(crate) before: Option<CustomerFields>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = customers, treat_none_as_default_value = false, treat_none_as_null = true)]
pub(crate) struct CustomerRow {
    pub id: String,
    pub name: String,
    pub name_key: String,
    /// [`tagd_match::name_pinyin`] of the name, looked up by FindDuplicates
    /// and import linking; `None` only on rows written before it existed,
    /// until the start-up backfill reaches them.
    pub name_pinyin: Option<String>,
    pub gender: String,
    pub birthday: Option<NaiveDate>,
    pub province: String,
    pub city: String,
    pub district: String,
    pub address_detail: String,
    pub company: String,
    pub source_channel: String,
    /// JSON array of E.164 numbers, in order.
    pub phones: String,
    /// JSON array of emails, in order.
    pub emails: String,
    /// JSON array of `[channel, external_id]` pairs.
    pub external_ids: String,
    /// JSON object of attribute name to value.
    pub attributes: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = customer_phones)]
pub(crate) struct PhoneRow {
    pub customer_id: String,
    pub phone: String,
    pub position: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = customer_emails)]
pub(crate) struct EmailRow {
    pub customer_id: String,
    pub email: String,
    pub position: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = customer_external_ids)]
pub(crate) struct ExternalIdRow {
    pub channel: String,
    pub external_id: String,
    pub customer_id: String,
}

/// The rows that store one customer.
struct CustomerRows {
    customer: CustomerRow,
    phones: Vec<PhoneRow>,
    emails: Vec<EmailRow>,
    external_ids: Vec<ExternalIdRow>,
}

/// The `position` column of a list's row at `index`.
fn position(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

/// How one customer's list (phones, emails or identities) changed, for its index rows.
#[derive(Debug, PartialEq, Eq)]
enum ListChange {
    Unchanged,
    /// The old list is the start of the new one: rows from this index on are new.
    Grown(usize),
    /// Anything else, or no old list known: every row is rewritten.
    Rewritten,
}

fn list_change<T: PartialEq>(old: Option<&[T]>, new: &[T]) -> ListChange {
    match old {
        Some(old) if old == new => ListChange::Unchanged,
        Some(old) if new.starts_with(old) => ListChange::Grown(old.len()),
        _ => ListChange::Rewritten,
    }
}

impl ListChange {
    /// The index of the first row to insert, if any; a rewritten list's
    /// customer is added to those whose rows are deleted first.
    fn rows_from(self, customer_id: &str, deleted: &mut Vec<String>) -> Option<usize> {
        match self {
            ListChange::Unchanged => None,
            ListChange::Grown(from) => Some(from),
            ListChange::Rewritten => {
                deleted.push(customer_id.to_owned());
                Some(0)
            }
        }
    }
}

fn to_rows(customer: &Customer) -> CustomerRows {
    let fields = &customer.fields;
    let id = &customer.id;
    CustomerRows {
        customer: CustomerRow {
            id: id.clone(),
            name: fields.name.clone(),
            name_key: text::key(&fields.name),
            name_pinyin: Some(tagd_match::name_pinyin(&fields.name)),
            gender: fields.gender.as_str().to_owned(),
            birthday: fields.birthday,
            province: fields.address.province.clone(),
            city: fields.address.city.clone(),
            district: fields.address.district.clone(),
            address_detail: fields.address.detail.clone(),
            company: fields.company.clone(),
            source_channel: fields.source_channel.clone(),
            phones: json(&fields.phones),
            emails: json(&fields.emails),
            external_ids: json(
                &fields
                    .external_ids
                    .iter()
                    .map(|id| (&id.channel, &id.external_id))
                    .collect::<Vec<_>>(),
            ),
            attributes: json(&fields.attributes),
            created_at: customer.created_at,
            updated_at: customer.updated_at,
        },
        phones: fields
            .phones
            .iter()
            .enumerate()
            .map(|(index, phone)| PhoneRow {
                customer_id: id.clone(),
                phone: phone.clone(),
                position: position(index),
            })
            .collect(),
        emails: fields
            .emails
            .iter()
            .enumerate()
            .map(|(index, email)| EmailRow {
                customer_id: id.clone(),
                email: email.clone(),
                position: position(index),
            })
            .collect(),
        external_ids: fields
            .external_ids
            .iter()
            .map(|external| ExternalIdRow {
                channel: external.channel.clone(),
                external_id: external.external_id.clone(),
                customer_id: id.clone(),
            })
            .collect(),
    }
}

/// Serialising strings, maps and pairs of strings cannot fail.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn from_row(row: CustomerRow) -> StoreResult<Customer> {
    fn parse<T: serde::de::DeserializeOwned>(id: &str, column: &str, text: &str) -> StoreResult<T> {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("customer {id}: {column}: {e}")))
    }
    let gender = row
        .gender
        .parse()
        .map_err(|e: String| StoreError::Corrupt(format!("customer {}: {e}", row.id)))?;
    let phones: Vec<String> = parse(&row.id, "phones", &row.phones)?;
    let emails: Vec<String> = parse(&row.id, "emails", &row.emails)?;
    let external_ids: Vec<(String, String)> = parse(&row.id, "external_ids", &row.external_ids)?;
    let attributes: BTreeMap<String, String> = parse(&row.id, "attributes", &row.attributes)?;
    Ok(Customer {
        fields: CustomerFields {
            name: row.name,
            gender,
            birthday: row.birthday,
            phones,
            emails,
            address: Address {
                province: row.province,
                city: row.city,
                district: row.district,
                detail: row.address_detail,
            },
            company: row.company,
            source_channel: row.source_channel,
            external_ids: external_ids
                .into_iter()
                .map(|(channel, external_id)| ExternalId {
                    channel,
                    external_id,
                })
                .collect(),
            attributes,
        },
        id: row.id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A customer's fields as one JSON text (the columns of its row), kept to restore them later.
pub(crate) fn fields_json(fields: &CustomerFields) -> String {
    let row = to_rows(&Customer {
        id: String::new(),
        fields: fields.clone(),
        created_at: NaiveDateTime::default(),
        updated_at: NaiveDateTime::default(),
    })
    .customer;
    json(&[
        row.name,
        row.gender,
        row.birthday.map(|day| day.to_string()).unwrap_or_default(),
        row.province,
        row.city,
        row.district,
        row.address_detail,
        row.company,
        row.source_channel,
        row.phones,
        row.emails,
        row.external_ids,
        row.attributes,
    ])
}

/// The fields [`fields_json`] kept.
pub(crate) fn fields_from_json(text: &str) -> StoreResult<CustomerFields> {
    let corrupt = |e: String| StoreError::Corrupt(format!("kept customer fields: {e}"));
    let parts: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let [
        name,
        gender,
        birthday,
        province,
        city,
        district,
        address_detail,
        company,
        source_channel,
        phones,
        emails,
        external_ids,
        attributes,
    ] = <[String; 13]>::try_from(parts).map_err(|_| corrupt("wrong shape".to_owned()))?;
    let birthday = if birthday.is_empty() {
        None
    } else {
        Some(
            birthday
                .parse()
                .map_err(|e: chrono::ParseError| corrupt(e.to_string()))?,
        )
    };
    let customer = from_row(CustomerRow {
        id: String::new(),
        name_key: String::new(),
        name_pinyin: None,
        name,
        gender,
        birthday,
        province,
        city,
        district,
        address_detail,
        company,
        source_channel,
        phones,
        emails,
        external_ids,
        attributes,
        created_at: NaiveDateTime::default(),
        updated_at: NaiveDateTime::default(),
    })?;
    Ok(customer.fields)
}

/// `%text%` for LIKE, with the wildcards in `text` escaped by `\`.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Customer queries, written once and compiled for each backend's connection.
pub(crate) trait CustomerQueries {
    /// Full customers for `ids`, in id order; missing ids are skipped.
    async fn load_customers(&mut self, ids: &[String]) -> StoreResult<Vec<Customer>>;
    async fn load_customer(&mut self, id: &str) -> StoreResult<Customer>;
    /// Who holds each of these channel identities now.
    async fn external_id_holders(
        &mut self,
        ids: &[&ExternalId],
    ) -> StoreResult<HashMap<ExternalId, String>>;
    async fn insert_customers(&mut self, customers: &[Customer]) -> StoreResult<()>;
    /// Rewrites the customers' rows and child rows.
    async fn rewrite_customers(
        &mut self,
        customers: &[Customer],
        before: &HashMap<String, CustomerFields>,
    ) -> StoreResult<()>;
    /// Rewrites whole customer rows set-based: one upsert per chunk where `rewrite_customers`
    /// sends an UPDATE per customer (a batch of merges rewrites a thousand survivors); their
    /// index rows as `rewrite_customers` does.
    async fn replace_customers(
        &mut self,
        customers: &[Customer],
        before: &HashMap<String, CustomerFields>,
    ) -> StoreResult<()>;
    /// Brings the phone, email and identity index rows of the customers whose lists
    /// differ from `before` up to date: a list grown at its end gets its new rows, any
    /// other change (or a customer missing from `before`) rewrites the list's rows.
    async fn rewrite_index_rows(
        &mut self,
        customers: &[Customer],
        before: &HashMap<String, CustomerFields>,
    ) -> StoreResult<()>;
    async fn delete_children(&mut self, ids: &[String]) -> StoreResult<()>;
    /// Deletes customers and everything that belongs to them: tags, tag and field
    /// history, values cleanse reports kept, purchases with their items, interactions, phones, emails, identities.
    async fn erase_customers(&mut self, ids: &[String]) -> StoreResult<()>;
    /// Creates or merges customers keyed by channel identity (see
    /// [`Store::upsert_customers`]); with `skip_existing`, stored customers are
    /// left as they are and reported unchanged.
    async fn upsert_entries(
        &mut self,
        entries: &[UpsertEntry],
        skip_existing: bool,
    ) -> StoreResult<Vec<UpsertResult>>;
    /// NOT_FOUND unless the customer exists: listing a missing customer's
    /// rows is an error, not an empty page.
    async fn require_customer(&mut self, id: &str) -> StoreResult<()>;
}

macro_rules! customer_queries {
    ($conn:ty) => {
        impl CustomerQueries for $conn {
            async fn require_customer(&mut self, id: &str) -> StoreResult<()> {
                let exists: i64 = customers::table
                    .filter(customers::id.eq(id))
                    .count()
                    .get_result(self)
                    .await?;
                if exists == 0 {
                    return Err(StoreError::not_found("customer", id));
                }
                Ok(())
            }

            async fn load_customers(&mut self, ids: &[String]) -> StoreResult<Vec<Customer>> {
                let mut loaded = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(IN_CHUNK) {
                    let query = customers::table
                        .filter(ids_in(customers::id, chunk))
                        .order(customers::id)
                        .select(CustomerRow::as_select());
                    let rows: Vec<CustomerRow> = self.load_rows(query).await?;
                    for row in rows {
                        loaded.push(from_row(row)?);
                    }
                }
                Ok(loaded)
            }

            async fn load_customer(&mut self, id: &str) -> StoreResult<Customer> {
                // `find` (not `eq_any`) keeps the statement static, so it is prepared once per
                // connection; `get_result` (not `first`) avoids a bound LIMIT, which makes
                // SQLite re-prepare the statement on every call.
                let row: Option<CustomerRow> = customers::table
                    .find(id)
                    .select(CustomerRow::as_select())
                    .get_result(self)
                    .await
                    .optional()?;
                from_row(row.ok_or_else(|| StoreError::not_found("customer", id))?)
            }

            async fn external_id_holders(
                &mut self,
                ids: &[&ExternalId],
            ) -> StoreResult<HashMap<ExternalId, String>> {
                let mut by_channel: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for id in ids {
                    by_channel
                        .entry(&id.channel)
                        .or_default()
                        .push(&id.external_id);
                }
                let mut holders = HashMap::new();
                for (channel, external_ids) in by_channel {
                    for chunk in external_ids.chunks(IN_CHUNK) {
                        let rows: Vec<ExternalIdRow> = customer_external_ids::table
                            .filter(customer_external_ids::channel.eq(channel))
                            .filter(ids_in(customer_external_ids::external_id, chunk))
                            .select(ExternalIdRow::as_select())
                            .load(self)
                            .await?;
                        for row in rows {
                            holders.insert(
                                ExternalId {
                                    channel: row.channel,
                                    external_id: row.external_id,
                                },
                                row.customer_id,
                            );
                        }
                    }
                }
                Ok(holders)
            }

            async fn insert_customers(&mut self, customers: &[Customer]) -> StoreResult<()> {
                let rows: Vec<CustomerRows> = customers.iter().map(to_rows).collect();
                let customer_rows: Vec<CustomerRow> =
                    rows.iter().map(|r| r.customer.clone()).collect();
                self.insert_customer_rows(&customer_rows).await?;
                let phones: Vec<PhoneRow> =
                    rows.iter().flat_map(|r| r.phones.iter().cloned()).collect();
                self.insert_phone_rows(&phones).await?;
                let emails: Vec<EmailRow> =
                    rows.iter().flat_map(|r| r.emails.iter().cloned()).collect();
                self.insert_email_rows(&emails).await?;
                let external: Vec<ExternalIdRow> = rows
                    .iter()
                    .flat_map(|r| r.external_ids.iter().cloned())
                    .collect();
                self.insert_external_id_rows(&external).await?;
                Ok(())
            }

            async fn rewrite_customers(
                &mut self,
                customers: &[Customer],
                before: &HashMap<String, CustomerFields>,
            ) -> StoreResult<()> {
                for customer in customers {
                    // Diesel deems every UPDATE uncacheable; this one's text never changes
                    // (all columns, NULLs written as NULL), so it is prepared once per connection.
                    CachedByText(
                        diesel::update(customers::table.find(&customer.id))
                            .set(&to_rows(customer).customer),
                    )
                    .execute(self)
                    .await?;
                }
                self.rewrite_index_rows(customers, before).await
            }

            async fn replace_customers(
                &mut self,
                customers: &[Customer],
                before: &HashMap<String, CustomerFields>,
            ) -> StoreResult<()> {
                let rows: Vec<CustomerRow> =
                    customers.iter().map(|c| to_rows(c).customer).collect();
                self.upsert_customer_rows(&rows).await?;
                self.rewrite_index_rows(customers, before).await
            }

            async fn rewrite_index_rows(
                &mut self,
                customers: &[Customer],
                before: &HashMap<String, CustomerFields>,
            ) -> StoreResult<()> {
                // Only the index rows of lists that changed are written: a list that grew at
                // its end (a merge's union, an added phone) gets just its new rows; any other
                // change rewrites that customer's rows of that list.
                let mut phones = (Vec::new(), Vec::new());
                let mut emails = (Vec::new(), Vec::new());
                let mut external = (Vec::new(), Vec::new());
                for customer in customers {
                    let old = before.get(&customer.id);
                    let new = &customer.fields;
                    let id = &customer.id;
                    let from = list_change(old.map(|old| old.phones.as_slice()), &new.phones);
                    if let Some(from) = from.rows_from(id, &mut phones.0) {
                        phones
                            .1
                            .extend(new.phones.iter().enumerate().skip(from).map(
                                |(index, phone)| PhoneRow {
                                    customer_id: id.clone(),
                                    phone: phone.clone(),
                                    position: position(index),
                                },
                            ));
                    }
                    let from = list_change(old.map(|old| old.emails.as_slice()), &new.emails);
                    if let Some(from) = from.rows_from(id, &mut emails.0) {
                        emails
                            .1
                            .extend(new.emails.iter().enumerate().skip(from).map(
                                |(index, email)| EmailRow {
                                    customer_id: id.clone(),
                                    email: email.clone(),
                                    position: position(index),
                                },
                            ));
                    }
                    let from = list_change(
                        old.map(|old| old.external_ids.as_slice()),
                        &new.external_ids,
                    );
                    if let Some(from) = from.rows_from(id, &mut external.0) {
                        external
                            .1
                            .extend(new.external_ids.iter().skip(from).map(|external| {
                                ExternalIdRow {
                                    channel: external.channel.clone(),
                                    external_id: external.external_id.clone(),
                                    customer_id: id.clone(),
                                }
                            }));
                    }
                }
                for chunk in phones.0.chunks(IN_CHUNK) {
                    diesel::delete(
                        customer_phones::table.filter(ids_in(customer_phones::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                }
                for chunk in emails.0.chunks(IN_CHUNK) {
                    diesel::delete(
                        customer_emails::table.filter(ids_in(customer_emails::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                }
                for chunk in external.0.chunks(IN_CHUNK) {
                    diesel::delete(
                        customer_external_ids::table
                            .filter(ids_in(customer_external_ids::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                }
                self.insert_phone_rows(&phones.1).await?;
                self.insert_email_rows(&emails.1).await?;
                self.insert_external_id_rows(&external.1).await?;
                Ok(())
            }

            async fn delete_children(&mut self, ids: &[String]) -> StoreResult<()> {
                for chunk in ids.chunks(IN_CHUNK) {
                    diesel::delete(
                        customer_phones::table.filter(ids_in(customer_phones::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    diesel::delete(
                        customer_emails::table.filter(ids_in(customer_emails::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    diesel::delete(
                        customer_external_ids::table
                            .filter(ids_in(customer_external_ids::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                }
                Ok(())
            }

            async fn upsert_entries(
                &mut self,
                entries: &[UpsertEntry],
                skip_existing: bool,
            ) -> StoreResult<Vec<UpsertResult>> {
                let at = now();
                let mut wanted: Vec<&ExternalId> = entries.iter().map(|e| &e.key).collect();
                wanted.extend(entries.iter().flat_map(|e| e.fields.external_ids.iter()));
                let holders = self.external_id_holders(&wanted).await?;
                // The customer each entry updates, if any: its key's holder, else its link.
                let target = |entry: &UpsertEntry| {
                    holders.get(&entry.key).or(entry.link_to.as_ref()).cloned()
                };
                let mut existing_ids: Vec<String> = entries
                    .iter()
                    .filter_map(target)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                existing_ids.sort_unstable();
                for chunk in existing_ids.chunks(IN_CHUNK) {
                    self.lock_customers(chunk).await?;
                }
                let mut stored: HashMap<String, Customer> = self
                    .load_customers(&existing_ids)
                    .await?
                    .into_iter()
                    .map(|customer| (customer.id.clone(), customer))
                    .collect();
                let originals: HashMap<String, CustomerFields> = stored
                    .iter()
                    .map(|(id, c)| (id.clone(), c.fields.clone()))
                    .collect();
                let mut created: Vec<Customer> = Vec::new();
                let mut results = Vec::with_capacity(entries.len());
                for (index, entry) in entries.iter().enumerate() {
                    let mut incoming = entry.fields.clone();
                    if !incoming.external_ids.contains(&entry.key) {
                        incoming
                            .external_ids
                            .retain(|id| id.channel != entry.key.channel);
                        incoming.external_ids.insert(0, entry.key.clone());
                    }
                    let field = |position: usize| {
                        format!("entries[{index}].customer.external_ids[{position}]")
                    };
                    let customer_id = match target(entry).and_then(|id| stored.get_mut(&id)) {
                        Some(customer) => {
                            if !skip_existing {
                                customer.fields.merge_from(&incoming);
                            }
                            check_identities(customer, &holders, &field)?;
                            customer.id.clone()
                        }
                        None => {
                            if incoming.name.is_empty() {
                                return Err(DomainError::invalid(
                                    format!("entries[{index}].customer.name"),
                                    "must not be empty for a new customer",
                                )
                                .into());
                            }
                            if incoming.source_channel.is_empty() {
                                incoming.source_channel.clone_from(&entry.key.channel);
                            }
                            let customer = Customer {
                                id: new_id(),
                                fields: incoming,
                                created_at: at,
                                updated_at: at,
                            };
                            check_identities(&customer, &holders, &field)?;
                            let id = customer.id.clone();
                            created.push(customer);
                            id
                        }
                    };
                    results.push(customer_id);
                }
                // Two entries may name one identity that neither held before.
                let mut claimed: HashMap<&ExternalId, &str> = HashMap::new();
                for customer in created.iter().chain(stored.values()) {
                    for id in &customer.fields.external_ids {
                        if let Some(other) = claimed.insert(id, &customer.id)
                            && other != customer.id
                        {
                            return Err(StoreError::AlreadyExists(format!(
                                "{}:{} is given to two different customers in this request",
                                id.channel, id.external_id
                            )));
                        }
                    }
                }
                let mut changed: Vec<Customer> = stored
                    .into_values()
                    .filter(|customer| originals.get(&customer.id) != Some(&customer.fields))
                    .collect();
                for customer in &mut changed {
                    customer.updated_at = at;
                }
                self.insert_customers(&created).await?;
                self.rewrite_customers(&changed, &originals).await?;
                let created_ids: BTreeSet<&str> = created.iter().map(|c| c.id.as_str()).collect();
                let changed_ids: BTreeSet<&str> = changed.iter().map(|c| c.id.as_str()).collect();
                Ok(results
                    .into_iter()
                    .map(|customer_id| {
                        let outcome = if created_ids.contains(customer_id.as_str()) {
                            UpsertOutcome::Created
                        } else if changed_ids.contains(customer_id.as_str()) {
                            UpsertOutcome::Updated
                        } else {
                            UpsertOutcome::Unchanged
                        };
                        let before = (outcome == UpsertOutcome::Updated)
                            .then(|| originals.get(&customer_id).cloned())
                            .flatten();
                        UpsertResult {
                            customer_id,
                            outcome,
                            before,
                        }
                    })
                    .collect())
            }

            async fn erase_customers(&mut self, ids: &[String]) -> StoreResult<()> {
                for chunk in ids.chunks(IN_CHUNK) {
                    diesel::delete(
                        customer_tags::table.filter(ids_in(customer_tags::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    diesel::delete(
                        tag_history::table.filter(ids_in(tag_history::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    diesel::delete(
                        customer_field_history::table
                            .filter(ids_in(customer_field_history::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    // A cleanse report's values are the customer's data too.
                    diesel::delete(
                        cleanse_unfixable::table
                            .filter(ids_in(cleanse_unfixable::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    // Orders and contacts belong to the customer; an order id freed here may be recorded again.
                    diesel::delete(
                        purchase_items::table.filter(ids_in(purchase_items::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    diesel::delete(purchases::table.filter(ids_in(purchases::customer_id, chunk)))
                        .execute(self)
                        .await?;
                    diesel::delete(
                        interactions::table.filter(ids_in(interactions::customer_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                    self.delete_children(chunk).await?;
                    diesel::delete(customers::table.filter(ids_in(customers::id, chunk)))
                        .execute(self)
                        .await?;
                }
                Ok(())
            }
        }
    };
}

customer_queries!(SqliteConn);
customer_queries!(MysqlConn);

/// Fails when an identity in `customer` belongs to another customer.
fn check_identities(
    customer: &Customer,
    holders: &HashMap<ExternalId, String>,
    field: &dyn Fn(usize) -> String,
) -> StoreResult<()> {
    for (index, id) in customer.fields.external_ids.iter().enumerate() {
        if let Some(holder) = holders.get(id).filter(|holder| **holder != customer.id) {
            return Err(StoreError::AlreadyExists(format!(
                "{}: {}:{} already belongs to customer {holder}",
                field(index),
                id.channel,
                id.external_id
            )));
        }
    }
    Ok(())
}

impl Store {
    pub async fn create_customer(&self, fields: CustomerFields) -> StoreResult<Customer> {
        let at = now();
        let customer = Customer {
            id: new_id(),
            fields,
            created_at: at,
            updated_at: at,
        };
        let new = &customer;
        write_transaction!(self, |conn| {
            let wanted: Vec<&ExternalId> = new.fields.external_ids.iter().collect();
            let holders = conn.external_id_holders(&wanted).await?;
            check_identities(new, &holders, &|index| {
                format!("customer.external_ids[{index}]")
            })?;
            conn.insert_customers(std::slice::from_ref(new)).await?;
            Ok(())
        })?;
        Ok(customer)
    }

    /// The customer with this id; an id merged away answers with the customer it was merged into.
    pub async fn get_customer(&self, id: &str) -> StoreResult<Customer> {
        if let Some(reads) = &self.customer_reads {
            match reads.read(id).await {
                Read::Found(customer) => return Ok(*customer),
                // Merged away or never there: the read below says which.
                Read::Missing | Read::Failed => {}
            }
        }
        // A primary-key read: run without the blocking-pool hop.
        crate::db::inline_sqlite(async {
            Ok(with_conn!(
                self,
                |conn| match conn.load_customer(id).await {
                    Err(StoreError::NotFound { .. }) => match conn.merged_into(id).await? {
                        Some((_, survivor)) => conn.load_customer(&survivor).await?,
                        None => return Err(StoreError::not_found("customer", id)),
                    },
                    other => other?,
                }
            ))
        })
        .await
    }

    /// Replaces the fields named in `mask` with those of `fields` (already normalised).
    pub async fn update_customer(
        &self,
        id: &str,
        fields: &CustomerFields,
        mask: &BTreeSet<CustomerField>,
    ) -> StoreResult<Customer> {
        write_transaction!(self, |conn| {
            conn.lock_customers(&[id.to_owned()]).await?;
            let mut customer = conn.load_customer(id).await?;
            let before = customer.fields.clone();
            for field in mask {
                customer.fields.set(*field, fields);
            }
            if customer.fields == before {
                return Ok(customer);
            }
            if mask.contains(&CustomerField::ExternalIds) {
                let wanted: Vec<&ExternalId> = customer.fields.external_ids.iter().collect();
                let holders = conn.external_id_holders(&wanted).await?;
                check_identities(&customer, &holders, &|index| {
                    format!("customer.external_ids[{index}]")
                })?;
            }
            customer.updated_at = now();
            let before = HashMap::from([(customer.id.clone(), before)]);
            conn.rewrite_customers(std::slice::from_ref(&customer), &before)
                .await?;
            Ok(customer)
        })
    }

    /// Deletes the customer with its tags, tag and field history; returns the live assignments removed.
    pub async fn delete_customer(&self, id: &str) -> StoreResult<u64> {
        removing_transaction!(self, |conn| {
            if conn.lock_customers(&[id.to_owned()]).await?.is_empty() {
                return Err(StoreError::not_found("customer", id));
            }
            let at = now();
            let live: i64 = customer_tags::table
                .filter(customer_tags::customer_id.eq(id))
                .filter(
                    customer_tags::expires_at
                        .is_null()
                        .or(customer_tags::expires_at.gt(at)),
                )
                .count()
                .get_result(conn)
                .await?;
            conn.erase_customers(&[id.to_owned()]).await?;
            Ok((u64::try_from(live).unwrap_or(0), vec![id.to_owned()]))
        })
    }

    pub async fn list_customers(
        &self,
        filter: &CustomerFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Customer>> {
        let at = now();
        let (next_page_token, customers): (String, Vec<Customer>) = with_conn!(self, |conn| {
            let mut query = customers::table
                .select(customers::id)
                .order(customers::id)
                .limit(page_limit(page))
                .into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(customers::id.gt(after.clone()));
            }
            if let Some(name) = &filter.name_contains {
                query = query.filter(
                    customers::name_key
                        .like(contains_pattern(&text::key(name)))
                        .escape('\\'),
                );
            }
            if let Some(phone) = &filter.phone {
                query = query.filter(
                    customers::id.eq_any(
                        customer_phones::table
                            .select(customer_phones::customer_id)
                            .filter(customer_phones::phone.eq(phone.clone())),
                    ),
                );
            }
            if let Some(email) = &filter.email {
                query = query.filter(
                    customers::id.eq_any(
                        customer_emails::table
                            .select(customer_emails::customer_id)
                            .filter(customer_emails::email.eq(email.clone())),
                    ),
                );
            }
            if let Some(tag_id) = &filter.tag_id {
                query = query.filter(
                    customers::id.eq_any(
                        customer_tags::table
                            .select(customer_tags::customer_id)
                            .filter(customer_tags::tag_id.eq(tag_id.clone()))
                            .filter(
                                customer_tags::expires_at
                                    .is_null()
                                    .or(customer_tags::expires_at.gt(at)),
                            ),
                    ),
                );
            }
            let mut ids: Vec<String> = query.load(conn).await?;
            let next_page_token = finish_page(&mut ids, page.size, String::clone);
            (next_page_token, conn.load_customers(&ids).await?)
        });
        Ok(Page {
            items: customers,
            next_page_token,
        })
    }

    /// Creates or updates customers keyed by channel identity, all in one
    /// transaction; a second identical call reports every entry unchanged.
    pub async fn upsert_customers(
        &self,
        entries: &[UpsertEntry],
    ) -> StoreResult<Vec<UpsertResult>> {
        let mut first_index: HashMap<&ExternalId, usize> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            if let Some(first) = first_index.insert(&entry.key, index) {
                return Err(DomainError::invalid(
                    format!("entries[{index}].key"),
                    format!("is the same as entries[{first}].key"),
                )
                .into());
            }
        }
        write_transaction!(self, |conn| conn.upsert_entries(entries, false).await)
    }
}

#[cfg(test)]
mod tests {
    use super::{ListChange, list_change};

    #[test]
    fn a_list_grown_at_its_end_keeps_its_rows() {
        let old = ["+8613800138000".to_owned()];
        let grown = ["+8613800138000".to_owned(), "+8613900139000".to_owned()];
        assert_eq!(list_change(Some(&old[..]), &old), ListChange::Unchanged);
        assert_eq!(list_change(Some(&old[..]), &grown), ListChange::Grown(1));
        assert_eq!(list_change(Some(&[][..]), &grown), ListChange::Grown(0));
    }

    #[test]
    fn reordered_shrunk_or_unknown_lists_are_rewritten() {
        let a = "a@example.com".to_owned();
        let b = "b@example.com".to_owned();
        let reordered = [b.clone(), a.clone()];
        let both = [a.clone(), b.clone()];
        assert_eq!(
            list_change(Some(&both[..]), &reordered),
            ListChange::Rewritten
        );
        assert_eq!(
            list_change(Some(&both[..]), &both[..1]),
            ListChange::Rewritten
        );
        assert_eq!(list_change(None, &both), ListChange::Rewritten);
        assert_eq!(list_change::<String>(None, &[]), ListChange::Rewritten);
    }
}
