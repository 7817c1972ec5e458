//! What the reference evaluator knows about one customer, held in memory:
//! fields, tags with their stored values, metrics and purchase events.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use tagd_core::customers::CustomerFields;

use crate::ast::Metric;

/// One purchase event.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    pub category: String,
    pub day: NaiveDate,
    pub amount: f64,
}

/// Everything a condition can test about one customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFacts {
    /// Name, gender, birthday, address, company, source channel, attributes
    /// (the rest is ignored). An empty text field counts as absent.
    pub fields: CustomerFields,
    /// Tag id → the value as stored (canonical, see
    /// [`tagd_core::tags::check_value`]); `None` for flags.
    pub tags: BTreeMap<String, Option<String>>,
    /// Metrics that have a value; a missing metric matches no comparison.
    pub metrics: BTreeMap<Metric, f64>,
    pub purchases: Vec<Purchase>,
}

/// Whole years from `birthday` to `today` (a birthday on 29 February is
/// reached on 1 March in common years).
pub fn age_on(birthday: NaiveDate, today: NaiveDate) -> i32 {
    let mut years = today.year() - birthday.year();
    if (today.month(), today.day()) < (birthday.month(), birthday.day()) {
        years -= 1;
    }
    years
}

/// The latest birthday that is at least `years` old on `today`: a customer
/// born on or before it has `age_on(birthday, today) >= years`. `None` when
/// that lies before the calendar's range.
pub fn latest_birthday_for_age(today: NaiveDate, years: u32) -> Option<NaiveDate> {
    today.checked_sub_months(Months::new(years.checked_mul(12)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ages_and_their_birthday_bounds_agree() {
        assert_eq!(age_on(date("2000-02-29"), date("2025-02-28")), 24);
        assert_eq!(age_on(date("2000-02-29"), date("2025-03-01")), 25);
        assert_eq!(age_on(date("2000-01-01"), date("2000-01-01")), 0);
        let mut today = date("2023-01-01");
        while today < date("2025-12-31") {
            for years in [0, 1, 4, 25] {
                let bound = latest_birthday_for_age(today, years).unwrap();
                assert!(age_on(bound, today) >= i32::try_from(years).unwrap());
                let after = bound.succ_opt().unwrap();
                assert!(
                    age_on(after, today) < i32::try_from(years).unwrap(),
                    "{today} {years}"
                );
            }
            today = today.succ_opt().unwrap();
        }
    }
}
