//! The index as the server loads it (`IndexState::load_customer`, reloads,
//! deletes, expiry) against the reference path (`facts_of` +
//! `tagd_condition::evaluate`): for random customers, random assignments
//! (some expired, some expiring), random orders and contacts (metrics and
//! categories bought, `IndexState::load_activity`), random changes and
//! random conditions, both give the same members.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate, NaiveDateTime};
use proptest::prelude::*;
use tagd_condition::{MemoryCatalogue, bind, evaluate, parse};
use tagd_core::customers::{Address, Customer, CustomerFields, Gender};
use tagd_core::metrics::{Activity, Order, compute};
use tagd_core::tags::ValueType;
use tagd_segments::{IndexState, facts_of, metric_values};
use tagd_store::{LiveAssignment, PurchaseLine};

const TAGS: [(&str, &str, ValueType); 5] = [
    ("t-flag", "流失风险", ValueType::Flag),
    ("t-level", "价值等级", ValueType::Enum),
    ("t-spend", "年消费额", ValueType::Number),
    ("t-since", "注册日", ValueType::Date),
    ("t-note", "备注", ValueType::Text),
];
const LEVELS: [&str; 3] = ["高价值", "中价值", "低价值"];
const NOTES: [&str; 3] = ["喜欢户外", "户外运动", "Outdoor"];
const SPENDS: [&str; 5] = ["0", "3000", "5000", "8000.5", "12000"];
const DATES: [&str; 3] = ["2024-02-29", "2025-06-01", "2026-01-31"];
const PROVINCES: [&str; 4] = ["北京", "上海", "ＢＥＩＪＩＮＧ", ""];
const CITIES: [&str; 3] = ["朝阳", "浦东", ""];
const CHANNELS: [&str; 3] = ["微信", "天猫", ""];
const CARDS: [&str; 3] = ["金卡", "银卡", "GOLD"];
const CUSTOMERS: usize = 16;
const WINDOWS: [u32; 3] = [30, 90, 365];
const CATEGORIES: [&str; 3] = ["母婴", "数码", "Outdoor"];

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

fn now() -> NaiveDateTime {
    today().and_hms_opt(12, 0, 0).unwrap()
}

fn id(index: usize) -> String {
    format!("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f{index:04x}")
}

fn catalogue() -> MemoryCatalogue {
    let mut catalogue = MemoryCatalogue::default().with_attribute("会员等级");
    for (id, name, value_type) in TAGS {
        let values: &[&str] = if value_type == ValueType::Enum {
            &LEVELS
        } else {
            &[]
        };
        catalogue = catalogue.with_tag(id, "类", name, value_type, values);
    }
    catalogue
}

/// One version of a customer: fields and assignments (tag index, value
/// index, expiry in hours from now: negative is past).
#[derive(Debug, Clone)]
struct Version {
    gender: Gender,
    birthday: Option<u64>,
    province: usize,
    city: usize,
    channel: usize,
    card: Option<usize>,
    tags: Vec<(usize, usize, Option<i64>)>,
    /// Orders: (days ago, yuan, category index).
    orders: Vec<(u16, u16, usize)>,
    /// Days since the last contact.
    contacted: Option<u16>,
}

fn version() -> impl Strategy<Value = Version> {
    (
        prop::sample::select(vec![Gender::Unspecified, Gender::Male, Gender::Female]),
        prop::option::of(0u64..365 * 70),
        0..PROVINCES.len(),
        0..CITIES.len(),
        0..CHANNELS.len(),
        prop::option::of(0..CARDS.len()),
        prop::collection::vec((0..TAGS.len(), 0..5usize, prop::option::of(-3i64..3)), 0..5),
        prop::collection::vec((0u16..400, 1u16..3000, 0..CATEGORIES.len()), 0..4),
        prop::option::of(0u16..200),
    )
        .prop_map(
            |(gender, birthday, province, city, channel, card, tags, orders, contacted)| Version {
                gender,
                birthday,
                province,
                city,
                channel,
                card,
                tags,
                orders,
                contacted,
            },
        )
}

