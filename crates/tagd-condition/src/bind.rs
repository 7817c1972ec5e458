//! Validation: resolves every name against a [`Catalogue`], type-checks
//! every comparison against what it compares, refuses segment cycles, and
//! produces the [`BoundCondition`] the evaluators run.

use std::collections::HashMap;
use std::sync::Arc;

use tagd_core::customers::Gender;
use tagd_core::tags::{ValueType, check_value};
use tagd_core::{DomainError, text};

use crate::ast::{CmpOp, Comparison, Condition, CustomerField, Literal, Predicate, PurchaseFilter};
use crate::bound::{
    BoundCondition, BoundPredicate, BoundPurchaseFilter, NumberTest, TextTest, day_number,
};
use crate::catalogue::{Catalogue, TagInfo, TagLookup};
use crate::error::ConditionError;
use crate::limits::{MAX_SEGMENT_DEPTH, check_depth};
use crate::parser::parse_date;
use crate::path::{NodePath, Step};

/// The oldest age a condition may name.
pub const MAX_AGE: f64 = 200.0;

/// Checks `condition` against `catalogue` and returns its bound form.
pub fn bind(
    condition: &Condition,
    catalogue: &dyn Catalogue,
) -> Result<BoundCondition, ConditionError> {
    Binder::new(catalogue).root(condition)
}

/// Like [`bind`], for the condition of the segment `name` being created or
/// changed: a reference back to `name`, however indirect, is a cycle.
pub fn bind_segment(
    name: &str,
    condition: &Condition,
    catalogue: &dyn Catalogue,
) -> Result<BoundCondition, ConditionError> {
    let mut binder = Binder::new(catalogue);
    binder.stack.push((text::key(name), name.to_owned()));
    binder.root(condition)
}

/// `ValidateCondition`: [`bind`] without keeping the result.
pub fn validate(condition: &Condition, catalogue: &dyn Catalogue) -> Result<(), ConditionError> {
    bind(condition, catalogue).map(drop)
}

struct Binder<'c> {
    catalogue: &'c dyn Catalogue,
    /// Segments being bound, outermost first: (name key, name as written).
    stack: Vec<(String, String)>,
    /// Segments already bound in this call, by name key, shared when
    /// referenced again.
    done: HashMap<String, (String, String, Arc<BoundCondition>)>,
}

type Bound<T> = Result<T, ConditionError>;

impl<'c> Binder<'c> {
    fn new(catalogue: &'c dyn Catalogue) -> Self {
        Self {
            catalogue,
            stack: Vec::new(),
            done: HashMap::new(),
        }
    }

    fn root(&mut self, condition: &Condition) -> Bound<BoundCondition> {
        check_depth(condition)?;
        self.condition(condition, &NodePath::default())
    }

    fn condition(&mut self, condition: &Condition, path: &NodePath) -> Bound<BoundCondition> {
        Ok(match condition {
            Condition::And(items) => {
                BoundCondition::And(self.operands(items, path, "AND", Step::And)?)
            }
            Condition::Or(items) => {
                BoundCondition::Or(self.operands(items, path, "OR", Step::Or)?)
            }
            Condition::Not(inner) => {
                BoundCondition::Not(Box::new(self.condition(inner, &path.child(Step::Not))?))
            }
            Condition::Predicate(predicate) => {
                BoundCondition::Predicate(self.predicate(predicate, path)?)
            }
        })
    }

    fn operands(
        &mut self,
        items: &[Condition],
        path: &NodePath,
        operator: &str,
        step: fn(usize) -> Step,
    ) -> Bound<Vec<BoundCondition>> {
        if items.is_empty() {
            return Err(ConditionError::Malformed {
                path: path.clone(),
                reason: format!("an {operator} needs at least one operand"),
            });
        }
        items
            .iter()
            .enumerate()
            .map(|(index, item)| self.condition(item, &path.child(step(index))))
            .collect()
    }

