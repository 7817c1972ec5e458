//! Property tests: printing then parsing gives the same tree back, and no
//! input makes the parser panic.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use chrono::NaiveDate;
use proptest::prelude::*;
use tagd_condition::{
    CmpOp, Comparison, Condition, CustomerField, Literal, MAX_DEPTH, Metric, Predicate,
    PurchaseFilter, TagRef, parse,
};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        Just("价值等级".to_owned()),
        Just("a/b".to_owned()),
        "\\PC{0,8}",
        any::<String>(),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        text().prop_map(Literal::String),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(Literal::Number),
        (-100_000i64..100_000).prop_map(|n| Literal::Number(n as f64 / 100.0)),
        (0i64..80_000).prop_map(|days| Literal::Date(
            NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Days::new(days as u64)
        )),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

fn comparison() -> impl Strategy<Value = Comparison> {
    let op = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ];
    prop_oneof![
        (op, literal()).prop_map(|(op, value)| Comparison::Compare { op, value }),
        prop::collection::vec(literal(), 1..4).prop_map(Comparison::In),
        (literal(), literal()).prop_map(|(low, high)| Comparison::Between { low, high }),
        text().prop_map(Comparison::Contains),
    ]
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        (1u32..=3660).prop_map(|days| Metric::Orders { days }),
        (1u32..=3660).prop_map(|days| Metric::Spent { days }),
        Just(Metric::RecencyDays),
        Just(Metric::AvgOrderValue),
        Just(Metric::LastInteractionDays),
        Just(Metric::FrequencyTrend),
    ]
}

fn filter() -> impl Strategy<Value = PurchaseFilter> {
    (prop::option::of(text()), prop::option::of(1u32..=3660))
        .prop_map(|(category, days)| PurchaseFilter { category, days })
}

fn predicate() -> impl Strategy<Value = Predicate> {
    prop_oneof![
        text().prop_map(|t| Predicate::HasTag(TagRef(t))),
        (text(), comparison()).prop_map(|(t, test)| Predicate::Tag {
            tag: TagRef(t),
            test
        }),
        (
            prop::sample::select(CustomerField::ALL.to_vec()),
            comparison()
        )
            .prop_map(|(field, test)| Predicate::Field { field, test }),
        comparison().prop_map(Predicate::Age),
        text().prop_map(Predicate::HasAttr),
        (text(), comparison()).prop_map(|(key, test)| Predicate::Attr { key, test }),
        (metric(), comparison()).prop_map(|(metric, test)| Predicate::Metric { metric, test }),
        text().prop_map(Predicate::BoughtCategory),
        (filter(), comparison()).prop_map(|(filter, test)| Predicate::Purchases { filter, test }),
        (filter(), comparison()).prop_map(|(filter, test)| Predicate::Spent { filter, test }),
        text().prop_map(Predicate::InSegment),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    predicate()
        .prop_map(Condition::Predicate)
        .prop_recursive(8, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..5).prop_map(Condition::And),
                prop::collection::vec(inner.clone(), 2..5).prop_map(Condition::Or),
                inner.prop_map(|c| Condition::Not(Box::new(c))),
            ]
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_is_identity(condition in condition()) {
        let printed = condition.to_string();
        prop_assert_eq!(parse(&printed), Ok(condition), "printed: {}", printed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn near_miss_text_never_panics(
        pieces in prop::collection::vec(
            prop_oneof![
                Just("tag(\"a\")"), Just("has_tag(\"b\")"), Just(" AND "), Just(" or "),
                Just("NOT "), Just("!"), Just("("), Just(")"), Just(" = "), Just(">="),
                Just(" in ["), Just("]"), Just(","), Just(" between "), Just("1"), Just("-2.5e3"),
                Just("\"x\\u{41}\""), Just("\"\\"), Just("date(\"2026-01-31\")"), Just("age"),
                Just("purchases(days = 9"), Just("orders_90d"), Just("contains"), Just("\n"),
            ],
            0..40,
        )
    ) {
        let _ = parse(&pieces.concat());
    }
}

#[test]
fn the_deepest_allowed_tree_round_trips() {
    let mut deep = Condition::Predicate(Predicate::HasTag(TagRef::new("x")));
    for level in 1..MAX_DEPTH {
        deep = if level % 2 == 0 {
            deep.negate()
        } else {
            Condition::And(vec![
                deep,
                Condition::Predicate(Predicate::InSegment("s".into())),
            ])
        };
    }
    assert_eq!(deep.depth(), MAX_DEPTH);
    assert_eq!(parse(&deep.to_string()), Ok(deep.clone()));
    assert!(parse(&deep.negate().to_string()).is_err());
}
