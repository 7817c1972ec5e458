//! Characters grouped by sound, for same-sounding (同音字) and
//! fuzzy-sounding (模糊音: z/zh, n/l, an/ang …) substitutions.

use crate::romanise::char_pinyin;
use crate::vocab::{FEMALE_CHARS, MALE_CHARS, SOUND_ALIKE_CHARS};

/// Every name character the generator knows, with its pinyin.
#[derive(Debug, Clone)]
pub struct SoundTable {
    chars: Vec<(char, String)>,
}

impl SoundTable {
    pub fn new() -> Self {
        let mut chars: Vec<(char, String)> = Vec::new();
        for c in MALE_CHARS
            .chars()
            .chain(FEMALE_CHARS.chars())
            .chain(SOUND_ALIKE_CHARS.chars())
        {
            if chars.iter().any(|(seen, _)| *seen == c) {
                continue;
            }
            if let Some(pinyin) = char_pinyin(c) {
                chars.push((c, pinyin));
            }
        }
        Self { chars }
    }

    /// Other characters read exactly like `c`.
    pub fn same_sound(&self, c: char) -> Vec<char> {
        let Some(sound) = char_pinyin(c) else {
            return Vec::new();
        };
        self.chars
            .iter()
            .filter(|(other, pinyin)| *other != c && *pinyin == sound)
            .map(|(other, _)| *other)
            .collect()
    }

    /// Characters whose pinyin differs from `c`'s but sounds alike under
    /// the fuzzy-pinyin rules of Chinese input methods (模糊音): what a
    /// typist gets for 敏 "min" typed as "ming" (明).
    pub fn fuzzy_sound(&self, c: char) -> Vec<char> {
        let Some(sound) = char_pinyin(c) else {
            return Vec::new();
        };
        let fuzzy = fuzzy_fold(&sound);
        self.chars
            .iter()
            .filter(|(other, pinyin)| {
                *pinyin != sound && fuzzy_fold(pinyin) == fuzzy && *other != c
            })
            .map(|(other, _)| *other)
            .collect()
    }
}

/// Folds the sounds input methods let users confuse: zh/z, ch/c, sh/s,
/// ng/n, n/l, r/l, h/f.
pub fn fuzzy_fold(pinyin: &str) -> String {
    pinyin
        .replace("zh", "z")
        .replace("ch", "c")
        .replace("sh", "s")
        .replace("ng", "n")
        .replace(['n', 'r'], "l")
        .replace('h', "f")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_folds() {
        assert_eq!(fuzzy_fold("zhen"), fuzzy_fold("zeng"));
        assert_eq!(fuzzy_fold("lin"), fuzzy_fold("ning"));
        assert_ne!(fuzzy_fold("ting"), fuzzy_fold("ming"));
    }

    #[test]
    fn sounds() {
        let table = SoundTable::new();
        assert!(table.same_sound('伟').contains(&'玮'));
        assert!(table.fuzzy_sound('敏').contains(&'明'));
        assert!(!table.fuzzy_sound('敏').contains(&'珉'));
    }
}
