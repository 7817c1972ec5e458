//! Tag rules, the pure part: what a rule is, what running one changes (who gains,
//! loses or keeps its tag, never overriding a manual assignment unless it says so),
//! and the arithmetic of the ready-made templates (spending quantiles for value
//! tiers, RFM scores and the eight classic RFM classes). The store runs rules; the
//! condition language decides who matches.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{DomainError, DomainResult};
use crate::tagging::TagSource;
use crate::text;

/// The shortest interval a scheduled rule may run at.
pub const MIN_INTERVAL_SECS: u64 = 60;
/// The longest: a year.
pub const MAX_INTERVAL_SECS: u64 = 366 * 86_400;

/// A rule as a caller defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    pub description: String,
    pub tag_id: String,
    /// The value the rule sets (`None` for a flag tag).
    pub value: Option<String>,
    /// The condition in the text form of the condition language.
    pub condition: String,
    /// Run every this many seconds; `None`: only when asked.
    pub interval_secs: Option<u64>,
    /// Replace an assignment a person made by hand (otherwise such customers are left alone).
    pub overrides_manual: bool,
    pub enabled: bool,
}

/// The longest rule description.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// Checks the parts of a rule that need no stored data (the condition and the tag are
/// checked against the catalogue by the caller).
pub fn check_rule(raw: RuleSpec) -> DomainResult<RuleSpec> {
    let name = text::required_name("name", &raw.name)?;
    let description = text::free_text("description", &raw.description, MAX_DESCRIPTION_CHARS)?;
    if raw.tag_id.trim().is_empty() {
        return Err(DomainError::invalid(
            "tag_id",
            "must name the tag the rule sets",
        ));
    }
    if raw.condition.trim().is_empty() {
        return Err(DomainError::invalid("condition", "must not be empty"));
    }
    check_interval("interval_seconds", raw.interval_secs)?;
    Ok(RuleSpec {
        name,
        description,
        ..raw
    })
}

/// A schedule interval: none, or [`MIN_INTERVAL_SECS`] to [`MAX_INTERVAL_SECS`].
pub fn check_interval(field: &str, interval: Option<u64>) -> DomainResult<()> {
    if let Some(interval) = interval
        && !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&interval)
    {
        return Err(DomainError::invalid(
            field,
            format!(
                "{interval} s is outside {MIN_INTERVAL_SECS} s to {MAX_INTERVAL_SECS} s (a year)"
            ),
        ));
    }
    Ok(())
}

/// A customer's current assignment of the rule's tag or, in an exclusive
/// category, of a rival tag of that category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub customer_id: String,
    pub tag_id: String,
    pub value: Option<String>,
    pub source: TagSource,
    /// For a rule's assignment, the rule's id.
    pub source_ref: String,
}

impl Holder {
    fn is_from(&self, rule_id: &str) -> bool {
        self.source == TagSource::Rule && self.source_ref == rule_id
    }
}

/// The rule a plan is made for.
#[derive(Debug, Clone, Copy)]
pub struct PlannedRule<'a> {
    pub id: &'a str,
    pub tag_id: &'a str,
    pub value: Option<&'a str>,
    pub overrides_manual: bool,
}

/// What one run of a rule changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulePlan {
    /// Customers who match and hold neither the tag nor a rival: they gain it.
    pub gain: Vec<String>,
    /// Customers who match and hold another value of the tag, or a rival tag of its
    /// exclusive category, that the rule may replace.
    pub change: Vec<String>,
    /// Customers who hold the tag from this rule and no longer match: they lose it.
    pub lose: Vec<String>,
    /// Customers who match and already hold the tag as the rule would set it.
    pub keep: u64,
    /// Customers who match but hold an assignment the rule may not replace (made by hand,
    /// by an import or a merge, unless the rule overrides those).
    pub held_back: u64,
}

