//! Writing a person out as one raw record the way a channel sends it, and
//! corrupting duplicate records as configured.

use rand::Rng;
use rand::rngs::StdRng;

use crate::config::CorruptionMix;
use crate::person::{Person, Sex, Ymd, random_mobile};
use crate::record::{Corruption, CustomerRecord};
use crate::romanise::{capitalised, joined, surname_pinyin};
use crate::sound::SoundTable;
use crate::vocab::CHANNELS;

/// Renders `person`; `duplicate` records get corruptions drawn from `mix`.
pub fn render(
    rng: &mut StdRng,
    sounds: &SoundTable,
    mix: &CorruptionMix,
    person: &Person,
    duplicate: bool,
) -> CustomerRecord {
    let roll = |rng: &mut StdRng, p: f64| duplicate && rng.random_bool(p);
    let mut corruptions = Vec::new();
    let channel = CHANNELS[rng.random_range(0..CHANNELS.len())];
    let external_id = external_id(rng, channel);

    let name = render_name(rng, sounds, mix, person, duplicate, &mut corruptions);

    let gender = gender_text(rng, person.sex).to_owned();

    let mut birthday_text = String::new();
    if let Some(mut date) = person.birthday {
        if roll(rng, mix.birthday_transposed) && date.day <= 12 && date.day != date.month {
            std::mem::swap(&mut date.day, &mut date.month);
            corruptions.push(Corruption::BirthdayTransposed);
        }
        let alternative = roll(rng, mix.birthday_format);
        if alternative {
            corruptions.push(Corruption::BirthdayFormat);
        }
        birthday_text = birthday(rng, date, alternative);
    }

    let mut phones = person.phones.clone();
    if roll(rng, mix.phone_changed) {
        phones = vec![random_mobile(rng)];
        corruptions.push(Corruption::PhoneChanged);
    } else if roll(rng, mix.phone_digit_typo)
        && let Some(phone) = phones.first_mut()
    {
        *phone = one_digit_changed(rng, phone);
        corruptions.push(Corruption::PhoneDigitTypo);
    }
    let messy = roll(rng, mix.phone_format);
    if messy {
        corruptions.push(Corruption::PhoneFormat);
    }
    let phones = phones.iter().map(|p| phone(rng, p, messy)).collect();

    let mut emails: Vec<String> = person.email.iter().cloned().collect();
    if roll(rng, mix.email_case) && !emails.is_empty() {
        emails = emails.iter().map(|e| email_case(rng, e)).collect();
        corruptions.push(Corruption::EmailCase);
    }

    let mut record = CustomerRecord {
        entity_id: person.entity_id,
        household_id: person.household_id,
        name,
        gender,
        birthday: birthday_text,
        phones,
        emails,
        province: person.home.province_name().to_owned(),
        city: person.home.city_name().to_owned(),
        district: person.home.district.to_owned(),
        detail: person.home.detail.clone(),
        company: person.company.clone().unwrap_or_default(),
        channel: channel.to_owned(),
        external_id,
        corruptions: Vec::new(),
    };
    if roll(rng, mix.address_variant) {
        address_variant(rng, &mut record);
        corruptions.push(Corruption::AddressVariant);
    }
    if roll(rng, mix.missing_fields) && drop_fields(rng, &mut record) {
        corruptions.push(Corruption::MissingFields);
    }
    record.corruptions = corruptions;
    record
}

