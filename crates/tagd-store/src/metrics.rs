//! The stored activity customer metrics are computed from: a customer's
//! orders with their item categories, and the time of the last interaction.
//! Read from the purchases and interactions tables on every call, so the
//! metrics are never stale.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::metrics::{Activity, Order};

use crate::Store;
use crate::customers::CustomerQueries as _;
use crate::db::{IN_CHUNK, with_conn};
use crate::error::StoreResult;
use crate::ids_in::ids_in;
use crate::schema::{interactions, purchase_items, purchases};

impl Store {
    /// The customer's orders (time, currency, total, item categories) and last interaction.
    pub async fn customer_activity(&self, customer_id: &str) -> StoreResult<Activity> {
        let activity = with_conn!(self, |conn| {
            conn.require_customer(customer_id).await?;
            let orders: Vec<(String, NaiveDateTime, String, i64)> = purchases::table
                .filter(purchases::customer_id.eq(customer_id))
                .select((
                    purchases::id,
                    purchases::ordered_at,
                    purchases::currency,
                    purchases::total_cents,
                ))
                .load(conn)
                .await?;
            let items: Vec<(String, String)> = purchase_items::table
                .filter(purchase_items::customer_id.eq(customer_id))
                .select((purchase_items::purchase_id, purchase_items::category))
                .load(conn)
                .await?;
            let last_interaction_at: Option<NaiveDateTime> = interactions::table
                .filter(interactions::customer_id.eq(customer_id))
                .select(diesel::dsl::max(interactions::occurred_at))
                .get_result(conn)
                .await?;
            let mut categories = categories_by_order(items);
            Activity {
                orders: orders
                    .into_iter()
                    .map(|(id, ordered_at, currency, total_cents)| {
                        order(&mut categories, id, ordered_at, currency, total_cents)
                    })
                    .collect(),
                last_interaction_at,
            }
        });
        Ok(activity)
    }

    /// The activity of many customers at once (three statements per 1,000 customers, where
    /// [`Store::customer_activity`] takes four per customer): what a condition on metrics
    /// evaluated over everyone needs. Customers without orders or interactions get an empty
    /// activity; unknown ids are left out.
    pub async fn customers_activity(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<HashMap<String, Activity>> {
        type OrderRow = (String, String, NaiveDateTime, String, i64);
        let mut activities: HashMap<String, Activity> = HashMap::with_capacity(customer_ids.len());
        for chunk in customer_ids.chunks(IN_CHUNK) {
            let (orders, items, last_interactions) = with_conn!(self, |conn| {
                let orders: Vec<OrderRow> = purchases::table
                    .filter(ids_in(purchases::customer_id, chunk))
                    .select((
                        purchases::customer_id,
                        purchases::id,
                        purchases::ordered_at,
                        purchases::currency,
                        purchases::total_cents,
                    ))
                    .load(conn)
                    .await?;
                let items: Vec<(String, String)> = purchase_items::table
                    .filter(ids_in(purchase_items::customer_id, chunk))
                    .select((purchase_items::purchase_id, purchase_items::category))
                    .load(conn)
                    .await?;
                let last_interactions: Vec<(String, Option<NaiveDateTime>)> = interactions::table
                    .filter(ids_in(interactions::customer_id, chunk))
                    .group_by(interactions::customer_id)
                    .select((
                        interactions::customer_id,
                        diesel::dsl::max(interactions::occurred_at),
                    ))
                    .load(conn)
                    .await?;
                (orders, items, last_interactions)
            });
            let mut categories = categories_by_order(items);
            for id in chunk {
                activities.entry(id.clone()).or_insert_with(|| Activity {
                    orders: Vec::new(),
                    last_interaction_at: None,
                });
            }
            for (customer_id, id, ordered_at, currency, total_cents) in orders {
                if let Some(activity) = activities.get_mut(&customer_id) {
                    activity.orders.push(order(
                        &mut categories,
                        id,
                        ordered_at,
                        currency,
                        total_cents,
                    ));
                }
            }
            for (customer_id, last) in last_interactions {
                if let Some(activity) = activities.get_mut(&customer_id) {
                    activity.last_interaction_at = last;
                }
            }
        }
        Ok(activities)
    }
}

/// Item categories by purchase id.
fn categories_by_order(items: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut categories: HashMap<String, Vec<String>> = HashMap::new();
    for (purchase_id, category) in items {
        categories.entry(purchase_id).or_default().push(category);
    }
    categories
}

/// An order with its item categories (taken from `categories`).
fn order(
    categories: &mut HashMap<String, Vec<String>>,
    id: String,
    ordered_at: NaiveDateTime,
    currency: String,
    total_cents: i64,
) -> Order {
    Order {
        categories: categories.remove(&id).unwrap_or_default(),
        ordered_at,
        currency,
        total_cents,
    }
}
