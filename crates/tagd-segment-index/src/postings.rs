//! Bitmaps per distinct text value (enum/text/bool tags, address fields,
//! channel, gender, attributes), keyed by the case-folded
//! [`tagd_core::text::key`] the conditions compare by.

use std::collections::HashMap;

use roaring::{MultiOps, RoaringBitmap};
use tagd_condition::TextTest;
use tagd_core::text;

/// How the postings find a customer's current value when it changes.
#[derive(Debug, Clone)]
pub(crate) enum Owners {
    /// Look through every value's bitmap: for short value lists (enum tags,
    /// bools, gender), where a per-customer record would cost more memory.
    Scan,
    /// A value number per dense customer number: for fields nearly every
    /// customer has.
    Dense(Vec<u32>),
    /// A map from customer to value number: for sparse, open-ended values
    /// (text tags, attributes).
    Sparse(HashMap<u32, u32>),
}

const NO_VALUE: u32 = u32::MAX;
/// Holders a sparse owner map reaches before it may turn into a column.
const DENSE_AFTER: usize = 4_096;
/// Raw values whose key is remembered, so a million customers in 北京 fold
/// "北京" once; bounded so open-ended text does not grow it without end.
const RAW_CACHE_LIMIT: usize = 4096;

#[derive(Debug, Clone)]
pub(crate) struct Postings {
    numbers: HashMap<Box<str>, u32>,
    /// Value number → (key, customers holding it).
    values: Vec<(Box<str>, RoaringBitmap)>,
    /// Customers holding any value.
    pub any: RoaringBitmap,
    owners: Owners,
    raw_keys: HashMap<Box<str>, u32>,
}

impl Postings {
    pub fn new(owners: Owners) -> Self {
        Self {
            numbers: HashMap::new(),
            values: Vec::new(),
            any: RoaringBitmap::new(),
            owners,
            raw_keys: HashMap::new(),
        }
    }

    fn number_for(&mut self, raw: &str) -> u32 {
        if let Some(number) = self.raw_keys.get(raw) {
            return *number;
        }
        let key = text::key(raw);
        let number = match self.numbers.get(key.as_str()) {
            Some(number) => *number,
            None => {
                let number = u32::try_from(self.values.len()).unwrap_or(NO_VALUE - 1);
                self.numbers.insert(key.as_str().into(), number);
                self.values.push((key.into(), RoaringBitmap::new()));
                number
            }
        };
        if self.raw_keys.len() < RAW_CACHE_LIMIT {
            self.raw_keys.insert(raw.into(), number);
        }
        number
    }

    /// Gives `customer` the value `raw` (replacing any other).
    pub fn set(&mut self, customer: u32, raw: &str) {
        let number = self.number_for(raw);
        let previous = self.take_owner(customer);
        if let Some(previous) = previous
            && previous != number
            && let Some((_, members)) = self.values.get_mut(previous as usize)
        {
            members.remove(customer);
        }
        if let Some((_, members)) = self.values.get_mut(number as usize) {
            members.insert(customer);
        }
        self.any.insert(customer);
        match &mut self.owners {
            Owners::Scan => {}
            Owners::Dense(column) => {
                let slot = customer as usize;
                if column.len() <= slot {
                    column.resize(slot + 1, NO_VALUE);
                }
                column[slot] = number;
            }
            Owners::Sparse(map) => {
                map.insert(customer, number);
                // A map entry costs ~10-20 bytes, a column slot 4: once a third of the numbers
                // up to this one hold a value (an attribute every customer has), the column is
                // smaller.
                if map.len() >= DENSE_AFTER && map.len() * 3 > customer as usize {
                    let mut column = vec![NO_VALUE; customer as usize + 1];
                    for (&owner, &value) in map.iter() {
                        if let Some(slot) = column.get_mut(owner as usize) {
                            *slot = value;
                        }
                    }
                    self.owners = Owners::Dense(column);
                }
            }
        }
    }

    /// Takes the customer's value away, if any.
    pub fn clear(&mut self, customer: u32) {
        if let Some(previous) = self.take_owner(customer)
            && let Some((_, members)) = self.values.get_mut(previous as usize)
        {
            members.remove(customer);
        }
        self.any.remove(customer);
    }

