//! Benchmark: record-level cleansing of messy customers, single-threaded, beside a
//! baseline (clone each record and normalise its name with tagd-core) in the same run.
#![expect(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tagd_cleanse::{CleanseOptions, CleanseReport, Cleanser};
use tagd_core::customers::{Address, CustomerFields, Gender};
use tagd_core::text;

const RECORDS: usize = 250_000;
const ROUNDS: usize = 3;
const SEED: u64 = 20_240_401;

const SURNAMES: &[&str] = &[
    "张", "王", "李", "赵", "陈", "刘", "欧阳", "司马", "杨", "黄",
];
const GIVEN: &[&str] = &["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军"];
const LATIN: &[&str] = &["Zhang Wei", "Li Na", "John Smith", "Wang Fang", "Chen Jing"];
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "135", "136", "138", "139", "150", "152", "158", "166", "177", "180", "186",
    "188", "191", "199",
];
const DOMAINS: &[&str] = &[
    "qq.com",
    "163.com",
    "gmail.com",
    "Example.COM",
    "126.com",
    "outlook.com",
];
/// (province spellings, cities of that province in assorted spellings)
const PLACES: &[(&[&str], &[&str])] = &[
    (
        &["广东省", "广东", "Guangdong", " 广 东 "],
        &["深圳市", "深圳", "广州市", "广东省深圳市"],
    ),
    (
        &["北京市", "北京", "Beijing", ""],
        &["北京市", "北京", "市辖区", ""],
    ),
    (&["上海市", "上海"], &["上海市", "上海"]),
    (&["广西壮族自治区", "广西", "广西省"], &["南宁市", "桂林"]),
    (&["内蒙古自治区", "内蒙古"], &["锡林郭勒盟", "呼和浩特市"]),
    (
        &["新疆维吾尔自治区", "新疆"],
        &["喀什地区", "伊犁州", "乌鲁木齐市"],
    ),
    (
        &["吉林省", "吉林"],
        &["延边朝鲜族自治州", "延边州", "吉林市", "长春"],
    ),
    (&["香港特别行政区", "香港"], &["香港"]),
    (
        &["浙江省", "浙江", "Zhejiang Province"],
        &["杭州市", "宁波"],
    ),
    (&["四川省", "四川"], &["成都市", "凉山州"]),
];

fn main() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let records: Vec<CustomerFields> = (0..RECORDS).map(|_| messy_customer(&mut rng)).collect();
    let ids: Vec<String> = (0..RECORDS).map(|i| format!("c{i:07}")).collect();
    let options = CleanseOptions {
        today: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap_or_default(),
        ..CleanseOptions::default()
    };
    let cleanser = match Cleanser::new(options) {
        Ok(cleanser) => cleanser,
        Err(err) => panic!("{err}"),
    };

    // Warm-up: lookup tables, phonenumber's metadata, the page cache.
    for fields in records.iter().take(20_000) {
        black_box(cleanser.cleanse(fields.clone()));
    }

    let mut best_cleanse = Duration::MAX;
    let mut best_baseline = Duration::MAX;
    let mut report = CleanseReport::new();
    for round in 0..ROUNDS {
        // The job hands over records it owns; copying them is not part of cleansing.
        let input = records.clone();
        let mut round_report = CleanseReport::new();
        let started = Instant::now();
        for (fields, id) in input.into_iter().zip(&ids) {
            let cleansed = cleanser.cleanse(fields);
            round_report.add(id, &cleansed);
            black_box(cleansed);
        }
        best_cleanse = best_cleanse.min(started.elapsed());
        if round == 0 {
            report = round_report;
        }

        let started = Instant::now();
        for fields in &records {
            let mut copy = fields.clone();
            copy.name = text::normalize(&copy.name);
            black_box(copy);
        }
        best_baseline = best_baseline.min(started.elapsed());
    }

    let rate = |elapsed: Duration| RECORDS as f64 / elapsed.as_secs_f64();
    let cleanse_rate = rate(best_cleanse);
    let baseline_rate = rate(best_baseline);
    println!(
        "records                   {RECORDS} (seed {SEED}, best of {ROUNDS} rounds, one thread)"
    );
    println!(
        "cleanse                   {:.3} s  {:>10.0} customers/s",
        best_cleanse.as_secs_f64(),
        cleanse_rate
    );
    println!(
        "baseline (clone+normalize) {:.3} s  {:>10.0} customers/s",
        best_baseline.as_secs_f64(),
        baseline_rate
    );
    println!(
        "ratio cleanse/baseline    {:.3} (target >= 200000 customers/s: {})",
        cleanse_rate / baseline_rate,
        if cleanse_rate >= 200_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "customers changed         {} of {}; with unfixable values {}",
        report.customers_changed, report.customers, report.customers_with_problems
    );
    for (field, tally) in &report.fields {
        println!(
            "  {:<18} changed {:>7}  duplicates {:>6}  unfixable {:>6}",
            tagd_cleanse::field_name(*field),
            tally.changed,
            tally.duplicates_removed,
            tally.unfixable
        );
    }
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or_default()
}

