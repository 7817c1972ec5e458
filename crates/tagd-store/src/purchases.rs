//! Purchases (orders with their items) as stored: known by channel and order
//! id, so an order imported or recorded twice is stored once; an order sent
//! again with other content is refused rather than silently rewritten.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::DomainError;
use tagd_core::ids::new_id;
use tagd_core::paging::{PageRequest, finish_page, parse_time_key, time_key};
use tagd_core::purchases::{Purchase, PurchaseItem, RecordOutcome, RecordedPurchase, differences};

use crate::customers::CustomerQueries as _;
use crate::db::{
    BackendOps, BatchInsert, IN_CHUNK, MysqlConn, SqliteConn, now, truncate_to_micros, with_conn,
    write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::schema::{purchase_items, purchases};
use crate::tags::page_limit;
use crate::{Page, Store};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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

/// The rows that store one order.
fn to_rows(
    customer_id: &str,
    purchase: &Purchase,
    source_ref: &str,
    at: NaiveDateTime,
) -> (PurchaseRow, Vec<PurchaseItemRow>) {
    let id = new_id();
    let items = purchase
        .items
        .iter()
        .enumerate()
        .map(|(position, item)| PurchaseItemRow {
            purchase_id: id.clone(),
            position: i32::try_from(position).unwrap_or(i32::MAX),
            customer_id: customer_id.to_owned(),
            product_id: item.product_id.clone(),
            name: item.name.clone(),
            category: item.category.clone(),
            quantity: item.quantity,
            unit_price_cents: item.unit_price_cents,
            ordered_at: purchase.ordered_at,
        })
        .collect();
    let row = PurchaseRow {
        id,
        customer_id: customer_id.to_owned(),
        channel: purchase.channel.clone(),
        order_id: purchase.order_id.clone(),
        ordered_at: purchase.ordered_at,
        currency: purchase.currency.clone(),
        total_cents: purchase.total_cents,
        status: purchase.status.clone(),
        source_ref: source_ref.to_owned(),
        created_at: at,
    };
    (row, items)
}

/// An order from its row and its item rows (in position order).
fn from_rows(row: PurchaseRow, items: Vec<PurchaseItemRow>) -> RecordedPurchase {
    RecordedPurchase {
        purchase: Purchase {
            channel: row.channel,
            order_id: row.order_id,
            ordered_at: row.ordered_at,
            currency: row.currency,
            total_cents: row.total_cents,
            status: row.status,
            items: items
                .into_iter()
                .map(|item| PurchaseItem {
                    product_id: item.product_id,
                    name: item.name,
                    category: item.category,
                    quantity: item.quantity,
                    unit_price_cents: item.unit_price_cents,
                })
                .collect(),
        },
        id: row.id,
        customer_id: row.customer_id,
        source_ref: row.source_ref,
        recorded_at: row.created_at,
    }
}

/// Purchase queries, written once and compiled for each backend's connection.
pub(crate) trait PurchaseQueries {
    /// Adds the orders not stored yet (an import); returns how many were added.
    async fn add_purchases(
        &mut self,
        purchases: &[(String, Purchase)],
        source_ref: &str,
    ) -> StoreResult<u64>;
    /// The rows of the stored orders among `wanted` (without their items).
    async fn stored_order_rows(
        &mut self,
        wanted: &[(String, Purchase)],
    ) -> StoreResult<Vec<PurchaseRow>>;
    /// The orders of these rows with their items, in the rows' order.
    async fn with_items(&mut self, rows: Vec<PurchaseRow>) -> StoreResult<Vec<RecordedPurchase>>;
    /// Records orders for the API (see [`Store::record_purchases`]).
    async fn record_orders(
        &mut self,
        wanted: &[(String, Purchase)],
    ) -> StoreResult<Vec<(String, RecordOutcome)>>;
}

macro_rules! purchase_queries {
    ($conn:ty) => {
        impl PurchaseQueries for $conn {
            async fn add_purchases(
                &mut self,
                wanted: &[(String, Purchase)],
                source_ref: &str,
            ) -> StoreResult<u64> {
                // Only the keys matter here: an import skips orders it already has.
                let mut known: HashSet<(String, String)> = self
                    .stored_order_rows(wanted)
                    .await?
                    .into_iter()
                    .map(|row| (row.channel, row.order_id))
                    .collect();
                let at = now();
                let mut rows = Vec::new();
                let mut items = Vec::new();
                for (customer_id, purchase) in wanted {
                    // `insert` also skips an order given twice in one batch.
                    if !known.insert((purchase.channel.clone(), purchase.order_id.clone())) {
                        continue;
                    }
                    let (row, item_rows) = to_rows(customer_id, purchase, source_ref, at);
                    rows.push(row);
                    items.extend(item_rows);
                }
                self.insert_purchase_rows(&rows).await?;
                self.insert_purchase_item_rows(&items).await?;
                Ok(rows.len() as u64)
            }

            async fn stored_order_rows(
                &mut self,
                wanted: &[(String, Purchase)],
            ) -> StoreResult<Vec<PurchaseRow>> {
                let mut by_channel: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
                for (_, purchase) in wanted {
                    by_channel
                        .entry(purchase.channel.as_str())
                        .or_default()
                        .insert(purchase.order_id.as_str());
                }
                let mut rows: Vec<PurchaseRow> = Vec::new();
                for (channel, order_ids) in &by_channel {
                    let order_ids: Vec<&str> = order_ids.iter().copied().collect();
                    for chunk in order_ids.chunks(IN_CHUNK) {
                        let found: Vec<PurchaseRow> = purchases::table
                            .filter(purchases::channel.eq(*channel))
                            .filter(ids_in(purchases::order_id, chunk))
                            .select(PurchaseRow::as_select())
                            .load(self)
                            .await?;
                        rows.extend(found);
                    }
                }
                Ok(rows)
            }

            async fn with_items(
                &mut self,
                rows: Vec<PurchaseRow>,
            ) -> StoreResult<Vec<RecordedPurchase>> {
                let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
                let mut items: HashMap<String, Vec<PurchaseItemRow>> = HashMap::new();
                for chunk in ids.chunks(IN_CHUNK) {
                    let found: Vec<PurchaseItemRow> = purchase_items::table
                        .filter(ids_in(purchase_items::purchase_id, chunk))
                        .order((purchase_items::purchase_id, purchase_items::position))
                        .select(PurchaseItemRow::as_select())
                        .load(self)
                        .await?;
                    for item in found {
                        items.entry(item.purchase_id.clone()).or_default().push(item);
                    }
                }
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let own = items.remove(&row.id).unwrap_or_default();
                        from_rows(row, own)
                    })
                    .collect())
            }

            async fn record_orders(
                &mut self,
                wanted: &[(String, Purchase)],
            ) -> StoreResult<Vec<(String, RecordOutcome)>> {
                let customer_ids: Vec<String> = wanted
                    .iter()
                    .map(|(customer_id, _)| customer_id.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                // Locked so a concurrent DeleteCustomer cannot leave orders without their customer.
                let mut existing: HashSet<String> = HashSet::new();
                for chunk in customer_ids.chunks(IN_CHUNK) {
                    existing.extend(self.lock_customers(chunk).await?);
                }
                for (index, (customer_id, _)) in wanted.iter().enumerate() {
                    if !existing.contains(customer_id) {
                        return Err(StoreError::not_found("customer", customer_id)
                            .at(&format!("purchases[{index}].customer_id")));
                    }
                }
                let rows = self.stored_order_rows(wanted).await?;
                // Their items too: an order sent again must match in full to be unchanged.
                let stored: HashMap<(String, String), RecordedPurchase> = self
                    .with_items(rows)
                    .await?
                    .into_iter()
                    .map(|order| {
                        let key = (
                            order.purchase.channel.clone(),
                            order.purchase.order_id.clone(),
                        );
                        (key, order)
                    })
                    .collect();
                let at = now();
                let mut results = Vec::with_capacity(wanted.len());
                let mut rows = Vec::new();
                let mut items = Vec::new();
                for (index, (customer_id, purchase)) in wanted.iter().enumerate() {
                    let key = (purchase.channel.clone(), purchase.order_id.clone());
                    if let Some(order) = stored.get(&key) {
                        let mut changed = differences(&order.purchase, purchase);
                        if order.customer_id != *customer_id {
                            changed.insert(0, "customer_id");
                        }
                        if !changed.is_empty() {
                            return Err(StoreError::AlreadyExists(format!(
                                "purchases[{index}]: order {}/{} is already recorded with another {}; \
                                 a recorded order is never changed by recording it again",
                                purchase.channel,
                                purchase.order_id,
                                changed.join(", ")
                            )));
                        }
                        results.push((order.id.clone(), RecordOutcome::Unchanged));
                        continue;
                    }
                    let (row, item_rows) = to_rows(customer_id, purchase, "", at);
                    results.push((row.id.clone(), RecordOutcome::Created));
                    rows.push(row);
                    items.extend(item_rows);
                }
                self.insert_purchase_rows(&rows).await?;
                self.insert_purchase_item_rows(&items).await?;
                Ok(results)
            }
        }
    };
}

