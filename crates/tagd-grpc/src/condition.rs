//! The condition's two wire forms to `tagd-condition`'s tree and back: text
//! goes through the parser; the structured form maps node for node, errors
//! naming the request path of the offending node.

use chrono::NaiveDate;
use tagd_condition::{
    CmpOp, Comparison, Condition, CustomerField, Literal, Metric, Predicate, PurchaseFilter, TagRef,
};
use tagd_proto::v1 as pb;
use tagd_proto::v1::{comparison, condition, condition_input, literal, predicate};
use tagd_segments::SegmentError;
use tonic::Status;

use crate::convert::invalid;
use crate::error::OrStatus;

/// The condition of a request (`field` names it in errors): exactly one form.
pub(crate) fn from_input(
    field: &str,
    input: Option<&pb::ConditionInput>,
) -> Result<Condition, Status> {
    match input.and_then(|input| input.form.as_ref()) {
        None => Err(invalid(field, "must be set (text or tree)")),
        Some(condition_input::Form::Text(text)) => tagd_condition::parse(text)
            .map_err(|error| SegmentError::Condition {
                field: format!("{field}.text"),
                error,
            })
            .or_status(),
        Some(condition_input::Form::Tree(tree)) => from_tree(&format!("{field}.tree"), tree),
    }
}

/// A structured condition as the tree. AND/OR with one operand stand for
/// that operand (the tree keeps AND/OR to two or more).
pub(crate) fn from_tree(path: &str, node: &pb::Condition) -> Result<Condition, Status> {
    let operands = |list: &pb::ConditionList, name: &str| -> Result<Vec<Condition>, Status> {
        if list.operands.is_empty() {
            return Err(invalid(
                &format!("{path}.{name}"),
                "needs at least one operand",
            ));
        }
        list.operands
            .iter()
            .enumerate()
            .map(|(index, operand)| from_tree(&format!("{path}.{name}.operands[{index}]"), operand))
            .collect()
    };
    let combine = |mut items: Vec<Condition>, and: bool| {
        if items.len() == 1 {
            items.remove(0)
        } else if and {
            Condition::And(items)
        } else {
            Condition::Or(items)
        }
    };
    Ok(match node.node.as_ref() {
        None => return Err(invalid(path, "must be and, or, not or a predicate")),
        Some(condition::Node::And(list)) => combine(operands(list, "and")?, true),
        Some(condition::Node::Or(list)) => combine(operands(list, "or")?, false),
        Some(condition::Node::Not(inner)) => {
            Condition::Not(Box::new(from_tree(&format!("{path}.not"), inner)?))
        }
        Some(condition::Node::Predicate(predicate)) => {
            Condition::Predicate(from_predicate(&format!("{path}.predicate"), predicate)?)
        }
    })
}

fn from_predicate(path: &str, predicate: &pb::Predicate) -> Result<Predicate, Status> {
    let test = |name: &str, test: Option<&pb::Comparison>| {
        from_comparison(&format!("{path}.{name}.test"), test)
    };
    Ok(match predicate.kind.as_ref() {
        None => return Err(invalid(path, "must name a predicate")),
        Some(predicate::Kind::HasTag(tag)) => Predicate::HasTag(TagRef::new(tag.clone())),
        Some(predicate::Kind::Tag(tag)) => Predicate::Tag {
            tag: TagRef::new(tag.tag.clone()),
            test: test("tag", tag.test.as_ref())?,
        },
        Some(predicate::Kind::Field(field)) => {
            let kind = pb::ConditionField::try_from(field.field)
                .ok()
                .and_then(customer_field)
                .ok_or_else(|| invalid(&format!("{path}.field.field"), "must name a field"))?;
            Predicate::Field {
                field: kind,
                test: test("field", field.test.as_ref())?,
            }
        }
        Some(predicate::Kind::Age(age)) => {
            Predicate::Age(from_comparison(&format!("{path}.age"), Some(age))?)
        }
        Some(predicate::Kind::HasAttr(key)) => Predicate::HasAttr(key.clone()),
        Some(predicate::Kind::Attr(attr)) => Predicate::Attr {
            key: attr.key.clone(),
            test: test("attr", attr.test.as_ref())?,
        },
        Some(predicate::Kind::Metric(metric)) => Predicate::Metric {
            metric: Metric::from_keyword(&metric.metric.trim().to_lowercase()).ok_or_else(
                || {
                    invalid(
                        &format!("{path}.metric.metric"),
                        &format!("{:?} is not a metric", metric.metric),
                    )
                },
            )?,
            test: test("metric", metric.test.as_ref())?,
        },
        Some(predicate::Kind::BoughtCategory(category)) => {
            Predicate::BoughtCategory(category.clone())
        }
        Some(predicate::Kind::Purchases(purchases)) => Predicate::Purchases {
            filter: filter(&format!("{path}.purchases"), purchases)?,
            test: test("purchases", purchases.test.as_ref())?,
        },
        Some(predicate::Kind::Spent(spent)) => Predicate::Spent {
            filter: filter(&format!("{path}.spent"), spent)?,
            test: test("spent", spent.test.as_ref())?,
        },
        Some(predicate::Kind::InSegment(name)) => Predicate::InSegment(name.clone()),
    })
}

