//! How much memory the index holds, by part (serialized bitmap sizes plus
//! estimates of the maps: close to, not exactly, the heap in use).

use crate::index::{SegmentIndex, TagValues};

/// Bytes held by each part of the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// Customer id ↔ number maps and the `alive` bitmap.
    pub ids: usize,
    pub tags: usize,
    /// Address fields, channel and gender.
    pub fields: usize,
    pub attributes: usize,
    /// Birthdays and metrics.
    pub numbers: usize,
    pub purchases: usize,
}

impl MemoryReport {
    pub fn total(&self) -> usize {
        self.ids + self.tags + self.fields + self.attributes + self.numbers + self.purchases
    }
}

impl SegmentIndex {
    /// What the index holds, in bytes.
    pub fn memory(&self) -> MemoryReport {
        MemoryReport {
            ids: self.ids.memory_bytes(),
            tags: self
                .tags
                .iter()
                .map(|(id, postings)| {
                    id.len()
                        + match &postings.values {
                            TagValues::Flag(members) => members.serialized_size(),
                            TagValues::Text(text) => text.memory_bytes(),
                            TagValues::Number(bsi) => bsi.memory_bytes(),
                        }
                })
                .sum(),
            fields: self.fields.iter().map(|p| p.memory_bytes()).sum::<usize>()
                + self.gender.memory_bytes(),
            attributes: self
                .attributes
                .iter()
                .map(|(key, postings)| key.len() + postings.memory_bytes())
                .sum(),
            numbers: self.birthday.memory_bytes()
                + self
                    .metrics
                    .values()
                    .map(|bsi| bsi.memory_bytes())
                    .sum::<usize>(),
            purchases: self
                .bought
                .iter()
                .map(|(key, members)| key.len() + members.serialized_size())
                .sum(),
        }
    }

    /// Total bytes held (see [`SegmentIndex::memory`]).
    pub fn memory_bytes(&self) -> usize {
        self.memory().total()
    }
}