    fn predicate(&mut self, predicate: &Predicate, path: &NodePath) -> Bound<BoundPredicate> {
        let checker = Checker { path };
        Ok(match predicate {
            Predicate::HasTag(reference) => BoundPredicate::HasTag {
                tag: self.tag(reference.as_str(), path)?.id,
            },
            Predicate::Tag { tag, test } => {
                let info = self.tag(tag.as_str(), path)?;
                checker.tag(&info, tag.as_str(), test)?
            }
            Predicate::Field {
                field: CustomerField::Gender,
                test,
            } => BoundPredicate::Gender {
                any_of: checker.gender(test)?,
            },
            Predicate::Field { field, test } => BoundPredicate::Field {
                field: *field,
                test: checker.text(field.keyword(), test, true, plain_text)?,
            },
            Predicate::Age(test) => BoundPredicate::Age {
                test: checker.number("age", test, age)?,
            },
            Predicate::HasAttr(key) => BoundPredicate::HasAttr {
                key: self.attribute(key, path)?,
            },
            Predicate::Attr { key, test } => {
                let key = self.attribute(key, path)?;
                let test = checker.text(&format!("attr {key:?}"), test, true, plain_text)?;
                BoundPredicate::Attr { key, test }
            }
            Predicate::Metric { metric, test } => {
                if !self.catalogue.metric_available(*metric) {
                    return Err(ConditionError::UnknownMetric {
                        path: path.clone(),
                        metric: metric.to_string(),
                    });
                }
                BoundPredicate::Metric {
                    metric: *metric,
                    test: checker.number(&format!("metric {metric}"), test, plain_number)?,
                }
            }
            Predicate::BoughtCategory(category) => BoundPredicate::BoughtCategory {
                category: checker.category(category)?,
            },
            Predicate::Purchases { filter, test } => BoundPredicate::Purchases {
                filter: checker.purchase_filter(filter)?,
                test: checker.number("purchases(…)", test, plain_number)?,
            },
            Predicate::Spent { filter, test } => BoundPredicate::Spent {
                filter: checker.purchase_filter(filter)?,
                test: checker.number("spent(…)", test, plain_number)?,
            },
            Predicate::InSegment(name) => self.segment(name, path)?,
        })
    }

    fn tag(&self, reference: &str, path: &NodePath) -> Bound<TagInfo> {
        match self.catalogue.tag(&crate::ast::TagRef::new(reference)) {
            TagLookup::Found(info) => Ok(info),
            TagLookup::Unknown => Err(ConditionError::UnknownTag {
                path: path.clone(),
                reference: reference.to_owned(),
            }),
            TagLookup::Ambiguous { categories } => Err(ConditionError::AmbiguousTag {
                path: path.clone(),
                reference: reference.to_owned(),
                categories,
            }),
        }
    }

    fn attribute(&self, raw: &str, path: &NodePath) -> Bound<String> {
        let key = text::normalize(raw);
        if key.is_empty() || !self.catalogue.attribute_known(&key) {
            return Err(ConditionError::UnknownAttribute {
                path: path.clone(),
                key: raw.to_owned(),
            });
        }
        Ok(key)
    }

    fn segment(&mut self, name: &str, path: &NodePath) -> Bound<BoundPredicate> {
        let name_key = text::key(name);
        if let Some(start) = self.stack.iter().position(|(key, _)| *key == name_key) {
            let mut cycle: Vec<String> = self.stack[start..]
                .iter()
                .map(|(_, written)| written.clone())
                .collect();
            cycle.push(name.to_owned());
            return Err(ConditionError::SegmentCycle {
                path: path.clone(),
                cycle,
            });
        }
        if let Some((id, stored_name, condition)) = self.done.get(&name_key) {
            return Ok(BoundPredicate::InSegment {
                id: id.clone(),
                name: stored_name.clone(),
                condition: Arc::clone(condition),
            });
        }
        if self.stack.len() >= MAX_SEGMENT_DEPTH {
            return Err(ConditionError::SegmentsTooDeep {
                path: path.clone(),
                limit: MAX_SEGMENT_DEPTH,
            });
        }
        let Some(segment) = self.catalogue.segment(name) else {
            return Err(ConditionError::UnknownSegment {
                path: path.clone(),
                name: name.to_owned(),
            });
        };
        let inner_path = path.child(Step::Segment(segment.name.clone()));
        check_depth(&segment.condition).map_err(|error| match error {
            ConditionError::TooDeep { depth, limit, .. } => ConditionError::TooDeep {
                path: inner_path.clone(),
                depth,
                limit,
            },
            other => other,
        })?;
        self.stack.push((name_key.clone(), segment.name.clone()));
        let bound = self.condition(&segment.condition, &inner_path);
        self.stack.pop();
        let condition = Arc::new(bound?);
        self.done.insert(
            name_key,
            (
                segment.id.clone(),
                segment.name.clone(),
                Arc::clone(&condition),
            ),
        );
        Ok(BoundPredicate::InSegment {
            id: segment.id,
            name: segment.name,
            condition,
        })
    }
}

