//! Cleanse jobs: customers read in id order (keyset, so a scan of millions holds one
//! page at a time), a batch of cleansed customers written in one transaction with
//! their field history, and the job's report (per-field counts, unfixable values).

use std::collections::{BTreeSet, HashMap};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::customers::{Customer, CustomerField, CustomerFields, FieldSource};
use tagd_core::jobs::{CleanseFieldCounts, UnfixableValue};
use tagd_core::paging::{PageRequest, finish_page};

use crate::customers::{CustomerQueries, CustomerRow, from_row};
use crate::db::{
    BackendOps, BatchInsert, IN_CHUNK, MysqlLoadRows as _, SqliteLoadRows as _, now,
    rehearsable_transaction, with_conn, write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::field_history::{ChangeOrigin, history_rows};
use crate::ids_in::ids_in;
use crate::schema::{
    cleanse_field_counts, cleanse_unfixable, customer_emails, customer_phones, customers,
};
use crate::tags::page_limit;
use crate::{Page, Store};

/// One customer as a cleanse read it, and its fields after cleansing.
#[derive(Debug, Clone)]
pub struct CleanseUpdate {
    pub customer_id: String,
    pub before: CustomerFields,
    pub after: CustomerFields,
}

/// Whose cleanse a batch is, and whether it only rehearses.
#[derive(Debug, Clone)]
pub struct CleanseSettings {
    pub job_id: String,
    pub actor: String,
    /// Run every statement, then roll back: the outcome is exact, nothing is written.
    pub dry_run: bool,
}

/// A change the store would not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanseConflict {
    pub customer_id: String,
    /// The field left as it was; `None` when the whole customer was (it changed
    /// after the cleanse read it).
    pub field: Option<CustomerField>,
    /// The value that could not be written.
    pub value: String,
    pub reason: String,
}

/// What a batch wrote (or, rehearsed, would write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanseOutcome {
    /// Customers rewritten.
    pub written: u64,
    pub conflicts: Vec<CleanseConflict>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = cleanse_field_counts)]
pub(crate) struct FieldCountRow {
    job_id: String,
    field: String,
    changed: i64,
    duplicates_removed: i64,
    unfixable: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = cleanse_unfixable)]
pub(crate) struct UnfixableRow {
    job_id: String,
    seq: i64,
    customer_id: String,
    field: String,
    value: String,
    reason: String,
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

fn field_of(path: &str, row: &str) -> StoreResult<CustomerField> {
    match CustomerField::from_path(path) {
        Some([field]) => Ok(*field),
        _ => Err(StoreError::Corrupt(format!(
            "{row}: unknown customer field {path:?}"
        ))),
    }
}

/// Leaves list values that another customer already holds as they were: the
/// whole list keeps its old value, and each colliding value is reported.
/// `held` maps a value to the customers holding it before this batch; `claimed`
/// collects the values earlier customers of the batch take.
fn keep_colliding<'a>(
    update: &'a CleanseUpdate,
    list: fn(&CustomerFields) -> &Vec<String>,
    field: CustomerField,
    held: &HashMap<String, Vec<String>>,
    claimed: &mut HashMap<&'a str, &'a str>,
) -> Vec<CleanseConflict> {
    let old = list(&update.before);
    let new: Vec<&str> = list(&update.after)
        .iter()
        .filter(|value| !old.contains(value))
        .map(String::as_str)
        .collect();
    let mut conflicts = Vec::new();
    for value in &new {
        let holder = held
            .get(*value)
            .and_then(|holders| holders.iter().find(|h| **h != update.customer_id))
            .map(String::as_str)
            .or_else(|| {
                claimed
                    .get(value)
                    .copied()
                    .filter(|h| *h != update.customer_id)
            });
        if let Some(holder) = holder {
            conflicts.push(CleanseConflict {
                customer_id: update.customer_id.clone(),
                field: Some(field),
                value: (*value).to_owned(),
                reason: format!(
                    "its standard form {value} already belongs to customer {holder}; left as it was"
                ),
            });
        }
    }
    if conflicts.is_empty() {
        for value in new {
            claimed.insert(value, &update.customer_id);
        }
    }
    conflicts
}

impl Store {
    /// How many customers there are (the scan's length, for its progress).
    pub async fn count_customers(&self) -> StoreResult<u64> {
        let count: i64 = with_conn!(self, |conn| {
            customers::table.count().get_result(conn).await?
        });
        Ok(as_u64(count))
    }

