//! The index against the reference evaluator: random customers, random
//! writes (assign, change, remove, delete, fields, metrics) and random
//! conditions; counts and members must equal what
//! `tagd_condition::evaluate` says customer by customer.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use tagd_condition::{
    BoundCondition, BoundPredicate, CmpOp, CustomerFacts, CustomerField, Metric, NumberTest,
    Purchase, TextTest, day_number, evaluate,
};
use tagd_core::customers::Gender;
use tagd_core::tags::ValueType;
use tagd_core::text;
use tagd_segment_index::SegmentIndex;

const TAGS: [(&str, ValueType); 6] = [
    ("t-flag", ValueType::Flag),
    ("t-enum", ValueType::Enum),
    ("t-bool", ValueType::Bool),
    ("t-text", ValueType::Text),
    ("t-num", ValueType::Number),
    ("t-date", ValueType::Date),
];
const ENUM_VALUES: [&str; 5] = ["高价值", "中价值", "低价值", "VIP", "vip"];
const TEXT_VALUES: [&str; 4] = ["喜欢户外", "户外运动", "Outdoor", "outdoor fan"];
const NUMBERS: [f64; 8] = [-5.0, 0.0, 3.5, 5000.0, 12000.5, 1e6, -0.25, 0.001];
const DATES: [&str; 4] = ["2024-02-29", "2025-01-01", "2025-06-30", "2026-12-31"];
const PROVINCES: [&str; 5] = ["北京", "上海", "ＢＥＩＪＩＮＧ", "beijing", ""];
const CITIES: [&str; 3] = ["朝阳", "浦东", ""];
const CHANNELS: [&str; 3] = ["微信", "天猫", ""];
const ATTRIBUTE_VALUES: [&str; 3] = ["金卡", "银卡", "GOLD"];
const CATEGORIES: [&str; 3] = ["母婴", "美妆", "Food"];
const METRICS: [Metric; 2] = [Metric::Orders { days: 90 }, Metric::RecencyDays];
const CUSTOMERS: usize = 24;

fn customer_id(index: usize) -> String {
    if index.is_multiple_of(2) {
        format!("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f{index:04x}")
    } else {
        format!("c-{index}")
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// Birthdays bunched around a few ages, so age tests hit their edges.
fn birthday() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        (0u64..365 * 60).prop_map(|days| date("1966-01-01") + Days::new(days)),
        (prop::sample::select(vec![0u32, 1, 18, 25, 35]), 0u64..1500).prop_map(
            |(years, days)| date("2024-01-01")
                .checked_sub_months(chrono::Months::new(years * 12))
                .unwrap()
                - Days::new(days)
        ),
        Just(date("2000-02-29")),
    ]
}

#[derive(Debug, Clone)]
enum Write {
    Fields {
        customer: usize,
        gender: Gender,
        birthday: Option<NaiveDate>,
        province: usize,
        city: usize,
        channel: usize,
        attributes: Vec<(usize, usize)>,
    },
    Assign {
        customer: usize,
        tag: usize,
        value: usize,
    },
    Unassign {
        customer: usize,
        tag: usize,
    },
    Delete {
        customer: usize,
    },
    Metric {
        customer: usize,
        metric: usize,
        value: Option<usize>,
    },
    Bought {
        customer: usize,
        category: usize,
    },
}

fn gender() -> impl Strategy<Value = Gender> {
    prop::sample::select(vec![
        Gender::Unspecified,
        Gender::Male,
        Gender::Female,
        Gender::Other,
    ])
}

fn write() -> impl Strategy<Value = Write> {
    let customer = 0..CUSTOMERS;
    prop_oneof![
        3 => (customer.clone(), gender(), prop::option::of(birthday()),
            0..PROVINCES.len(), 0..CITIES.len(), 0..CHANNELS.len(),
            prop::collection::vec((0..2usize, 0..ATTRIBUTE_VALUES.len()), 0..3))
            .prop_map(|(customer, gender, birthday, province, city, channel, attributes)| Write::Fields {
                customer, gender, birthday, province, city, channel, attributes,
            }),
        6 => (customer.clone(), 0..TAGS.len(), 0..8usize)
            .prop_map(|(customer, tag, value)| Write::Assign { customer, tag, value }),
        2 => (customer.clone(), 0..TAGS.len()).prop_map(|(customer, tag)| Write::Unassign { customer, tag }),
        1 => customer.clone().prop_map(|customer| Write::Delete { customer }),
        2 => (customer.clone(), 0..METRICS.len(), prop::option::of(0..NUMBERS.len()))
            .prop_map(|(customer, metric, value)| Write::Metric { customer, metric, value }),
        1 => (customer, 0..CATEGORIES.len()).prop_map(|(customer, category)| Write::Bought { customer, category }),
    ]
}