/// Type checks for one predicate; errors carry its path.
struct Checker<'p> {
    path: &'p NodePath,
}

/// Converts one literal to the compared form, or says why it cannot be.
type Convert<T> = fn(&Literal) -> Result<T, String>;

impl Checker<'_> {
    fn mismatch(&self, subject: &str, reason: impl Into<String>) -> ConditionError {
        ConditionError::Mismatch {
            path: self.path.clone(),
            subject: subject.to_owned(),
            reason: reason.into(),
        }
    }

    fn tag(&self, info: &TagInfo, reference: &str, test: &Comparison) -> Bound<BoundPredicate> {
        let subject = format!("tag {reference:?}");
        let tag = info.id.clone();
        let canonical = |literal: &Literal| -> Result<String, String> {
            let raw = match literal {
                Literal::String(raw) => raw.clone(),
                Literal::Bool(value) if info.value_type == ValueType::Bool => value.to_string(),
                other => {
                    return Err(format!(
                        "a {} tag is compared with a string, not {}",
                        info.value_type.as_str(),
                        other.kind()
                    ));
                }
            };
            match check_value("", info.value_type, &info.enum_values, &raw) {
                Ok(value) => Ok(text::key(&value.unwrap_or_default())),
                Err(DomainError::Invalid { reason, .. }) => Err(reason),
            }
        };
        Ok(match info.value_type {
            ValueType::Flag => {
                return Err(self.mismatch(
                    &subject,
                    format!("a flag tag has no value; test it with has_tag({reference:?})"),
                ));
            }
            ValueType::Enum | ValueType::Bool => BoundPredicate::TagText {
                tag,
                test: self.text_with(&subject, test, false, &canonical)?,
            },
            ValueType::Text => BoundPredicate::TagText {
                tag,
                test: self.text_with(&subject, test, true, &canonical)?,
            },
            ValueType::Number => BoundPredicate::TagNumber {
                tag,
                test: self.number(&subject, test, tag_number)?,
            },
            ValueType::Date => BoundPredicate::TagDate {
                tag,
                test: self.number(&subject, test, tag_date)?,
            },
        })
    }

    fn text(
        &self,
        subject: &str,
        test: &Comparison,
        contains: bool,
        convert: Convert<String>,
    ) -> Bound<TextTest> {
        self.text_with(subject, test, contains, &convert)
    }

    fn text_with(
        &self,
        subject: &str,
        test: &Comparison,
        allow_contains: bool,
        convert: &dyn Fn(&Literal) -> Result<String, String>,
    ) -> Bound<TextTest> {
        let convert =
            |literal: &Literal| convert(literal).map_err(|reason| self.mismatch(subject, reason));
        Ok(match test {
            Comparison::Compare {
                op: CmpOp::Eq,
                value,
            } => TextTest::Eq(convert(value)?),
            Comparison::Compare {
                op: CmpOp::Ne,
                value,
            } => TextTest::Ne(convert(value)?),
            Comparison::Compare { op, .. } => {
                return Err(self.mismatch(
                    subject,
                    format!(
                        "{} needs numbers or dates; text takes =, !=, in{}",
                        op.as_str(),
                        if allow_contains { " and contains" } else { "" }
                    ),
                ));
            }
            Comparison::In(values) => TextTest::In(self.list(subject, values, convert)?),
            Comparison::Between { .. } => {
                return Err(self.mismatch(subject, "between needs numbers or dates"));
            }
            Comparison::Contains(part) if allow_contains => TextTest::Contains(text::key(part)),
            Comparison::Contains(_) => {
                return Err(self.mismatch(subject, "contains applies to text only"));
            }
        })
    }

    fn number(&self, subject: &str, test: &Comparison, convert: Convert<f64>) -> Bound<NumberTest> {
        let convert =
            |literal: &Literal| convert(literal).map_err(|reason| self.mismatch(subject, reason));
        Ok(match test {
            Comparison::Compare { op, value } => NumberTest::Compare(*op, convert(value)?),
            Comparison::In(values) => NumberTest::In(self.list(subject, values, convert)?),
            Comparison::Between { low, high } => {
                let (low_value, high_value) = (convert(low)?, convert(high)?);
                if low_value > high_value {
                    return Err(self.mismatch(
                        subject,
                        format!("between {low} and {high}: the low end is above the high end"),
                    ));
                }
                NumberTest::Between(low_value, high_value)
            }
            Comparison::Contains(_) => {
                return Err(self.mismatch(subject, "contains applies to text only"));
            }
        })
    }

    fn list<T>(
        &self,
        subject: &str,
        values: &[Literal],
        convert: impl Fn(&Literal) -> Bound<T>,
    ) -> Bound<Vec<T>> {
        if values.is_empty() {
            return Err(self.mismatch(subject, "in [] needs at least one value"));
        }
        values.iter().map(convert).collect()
    }

    fn gender(&self, test: &Comparison) -> Bound<Vec<Gender>> {
        let all = [
            Gender::Unspecified,
            Gender::Male,
            Gender::Female,
            Gender::Other,
        ];
        let one = |literal: &Literal| -> Bound<Gender> {
            match literal {
                Literal::String(raw) => parse_gender(raw).ok_or_else(|| {
                    self.mismatch(
                        "gender",
                        format!("{raw:?} is not a gender (男/male, 女/female, 其他/other, 未知/unspecified)"),
                    )
                }),
                other => Err(self.mismatch("gender", format!("a gender is a string, not {}", other.kind()))),
            }
        };
        Ok(match test {
            Comparison::Compare {
                op: CmpOp::Eq,
                value,
            } => vec![one(value)?],
            Comparison::Compare {
                op: CmpOp::Ne,
                value,
            } => {
                let excluded = one(value)?;
                all.into_iter()
                    .filter(|gender| *gender != excluded)
                    .collect()
            }
            Comparison::In(values) => {
                let listed = self.list("gender", values, one)?;
                all.into_iter()
                    .filter(|gender| listed.contains(gender))
                    .collect()
            }
            _ => return Err(self.mismatch("gender", "gender takes =, != and in")),
        })
    }

    fn category(&self, raw: &str) -> Bound<String> {
        let key = text::key(raw);
        if key.is_empty() {
            return Err(self.mismatch("category", "must not be empty"));
        }
        Ok(key)
    }

    fn purchase_filter(&self, filter: &PurchaseFilter) -> Bound<BoundPurchaseFilter> {
        if let Some(days) = filter.days
            && !(1..=crate::ast::Metric::MAX_WINDOW_DAYS).contains(&days)
        {
            return Err(self.mismatch("days", format!("{days} is not from 1 to 3660")));
        }
        Ok(BoundPurchaseFilter {
            category: filter
                .category
                .as_deref()
                .map(|category| self.category(category))
                .transpose()?,
            days: filter.days,
        })
    }
}

