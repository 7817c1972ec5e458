//! Generator settings: how many duplicates, households and namesakes, and
//! how often each corruption hits a duplicate record.

use crate::error::DatagenError;

/// What the generator produces; [`GeneratorConfig::default`] is the mix the
/// matcher's quality target is measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Share of people who arrive more than once (one or more duplicate records).
    pub duplicate_rate: f64,
    /// Most duplicate records of one person (besides the first record).
    pub max_duplicates: u32,
    /// Share of groups that are households: 2 to 4 people at one address,
    /// sometimes sharing a phone (hard negatives).
    pub household_rate: f64,
    /// Share of people who take the name of a recently generated, unrelated
    /// person (often in the same city): the "same common name" hard negative.
    pub namesake_rate: f64,
    /// Records are shuffled inside a window of this many, so duplicates are
    /// not adjacent in the output (memory stays bounded by the window).
    pub shuffle_window: usize,
    /// How often each corruption hits a duplicate record.
    pub corruption: CorruptionMix,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            duplicate_rate: 0.3,
            max_duplicates: 4,
            household_rate: 0.1,
            namesake_rate: 0.05,
            shuffle_window: 4096,
            corruption: CorruptionMix::default(),
        }
    }
}

/// Probabilities, each applied independently to every duplicate record
/// (first records only get the channel's own formatting of phones,
/// birthdays and addresses). See the crate docs for what each one does.
#[derive(Debug, Clone, PartialEq)]
pub struct CorruptionMix {
    pub phone_format: f64,
    pub phone_digit_typo: f64,
    pub phone_changed: f64,
    pub email_case: f64,
    pub name_typo: f64,
    pub name_homophone: f64,
    pub name_pinyin: f64,
    pub missing_fields: f64,
    pub address_variant: f64,
    pub birthday_format: f64,
    pub birthday_transposed: f64,
}

impl Default for CorruptionMix {
    fn default() -> Self {
        Self {
            phone_format: 0.6,
            phone_digit_typo: 0.02,
            phone_changed: 0.05,
            email_case: 0.4,
            name_typo: 0.04,
            name_homophone: 0.05,
            name_pinyin: 0.08,
            missing_fields: 0.3,
            address_variant: 0.5,
            birthday_format: 0.5,
            birthday_transposed: 0.02,
        }
    }
}

impl GeneratorConfig {
    /// Checks every probability is in `0..=1` and the counts are positive.
    pub fn validate(&self) -> Result<(), DatagenError> {
        let c = &self.corruption;
        let probabilities = [
            ("duplicate_rate", self.duplicate_rate),
            ("household_rate", self.household_rate),
            ("namesake_rate", self.namesake_rate),
            ("corruption.phone_format", c.phone_format),
            ("corruption.phone_digit_typo", c.phone_digit_typo),
            ("corruption.phone_changed", c.phone_changed),
            ("corruption.email_case", c.email_case),
            ("corruption.name_typo", c.name_typo),
            ("corruption.name_homophone", c.name_homophone),
            ("corruption.name_pinyin", c.name_pinyin),
            ("corruption.missing_fields", c.missing_fields),
            ("corruption.address_variant", c.address_variant),
            ("corruption.birthday_format", c.birthday_format),
            ("corruption.birthday_transposed", c.birthday_transposed),
        ];
        for (field, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(DatagenError::NotAProbability { field, value });
            }
        }
        if self.max_duplicates == 0 {
            return Err(DatagenError::Zero {
                field: "max_duplicates",
            });
        }
        if self.shuffle_window == 0 {
            return Err(DatagenError::Zero {
                field: "shuffle_window",
            });
        }
        Ok(())
    }
}