    /// The customer's current value number, forgotten by the owner record.
    fn take_owner(&mut self, customer: u32) -> Option<u32> {
        if !self.any.contains(customer) {
            return None;
        }
        match &mut self.owners {
            Owners::Scan => self
                .values
                .iter()
                .position(|(_, members)| members.contains(customer))
                .and_then(|position| u32::try_from(position).ok()),
            Owners::Dense(column) => column
                .get_mut(customer as usize)
                .map(|slot| std::mem::replace(slot, NO_VALUE))
                .filter(|number| *number != NO_VALUE),
            Owners::Sparse(map) => map.remove(&customer),
        }
    }

    /// Customers whose value has the key `key`.
    pub fn get(&self, key: &str) -> Option<&RoaringBitmap> {
        let number = self.numbers.get(key)?;
        self.values
            .get(*number as usize)
            .map(|(_, members)| members)
    }

    /// Customers whose value passes `test` (keys compared as in the
    /// reference evaluator).
    pub fn matching(&self, test: &TextTest) -> RoaringBitmap {
        match test {
            TextTest::Eq(key) => self.get(key).cloned().unwrap_or_default(),
            TextTest::Ne(key) => match self.get(key) {
                Some(members) => &self.any - members,
                None => self.any.clone(),
            },
            TextTest::In(keys) => keys.iter().filter_map(|key| self.get(key)).union(),
            TextTest::Contains(part) => self
                .values
                .iter()
                .filter(|(key, _)| key.contains(part.as_str()))
                .map(|(_, members)| members)
                .union(),
        }
    }

    /// Gives back capacity grown while loading and stores bitmaps as runs
    /// where that is smaller (a value most customers share).
    pub fn shrink(&mut self) {
        for (_, members) in &mut self.values {
            members.optimize();
        }
        self.any.optimize();
        self.values.shrink_to_fit();
        self.numbers.shrink_to_fit();
        match &mut self.owners {
            Owners::Scan => {}
            Owners::Dense(column) => column.shrink_to_fit(),
            Owners::Sparse(map) => map.shrink_to_fit(),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        let keys: usize = self.values.iter().map(|(key, _)| key.len() * 2 + 48).sum();
        let bitmaps: usize = self
            .values
            .iter()
            .map(|(_, members)| members.serialized_size())
            .sum();
        let raw: usize = self.raw_keys.keys().map(|raw| raw.len() + 40).sum();
        let owners = match &self.owners {
            Owners::Scan => 0,
            Owners::Dense(column) => column.capacity() * 4,
            Owners::Sparse(map) => map.capacity() * 9,
        };
        keys + bitmaps + raw + owners + self.any.serialized_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_move_between_bitmaps_in_every_owner_mode() {
        for owners in [
            Owners::Scan,
            Owners::Dense(Vec::new()),
            Owners::Sparse(HashMap::new()),
        ] {
            let mut postings = Postings::new(owners);
            postings.set(1, "北京");
            postings.set(2, "ＶＩＰ");
            postings.set(1, "vip");
            postings.set(3, "上海");
            postings.clear(3);
            let ids = |key: &str| postings.get(key).map(|b| b.iter().collect::<Vec<_>>());
            assert_eq!(ids("vip"), Some(vec![1, 2]));
            assert_eq!(ids("北京"), Some(vec![]));
            assert_eq!(postings.any.iter().collect::<Vec<_>>(), vec![1, 2]);
            let ne = postings.matching(&TextTest::Ne("北京".into()));
            assert_eq!(ne.iter().collect::<Vec<_>>(), vec![1, 2]);
            let contains = postings.matching(&TextTest::Contains("v".into()));
            assert_eq!(contains.len(), 2);
        }
    }

    #[test]
    fn a_sparse_owner_map_most_customers_fill_becomes_a_column() {
        let mut postings = Postings::new(Owners::Sparse(HashMap::new()));
        for customer in 0..10_000u32 {
            postings.set(
                customer,
                if customer % 2 == 0 {
                    "金卡"
                } else {
                    "银卡"
                },
            );
        }
        assert!(matches!(postings.owners, Owners::Dense(_)));
        postings.set(4, "银卡");
        postings.clear(5);
        postings.set(20_000, "金卡");
        assert_eq!(postings.get("金卡").map(RoaringBitmap::len), Some(5_000));
        assert_eq!(postings.get("银卡").map(RoaringBitmap::len), Some(5_000));
        assert!(!postings.any.contains(5));
    }
}