purchase_queries!(SqliteConn);
purchase_queries!(MysqlConn);

impl Store {
    /// Records orders (each with its customer id) in one transaction. An order
    /// already stored with the same content is reported unchanged; with other
    /// content (or for another customer) the call is refused with
    /// `AlreadyExists` naming it. Returns each order's id and outcome, in order.
    pub async fn record_purchases(
        &self,
        entries: &[(String, Purchase)],
    ) -> StoreResult<Vec<(String, RecordOutcome)>> {
        let mut first_index: HashMap<(&str, &str), usize> = HashMap::new();
        for (index, (_, purchase)) in entries.iter().enumerate() {
            let key = (purchase.channel.as_str(), purchase.order_id.as_str());
            if let Some(first) = first_index.insert(key, index) {
                return Err(DomainError::invalid(
                    format!("purchases[{index}].order_id"),
                    format!("is the same order as purchases[{first}] (channel and order id)"),
                )
                .into());
            }
        }
        // Stored times keep microseconds (MySQL DATETIME(6)); compare and store the same.
        let entries: Vec<(String, Purchase)> = entries
            .iter()
            .map(|(customer_id, purchase)| {
                let mut purchase = purchase.clone();
                purchase.ordered_at = truncate_to_micros(purchase.ordered_at);
                (customer_id.clone(), purchase)
            })
            .collect();
        let entries = &entries;
        write_transaction!(self, |conn| conn.record_orders(entries).await)
    }

    /// The customer's orders with their items, newest first.
    pub async fn list_purchases(
        &self,
        customer_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<RecordedPurchase>> {
        let after = page.after.as_deref().map(parse_time_key).transpose()?;
        let (items, next_page_token) = with_conn!(self, |conn| {
            conn.require_customer(customer_id).await?;
            let mut query = purchases::table
                .filter(purchases::customer_id.eq(customer_id))
                .order((purchases::ordered_at.desc(), purchases::id.desc()))
                .limit(page_limit(page))
                .select(PurchaseRow::as_select())
                .into_boxed();
            if let Some((time, id)) = &after {
                query = query.filter(
                    purchases::ordered_at.lt(*time).or(purchases::ordered_at
                        .eq(*time)
                        .and(purchases::id.lt(id.clone()))),
                );
            }
            let mut rows: Vec<PurchaseRow> = query.load(conn).await?;
            let next = finish_page(&mut rows, page.size, |row| {
                time_key(row.ordered_at, &row.id)
            });
            (conn.with_items(rows).await?, next)
        });
        Ok(Page {
            items,
            next_page_token,
        })
    }
}
