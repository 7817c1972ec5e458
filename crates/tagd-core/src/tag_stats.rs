//! Tag statistics from grouped counts: coverage, the most common values of a text or
//! enum tag, and a histogram of a number tag's values. Pure: the store supplies the counts.

/// The most values `top_values` lists, and the default.
pub const MAX_TOP_VALUES: usize = 100;
pub const DEFAULT_TOP_VALUES: usize = 10;
/// The most buckets a histogram has, and the default.
pub const MAX_HISTOGRAM_BUCKETS: usize = 100;
pub const DEFAULT_HISTOGRAM_BUCKETS: usize = 10;

/// How many customers hold one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueCount {
    pub value: String,
    pub customers: u64,
}

/// Customers whose value lies in `[lower, upper)` (the last bucket includes `upper`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub customers: u64,
}

/// The share of `total` that `part` is, 0 when there is nobody.
pub fn coverage(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

/// The `n` values held by the most customers, most first (ties by value, so the answer is stable).
pub fn top_values(mut counts: Vec<ValueCount>, n: usize) -> Vec<ValueCount> {
    counts.sort_by(|a, b| {
        b.customers
            .cmp(&a.customers)
            .then_with(|| a.value.cmp(&b.value))
    });
    counts.truncate(n);
    counts
}

/// An equal-width histogram of numeric values given as (value, customers); values that are not
/// numbers are left out (a number tag stores only numbers, but history may hold older text).
pub fn histogram(counts: &[ValueCount], buckets: usize) -> Vec<Bucket> {
    let numbers: Vec<(f64, u64)> = counts
        .iter()
        .filter_map(|c| {
            c.value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| (v, c.customers))
        })
        .collect();
    let Some(lower) = numbers.iter().map(|(v, _)| *v).reduce(f64::min) else {
        return Vec::new();
    };
    let upper = numbers.iter().map(|(v, _)| *v).fold(lower, f64::max);
    let buckets = buckets.max(1);
    if upper == lower {
        return vec![Bucket {
            lower,
            upper,
            customers: numbers.iter().map(|(_, n)| n).sum(),
        }];
    }
    let width = (upper - lower) / buckets as f64;
    let mut out: Vec<Bucket> = (0..buckets)
        .map(|i| Bucket {
            lower: lower + width * i as f64,
            upper: if i + 1 == buckets {
                upper
            } else {
                lower + width * (i + 1) as f64
            },
            customers: 0,
        })
        .collect();
    for (value, customers) in numbers {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the quotient is finite and at least 0; the index is clamped to the last bucket"
        )]
        let index = (((value - lower) / width) as usize).min(buckets - 1);
        out[index].customers += customers;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> Vec<ValueCount> {
        pairs
            .iter()
            .map(|(value, customers)| ValueCount {
                value: (*value).to_owned(),
                customers: *customers,
            })
            .collect()
    }

    #[test]
    fn coverage_is_a_share_and_zero_of_nobody() {
        assert_eq!(coverage(1, 4), 0.25);
        assert_eq!(coverage(0, 0), 0.0);
    }

    #[test]
    fn top_values_are_most_held_first_and_stable_on_ties() {
        let top = top_values(
            counts(&[("金卡", 3), ("银卡", 5), ("铜卡", 3), ("钻石", 1)]),
            3,
        );
        let names: Vec<&str> = top.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(names, vec!["银卡", "金卡", "铜卡"]);
    }

    #[test]
    fn histogram_spreads_values_over_equal_buckets_and_keeps_the_maximum() {
        let buckets = histogram(
            &counts(&[("0", 1), ("5", 2), ("9.99", 1), ("10", 4), ("abc", 7)]),
            2,
        );
        assert_eq!(buckets.len(), 2);
        assert_eq!(
            (buckets[0].lower, buckets[0].upper, buckets[0].customers),
            (0.0, 5.0, 1)
        );
        assert_eq!(
            (buckets[1].lower, buckets[1].upper, buckets[1].customers),
            (5.0, 10.0, 7)
        );
        let single = histogram(&counts(&[("42", 3)]), 10);
        assert_eq!(
            single,
            vec![Bucket {
                lower: 42.0,
                upper: 42.0,
                customers: 3
            }]
        );
        assert!(histogram(&counts(&[("x", 1)]), 5).is_empty());
    }
}
