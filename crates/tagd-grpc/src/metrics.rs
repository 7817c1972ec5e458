//! `MetricsService`: customer metrics, computed by `tagd-core::metrics` from
//! the activity the store loads, over the configured windows.

use std::sync::Arc;

use chrono::Utc;
use tagd_core::metrics::{self as domain, Amount, TrendLabel};
use tagd_core::purchases::format_cents;
use tagd_proto::v1::metrics_service_server::MetricsService;
use tagd_proto::v1::{self as pb};
use tagd_store::Store;
use tonic::{Request, Response, Status};

use crate::convert::{self, id};
use crate::error::OrStatus;

pub(crate) struct Metrics {
    pub store: Arc<Store>,
    /// Window lengths in days, checked and ascending.
    pub windows_days: Vec<u32>,
}

fn money(amounts: Vec<Amount>) -> Vec<pb::Money> {
    amounts
        .into_iter()
        .map(|amount| pb::Money {
            amount: format_cents(amount.cents),
            currency: amount.currency,
        })
        .collect()
}

fn trend_to_proto(label: TrendLabel) -> pb::FrequencyTrend {
    match label {
        TrendLabel::None => pb::FrequencyTrend::None,
        TrendLabel::Rising => pb::FrequencyTrend::Rising,
        TrendLabel::Steady => pb::FrequencyTrend::Steady,
        TrendLabel::Falling => pb::FrequencyTrend::Falling,
    }
}

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn get_customer_metrics(
        &self,
        request: Request<pb::GetCustomerMetricsRequest>,
    ) -> Result<Response<pb::CustomerMetrics>, Status> {
        let customer_id = id("customer_id", &request.get_ref().customer_id)?;
        let activity = self
            .store
            .customer_activity(&customer_id)
            .await
            .or_status()?;
        let now = Utc::now().naive_utc();
        let metrics = domain::compute(&activity, now, &self.windows_days);
        Ok(Response::new(pb::CustomerMetrics {
            customer_id,
            compute_time: Some(convert::timestamp(now)),
            last_purchase_time: metrics.last_purchase_at.map(convert::timestamp),
            recency_days: metrics.recency_days,
            windows: metrics
                .windows
                .into_iter()
                .map(|window| pb::MetricsWindow {
                    days: window.days,
                    order_count: window.orders,
                    amounts: money(window.amounts),
                })
                .collect(),
            lifetime_order_count: metrics.lifetime_orders,
            lifetime_amounts: money(metrics.lifetime_amounts),
            average_order_values: money(metrics.average_order_values),
            categories: metrics
                .categories
                .into_iter()
                .map(|category| pb::CategoryCount {
                    category: category.category,
                    order_count: category.orders,
                })
                .collect(),
            last_interaction_time: metrics.last_interaction_at.map(convert::timestamp),
            recent_order_count: metrics.trend.recent_orders,
            previous_order_count: metrics.trend.previous_orders,
            frequency_ratio: metrics.trend.ratio,
            frequency_trend: trend_to_proto(metrics.trend.label).into(),
        }))
    }
}
