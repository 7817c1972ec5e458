//! Columns the application computes, filled in for rows written before a
//! migration added them: SQL cannot compute them itself (a name's pinyin
//! needs the pinyin tables in `tagd-match`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Store;
use crate::db::{with_conn, write_transaction};
use crate::error::StoreResult;
use crate::schema::customers;

/// Rows filled per transaction: short enough that a server starting beside a
/// busy one never holds the writer for long.
const PAGE: i64 = 2_000;

impl Store {
    /// Fills every column a migration left NULL for the application to
    /// compute; returns how many rows it filled. Idempotent, and safe while
    /// another server does the same.
    pub(crate) async fn backfill(&self) -> StoreResult<u64> {
        let mut filled = 0u64;
        loop {
            let page: Vec<(String, String)> = with_conn!(self, |conn| {
                customers::table
                    .filter(customers::name_pinyin.is_null())
                    // Any page will do: an order would sort every row still to fill, per page.
                    .select((customers::id, customers::name))
                    .limit(PAGE)
                    .load(conn)
                    .await?
            });
            if page.is_empty() {
                return Ok(filled);
            }
            let keys: Vec<(String, String, String)> = page
                .into_iter()
                .map(|(id, name)| {
                    let key = tagd_match::name_pinyin(&name);
                    (id, name, key)
                })
                .collect();
            let rows = write_transaction!(self, |conn| {
                let mut rows = 0u64;
                for (id, name, key) in &keys {
                    // Only where the name is still the one read and no writer has stored a key
                    // since: a row renamed meanwhile is read again by the next page. The
                    // customer did not change, so `updated_at` stays.
                    let updated = diesel::update(
                        customers::table
                            .find(id)
                            .filter(customers::name.eq(name))
                            .filter(customers::name_pinyin.is_null()),
                    )
                    .set(customers::name_pinyin.eq(Some(key)))
                    .execute(conn)
                    .await?;
                    rows += updated as u64;
                }
                Ok(rows)
            })?;
            filled += rows;
            if filled % 100_000 < PAGE as u64 {
                tracing::info!(filled, "customer name pinyin keys filled in");
            }
        }
    }
}
