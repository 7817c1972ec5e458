//! Customer ids ↔ dense u32 numbers for the bitmaps. Numbers are handed out
//! in order of first sight and never reused, so a deleted customer leaves a
//! hole (dropped from `alive`) and paging cursors stay valid.
//!
//! UUIDs in their canonical lower-case form (what Tagd generates) are kept
//! as 16 bytes; any other id string is kept as text.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use roaring::RoaringBitmap;

use crate::error::IndexError;

/// The map costs ~22 bytes per customer: the UUID (16) by number, and a
/// hash table of numbers (4 + 1 control byte, at most 8/7 full) that finds a
/// number by hashing the UUID it points at, instead of a table of (UUID,
/// number) pairs beside the list (~60 bytes, more while a table doubles).
#[derive(Debug, Default)]
pub(crate) struct IdMap {
    /// Dense number → UUID (meaningless for holes and for ids in `other_ids`).
    uuids: Vec<u128>,
    /// Numbers of live UUID ids, hashed by their UUID.
    uuid_numbers: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Ids that are not canonical UUIDs (rare: imported or test data).
    other_numbers: HashMap<Box<str>, u32>,
    other_ids: HashMap<u32, Box<str>>,
    /// Live numbers; a number not in it is a hole.
    pub alive: RoaringBitmap,
    /// Set once an id arrived that does not sort after every earlier one
    /// (or is not a UUID): until then number order is id order, which lets
    /// a page of members start at an id without sorting them all.
    unordered: bool,
}

impl IdMap {
    pub fn get(&self, id: &str) -> Option<u32> {
        match parse_uuid(id) {
            Some(uuid) => self.uuid_number(uuid),
            None => self.other_numbers.get(id).copied(),
        }
    }

    fn uuid_number(&self, uuid: u128) -> Option<u32> {
        let uuids = &self.uuids;
        self.uuid_numbers
            .find(self.hasher.hash_one(uuid), |number| {
                uuids.get(*number as usize) == Some(&uuid)
            })
            .copied()
    }

    /// The number of `id`, and whether it is new.
    pub fn get_or_insert(&mut self, id: &str) -> Result<(u32, bool), IndexError> {
        if let Some(number) = self.get(id) {
            return Ok((number, false));
        }
        let number = u32::try_from(self.uuids.len())
            .ok()
            .filter(|number| *number < u32::MAX)
            .ok_or(IndexError::Full)?;
        match parse_uuid(id) {
            Some(uuid) => {
                if self.uuids.last().is_some_and(|last| *last >= uuid) {
                    self.unordered = true;
                }
                self.uuids.push(uuid);
                let (uuids, hasher) = (&self.uuids, &self.hasher);
                self.uuid_numbers
                    .insert_unique(hasher.hash_one(uuid), number, |number| {
                        hasher.hash_one(uuids.get(*number as usize).copied().unwrap_or_default())
                    });
            }
            None => {
                self.unordered = true;
                self.uuids.push(0);
                self.other_numbers.insert(id.into(), number);
                self.other_ids.insert(number, id.into());
            }
        }
        self.alive.insert(number);
        Ok((number, true))
    }

    pub fn remove(&mut self, id: &str) -> Option<u32> {
        let number = match parse_uuid(id) {
            Some(uuid) => {
                let uuids = &self.uuids;
                let entry = self
                    .uuid_numbers
                    .find_entry(self.hasher.hash_one(uuid), |number| {
                        uuids.get(*number as usize) == Some(&uuid)
                    })
                    .ok()?;
                entry.remove().0
            }
            None => {
                let number = self.other_numbers.remove(id)?;
                self.other_ids.remove(&number);
                number
            }
        };
        self.alive.remove(number);
        Some(number)
    }

    pub fn id(&self, number: u32) -> Option<String> {
        let mut id = None;
        self.with_id(number, |text| id = Some(text.to_owned()));
        id
    }

    /// Calls `f` with the id of `number` without allocating; false for a hole.
    pub fn with_id(&self, number: u32, f: impl FnOnce(&str)) -> bool {
        if !self.alive.contains(number) {
            return false;
        }
        if !self.other_ids.is_empty()
            && let Some(id) = self.other_ids.get(&number)
        {
            f(id);
            return true;
        }
        let Some(uuid) = self.uuids.get(number as usize) else {
            return false;
        };
        let buffer = format_uuid(*uuid);
        // Only ASCII hex digits and hyphens were written.
        f(std::str::from_utf8(&buffer).unwrap_or_default());
        true
    }

