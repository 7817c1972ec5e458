//! Gender from the words people and systems use for it (男/女, M/F, 1/2, 先生/女士 …).

use tagd_core::customers::Gender;

use crate::cleaned::Cleaned;
use crate::text::normalized;

/// A gender from its many spellings. Unchanged when the input is already the canonical
/// spelling (`Gender::as_str`) or empty (unspecified); unknown words are unfixable.
/// Numbers follow GB/T 2261.1 (and WeChat): 1 male, 2 female, 0 and 9 not stated.
pub fn gender(raw: &str) -> Cleaned<Gender> {
    if raw.is_empty() {
        return Cleaned::Unchanged(Gender::Unspecified);
    }
    if let Ok(gender) = raw.parse::<Gender>() {
        return Cleaned::Unchanged(gender);
    }
    let text = normalized(raw);
    let key = text.trim_end_matches('.').to_lowercase();
    let gender = match key.as_str() {
        "男" | "男性" | "男士" | "男生" | "先生" | "男的" | "m" | "male" | "man" | "boy" | "1"
        | "mr" | "mister" | "sir" => Gender::Male,
        "女" | "女性" | "女士" | "女生" | "小姐" | "太太" | "夫人" | "女的" | "f" | "female"
        | "woman" | "girl" | "2" | "ms" | "mrs" | "miss" | "madam" | "mme" => Gender::Female,
        "其他" | "其它" | "other" | "o" | "x" | "non-binary" | "nonbinary" => Gender::Other,
        "" | "未知" | "保密" | "不详" | "未说明" | "未填" | "无" | "-" | "0" | "9" | "u"
        | "unknown" | "unspecified" | "n/a" | "na" | "none" | "null" | "secret"
        | "prefer not to say" => Gender::Unspecified,
        _ => {
            return Cleaned::Unfixable(format!("{text:?} is not a gender we recognise"));
        }
    };
    Cleaned::Changed(gender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_map_to_genders() {
        let male = [
            "男", "男性", "先生", "男士", "M", "m", "Male", "MALE", " male ", "1", "１", "Mr",
            "Mr.", "ｍ",
        ];
        for raw in male {
            assert_eq!(gender(raw), Cleaned::Changed(Gender::Male), "{raw:?}");
        }
        let female = [
            "女", "女性", "女士", "小姐", "F", "f", "Female", "2", "Ms", "Mrs", "Mrs.", "Miss",
        ];
        for raw in female {
            assert_eq!(gender(raw), Cleaned::Changed(Gender::Female), "{raw:?}");
        }
        for raw in ["其他", "Other ", "X"] {
            assert_eq!(gender(raw), Cleaned::Changed(Gender::Other), "{raw:?}");
        }
        for raw in ["未知", "保密", "0", "unknown", " ", "N/A"] {
            assert_eq!(
                gender(raw),
                Cleaned::Changed(Gender::Unspecified),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn canonical_spellings_are_unchanged() {
        assert_eq!(gender("male"), Cleaned::Unchanged(Gender::Male));
        assert_eq!(gender("female"), Cleaned::Unchanged(Gender::Female));
        assert_eq!(gender(""), Cleaned::Unchanged(Gender::Unspecified));
    }

    #[test]
    fn unknown_words_are_unfixable() {
        assert_eq!(
            gender("abc").reason(),
            Some("\"abc\" is not a gender we recognise")
        );
        assert!(gender("3").is_unfixable());
    }
}
