//! Address parts: provinces to their canonical short form, cities without their
//! 市/地区/盟 suffix, districts and details normalised.

use std::borrow::Cow;

use tagd_core::customers::{MAX_ADDRESS_DETAIL_CHARS, MAX_ADDRESS_PART_CHARS};

use crate::cleaned::CleanedText;
use crate::regions::{self, Division, Kind};
use crate::text::{compact, is_han, normalized, plain, too_long};

/// A province-level division to its short form: "广东省" → "广东", "广西壮族自治区" →
/// "广西", "香港特别行政区" → "香港", "Guangdong Province" → "广东". A value naming
/// none of the 34 divisions is unfixable.
pub fn province(raw: &str) -> CleanedText<'_> {
    let text = compact(normalized(raw));
    if text.is_empty() {
        return CleanedText::compare(raw, text);
    }
    match regions::lookup(&text) {
        Some(division) => CleanedText::compare(raw, Cow::Borrowed(division.short)),
        None => CleanedText::Unfixable(format!(
            "{text:?} is not one of China's 34 provinces, municipalities, autonomous regions or SARs"
        )),
    }
}

/// A city, given the customer's province (any spelling, or ""): "深圳市" → "深圳",
/// "阿里地区" → "阿里", "锡林郭勒盟" → "锡林郭勒", a municipality or SAR to its short
/// form ("北京市" → "北京"), autonomous prefectures to their official name ("延边州" →
/// "延边朝鲜族自治州"), a leading province dropped ("广东省深圳市" → "深圳"). A province
/// given as the city is unfixable; other names are kept, normalised.
pub fn city<'a>(raw: &'a str, province: &str) -> CleanedText<'a> {
    let text = compact(normalized(raw));
    if text.is_empty() {
        return CleanedText::compare(raw, text);
    }
    if let Some(reason) = too_long("city", &text, MAX_ADDRESS_PART_CHARS) {
        return CleanedText::Unfixable(reason);
    }
    let province = regions::lookup(&compact(normalized(province)));
    match standard_city(&text, province) {
        Ok(None) => CleanedText::compare(raw, text),
        Ok(Some(name)) => CleanedText::compare(raw, Cow::Owned(name)),
        Err(reason) => CleanedText::Unfixable(reason),
    }
}

/// The city's standard name when it differs from `text`.
fn standard_city(
    text: &str,
    province: Option<&'static Division>,
) -> Result<Option<String>, String> {
    // A whole known name ("海南藏族自治州" in 海南) is never cut at a province prefix.
    let known = regions::lookup(text).is_some() || regions::prefecture(text).is_some();
    let base = if known {
        text
    } else {
        without_province(text, province).unwrap_or(text)
    };
    let mut name = resolve_city(base, province)?.unwrap_or(Cow::Borrowed(base));
    // Stripping one suffix can uncover another ("地区市市" → "地区市" → "地区"): go to
    // the fixed point, so cleansing a cleansed city changes nothing.
    for _ in 0..4 {
        match resolve_city(&name, province)? {
            Some(next) if next != name => name = Cow::Owned(next.into_owned()),
            _ => break,
        }
    }
    Ok((name != text).then(|| name.into_owned()))
}

/// The standard form of a city name, `None` when the name is kept as it is.
fn resolve_city<'t>(
    text: &'t str,
    province: Option<&'static Division>,
) -> Result<Option<Cow<'t, str>>, String> {
    if let Some(division) = regions::lookup(text) {
        match division.kind {
            Kind::Municipality | Kind::SpecialAdministrativeRegion => {
                return Ok(Some(Cow::Borrowed(division.short)));
            }
            // "吉林" is also a city; "吉林省" or "Guangdong Province" is not.
            _ if text != division.short && !text.is_ascii() && !text.ends_with('市') => {
                return Err(format!("{text:?} names a province, not a city"));
            }
            _ => {}
        }
    }
    if let Some(p) = province.filter(|p| p.kind == Kind::Municipality) {
        // Placeholders of the national division codes for a municipality's second level.
        if matches!(text, "市辖区" | "县" | "市辖县" | "城区" | "辖区") {
            return Ok(Some(Cow::Borrowed(p.short)));
        }
    }
    if let Some(full) = regions::prefecture(text) {
        return Ok(Some(Cow::Borrowed(full)));
    }
    let stem = ["市", "地区", "盟"]
        .iter()
        .find_map(|suffix| text.strip_suffix(suffix))
        // "沙市" keeps its 市; only a Chinese name of two characters or more loses it.
        .filter(|stem| stem.chars().count() >= 2 && stem.chars().all(is_han));
    let Some(stem) = stem else {
        return Ok(None);
    };
    if let Some(full) = regions::prefecture(stem) {
        return Ok(Some(Cow::Borrowed(full)));
    }
    Ok(Some(Cow::Borrowed(stem)))
}

/// The city with the customer's province written before it removed ("广东省深圳市" →
/// "深圳市"), when something city-like (two characters or more) remains.
fn without_province<'t>(text: &'t str, province: Option<&'static Division>) -> Option<&'t str> {
    let province = province?;
    let after_short = text.strip_prefix(province.short);
    let rest = text
        .strip_prefix(province.full)
        .or_else(|| after_short.and_then(|r| r.strip_prefix('省').or_else(|| r.strip_prefix('市'))))
        .or(after_short)?;
    (rest.chars().count() >= 2).then_some(rest)
}

