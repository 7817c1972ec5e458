//! The tables of Chinese place names: the 34 provincial-level divisions with their
//! spellings, and the 30 autonomous prefectures; built into hash maps once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// A multiply-rotate hash (as in rustc's FxHash): the keys are this file's fixed
/// names, so flooding is no concern, and SipHash was a visible share of a cleanse.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type NameMap<V> = HashMap<&'static str, V, BuildHasherDefault<NameHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Municipality,
    Province,
    AutonomousRegion,
    SpecialAdministrativeRegion,
}

#[derive(Debug)]
pub(crate) struct Division {
    /// The canonical short form, e.g. "广西".
    pub short: &'static str,
    /// The official full name, e.g. "广西壮族自治区".
    pub full: &'static str,
    pub kind: Kind,
    /// Other Chinese spellings: one-character abbreviations, traditional characters,
    /// common mistakes ("广西省", "新疆维吾尔族自治区").
    pub aliases: &'static [&'static str],
    /// Pinyin and English, lower-case a-z only.
    pub latin: &'static [&'static str],
}

use Kind::{
    AutonomousRegion as A, Municipality as M, Province as P, SpecialAdministrativeRegion as S,
};

macro_rules! divisions {
    ($(($short:literal, $full:literal, $kind:ident, [$($alias:literal),*], [$($latin:literal),*]),)*) => {
        &[$(Division { short: $short, full: $full, kind: $kind, aliases: &[$($alias),*], latin: &[$($latin),*] },)*]
    };
}

pub(crate) static DIVISIONS: &[Division] = divisions![
    ("北京", "北京市", M, ["京"], ["beijing", "peking"]),
    ("天津", "天津市", M, ["津"], ["tianjin", "tientsin"]),
    ("上海", "上海市", M, ["沪", "滬"], ["shanghai"]),
    (
        "重庆",
        "重庆市",
        M,
        ["渝", "重慶"],
        ["chongqing", "chungking"]
    ),
    ("河北", "河北省", P, ["冀"], ["hebei"]),
    ("山西", "山西省", P, ["晋", "晉"], ["shanxi"]),
    ("辽宁", "辽宁省", P, ["辽", "遼寧", "遼"], ["liaoning"]),
    ("吉林", "吉林省", P, ["吉"], ["jilin"]),
    ("黑龙江", "黑龙江省", P, ["黑", "黑龍江"], ["heilongjiang"]),
    ("江苏", "江苏省", P, ["苏", "江蘇", "蘇"], ["jiangsu"]),
    ("浙江", "浙江省", P, ["浙"], ["zhejiang"]),
    ("安徽", "安徽省", P, ["皖"], ["anhui"]),
    ("福建", "福建省", P, ["闽", "閩"], ["fujian"]),
    ("江西", "江西省", P, ["赣", "贛"], ["jiangxi"]),
    ("山东", "山东省", P, ["鲁", "山東", "魯"], ["shandong"]),
    ("河南", "河南省", P, ["豫"], ["henan"]),
    ("湖北", "湖北省", P, ["鄂"], ["hubei"]),
    ("湖南", "湖南省", P, ["湘"], ["hunan"]),
    (
        "广东",
        "广东省",
        P,
        ["粤", "廣東", "粵"],
        ["guangdong", "canton"]
    ),
    ("海南", "海南省", P, ["琼", "瓊"], ["hainan"]),
    ("四川", "四川省", P, ["川", "蜀"], ["sichuan"]),
    ("贵州", "贵州省", P, ["贵", "黔", "貴州", "貴"], ["guizhou"]),
    ("云南", "云南省", P, ["云", "滇", "雲南", "雲"], ["yunnan"]),
    ("陕西", "陕西省", P, ["陕", "秦", "陝西", "陝"], ["shaanxi"]),
    ("甘肃", "甘肃省", P, ["甘", "陇", "甘肅", "隴"], ["gansu"]),
    ("青海", "青海省", P, ["青"], ["qinghai"]),
    (
        "台湾",
        "台湾省",
        P,
        ["台", "台灣", "臺灣", "臺"],
        ["taiwan"]
    ),
    (
        "内蒙古",
        "内蒙古自治区",
        A,
        ["蒙", "内蒙", "內蒙古", "內蒙"],
        ["neimenggu", "neimongol", "innermongolia", "nmg"]
    ),
    (
        "广西",
        "广西壮族自治区",
        A,
        ["桂", "廣西"],
        ["guangxi", "guangxizhuang"]
    ),
    ("西藏", "西藏自治区", A, ["藏"], ["xizang", "tibet"]),
    (
        "宁夏",
        "宁夏回族自治区",
        A,
        ["宁", "寧夏", "寧"],
        ["ningxia", "ningxiahui"]
    ),
    (
        "新疆",
        "新疆维吾尔自治区",
        A,
        ["新"],
        [
            "xinjiang",
            "xinjianguygur",
            "xinjianguyghur",
            "xinjianguighur",
            "xinjianguigur"
        ]
    ),
    (
        "香港",
        "香港特别行政区",
        S,
        ["港"],
        ["hongkong", "xianggang", "hk", "hksar"]
    ),
    (
        "澳门",
        "澳门特别行政区",
        S,
        ["澳", "澳門"],
        ["macau", "macao", "aomen"]
    ),
];

