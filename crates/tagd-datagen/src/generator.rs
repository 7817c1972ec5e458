//! The record stream: people (alone or in households) drawn one group at a
//! time, each written out once or several times, shuffled in a bounded window.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::GeneratorConfig;
use crate::error::DatagenError;
use crate::person::{
    Home, Person, Sex, Ymd, random_company, random_email, random_given, random_mobile,
    random_surname,
};
use crate::record::CustomerRecord;
use crate::render::render;
use crate::sound::SoundTable;
use crate::vocab::PROVINCES;

/// How many recent names namesakes are drawn from.
const RECENT_NAMES: usize = 64;

/// An endless, deterministic stream of [`CustomerRecord`]s: the same seed and
/// config give the same records, and the first `n` records of a run do not
/// depend on how many are taken (`take(10_000)` is a prefix of `take(1_000_000)`).
#[derive(Debug, Clone)]
pub struct Generator {
    rng: StdRng,
    config: GeneratorConfig,
    sounds: SoundTable,
    next_entity: u64,
    next_household: u64,
    recent_names: VecDeque<(&'static str, String, Sex, usize, usize)>,
    window: Vec<CustomerRecord>,
}

impl Generator {
    /// A generator for `seed`; fails when a config value is out of range.
    pub fn new(seed: u64, config: GeneratorConfig) -> Result<Self, DatagenError> {
        config.validate()?;
        Ok(Self {
            rng: StdRng::seed_from_u64(seed),
            window: Vec::with_capacity(config.shuffle_window + 16),
            config,
            sounds: SoundTable::new(),
            next_entity: 0,
            next_household: 0,
            recent_names: VecDeque::with_capacity(RECENT_NAMES),
        })
    }

    /// Draws the next group (one person, or a household) and writes its records.
    fn fill(&mut self) {
        let people = if self.rng.random_bool(self.config.household_rate) {
            self.household()
        } else {
            let home = Home::random(&mut self.rng);
            vec![self.person(None, home, None, None)]
        };
        for person in &people {
            let copies = 1 + self.duplicate_count();
            for copy in 0..copies {
                let record = render(
                    &mut self.rng,
                    &self.sounds,
                    &self.config.corruption,
                    person,
                    copy > 0,
                );
                self.window.push(record);
            }
        }
    }

    /// 0 for most people; else 1, 2, … with each further copy 30% as likely.
    fn duplicate_count(&mut self) -> u32 {
        if !self.rng.random_bool(self.config.duplicate_rate) {
            return 0;
        }
        let mut count = 1;
        while count < self.config.max_duplicates && self.rng.random_bool(0.3) {
            count += 1;
        }
        count
    }

    /// Two to four people at one address: a couple (different surnames,
    /// as Chinese wives keep theirs), maybe children with the father's
    /// surname; some members list the head's phone as theirs.
    fn household(&mut self) -> Vec<Person> {
        let household = self.next_household;
        self.next_household += 1;
        let home = Home::random(&mut self.rng);
        let head_birth = Ymd::random(&mut self.rng, 1955..=1985);
        let head = self.person(Some(household), home.clone(), Some(head_birth), None);
        let spouse_sex = match head.sex {
            Sex::Male => Sex::Female,
            Sex::Female => Sex::Male,
        };
        let spouse_year = head_birth.year + self.rng.random_range(-4..=4);
        let spouse_birth = Ymd::random(&mut self.rng, spouse_year..=spouse_year);
        let mut spouse = self.person(
            Some(household),
            home.clone(),
            Some(spouse_birth),
            Some(spouse_sex),
        );
        let father_surname = if head.sex == Sex::Male {
            head.surname
        } else {
            spouse.surname
        };
        let mut members = Vec::with_capacity(4);
        let children = self.rng.random_range(0..=2);
        for _ in 0..children {
            let year = (head_birth.year + self.rng.random_range(22..=35)).min(2012);
            let birth = Ymd::random(&mut self.rng, year..=year);
            let mut child = self.person(Some(household), home.clone(), Some(birth), None);
            child.surname = father_surname;
            self.share_phone(&head, &mut child);
            members.push(child);
        }
        self.share_phone(&head, &mut spouse);
        members.insert(0, spouse);
        members.insert(0, head);
        // Two members must never end up with one name and birthday by chance.
        for index in 1..members.len() {
            while members[..index]
                .iter()
                .any(|m| m.given == members[index].given || m.birthday == members[index].birthday)
            {
                let sex = members[index].sex;
                members[index].given = random_given(&mut self.rng, sex);
                if let Some(birthday) = members[index].birthday.as_mut() {
                    birthday.day = 1 + birthday.day % 28;
                }
            }
        }
        members
    }

    /// 40% of members list the head's phone: as their only one or beside their own.
    fn share_phone(&mut self, head: &Person, member: &mut Person) {
        if let Some(shared) = head.phones.first()
            && self.rng.random_bool(0.4)
        {
            if self.rng.random_bool(0.5) {
                member.phones = vec![shared.clone()];
            } else {
                member.phones.push(shared.clone());
            }
        }
    }