/// At most one name corruption per record: typo, same sound, or pinyin.
fn render_name(
    rng: &mut StdRng,
    sounds: &SoundTable,
    mix: &CorruptionMix,
    person: &Person,
    duplicate: bool,
    corruptions: &mut Vec<Corruption>,
) -> String {
    if !duplicate {
        return person.name();
    }
    let pick = rng.random::<f64>();
    let mut given = person.given.clone();
    if pick < mix.name_typo {
        if let Some(changed) = swap_one_char(rng, &given, |c| sounds.fuzzy_sound(c)) {
            given = changed;
            corruptions.push(Corruption::NameTypo);
        }
    } else if pick < mix.name_typo + mix.name_homophone {
        if let Some(changed) = swap_one_char(rng, &given, |c| sounds.same_sound(c)) {
            given = changed;
            corruptions.push(Corruption::NameHomophone);
        }
    } else if pick < mix.name_typo + mix.name_homophone + mix.name_pinyin {
        corruptions.push(Corruption::NamePinyin);
        return pinyin_name(rng, person.surname, &person.given);
    }
    format!("{}{}", person.surname, given)
}

/// Replaces one character of `given` by one of its `alternatives`, if any has some.
fn swap_one_char(
    rng: &mut StdRng,
    given: &str,
    alternatives: impl Fn(char) -> Vec<char>,
) -> Option<String> {
    let chars: Vec<char> = given.chars().collect();
    let start = rng.random_range(0..chars.len().max(1));
    for offset in 0..chars.len() {
        let index = (start + offset) % chars.len();
        let options = alternatives(chars[index]);
        if !options.is_empty() {
            let mut changed = chars.clone();
            changed[index] = options[rng.random_range(0..options.len())];
            return Some(changed.into_iter().collect());
        }
    }
    None
}

/// "Zhang Xiuying", "Xiuying Zhang", "ZHANG Xiuying", "zhang xiuying",
/// "ZhangXiuying" or "zhangxiuying".
pub fn pinyin_name(rng: &mut StdRng, surname: &str, given: &str) -> String {
    let family = surname_pinyin(surname);
    let first = joined(given);
    match rng.random_range(0..6) {
        4 => format!("{}{}", capitalised(&family), capitalised(&first)),
        5 => format!("{family}{first}"),
        0 => format!("{} {}", capitalised(&family), capitalised(&first)),
        1 => format!("{} {}", capitalised(&first), capitalised(&family)),
        2 => format!("{} {}", family.to_uppercase(), capitalised(&first)),
        _ => format!("{family} {first}"),
    }
}

fn gender_text(rng: &mut StdRng, sex: Sex) -> &'static str {
    let style = rng.random_range(0..10);
    match (sex, style) {
        (_, 0) => "",
        (Sex::Male, 1..=6) => "男",
        (Sex::Female, 1..=6) => "女",
        (Sex::Male, 7 | 8) => "M",
        (Sex::Female, 7 | 8) => "F",
        (Sex::Male, _) => "male",
        (Sex::Female, _) => "female",
    }
}

fn birthday(rng: &mut StdRng, date: Ymd, alternative: bool) -> String {
    let Ymd { year, month, day } = date;
    if !alternative {
        return format!("{year}-{month:02}-{day:02}");
    }
    match rng.random_range(0..4) {
        0 => format!("{year}/{month}/{day}"),
        1 => format!("{year}{month:02}{day:02}"),
        2 => format!("{year}年{month}月{day}日"),
        _ => format!("{year}.{month:02}.{day:02}"),
    }
}

/// Writes an 11-digit mobile in a clean channel style, or a messy one.
fn phone(rng: &mut StdRng, national: &str, messy: bool) -> String {
    let (a, rest) = national.split_at(3.min(national.len()));
    let (b, c) = rest.split_at(4.min(rest.len()));
    if !messy {
        return match rng.random_range(0..3) {
            0 => national.to_owned(),
            1 => format!("+86{national}"),
            _ => format!("{a} {b} {c}"),
        };
    }
    match rng.random_range(0..7) {
        0 => format!("+86 {a} {b} {c}"),
        1 => format!("+86-{a}-{b}-{c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("0086 {national}"),
        4 => format!("(+86) {national}"),
        5 => format!("86 {a} {b} {c}"),
        _ => full_width(&format!("{a} {b} {c}")),
    }
}

/// ASCII digits, '+' and spaces to their full-width forms (as typed in a CJK IME).
pub fn full_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' | '+' | '-' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            ' ' => '\u{3000}',
            other => other,
        })
        .collect()
}