    /// Up to `limit` customers with ids after `after`, in id order.
    pub async fn customers_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Customer>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<CustomerRow> = with_conn!(self, |conn| {
            let mut query = customers::table
                .order(customers::id)
                .limit(limit)
                .select(CustomerRow::as_select())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(customers::id.gt(after.to_owned()));
            }
            conn.load_rows(query).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// Writes cleansed customers in one transaction, each with one field-history row
    /// per changed field (source `cleanse`, `source_ref` the job). Customers are
    /// locked and re-read first: one changed since the cleanse read it is left alone
    /// and reported; a phone or email whose standard form another customer holds
    /// keeps the field as it was and is reported; a customer deleted meanwhile is
    /// skipped. A dry run does all of it and rolls back.
    pub async fn cleanse_batch(
        &self,
        updates: &[CleanseUpdate],
        settings: &CleanseSettings,
    ) -> StoreResult<CleanseOutcome> {
        if updates.is_empty() {
            return Ok(CleanseOutcome::default());
        }
        let mut ids: Vec<String> = updates.iter().map(|u| u.customer_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let new_values = |list: fn(&CustomerFields) -> &Vec<String>| -> Vec<String> {
            updates
                .iter()
                .flat_map(|u| {
                    list(&u.after)
                        .iter()
                        .filter(|value| !list(&u.before).contains(value))
                        .cloned()
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let new_phones = new_values(|f| &f.phones);
        let new_emails = new_values(|f| &f.emails);
        rehearsable_transaction!(self, !settings.dry_run, |conn| {
            for chunk in ids.chunks(IN_CHUNK) {
                conn.lock_customers(chunk).await?;
            }
            let stored: HashMap<String, Customer> = conn
                .load_customers(&ids)
                .await?
                .into_iter()
                .map(|customer| (customer.id.clone(), customer))
                .collect();
            let mut phone_holders: HashMap<String, Vec<String>> = HashMap::new();
            for chunk in new_phones.chunks(IN_CHUNK) {
                let rows: Vec<(String, String)> = customer_phones::table
                    .filter(ids_in(customer_phones::phone, chunk))
                    .select((customer_phones::phone, customer_phones::customer_id))
                    .load(conn)
                    .await?;
                for (phone, customer_id) in rows {
                    phone_holders.entry(phone).or_default().push(customer_id);
                }
            }
            let mut email_holders: HashMap<String, Vec<String>> = HashMap::new();
            for chunk in new_emails.chunks(IN_CHUNK) {
                let rows: Vec<(String, String)> = customer_emails::table
                    .filter(ids_in(customer_emails::email, chunk))
                    .select((customer_emails::email, customer_emails::customer_id))
                    .load(conn)
                    .await?;
                for (email, customer_id) in rows {
                    email_holders.entry(email).or_default().push(customer_id);
                }
            }
            let at = now();
            let origin = ChangeOrigin {
                source: FieldSource::Cleanse,
                source_ref: &settings.job_id,
                actor: &settings.actor,
                at,
            };
            let mut outcome = CleanseOutcome::default();
            let mut claimed_phones = HashMap::new();
            let mut claimed_emails = HashMap::new();
            let mut changed = Vec::new();
            let mut before = HashMap::new();
            let mut history = Vec::new();
            for update in updates {
                let Some(customer) = stored.get(&update.customer_id) else {
                    continue;
                };
                if customer.fields != update.before {
                    outcome.conflicts.push(CleanseConflict {
                        customer_id: update.customer_id.clone(),
                        field: None,
                        value: String::new(),
                        reason: "changed after the cleanse read it; left as it is now (run the cleanse again)".to_owned(),
                    });
                    continue;
                }
                let mut after = update.after.clone();
                let phones = keep_colliding(
                    update,
                    |f| &f.phones,
                    CustomerField::Phones,
                    &phone_holders,
                    &mut claimed_phones,
                );
                if !phones.is_empty() {
                    after.phones.clone_from(&update.before.phones);
                }
                let emails = keep_colliding(
                    update,
                    |f| &f.emails,
                    CustomerField::Emails,
                    &email_holders,
                    &mut claimed_emails,
                );
                if !emails.is_empty() {
                    after.emails.clone_from(&update.before.emails);
                }
                outcome.conflicts.extend(phones);
                outcome.conflicts.extend(emails);
                let changes = after.changes_since(&update.before);
                if changes.is_empty() {
                    continue;
                }
                history.extend(history_rows(&update.customer_id, changes, origin));
                before.insert(update.customer_id.clone(), update.before.clone());
                changed.push(Customer {
                    fields: after,
                    updated_at: at,
                    ..customer.clone()
                });
            }
            conn.rewrite_customers(&changed, &before).await?;
            conn.insert_field_history_rows(&history).await?;
            outcome.written = changed.len() as u64;
            Ok(outcome)
        })
    }

    /// Replaces a cleanse job's per-field counts (saved with its progress).
    pub async fn save_cleanse_counts(
        &self,
        job_id: &str,
        counts: &[CleanseFieldCounts],
    ) -> StoreResult<()> {
        let rows: Vec<FieldCountRow> = counts
            .iter()
            .map(|count| FieldCountRow {
                job_id: job_id.to_owned(),
                field: count.field.path().to_owned(),
                changed: as_i64(count.changed),
                duplicates_removed: as_i64(count.duplicates_removed),
                unfixable: as_i64(count.unfixable),
            })
            .collect();
        write_transaction!(self, |conn| {
            diesel::delete(
                cleanse_field_counts::table.filter(cleanse_field_counts::job_id.eq(job_id)),
            )
            .execute(conn)
            .await?;
            conn.insert_cleanse_count_rows(&rows).await?;
            Ok(())
        })
    }

    /// Appends values a cleanse left as they were; `first_seq` numbers the first of them.
    pub async fn add_cleanse_unfixable(
        &self,
        job_id: &str,
        first_seq: u64,
        values: &[UnfixableValue],
    ) -> StoreResult<()> {
        if values.is_empty() {
            return Ok(());
        }
        let rows: Vec<UnfixableRow> = values
            .iter()
            .zip(first_seq..)
            .map(|(value, seq)| UnfixableRow {
                job_id: job_id.to_owned(),
                seq: as_i64(seq),
                customer_id: value.customer_id.clone(),
                field: value.field.path().to_owned(),
                value: value.value.clone(),
                reason: value.reason.chars().take(1000).collect(),
            })
            .collect();
        write_transaction!(self, |conn| {
            conn.insert_cleanse_unfixable_rows(&rows).await?;
            Ok(())
        })
    }

    /// A cleanse job's per-field counts, in field order.
    pub async fn cleanse_counts(&self, job_id: &str) -> StoreResult<Vec<CleanseFieldCounts>> {
        let rows: Vec<FieldCountRow> = with_conn!(self, |conn| {
            cleanse_field_counts::table
                .filter(cleanse_field_counts::job_id.eq(job_id))
                .select(FieldCountRow::as_select())
                .load(conn)
                .await?
        });
        let mut counts = rows
            .into_iter()
            .map(|row| {
                Ok(CleanseFieldCounts {
                    field: field_of(&row.field, &format!("cleanse job {job_id}"))?,
                    changed: as_u64(row.changed),
                    duplicates_removed: as_u64(row.duplicates_removed),
                    unfixable: as_u64(row.unfixable),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        counts.sort_by_key(|count| count.field);
        Ok(counts)
    }

    /// The values a cleanse job left as they were, in the order it saw them.
    pub async fn cleanse_unfixable(
        &self,
        job_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UnfixableValue>> {
        let after: Option<i64> = match &page.after {
            Some(token) => Some(token.parse().map_err(|_| {
                tagd_core::DomainError::invalid("page_token", "is not a token this service issued")
            })?),
            None => None,
        };
        let mut rows: Vec<UnfixableRow> = with_conn!(self, |conn| {
            let mut query = cleanse_unfixable::table
                .filter(cleanse_unfixable::job_id.eq(job_id))
                .order(cleanse_unfixable::seq)
                .limit(page_limit(page))
                .select(UnfixableRow::as_select())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(cleanse_unfixable::seq.gt(after));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.seq.to_string());
        Ok(Page {
            items: rows
                .into_iter()
                .map(|row| {
                    Ok(UnfixableValue {
                        field: field_of(&row.field, &format!("cleanse job {job_id}"))?,
                        customer_id: row.customer_id,
                        value: row.value,
                        reason: row.reason,
                    })
                })
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, before: &[&str], after: &[&str]) -> CleanseUpdate {
        let phones = |list: &[&str]| CustomerFields {
            phones: list.iter().map(|p| (*p).to_owned()).collect(),
            ..CustomerFields::default()
        };
        CleanseUpdate {
            customer_id: id.to_owned(),
            before: phones(before),
            after: phones(after),
        }
    }

    #[test]
    fn a_standard_form_another_customer_holds_is_not_taken() {
        let held = HashMap::from([("+8613800138000".to_owned(), vec!["b".to_owned()])]);
        let mut claimed = HashMap::new();
        let a = update("a", &["138-0013-8000"], &["+8613800138000"]);
        let conflicts = keep_colliding(
            &a,
            |f| &f.phones,
            CustomerField::Phones,
            &held,
            &mut claimed,
        );
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].reason.contains("customer b"), "{conflicts:?}");
        assert!(claimed.is_empty());
    }

    #[test]
    fn two_customers_of_one_batch_cannot_both_take_a_value() {
        let held = HashMap::new();
        let mut claimed = HashMap::new();
        let a = update("a", &["138-0013-8000"], &["+8613800138000"]);
        let b = update("b", &["138 0013 8000"], &["+8613800138000"]);
        let c = update("c", &["+8613800138000"], &["+8613800138000"]);
        assert!(
            keep_colliding(
                &a,
                |f| &f.phones,
                CustomerField::Phones,
                &held,
                &mut claimed
            )
            .is_empty()
        );
        let second = keep_colliding(
            &b,
            |f| &f.phones,
            CustomerField::Phones,
            &held,
            &mut claimed,
        );
        assert_eq!(second.len(), 1);
        assert!(second[0].reason.contains("customer a"));
        // A value the customer held already is not new: nothing to check.
        assert!(
            keep_colliding(
                &c,
                |f| &f.phones,
                CustomerField::Phones,
                &held,
                &mut claimed
            )
            .is_empty()
        );
    }
}
