//! `tagctl customers metrics`: MetricsService — one customer's metrics as a record.

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::{Output, Time, View, cell, enum_name};

#[derive(Debug, Serialize)]
pub struct MoneyView {
    pub currency: String,
    pub amount: String,
}

#[derive(Debug, Serialize)]
pub struct WindowView {
    pub days: u32,
    pub order_count: u64,
    pub amounts: Vec<MoneyView>,
}

#[derive(Debug, Serialize)]
pub struct CategoryView {
    pub category: String,
    pub order_count: u64,
}

#[derive(Debug, Serialize)]
pub struct MetricsView {
    pub customer_id: String,
    pub compute_time: Option<Time>,
    pub last_purchase_time: Option<Time>,
    pub recency_days: Option<i64>,
    pub windows: Vec<WindowView>,
    pub lifetime_order_count: u64,
    pub lifetime_amounts: Vec<MoneyView>,
    pub average_order_values: Vec<MoneyView>,
    pub categories: Vec<CategoryView>,
    pub last_interaction_time: Option<Time>,
    pub recent_order_count: u64,
    pub previous_order_count: u64,
    pub frequency_ratio: Option<f64>,
    pub frequency_trend: String,
}

fn money(amounts: Vec<pb::Money>) -> Vec<MoneyView> {
    amounts
        .into_iter()
        .map(|m| MoneyView {
            currency: m.currency,
            amount: m.amount,
        })
        .collect()
}

/// `199.00 CNY + 20.00 USD`, or `0` without orders.
fn sum_text(amounts: &[MoneyView]) -> String {
    if amounts.is_empty() {
        return "0".to_owned();
    }
    amounts
        .iter()
        .map(|m| format!("{} {}", m.amount, m.currency))
        .collect::<Vec<_>>()
        .join(" + ")
}

impl From<pb::CustomerMetrics> for MetricsView {
    fn from(metrics: pb::CustomerMetrics) -> Self {
        MetricsView {
            compute_time: Time::from_proto(metrics.compute_time.as_ref()),
            last_purchase_time: Time::from_proto(metrics.last_purchase_time.as_ref()),
            last_interaction_time: Time::from_proto(metrics.last_interaction_time.as_ref()),
            frequency_trend: pb::FrequencyTrend::try_from(metrics.frequency_trend).map_or_else(
                |_| format!("unknown({})", metrics.frequency_trend),
                |t| enum_name(t.as_str_name(), "FREQUENCY_TREND_"),
            ),
            customer_id: metrics.customer_id,
            recency_days: metrics.recency_days,
            windows: metrics
                .windows
                .into_iter()
                .map(|w| WindowView {
                    days: w.days,
                    order_count: w.order_count,
                    amounts: money(w.amounts),
                })
                .collect(),
            lifetime_order_count: metrics.lifetime_order_count,
            lifetime_amounts: money(metrics.lifetime_amounts),
            average_order_values: money(metrics.average_order_values),
            categories: metrics
                .categories
                .into_iter()
                .map(|c| CategoryView {
                    category: c.category,
                    order_count: c.order_count,
                })
                .collect(),
            recent_order_count: metrics.recent_order_count,
            previous_order_count: metrics.previous_order_count,
            frequency_ratio: metrics.frequency_ratio,
        }
    }
}

impl View for MetricsView {
    const COLUMNS: &'static [&'static str] = &["CUSTOMER", "LAST PURCHASE", "ORDERS", "TREND"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.customer_id.clone(),
            cell(self.last_purchase_time.as_ref()),
            self.lifetime_order_count.to_string(),
            self.frequency_trend.clone(),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let recency = self
            .recency_days
            .map(|days| format!("{days} days ago"))
            .unwrap_or_default();
        let windows = self
            .windows
            .iter()
            .map(|w| {
                format!(
                    "{}d: {} orders, {}",
                    w.days,
                    w.order_count,
                    sum_text(&w.amounts)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let categories = self
            .categories
            .iter()
            .map(|c| format!("{} ({})", c.category, c.order_count))
            .collect::<Vec<_>>()
            .join(", ");
        let ratio = self
            .frequency_ratio
            .map(|r| format!(", ×{r:.2}"))
            .unwrap_or_default();
        vec![
            ("customer", self.customer_id.clone()),
            ("last purchase", cell(self.last_purchase_time.as_ref())),
            ("recency", recency),
            ("windows", windows),
            (
                "lifetime",
                format!(
                    "{} orders, {}",
                    self.lifetime_order_count,
                    sum_text(&self.lifetime_amounts)
                ),
            ),
            ("average order", sum_text(&self.average_order_values)),
            ("categories", categories),
            ("last contact", cell(self.last_interaction_time.as_ref())),
            (
                "trend (90d)",
                format!(
                    "{}: {} vs {} before{ratio}",
                    self.frequency_trend, self.recent_order_count, self.previous_order_count
                ),
            ),
            ("computed", cell(self.compute_time.as_ref())),
        ]
    }
}

pub async fn customer(id: String, connection: &Connection, out: Output) -> Result<(), Failure> {
    let metrics = connection
        .metrics()
        .get_customer_metrics(pb::GetCustomerMetricsRequest { customer_id: id })
        .await?
        .into_inner();
    out.record(&MetricsView::from(metrics))
}
