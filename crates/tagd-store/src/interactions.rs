//! Interactions (沟通记录) as stored: known by their content (customer, time,
//! channel, staff, summary), so a contact imported or recorded twice is
//! stored once; follow-ups due are read across customers.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::ids::new_id;
use tagd_core::interactions::{Interaction, RecordedInteraction};
use tagd_core::paging::{
    PageRequest, date_key, finish_page, parse_date_key, parse_time_key, time_key,
};

use crate::customers::CustomerQueries as _;
use crate::db::{
    BackendOps, BatchInsert, IN_CHUNK, MysqlConn, SqliteConn, now, truncate_to_micros, with_conn,
    write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::schema::interactions;
use crate::tags::page_limit;
use crate::{Page, Store};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = interactions, treat_none_as_default_value = false)]
pub(crate) struct InteractionRow {
    id: String,
    customer_id: String,
    occurred_at: NaiveDateTime,
    channel: String,
    direction: String,
    staff: String,
    summary: String,
    outcome: String,
    next_follow_up: Option<NaiveDate>,
    content_key: String,
    source_ref: String,
    created_at: NaiveDateTime,
}

fn to_row(
    key: String,
    customer_id: &str,
    interaction: &Interaction,
    source_ref: &str,
    at: NaiveDateTime,
) -> InteractionRow {
    InteractionRow {
        id: new_id(),
        customer_id: customer_id.to_owned(),
        occurred_at: interaction.occurred_at,
        channel: interaction.channel.as_str().to_owned(),
        direction: interaction.direction.clone(),
        staff: interaction.staff.clone(),
        summary: interaction.summary.clone(),
        outcome: interaction.outcome.clone(),
        next_follow_up: interaction.next_follow_up,
        content_key: key,
        source_ref: source_ref.to_owned(),
        created_at: at,
    }
}

fn from_row(row: InteractionRow) -> StoreResult<RecordedInteraction> {
    let channel = row
        .channel
        .parse()
        .map_err(|e: String| StoreError::Corrupt(format!("interaction {}: {e}", row.id)))?;
    Ok(RecordedInteraction {
        interaction: Interaction {
            occurred_at: row.occurred_at,
            channel,
            direction: row.direction,
            staff: row.staff,
            summary: row.summary,
            outcome: row.outcome,
            next_follow_up: row.next_follow_up,
        },
        id: row.id,
        customer_id: row.customer_id,
        source_ref: row.source_ref,
        recorded_at: row.created_at,
    })
}

/// Interaction writes, compiled for each backend's connection.
pub(crate) trait InteractionQueries {
    /// Adds the interactions not stored yet; returns how many were added.
    async fn add_interactions(
        &mut self,
        interactions: &[(String, Interaction)],
        source_ref: &str,
    ) -> StoreResult<u64>;
}

macro_rules! interaction_queries {
    ($conn:ty) => {
        impl InteractionQueries for $conn {
            async fn add_interactions(
                &mut self,
                wanted: &[(String, Interaction)],
                source_ref: &str,
            ) -> StoreResult<u64> {
                let keyed: Vec<(String, &String, &Interaction)> = wanted
                    .iter()
                    .map(|(customer_id, interaction)| {
                        (
                            interaction.content_key(customer_id),
                            customer_id,
                            interaction,
                        )
                    })
                    .collect();
                let keys: Vec<&str> = keyed.iter().map(|(key, _, _)| key.as_str()).collect();
                let mut known: HashSet<String> = HashSet::new();
                for chunk in keys.chunks(IN_CHUNK) {
                    let found: Vec<String> = interactions::table
                        .filter(ids_in(interactions::content_key, chunk))
                        .select(interactions::content_key)
                        .load(self)
                        .await?;
                    known.extend(found);
                }
                let at = now();
                let mut rows = Vec::new();
                for (key, customer_id, interaction) in keyed {
                    if !known.insert(key.clone()) {
                        continue;
                    }
                    rows.push(to_row(key, customer_id, interaction, source_ref, at));
                }
                self.insert_interaction_rows(&rows).await?;
                Ok(rows.len() as u64)
            }
        }
    };
}

interaction_queries!(SqliteConn);
interaction_queries!(MysqlConn);