fn tag_value(tag: usize, value: usize) -> Option<String> {
    match TAGS[tag].1 {
        ValueType::Flag => None,
        ValueType::Enum => Some(ENUM_VALUES[value % ENUM_VALUES.len()].to_owned()),
        ValueType::Bool => Some(
            if value.is_multiple_of(2) {
                "true"
            } else {
                "false"
            }
            .to_owned(),
        ),
        ValueType::Text => Some(TEXT_VALUES[value % TEXT_VALUES.len()].to_owned()),
        ValueType::Number => Some(NUMBERS[value % NUMBERS.len()].to_string()),
        ValueType::Date => Some(DATES[value % DATES.len()].to_owned()),
    }
}

/// Applies one write to the model and to the index.
fn apply(
    write: &Write,
    model: &mut BTreeMap<String, CustomerFacts>,
    index: &mut SegmentIndex,
    today: NaiveDate,
) {
    let attribute_keys = ["会员等级", "积分"];
    match write {
        Write::Fields {
            customer,
            gender,
            birthday,
            province,
            city,
            channel,
            attributes,
        } => {
            let id = customer_id(*customer);
            let facts = model.entry(id.clone()).or_default();
            facts.fields.gender = *gender;
            facts.fields.birthday = *birthday;
            facts.fields.address.province = PROVINCES[*province].to_owned();
            facts.fields.address.city = CITIES[*city].to_owned();
            facts.fields.address.district = String::new();
            facts.fields.source_channel = CHANNELS[*channel].to_owned();
            facts.fields.attributes = attributes
                .iter()
                .map(|(key, value)| {
                    (
                        attribute_keys[*key].to_owned(),
                        ATTRIBUTE_VALUES[*value].to_owned(),
                    )
                })
                .collect();
            index.upsert_customer(&id, &facts.fields).unwrap();
        }
        Write::Assign {
            customer,
            tag,
            value,
        } => {
            let id = customer_id(*customer);
            let value = tag_value(*tag, *value);
            index
                .assign(&id, TAGS[*tag].0, TAGS[*tag].1, value.as_deref())
                .unwrap();
            model
                .entry(id)
                .or_default()
                .tags
                .insert(TAGS[*tag].0.to_owned(), value);
        }
        Write::Unassign { customer, tag } => {
            let id = customer_id(*customer);
            let held = model
                .get_mut(&id)
                .and_then(|facts| facts.tags.remove(TAGS[*tag].0))
                .is_some();
            assert_eq!(index.unassign(&id, TAGS[*tag].0), held);
        }
        Write::Delete { customer } => {
            let id = customer_id(*customer);
            assert_eq!(index.delete_customer(&id), model.remove(&id).is_some());
        }
        Write::Metric {
            customer,
            metric,
            value,
        } => {
            let id = customer_id(*customer);
            let value = value.map(|value| NUMBERS[value]);
            index.set_metric(&id, METRICS[*metric], value).unwrap();
            let facts = model.entry(id).or_default();
            match value {
                Some(value) => facts.metrics.insert(METRICS[*metric], value),
                None => facts.metrics.remove(&METRICS[*metric]),
            };
        }
        Write::Bought { customer, category } => {
            let id = customer_id(*customer);
            index.mark_bought(&id, CATEGORIES[*category]).unwrap();
            model.entry(id).or_default().purchases.push(Purchase {
                category: CATEGORIES[*category].to_owned(),
                day: today,
                amount: 1.0,
            });
        }
    }
}

fn key_of(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool.to_vec()).prop_map(text::key)
}

fn text_test(pool: &'static [&'static str]) -> impl Strategy<Value = TextTest> {
    prop_oneof![
        key_of(pool).prop_map(TextTest::Eq),
        key_of(pool).prop_map(TextTest::Ne),
        prop::collection::vec(key_of(pool), 1..3).prop_map(TextTest::In),
        prop_oneof![
            Just("户外".to_owned()),
            Just("o".to_owned()),
            Just("北".to_owned()),
            Just(String::new())
        ]
        .prop_map(TextTest::Contains),
    ]
}

fn number_test(values: Vec<f64>) -> impl Strategy<Value = NumberTest> {
    let value = prop::sample::select(values);
    let op = prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ]);
    prop_oneof![
        (op, value.clone()).prop_map(|(op, value)| NumberTest::Compare(op, value)),
        prop::collection::vec(value.clone(), 1..3).prop_map(NumberTest::In),
        (value.clone(), value).prop_map(|(a, b)| NumberTest::Between(a.min(b), a.max(b))),
    ]
}