impl RulePlan {
    /// Compares who matches with who holds the tag (or a rival) now. A rule only ever
    /// removes what it assigned itself; it replaces another rule's assignment, and any
    /// other only if `overrides_manual`.
    pub fn compute(rule: PlannedRule<'_>, matching: &BTreeSet<String>, holders: &[Holder]) -> Self {
        let mut held: BTreeMap<&str, Vec<&Holder>> = BTreeMap::new();
        for holder in holders {
            held.entry(holder.customer_id.as_str())
                .or_default()
                .push(holder);
        }
        let replaceable =
            |holder: &Holder| rule.overrides_manual || holder.source == TagSource::Rule;
        let mut plan = RulePlan::default();
        for customer in matching {
            let Some(current) = held.get(customer.as_str()) else {
                plan.gain.push(customer.clone());
                continue;
            };
            let own_same = current
                .iter()
                .any(|h| h.tag_id == rule.tag_id && h.value.as_deref() == rule.value);
            let rivals_left = current.iter().any(|h| h.tag_id != rule.tag_id);
            if own_same && !rivals_left {
                plan.keep += 1;
            } else if current.iter().all(|h| {
                replaceable(h) || (h.tag_id == rule.tag_id && h.value.as_deref() == rule.value)
            }) {
                plan.change.push(customer.clone());
            } else {
                plan.held_back += 1;
            }
        }
        for holder in holders {
            if holder.tag_id == rule.tag_id
                && holder.is_from(rule.id)
                && !matching.contains(&holder.customer_id)
            {
                plan.lose.push(holder.customer_id.clone());
            }
        }
        plan
    }
}

/// The value at quantile `q` (0..=1) of `values` (sorted here), by the nearest-rank method;
/// `None` when there are no values.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let q = q.clamp(0.0, 1.0);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "q is clamped to 0..=1, so the rank lies in 0..len"
    )]
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    Some(values[rank])
}

/// Spending thresholds of the value-tier template: 高价值 from the 80th percentile up,
/// 中价值 from the 50th, 低价值 below (of customers who spent anything).
pub fn value_tier_thresholds(spending: &mut Vec<f64>) -> Option<(f64, f64)> {
    spending.retain(|v| *v > 0.0 && v.is_finite());
    let middle = quantile(spending, 0.5)?;
    let high = quantile(spending, 0.8)?;
    Some((high, middle))
}

/// A 1–5 score by quintile of `value` among `sorted` (ascending); `higher_is_better` is false
/// for recency, where fewer days since the last order score higher.
pub fn quintile_score(sorted: &[f64], value: f64, higher_is_better: bool) -> u8 {
    if sorted.is_empty() {
        return 3;
    }
    let below = sorted.partition_point(|v| *v < value);
    let share = below as f64 / sorted.len() as f64;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "share is in 0..=1, so the quintile is 0..=5 before the clamp"
    )]
    let quintile = ((share * 5.0).floor() as u8).min(4) + 1;
    if higher_is_better {
        quintile
    } else {
        6 - quintile
    }
}

/// The eight classic RFM classes, by whether each score is above the average score.
pub fn rfm_class(recency_high: bool, frequency_high: bool, monetary_high: bool) -> &'static str {
    match (recency_high, frequency_high, monetary_high) {
        (true, true, true) => "重要价值客户",
        (true, false, true) => "重要发展客户",
        (false, true, true) => "重要保持客户",
        (false, false, true) => "重要挽留客户",
        (true, true, false) => "一般价值客户",
        (true, false, false) => "一般发展客户",
        (false, true, false) => "一般保持客户",
        (false, false, false) => "一般挽留客户",
    }
}

