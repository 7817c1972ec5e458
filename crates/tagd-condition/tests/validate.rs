//! Validation against a catalogue and the reference evaluator, end to end
//! from text.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use chrono::NaiveDate;
use tagd_condition::{
    BoundCondition, BoundPredicate, ConditionError, CustomerFacts, MemoryCatalogue, Metric,
    Purchase, bind, bind_segment, evaluate, parse, validate,
};
use tagd_core::customers::Gender;
use tagd_core::tags::ValueType;

fn catalogue() -> MemoryCatalogue {
    MemoryCatalogue::default()
        .with_tag(
            "t-tier",
            "价值等级",
            "价值等级",
            ValueType::Enum,
            &["高价值", "中价值", "低价值"],
        )
        .with_tag("t-churn", "风险", "流失风险", ValueType::Flag, &[])
        .with_tag("t-spend", "消费", "年消费额", ValueType::Number, &[])
        .with_tag("t-since", "会员", "注册日", ValueType::Date, &[])
        .with_tag("t-vip", "会员", "是否会员", ValueType::Bool, &[])
        .with_tag("t-note", "备注", "爱好", ValueType::Text, &[])
        .with_tag("t-a1", "活动", "高价值", ValueType::Flag, &[])
        .with_tag("t-a2", "价值", "高价值", ValueType::Flag, &[])
        .with_attribute("会员等级")
        .with_segment(
            "s-bj",
            "北京高价值",
            parse(r#"province = "北京" AND tag("价值等级") = "高价值""#).unwrap(),
        )
        .with_segment(
            "s-a",
            "A",
            parse(r#"in_segment("B") OR has_tag("流失风险")"#).unwrap(),
        )
        .with_segment("s-b", "B", parse(r#"NOT in_segment("A")"#).unwrap())
        .with_segment(
            "s-c",
            "C",
            parse(r#"in_segment("北京高价值") AND in_segment("北京高价值")"#).unwrap(),
        )
}

fn check(text: &str) -> Result<BoundCondition, ConditionError> {
    bind(&parse(text)?, &catalogue())
}

fn message(text: &str) -> String {
    check(text).unwrap_err().to_string()
}

#[test]
fn names_are_resolved_to_ids() {
    let bound = check(r#"has_tag("流失风险") AND tag("价值等级/价值等级") = "高价值" AND in_segment("北京高价值")"#).unwrap();
    assert_eq!(bound.tag_ids(), vec!["t-churn", "t-tier"]);
    assert_eq!(bound.segment_ids(), vec!["s-bj"]);
    assert!(
        validate(
            &parse(r#"attr("会员等级") = "金卡""#).unwrap(),
            &catalogue()
        )
        .is_ok()
    );
}

#[test]
fn unknown_names_are_named_with_their_path() {
    assert_eq!(
        message(r#"has_tag("流失风险") AND NOT tag("不存在") = "x""#),
        r#"condition.and[1].not: unknown tag "不存在""#
    );
    assert_eq!(
        message(r#"attr("积分") = "1""#),
        r#"condition: unknown attribute "积分""#
    );
    assert_eq!(
        message(r#"in_segment("无")"#),
        r#"condition: unknown segment "无""#
    );
    assert_eq!(
        message("orders_7d > 1"),
        "condition: metric orders_7d is not available"
    );
    let ambiguous = message(r#"has_tag("高价值")"#);
    assert!(ambiguous.contains("活动, 价值"), "{ambiguous}");
}

#[test]
fn comparisons_are_type_checked() {
    assert_eq!(
        message(r#"tag("年消费额") >= "abc""#),
        r#"condition: tag "年消费额": "abc" is not a number"#
    );
    assert!(check(r#"tag("年消费额") >= "5,000""#).is_ok());
    let enum_error = message(r#"tag("价值等级") in ["高价值", "超高价值"]"#);
    assert!(
        enum_error.contains(r#""超高价值" is not one of the allowed values"#),
        "{enum_error}"
    );
    assert!(message(r#"tag("价值等级") > "高价值""#).contains("> needs numbers or dates"));
    assert!(message(r#"tag("流失风险") = "x""#).contains(r#"test it with has_tag("流失风险")"#));
    assert!(message(r#"tag("注册日") > 5"#).contains("compared with a date"));
    assert!(
        check(r#"tag("注册日") > "2025-01-01" AND tag("注册日") <= date("2026-01-01")"#).is_ok()
    );
    assert!(check(r#"tag("是否会员") = true AND tag("是否会员") != "否""#).is_ok());
    assert!(message(r#"tag("是否会员") = "maybe""#).contains("not a boolean"));
    assert!(check(r#"tag("爱好") contains "户外""#).is_ok());
    assert!(message(r#"tag("价值等级") contains "高""#).contains("contains applies to text only"));
    assert!(message("age between 35 and 25").contains("low end is above the high end"));
    assert!(message("age > 25.5").contains("whole number of years"));
    assert!(message(r#"gender = "x""#).contains("not a gender"));
    assert!(message(r#"province > "a""#).contains("province"));
    assert!(message(r#"orders_90d >= "3""#).contains("not a string"));
}

#[test]
fn segment_cycles_are_refused_with_their_path() {
    let error = check(r#"in_segment("A")"#).unwrap_err();
    assert!(
        matches!(&error, ConditionError::SegmentCycle { cycle, .. } if cycle == &["A", "B", "A"])
    );
    assert_eq!(
        error.to_string(),
        r#"condition.in_segment("A").or[0].in_segment("B").not: segments reference each other in a cycle: A → B → A"#
    );
    let error = bind_segment(
        "北京高价值",
        &parse(r#"in_segment("C")"#).unwrap(),
        &catalogue(),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("北京高价值 → C → 北京高价值"),
        "{error}"
    );
    // A diamond is not a cycle, and is bound once.
    let bound = check(r#"in_segment("C")"#).unwrap();
    assert_eq!(bound.segment_ids(), vec!["s-c", "s-bj"]);
}

#[test]
fn malformed_trees_are_refused() {
    use tagd_condition::Condition;
    let empty = Condition::And(vec![]);
    assert!(
        bind(&empty, &catalogue())
            .unwrap_err()
            .to_string()
            .contains("at least one operand")
    );
    let mut deep = parse(r#"has_tag("流失风险")"#).unwrap();
    for _ in 0..100 {
        deep = deep.negate();
    }
    assert!(matches!(
        bind(&deep, &catalogue()),
        Err(ConditionError::TooDeep { depth: 101, .. })
    ));
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

#[test]
fn the_reference_evaluator_follows_the_rules() {
    let today = day("2026-03-01");
    let mut facts = CustomerFacts::default();
    facts.fields.gender = Gender::Female;
    facts.fields.birthday = Some(day("1996-03-01"));
    facts.fields.address.province = "北京".into();
    facts.fields.name = "张伟".into();
    facts
        .fields
        .attributes
        .insert("会员等级".into(), "金卡".into());
    facts.tags.insert("t-tier".into(), Some("高价值".into()));
    facts.tags.insert("t-spend".into(), Some("12000.5".into()));
    facts
        .tags
        .insert("t-since".into(), Some("2024-05-01".into()));
    facts.metrics.insert(Metric::Orders { days: 90 }, 3.0);
    facts.purchases = vec![
        Purchase {
            category: "母婴".into(),
            day: day("2026-02-01"),
            amount: 6000.0,
        },
        Purchase {
            category: "母婴".into(),
            day: day("2025-12-15"),
            amount: 5000.0,
        },
        Purchase {
            category: "美妆".into(),
            day: day("2024-01-01"),
            amount: 100.0,
        },
    ];
    let holds = |text: &str| evaluate(&check(text).unwrap(), &facts, today);
    assert!(holds(
        r#"tag("价值等级") = "高价值" AND NOT has_tag("流失风险")"#
    ));
    assert!(holds(
        r#"tag("年消费额") >= 5000 AND tag("年消费额") between 12000 and 12000.5"#
    ));
    assert!(holds(r#"tag("注册日") < date("2025-01-01")"#));
    assert!(holds(
        r#"province = "北京" AND gender = "女" AND age = 30 AND age between 25 and 35"#
    ));
    assert!(!holds("age > 30"));
    assert!(holds(r#"attr("会员等级") = "金卡" AND name contains "张""#));
    assert!(
        !holds(r#"city != "上海""#),
        "a missing field matches no value test"
    );
    assert!(holds(r#"NOT city = "上海""#));
    assert!(holds("orders_90d >= 3 AND NOT recency_days > 180"));
    assert!(
        !holds("recency_days <= 180"),
        "a missing metric matches nothing"
    );
    assert!(holds(
        r#"bought_category("母婴") AND purchases(category = "母婴", days = 90) >= 2"#
    ));
    assert!(!holds(r#"purchases(category = "母婴", days = 30) >= 2"#));
    assert!(holds("spent(days = 365) > 10000 AND spent() = 11100"));
    assert!(holds(r#"in_segment("北京高价值")"#));
    assert!(!holds(r#"tag("是否会员") = true"#));
    let bound = check(r#"gender != "女""#).unwrap();
    assert!(matches!(
        bound,
        BoundCondition::Predicate(BoundPredicate::Gender { ref any_of }) if any_of.len() == 3
    ));
}