fn value(tag: usize, value: usize) -> Option<String> {
    match TAGS[tag].2 {
        ValueType::Flag => None,
        ValueType::Enum => Some(LEVELS[value % LEVELS.len()].to_owned()),
        ValueType::Number => Some(SPENDS[value % SPENDS.len()].to_owned()),
        ValueType::Date => Some(DATES[value % DATES.len()].to_owned()),
        _ => Some(NOTES[value % NOTES.len()].to_owned()),
    }
}

fn customer(index: usize, version: &Version) -> (Customer, Vec<LiveAssignment>) {
    let fields = CustomerFields {
        name: format!("客户{index}"),
        gender: version.gender,
        birthday: version
            .birthday
            .map(|days| NaiveDate::from_ymd_opt(1956, 1, 1).unwrap() + Days::new(days)),
        address: Address {
            province: PROVINCES[version.province].to_owned(),
            city: CITIES[version.city].to_owned(),
            ..Address::default()
        },
        source_channel: CHANNELS[version.channel].to_owned(),
        attributes: version
            .card
            .map(|card| ("会员等级".to_owned(), CARDS[card].to_owned()))
            .into_iter()
            .collect(),
        ..CustomerFields::default()
    };
    // One assignment per tag, as the store keeps: the last one wins.
    let mut by_tag = BTreeMap::new();
    for &(tag, value_index, hours) in &version.tags {
        by_tag.insert(
            tag,
            LiveAssignment {
                customer_id: id(index),
                tag_id: TAGS[tag].0.to_owned(),
                value: value(tag, value_index),
                expires_at: hours.map(|hours| now() + chrono::Duration::minutes(hours * 30 + 1)),
            },
        );
    }
    (
        Customer {
            id: id(index),
            fields,
            created_at: now(),
            updated_at: now(),
        },
        by_tag.into_values().collect(),
    )
}

/// A version's orders and contacts as the store hands them to the metrics, and its order
/// lines as the reference path reads them.
fn activity(index: usize, version: &Version) -> (Activity, Vec<PurchaseLine>) {
    // Hours past whole days, so no order sits on a window's edge.
    let at = |days: u16| now() - chrono::Duration::hours(i64::from(days) * 24 + 5);
    let orders = version
        .orders
        .iter()
        .map(|&(days, yuan, category)| Order {
            ordered_at: at(days),
            currency: "CNY".to_owned(),
            total_cents: i64::from(yuan) * 100,
            categories: vec![CATEGORIES[category].to_owned()],
        })
        .collect();
    let lines = version
        .orders
        .iter()
        .map(|&(days, yuan, category)| PurchaseLine {
            customer_id: id(index),
            category: CATEGORIES[category].to_owned(),
            day: at(days).date(),
            amount_cents: i64::from(yuan) * 100,
        })
        .collect();
    let activity = Activity {
        orders,
        last_interaction_at: version.contacted.map(at),
    };
    (activity, lines)
}

