//! Pinyin spellings of names and characters (surname readings corrected,
//! ü written as v as on ID cards and in email addresses).

use pinyin::ToPinyin;

use crate::vocab::SURNAME_READINGS;

/// The toneless pinyin of one character, ü as v; `None` for non-Han.
pub fn char_pinyin(c: char) -> Option<String> {
    c.to_pinyin().map(|p| p.plain().replace('ü', "v"))
}

/// The pinyin of a surname (a compound surname gives one word: "ouyang").
pub fn surname_pinyin(surname: &str) -> String {
    if let Some((_, reading)) = SURNAME_READINGS.iter().find(|(s, _)| *s == surname) {
        return (*reading).to_owned();
    }
    joined(surname)
}

/// The pinyin of several characters run together ("秀英" → "xiuying").
pub fn joined(text: &str) -> String {
    text.chars().filter_map(char_pinyin).collect()
}

/// "xiuying" → "Xiuying".
pub fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