/// Suffixes a Chinese spelling of a division may carry, longest first, so that
/// "新疆维吾尔族自治区" loses the whole tail before "自治区" alone is tried.
const SUFFIXES: &[&str] = &[
    "维吾尔族自治区",
    "维吾尔自治区",
    "維吾爾自治區",
    "特别行政区",
    "特別行政區",
    "壮族自治区",
    "壯族自治區",
    "回族自治区",
    "回族自治區",
    "自治区",
    "自治區",
    "特区",
    "特區",
    "省",
    "市",
];

/// Words a Latin spelling may carry ("Guangdong Province", "Hong Kong SAR").
const LATIN_SUFFIXES: &[&str] = &[
    "specialadministrativeregion",
    "autonomousregion",
    "municipality",
    "province",
    "zizhiqu",
    "sheng",
    "city",
    "shi",
    "sar",
    "prc",
    "china",
];

static BY_NAME: LazyLock<NameMap<&'static Division>> = LazyLock::new(|| {
    let mut map = NameMap::default();
    for division in DIVISIONS {
        map.insert(division.short, division);
        map.insert(division.full, division);
        for alias in division.aliases {
            map.insert(*alias, division);
        }
    }
    map
});

static BY_LATIN: LazyLock<NameMap<&'static Division>> = LazyLock::new(|| {
    let mut map = NameMap::default();
    for division in DIVISIONS {
        for latin in division.latin {
            map.insert(*latin, division);
        }
    }
    map
});

/// The division a normalised, compacted spelling names, if any.
pub(crate) fn lookup(text: &str) -> Option<&'static Division> {
    if let Some(division) = BY_NAME.get(text) {
        return Some(division);
    }
    if text.is_ascii() {
        return lookup_latin(text);
    }
    let text = text
        .strip_prefix("中国")
        .or_else(|| text.strip_prefix("中國"))
        .unwrap_or(text);
    if let Some(division) = BY_NAME.get(text) {
        return Some(division);
    }
    let stem = SUFFIXES
        .iter()
        .find_map(|suffix| text.strip_suffix(suffix))?;
    // A one-character stem is an abbreviation, which never takes a suffix ("宁市" is not 宁夏).
    if stem.chars().count() < 2 {
        return None;
    }
    BY_NAME.get(stem).copied()
}

fn lookup_latin(text: &str) -> Option<&'static Division> {
    let mut key: String = text
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    loop {
        if let Some(division) = BY_LATIN.get(key.as_str()) {
            return Some(division);
        }
        let stem_len = LATIN_SUFFIXES
            .iter()
            .find_map(|suffix| key.strip_suffix(suffix).map(str::len))?;
        if stem_len == 0 {
            return None;
        }
        key.truncate(stem_len);
    }
}

/// Whether `name` (a canonical short form) is one of the four municipalities.
pub fn is_municipality(name: &str) -> bool {
    BY_NAME
        .get(name)
        .is_some_and(|d| d.kind == Kind::Municipality && d.short == name)
}

/// Whether `name` (a canonical short form) is Hong Kong or Macao.
pub fn is_special_administrative_region(name: &str) -> bool {
    BY_NAME
        .get(name)
        .is_some_and(|d| d.kind == Kind::SpecialAdministrativeRegion && d.short == name)
}

