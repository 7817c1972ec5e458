//! Customer metrics computed from a customer's orders and interactions: recency,
//! order counts and amounts over windows, lifetime value, categories bought,
//! the last contact and the trend of buying frequency.
//!
//! Amounts are kept per currency: orders in different currencies are never
//! added up, since no exchange rate is known here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDateTime};

use crate::error::{DomainError, DomainResult};

/// Windows (in days) used when none are configured.
pub const DEFAULT_WINDOWS_DAYS: [u32; 3] = [30, 90, 365];
/// The most windows one configuration may ask for.
pub const MAX_WINDOWS: usize = 8;
/// The longest window: a century.
pub const MAX_WINDOW_DAYS: u32 = 36_500;
/// The trend compares the orders of the last this-many days with the same span before.
pub const TREND_DAYS: i64 = 90;
/// Recent orders at least this many times the earlier ones read as rising…
pub const RISING_RATIO: f64 = 1.25;
/// …and at most this many times as falling; anything between is steady.
pub const FALLING_RATIO: f64 = 0.8;

/// One order as the metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub ordered_at: NaiveDateTime,
    pub currency: String,
    pub total_cents: i64,
    /// The categories of its items (repeats and empty ones are ignored).
    pub categories: Vec<String>,
}

/// What the metrics are computed from: one customer's stored activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub orders: Vec<Order>,
    pub last_interaction_at: Option<NaiveDateTime>,
}

/// A sum of money in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub currency: String,
    pub cents: i64,
}