/// Keeps only interactions with no later one for the same customer: a later
/// contact supersedes the follow-up an earlier one planned. Plain SQL because
/// Diesel's DSL cannot refer to the outer row from a subquery; the text is
/// the same on both backends.
fn is_latest_of_its_customer() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>(
        "NOT EXISTS (SELECT 1 FROM interactions later \
         WHERE later.customer_id = interactions.customer_id \
         AND later.occurred_at > interactions.occurred_at)",
    )
}

impl Store {
    /// Records one interaction; the same contact sent again (same customer,
    /// time, channel, staff and summary) is not stored twice: the stored one
    /// is returned with `false`.
    pub async fn record_interaction(
        &self,
        customer_id: &str,
        interaction: &Interaction,
    ) -> StoreResult<(RecordedInteraction, bool)> {
        let mut interaction = interaction.clone();
        // Stored times keep microseconds (MySQL DATETIME(6)); key and store the same.
        interaction.occurred_at = truncate_to_micros(interaction.occurred_at);
        let interaction = &interaction;
        write_transaction!(self, |conn| {
            // Locked so a concurrent DeleteCustomer cannot leave the row without its customer.
            if conn
                .lock_customers(&[customer_id.to_owned()])
                .await?
                .is_empty()
            {
                return Err(
                    StoreError::not_found("customer", customer_id).at("interaction.customer_id")
                );
            }
            let key = interaction.content_key(customer_id);
            let stored: Option<InteractionRow> = interactions::table
                .filter(interactions::content_key.eq(&key))
                .select(InteractionRow::as_select())
                .get_result(conn)
                .await
                .optional()?;
            if let Some(row) = stored {
                return Ok((from_row(row)?, false));
            }
            let row = to_row(key, customer_id, interaction, "", now());
            conn.insert_interaction_rows(std::slice::from_ref(&row))
                .await?;
            Ok((from_row(row)?, true))
        })
    }

    /// The customer's interactions, newest first.
    pub async fn list_interactions(
        &self,
        customer_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<RecordedInteraction>> {
        let after = page.after.as_deref().map(parse_time_key).transpose()?;
        let mut rows: Vec<InteractionRow> = with_conn!(self, |conn| {
            conn.require_customer(customer_id).await?;
            let mut query = interactions::table
                .filter(interactions::customer_id.eq(customer_id))
                .order((interactions::occurred_at.desc(), interactions::id.desc()))
                .limit(page_limit(page))
                .select(InteractionRow::as_select())
                .into_boxed();
            if let Some((time, id)) = &after {
                query = query.filter(
                    interactions::occurred_at
                        .lt(*time)
                        .or(interactions::occurred_at
                            .eq(*time)
                            .and(interactions::id.lt(id.clone()))),
                );
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| {
            time_key(row.occurred_at, &row.id)
        });
        Ok(Page {
            items: rows.into_iter().map(from_row).collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    /// Follow-ups dated before `before` across customers, oldest due first;
    /// only each customer's latest interaction counts (a later contact closes
    /// the follow-up an earlier one planned).
    pub async fn due_follow_ups(
        &self,
        before: NaiveDate,
        page: &PageRequest,
    ) -> StoreResult<Page<RecordedInteraction>> {
        let after = page.after.as_deref().map(parse_date_key).transpose()?;
        let mut rows: Vec<InteractionRow> = with_conn!(self, |conn| {
            let mut query = interactions::table
                .filter(interactions::next_follow_up.lt(before))
                .filter(is_latest_of_its_customer())
                .order((interactions::next_follow_up.asc(), interactions::id.asc()))
                .limit(page_limit(page))
                .select(InteractionRow::as_select())
                .into_boxed();
            if let Some((date, id)) = &after {
                query = query.filter(
                    interactions::next_follow_up
                        .gt(*date)
                        .or(interactions::next_follow_up
                            .eq(*date)
                            .and(interactions::id.gt(id.clone()))),
                );
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| {
            // Always set: the query keeps only rows with a follow-up date.
            date_key(row.next_follow_up.unwrap_or_default(), &row.id)
        });
        Ok(Page {
            items: rows.into_iter().map(from_row).collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }
}
