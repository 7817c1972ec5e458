//! The reference path's view of one customer: its stored fields, live tags,
//! order lines and metrics as `tagd_condition::CustomerFacts`.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use tagd_condition::{CustomerFacts, Metric, Purchase};
use tagd_core::customers::Customer;
use tagd_core::metrics::CustomerMetrics;
use tagd_store::{LiveAssignment, PurchaseLine};

/// Money in a condition is in whole units (yuan), stored amounts in cents.
const CENTS_PER_UNIT: f64 = 100.0;

/// The facts of `customer` at `now`: only assignments live at `now` count;
/// each order line is one purchase event.
pub fn facts_of(
    customer: &Customer,
    assignments: &[&LiveAssignment],
    lines: &[&PurchaseLine],
    metrics: BTreeMap<Metric, f64>,
    now: NaiveDateTime,
) -> CustomerFacts {
    CustomerFacts {
        fields: customer.fields.clone(),
        tags: assignments
            .iter()
            .filter(|assignment| assignment.expires_at.is_none_or(|expiry| expiry > now))
            .map(|assignment| (assignment.tag_id.clone(), assignment.value.clone()))
            .collect(),
        metrics,
        purchases: lines
            .iter()
            .map(|line| Purchase {
                category: line.category.clone(),
                day: line.day,
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "amounts stay far below 2^52 cents"
                )]
                amount: line.amount_cents as f64 / CENTS_PER_UNIT,
            })
            .collect(),
    }
}

/// The condition language's metrics from the computed ones at `now`.
/// Amounts in several currencies are added at face value (the language has
/// no currency); a metric without a value (no orders…) is absent.
pub fn metric_values(metrics: &CustomerMetrics, now: NaiveDateTime) -> BTreeMap<Metric, f64> {
    #[expect(
        clippy::cast_precision_loss,
        reason = "counts and cents stay far below 2^52"
    )]
    let units = |amounts: &[tagd_core::metrics::Amount]| {
        amounts
            .iter()
            .map(|amount| amount.cents as f64)
            .sum::<f64>()
            / CENTS_PER_UNIT
    };
    let mut values = BTreeMap::new();
    for window in &metrics.windows {
        #[expect(
            clippy::cast_precision_loss,
            reason = "order counts stay far below 2^52"
        )]
        values.insert(Metric::Orders { days: window.days }, window.orders as f64);
        values.insert(Metric::Spent { days: window.days }, units(&window.amounts));
    }
    if let Some(days) = metrics.recency_days {
        #[expect(clippy::cast_precision_loss, reason = "days stay far below 2^52")]
        values.insert(Metric::RecencyDays, days as f64);
    }
    if !metrics.average_order_values.is_empty() {
        values.insert(Metric::AvgOrderValue, units(&metrics.average_order_values));
    }
    if let Some(ratio) = metrics.trend.ratio {
        values.insert(Metric::FrequencyTrend, ratio);
    }
    if let Some(at) = metrics.last_interaction_at {
        #[expect(clippy::cast_precision_loss, reason = "days stay far below 2^52")]
        values.insert(Metric::LastInteractionDays, (now - at).num_days() as f64);
    }
    values
}
