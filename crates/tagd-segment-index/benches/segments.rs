//! Segment index benchmark: builds an index of 1,000,000 customers (~15 tags
//! each; `TAGD_BENCH_CUSTOMERS=10000000` for ten million), then reports
//! build time, memory, p50/p99 of `count` for 3–5-term conditions, and
//! member enumeration, against two in-run baselines: a tight row scan over
//! compact in-memory rows, and the reference evaluator on a sample.
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark prints its figures and fails loudly on bad setup"
)]

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tagd_condition::{
    BoundCondition, CustomerFacts, MemoryCatalogue, Metric, bind, day_number, evaluate,
    latest_birthday_for_age, parse,
};
use tagd_core::customers::{CustomerFields, Gender};
use tagd_core::tags::ValueType;
use tagd_segment_index::SegmentIndex;

const PROVINCES: [&str; 12] = [
    "北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东", "河南", "福建", "湖南", "陕西",
];
const TIERS: [&str; 3] = ["高价值", "中价值", "低价值"];
const LIFECYCLE: [&str; 5] = ["新客", "成长", "成熟", "沉睡", "流失"];
const CHANNEL_PREFERENCE: [&str; 3] = ["线上", "线下", "全渠道"];
const CHANNELS: [&str; 5] = ["微信", "天猫", "京东", "门店", "抖音"];
const LEVELS: [&str; 3] = ["金卡", "银卡", "普卡"];
const INTERESTS: usize = 40;
const SAMPLE: usize = 50_000;

/// A customer as a tight scan would hold it: every value interned.
struct Row {
    tier: u8,
    lifecycle: u8,
    churn: bool,
    spend: f64,
    member: bool,
    interests: u64,
    province: u8,
    city: u8,
    gender: Gender,
    birthday: f64,
    level: u8,
    orders_90d: u8,
}

fn catalogue() -> MemoryCatalogue {
    let mut catalogue = MemoryCatalogue::default()
        .with_tag("tier", "价值等级", "价值等级", ValueType::Enum, &TIERS)
        .with_tag("life", "生命周期", "生命周期", ValueType::Enum, &LIFECYCLE)
        .with_tag("churn", "风险", "流失风险", ValueType::Flag, &[])
        .with_tag("spend", "消费", "年消费额", ValueType::Number, &[])
        .with_tag("member", "会员", "是否会员", ValueType::Bool, &[])
        .with_tag(
            "pref",
            "偏好",
            "渠道偏好",
            ValueType::Enum,
            &CHANNEL_PREFERENCE,
        )
        .with_tag("since", "会员", "注册日", ValueType::Date, &[]);
    for interest in 0..INTERESTS {
        catalogue = catalogue.with_tag(
            &format!("interest-{interest}"),
            "兴趣",
            &format!("兴趣{interest}"),
            ValueType::Flag,
            &[],
        );
    }
    catalogue.with_attribute("会员等级")
}

fn customer_id(number: usize) -> String {
    format!("0190a1b2-0000-7000-8000-{number:012x}")
}

