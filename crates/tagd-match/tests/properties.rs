//! Property tests: scores are symmetric, within 0..=1, and nothing panics
//! on arbitrary text in any field.

use proptest::prelude::*;
use tagd_match::{MatchConfig, Matcher, Profile, RawCustomer, prepare};

fn customer(id: u32) -> impl Strategy<Value = RawCustomer> {
    let text = prop_oneof![
        any::<String>(),
        "[张王李刘陈伟芳娜秀英 ]{0,5}",
        "[A-Za-z ]{0,12}",
        "[0-9０-９+ -]{0,16}",
    ];
    (
        text.clone(),
        prop_oneof![
            Just(String::new()),
            "男|女|M|F".prop_map(String::from),
            any::<String>()
        ],
        prop_oneof![any::<String>(), "(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]"],
        proptest::collection::vec(text.clone(), 0..3),
        proptest::collection::vec(text.clone(), 0..3),
        text.clone(),
        text.clone(),
        text,
    )
        .prop_map(
            move |(name, gender, birthday, phones, emails, province, city, detail)| RawCustomer {
                id,
                name,
                gender,
                birthday,
                phones,
                emails,
                province,
                city,
                district: String::new(),
                detail,
            },
        )
}

proptest! {
    #[test]
    fn score_is_symmetric_bounded_and_total(a in customer(1), b in customer(2)) {
        let matcher = Matcher::new(MatchConfig::default()).unwrap();
        let (pa, pb) = (Profile::new(&prepare(&a)), Profile::new(&prepare(&b)));
        let ab = matcher.score(&pa, &pb);
        let ba = matcher.score(&pb, &pa);
        prop_assert_eq!(&ab, &ba);
        prop_assert!((0.0..=1.0).contains(&ab.total), "{}", ab.total);
        prop_assert_eq!(ab.fields.len(), 7);
        let self_score = matcher.score(&pa, &pa);
        prop_assert!((0.0..=1.0).contains(&self_score.total));
    }

    #[test]
    fn dedupe_never_panics(records in proptest::collection::vec(customer(0), 0..12)) {
        let records: Vec<_> = (0u32..)
            .zip(records)
            .map(|(id, mut r)| { r.id = id; prepare(&r) })
            .collect();
        let matcher = Matcher::new(MatchConfig::default()).unwrap();
        let out = matcher.dedupe(&records).unwrap();
        for cluster in &out.clusters {
            prop_assert!(cluster.len() >= 2);
        }
    }
}