fn filter(path: &str, test: &pb::PurchaseTest) -> Result<PurchaseFilter, Status> {
    if let Some(days) = test.days
        && !(1..=Metric::MAX_WINDOW_DAYS).contains(&days)
    {
        return Err(invalid(
            &format!("{path}.days"),
            &format!("is {days}; it must be 1..={}", Metric::MAX_WINDOW_DAYS),
        ));
    }
    Ok(PurchaseFilter {
        category: test.category.clone(),
        days: test.days,
    })
}

fn from_comparison(path: &str, test: Option<&pb::Comparison>) -> Result<Comparison, Status> {
    let value =
        |name: &str, value: Option<&pb::Literal>| from_literal(&format!("{path}.{name}"), value);
    Ok(match test.and_then(|test| test.kind.as_ref()) {
        None => return Err(invalid(path, "must be set")),
        Some(comparison::Kind::Compare(compare)) => Comparison::Compare {
            op: match pb::CompareOp::try_from(compare.op) {
                Ok(pb::CompareOp::Eq) => CmpOp::Eq,
                Ok(pb::CompareOp::Ne) => CmpOp::Ne,
                Ok(pb::CompareOp::Lt) => CmpOp::Lt,
                Ok(pb::CompareOp::Le) => CmpOp::Le,
                Ok(pb::CompareOp::Gt) => CmpOp::Gt,
                Ok(pb::CompareOp::Ge) => CmpOp::Ge,
                Ok(pb::CompareOp::Unspecified) | Err(_) => {
                    return Err(invalid(&format!("{path}.compare.op"), "must be set"));
                }
            },
            value: value("compare.value", compare.value.as_ref())?,
        },
        Some(comparison::Kind::In(list)) => {
            if list.values.is_empty() {
                return Err(invalid(&format!("{path}.in"), "needs at least one value"));
            }
            Comparison::In(
                list.values
                    .iter()
                    .enumerate()
                    .map(|(index, literal)| value(&format!("in.values[{index}]"), Some(literal)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Some(comparison::Kind::Between(range)) => Comparison::Between {
            low: value("between.low", range.low.as_ref())?,
            high: value("between.high", range.high.as_ref())?,
        },
        Some(comparison::Kind::Contains(part)) => Comparison::Contains(part.clone()),
    })
}

fn from_literal(path: &str, value: Option<&pb::Literal>) -> Result<Literal, Status> {
    Ok(match value.and_then(|value| value.kind.as_ref()) {
        None => return Err(invalid(path, "must be set")),
        Some(literal::Kind::String(text)) => Literal::String(text.clone()),
        Some(literal::Kind::Number(number)) if number.is_finite() => Literal::Number(*number),
        Some(literal::Kind::Number(_)) => return Err(invalid(path, "must be a finite number")),
        Some(literal::Kind::Date(date)) => Literal::Date(
            NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .map_err(|_| invalid(path, &format!("{date:?} is not a YYYY-MM-DD date")))?,
        ),
        Some(literal::Kind::Bool(value)) => Literal::Bool(*value),
    })
}

fn customer_field(field: pb::ConditionField) -> Option<CustomerField> {
    Some(match field {
        pb::ConditionField::Unspecified => return None,
        pb::ConditionField::Name => CustomerField::Name,
        pb::ConditionField::Gender => CustomerField::Gender,
        pb::ConditionField::Province => CustomerField::Province,
        pb::ConditionField::City => CustomerField::City,
        pb::ConditionField::District => CustomerField::District,
        pb::ConditionField::Company => CustomerField::Company,
        pb::ConditionField::Channel => CustomerField::Channel,
    })
}

fn field_to_proto(field: CustomerField) -> pb::ConditionField {
    match field {
        CustomerField::Name => pb::ConditionField::Name,
        CustomerField::Gender => pb::ConditionField::Gender,
        CustomerField::Province => pb::ConditionField::Province,
        CustomerField::City => pb::ConditionField::City,
        CustomerField::District => pb::ConditionField::District,
        CustomerField::Company => pb::ConditionField::Company,
        CustomerField::Channel => pb::ConditionField::Channel,
    }
}

/// The structured form of a tree.
pub(crate) fn to_tree(node: &Condition) -> pb::Condition {
    let list = |items: &[Condition]| pb::ConditionList {
        operands: items.iter().map(to_tree).collect(),
    };
    pb::Condition {
        node: Some(match node {
            Condition::And(items) => condition::Node::And(list(items)),
            Condition::Or(items) => condition::Node::Or(list(items)),
            Condition::Not(inner) => condition::Node::Not(Box::new(to_tree(inner))),
            Condition::Predicate(predicate) => {
                condition::Node::Predicate(predicate_to_proto(predicate))
            }
        }),
    }
}

fn predicate_to_proto(predicate: &Predicate) -> pb::Predicate {
    let purchase = |filter: &PurchaseFilter, test: &Comparison| pb::PurchaseTest {
        category: filter.category.clone(),
        days: filter.days,
        test: Some(comparison_to_proto(test)),
    };
    pb::Predicate {
        kind: Some(match predicate {
            Predicate::HasTag(tag) => predicate::Kind::HasTag(tag.0.clone()),
            Predicate::Tag { tag, test } => predicate::Kind::Tag(pb::TagTest {
                tag: tag.0.clone(),
                test: Some(comparison_to_proto(test)),
            }),
            Predicate::Field { field, test } => predicate::Kind::Field(pb::FieldTest {
                field: field_to_proto(*field).into(),
                test: Some(comparison_to_proto(test)),
            }),
            Predicate::Age(test) => predicate::Kind::Age(comparison_to_proto(test)),
            Predicate::HasAttr(key) => predicate::Kind::HasAttr(key.clone()),
            Predicate::Attr { key, test } => predicate::Kind::Attr(pb::AttributeTest {
                key: key.clone(),
                test: Some(comparison_to_proto(test)),
            }),
            Predicate::Metric { metric, test } => predicate::Kind::Metric(pb::MetricTest {
                metric: metric.to_string(),
                test: Some(comparison_to_proto(test)),
            }),
            Predicate::BoughtCategory(category) => {
                predicate::Kind::BoughtCategory(category.clone())
            }
            Predicate::Purchases { filter, test } => {
                predicate::Kind::Purchases(purchase(filter, test))
            }
            Predicate::Spent { filter, test } => predicate::Kind::Spent(purchase(filter, test)),
            Predicate::InSegment(name) => predicate::Kind::InSegment(name.clone()),
        }),
    }
}

fn comparison_to_proto(test: &Comparison) -> pb::Comparison {
    pb::Comparison {
        kind: Some(match test {
            Comparison::Compare { op, value } => comparison::Kind::Compare(pb::Compare {
                op: match op {
                    CmpOp::Eq => pb::CompareOp::Eq,
                    CmpOp::Ne => pb::CompareOp::Ne,
                    CmpOp::Lt => pb::CompareOp::Lt,
                    CmpOp::Le => pb::CompareOp::Le,
                    CmpOp::Gt => pb::CompareOp::Gt,
                    CmpOp::Ge => pb::CompareOp::Ge,
                }
                .into(),
                value: Some(literal_to_proto(value)),
            }),
            Comparison::In(values) => comparison::Kind::In(pb::LiteralList {
                values: values.iter().map(literal_to_proto).collect(),
            }),
            Comparison::Between { low, high } => comparison::Kind::Between(pb::Range {
                low: Some(literal_to_proto(low)),
                high: Some(literal_to_proto(high)),
            }),
            Comparison::Contains(part) => comparison::Kind::Contains(part.clone()),
        }),
    }
}

fn literal_to_proto(value: &Literal) -> pb::Literal {
    pb::Literal {
        kind: Some(match value {
            Literal::String(text) => literal::Kind::String(text.clone()),
            Literal::Number(number) => literal::Kind::Number(*number),
            Literal::Date(date) => literal::Kind::Date(date.format("%Y-%m-%d").to_string()),
            Literal::Bool(value) => literal::Kind::Bool(*value),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_tree_forms_map_one_to_one() {
        let text = r#"(tag("价值等级") = "高价值" OR has_tag("流失风险")) AND NOT province in ["北京", "上海"]
            AND age between 25 and 35 AND attr("会员等级") != "金卡" AND orders_90d >= 3
            AND purchases(category = "母婴", days = 90) >= 2 AND spent(days = 365) > 10000.5
            AND tag("生日") < date("2026-01-31") AND name contains "张" AND bought_category("母婴")
            AND in_segment("北京高价值") AND tag("活跃") = true"#;
        let parsed = tagd_condition::parse(text).unwrap();
        let tree = to_tree(&parsed);
        assert_eq!(from_tree("condition", &tree).unwrap(), parsed);
    }

    #[test]
    fn a_malformed_tree_names_the_node() {
        let tree = pb::Condition {
            node: Some(condition::Node::And(pb::ConditionList {
                operands: vec![
                    pb::Condition {
                        node: Some(condition::Node::Predicate(pb::Predicate {
                            kind: Some(predicate::Kind::HasTag("a".into())),
                        })),
                    },
                    pb::Condition { node: None },
                ],
            })),
        };
        let error = from_tree("condition.tree", &tree).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("condition.tree.and.operands[1]"),
            "{}",
            error.message()
        );
    }
}
