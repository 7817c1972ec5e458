//! The index's API on hand-made data: conditions from text through
//! `tagd-condition`, unsupported predicates, paging, bad values, deletes.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use chrono::NaiveDate;
use tagd_condition::{BoundCondition, MemoryCatalogue, Metric, bind, parse};
use tagd_core::customers::{CustomerFields, Gender};
use tagd_core::tags::ValueType;
use tagd_segment_index::{IndexError, SegmentIndex};

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn catalogue() -> MemoryCatalogue {
    let mut catalogue = MemoryCatalogue::default()
        .with_tag(
            "tier",
            "价值等级",
            "价值等级",
            ValueType::Enum,
            &["高价值", "中价值", "低价值"],
        )
        .with_tag("churn", "风险", "流失风险", ValueType::Flag, &[])
        .with_tag("spend", "消费", "年消费额", ValueType::Number, &[])
        .with_tag("since", "会员", "注册日", ValueType::Date, &[])
        .with_segment(
            "s1",
            "北京女性",
            parse(r#"province = "北京" AND gender = "女""#).unwrap(),
        );
    catalogue.any_attribute = true;
    catalogue
}

fn bound(text: &str) -> BoundCondition {
    bind(&parse(text).unwrap(), &catalogue()).unwrap()
}

fn fixture() -> SegmentIndex {
    let mut index = SegmentIndex::new();
    for number in 0..10u32 {
        let id = format!("c{number}");
        let mut fields = CustomerFields {
            gender: if number.is_multiple_of(2) {
                Gender::Female
            } else {
                Gender::Male
            },
            birthday: Some(date("2000-03-01")),
            ..CustomerFields::default()
        };
        fields.address.province = if number < 5 { "北京" } else { "上海" }.into();
        fields.attributes.insert(
            "会员等级".into(),
            if number < 3 { "金卡" } else { "银卡" }.into(),
        );
        index.upsert_customer(&id, &fields).unwrap();
        let tier = ["高价值", "中价值", "低价值"][number as usize % 3];
        index
            .assign(&id, "tier", ValueType::Enum, Some(tier))
            .unwrap();
        index
            .assign(
                &id,
                "spend",
                ValueType::Number,
                Some(&(f64::from(number) * 1000.0).to_string()),
            )
            .unwrap();
        if number.is_multiple_of(4) {
            index.assign(&id, "churn", ValueType::Flag, None).unwrap();
        }
        index
            .set_metric(&id, Metric::Orders { days: 90 }, Some(f64::from(number)))
            .unwrap();
    }
    index
}

#[test]
fn counts_typical_segments() {
    let index = fixture();
    let today = date("2026-03-01");
    let count = |text: &str| index.count(&bound(text), today).unwrap();
    assert_eq!(count(r#"tag("价值等级") = "高价值""#), 4);
    assert_eq!(
        count(r#"tag("价值等级") = "高价值" AND NOT has_tag("流失风险")"#),
        3
    );
    assert_eq!(
        count(r#"province = "北京" AND tag("年消费额") >= 2000 AND NOT has_tag("流失风险")"#),
        2
    );
    assert_eq!(count(r#"attr("会员等级") = "金卡" OR orders_90d > 7"#), 5);
    assert_eq!(count(r#"in_segment("北京女性")"#), 3);
    assert_eq!(count("age = 26"), 10);
    assert_eq!(count("age > 26 OR age < 26"), 0);
    assert_eq!(
        count("age > 25 AND age <= 26 AND age between 26 and 26"),
        10
    );
    assert_eq!(
        index.count(&bound("age = 26"), date("2026-02-28")).unwrap(),
        0
    );
    assert_eq!(count(r#"tag("注册日") > date("2020-01-01")"#), 0);
    assert_eq!(count(r#"NOT tag("注册日") > date("2020-01-01")"#), 10);
}

#[test]
fn unsupported_predicates_are_named() {
    let index = fixture();
    let today = date("2026-03-01");
    let refused = |text: &str| match index.count(&bound(text), today) {
        Err(IndexError::Unsupported { predicate }) => predicate,
        other => panic!("{text}: {other:?}"),
    };
    assert!(refused(r#"name contains "张""#).starts_with("name"));
    assert!(refused(r#"has_tag("流失风险") OR company = "x""#).starts_with("company"));
    assert!(refused(r#"purchases(category = "母婴", days = 90) >= 2"#).starts_with("purchases"));
    assert!(refused("spent(days = 365) > 10000").starts_with("spent"));
    assert!(refused("recency_days > 180").starts_with("recency_days"));
    assert!(refused(r#"bought_category("母婴")"#).starts_with("bought_category"));
}

#[test]
fn members_page_in_order() {
    let index = fixture();
    let today = date("2026-03-01");
    let condition = bound(r#"NOT has_tag("流失风险")"#);
    let first = index.members_page(&condition, today, None, 4).unwrap();
    assert_eq!(first.ids, ["c1", "c2", "c3", "c5"]);
    let second = index
        .members_page(&condition, today, first.next, 4)
        .unwrap();
    assert_eq!(second.ids, ["c6", "c7", "c9"]);
    assert_eq!(second.next, None);
}

#[test]
fn writes_move_customers_between_bitmaps() {
    let mut index = fixture();
    let today = date("2026-03-01");
    let count = |index: &SegmentIndex, text: &str| index.count(&bound(text), today).unwrap();
    index
        .assign("c1", "tier", ValueType::Enum, Some("高价值"))
        .unwrap();
    assert_eq!(count(&index, r#"tag("价值等级") = "高价值""#), 5);
    assert_eq!(count(&index, r#"tag("价值等级") = "中价值""#), 2);
    assert!(index.unassign("c1", "tier"));
    assert!(!index.unassign("c1", "tier"));
    assert_eq!(count(&index, r#"has_tag("价值等级")"#), 9);
    assert!(index.delete_customer("c0"));
    assert!(!index.delete_customer("c0"));
    assert_eq!(index.customer_count(), 9);
    assert_eq!(count(&index, r#"has_tag("流失风险")"#), 2);
    assert_eq!(count(&index, r#"NOT has_tag("流失风险")"#), 7);
    assert_eq!(count(&index, r#"tag("年消费额") < 1000"#), 0);
    assert_eq!(count(&index, r#"gender = "女""#), 4);

    let bad = index
        .assign("c1", "spend", ValueType::Number, Some("abc"))
        .unwrap_err();
    assert!(matches!(bad, IndexError::BadValue { .. }));
    assert_eq!(
        count(&index, r#"tag("年消费额") = 1000"#),
        1,
        "a bad value changes nothing"
    );
    let changed = index
        .assign("c1", "spend", ValueType::Text, Some("x"))
        .unwrap_err();
    assert!(matches!(changed, IndexError::TypeChanged { .. }));
    assert!(index.memory_bytes() > 0);
}

#[test]
fn the_index_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<SegmentIndex>();
    shared::<std::sync::Arc<std::sync::RwLock<SegmentIndex>>>();
}