fn main() {
    let customers: usize = std::env::var("TAGD_BENCH_CUSTOMERS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let mut rng = StdRng::seed_from_u64(20_260_301);
    println!(
        "segment index benchmark: {customers} customers, run at {}",
        chrono::Local::now().format("%Y-%m-%d %H:%M")
    );

    let rss_before = rss_bytes();
    let mut index = SegmentIndex::new();
    index.declare_metric(Metric::Orders { days: 90 });
    let mut rows = Vec::with_capacity(customers);
    let mut sample: Vec<CustomerFacts> = Vec::with_capacity(SAMPLE);
    let mut assignments = 0u64;
    let started = Instant::now();
    let mut build_index_time = Duration::ZERO;
    for number in 0..customers {
        let row = random_row(&mut rng, today);
        let id = customer_id(number);
        let mut fields = CustomerFields {
            gender: row.gender,
            birthday: Some(NaiveDate::from_num_days_from_ce_opt(row.birthday as i32).unwrap()),
            source_channel: CHANNELS[number % CHANNELS.len()].to_owned(),
            ..CustomerFields::default()
        };
        fields.address.province = PROVINCES[row.province as usize].to_owned();
        fields.address.city = format!("{}{}市", PROVINCES[row.province as usize], row.city);
        if row.level < 3 {
            fields
                .attributes
                .insert("会员等级".to_owned(), LEVELS[row.level as usize].to_owned());
        }
        let spend = row.spend.to_string();
        let since = (today - Days::new(u64::from(row.orders_90d) * 37))
            .format("%Y-%m-%d")
            .to_string();
        let mut tags: Vec<(String, ValueType, Option<String>)> = vec![
            (
                "tier".into(),
                ValueType::Enum,
                Some(TIERS[row.tier as usize].into()),
            ),
            (
                "life".into(),
                ValueType::Enum,
                Some(LIFECYCLE[row.lifecycle as usize].into()),
            ),
            ("spend".into(), ValueType::Number, Some(spend)),
            (
                "member".into(),
                ValueType::Bool,
                Some(row.member.to_string()),
            ),
            (
                "pref".into(),
                ValueType::Enum,
                Some(CHANNEL_PREFERENCE[number % 3].into()),
            ),
            ("since".into(), ValueType::Date, Some(since)),
        ];
        if row.churn {
            tags.push(("churn".into(), ValueType::Flag, None));
        }
        for interest in 0..INTERESTS {
            if row.interests >> interest & 1 == 1 {
                tags.push((format!("interest-{interest}"), ValueType::Flag, None));
            }
        }
        let timer = Instant::now();
        index.upsert_customer(&id, &fields).unwrap();
        for (tag, value_type, value) in &tags {
            index
                .assign(&id, tag, *value_type, value.as_deref())
                .unwrap();
        }
        index
            .set_metric(
                &id,
                Metric::Orders { days: 90 },
                Some(f64::from(row.orders_90d)),
            )
            .unwrap();
        build_index_time += timer.elapsed();
        assignments += tags.len() as u64;
        if number < SAMPLE {
            let mut facts = CustomerFacts {
                fields,
                ..CustomerFacts::default()
            };
            facts.tags = tags
                .into_iter()
                .map(|(tag, _, value)| (tag, value))
                .collect();
            facts
                .metrics
                .insert(Metric::Orders { days: 90 }, f64::from(row.orders_90d));
            sample.push(facts);
        }
        rows.push(row);
    }
    // As the server does after a build.
    let timer = Instant::now();
    index.compact();
    let compact_time = timer.elapsed();
    build_index_time += compact_time;
    let memory = index.memory();
    println!(
        "build: {:.2} s in index calls, of which compact {:.2} s ({:.2} s with data generation), {assignments} tag assignments ({:.1} per customer)",
        build_index_time.as_secs_f64(),
        compact_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        assignments as f64 / customers as f64
    );
    let db_floor = assignments * (3 * 36 + 2 * 72);
    println!(
        "memory: {:.1} MB reported (ids {:.1}, tags {:.1}, fields {:.1}, attributes {:.1}, numbers {:.1}); \
         process RSS grew {:.1} MB (includes the baselines' rows); \
         database floor for the same assignments ≈ {:.0} MB (3 uuids per row + 2 two-uuid indexes, no row overhead)",
        mb(memory.total()),
        mb(memory.ids),
        mb(memory.tags),
        mb(memory.fields),
        mb(memory.attributes),
        mb(memory.numbers),
        mb(rss_bytes().saturating_sub(rss_before)),
        mb(usize::try_from(db_floor).unwrap_or(usize::MAX)),
    );

    let catalogue = catalogue();
    let young = day_number(latest_birthday_for_age(today, 36).unwrap());
    let old = day_number(latest_birthday_for_age(today, 25).unwrap());
    type Scan = Box<dyn Fn(&Row) -> bool>;
    let queries: Vec<(&str, Scan)> = vec![
        (
            r#"tag("价值等级") = "高价值" AND province = "北京" AND NOT has_tag("流失风险")"#,
            Box::new(|r: &Row| r.tier == 0 && r.province == 0 && !r.churn),
        ),
        (
            r#"tag("价值等级") = "高价值" AND tag("年消费额") >= 5000 AND NOT has_tag("流失风险") AND gender = "女""#,
            Box::new(|r: &Row| {
                r.tier == 0 && r.spend >= 5000.0 && !r.churn && r.gender == Gender::Female
            }),
        ),
        (
            r#"(tag("生命周期") = "成熟" OR tag("生命周期") = "成长") AND age between 25 and 35 AND province in ["北京", "上海", "广东"] AND NOT has_tag("流失风险")"#,
            Box::new(move |r: &Row| {
                (r.lifecycle == 2 || r.lifecycle == 1)
                    && r.birthday > young
                    && r.birthday <= old
                    && r.province < 3
                    && !r.churn
            }),
        ),
        (
            r#"attr("会员等级") = "金卡" AND has_tag("兴趣3") AND tag("年消费额") between 2000 and 20000 AND NOT tag("价值等级") = "低价值""#,
            Box::new(|r: &Row| {
                r.level == 0
                    && r.interests >> 3 & 1 == 1
                    && (2000.0..=20000.0).contains(&r.spend)
                    && r.tier != 2
            }),
        ),
        (
            r#"orders_90d >= 3 AND tag("是否会员") = true AND NOT has_tag("流失风险") AND has_tag("兴趣7")"#,
            Box::new(|r: &Row| {
                r.orders_90d >= 3 && r.member && !r.churn && r.interests >> 7 & 1 == 1
            }),
        ),
    ];
    // Conditions alone, for profiling: one of the list by position, or any texts separated
    // by ";;" (the index is built once for all of them).
    let only: Vec<String> = std::env::var("TAGD_BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map(|position| vec![queries[position].0.to_owned()])
        .or_else(|| {
            std::env::var("TAGD_BENCH_CONDITION").ok().map(|texts| {
                texts
                    .split(";;")
                    .map(|text| text.trim().to_owned())
                    .collect()
            })
        })
        .unwrap_or_default();
    for text in &only {
        let condition = bind(&parse(text).unwrap(), &catalogue).unwrap();
        let times = measure(1000, || {
            std::hint::black_box(index.count(&condition, today).unwrap());
        });
        println!(
            "{:>8}: p50 {:.3} ms p99 {:.3} ms | {text}",
            index.count(&condition, today).unwrap(),
            ms(times[times.len() / 2]),
            ms(times[times.len() * 99 / 100])
        );
    }
    if !only.is_empty() {
        return;
    }
    let iterations = if customers > 2_000_000 { 100 } else { 300 };
    println!(
        "\ncount, {iterations} iterations each (p50 / p99 / max), baseline = the same condition by row scan:"
    );
    for (text, scan) in &queries {
        let condition: BoundCondition = bind(&parse(text).unwrap(), &catalogue).unwrap();
        let expected = rows.iter().filter(|row| scan(row)).count() as u64;
        let got = index.count(&condition, today).unwrap();
        assert_eq!(got, expected, "{text}");
        let times = measure(iterations, || {
            std::hint::black_box(index.count(&condition, today).unwrap());
        });
        let scan_times = measure(5, || {
            std::hint::black_box(rows.iter().filter(|row| scan(row)).count());
        });
        let sample_expected = index
            .members(&condition, today)
            .unwrap()
            .range(..SAMPLE as u32)
            .count();
        let reference = measure(3, || {
            let matched = sample
                .iter()
                .filter(|facts| evaluate(&condition, facts, today))
                .count();
            assert_eq!(matched, sample_expected);
        });
        let reference_full = reference[1].as_secs_f64() * customers as f64 / SAMPLE as f64;
        println!(
            "  {got:>8} of {customers}: {:>7.3} / {:>7.3} / {:>7.3} ms | row scan p50 {:>7.2} ms ({:.0}x) | reference evaluator ≈ {:>7.0} ms ({:.0}x) | {text}",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 99 / 100]),
            ms(times[times.len() - 1]),
            ms(scan_times[2]),
            scan_times[2].as_secs_f64() / times[times.len() / 2].as_secs_f64(),
            reference_full * 1000.0,
            reference_full / times[times.len() / 2].as_secs_f64(),
        );
    }

    let everyone = bind(&parse(r#"has_tag("价值等级")"#).unwrap(), &catalogue).unwrap();
    let mut member_count = 0;
    let members = measure(10, || {
        let members = index.members(&everyone, today).unwrap();
        let ids: Vec<String> = index.ids_of(&members).collect();
        member_count = ids.len();
        std::hint::black_box(ids);
    });
    let mut streamed_bytes = 0;
    let streamed = measure(10, || {
        let members = index.members(&everyone, today).unwrap();
        let mut out = Vec::with_capacity(members.len() as usize * 37);
        index.for_each_id(&members, |id| {
            out.extend_from_slice(id.as_bytes());
            out.push(b'\n');
        });
        streamed_bytes = out.len();
        std::hint::black_box(out);
    });
    let scan_ids = measure(5, || {
        let ids: Vec<String> = (0..rows.len()).map(customer_id).collect();
        std::hint::black_box(ids);
    });
    println!(
        "\nmembers: {member_count} ids as strings in {:.1} ms p50 ({:.1} ms max); formatting the same ids from a scan {:.1} ms",
        ms(members[members.len() / 2]),
        ms(members[members.len() - 1]),
        ms(scan_ids[2]),
    );
    let page = measure(50, || {
        std::hint::black_box(
            index
                .members_page(&everyone, today, Some(500_000), 1000)
                .unwrap(),
        );
    });
    println!(
        "members streamed into one buffer ({streamed_bytes} bytes): {:.1} ms p50 ({:.1} ms max)",
        ms(streamed[streamed.len() / 2]),
        ms(streamed[streamed.len() - 1]),
    );
    println!(
        "members page (1000 ids after cursor 500000): {:.2} ms p50",
        ms(page[page.len() / 2])
    );
}

fn random_row(rng: &mut StdRng, today: NaiveDate) -> Row {
    let tier = match rng.random_range(0..10) {
        0 | 1 => 0,
        2..=6 => 1,
        _ => 2,
    };
    let mut interests = 0u64;
    while interests.count_ones() < 8 {
        interests |= 1 << rng.random_range(0..INTERESTS);
    }
    let age_days = rng.random_range(18 * 365..70 * 365);
    // Skewed like real customers: 北京 and 上海 carry over a fifth each.
    let province = match rng.random_range(0..18) {
        0..=3 => 0,
        4..=7 => 1,
        n => (n - 6) as u8,
    };
    Row {
        tier,
        lifecycle: rng.random_range(0..5),
        churn: rng.random_range(0..10) == 0,
        spend: (rng.random_range(0.0f64..1.0).powi(3) * 100_000.0 * 100.0).round() / 100.0,
        member: rng.random_bool(0.4),
        interests,
        province,
        city: rng.random_range(0..10),
        gender: if rng.random_bool(0.55) {
            Gender::Female
        } else {
            Gender::Male
        },
        birthday: day_number(today - Days::new(age_days)),
        level: rng.random_range(0..10),
        orders_90d: rng.random_range(0..12),
    }
}

fn measure(iterations: usize, mut run: impl FnMut()) -> Vec<Duration> {
    run();
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Resident set size from /proc (Linux); 0 elsewhere.
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}
