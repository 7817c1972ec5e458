//! The reference evaluator: runs a bound condition over one customer's
//! facts, written for obviousness rather than speed. Rule previews use it,
//! and it is the oracle the bitmap index and the SQL translation are
//! tested against.

use chrono::NaiveDate;
use tagd_core::text;

use crate::ast::CustomerField;
use crate::bound::{BoundCondition, BoundPredicate, BoundPurchaseFilter, day_number};
use crate::facts::{CustomerFacts, Purchase, age_on};
use crate::parser::parse_date;

/// Whether the customer described by `facts` matches `condition` on `today`.
pub fn evaluate(condition: &BoundCondition, facts: &CustomerFacts, today: NaiveDate) -> bool {
    match condition {
        BoundCondition::And(items) => items.iter().all(|item| evaluate(item, facts, today)),
        BoundCondition::Or(items) => items.iter().any(|item| evaluate(item, facts, today)),
        BoundCondition::Not(inner) => !evaluate(inner, facts, today),
        BoundCondition::Predicate(predicate) => predicate_holds(predicate, facts, today),
    }
}

fn predicate_holds(predicate: &BoundPredicate, facts: &CustomerFacts, today: NaiveDate) -> bool {
    let tag_value = |tag: &str| facts.tags.get(tag).and_then(Option::as_deref);
    match predicate {
        BoundPredicate::HasTag { tag } => facts.tags.contains_key(tag),
        BoundPredicate::TagText { tag, test } => {
            tag_value(tag).is_some_and(|value| test.matches(&text::key(value)))
        }
        BoundPredicate::TagNumber { tag, test } => tag_value(tag)
            .and_then(|value| value.parse::<f64>().ok())
            .is_some_and(|value| test.matches(value)),
        BoundPredicate::TagDate { tag, test } => tag_value(tag)
            .and_then(parse_date)
            .is_some_and(|date| test.matches(day_number(date))),
        BoundPredicate::Field { field, test } => {
            let value = field_value(facts, *field);
            !value.is_empty() && test.matches(&text::key(value))
        }
        BoundPredicate::Gender { any_of } => any_of.contains(&facts.fields.gender),
        BoundPredicate::Age { test } => facts
            .fields
            .birthday
            .is_some_and(|birthday| test.matches(f64::from(age_on(birthday, today)))),
        BoundPredicate::HasAttr { key } => facts.fields.attributes.contains_key(key),
        BoundPredicate::Attr { key, test } => facts
            .fields
            .attributes
            .get(key)
            .is_some_and(|value| test.matches(&text::key(value))),
        BoundPredicate::Metric { metric, test } => facts
            .metrics
            .get(metric)
            .is_some_and(|value| test.matches(*value)),
        BoundPredicate::BoughtCategory { category } => facts
            .purchases
            .iter()
            .any(|purchase| text::key(&purchase.category) == *category),
        BoundPredicate::Purchases { filter, test } => {
            let count = selected(facts, filter, today).count();
            #[expect(
                clippy::cast_precision_loss,
                reason = "purchase counts stay far below 2^52"
            )]
            test.matches(count as f64)
        }
        BoundPredicate::Spent { filter, test } => test.matches(
            selected(facts, filter, today)
                .map(|purchase| purchase.amount)
                .sum(),
        ),
        BoundPredicate::InSegment { condition, .. } => evaluate(condition, facts, today),
    }
}

/// The text of a field; empty when absent.
pub fn field_value(facts: &CustomerFacts, field: CustomerField) -> &str {
    let fields = &facts.fields;
    match field {
        CustomerField::Name => &fields.name,
        CustomerField::Gender => fields.gender.as_str(),
        CustomerField::Province => &fields.address.province,
        CustomerField::City => &fields.address.city,
        CustomerField::District => &fields.address.district,
        CustomerField::Company => &fields.company,
        CustomerField::Channel => &fields.source_channel,
    }
}

/// The purchases a filter selects: in the category, on or after
/// `today - days`.
fn selected<'a>(
    facts: &'a CustomerFacts,
    filter: &'a BoundPurchaseFilter,
    today: NaiveDate,
) -> impl Iterator<Item = &'a Purchase> {
    let since = filter
        .days
        .and_then(|days| today.checked_sub_days(chrono::Days::new(u64::from(days))));
    facts.purchases.iter().filter(move |purchase| {
        filter
            .category
            .as_ref()
            .is_none_or(|category| text::key(&purchase.category) == *category)
            && since.is_none_or(|since| purchase.day >= since)
    })
}
