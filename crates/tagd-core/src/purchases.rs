//! Purchases (orders) and their items: amounts in cents, currencies, order
//! times, quantities; the rules every recorded or imported order passes.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

use crate::error::{DomainError, DomainResult};
use crate::text;

pub const MAX_ORDER_ID_CHARS: usize = 200;
/// The most orders one `RecordPurchases` call may carry: one transaction stays
/// short (each order may hold up to [`MAX_ITEMS_PER_PURCHASE`] items).
pub const MAX_PURCHASES_PER_CALL: usize = 1_000;
pub const MAX_ITEMS_PER_PURCHASE: usize = 500;
pub const MAX_ITEM_TEXT_CHARS: usize = 200;
/// The currency of an amount written without one.
pub const DEFAULT_CURRENCY: &str = "CNY";
/// Offset of times written without one: the market's own time (Beijing, UTC+8).
pub const DEFAULT_UTC_OFFSET_SECS: i32 = 8 * 3600;

/// ISO 4217 codes accepted; an order in another currency is refused rather than guessed at.
const CURRENCIES: &[&str] = &[
    "AED", "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "IDR", "ILS",
    "INR", "JPY", "KRW", "MOP", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "RUB", "SAR", "SEK",
    "SGD", "THB", "TRY", "TWD", "USD", "VND", "ZAR",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseItem {
    pub product_id: String,
    pub name: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// An order as stored: amounts in cents of `currency`, time in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub channel: String,
    pub order_id: String,
    pub ordered_at: NaiveDateTime,
    pub currency: String,
    pub total_cents: i64,
    pub status: String,
    pub items: Vec<PurchaseItem>,
}

/// An order as stored, with who it belongs to and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPurchase {
    pub id: String,
    pub customer_id: String,
    pub purchase: Purchase,
    /// The import job that wrote it; "" when recorded through the API.
    pub source_ref: String,
    pub recorded_at: NaiveDateTime,
}

/// What recording an order did: a new order, or the same order sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Created,
    Unchanged,
}

/// An amount in cents as a decimal text with two decimals ("1299.50").
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The fields in which `stored` differs from `wanted` (same channel and order id).
pub fn differences(stored: &Purchase, wanted: &Purchase) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if stored.ordered_at != wanted.ordered_at {
        fields.push("time");
    }
    if stored.currency != wanted.currency {
        fields.push("currency");
    }
    if stored.total_cents != wanted.total_cents {
        fields.push("total");
    }
    if stored.status != wanted.status {
        fields.push("status");
    }
    if stored.items != wanted.items {
        fields.push("items");
    }
    fields
}

/// An order as a source wrote it: every field raw text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawPurchase<'a> {
    pub order_id: &'a str,
    pub time: &'a str,
    pub currency: &'a str,
    pub total: &'a str,
    pub status: &'a str,
    pub items: Vec<RawPurchaseItem<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawPurchaseItem<'a> {
    pub product_id: &'a str,
    pub name: &'a str,
    pub category: &'a str,
    pub quantity: &'a str,
    pub unit_price: &'a str,
}