    fn person(
        &mut self,
        household_id: Option<u64>,
        mut home: Home,
        birthday: Option<Ymd>,
        sex: Option<Sex>,
    ) -> Person {
        let rng = &mut self.rng;
        let entity_id = self.next_entity;
        self.next_entity += 1;
        let mut sex = sex.unwrap_or(if rng.random_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        });
        let mut surname = random_surname(rng);
        let mut given = random_given(rng, sex);
        if household_id.is_none()
            && self.recent_names.len() == RECENT_NAMES
            && rng.random_bool(self.config.namesake_rate)
        {
            let pick = rng.random_range(0..self.recent_names.len());
            if let Some((s, g, x, province, city)) = self.recent_names.get(pick).cloned() {
                (surname, given, sex) = (s, g, x);
                if rng.random_bool(0.5) {
                    home = Home::in_city(rng, province, city);
                }
            }
        }
        if self.recent_names.len() == RECENT_NAMES {
            self.recent_names.pop_front();
        }
        self.recent_names
            .push_back((surname, given.clone(), sex, home.province, home.city));
        let birthday =
            birthday.or_else(|| rng.random_bool(0.85).then(|| Ymd::random(rng, 1950..=2005)));
        let mut phones = vec![random_mobile(rng)];
        if rng.random_bool(0.15) {
            phones.push(random_mobile(rng));
        }
        let email = rng
            .random_bool(0.65)
            .then(|| random_email(rng, surname, &given, birthday));
        let company = rng.random_bool(0.3).then(|| random_company(rng, &home));
        debug_assert!(home.province < PROVINCES.len());
        Person {
            entity_id,
            household_id,
            surname,
            given,
            sex,
            birthday,
            phones,
            email,
            home,
            company,
        }
    }
}

impl Iterator for Generator {
    type Item = CustomerRecord;

    fn next(&mut self) -> Option<CustomerRecord> {
        while self.window.len() < self.config.shuffle_window {
            self.fill();
        }
        let pick = self.rng.random_range(0..self.window.len());
        Some(self.window.swap_remove(pick))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::config::CorruptionMix;
    use crate::record::Corruption;

    fn records(seed: u64, n: usize) -> Vec<CustomerRecord> {
        Generator::new(seed, GeneratorConfig::default())
            .unwrap()
            .take(n)
            .collect()
    }

    #[test]
    fn same_seed_same_records_and_prefix_stable() {
        let a = records(7, 3_000);
        let b = records(7, 6_000);
        assert_eq!(a[..], b[..3_000]);
        assert_ne!(a, records(8, 3_000));
    }

    #[test]
    fn duplicates_and_every_corruption_occur() {
        let all = records(1, 20_000);
        let mut per_entity: HashMap<u64, usize> = HashMap::new();
        for r in &all {
            *per_entity.entry(r.entity_id).or_default() += 1;
        }
        let duplicated = per_entity.values().filter(|&&n| n > 1).count() as f64;
        let share = duplicated / per_entity.len() as f64;
        assert!((0.2..0.4).contains(&share), "duplicated share {share}");
        let mut seen: BTreeMap<Corruption, usize> = BTreeMap::new();
        for c in all.iter().flat_map(|r| r.corruptions.iter()) {
            *seen.entry(*c).or_default() += 1;
        }
        assert_eq!(seen.len(), 11, "{seen:?}");
    }

    #[test]
    fn first_records_are_clean_and_names_never_empty() {
        for r in records(3, 5_000) {
            assert!(!r.name.trim().is_empty());
            assert!(!r.phones.is_empty() || !r.emails.is_empty(), "{r:?}");
        }
    }

    #[test]
    fn household_members_differ_in_given_name_and_birthday() {
        let all = records(5, 20_000);
        let mut households: HashMap<u64, Vec<&CustomerRecord>> = HashMap::new();
        for r in &all {
            if let Some(h) = r.household_id {
                households.entry(h).or_default().push(r);
            }
        }
        assert!(households.len() > 100);
        let clean = |r: &&&CustomerRecord| r.corruptions.is_empty();
        for members in households.values() {
            for a in members.iter().filter(clean) {
                for b in members.iter().filter(clean) {
                    if a.entity_id != b.entity_id {
                        assert_ne!(a.name, b.name);
                        assert!(a.birthday != b.birthday || a.birthday.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn pinyin_names_are_latin() {
        let config = GeneratorConfig {
            corruption: CorruptionMix {
                name_pinyin: 1.0,
                name_typo: 0.0,
                name_homophone: 0.0,
                ..CorruptionMix::default()
            },
            duplicate_rate: 1.0,
            ..GeneratorConfig::default()
        };
        let all: Vec<_> = Generator::new(9, config).unwrap().take(500).collect();
        let pinyin: Vec<_> = all
            .iter()
            .filter(|r| r.corruptions.contains(&Corruption::NamePinyin))
            .collect();
        assert!(pinyin.len() > 100);
        assert!(pinyin.iter().all(|r| r.name.is_ascii()));
        assert!(pinyin.iter().any(|r| !r.name.contains(' ')));
    }

    #[test]
    fn bad_config_is_refused_naming_the_field() {
        let config = GeneratorConfig {
            duplicate_rate: 1.5,
            ..GeneratorConfig::default()
        };
        let err = Generator::new(1, config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "duplicate_rate: 1.5 is not a probability in 0..=1"
        );
        let config = GeneratorConfig {
            corruption: CorruptionMix {
                email_case: f64::NAN,
                ..CorruptionMix::default()
            },
            ..GeneratorConfig::default()
        };
        assert!(Generator::new(1, config).is_err());
    }
}
