//! End-to-end matching behaviour: blocking keys, hard negatives, bad input,
//! the 1,000-identical-records case, the one-record query, and quality on
//! generated data.

use tagd_datagen::{Generator, GeneratorConfig};
use tagd_match::{
    BlockingKey, Guard, MatchConfig, MatchError, MatchRecord, Matcher, Profile, RawCustomer,
    pairwise_quality, prepare,
};

fn raw(id: u32, name: &str, birthday: &str, phone: &str, email: &str) -> RawCustomer {
    RawCustomer {
        id,
        name: name.into(),
        birthday: birthday.into(),
        phones: if phone.is_empty() {
            vec![]
        } else {
            vec![phone.into()]
        },
        emails: if email.is_empty() {
            vec![]
        } else {
            vec![email.into()]
        },
        province: "广东省".into(),
        city: "深圳市".into(),
        district: "南山区".into(),
        detail: "科技园路12号阳光花园3栋2单元501室".into(),
        ..RawCustomer::default()
    }
}

fn matcher_with(keys: &[BlockingKey]) -> Matcher {
    Matcher::new(MatchConfig {
        blocking_keys: keys.to_vec(),
        ..MatchConfig::default()
    })
    .expect("a valid config")
}

fn candidate_pairs(matcher: &Matcher, records: &[RawCustomer]) -> Vec<(u32, u32)> {
    let records: Vec<MatchRecord> = records.iter().map(prepare).collect();
    let profiles = matcher.profiles(&records);
    matcher.index(&profiles).candidate_pairs(1)
}

#[test]
fn phone_key_blocks_full_width_and_plus86_spellings() {
    let records = [
        raw(0, "张伟", "", "１３８　００１３　８０００", ""),
        raw(1, "李娜", "", "+86 138-0013-8000", ""),
        raw(2, "王芳", "", "13900139000", ""),
    ];
    assert_eq!(
        candidate_pairs(&matcher_with(&[BlockingKey::Phone]), &records),
        vec![(0, 1)]
    );
}

#[test]
fn email_key_ignores_case() {
    let records = [
        raw(0, "张伟", "", "", "ZhangWei85@QQ.com"),
        raw(1, "李娜", "", "", "zhangwei85@qq.com"),
    ];
    assert_eq!(
        candidate_pairs(&matcher_with(&[BlockingKey::Email]), &records),
        vec![(0, 1)]
    );
}

#[test]
fn name_birthday_key_catches_pinyin_and_swapped_order() {
    let records = [
        raw(0, "张伟", "1985-03-07", "", ""),
        raw(1, "Zhang Wei", "1985/3/7", "", ""),
        raw(2, "Wei Zhang", "19850307", "", ""),
        raw(3, "张伟", "1990-01-01", "", ""),
    ];
    let pairs = candidate_pairs(&matcher_with(&[BlockingKey::NameBirthday]), &records);
    assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 2)]);
}

#[test]
fn name_city_key_uses_the_city_without_suffix() {
    let mut other_city = raw(2, "张伟", "", "", "");
    other_city.city = "广州市".into();
    let mut short_city = raw(1, "Zhang Wei", "", "", "");
    short_city.city = "深圳".into();
    let records = [raw(0, "张伟", "", "", ""), short_city, other_city];
    assert_eq!(
        candidate_pairs(&matcher_with(&[BlockingKey::NameCity]), &records),
        vec![(0, 1)]
    );
}

#[test]
fn name_word_birthday_key_catches_a_given_name_slip() {
    let records = [
        raw(0, "张敏华", "1985-03-07", "", ""),
        raw(1, "张明华", "1985-03-07", "", ""),
        raw(2, "李敏华", "1970-03-07", "", ""),
    ];
    let pairs = candidate_pairs(&matcher_with(&[BlockingKey::NameWordBirthday]), &records);
    assert_eq!(pairs, vec![(0, 1)]);
}

#[test]
fn pinyin_key_alone_blocks_every_spelling() {
    let records = [
        raw(0, "张伟", "", "", ""),
        raw(1, "ZhangWei", "", "", ""),
        raw(2, "张玮", "", "", ""),
    ];
    let pairs = candidate_pairs(&matcher_with(&[BlockingKey::Pinyin]), &records);
    assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 2)]);
}

#[test]
fn duplicates_with_corrupted_fields_merge() {
    let records: Vec<MatchRecord> = [
        raw(0, "张伟", "1985-03-07", "13800138000", "zw85@qq.com"),
        raw(1, "Wei Zhang", "1985/3/7", "+86 138 0013 8000", ""),
        raw(2, "张玮", "1985-07-03", "", "ZW85@QQ.COM"),
    ]
    .iter()
    .map(prepare)
    .collect();
    let out = Matcher::new(MatchConfig::default())
        .unwrap()
        .dedupe(&records)
        .unwrap();
    assert_eq!(out.clusters, vec![vec![0, 1, 2]]);
}

#[test]
fn household_members_sharing_address_and_phone_never_merge() {
    let records: Vec<MatchRecord> = [
        raw(0, "张建国", "1960-05-01", "13800138000", ""),
        raw(1, "张伟", "1988-09-12", "13800138000", ""),
        raw(2, "李秀英", "1962-02-14", "13800138000", ""),
        // a twin: same birthday, different given name
        raw(3, "张强", "1988-09-12", "13800138000", ""),
    ]
    .iter()
    .map(prepare)
    .collect();
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    let out = matcher.dedupe(&records).unwrap();
    assert!(out.clusters.is_empty(), "{:?}", out.clusters);
    let profiles = matcher.profiles(&records);
    let score = matcher.score(&profiles[1], &profiles[3]);
    assert!(score.total < matcher.config().auto_merge_threshold);
    assert_eq!(score.guard, Some(Guard::NamesDisagree));
}