/// Checks and converts an order; `field` prefixes error paths (e.g. `purchases[0]`).
pub fn purchase(field: &str, channel: &str, raw: &RawPurchase<'_>) -> DomainResult<Purchase> {
    let order_id = text::normalize(raw.order_id);
    if order_id.is_empty() {
        return Err(DomainError::invalid(
            format!("{field}.order_id"),
            "must not be empty",
        ));
    }
    if order_id.chars().count() > MAX_ORDER_ID_CHARS {
        return Err(DomainError::invalid(
            format!("{field}.order_id"),
            format!("is longer than {MAX_ORDER_ID_CHARS} characters"),
        ));
    }
    if raw.items.len() > MAX_ITEMS_PER_PURCHASE {
        return Err(DomainError::invalid(
            format!("{field}.items"),
            format!(
                "has {}; the limit is {MAX_ITEMS_PER_PURCHASE}",
                raw.items.len()
            ),
        ));
    }
    let mut items = Vec::with_capacity(raw.items.len());
    for (index, item) in raw.items.iter().enumerate() {
        let at = format!("{field}.items[{index}]");
        items.push(PurchaseItem {
            product_id: bounded_text(&format!("{at}.product_id"), item.product_id)?,
            name: bounded_text(&format!("{at}.name"), item.name)?,
            category: bounded_text(&format!("{at}.category"), item.category)?,
            quantity: quantity(&format!("{at}.quantity"), item.quantity)?,
            unit_price_cents: if item.unit_price.trim().is_empty() {
                0
            } else {
                amount_cents(&format!("{at}.unit_price"), item.unit_price)?
            },
        });
    }
    let total_cents = if raw.total.trim().is_empty() {
        items.iter().try_fold(0_i64, |sum, item| {
            item.unit_price_cents
                .checked_mul(item.quantity)
                .and_then(|line| sum.checked_add(line))
                .ok_or_else(|| DomainError::invalid(format!("{field}.items"), "amounts overflow"))
        })?
    } else {
        amount_cents(&format!("{field}.total"), raw.total)?
    };
    Ok(Purchase {
        channel: channel.to_owned(),
        order_id,
        ordered_at: time(&format!("{field}.time"), raw.time)?,
        currency: currency(&format!("{field}.currency"), raw.currency)?,
        total_cents,
        status: bounded_text(&format!("{field}.status"), raw.status)?,
        items,
    })
}

fn bounded_text(field: &str, raw: &str) -> DomainResult<String> {
    text::optional(field, raw, MAX_ITEM_TEXT_CHARS)
}

/// "CNY", "cny", "RMB", "￥" or "" (the default) → an ISO 4217 code.
pub fn currency(field: &str, raw: &str) -> DomainResult<String> {
    let code = text::normalize(raw).to_ascii_uppercase();
    let code = match code.as_str() {
        "" | "RMB" | "¥" | "￥" | "元" | "人民币" => DEFAULT_CURRENCY.to_owned(),
        "$" => "USD".to_owned(),
        "€" => "EUR".to_owned(),
        _ => code,
    };
    if CURRENCIES.binary_search(&code.as_str()).is_ok() {
        Ok(code)
    } else {
        Err(DomainError::invalid(
            field,
            format!("{raw:?} is not a known currency code"),
        ))
    }
}

/// "199", "199.5", "¥1,299.00" → cents; negative amounts and fractions of a cent are refused.
pub fn amount_cents(field: &str, raw: &str) -> DomainResult<i64> {
    let cleaned: String = text::normalize(raw)
        .chars()
        .filter(|c| !matches!(c, ',' | '¥' | '￥' | '$' | '€' | ' '))
        .collect();
    let invalid = || DomainError::invalid(field, format!("{raw:?} is not an amount"));
    if cleaned.starts_with('-') {
        return Err(DomainError::invalid(field, format!("{raw:?} is negative")));
    }
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(
            field,
            format!("{raw:?} has more than two decimals"),
        ));
    }
    let whole: i64 = whole.parse().map_err(|_| invalid())?;
    let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
    whole
        .checked_mul(100)
        .and_then(|value| value.checked_add(cents))
        .ok_or_else(invalid)
}

/// A positive whole quantity ("2", "2.0"); zero and negative quantities are refused.
pub fn quantity(field: &str, raw: &str) -> DomainResult<i64> {
    let text = text::normalize(raw);
    let text = text.strip_suffix(".0").unwrap_or(&text);
    let value: i64 = text
        .parse()
        .map_err(|_| DomainError::invalid(field, format!("{raw:?} is not a whole number")))?;
    if value <= 0 {
        return Err(DomainError::invalid(
            field,
            format!("must be positive, got {value}"),
        ));
    }
    Ok(value)
}