/// The RFM classes in the order a template creates them (the enum values of its tag).
pub const RFM_CLASSES: [&str; 8] = [
    "重要价值客户",
    "重要发展客户",
    "重要保持客户",
    "重要挽留客户",
    "一般价值客户",
    "一般发展客户",
    "一般保持客户",
    "一般挽留客户",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(id: &str, value: Option<&str>, source: TagSource, source_ref: &str) -> Holder {
        Holder {
            customer_id: id.to_owned(),
            tag_id: "t".to_owned(),
            value: value.map(str::to_owned),
            source,
            source_ref: source_ref.to_owned(),
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn rule(overrides_manual: bool) -> PlannedRule<'static> {
        PlannedRule {
            id: "r1",
            tag_id: "t",
            value: Some("高价值"),
            overrides_manual,
        }
    }

    #[test]
    fn a_rule_adds_removes_only_its_own_and_respects_manual_assignments() {
        let holders = vec![
            holder("kept", Some("高价值"), TagSource::Rule, "r1"),
            holder("gone", Some("高价值"), TagSource::Rule, "r1"),
            holder("by-hand", Some("中价值"), TagSource::Manual, ""),
            holder("other-rule", Some("中价值"), TagSource::Rule, "r2"),
            holder("same-by-hand", Some("高价值"), TagSource::Manual, ""),
            holder("stale-value", Some("中价值"), TagSource::Rule, "r1"),
            holder("manual-left", Some("高价值"), TagSource::Manual, ""),
            holder("imported", Some("低价值"), TagSource::Import, "job"),
        ];
        let matching = set(&[
            "kept",
            "new",
            "by-hand",
            "stale-value",
            "other-rule",
            "same-by-hand",
            "imported",
        ]);
        let plan = RulePlan::compute(rule(false), &matching, &holders);
        assert_eq!(plan.gain, vec!["new"]);
        assert_eq!(
            plan.change,
            vec!["other-rule", "stale-value"],
            "another rule's value is replaced"
        );
        assert_eq!(
            plan.lose,
            vec!["gone"],
            "manual and other rules' assignments are never removed"
        );
        assert_eq!(plan.keep, 2, "kept, and same-by-hand already holds it");
        assert_eq!(plan.held_back, 2, "by-hand and imported keep their values");

        let overriding = RulePlan::compute(rule(true), &matching, &holders);
        assert_eq!(
            overriding.change,
            vec!["by-hand", "imported", "other-rule", "stale-value"]
        );
        assert_eq!(overriding.held_back, 0);
    }

    #[test]
    fn rivals_in_an_exclusive_category_are_replaced_only_when_the_rule_may() {
        let rival = |id: &str, source| Holder {
            tag_id: "rival".to_owned(),
            ..holder(id, None, source, "r2")
        };
        let holders = vec![
            rival("rule-rival", TagSource::Rule),
            rival("manual-rival", TagSource::Manual),
        ];
        let matching = set(&["rule-rival", "manual-rival"]);
        let plan = RulePlan::compute(rule(false), &matching, &holders);
        assert_eq!(plan.change, vec!["rule-rival"]);
        assert_eq!(plan.held_back, 1);
        assert!(plan.gain.is_empty() && plan.lose.is_empty());
        let overriding = RulePlan::compute(rule(true), &matching, &holders);
        assert_eq!(overriding.change, vec!["manual-rival", "rule-rival"]);
    }

    #[test]
    fn rules_are_checked() {
        let good = RuleSpec {
            name: " 高价值客户 ".into(),
            description: String::new(),
            enabled: true,
            tag_id: "t".into(),
            value: None,
            condition: "orders_90d >= 3".into(),
            interval_secs: Some(3600),
            overrides_manual: false,
        };
        assert_eq!(check_rule(good.clone()).unwrap().name, "高价值客户");
        let fault = |spec: RuleSpec| check_rule(spec).unwrap_err().parts().0.to_owned();
        assert_eq!(
            fault(RuleSpec {
                name: " ".into(),
                ..good.clone()
            }),
            "name"
        );
        assert_eq!(
            fault(RuleSpec {
                condition: "".into(),
                ..good.clone()
            }),
            "condition"
        );
        assert_eq!(
            fault(RuleSpec {
                interval_secs: Some(5),
                ..good.clone()
            }),
            "interval_seconds"
        );
        assert_eq!(
            fault(RuleSpec {
                tag_id: "".into(),
                ..good
            }),
            "tag_id"
        );
    }

    #[test]
    fn quantiles_and_tiers_follow_the_nearest_rank() {
        let mut values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(&mut values, 0.5), Some(5.0));
        assert_eq!(quantile(&mut values, 0.8), Some(8.0));
        assert_eq!(quantile(&mut values, 1.0), Some(10.0));
        assert_eq!(quantile(&mut [], 0.5), None);
        let mut spending = vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0];
        assert_eq!(value_tier_thresholds(&mut spending), Some((400.0, 300.0)));
    }

    #[test]
    fn rfm_scores_and_classes() {
        let sorted: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(quintile_score(&sorted, 99.0, true), 5);
        assert_eq!(quintile_score(&sorted, 0.0, true), 1);
        assert_eq!(
            quintile_score(&sorted, 0.0, false),
            5,
            "recent buyers score high"
        );
        assert_eq!(rfm_class(true, true, true), "重要价值客户");
        assert_eq!(rfm_class(false, false, true), "重要挽留客户");
        assert_eq!(rfm_class(false, false, false), "一般挽留客户");
        let all: BTreeSet<&str> = [true, false]
            .iter()
            .flat_map(|r| {
                [true, false]
                    .iter()
                    .flat_map(move |f| [true, false].map(move |m| rfm_class(*r, *f, m)))
            })
            .collect();
        assert_eq!(all, RFM_CLASSES.iter().copied().collect());
    }
}
