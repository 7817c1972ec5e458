//! Pair scoring: every field compared, each outcome weighed as a log2
//! Bayes factor, summed with the prior into a match probability, then held
//! below auto-merge by the guards that keep households and namesakes apart.

use std::fmt;

use crate::compare::{self, Comparison};
use crate::config::{MatchConfig, Weights};
use crate::profile::Profile;
use crate::record::RecordId;

/// A compared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Name,
    Phone,
    Email,
    Birthday,
    Gender,
    City,
    Address,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Name,
        Field::Phone,
        Field::Email,
        Field::Birthday,
        Field::Gender,
        Field::City,
        Field::Address,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Phone => "phone",
            Field::Email => "email",
            Field::Birthday => "birthday",
            Field::Gender => "gender",
            Field::City => "city",
            Field::Address => "address",
        }
    }
}

/// A rule that held a pair below the auto-merge threshold whatever its
/// weights said (the pair lands midway between review and auto-merge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// Names neither equal, same-sounding nor fuzzy-sounding (or missing):
    /// household members share address and phone but not a name.
    NamesDisagree,
    /// Both have a birthday and they are plainly different: namesakes,
    /// parents and children.
    BirthdaysDisagree,
    /// No phone, email or birthday agrees: never merge on name and address alone.
    NoIdentifierAgrees,
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Guard::NamesDisagree => "held for review: the names disagree",
            Guard::BirthdaysDisagree => "held for review: the birthdays disagree",
            Guard::NoIdentifierAgrees => "held for review: no phone, email or birthday agrees",
        })
    }
}

/// One field's part in a pair's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldScore {
    pub field: Field,
    pub comparison: Comparison,
    /// The outcome's log2 Bayes factor (0 when missing).
    pub weight: f64,
    /// How far this field moved the (unguarded) match probability: the
    /// probability with it minus the probability without it.
    pub contribution: f64,
}

impl fmt::Display for FieldScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({:+.1} log2 odds, {:+.3})",
            self.field.as_str(),
            self.comparison,
            self.weight,
            self.contribution
        )
    }
}

/// Two records' score with its explanation; `a < b`.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    pub a: RecordId,
    pub b: RecordId,
    /// The match probability in 0..=1, after guards.
    pub total: f64,
    /// log2 odds before the guards: the prior plus every field's weight.
    pub log2_odds: f64,
    pub guard: Option<Guard>,
    pub fields: Vec<FieldScore>,
}

impl fmt::Display for PairScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ~ {}: {:.4} ({:+.1} log2 odds)",
            self.a, self.b, self.total, self.log2_odds
        )?;
        if let Some(guard) = self.guard {
            write!(f, ", {guard}")?;
        }
        for field in &self.fields {
            write!(f, "\n  {field}")?;
        }
        Ok(())
    }
}

/// The outcomes of every field for one pair, in [`Field::ALL`] order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcomes(pub(crate) [Comparison; 7]);

pub(crate) fn outcomes(a: &Profile, b: &Profile, weights: &Weights) -> Outcomes {
    let city = compare::cities(&a.province_key, &a.city_key, &b.province_key, &b.city_key);
    Outcomes([
        compare::name(a.name_keys(), b.name_keys(), weights.name_similar_at),
        compare::phones(&a.phones, &b.phones),
        compare::emails(&a.emails, &b.emails),
        compare::birthdays(a.birthday, b.birthday),
        compare::genders(a.gender, b.gender),
        city,
        compare::addresses(
            &a.detail_key,
            &b.detail_key,
            city,
            weights.address_similar_at,
        ),
    ])
}

fn guard(outcomes: &Outcomes) -> Option<Guard> {
    use Comparison as C;
    let [name, phone, email, birthday, ..] = outcomes.0;
    if !matches!(name, C::Exact | C::SameSound | C::FuzzySound) {
        return Some(Guard::NamesDisagree);
    }
    if birthday == C::Different {
        return Some(Guard::BirthdaysDisagree);
    }
    let identifier = matches!(phone, C::Exact | C::OneDigitOff)
        || email == C::Exact
        || matches!(birthday, C::Exact | C::DayMonthSwapped);
    if !identifier {
        return Some(Guard::NoIdentifierAgrees);
    }
    None
}

/// log2 odds → probability, saturating cleanly at both ends.
fn probability(log2_odds: f64) -> f64 {
    1.0 / (1.0 + (-log2_odds).exp2())
}