fn predicate() -> impl Strategy<Value = BoundPredicate> {
    let tag_ids = vec![
        "t-flag",
        "t-enum",
        "t-bool",
        "t-text",
        "t-num",
        "t-date",
        "t-missing",
    ];
    let mut numbers = NUMBERS.to_vec();
    numbers.extend([4999.99, 1e7, -100.0, 0.0005, 1e300, -0.001]);
    let days: Vec<f64> = DATES
        .iter()
        .map(|d| day_number(date(d)))
        .chain([day_number(date("2025-03-01"))])
        .collect();
    let ages: Vec<f64> = (0..=40).map(f64::from).chain([25.5, 100.0]).collect();
    prop_oneof![
        prop::sample::select(tag_ids).prop_map(|tag| BoundPredicate::HasTag {
            tag: tag.to_owned()
        }),
        text_test(&ENUM_VALUES).prop_map(|test| BoundPredicate::TagText {
            tag: "t-enum".into(),
            test
        }),
        text_test(&["true", "false"]).prop_map(|test| BoundPredicate::TagText {
            tag: "t-bool".into(),
            test
        }),
        text_test(&TEXT_VALUES).prop_map(|test| BoundPredicate::TagText {
            tag: "t-text".into(),
            test
        }),
        number_test(numbers.clone()).prop_map(|test| BoundPredicate::TagNumber {
            tag: "t-num".into(),
            test
        }),
        number_test(days).prop_map(|test| BoundPredicate::TagDate {
            tag: "t-date".into(),
            test
        }),
        text_test(&PROVINCES).prop_map(|test| BoundPredicate::Field {
            field: CustomerField::Province,
            test
        }),
        text_test(&CITIES).prop_map(|test| BoundPredicate::Field {
            field: CustomerField::City,
            test
        }),
        text_test(&CHANNELS).prop_map(|test| BoundPredicate::Field {
            field: CustomerField::Channel,
            test
        }),
        text_test(&["x"]).prop_map(|test| BoundPredicate::Field {
            field: CustomerField::District,
            test
        }),
        prop::collection::vec(gender(), 0..3).prop_map(|any_of| BoundPredicate::Gender { any_of }),
        number_test(ages).prop_map(|test| BoundPredicate::Age { test }),
        prop::sample::select(vec!["会员等级", "积分", "无"])
            .prop_map(|key| BoundPredicate::HasAttr { key: key.into() }),
        text_test(&ATTRIBUTE_VALUES).prop_map(|test| BoundPredicate::Attr {
            key: "会员等级".into(),
            test
        }),
        (prop::sample::select(METRICS.to_vec()), number_test(numbers))
            .prop_map(|(metric, test)| BoundPredicate::Metric { metric, test }),
        key_of(&CATEGORIES).prop_map(|category| BoundPredicate::BoughtCategory { category }),
    ]
}

fn condition() -> impl Strategy<Value = BoundCondition> {
    predicate()
        .prop_map(BoundCondition::Predicate)
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..5).prop_map(BoundCondition::And),
                prop::collection::vec(inner.clone(), 1..4).prop_map(BoundCondition::Or),
                inner.clone().prop_map(|c| BoundCondition::Not(Box::new(c))),
                inner.prop_map(|c| BoundCondition::Predicate(BoundPredicate::InSegment {
                    id: "s".into(),
                    name: "s".into(),
                    condition: Arc::new(c),
                })),
            ]
        })
}

fn new_index() -> SegmentIndex {
    let mut index = SegmentIndex::new();
    for metric in METRICS {
        index.declare_metric(metric);
    }
    index.set_purchases_loaded(true);
    index
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_index_agrees_with_the_reference_evaluator(
        writes in prop::collection::vec(write(), 0..80),
        conditions in prop::collection::vec(condition(), 1..8),
        today_offset in 0u64..1100,
    ) {
        let today = date("2024-01-01") + Days::new(today_offset);
        let mut model = BTreeMap::new();
        let mut index = new_index();
        for write in &writes {
            apply(write, &mut model, &mut index, today);
        }
        prop_assert_eq!(index.customer_count(), model.len() as u64);
        for condition in &conditions {
            let expected: Vec<String> = model
                .iter()
                .filter(|(_, facts)| evaluate(condition, facts, today))
                .map(|(id, _)| id.clone())
                .collect();
            let members = index.members(condition, today).unwrap();
            let mut got: Vec<String> = index.ids_of(&members).collect();
            got.sort();
            prop_assert_eq!(&got, &expected, "condition {:?}", condition);
            prop_assert_eq!(index.count(condition, today).unwrap(), expected.len() as u64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Many single predicates per data set, so every leaf's edges are hit.
    #[test]
    fn every_predicate_agrees_with_the_reference_evaluator(
        writes in prop::collection::vec(write(), 20..120),
        predicates in prop::collection::vec(predicate(), 40),
        today_offset in 0u64..1100,
    ) {
        let today = date("2024-01-01") + Days::new(today_offset);
        let mut model = BTreeMap::new();
        let mut index = new_index();
        for write in &writes {
            apply(write, &mut model, &mut index, today);
        }
        for predicate in predicates {
            let condition = BoundCondition::Predicate(predicate);
            let expected = model.values().filter(|facts| evaluate(&condition, facts, today)).count();
            prop_assert_eq!(index.count(&condition, today).unwrap(), expected as u64, "condition {:?}", condition);
        }
    }
}
