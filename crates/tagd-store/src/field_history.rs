//! Customer field history: the value each field had before a cleanse, merge, import
//! or person replaced it, so that every change can be traced. Written in the
//! transaction that makes the change; deleted with the customer.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::customers::{CustomerField, FieldHistoryEntry, FieldSource};
use tagd_core::ids::new_id;
use tagd_core::paging::{PageRequest, finish_page};

use crate::customers::CustomerQueries as _;
use crate::db::with_conn;
use crate::error::{StoreError, StoreResult};
use crate::schema::customer_field_history;
use crate::tags::page_limit;
use crate::{Page, Store};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = customer_field_history)]
pub(crate) struct FieldHistoryRow {
    id: String,
    customer_id: String,
    field: String,
    old_value: String,
    new_value: String,
    source: String,
    source_ref: String,
    actor: String,
    changed_at: NaiveDateTime,
}

/// Who changed a customer's fields, and through what.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChangeOrigin<'a> {
    pub source: FieldSource,
    pub source_ref: &'a str,
    pub actor: &'a str,
    pub at: NaiveDateTime,
}

/// One history row per changed field (as [`CustomerFields::changes_since`] lists them).
///
/// [`CustomerFields::changes_since`]: tagd_core::customers::CustomerFields::changes_since
pub(crate) fn history_rows(
    customer_id: &str,
    changes: Vec<(CustomerField, String, String)>,
    origin: ChangeOrigin<'_>,
) -> impl Iterator<Item = FieldHistoryRow> {
    changes
        .into_iter()
        .map(move |(field, old, new)| FieldHistoryRow {
            id: new_id(),
            customer_id: customer_id.to_owned(),
            field: field.path().to_owned(),
            old_value: old,
            new_value: new,
            source: origin.source.as_str().to_owned(),
            source_ref: origin.source_ref.to_owned(),
            actor: origin.actor.to_owned(),
            changed_at: origin.at,
        })
}

impl FieldHistoryRow {
    fn into_entry(self) -> StoreResult<FieldHistoryEntry> {
        let corrupt = |e: String| StoreError::Corrupt(format!("field history {}: {e}", self.id));
        let field = match CustomerField::from_path(&self.field) {
            Some([field]) => *field,
            _ => return Err(corrupt(format!("unknown field {:?}", self.field))),
        };
        Ok(FieldHistoryEntry {
            source: self.source.parse().map_err(corrupt)?,
            id: self.id,
            customer_id: self.customer_id,
            field,
            old_value: self.old_value,
            new_value: self.new_value,
            source_ref: self.source_ref,
            actor: self.actor,
            changed_at: self.changed_at,
        })
    }
}

impl Store {
    /// The customer's field history, newest first.
    pub async fn field_history(
        &self,
        customer_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<FieldHistoryEntry>> {
        let mut rows: Vec<FieldHistoryRow> = with_conn!(self, |conn| {
            conn.require_customer(customer_id).await?;
            let mut query = customer_field_history::table
                .filter(customer_field_history::customer_id.eq(customer_id))
                .order(customer_field_history::id.desc())
                .limit(page_limit(page))
                .select(FieldHistoryRow::as_select())
                .into_boxed();
            if let Some(before) = &page.after {
                query = query.filter(customer_field_history::id.lt(before.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows
                .into_iter()
                .map(FieldHistoryRow::into_entry)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }
}