/// The pair's probability after guards, or `None` when it cannot reach
/// `floor`. Fields are compared cheapest first, and before each costly
/// string metric an upper bound (the largest weight the remaining fields
/// could add) is checked: a pair that cannot reach `floor` is dropped
/// without computing it. The bound is exact, so nothing is lost.
pub(crate) fn evaluate_above(
    a: &Profile,
    b: &Profile,
    config: &MatchConfig,
    floor: f64,
) -> Option<f64> {
    let w = &config.weights;
    let best = |weights: &[f64]| weights.iter().copied().fold(0.0_f64, f64::max);
    let best_address = best(&[w.address_exact, w.address_similar, w.address_different]);
    let city = compare::cities(&a.province_key, &a.city_key, &b.province_key, &b.city_key);
    let phone = compare::phones(&a.phones, &b.phones);
    let email = compare::emails(&a.emails, &b.emails);
    let birthday = compare::birthdays(a.birthday, b.birthday);
    let gender = compare::genders(a.gender, b.gender);
    let mut log2_odds = w.prior
        + w.of(Field::Phone, phone)
        + w.of(Field::Email, email)
        + w.of(Field::Birthday, birthday)
        + w.of(Field::Gender, gender)
        + w.of(Field::City, city);
    let reachable = |log2_odds: f64| probability(log2_odds) >= floor;
    let name = match compare::name_by_keys(a.name_keys(), b.name_keys()) {
        Some(name) => name,
        None => {
            if !reachable(log2_odds + best(&[w.name_similar, w.name_different]) + best_address) {
                return None;
            }
            compare::name_by_similarity(a.name_keys(), b.name_keys(), w.name_similar_at)
        }
    };
    log2_odds += w.of(Field::Name, name);
    if !reachable(log2_odds + best_address) {
        return None;
    }
    let address = compare::addresses(&a.detail_key, &b.detail_key, city, w.address_similar_at);
    log2_odds += w.of(Field::Address, address);
    let outcomes = Outcomes([name, phone, email, birthday, gender, city, address]);
    let mut total = probability(log2_odds);
    if guard(&outcomes).is_some() {
        total = total.min(config.guard_cap());
    }
    (total >= floor).then_some(total)
}

/// Scores a pair with its per-field explanation.
pub fn score(a: &Profile, b: &Profile, config: &MatchConfig) -> PairScore {
    let (a, b) = if a.id <= b.id { (a, b) } else { (b, a) };
    let w = &config.weights;
    let outcomes = outcomes(a, b, w);
    let weights: Vec<f64> = Field::ALL
        .iter()
        .zip(outcomes.0)
        .map(|(field, comparison)| w.of(*field, comparison))
        .collect();
    let log2_odds = w.prior + weights.iter().sum::<f64>();
    let unguarded = probability(log2_odds);
    let guard = guard(&outcomes);
    let total = if guard.is_some() {
        unguarded.min(config.guard_cap())
    } else {
        unguarded
    };
    let fields = Field::ALL
        .iter()
        .zip(outcomes.0)
        .zip(weights)
        .map(|((field, comparison), weight)| FieldScore {
            field: *field,
            comparison,
            weight,
            contribution: unguarded - probability(log2_odds - weight),
        })
        .collect();
    PairScore {
        a: a.id,
        b: b.id,
        total,
        log2_odds,
        guard,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::prepare::prepare;
    use crate::record::RawCustomer;

    /// Records drawn from small pools, so that fields often agree.
    fn record(id: u32) -> impl Strategy<Value = Profile> {
        (
            prop::sample::select(vec![
                "张伟",
                "张玮",
                "Zhang Wei",
                "张明",
                "张敏",
                "李娜",
                "",
            ]),
            prop::sample::select(vec![
                "1985-03-07",
                "1985-07-03",
                "1985-03-08",
                "1990-01-01",
                "",
            ]),
            prop::sample::select(vec!["13800138000", "13800138001", "13900139000", ""]),
            prop::sample::select(vec!["a@qq.com", "b@qq.com", ""]),
            prop::sample::select(vec!["男", "女", ""]),
            prop::sample::select(vec!["深圳市", "深圳", "广州市", ""]),
            prop::sample::select(vec![
                "科技园路12号3栋501室",
                "科技园路12号3栋502室",
                "人民路8号",
                "",
            ]),
        )
            .prop_map(
                move |(name, birthday, phone, email, gender, city, detail)| {
                    Profile::new(&prepare(&RawCustomer {
                        id,
                        name: name.into(),
                        gender: gender.into(),
                        birthday: birthday.into(),
                        phones: vec![phone.into()],
                        emails: vec![email.into()],
                        province: "广东省".into(),
                        city: city.into(),
                        detail: detail.into(),
                        ..RawCustomer::default()
                    }))
                },
            )
    }

    proptest! {
        #[test]
        fn pruned_fast_path_agrees_with_the_explained_score(
            a in record(1),
            b in record(2),
            floor in 0.0..=1.0f64,
        ) {
            let config = MatchConfig::default();
            let full = score(&a, &b, &config);
            match evaluate_above(&a, &b, &config, floor) {
                Some(total) => prop_assert!((total - full.total).abs() < 1e-12),
                None => prop_assert!(full.total < floor, "{} ≥ {floor}", full.total),
            }
        }
    }
}