fn plain_text(literal: &Literal) -> Result<String, String> {
    match literal {
        Literal::String(raw) => Ok(text::key(raw)),
        other => Err(format!("compared with a string, not {}", other.kind())),
    }
}

fn plain_number(literal: &Literal) -> Result<f64, String> {
    match literal {
        Literal::Number(number) if number.is_finite() => Ok(*number),
        other => Err(format!("compared with a number, not {}", other.kind())),
    }
}

fn age(literal: &Literal) -> Result<f64, String> {
    match literal {
        Literal::Number(years) if years.fract() == 0.0 && (0.0..=MAX_AGE).contains(years) => {
            Ok(*years)
        }
        other => Err(format!(
            "compared with a whole number of years from 0 to 200, not {other}"
        )),
    }
}

fn tag_number(literal: &Literal) -> Result<f64, String> {
    match literal {
        Literal::Number(number) if number.is_finite() => Ok(*number),
        Literal::String(raw) => check_value("", ValueType::Number, &[], raw)
            .map_err(|DomainError::Invalid { reason, .. }| reason)?
            .and_then(|canonical| canonical.parse().ok())
            .ok_or_else(|| format!("{raw:?} is not a number")),
        other => Err(format!(
            "a number tag is compared with a number, not {}",
            other.kind()
        )),
    }
}

fn tag_date(literal: &Literal) -> Result<f64, String> {
    match literal {
        Literal::Date(date) => Ok(day_number(*date)),
        Literal::String(raw) => parse_date(raw.trim())
            .map(day_number)
            .ok_or_else(|| format!("{raw:?} is not a date (YYYY-MM-DD)")),
        other => Err(format!(
            "a date tag is compared with a date, not {}",
            other.kind()
        )),
    }
}

/// Reads a gender as people write it, in Chinese or English.
pub fn parse_gender(raw: &str) -> Option<Gender> {
    Some(match text::key(raw).as_str() {
        "男" | "male" | "m" | "man" => Gender::Male,
        "女" | "female" | "f" | "woman" => Gender::Female,
        "其他" | "other" => Gender::Other,
        "未知" | "unspecified" | "unknown" => Gender::Unspecified,
        _ => return None,
    })
}