fn predicate() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"has_tag("流失风险")"#.to_owned()),
        Just(r#"has_tag("价值等级")"#.to_owned()),
        prop::sample::select(LEVELS.to_vec()).prop_map(|v| format!(r#"tag("价值等级") = "{v}""#)),
        Just(r#"tag("价值等级") in ["高价值", "低价值"]"#.to_owned()),
        Just(r#"tag("价值等级") != "高价值""#.to_owned()),
        (0.0f64..15000.0).prop_map(|n| format!(r#"tag("年消费额") >= {n:.1}"#)),
        Just(r#"tag("年消费额") between 3000 and 8000.5"#.to_owned()),
        Just(r#"tag("注册日") < date("2025-06-01")"#.to_owned()),
        Just(r#"tag("备注") contains "户外""#.to_owned()),
        Just(r#"tag("备注") = "outdoor""#.to_owned()),
        prop::sample::select(PROVINCES[..3].to_vec()).prop_map(|p| format!(r#"province = "{p}""#)),
        Just(r#"city in ["朝阳", "浦东"]"#.to_owned()),
        Just(r#"channel != "微信""#.to_owned()),
        Just(r#"gender = "女""#.to_owned()),
        (0u32..70, 0u32..20)
            .prop_map(|(low, span)| format!("age between {low} and {}", low + span)),
        (0u32..80).prop_map(|years| format!("age >= {years}")),
        Just(r#"has_attr("会员等级")"#.to_owned()),
        prop::sample::select(CARDS.to_vec()).prop_map(|c| format!(r#"attr("会员等级") = "{c}""#)),
        (prop::sample::select(WINDOWS.to_vec()), 0u32..4)
            .prop_map(|(days, n)| format!("orders_{days}d >= {n}")),
        (prop::sample::select(WINDOWS.to_vec()), 0u32..6000)
            .prop_map(|(days, n)| format!("spent_{days}d > {n}")),
        (0u32..400).prop_map(|days| format!("recency_days <= {days}")),
        (0u32..3000).prop_map(|yuan| format!("avg_order_value >= {yuan}")),
        (0u32..200).prop_map(|days| format!("last_interaction_days < {days}")),
        Just("frequency_trend < 1".to_owned()),
        prop::sample::select(CATEGORIES.to_vec())
            .prop_map(|c| format!(r#"bought_category("{c}")"#)),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    predicate().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|items| format!("({})", items.join(" AND "))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|items| format!("({})", items.join(" OR "))),
            inner.prop_map(|item| format!("NOT {item}")),
        ]
    })
}

/// Each stored customer with its assignments, activity and order lines.
type Model = BTreeMap<String, (Customer, Vec<LiveAssignment>, Activity, Vec<PurchaseLine>)>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_loaded_index_agrees_with_the_reference_path(
        first in prop::collection::vec(version(), CUSTOMERS),
        changes in prop::collection::vec((0..CUSTOMERS, prop::option::of(version())), 0..10),
        conditions in prop::collection::vec(condition(), 1..6),
    ) {
        let mut state = IndexState::default();
        for (tag, _, value_type) in TAGS {
            state.set_tag_type(tag, value_type);
        }
        state.hold_metrics(&WINDOWS);
        // Start-up: everyone loaded an hour ago; then changes (a reload or
        // a delete) as the follower applies them, then expiry at `now`.
        let earlier = now() - chrono::Duration::hours(1);
        let mut model = Model::new();
        let steps = first
            .iter()
            .enumerate()
            .map(|(index, version)| (index, Some(version)))
            .chain(changes.iter().map(|(index, change)| (*index, change.as_ref())));
        for (index, change) in steps {
            match change {
                Some(version) => {
                    let (customer, assignments) = customer(index, version);
                    state.load_customer(&customer, &assignments.iter().collect::<Vec<_>>(), earlier);
                    let (activity, lines) = activity(index, version);
                    state.load_activity(&customer.id, Some(&activity), now(), &WINDOWS);
                    model.insert(customer.id.clone(), (customer, assignments, activity, lines));
                }
                None => {
                    state.remove_customer(&id(index));
                    model.remove(&id(index));
                }
            }
        }
        state.expire(now());

        let catalogue = catalogue();
        for text in &conditions {
            let bound = bind(&parse(text).unwrap(), &catalogue).unwrap();
            let from_index: BTreeSet<String> = state
                .index
                .ids_of(&state.index.members(&bound, today()).unwrap())
                .collect();
            let expected: BTreeSet<String> = model
                .values()
                .filter(|(customer, assignments, activity, lines)| {
                    let metrics = metric_values(&compute(activity, now(), &WINDOWS), now());
                    let facts = facts_of(
                        customer,
                        &assignments.iter().collect::<Vec<_>>(),
                        &lines.iter().collect::<Vec<_>>(),
                        metrics,
                        now(),
                    );
                    evaluate(&bound, &facts, today())
                })
                .map(|(customer, ..)| customer.id.clone())
                .collect();
            prop_assert_eq!(&from_index, &expected, "{}", text);
            prop_assert_eq!(state.index.count(&bound, today()).unwrap(), expected.len() as u64);
        }
    }
}