/// Orders placed in the last `days` days (up to now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub days: u32,
    pub orders: u64,
    /// One per currency ordered in, by currency code.
    pub amounts: Vec<Amount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryCount {
    pub category: String,
    /// Orders with at least one item of the category.
    pub orders: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendLabel {
    /// No orders in either span.
    None,
    Rising,
    Steady,
    Falling,
}

impl TrendLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Rising => "rising",
            Self::Steady => "steady",
            Self::Falling => "falling",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// Orders in the last [`TREND_DAYS`] days.
    pub recent_orders: u64,
    /// Orders in the [`TREND_DAYS`] days before those.
    pub previous_orders: u64,
    /// `recent / previous`; `None` when there were no previous orders.
    pub ratio: Option<f64>,
    pub label: TrendLabel,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMetrics {
    pub last_purchase_at: Option<NaiveDateTime>,
    /// Whole days since the last purchase (0 for one today or in the future).
    pub recency_days: Option<i64>,
    /// In ascending order of days.
    pub windows: Vec<Window>,
    pub lifetime_orders: u64,
    pub lifetime_amounts: Vec<Amount>,
    /// Lifetime amount divided by lifetime orders, per currency, rounded to the cent.
    pub average_order_values: Vec<Amount>,
    /// Most ordered first, then by name.
    pub categories: Vec<CategoryCount>,
    pub last_interaction_at: Option<NaiveDateTime>,
    pub trend: Trend,
}

/// Checks configured windows: 1..=[`MAX_WINDOWS`] distinct lengths of
/// 1..=[`MAX_WINDOW_DAYS`] days; returns them in ascending order.
pub fn windows(field: &str, days: &[u32]) -> DomainResult<Vec<u32>> {
    if days.is_empty() || days.len() > MAX_WINDOWS {
        return Err(DomainError::invalid(
            field,
            format!("must list 1 to {MAX_WINDOWS} windows, got {}", days.len()),
        ));
    }
    let mut sorted = days.to_vec();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        if pair[0] == pair[1] {
            return Err(DomainError::invalid(
                field,
                format!("lists {} days twice", pair[0]),
            ));
        }
    }
    if let Some(bad) = sorted
        .iter()
        .find(|&&day| day == 0 || day > MAX_WINDOW_DAYS)
    {
        return Err(DomainError::invalid(
            field,
            format!("{bad} is not 1..={MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok(sorted)
}

/// Adds the order's total to the amount of its currency.
fn add(amounts: &mut BTreeMap<String, i64>, order: &Order) {
    let sum = amounts.entry(order.currency.clone()).or_insert(0);
    // Sums beyond i64 cents (9e16) are not real; saturate rather than wrap.
    *sum = sum.saturating_add(order.total_cents);
}

fn amounts(sums: BTreeMap<String, i64>) -> Vec<Amount> {
    sums.into_iter()
        .map(|(currency, cents)| Amount { currency, cents })
        .collect()
}

/// `cents / count` rounded half away from zero.
fn average(cents: i64, count: u64) -> i64 {
    let count = i128::from(count.max(1));
    let cents = i128::from(cents);
    let rounded = (cents * 2 + cents.signum() * count) / (count * 2);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// Whether `time` lies in the `days` days ending at `now` (`now - days < time <= now`).
fn within(time: NaiveDateTime, now: NaiveDateTime, days: i64) -> bool {
    time <= now && time > now - Duration::days(days)
}

fn trend(orders: &[Order], now: NaiveDateTime) -> Trend {
    let recent = orders
        .iter()
        .filter(|order| within(order.ordered_at, now, TREND_DAYS))
        .count() as u64;
    let before = now - Duration::days(TREND_DAYS);
    let previous = orders
        .iter()
        .filter(|order| within(order.ordered_at, before, TREND_DAYS))
        .count() as u64;
    #[expect(
        clippy::cast_precision_loss,
        reason = "order counts are far below 2^52"
    )]
    let ratio = (previous > 0).then(|| recent as f64 / previous as f64);
    let label = match ratio {
        None if recent == 0 => TrendLabel::None,
        // Buying again after a quiet span is a rise, however small.
        None => TrendLabel::Rising,
        Some(ratio) if ratio >= RISING_RATIO => TrendLabel::Rising,
        Some(ratio) if ratio <= FALLING_RATIO => TrendLabel::Falling,
        Some(_) => TrendLabel::Steady,
    };
    Trend {
        recent_orders: recent,
        previous_orders: previous,
        ratio,
        label,
    }
}

/// The metrics of one customer at `now`, over `windows_days` (as checked by [`windows`]).
pub fn compute(activity: &Activity, now: NaiveDateTime, windows_days: &[u32]) -> CustomerMetrics {
    let orders = &activity.orders;
    let last_purchase_at = orders.iter().map(|order| order.ordered_at).max();
    let windows = windows_days
        .iter()
        .map(|&days| {
            let mut sums = BTreeMap::new();
            let mut count = 0;
            for order in orders
                .iter()
                .filter(|order| within(order.ordered_at, now, i64::from(days)))
            {
                count += 1;
                add(&mut sums, order);
            }
            Window {
                days,
                orders: count,
                amounts: amounts(sums),
            }
        })
        .collect();
    let mut lifetime = BTreeMap::new();
    let mut per_currency: BTreeMap<&str, u64> = BTreeMap::new();
    let mut categories: BTreeMap<&str, u64> = BTreeMap::new();
    for order in orders {
        add(&mut lifetime, order);
        *per_currency.entry(&order.currency).or_insert(0) += 1;
        let distinct: BTreeSet<&str> = order
            .categories
            .iter()
            .map(String::as_str)
            .filter(|category| !category.is_empty())
            .collect();
        for category in distinct {
            *categories.entry(category).or_insert(0) += 1;
        }
    }
    let average_order_values = lifetime
        .iter()
        .map(|(currency, &cents)| Amount {
            currency: currency.clone(),
            cents: average(
                cents,
                per_currency.get(currency.as_str()).copied().unwrap_or(1),
            ),
        })
        .collect();
    let mut categories: Vec<CategoryCount> = categories
        .into_iter()
        .map(|(category, orders)| CategoryCount {
            category: category.to_owned(),
            orders,
        })
        .collect();
    categories.sort_by(|a, b| b.orders.cmp(&a.orders).then(a.category.cmp(&b.category)));
    CustomerMetrics {
        recency_days: last_purchase_at.map(|last| (now - last).num_days().max(0)),
        last_purchase_at,
        windows,
        lifetime_orders: orders.len() as u64,
        lifetime_amounts: amounts(lifetime),
        average_order_values,
        categories,
        last_interaction_at: activity.last_interaction_at,
        trend: trend(orders, now),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 29)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    }

    fn order(days_ago: i64, cents: i64, categories: &[&str]) -> Order {
        Order {
            ordered_at: now() - Duration::days(days_ago),
            currency: "CNY".to_owned(),
            total_cents: cents,
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn cny(cents: i64) -> Vec<Amount> {
        vec![Amount {
            currency: "CNY".to_owned(),
            cents,
        }]
    }

    #[test]
    fn a_customer_without_activity_has_empty_metrics() {
        let metrics = compute(&Activity::default(), now(), &[30, 90]);
        assert_eq!(metrics.last_purchase_at, None);
        assert_eq!(metrics.recency_days, None);
        assert_eq!(metrics.lifetime_orders, 0);
        assert!(metrics.lifetime_amounts.is_empty());
        assert!(metrics.average_order_values.is_empty());
        assert_eq!(
            metrics.windows.iter().map(|w| w.orders).collect::<Vec<_>>(),
            [0, 0]
        );
        assert_eq!(metrics.trend.label, TrendLabel::None);
        assert_eq!(metrics.trend.ratio, None);
    }

    #[test]
    fn windows_recency_lifetime_and_categories() {
        let activity = Activity {
            orders: vec![
                order(2, 10_000, &["母婴", "母婴", "食品"]),
                order(40, 5_000, &["食品"]),
                order(100, 2_550, &["母婴", ""]),
                order(400, 1_000, &[]),
            ],
            last_interaction_at: Some(now() - Duration::hours(5)),
        };
        let metrics = compute(&activity, now(), &[30, 90, 365]);
        assert_eq!(metrics.last_purchase_at, Some(now() - Duration::days(2)));
        assert_eq!(metrics.recency_days, Some(2));
        let windows: Vec<(u32, u64, Vec<Amount>)> = metrics
            .windows
            .into_iter()
            .map(|w| (w.days, w.orders, w.amounts))
            .collect();
        assert_eq!(
            windows,
            [
                (30, 1, cny(10_000)),
                (90, 2, cny(15_000)),
                (365, 3, cny(17_550)),
            ]
        );
        assert_eq!(metrics.lifetime_orders, 4);
        assert_eq!(metrics.lifetime_amounts, cny(18_550));
        // 18,550 / 4 = 4,637.5 → 4,638
        assert_eq!(metrics.average_order_values, cny(4_638));
        assert_eq!(
            metrics.categories,
            [
                CategoryCount {
                    category: "母婴".to_owned(),
                    orders: 2
                },
                CategoryCount {
                    category: "食品".to_owned(),
                    orders: 2
                },
            ]
        );
        assert_eq!(metrics.last_interaction_at, activity.last_interaction_at);
        // Last 90 days: 2 orders; the 90 before: 1.
        assert_eq!(metrics.trend.recent_orders, 2);
        assert_eq!(metrics.trend.previous_orders, 1);
        assert_eq!(metrics.trend.ratio, Some(2.0));
        assert_eq!(metrics.trend.label, TrendLabel::Rising);
    }

    #[test]
    fn window_edges_are_exclusive_at_the_start() {
        let activity = Activity {
            orders: vec![
                order(30, 100, &[]),
                Order {
                    ordered_at: now() - Duration::days(30) + Duration::seconds(1),
                    ..order(0, 200, &[])
                },
            ],
            last_interaction_at: None,
        };
        let metrics = compute(&activity, now(), &[30]);
        assert_eq!(metrics.windows[0].orders, 1);
        assert_eq!(metrics.windows[0].amounts, cny(200));
    }

    #[test]
    fn currencies_are_never_added_together() {
        let mut usd = order(1, 999, &[]);
        usd.currency = "USD".to_owned();
        let activity = Activity {
            orders: vec![order(1, 1_000, &[]), order(3, 2_001, &[]), usd],
            last_interaction_at: None,
        };
        let metrics = compute(&activity, now(), &[30]);
        let lifetime: Vec<(&str, i64)> = metrics
            .lifetime_amounts
            .iter()
            .map(|a| (a.currency.as_str(), a.cents))
            .collect();
        assert_eq!(lifetime, [("CNY", 3_001), ("USD", 999)]);
        let average: Vec<(&str, i64)> = metrics
            .average_order_values
            .iter()
            .map(|a| (a.currency.as_str(), a.cents))
            .collect();
        // 3,001 / 2 = 1,500.5 → 1,501
        assert_eq!(average, [("CNY", 1_501), ("USD", 999)]);
        assert_eq!(metrics.windows[0].orders, 3);
    }

    #[test]
    fn trend_labels() {
        let label = |recent: &[i64]| {
            let orders = recent.iter().map(|&days| order(days, 1, &[])).collect();
            compute(
                &Activity {
                    orders,
                    last_interaction_at: None,
                },
                now(),
                &[30],
            )
            .trend
        };
        assert_eq!(label(&[]).label, TrendLabel::None);
        assert_eq!(label(&[1]).label, TrendLabel::Rising);
        let falling = label(&[100, 120]);
        assert_eq!(
            (
                falling.recent_orders,
                falling.previous_orders,
                falling.ratio
            ),
            (0, 2, Some(0.0))
        );
        assert_eq!(falling.label, TrendLabel::Falling);
        assert_eq!(label(&[1, 100]).label, TrendLabel::Steady);
        // 4 vs 5: 0.8 is the falling edge.
        assert_eq!(
            label(&[1, 2, 3, 4, 100, 101, 102, 103, 104]).label,
            TrendLabel::Falling
        );
        // 5 vs 4: 1.25 is the rising edge.
        assert_eq!(
            label(&[1, 2, 3, 4, 5, 100, 101, 102, 103]).label,
            TrendLabel::Rising
        );
        // Orders older than 180 days are in neither span.
        assert_eq!(label(&[200]).label, TrendLabel::None);
    }

    #[test]
    fn a_future_order_counts_for_life_but_not_in_windows() {
        let activity = Activity {
            orders: vec![order(-3, 500, &[])],
            last_interaction_at: None,
        };
        let metrics = compute(&activity, now(), &[30]);
        assert_eq!(metrics.recency_days, Some(0));
        assert_eq!(metrics.windows[0].orders, 0);
        assert_eq!(metrics.lifetime_orders, 1);
    }

    #[test]
    fn configured_windows_are_checked_and_sorted() {
        assert_eq!(windows("w", &[365, 30, 90]), Ok(vec![30, 90, 365]));
        assert!(windows("w", &[]).is_err());
        assert!(windows("w", &[0]).is_err());
        assert!(
            windows("w", &[30, 30])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(windows("w", &[MAX_WINDOW_DAYS + 1]).is_err());
        assert!(windows("w", &[1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
    }
}
