//! What the matcher is told: evidence weights, thresholds, blocking keys and
//! the caps that keep huge blocks affordable; validated before use.

use crate::compare::Comparison;
use crate::error::MatchError;
use crate::score::Field;

/// A way of putting records into blocks; only records sharing a block are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockingKey {
    /// One block per phone number (digits, +86 dropped).
    Phone,
    /// One block per email address (lower-cased).
    Email,
    /// The name's pinyin key with the birthday: catches pinyin spellings,
    /// swapped order and same-sounding characters born the same day.
    NameBirthday,
    /// The name's pinyin key with the city (without 市).
    NameCity,
    /// Each word of the pinyin key (surname; given name) with the birthday:
    /// catches a one-character slip in either part.
    NameWordBirthday,
    /// The name's pinyin key alone: the widest net, capped like every block.
    Pinyin,
}

impl BlockingKey {
    pub const ALL: [BlockingKey; 6] = [
        BlockingKey::Phone,
        BlockingKey::Email,
        BlockingKey::NameBirthday,
        BlockingKey::NameCity,
        BlockingKey::NameWordBirthday,
        BlockingKey::Pinyin,
    ];
}

/// Evidence weights, as log2 Bayes factors: log2(m/u), where m is how often
/// an outcome occurs between records of the same person and u between
/// records of different people (Fellegi–Sunter). A missing field weighs 0.
/// The match probability is `1 / (1 + 2^-(prior + Σ weights))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// log2 prior odds that two records are the same person. The default,
    /// −16 (about 1 in 65,000), suits 10,000 to 1,000,000 records; at −14 the
    /// rare namesakes sharing name, birthday and city crossed auto-merge at
    /// 1,000,000 records (60 false pairs), at −16 two remain.
    pub prior: f64,
    pub name_exact: f64,
    /// Same pinyin: a same-sounding character, pinyin spelling, swapped order.
    pub name_same_sound: f64,
    /// Same fuzzy pinyin (z/zh, n/l, an/ang …): an input-method slip.
    pub name_fuzzy_sound: f64,
    /// Jaro-Winkler of the pinyin keys ≥ [`Weights::name_similar_at`].
    pub name_similar: f64,
    pub name_similar_at: f64,
    pub name_different: f64,
    pub phone_exact: f64,
    /// One digit replaced, or two adjacent digits swapped.
    pub phone_one_digit: f64,
    pub phone_different: f64,
    pub email_exact: f64,
    pub email_different: f64,
    pub birthday_exact: f64,
    pub birthday_day_month_swapped: f64,
    pub birthday_one_digit: f64,
    pub birthday_different: f64,
    pub gender_agree: f64,
    pub gender_disagree: f64,
    pub city_exact: f64,
    /// No city on one side, the same province on both.
    pub city_same_province: f64,
    pub city_different: f64,
    /// The same street address (also when one spells out the region first).
    pub address_exact: f64,
    /// Normalised Levenshtein of the street addresses ≥ [`Weights::address_similar_at`].
    pub address_similar: f64,
    pub address_similar_at: f64,
    pub address_different: f64,
}

impl Default for Weights {
    /// Set by hand from m/u reasoning (m from how duplicates are corrupted,
    /// u from chance agreement between strangers: a shared mobile ~1e-5,
    /// a birthday ~5e-5, a popular name ~1e-3), then checked on generated data
    /// at 10,000 to 1,000,000 records; [`crate::learn_weights`] estimates them
    /// from labelled pairs instead.
    fn default() -> Self {
        Self {
            prior: -16.0,
            name_exact: 9.5,
            name_same_sound: 9.0,
            name_fuzzy_sound: 6.5,
            name_similar: 1.5,
            name_similar_at: 0.9,
            name_different: -5.5,
            phone_exact: 16.0,
            phone_one_digit: 10.0,
            phone_different: -5.0,
            email_exact: 16.0,
            email_different: -4.0,
            birthday_exact: 13.0,
            birthday_day_month_swapped: 7.0,
            birthday_one_digit: 2.0,
            birthday_different: -7.0,
            gender_agree: 1.0,
            gender_disagree: -4.5,
            city_exact: 5.0,
            city_same_province: 3.0,
            city_different: -5.0,
            address_exact: 8.0,
            address_similar: 3.0,
            address_similar_at: 0.8,
            address_different: -5.0,
        }
    }
}

impl Weights {
    /// The weight of an outcome from its m and u probabilities.
    pub fn from_m_u(m: f64, u: f64) -> f64 {
        (m / u).log2()
    }

