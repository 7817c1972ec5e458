//! Customer ids ↔ dense u32 numbers for the bitmaps. Numbers are handed out
//! in order of first sight and never reused, so a deleted customer leaves a
//! hole (dropped from `alive`) and paging cursors stay valid.
//!
//! UUIDs in their canonical lower-case form (what Tagd generates) are kept
//! as 16 bytes; any other id string is kept as text.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use crate::error::IndexError;

#[derive(Debug, Default)]
pub(crate) struct IdMap {
    uuid_numbers: HashMap<[u64; 2], u32>,
    other_numbers: HashMap<Box<str>, u32>,
    /// Dense number → id; `Hole` after a delete.
    ids: Vec<Slot>,
    pub alive: RoaringBitmap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Uuid([u64; 2]),
    Other(Box<str>),
    Hole,
}

impl IdMap {
    pub fn get(&self, id: &str) -> Option<u32> {
        match parse_uuid(id) {
            Some(uuid) => self.uuid_numbers.get(&uuid).copied(),
            None => self.other_numbers.get(id).copied(),
        }
    }

    /// The number of `id`, and whether it is new.
    pub fn get_or_insert(&mut self, id: &str) -> Result<(u32, bool), IndexError> {
        if let Some(number) = self.get(id) {
            return Ok((number, false));
        }
        let number = u32::try_from(self.ids.len())
            .ok()
            .filter(|number| *number < u32::MAX)
            .ok_or(IndexError::Full)?;
        match parse_uuid(id) {
            Some(uuid) => {
                self.uuid_numbers.insert(uuid, number);
                self.ids.push(Slot::Uuid(uuid));
            }
            None => {
                self.other_numbers.insert(id.into(), number);
                self.ids.push(Slot::Other(id.into()));
            }
        }
        self.alive.insert(number);
        Ok((number, true))
    }

    pub fn remove(&mut self, id: &str) -> Option<u32> {
        let number = match parse_uuid(id) {
            Some(uuid) => self.uuid_numbers.remove(&uuid),
            None => self.other_numbers.remove(id),
        }?;
        if let Some(slot) = self.ids.get_mut(number as usize) {
            *slot = Slot::Hole;
        }
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
        match self.ids.get(number as usize) {
            Some(Slot::Uuid(uuid)) => {
                let buffer = format_uuid(*uuid);
                // Only ASCII hex digits and hyphens were written.
                f(std::str::from_utf8(&buffer).unwrap_or_default());
                true
            }
            Some(Slot::Other(id)) => {
                f(id);
                true
            }
            Some(Slot::Hole) | None => false,
        }
    }

    /// Bytes held, approximately (hash tables at their capacity).
    pub fn memory_bytes(&self) -> usize {
        let table = |capacity: usize, entry: usize| capacity * (entry + 1);
        table(self.uuid_numbers.capacity(), 20)
            + table(self.other_numbers.capacity(), 20)
            + self.other_numbers.keys().map(|id| id.len()).sum::<usize>() * 2
            + self.ids.capacity() * size_of::<Slot>()
            + self.alive.serialized_size()
    }
}

fn parse_uuid(id: &str) -> Option<[u64; 2]> {
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
    #[expect(
        clippy::cast_possible_truncation,
        reason = "splitting 128 bits in two halves"
    )]
    Some([(value >> 64) as u64, value as u64])
}

fn format_uuid([high, low]: [u64; 2]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
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
    }
}