fn one_digit_changed(rng: &mut StdRng, phone: &str) -> String {
    let mut digits: Vec<char> = phone.chars().collect();
    if digits.len() > 3 {
        let index = rng.random_range(3..digits.len());
        let old = digits[index].to_digit(10).unwrap_or(0);
        let new = (old + rng.random_range(1..10)) % 10;
        digits[index] = char::from_digit(new, 10).unwrap_or('0');
    }
    digits.into_iter().collect()
}

fn email_case(rng: &mut StdRng, email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    match rng.random_range(0..3) {
        0 => email.to_uppercase(),
        1 => format!("{}@{}", capitalised(local), domain.to_uppercase()),
        _ => format!("{local}@{}", capitalised(domain)),
    }
}

/// "广东省" → "广东", "广西壮族自治区" → "广西", "深圳市" → "深圳".
pub fn without_suffix(name: &str) -> String {
    for suffix in ["壮族自治区", "自治区", "省", "市"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return stem.to_owned();
        }
    }
    name.to_owned()
}

fn address_variant(rng: &mut StdRng, record: &mut CustomerRecord) {
    match rng.random_range(0..6) {
        0 => record.province = without_suffix(&record.province),
        1 => record.city = without_suffix(&record.city),
        2 => {
            record.province = without_suffix(&record.province);
            record.city = without_suffix(&record.city);
        }
        3 => {
            record.detail = format!("{}{}", record.district, record.detail);
            record.district.clear();
        }
        4 => {
            let province = std::mem::take(&mut record.province);
            let city = std::mem::take(&mut record.city);
            let district = std::mem::take(&mut record.district);
            let city = if city == province {
                String::new()
            } else {
                city
            };
            record.detail = format!("{province}{city}{district}{}", record.detail);
        }
        _ => record.province.clear(),
    }
}

/// Leaves out one or two optional fields, never both the phones and the
/// emails; false when nothing could go.
fn drop_fields(rng: &mut StdRng, record: &mut CustomerRecord) -> bool {
    let mut dropped = false;
    for _ in 0..rng.random_range(1..=2) {
        match rng.random_range(0..7) {
            0 if !record.phones.is_empty() => {
                dropped |= !std::mem::take(&mut record.emails).is_empty();
            }
            1 => dropped |= !std::mem::take(&mut record.birthday).is_empty(),
            2 => dropped |= !std::mem::take(&mut record.gender).is_empty(),
            3 => dropped |= !std::mem::take(&mut record.district).is_empty(),
            4 => dropped |= !std::mem::take(&mut record.detail).is_empty(),
            5 => dropped |= !std::mem::take(&mut record.company).is_empty(),
            _ if !record.emails.is_empty() => {
                dropped |= !std::mem::take(&mut record.phones).is_empty();
            }
            _ => {}
        }
    }
    dropped
}

fn external_id(rng: &mut StdRng, channel: &str) -> String {
    const OPENID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    match channel {
        "wechat" => std::iter::once('o')
            .chain((0..27).map(|_| char::from(OPENID[rng.random_range(0..OPENID.len())])))
            .collect(),
        "taobao" | "tmall" => format!("tb{:010}", rng.random_range(0..10_000_000_000u64)),
        "jd" => format!("jd_{:012x}", rng.random_range(0..1u64 << 48)),
        "douyin" => format!("dy{:016}", rng.random_range(0..10_000_000_000_000_000u64)),
        "app" => format!("U{:09}", rng.random_range(0..1_000_000_000u32)),
        "store_pos" => format!("POS{:08}", rng.random_range(0..100_000_000u32)),
        _ => format!("CRM-{:07}", rng.random_range(0..10_000_000u32)),
    }
}
