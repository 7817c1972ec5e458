//! Name keys: the exact key (case and spacing folded) and the pinyin key
//! that makes 张伟, "Zhang Wei", "Wei Zhang" and 张玮 (same sound) equal.

use std::collections::HashSet;
use std::sync::LazyLock;

use pinyin::ToPinyin;

/// The pinyin key with the sounds input methods let users confuse folded
/// together (模糊音: zh/z, ch/c, sh/s, ng/n, n/l, r/l, h/f), words re-sorted:
/// 张敏 "min zhang" and 张明 "ming zhang" share it; 李婷 and 李明 do not.
pub fn fuzzy_key(pinyin_key: &str) -> String {
    let mut words: Vec<String> = pinyin_key
        .split(' ')
        .filter(|word| !word.is_empty())
        .map(fuzzy_word)
        .collect();
    words.sort_unstable();
    words.join(" ")
}

fn fuzzy_word(word: &str) -> String {
    let bytes = word.as_bytes();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let after = bytes.get(i + 2).copied();
        match (c, next) {
            // zh, ch, sh → z, c, s
            (b'z' | b'c' | b's', Some(b'h')) => {
                out.push(char::from(c));
                i += 2;
            }
            // "ng" before a vowel is n + a syllable starting with g (婵桂
            // chan·gui); otherwise the -ng final, folded into -n (昌桂 chang·gui).
            (b'n', Some(b'g')) if !after.is_some_and(|a| b"aeiouv".contains(&a)) => {
                out.push('l');
                i += 2;
            }
            (b'n' | b'r', _) => {
                out.push('l');
                i += 1;
            }
            (b'h', _) => {
                out.push('f');
                i += 1;
            }
            _ => {
                let ch = word[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// Two-character surnames, read as one word ("ouyang").
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "尉迟", "公孙", "令狐", "夏侯", "长孙",
    "宇文", "司徒", "端木", "南宫",
];

/// Common single-character surnames, for splitting "zhangwei" into
/// surname and given name.
const COMMON_SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤单翟常康伍易乔文施牛洪葛邢安齐庞颜倪温芦俞";

/// The pinyin of every known surname, longest first.
static SURNAME_PINYIN: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut readings: HashSet<String> = COMMON_SURNAMES
        .chars()
        .map(|c| han_words(&c.to_string()).concat())
        .collect();
    readings.extend(COMPOUND_SURNAMES.iter().map(|s| han_words(s).concat()));
    let mut readings: Vec<String> = readings.into_iter().filter(|r| !r.is_empty()).collect();
    readings.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    readings
});

/// Surnames read differently from the character's most common reading.
const SURNAME_READINGS: &[(char, &str)] = &[
    ('曾', "zeng"),
    ('单', "shan"),
    ('解', "xie"),
    ('仇', "qiu"),
    ('区', "ou"),
    ('查', "zha"),
    ('朴', "piao"),
    ('乐', "yue"),
    ('覃', "qin"),
    ('翟', "zhai"),
    ('盖', "ge"),
];

pub fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}')
}

/// The exact-match key: lower-case; Han names lose all spaces and the
/// middle dots of transcribed names, Latin names keep single spaces.
pub fn exact_key(name: &str) -> String {
    let lower = name.to_lowercase();
    if lower.chars().any(is_han) {
        lower
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '.' | '-'))
            .collect()
    } else {
        lower
            .split(|c: char| c.is_whitespace() || matches!(c, '-' | '.' | ',' | '_'))
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The pinyin key of a name as stored or typed (NFKC, spaces collapsed
/// first, as every [`crate::Profile`] does): what the store keeps beside
/// each customer so a draft written in pinyin, or in swapped order, finds the
/// customer written in Han characters by one indexed lookup.
pub fn name_pinyin(raw: &str) -> String {
    pinyin_key(&crate::prepare::normalize(raw))
}

/// The pinyin key: the surname's and the given name's pinyin as two words
/// (given-name syllables run together, ü as v), sorted, so the written order
/// does not matter. Latin names give their words the same way.
/// Empty when the name has nothing readable.
pub fn pinyin_key(name: &str) -> String {
    let mut words: Vec<String> = if name.chars().any(is_han) {
        han_words(&name.to_lowercase())
    } else {
        latin_words(&split_camel_case(name).to_lowercase())
    };
    words.retain(|word| !word.is_empty());
    words.sort_unstable();
    words.join(" ")
}

fn han_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name
        .chars()
        .filter(|c| is_han(*c) || c.is_alphanumeric())
        .collect();
    let compound = COMPOUND_SURNAMES.iter().any(|surname| {
        let mut s = surname.chars();
        s.next() == chars.first().copied() && s.next() == chars.get(1).copied()
    });
    let split = if compound && chars.len() > 2 { 2 } else { 1 };
    let (surname, given) = chars.split_at(split.min(chars.len()));
    let surname_word: String = match surname {
        [single] => SURNAME_READINGS
            .iter()
            .find(|(c, _)| c == single)
            .map_or_else(|| read(surname), |(_, reading)| (*reading).to_owned()),
        _ => read(surname),
    };
    vec![surname_word, read(given)]
}

fn read(chars: &[char]) -> String {
    let mut out = String::new();
    for &c in chars {
        match c.to_pinyin() {
            Some(pinyin) => out.push_str(pinyin.plain()),
            None => out.push(c),
        }
    }
    out.replace('ü', "v")
}

/// "ZhangXiuying" → "Zhang Xiuying" (a lower-case letter followed by an
/// upper-case one starts a word; "ZHANG" stays whole).
fn split_camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    let mut previous_lower = false;
    for c in name.chars() {
        if previous_lower && c.is_uppercase() {
            out.push(' ');
        }
        previous_lower = c.is_lowercase();
        out.push(c);
    }
    out
}