    /// Whether dense numbers ascend with the ids they stand for.
    pub fn ordered(&self) -> bool {
        !self.unordered
    }

    /// The first number whose id sorts after `id`, when numbers follow id
    /// order and `id` is a canonical UUID (else None: sort instead).
    pub fn number_after(&self, id: &str) -> Option<u32> {
        if self.unordered {
            return None;
        }
        let uuid = parse_uuid(id)?;
        // Holes keep their UUID in `uuids`, so the list stays sorted.
        u32::try_from(self.uuids.partition_point(|known| *known <= uuid)).ok()
    }

    /// Gives back capacity grown while loading.
    pub fn shrink(&mut self) {
        self.uuids.shrink_to_fit();
        let (uuids, hasher) = (&self.uuids, &self.hasher);
        self.uuid_numbers.shrink_to_fit(|number| {
            hasher.hash_one(uuids.get(*number as usize).copied().unwrap_or_default())
        });
        self.other_numbers.shrink_to_fit();
        self.other_ids.shrink_to_fit();
        self.alive.optimize();
    }

    /// Bytes held, approximately (hash tables at their capacity).
    pub fn memory_bytes(&self) -> usize {
        let others: usize = self.other_numbers.keys().map(|id| id.len()).sum();
        self.uuids.capacity() * size_of::<u128>()
            + self.uuid_numbers.capacity() * (size_of::<u32>() + 1)
            + (self.other_numbers.capacity() + self.other_ids.capacity()) * 25
            + others * 2
            + self.alive.serialized_size()
    }
}

fn parse_uuid(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if matches!(index, 8 | 13 | 18 | 23) {
            if byte != b'-' {
                return None;
            }
            continue;
        }
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

fn format_uuid(uuid: u128) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = uuid.to_be_bytes();
    let mut out = [b'-'; 36];
    let mut position = 0;
    for (index, byte) in bytes.into_iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            position += 1;
        }
        out[position] = HEX[usize::from(byte >> 4)];
        out[position + 1] = HEX[usize::from(byte & 0xf)];
        position += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_other_ids_round_trip_and_leave_holes() {
        let mut ids = IdMap::default();
        let uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(ids.get_or_insert(uuid).unwrap(), (0, true));
        assert_eq!(ids.get_or_insert("C-42").unwrap(), (1, true));
        assert_eq!(
            ids.get_or_insert("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B")
                .unwrap(),
            (2, true)
        );
        assert_eq!(ids.get_or_insert(uuid).unwrap(), (0, false));
        assert_eq!(ids.id(0).as_deref(), Some(uuid));
        assert_eq!(ids.id(1).as_deref(), Some("C-42"));
        assert_eq!(ids.remove("C-42"), Some(1));
        assert_eq!(ids.id(1), None);
        assert_eq!(ids.get_or_insert("C-42").unwrap(), (3, true));
        assert_eq!(ids.alive.iter().collect::<Vec<_>>(), vec![0, 2, 3]);
        assert!(!ids.ordered(), "a non-UUID id breaks the order");
    }

    #[test]
    fn ascending_uuids_page_by_number() {
        let mut ids = IdMap::default();
        let id = |i: u32| format!("0190a1b2-c3d4-7e5f-8a9b-{i:012x}");
        for i in [10, 20, 30] {
            ids.get_or_insert(&id(i)).unwrap();
        }
        assert!(ids.ordered());
        ids.remove(&id(20));
        assert_eq!(ids.number_after(&id(5)), Some(0));
        assert_eq!(ids.number_after(&id(10)), Some(1));
        assert_eq!(ids.number_after(&id(25)), Some(2));
        assert_eq!(ids.number_after(&id(30)), Some(3));
        assert_eq!(ids.number_after("not a uuid"), None);
        ids.get_or_insert(&id(15)).unwrap();
        assert!(!ids.ordered());
        assert_eq!(ids.number_after(&id(5)), None);
    }
}