    /// The weight of one field's outcome (0 when missing).
    pub fn of(&self, field: Field, comparison: Comparison) -> f64 {
        use Comparison as C;
        match (field, comparison) {
            (_, C::Missing) => 0.0,
            (Field::Name, C::Exact) => self.name_exact,
            (Field::Name, C::SameSound) => self.name_same_sound,
            (Field::Name, C::FuzzySound) => self.name_fuzzy_sound,
            (Field::Name, C::Similar(_)) => self.name_similar,
            (Field::Name, _) => self.name_different,
            (Field::Phone, C::Exact) => self.phone_exact,
            (Field::Phone, C::OneDigitOff) => self.phone_one_digit,
            (Field::Phone, _) => self.phone_different,
            (Field::Email, C::Exact) => self.email_exact,
            (Field::Email, _) => self.email_different,
            (Field::Birthday, C::Exact) => self.birthday_exact,
            (Field::Birthday, C::DayMonthSwapped) => self.birthday_day_month_swapped,
            (Field::Birthday, C::OneDigitOff) => self.birthday_one_digit,
            (Field::Birthday, _) => self.birthday_different,
            (Field::Gender, C::Exact) => self.gender_agree,
            (Field::Gender, _) => self.gender_disagree,
            (Field::City, C::Exact) => self.city_exact,
            (Field::City, C::SameProvince) => self.city_same_province,
            (Field::City, _) => self.city_different,
            (Field::Address, C::Exact) => self.address_exact,
            (Field::Address, C::Similar(_)) => self.address_similar,
            (Field::Address, _) => self.address_different,
        }
    }

    /// Where [`Weights::of`] reads an outcome's weight (None for missing).
    pub(crate) fn slot_mut(&mut self, field: Field, comparison: Comparison) -> Option<&mut f64> {
        use Comparison as C;
        Some(match (field, comparison) {
            (_, C::Missing) => return None,
            (Field::Name, C::Exact) => &mut self.name_exact,
            (Field::Name, C::SameSound) => &mut self.name_same_sound,
            (Field::Name, C::FuzzySound) => &mut self.name_fuzzy_sound,
            (Field::Name, C::Similar(_)) => &mut self.name_similar,
            (Field::Name, _) => &mut self.name_different,
            (Field::Phone, C::Exact) => &mut self.phone_exact,
            (Field::Phone, C::OneDigitOff) => &mut self.phone_one_digit,
            (Field::Phone, _) => &mut self.phone_different,
            (Field::Email, C::Exact) => &mut self.email_exact,
            (Field::Email, _) => &mut self.email_different,
            (Field::Birthday, C::Exact) => &mut self.birthday_exact,
            (Field::Birthday, C::DayMonthSwapped) => &mut self.birthday_day_month_swapped,
            (Field::Birthday, C::OneDigitOff) => &mut self.birthday_one_digit,
            (Field::Birthday, _) => &mut self.birthday_different,
            (Field::Gender, C::Exact) => &mut self.gender_agree,
            (Field::Gender, _) => &mut self.gender_disagree,
            (Field::City, C::Exact) => &mut self.city_exact,
            (Field::City, C::SameProvince) => &mut self.city_same_province,
            (Field::City, _) => &mut self.city_different,
            (Field::Address, C::Exact) => &mut self.address_exact,
            (Field::Address, C::Similar(_)) => &mut self.address_similar,
            (Field::Address, _) => &mut self.address_different,
        })
    }

    fn all(&self) -> [(&'static str, f64); 25] {
        [
            ("prior", self.prior),
            ("name_exact", self.name_exact),
            ("name_same_sound", self.name_same_sound),
            ("name_fuzzy_sound", self.name_fuzzy_sound),
            ("name_similar", self.name_similar),
            ("name_similar_at", self.name_similar_at),
            ("name_different", self.name_different),
            ("phone_exact", self.phone_exact),
            ("phone_one_digit", self.phone_one_digit),
            ("phone_different", self.phone_different),
            ("email_exact", self.email_exact),
            ("email_different", self.email_different),
            ("birthday_exact", self.birthday_exact),
            (
                "birthday_day_month_swapped",
                self.birthday_day_month_swapped,
            ),
            ("birthday_one_digit", self.birthday_one_digit),
            ("birthday_different", self.birthday_different),
            ("gender_agree", self.gender_agree),
            ("gender_disagree", self.gender_disagree),
            ("city_exact", self.city_exact),
            ("city_same_province", self.city_same_province),
            ("city_different", self.city_different),
            ("address_exact", self.address_exact),
            ("address_similar", self.address_similar),
            ("address_similar_at", self.address_similar_at),
            ("address_different", self.address_different),
        ]
    }
}

/// Everything the matcher is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchConfig {
    pub weights: Weights,
    /// Pairs scoring at least this are merged (if clustering allows).
    pub auto_merge_threshold: f64,
    /// Pairs scoring at least this (and below auto-merge) go to review.
    pub review_threshold: f64,
    pub blocking_keys: Vec<BlockingKey>,
    /// A block with more records than this is not compared all-pairs: each
    /// record meets only its `oversize_window` neighbours in the block and
    /// the block's first `oversize_window` records, so a block of n costs
    /// at most 2·n·window comparisons instead of n²/2.
    pub max_block_size: usize,
    pub oversize_window: usize,
    /// Worker threads for profiling, blocking and scoring.
    pub threads: usize,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            auto_merge_threshold: 0.95,
            review_threshold: 0.5,
            blocking_keys: vec![
                BlockingKey::Phone,
                BlockingKey::Email,
                BlockingKey::NameBirthday,
                BlockingKey::NameCity,
                BlockingKey::NameWordBirthday,
            ],
            max_block_size: 100,
            oversize_window: 10,
            threads: 2,
        }
    }
}