/// Words of a Latin name. One word is split after a known surname
/// ("zhangwei" → zhang, wei); with three or more, the first is taken as the
/// surname and the rest run together ("Xiu Ying Zhang" is not recognised).
fn latin_words(name: &str) -> Vec<String> {
    let words: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| word.replace('ü', "v"))
        .collect();
    match words.as_slice() {
        [single] => split_after_surname(single),
        [first, rest @ ..] if rest.len() > 1 => vec![first.clone(), rest.concat()],
        _ => words,
    }
}

fn split_after_surname(word: &str) -> Vec<String> {
    for surname in SURNAME_PINYIN.iter() {
        if let Some(given) = word.strip_prefix(surname.as_str())
            && given.len() >= 2
        {
            return vec![surname.clone(), given.to_owned()];
        }
    }
    vec![word.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinyin_key_ignores_script_order_case_and_homophones() {
        let key = pinyin_key("张伟");
        assert_eq!(key, "wei zhang");
        for variant in [
            "Zhang Wei",
            "Wei Zhang",
            "ZHANG Wei",
            "zhang  wei",
            "张玮",
            "张 伟",
        ] {
            assert_eq!(pinyin_key(variant), key, "{variant}");
        }
        assert_eq!(pinyin_key("张秀英"), pinyin_key("Xiuying Zhang"));
        assert_ne!(pinyin_key("张伟"), pinyin_key("张伟明"));
        assert_eq!(pinyin_key("ZhangWei"), key);
        assert_eq!(pinyin_key("zhangwei"), key);
        assert_eq!(pinyin_key("huangxiuying"), pinyin_key("黄秀英"));
        assert_eq!(pinyin_key("Ouyangyun"), pinyin_key("欧阳芸"));
    }

    #[test]
    fn name_pinyin_reads_full_width_and_spaced_names_alike() {
        assert_eq!(name_pinyin("  Ｚｈａｎｇ　Ｗｅｉ "), "wei zhang");
        assert_eq!(name_pinyin("张 伟"), name_pinyin("Wei Zhang"));
        assert_eq!(name_pinyin("   "), "");
    }

    #[test]
    fn fuzzy_key_folds_ime_confusions_only() {
        let fuzzy = |name: &str| fuzzy_key(&pinyin_key(name));
        assert_eq!(fuzzy("张敏"), fuzzy("张明"));
        assert_eq!(fuzzy("李超"), fuzzy("Cao Li"));
        assert_eq!(fuzzy("刘兰"), fuzzy("牛郎"));
        assert_ne!(fuzzy("李婷"), fuzzy("李明"));
        assert_ne!(fuzzy("王伟"), fuzzy("黄伟"));
        assert_eq!(fuzzy("陈昌桂"), fuzzy("陈婵桂"));
        assert_eq!(fuzzy("陈昌桂"), fuzzy("Chen Changgui"));
    }

    #[test]
    fn surnames_read_as_surnames() {
        assert_eq!(pinyin_key("曾志明"), pinyin_key("Zeng Zhiming"));
        assert_eq!(pinyin_key("欧阳芸"), pinyin_key("Ouyang Yun"));
        assert_eq!(pinyin_key("吕丽"), pinyin_key("Lv Li"));
    }

    #[test]
    fn exact_key_folds_case_and_spacing() {
        assert_eq!(exact_key("张 伟"), "张伟");
        assert_eq!(exact_key("  ZHANG   Wei "), "zhang wei");
        assert_eq!(exact_key("阿卜杜·热合曼"), "阿卜杜热合曼");
        assert_eq!(exact_key("   "), "");
        assert_eq!(pinyin_key(" \t "), "");
    }
}
