//! The checked, resolved form the evaluators run: tags by id, values in the
//! form they are compared in (text as case-folded keys, dates as day
//! numbers), referenced segments inlined.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use tagd_core::customers::Gender;

use crate::ast::{CmpOp, CustomerField, Metric};

/// A condition whose names are resolved and whose comparisons are type-checked.
#[derive(Debug, Clone, PartialEq)]
pub enum BoundCondition {
    And(Vec<BoundCondition>),
    Or(Vec<BoundCondition>),
    Not(Box<BoundCondition>),
    Predicate(BoundPredicate),
}

/// A resolved predicate. Value tests are true only when the value exists:
/// a customer without the tag, field, attribute, metric or birthday never
/// matches one (use NOT to include them).
#[derive(Debug, Clone, PartialEq)]
pub enum BoundPredicate {
    HasTag {
        tag: String,
    },
    /// An enum, text or bool tag; values as [`tagd_core::text::key`] of the
    /// canonical value (`"true"`/`"false"` for bools).
    TagText {
        tag: String,
        test: TextTest,
    },
    TagNumber {
        tag: String,
        test: NumberTest,
    },
    /// A date tag; bounds are [`day_number`]s.
    TagDate {
        tag: String,
        test: NumberTest,
    },
    /// A text field of the customer (never [`CustomerField::Gender`]).
    Field {
        field: CustomerField,
        test: TextTest,
    },
    /// The customer's gender is one of these (every customer has one,
    /// `Unspecified` included).
    Gender {
        any_of: Vec<Gender>,
    },
    /// Whole years of age today; customers without a birthday never match.
    Age {
        test: NumberTest,
    },
    /// `key` is the normalised attribute name.
    HasAttr {
        key: String,
    },
    Attr {
        key: String,
        test: TextTest,
    },
    Metric {
        metric: Metric,
        test: NumberTest,
    },
    /// `category` is a [`tagd_core::text::key`].
    BoughtCategory {
        category: String,
    },
    Purchases {
        filter: BoundPurchaseFilter,
        test: NumberTest,
    },
    Spent {
        filter: BoundPurchaseFilter,
        test: NumberTest,
    },
    InSegment {
        id: String,
        name: String,
        condition: Arc<BoundCondition>,
    },
}

/// Which purchases count; the category as a [`tagd_core::text::key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BoundPurchaseFilter {
    pub category: Option<String>,
    pub days: Option<u32>,
}

/// A test on a text value, all strings as [`tagd_core::text::key`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextTest {
    Eq(String),
    Ne(String),
    In(Vec<String>),
    Contains(String),
}

impl TextTest {
    pub fn matches(&self, key: &str) -> bool {
        match self {
            TextTest::Eq(value) => key == value,
            TextTest::Ne(value) => key != value,
            TextTest::In(values) => values.iter().any(|value| value == key),
            TextTest::Contains(part) => key.contains(part.as_str()),
        }
    }
}

/// A test on a number (or a day number).
#[derive(Debug, Clone, PartialEq)]
pub enum NumberTest {
    Compare(CmpOp, f64),
    In(Vec<f64>),
    /// Both ends included; `low <= high`.
    Between(f64, f64),
}

impl NumberTest {
    pub fn matches(&self, value: f64) -> bool {
        match *self {
            NumberTest::Compare(op, bound) => match op {
                CmpOp::Eq => value == bound,
                CmpOp::Ne => value != bound,
                CmpOp::Lt => value < bound,
                CmpOp::Le => value <= bound,
                CmpOp::Gt => value > bound,
                CmpOp::Ge => value >= bound,
            },
            NumberTest::In(ref values) => values.contains(&value),
            NumberTest::Between(low, high) => low <= value && value <= high,
        }
    }
}

/// A date as the number compared: days since 0001-01-01 (day 1).
pub fn day_number(date: NaiveDate) -> f64 {
    f64::from(date.num_days_from_ce())
}

impl BoundCondition {
    /// Every tag id the condition tests, through referenced segments too,
    /// each once: a write to one of these tags may change the result.
    pub fn tag_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        self.visit(&mut |predicate| match predicate {
            BoundPredicate::HasTag { tag }
            | BoundPredicate::TagText { tag, .. }
            | BoundPredicate::TagNumber { tag, .. }
            | BoundPredicate::TagDate { tag, .. }
                if !ids.contains(&tag.as_str()) =>
            {
                ids.push(tag);
            }
            _ => {}
        });
        ids
    }

    /// The ids of every segment referenced, directly or not, each once.
    pub fn segment_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        self.visit(&mut |predicate| {
            if let BoundPredicate::InSegment { id, .. } = predicate
                && !ids.contains(&id.as_str())
            {
                ids.push(id);
            }
        });
        ids
    }

    /// Calls `f` on every predicate, entering referenced segments.
    pub fn visit<'a>(&'a self, f: &mut impl FnMut(&'a BoundPredicate)) {
        match self {
            BoundCondition::And(items) | BoundCondition::Or(items) => {
                for item in items {
                    item.visit(f);
                }
            }
            BoundCondition::Not(inner) => inner.visit(f),
            BoundCondition::Predicate(predicate) => {
                f(predicate);
                if let BoundPredicate::InSegment { condition, .. } = predicate {
                    condition.visit(f);
                }
            }
        }
    }
}
