//! The clean truth about one generated person: name, birthday, phones,
//! email, address, company.

use rand::Rng;
use rand::rngs::StdRng;

use crate::romanise;
use crate::vocab::{
    COMMUNITIES, COMPANY_WORDS, EMAIL_DOMAINS, FEMALE_CHARS, INDUSTRIES, MALE_CHARS,
    MOBILE_PREFIXES, POPULAR_FEMALE, POPULAR_MALE, PROVINCES, STREETS, SURNAMES,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

/// A calendar date; the generator needs no more than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ymd {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Ymd {
    pub fn random(rng: &mut StdRng, years: std::ops::RangeInclusive<i32>) -> Self {
        let year = rng.random_range(years);
        let month = rng.random_range(1..=12);
        let day = rng.random_range(1..=days_in_month(year, month));
        Self { year, month, day }
    }
}

/// Where a person lives: indices into the geography, district and detail line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub province: usize,
    pub city: usize,
    pub district: &'static str,
    pub detail: String,
}

impl Home {
    pub fn random(rng: &mut StdRng) -> Self {
        let province = weighted_index(rng, PROVINCES.iter().map(|p| p.weight));
        let cities = PROVINCES[province].cities;
        let city = rng.random_range(0..cities.len());
        Self::in_city(rng, province, city)
    }

    pub fn in_city(rng: &mut StdRng, province: usize, city: usize) -> Self {
        let districts = PROVINCES[province].cities[city].districts;
        let district = districts[rng.random_range(0..districts.len())];
        let street = STREETS[rng.random_range(0..STREETS.len())];
        let number = rng.random_range(1..=888);
        let community = COMMUNITIES[rng.random_range(0..COMMUNITIES.len())];
        let building = rng.random_range(1..=30);
        let unit = rng.random_range(1..=4);
        let room = rng.random_range(1..=33) * 100 + rng.random_range(1..=4);
        Self {
            province,
            city,
            district,
            detail: format!("{street}{number}号{community}{building}栋{unit}单元{room}室"),
        }
    }

    pub fn province_name(&self) -> &'static str {
        PROVINCES[self.province].name
    }

    pub fn city_name(&self) -> &'static str {
        PROVINCES[self.province].cities[self.city].name
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub entity_id: u64,
    pub household_id: Option<u64>,
    pub surname: &'static str,
    pub given: String,
    pub sex: Sex,
    pub birthday: Option<Ymd>,
    /// 11-digit national mobile numbers.
    pub phones: Vec<String>,
    pub email: Option<String>,
    pub home: Home,
    pub company: Option<String>,
}

impl Person {
    pub fn name(&self) -> String {
        format!("{}{}", self.surname, self.given)
    }
}

/// Picks an index with probability proportional to its weight.
pub fn weighted_index(rng: &mut StdRng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (index, weight) in weights.enumerate() {
        if pick < weight {
            return index;
        }
        pick -= weight;
    }
    0
}

pub fn random_surname(rng: &mut StdRng) -> &'static str {
    SURNAMES[weighted_index(rng, SURNAMES.iter().map(|(_, w)| *w))].0
}

/// A given name: a popular whole name 40% of the time (so namesakes occur
/// naturally), else one or two characters from the sex's pool.
pub fn random_given(rng: &mut StdRng, sex: Sex) -> String {
    let (popular, pool) = match sex {
        Sex::Male => (POPULAR_MALE, MALE_CHARS),
        Sex::Female => (POPULAR_FEMALE, FEMALE_CHARS),
    };
    if rng.random_bool(0.4) {
        return popular[rng.random_range(0..popular.len())].to_owned();
    }
    let chars: Vec<char> = pool.chars().collect();
    let length = if rng.random_bool(0.15) { 1 } else { 2 };
    (0..length)
        .map(|_| chars[rng.random_range(0..chars.len())])
        .collect()
}

pub fn random_mobile(rng: &mut StdRng) -> String {
    let prefix = MOBILE_PREFIXES[rng.random_range(0..MOBILE_PREFIXES.len())];
    format!("{prefix}{:08}", rng.random_range(0..100_000_000u32))
}

/// An email address built the ways people build them: pinyin with a year or
/// digits, initials, or a QQ number at qq.com.
pub fn random_email(rng: &mut StdRng, surname: &str, given: &str, birthday: Option<Ymd>) -> String {
    let domain = EMAIL_DOMAINS[weighted_index(rng, EMAIL_DOMAINS.iter().map(|(_, w)| *w))].0;
    let family = romanise::surname_pinyin(surname);
    let first = romanise::joined(given);
    let year = birthday.map_or(rng.random_range(1960..2010), |b| b.year);
    let digits = rng.random_range(0..10_000);
    let local = match rng.random_range(0..5) {
        0 if domain == "qq.com" => {
            return format!("{}@qq.com", rng.random_range(10_000..3_000_000_000u64));
        }
        0 | 1 => format!("{family}{first}{}{digits:04}", year % 100),
        2 => format!("{first}.{family}{digits}"),
        3 => {
            let initials: String = family
                .chars()
                .take(1)
                .chain(first.chars().take(1))
                .collect();
            format!("{initials}{year}{digits:04}")
        }
        _ => format!("{family}_{first}{digits}"),
    };
    format!("{local}@{domain}")
}

pub fn random_company(rng: &mut StdRng, home: &Home) -> String {
    let city = home.city_name().trim_end_matches('市');
    let word = COMPANY_WORDS[rng.random_range(0..COMPANY_WORDS.len())];
    let industry = INDUSTRIES[rng.random_range(0..INDUSTRIES.len())];
    format!("{city}{word}{industry}有限公司")
}
