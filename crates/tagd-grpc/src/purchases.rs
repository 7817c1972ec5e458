//! `PurchaseService`: recording and listing customers' orders.

use std::sync::Arc;

use chrono::{NaiveDateTime, SecondsFormat};
use tagd_core::customers;
use tagd_core::paging::PageRequest;
use tagd_core::purchases::{
    self as domain, MAX_PURCHASES_PER_CALL, Purchase, RawPurchase, RawPurchaseItem, RecordOutcome,
    RecordedPurchase, format_cents,
};
use tagd_proto::v1::purchase_service_server::PurchaseService;
use tagd_proto::v1::{self as pb};
use tagd_store::Store;
use tonic::{Request, Response, Status};

use crate::convert::{self, id, invalid};
use crate::error::OrStatus;

pub(crate) struct Purchases {
    pub store: Arc<Store>,
}

/// A time as RFC 3339 text, the form the domain's order-time rule reads.
pub(crate) fn rfc3339(time: NaiveDateTime) -> String {
    time.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Checks one order of a request; `field` is its path (`purchases[3]`).
fn purchase(field: &str, raw: &pb::Purchase) -> Result<(String, Purchase), Status> {
    let customer_id = id(&format!("{field}.customer_id"), &raw.customer_id)?;
    let channel = customers::channel(&format!("{field}.channel"), &raw.channel).or_status()?;
    let time = convert::from_timestamp(&format!("{field}.order_time"), raw.order_time.as_ref())?
        .ok_or_else(|| invalid(&format!("{field}.order_time"), "must be set"))?;
    let time = rfc3339(time);
    let quantities: Vec<String> = raw.items.iter().map(|i| i.quantity.to_string()).collect();
    let purchase = domain::purchase(
        field,
        &channel,
        &RawPurchase {
            order_id: &raw.order_id,
            time: &time,
            currency: &raw.currency,
            total: &raw.total,
            status: &raw.status,
            items: raw
                .items
                .iter()
                .zip(&quantities)
                .map(|(item, quantity)| RawPurchaseItem {
                    product_id: &item.product_id,
                    name: &item.name,
                    category: &item.category,
                    quantity,
                    unit_price: &item.unit_price,
                })
                .collect(),
        },
    )
    .or_status()?;
    Ok((customer_id, purchase))
}

pub(crate) fn purchase_to_proto(recorded: RecordedPurchase) -> pb::Purchase {
    let purchase = recorded.purchase;
    pb::Purchase {
        id: recorded.id,
        customer_id: recorded.customer_id,
        channel: purchase.channel,
        order_id: purchase.order_id,
        order_time: Some(convert::timestamp(purchase.ordered_at)),
        currency: purchase.currency,
        total: format_cents(purchase.total_cents),
        status: purchase.status,
        items: purchase
            .items
            .into_iter()
            .map(|item| pb::PurchaseItem {
                product_id: item.product_id,
                name: item.name,
                category: item.category,
                quantity: item.quantity,
                unit_price: format_cents(item.unit_price_cents),
            })
            .collect(),
        source_ref: recorded.source_ref,
        record_time: Some(convert::timestamp(recorded.recorded_at)),
    }
}

#[tonic::async_trait]
impl PurchaseService for Purchases {
    async fn record_purchases(
        &self,
        request: Request<pb::RecordPurchasesRequest>,
    ) -> Result<Response<pb::RecordPurchasesResponse>, Status> {
        let request = request.into_inner();
        if request.purchases.is_empty() {
            return Err(invalid("purchases", "must not be empty"));
        }
        if request.purchases.len() > MAX_PURCHASES_PER_CALL {
            return Err(invalid(
                "purchases",
                &format!(
                    "has {}; the limit is {MAX_PURCHASES_PER_CALL}",
                    request.purchases.len()
                ),
            ));
        }
        let entries = request
            .purchases
            .iter()
            .enumerate()
            .map(|(index, raw)| purchase(&format!("purchases[{index}]"), raw))
            .collect::<Result<Vec<_>, Status>>()?;
        let results = self.store.record_purchases(&entries).await.or_status()?;
        let mut response = pb::RecordPurchasesResponse::default();
        for (purchase_id, outcome) in results {
            let outcome = match outcome {
                RecordOutcome::Created => {
                    response.created += 1;
                    pb::RecordOutcome::Created
                }
                RecordOutcome::Unchanged => {
                    response.unchanged += 1;
                    pb::RecordOutcome::Unchanged
                }
            };
            response.results.push(pb::RecordPurchaseResult {
                purchase_id,
                outcome: outcome.into(),
            });
        }
        Ok(Response::new(response))
    }

    async fn list_purchases(
        &self,
        request: Request<pb::ListPurchasesRequest>,
    ) -> Result<Response<pb::ListPurchasesResponse>, Status> {
        let request = request.into_inner();
        let customer_id = id("customer_id", &request.customer_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self
            .store
            .list_purchases(&customer_id, &page)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListPurchasesResponse {
            purchases: page.items.into_iter().map(purchase_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
