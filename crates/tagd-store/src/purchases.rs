//! Purchases and interactions as stored: written idempotently (an order is
//! known by its channel and order id, an interaction by its content), so a
//! source imported twice adds nothing the second time.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::ids::new_id;
use tagd_core::interactions::Interaction;
use tagd_core::purchases::Purchase;

use crate::db::{BatchInsert, IN_CHUNK, MysqlConn, SqliteConn, now};
use crate::error::StoreResult;
use crate::schema::{interactions, purchase_items, purchases};

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = purchases)]
pub(crate) struct PurchaseRow {
    id: String,
    customer_id: String,
    channel: String,
    order_id: String,
    ordered_at: NaiveDateTime,
    currency: String,
    total_cents: i64,
    status: String,
    source_ref: String,
    created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = purchase_items)]
pub(crate) struct PurchaseItemRow {
    purchase_id: String,
    position: i32,
    customer_id: String,
    product_id: String,
    name: String,
    category: String,
    quantity: i64,
    unit_price_cents: i64,
    ordered_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
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
    next_follow_up: Option<chrono::NaiveDate>,
    content_key: String,
    source_ref: String,
    created_at: NaiveDateTime,
}

/// Purchase and interaction writes, compiled for each backend's connection.
pub(crate) trait ActivityQueries {
    /// Adds the orders not stored yet; returns how many were added.
    async fn add_purchases(
        &mut self,
        purchases: &[(String, Purchase)],
        source_ref: &str,
    ) -> StoreResult<u64>;
    /// Adds the interactions not stored yet; returns how many were added.
    async fn add_interactions(
        &mut self,
        interactions: &[(String, Interaction)],
        source_ref: &str,
    ) -> StoreResult<u64>;
}

macro_rules! activity_queries {
    ($conn:ty) => {
        impl ActivityQueries for $conn {
            async fn add_purchases(
                &mut self,
                wanted: &[(String, Purchase)],
                source_ref: &str,
            ) -> StoreResult<u64> {
                let mut by_channel: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
                for (_, purchase) in wanted {
                    by_channel
                        .entry(purchase.channel.as_str())
                        .or_default()
                        .insert(purchase.order_id.as_str());
                }
                let mut known: HashSet<(String, String)> = HashSet::new();
                for (channel, order_ids) in &by_channel {
                    let order_ids: Vec<&str> = order_ids.iter().copied().collect();
                    for chunk in order_ids.chunks(IN_CHUNK) {
                        let found: Vec<String> = purchases::table
                            .filter(purchases::channel.eq(*channel))
                            .filter(purchases::order_id.eq_any(chunk))
                            .select(purchases::order_id)
                            .load(self)
                            .await?;
                        known.extend(found.into_iter().map(|id| ((*channel).to_owned(), id)));
                    }
                }
                let at = now();
                let mut rows = Vec::new();
                let mut items = Vec::new();
                for (customer_id, purchase) in wanted {
                    // `insert` also skips an order given twice in one batch.
                    if !known.insert((purchase.channel.clone(), purchase.order_id.clone())) {
                        continue;
                    }
                    let id = new_id();
                    for (position, item) in purchase.items.iter().enumerate() {
                        items.push(PurchaseItemRow {
                            purchase_id: id.clone(),
                            position: i32::try_from(position).unwrap_or(i32::MAX),
                            customer_id: customer_id.clone(),
                            product_id: item.product_id.clone(),
                            name: item.name.clone(),
                            category: item.category.clone(),
                            quantity: item.quantity,
                            unit_price_cents: item.unit_price_cents,
                            ordered_at: purchase.ordered_at,
                        });
                    }
                    rows.push(PurchaseRow {
                        id,
                        customer_id: customer_id.clone(),
                        channel: purchase.channel.clone(),
                        order_id: purchase.order_id.clone(),
                        ordered_at: purchase.ordered_at,
                        currency: purchase.currency.clone(),
                        total_cents: purchase.total_cents,
                        status: purchase.status.clone(),
                        source_ref: source_ref.to_owned(),
                        created_at: at,
                    });
                }
                self.insert_purchase_rows(&rows).await?;
                self.insert_purchase_item_rows(&items).await?;
                Ok(rows.len() as u64)
            }

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
                        .filter(interactions::content_key.eq_any(chunk))
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
                    rows.push(InteractionRow {
                        id: new_id(),
                        customer_id: customer_id.clone(),
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
                    });
                }
                self.insert_interaction_rows(&rows).await?;
                Ok(rows.len() as u64)
            }
        }
    };
}

activity_queries!(SqliteConn);
activity_queries!(MysqlConn);