/// RFC 3339, or "2024-06-01 10:00[:00]", "2024/6/1 10:00:00", "2024-06-01" in the
/// market's time (UTC+8); stored as UTC.
pub fn time(field: &str, raw: &str) -> DomainResult<NaiveDateTime> {
    let text = text::normalize(raw);
    if text.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(&text) {
        return Ok(time.naive_utc());
    }
    let local = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(&text, format).ok())
    .or_else(|| {
        ["%Y-%m-%d", "%Y/%m/%d"]
            .iter()
            .find_map(|format| NaiveDate::parse_from_str(&text, format).ok())
            .map(|date| date.and_time(NaiveTime::MIN))
    })
    .ok_or_else(|| DomainError::invalid(field, format!("{raw:?} is not a time")))?;
    let offset = FixedOffset::east_opt(DEFAULT_UTC_OFFSET_SECS)
        .ok_or_else(|| DomainError::invalid(field, "bad default offset"))?;
    local
        .and_local_timezone(offset)
        .single()
        .map(|time| time.naive_utc())
        .ok_or_else(|| DomainError::invalid(field, format!("{raw:?} is not a time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_cents() {
        assert_eq!(amount_cents("t", "199.00"), Ok(19_900));
        assert_eq!(amount_cents("t", "¥1,299.5"), Ok(129_950));
        assert_eq!(amount_cents("t", "７"), Ok(700));
        assert!(
            amount_cents("t", "-5")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(amount_cents("t", "1.005").is_err());
        assert!(amount_cents("t", "abc").is_err());
        assert!(amount_cents("t", "").is_err());
    }

    #[test]
    fn cents_format_with_two_decimals() {
        assert_eq!(format_cents(129_950), "1299.50");
        assert_eq!(format_cents(7), "0.07");
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(-150), "-1.50");
    }

    #[test]
    fn differences_name_the_changed_fields() {
        let raw = RawPurchase {
            order_id: "E1",
            time: "2024-06-01",
            total: "10",
            ..RawPurchase::default()
        };
        let stored = purchase("p", "shop", &raw).unwrap();
        assert!(differences(&stored, &stored).is_empty());
        let other = purchase(
            "p",
            "shop",
            &RawPurchase {
                total: "11",
                currency: "USD",
                ..raw
            },
        )
        .unwrap();
        assert_eq!(differences(&stored, &other), ["currency", "total"]);
    }

    #[test]
    fn currencies_are_known_codes() {
        assert_eq!(currency("c", "").unwrap(), "CNY");
        assert_eq!(currency("c", "rmb").unwrap(), "CNY");
        assert_eq!(currency("c", "usd").unwrap(), "USD");
        assert!(
            currency("c", "XYZ")
                .unwrap_err()
                .to_string()
                .contains("currency")
        );
        assert!(
            CURRENCIES.windows(2).all(|pair| pair[0] < pair[1]),
            "sorted for binary search"
        );
    }

    #[test]
    fn quantities_are_positive() {
        assert_eq!(quantity("q", "2"), Ok(2));
        assert_eq!(quantity("q", "3.0"), Ok(3));
        assert!(quantity("q", "-1").is_err());
        assert!(quantity("q", "0").is_err());
        assert!(quantity("q", "1.5").is_err());
    }

    #[test]
    fn local_times_are_beijing_time() {
        let utc = time("t", "2024-06-01 10:00:00").unwrap();
        assert_eq!(utc.to_string(), "2024-06-01 02:00:00");
        assert_eq!(
            time("t", "2024-06-01T10:00:00Z").unwrap().to_string(),
            "2024-06-01 10:00:00"
        );
        assert_eq!(
            time("t", "2024/6/1").unwrap().to_string(),
            "2024-05-31 16:00:00"
        );
        assert!(time("t", "yesterday").is_err());
    }

    #[test]
    fn a_purchase_without_a_total_sums_its_items() {
        let raw = RawPurchase {
            order_id: "E1",
            time: "2024-06-01",
            items: vec![RawPurchaseItem {
                name: "奶粉",
                category: "母婴",
                quantity: "2",
                unit_price: "99.50",
                ..RawPurchaseItem::default()
            }],
            ..RawPurchase::default()
        };
        let purchase = purchase("purchases[0]", "orders", &raw).unwrap();
        assert_eq!(purchase.total_cents, 19_900);
        assert_eq!(purchase.currency, "CNY");
        let bad = RawPurchase {
            items: vec![RawPurchaseItem {
                quantity: "-2",
                ..RawPurchaseItem::default()
            }],
            ..raw
        };
        let error = super::purchase("purchases[0]", "orders", &bad).unwrap_err();
        assert_eq!(error.parts().0, "purchases[0].items[0].quantity");
    }
}