#[test]
fn namesakes_with_different_birthdays_never_merge() {
    let records: Vec<MatchRecord> = [
        raw(0, "王芳", "1985-03-07", "13800138000", ""),
        raw(1, "王芳", "1992-11-30", "13800138000", ""),
    ]
    .iter()
    .map(prepare)
    .collect();
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    let profiles = matcher.profiles(&records);
    let score = matcher.score(&profiles[0], &profiles[1]);
    assert_eq!(score.guard, Some(Guard::BirthdaysDisagree));
    assert!(matcher.dedupe(&records).unwrap().clusters.is_empty());
}

#[test]
fn no_contact_fields_never_auto_merge_on_name_alone() {
    let records: Vec<MatchRecord> = [raw(0, "张伟", "", "", ""), raw(1, "张伟", "", "", "")]
        .iter()
        .map(prepare)
        .collect();
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    let out = matcher.dedupe(&records).unwrap();
    assert!(out.clusters.is_empty());
    assert_eq!(out.review.len(), 1, "same name and address goes to review");
    assert_eq!(out.review[0].guard, Some(Guard::NoIdentifierAgrees));
    assert!(
        out.review[0]
            .to_string()
            .contains("no phone, email or birthday agrees")
    );
}

#[test]
fn empty_and_whitespace_names_never_auto_merge() {
    let records: Vec<MatchRecord> = [
        raw(0, "", "1985-03-07", "13800138000", "a@qq.com"),
        raw(1, " \u{3000}\t", "1985-03-07", "13800138000", "a@qq.com"),
    ]
    .iter()
    .map(prepare)
    .collect();
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    let out = matcher.dedupe(&records).unwrap();
    assert!(out.clusters.is_empty());
    assert_eq!(out.review[0].guard, Some(Guard::NamesDisagree));
}

#[test]
fn a_thousand_identical_records_form_one_cluster_at_bounded_cost() {
    let records: Vec<MatchRecord> = (0..1_000)
        .map(|id| prepare(&raw(id, "张伟", "1985-03-07", "13800138000", "zw@qq.com")))
        .collect();
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    let out = matcher.dedupe(&records).unwrap();
    assert_eq!(out.clusters.len(), 1);
    assert_eq!(out.clusters[0].len(), 1_000);
    let config = matcher.config();
    assert!(out.stats.blocks.oversize_blocks >= 4);
    // At most 2·n·window per block instead of n²/2 = 499,500.
    assert!(out.stats.comparisons <= 2 * 1_000 * config.oversize_window as u64);
}

#[test]
fn find_duplicates_queries_one_new_record_through_the_index() {
    let records: Vec<MatchRecord> = [
        raw(0, "张伟", "1985-03-07", "13800138000", ""),
        raw(1, "李娜", "1990-01-01", "13900139000", ""),
    ]
    .iter()
    .map(prepare)
    .collect();
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    let profiles = matcher.profiles(&records);
    let index = matcher.index(&profiles);
    let query = Profile::new(&prepare(&raw(9, "Wei Zhang", "1985/3/7", "", "")));
    let found = matcher.find_duplicates(&profiles, &index, &query);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].a, found[0].b), (0, 9));
    assert!(found[0].total >= matcher.config().auto_merge_threshold);
}

#[test]
fn duplicate_ids_and_bad_thresholds_are_refused() {
    let records: Vec<MatchRecord> = [raw(3, "张伟", "", "", ""), raw(3, "李娜", "", "", "")]
        .iter()
        .map(prepare)
        .collect();
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    assert_eq!(
        matcher.dedupe(&records).unwrap_err(),
        MatchError::DuplicateId(3)
    );
    let err = Matcher::new(MatchConfig {
        review_threshold: -0.1,
        ..MatchConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "review_threshold: -0.1 is outside 0..=1");
}

fn generated(n: usize) -> (Vec<MatchRecord>, Vec<(u32, u64)>) {
    let mut records = Vec::new();
    let mut truth = Vec::new();
    for (id, r) in (0u32..).zip(
        Generator::new(11, GeneratorConfig::default())
            .expect("the default config is valid")
            .take(n),
    ) {
        truth.push((id, r.entity_id));
        records.push(prepare(&RawCustomer {
            id,
            name: r.name,
            gender: r.gender,
            birthday: r.birthday,
            phones: r.phones,
            emails: r.emails,
            province: r.province,
            city: r.city,
            district: r.district,
            detail: r.detail,
        }));
    }
    (records, truth)
}

#[test]
fn generated_data_meets_the_quality_target_deterministically() {
    let (records, truth) = generated(3_000);
    let matcher = Matcher::new(MatchConfig::default()).unwrap();
    let out = matcher.dedupe(&records).unwrap();
    let quality = pairwise_quality(&out.clusters, &truth);
    assert!(quality.precision >= 0.995, "{quality:?}");
    assert!(quality.f1 >= 0.985, "{quality:?}");
    let single_thread = Matcher::new(MatchConfig {
        threads: 1,
        ..MatchConfig::default()
    })
    .unwrap();
    assert_eq!(single_thread.dedupe(&records).unwrap(), out);
}
