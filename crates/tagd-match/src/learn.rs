//! Fellegi–Sunter weights learned from labelled pairs: for every field
//! outcome, m = its share among true matches and u = its share among
//! non-matches (Laplace-smoothed), weight = log2(m/u).

use std::collections::BTreeMap;

use crate::compare::Comparison;
use crate::config::Weights;
use crate::profile::Profile;
use crate::score::{Field, outcomes};

/// Pairs of positions into a profile slice, labelled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labelled<'a> {
    /// Pairs known to be the same person.
    pub matches: &'a [(u32, u32)],
    /// Pairs known to be different people, best drawn at random (u is the
    /// chance of agreement between strangers, not between blocked candidates).
    pub non_matches: &'a [(u32, u32)],
}

/// The outcome kinds one weight stands for (Similar of any degree is one kind).
fn kind(comparison: Comparison) -> u8 {
    match comparison {
        Comparison::Missing => 0,
        Comparison::Exact => 1,
        Comparison::SameSound => 2,
        Comparison::FuzzySound => 3,
        Comparison::Similar(_) => 4,
        Comparison::OneDigitOff => 5,
        Comparison::DayMonthSwapped => 6,
        Comparison::SameProvince => 7,
        Comparison::Different => 8,
    }
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    example: Comparison,
    matches: f64,
    non_matches: f64,
}

/// Weights estimated from `labelled` pairs of `profiles`, starting from
/// `base` (outcomes never seen keep their base weight, as do the similarity
/// cut-offs) with `prior` as the log2 prior odds: log2(true pairs / all
/// pairs) of the data the weights will be used on.
pub fn learn_weights(
    profiles: &[Profile],
    labelled: Labelled<'_>,
    base: &Weights,
    prior: f64,
) -> Weights {
    let mut tallies: BTreeMap<(Field, u8), Tally> = BTreeMap::new();
    let mut totals: BTreeMap<Field, (f64, f64)> = BTreeMap::new();
    let sides = [(labelled.matches, true), (labelled.non_matches, false)];
    for (pairs, same) in sides {
        for &(a, b) in pairs {
            let (Some(a), Some(b)) = (profiles.get(a as usize), profiles.get(b as usize)) else {
                continue;
            };
            for (field, comparison) in Field::ALL.into_iter().zip(outcomes(a, b, base).0) {
                if comparison == Comparison::Missing {
                    continue;
                }
                let tally = tallies.entry((field, kind(comparison))).or_insert(Tally {
                    example: comparison,
                    matches: 0.0,
                    non_matches: 0.0,
                });
                let total = totals.entry(field).or_default();
                if same {
                    tally.matches += 1.0;
                    total.0 += 1.0;
                } else {
                    tally.non_matches += 1.0;
                    total.1 += 1.0;
                }
            }
        }
    }
    let mut learned = base.clone();
    learned.prior = prior;
    for ((field, _), tally) in &tallies {
        let (all_matches, all_non_matches) = totals.get(field).copied().unwrap_or_default();
        let kinds = tallies.keys().filter(|(f, _)| f == field).count() as f64;
        let m = (tally.matches + 1.0) / (all_matches + kinds);
        let u = (tally.non_matches + 1.0) / (all_non_matches + kinds);
        if let Some(slot) = learned.slot_mut(*field, tally.example) {
            *slot = Weights::from_m_u(m, u);
        }
    }
    learned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::MatchRecord;

    fn profile(id: u32, name: &str, phone: &str) -> Profile {
        Profile::new(&MatchRecord {
            id,
            name: name.into(),
            phones: vec![phone.into()],
            ..MatchRecord::default()
        })
    }

    #[test]
    fn agreement_common_in_matches_and_rare_in_strangers_weighs_positive() {
        let profiles = vec![
            profile(0, "张伟", "+8613800138000"),
            profile(1, "张伟", "+8613800138000"),
            profile(2, "李娜", "+8613900139000"),
            profile(3, "王芳", "+8613700137000"),
            profile(4, "刘洋", "+8613600136000"),
        ];
        let matches = [(0, 1)];
        let non_matches = [(0, 2), (0, 3), (0, 4), (2, 3), (2, 4), (3, 4)];
        let learned = learn_weights(
            &profiles,
            Labelled {
                matches: &matches,
                non_matches: &non_matches,
            },
            &Weights::default(),
            -10.0,
        );
        assert_eq!(learned.prior, -10.0);
        assert!(learned.phone_exact > 0.0);
        assert!(learned.phone_different < 0.0);
        assert!(learned.name_exact > 0.0);
        // never observed: kept from the base
        assert_eq!(learned.email_exact, Weights::default().email_exact);
    }
}