/// The 30 autonomous prefectures: official name, then the short forms people write.
/// The official name is kept as the standard form: it cannot be derived from the
/// short one, and the short one can collide ("海南" is also a province).
static PREFECTURES: &[(&str, &[&str])] = &[
    ("延边朝鲜族自治州", &["延边", "延边州"]),
    ("恩施土家族苗族自治州", &["恩施", "恩施州"]),
    ("湘西土家族苗族自治州", &["湘西", "湘西州"]),
    ("阿坝藏族羌族自治州", &["阿坝", "阿坝州"]),
    ("甘孜藏族自治州", &["甘孜", "甘孜州"]),
    ("凉山彝族自治州", &["凉山", "凉山州"]),
    ("黔东南苗族侗族自治州", &["黔东南", "黔东南州"]),
    ("黔南布依族苗族自治州", &["黔南", "黔南州"]),
    ("黔西南布依族苗族自治州", &["黔西南", "黔西南州"]),
    ("楚雄彝族自治州", &["楚雄", "楚雄州"]),
    ("红河哈尼族彝族自治州", &["红河", "红河州"]),
    ("文山壮族苗族自治州", &["文山", "文山州"]),
    ("西双版纳傣族自治州", &["西双版纳", "西双版纳州", "版纳"]),
    ("大理白族自治州", &["大理", "大理州"]),
    ("德宏傣族景颇族自治州", &["德宏", "德宏州"]),
    ("怒江傈僳族自治州", &["怒江", "怒江州"]),
    ("迪庆藏族自治州", &["迪庆", "迪庆州"]),
    ("临夏回族自治州", &["临夏", "临夏州"]),
    ("甘南藏族自治州", &["甘南", "甘南州"]),
    ("海北藏族自治州", &["海北", "海北州"]),
    ("黄南藏族自治州", &["黄南", "黄南州"]),
    ("海南藏族自治州", &["海南州"]),
    ("果洛藏族自治州", &["果洛", "果洛州"]),
    ("玉树藏族自治州", &["玉树", "玉树州"]),
    ("海西蒙古族藏族自治州", &["海西", "海西州"]),
    ("昌吉回族自治州", &["昌吉", "昌吉州"]),
    ("博尔塔拉蒙古自治州", &["博尔塔拉", "博尔塔拉州", "博州"]),
    ("巴音郭楞蒙古自治州", &["巴音郭楞", "巴音郭楞州", "巴州"]),
    (
        "克孜勒苏柯尔克孜自治州",
        &["克孜勒苏", "克孜勒苏州", "克州"],
    ),
    ("伊犁哈萨克自治州", &["伊犁", "伊犁州"]),
];

static PREFECTURE_BY_NAME: LazyLock<NameMap<&'static str>> = LazyLock::new(|| {
    let mut map = NameMap::default();
    for (full, aliases) in PREFECTURES {
        map.insert(*full, *full);
        // "延边自治州", a spelling that drops the ethnic name.
        for alias in *aliases {
            map.insert(*alias, *full);
        }
    }
    map
});

/// The official name of the autonomous prefecture `text` names, if any.
pub(crate) fn prefecture(text: &str) -> Option<&'static str> {
    if let Some(full) = PREFECTURE_BY_NAME.get(text) {
        return Some(full);
    }
    let stem = text.strip_suffix("自治州")?;
    PREFECTURE_BY_NAME.get(stem).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_34_divisions_with_unique_names() {
        assert_eq!(DIVISIONS.len(), 34);
        let count = |kind| DIVISIONS.iter().filter(|d| d.kind == kind).count();
        assert_eq!(count(Kind::Municipality), 4);
        assert_eq!(count(Kind::Province), 23);
        assert_eq!(count(Kind::AutonomousRegion), 5);
        assert_eq!(count(Kind::SpecialAdministrativeRegion), 2);
        let names: usize = DIVISIONS.iter().map(|d| 2 + d.aliases.len()).sum();
        assert_eq!(
            BY_NAME.len(),
            names,
            "a Chinese spelling names two divisions"
        );
        let latin: usize = DIVISIONS.iter().map(|d| d.latin.len()).sum();
        assert_eq!(
            BY_LATIN.len(),
            latin,
            "a Latin spelling names two divisions"
        );
    }

    #[test]
    fn every_spelling_finds_its_division() {
        for division in DIVISIONS {
            assert_eq!(
                lookup(division.short).map(|d| d.short),
                Some(division.short)
            );
            assert_eq!(lookup(division.full).map(|d| d.short), Some(division.short));
            for latin in division.latin {
                assert_eq!(lookup(latin).map(|d| d.short), Some(division.short));
            }
        }
    }

    #[test]
    fn there_are_30_autonomous_prefectures() {
        assert_eq!(PREFECTURES.len(), 30);
        for (full, _) in PREFECTURES {
            assert!(full.ends_with("自治州"));
            assert_eq!(prefecture(full), Some(*full));
        }
        assert_eq!(prefecture("延边自治州"), Some("延边朝鲜族自治州"));
        assert_eq!(prefecture("海南"), None);
    }
}