fn messy_customer(rng: &mut StdRng) -> CustomerFields {
    let (provinces, cities) = *PLACES.choose(rng).unwrap_or(&PLACES[0]);
    let mut phones = Vec::new();
    let mobile = format!(
        "{}{:08}",
        pick(rng, MOBILE_PREFIXES),
        rng.random_range(0..100_000_000u32)
    );
    phones.push(spell_phone(rng, &mobile));
    match rng.random_range(0..100) {
        // Two spellings of the same number.
        0..=9 => phones.push(spell_phone(rng, &mobile)),
        10..=14 => phones.push(format!(
            "{mobile}/{}",
            pick(rng, MOBILE_PREFIXES).to_owned() + "12345678"
        )),
        15..=17 => {
            phones.push(pick(rng, &["010-62345678", "0755-8888 6666", "(021)64123456"]).to_owned())
        }
        18 => phones.push("+1 650-253-0000".to_owned()),
        19 => phones.push(pick(rng, &["12345", "无", "1380013800"]).to_owned()),
        _ => {}
    }
    let emails = if rng.random_bool(0.6) {
        let local = pick(
            rng,
            &[
                "zhang.wei",
                "Li.Na",
                "wangfang88",
                "Chen_Jing",
                "13800138000",
            ],
        );
        let domain = pick(rng, DOMAINS);
        let email = match rng.random_range(0..10) {
            0 => format!(" {local}@{domain} "),
            1 => format!("{}@{domain}", local.to_uppercase()),
            2 => format!("{local}＠{domain}"),
            3 => format!("{local}{domain}"),
            _ => format!("{}@{}", local.to_lowercase(), domain.to_lowercase()),
        };
        vec![email]
    } else {
        Vec::new()
    };
    let name = match rng.random_range(0..10) {
        0 => format!("  {} {} ", pick(rng, SURNAMES), pick(rng, GIVEN)),
        1 => text_full_width(pick(rng, LATIN)),
        2 => "阿依古丽•买买提".to_owned(),
        3 => pick(rng, LATIN).replace(' ', "  "),
        _ => format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN)),
    };
    let birthday = NaiveDate::from_ymd_opt(
        rng.random_range(1940..2027),
        rng.random_range(1..=12),
        rng.random_range(1..=28),
    );
    CustomerFields {
        name,
        gender: *[Gender::Male, Gender::Female, Gender::Unspecified]
            .choose(rng)
            .unwrap_or(&Gender::Unspecified),
        birthday,
        phones,
        emails,
        address: Address {
            province: pick(rng, provinces).to_owned(),
            city: pick(rng, cities).to_owned(),
            district: pick(rng, &["南山区", " 南山 区", "朝阳区", "", "西湖区 "]).to_owned(),
            detail: pick(
                rng,
                &["科技园路1号", "科技园  路１号 ", "人民路88号3栋", ""],
            )
            .to_owned(),
        },
        company: pick(rng, &["", "腾讯", " 阿里巴巴 ", "ＡＢＣ公司"]).to_owned(),
        ..CustomerFields::default()
    }
}

fn spell_phone(rng: &mut StdRng, mobile: &str) -> String {
    let (a, b, c) = (&mobile[..3], &mobile[3..7], &mobile[7..]);
    match rng.random_range(0..12) {
        0 => format!("+86 {a} {b} {c}"),
        1 => format!("{a}-{b}-{c}"),
        2 => format!("(+86){mobile}"),
        3 => text_full_width(mobile),
        4 => format!("tel:+86-{a}-{b}-{c}"),
        5 => format!("0086 {mobile}"),
        6 => format!("{mobile}转{}", rng.random_range(100..999)),
        7 => format!("86{mobile}"),
        8 | 9 => format!("+86{mobile}"),
        _ => mobile.to_owned(),
    }
}

/// ASCII letters and digits to their full-width forms, as some input methods type them.
fn text_full_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            ' ' => '\u{3000}',
            _ => c,
        })
        .collect()
}