impl MatchConfig {
    /// Checks thresholds are in `0..=1` with review ≤ auto-merge, weights are
    /// finite, and the counts are usable.
    pub fn validate(&self) -> Result<(), MatchError> {
        for (field, value) in [
            ("auto_merge_threshold", self.auto_merge_threshold),
            ("review_threshold", self.review_threshold),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(MatchError::ThresholdOutOfRange { field, value });
            }
        }
        if self.review_threshold > self.auto_merge_threshold {
            return Err(MatchError::ReviewAboveMerge {
                review: self.review_threshold,
                merge: self.auto_merge_threshold,
            });
        }
        for (field, value) in self.weights.all() {
            if !value.is_finite() {
                return Err(MatchError::WeightNotFinite { field, value });
            }
        }
        for (field, value, minimum) in [
            ("max_block_size", self.max_block_size, 2),
            ("oversize_window", self.oversize_window, 1),
            ("threads", self.threads, 1),
        ] {
            if value < minimum {
                return Err(MatchError::TooSmall {
                    field,
                    value,
                    minimum,
                });
            }
        }
        if self.blocking_keys.is_empty() {
            return Err(MatchError::NoBlockingKeys);
        }
        Ok(())
    }

    /// Where a pair held back by a guard lands: midway between review and
    /// auto-merge, so a human sees it but it is never merged automatically.
    pub(crate) fn guard_cap(&self) -> f64 {
        f64::midpoint(self.review_threshold, self.auto_merge_threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        MatchConfig::default().validate().unwrap();
    }

    #[test]
    fn thresholds_out_of_range_name_the_field() {
        let config = MatchConfig {
            auto_merge_threshold: 1.2,
            ..MatchConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "auto_merge_threshold: 1.2 is outside 0..=1"
        );
        let config = MatchConfig {
            review_threshold: f64::NAN,
            ..MatchConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(MatchError::ThresholdOutOfRange {
                field: "review_threshold",
                ..
            })
        ));
        let config = MatchConfig {
            review_threshold: 0.99,
            ..MatchConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(MatchError::ReviewAboveMerge { .. })
        ));
    }

    #[test]
    fn bad_weights_and_counts_are_refused() {
        let mut config = MatchConfig::default();
        config.weights.email_exact = f64::INFINITY;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "weights.email_exact: inf is not a finite number"
        );
        let config = MatchConfig {
            max_block_size: 1,
            ..MatchConfig::default()
        };
        assert!(config.validate().is_err());
        let config = MatchConfig {
            blocking_keys: vec![],
            ..MatchConfig::default()
        };
        assert_eq!(config.validate(), Err(MatchError::NoBlockingKeys));
    }

    #[test]
    fn reading_and_writing_a_weight_use_the_same_slot() {
        let outcomes = [
            Comparison::Exact,
            Comparison::SameSound,
            Comparison::FuzzySound,
            Comparison::Similar(0.95),
            Comparison::OneDigitOff,
            Comparison::DayMonthSwapped,
            Comparison::SameProvince,
            Comparison::Different,
        ];
        for field in Field::ALL {
            for comparison in outcomes {
                let mut weights = Weights::default();
                *weights.slot_mut(field, comparison).unwrap() = 123.0;
                assert_eq!(
                    weights.of(field, comparison),
                    123.0,
                    "{field:?} {comparison:?}"
                );
            }
            let mut weights = Weights::default();
            assert!(weights.slot_mut(field, Comparison::Missing).is_none());
            assert_eq!(weights.of(field, Comparison::Missing), 0.0);
        }
    }

    #[test]
    fn m_u_weights() {
        assert!((Weights::from_m_u(0.9, 0.0009) - 9.965_784).abs() < 1e-5);
    }
}
