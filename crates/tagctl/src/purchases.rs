//! `tagctl purchases …`: PurchaseService — orders recorded from a file in chunks, and a
//! customer's orders.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tagd_proto::v1 as pb;

use crate::cli::{PurchasesCommand, parse_time};
use crate::connect::Connection;
use crate::customers::chunk_context;
use crate::exit::Failure;
use crate::input::{Record, list_index, read_records};
use crate::output::{Output, Time, View, cell, enum_name};
use crate::paging::fetch_all;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemView {
    #[serde(default)]
    pub product_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub category: String,
    pub quantity: i64,
    #[serde(default)]
    pub unit_price: String,
}

#[derive(Debug, Serialize)]
pub struct PurchaseView {
    pub id: String,
    pub customer_id: String,
    pub channel: String,
    pub order_id: String,
    pub time: Option<Time>,
    pub currency: String,
    pub total: String,
    pub status: String,
    pub items: Vec<ItemView>,
    pub source_ref: String,
    pub record_time: Option<Time>,
}

impl From<pb::Purchase> for PurchaseView {
    fn from(purchase: pb::Purchase) -> Self {
        PurchaseView {
            time: Time::from_proto(purchase.order_time.as_ref()),
            record_time: Time::from_proto(purchase.record_time.as_ref()),
            id: purchase.id,
            customer_id: purchase.customer_id,
            channel: purchase.channel,
            order_id: purchase.order_id,
            currency: purchase.currency,
            total: purchase.total,
            status: purchase.status,
            items: purchase
                .items
                .into_iter()
                .map(|item| ItemView {
                    product_id: item.product_id,
                    name: item.name,
                    category: item.category,
                    quantity: item.quantity,
                    unit_price: item.unit_price,
                })
                .collect(),
            source_ref: purchase.source_ref,
        }
    }
}

impl View for PurchaseView {
    const COLUMNS: &'static [&'static str] =
        &["TIME", "CHANNEL", "ORDER", "TOTAL", "STATUS", "ITEMS", "ID"];

    fn cells(&self) -> Vec<String> {
        vec![
            cell(self.time.as_ref()),
            self.channel.clone(),
            self.order_id.clone(),
            format!("{} {}", self.total, self.currency),
            self.status.clone(),
            self.items
                .iter()
                .map(|item| {
                    let name = if item.name.is_empty() {
                        &item.product_id
                    } else {
                        &item.name
                    };
                    format!("{name} ×{} @{}", item.quantity, item.unit_price)
                })
                .collect::<Vec<_>>()
                .join("\n"),
            self.id.clone(),
        ]
    }
}

/// One record of an order file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRecord {
    customer_id: String,
    channel: String,
    order_id: String,
    time: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    total: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    items: Vec<ItemView>,
}

impl OrderRecord {
    fn into_proto(self, origin: &str) -> Result<pb::Purchase, Failure> {
        let time =
            parse_time(&self.time).map_err(|e| Failure::usage(format!("{origin}: time: {e}")))?;
        Ok(pb::Purchase {
            customer_id: self.customer_id,
            channel: self.channel,
            order_id: self.order_id,
            order_time: Some(time),
            currency: self.currency,
            total: self.total,
            status: self.status,
            items: self
                .items
                .into_iter()
                .map(|item| pb::PurchaseItem {
                    product_id: item.product_id,
                    name: item.name,
                    category: item.category,
                    quantity: item.quantity,
                    unit_price: item.unit_price,
                })
                .collect(),
            ..pb::Purchase::default()
        })
    }
}

#[derive(Debug, Default, Serialize)]
struct RecordSummary {
    records: usize,
    calls: usize,
    created: u64,
    unchanged: u64,
    results: Vec<RecordResult>,
}

#[derive(Debug, Serialize)]
struct RecordResult {
    /// Where the record came from (`orders.jsonl:12`).
    record: String,
    purchase_id: String,
    outcome: String,
}

pub async fn run(
    command: PurchasesCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    match command {
        PurchasesCommand::Record { file, chunk_size } => {
            record(connection, out, &file, chunk_size).await
        }
        PurchasesCommand::List { customer, paging } => {
            let client = connection.purchases();
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let customer_id = customer.clone();
                async move {
                    let page = client
                        .list_purchases(pb::ListPurchasesRequest {
                            customer_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.purchases, page.next_page_token))
                }
            })
            .await?;
            out.list(&rows.into_iter().map(PurchaseView::from).collect::<Vec<_>>())
        }
    }
}

async fn record(
    connection: &Connection,
    out: Output,
    file: &Path,
    chunk_size: u32,
) -> Result<(), Failure> {
    let records: Vec<Record<OrderRecord>> = read_records(file)?;
    let orders = records
        .into_iter()
        .map(|record| {
            let order = record.value.into_proto(&record.origin)?;
            Ok((record.origin, order))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let chunk_size = usize::try_from(chunk_size).unwrap_or(1000);
    let chunks = orders.len().div_ceil(chunk_size);
    let mut client = connection.purchases();
    let mut summary = RecordSummary {
        records: orders.len(),
        ..RecordSummary::default()
    };
    for (number, chunk) in orders.chunks(chunk_size).enumerate() {
        let (origins, purchases): (Vec<String>, Vec<pb::Purchase>) = chunk.iter().cloned().unzip();
        let response = client
            .record_purchases(pb::RecordPurchasesRequest { purchases })
            .await
            .map_err(|status| {
                let culprit =
                    list_index(status.message(), "purchases").and_then(|i| origins.get(i));
                let span = (
                    origins.first().cloned().unwrap_or_default(),
                    origins.last().cloned().unwrap_or_default(),
                );
                Failure::from(status).with_context(chunk_context(
                    number + 1,
                    chunks,
                    &span,
                    summary.calls,
                    culprit,
                ))
            })?
            .into_inner();
        summary.calls += 1;
        summary.created += response.created;
        summary.unchanged += response.unchanged;
        summary
            .results
            .extend(
                response
                    .results
                    .into_iter()
                    .zip(origins)
                    .map(|(result, record)| RecordResult {
                        record,
                        outcome: pb::RecordOutcome::try_from(result.outcome).map_or_else(
                            |_| format!("unknown({})", result.outcome),
                            |o| enum_name(o.as_str_name(), "RECORD_OUTCOME_"),
                        ),
                        purchase_id: result.purchase_id,
                    }),
            );
    }
    let sentence = format!(
        "recorded {} orders in {} calls: {} created, {} unchanged",
        summary.records, summary.calls, summary.created, summary.unchanged
    );
    out.outcome(&summary, &sentence)
}