/// A district: normalised, spaces inside Chinese removed.
pub fn district(raw: &str) -> CleanedText<'_> {
    let text = compact(normalized(raw));
    if let Some(reason) = too_long("district", &text, MAX_ADDRESS_PART_CHARS) {
        return CleanedText::Unfixable(reason);
    }
    CleanedText::compare(raw, text)
}

/// The street address: normalised.
pub fn address_detail(raw: &str) -> CleanedText<'_> {
    plain(raw, "address", MAX_ADDRESS_DETAIL_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cleaned;

    fn fixed(outcome: CleanedText<'_>) -> String {
        outcome.into_result().unwrap().into_owned()
    }

    #[test]
    fn provinces_become_short_forms() {
        for (raw, want) in [
            ("北京市", "北京"),
            ("广东省", "广东"),
            ("广西壮族自治区", "广西"),
            ("内蒙古自治区", "内蒙古"),
            ("新疆维吾尔自治区", "新疆"),
            ("新疆维吾尔族自治区", "新疆"),
            ("宁夏回族自治区", "宁夏"),
            ("西藏自治区", "西藏"),
            ("香港特别行政区", "香港"),
            ("澳門特別行政區", "澳门"),
            ("臺灣", "台湾"),
            ("广西省", "广西"),
            ("内蒙", "内蒙古"),
            (" 广 东 省 ", "广东"),
            ("中国广东省", "广东"),
            ("粤", "广东"),
            ("Guangdong", "广东"),
            ("guangdong province", "广东"),
            ("Beijing", "北京"),
            ("BEIJING SHI", "北京"),
            ("Shanxi", "山西"),
            ("Shaanxi", "陕西"),
            ("Inner Mongolia Autonomous Region", "内蒙古"),
            ("Guangxi Zhuang Autonomous Region", "广西"),
            ("Xinjiang Uygur Autonomous Region", "新疆"),
            ("Tibet", "西藏"),
            ("Hong Kong SAR", "香港"),
            ("Macao", "澳门"),
            ("Ｇｕａｎｇｄｏｎｇ", "广东"),
        ] {
            assert_eq!(fixed(province(raw)), want, "{raw:?}");
        }
        assert_eq!(province("广东"), Cleaned::Unchanged(Cow::Borrowed("广东")));
        assert_eq!(province(""), Cleaned::Unchanged(Cow::Borrowed("")));
        assert_eq!(fixed(province("  ")), "");
    }

    #[test]
    fn unknown_provinces_are_unfixable() {
        for raw in ["California", "火星省", "宁市", "广东省深圳市", "x"] {
            let reason = province(raw)
                .reason()
                .map(str::to_owned)
                .unwrap_or_default();
            assert!(
                reason.contains("is not one of China's 34"),
                "{raw:?}: {reason}"
            );
        }
    }

    #[test]
    fn cities_lose_their_suffix() {
        for (raw, prov, want) in [
            ("深圳市", "广东", "深圳"),
            ("深圳", "广东", "深圳"),
            ("北京市", "北京", "北京"),
            ("北京市", "", "北京"),
            ("市辖区", "北京市", "北京"),
            ("Shanghai", "", "上海"),
            ("香港特别行政区", "香港", "香港"),
            ("阿里地区", "西藏", "阿里"),
            ("大兴安岭地区", "黑龙江", "大兴安岭"),
            ("锡林郭勒盟", "内蒙古", "锡林郭勒"),
            ("兴安盟", "内蒙古", "兴安"),
            ("延边朝鲜族自治州", "吉林", "延边朝鲜族自治州"),
            ("延边州", "吉林", "延边朝鲜族自治州"),
            ("延边", "吉林", "延边朝鲜族自治州"),
            ("海南州", "青海", "海南藏族自治州"),
            ("海南藏族自治州", "海南", "海南藏族自治州"),
            ("大理市", "云南", "大理白族自治州"),
            ("吉林市", "吉林", "吉林"),
            ("吉林", "吉林省", "吉林"),
            ("沙市", "湖北", "沙市"),
            ("广东省深圳市", "广东", "深圳"),
            ("广东深圳", "广东省", "深圳"),
            ("内蒙古自治区呼和浩特市", "内蒙古", "呼和浩特"),
            (" 深 圳 市 ", "广东", "深圳"),
            ("Shenzhen", "广东", "Shenzhen"),
            ("朝阳区", "北京", "朝阳区"),
        ] {
            assert_eq!(fixed(city(raw, prov)), want, "{raw:?} in {prov:?}");
        }
        assert_eq!(
            city("深圳", "广东"),
            Cleaned::Unchanged(Cow::Borrowed("深圳"))
        );
    }

    #[test]
    fn a_province_as_city_is_unfixable() {
        assert_eq!(
            city("广东省", "广东").reason(),
            Some("\"广东省\" names a province, not a city")
        );
        assert!(city("广西壮族自治区", "").is_unfixable());
    }

    #[test]
    fn districts_and_details_are_normalised() {
        assert_eq!(fixed(district(" 南山 区 ")), "南山区");
        assert_eq!(fixed(address_detail(" 科技园  路１号 ")), "科技园 路1号");
        assert!(!address_detail("").is_changed());
    }
}
