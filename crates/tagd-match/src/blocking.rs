//! Blocking: every record filed under a few keys (phone, email, name's
//! pinyin with birthday or city, …); only records sharing a key are
//! compared, so the work grows with the records, not their square.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::config::{BlockingKey, MatchConfig};
use crate::parallel;
use crate::profile::Profile;

/// Records filed by blocking key. Positions refer to the profile slice the
/// index was built from.
#[derive(Debug, Clone)]
pub struct BlockingIndex {
    /// (key hash, position), sorted: each run of one hash is a block.
    entries: Vec<(u64, u32)>,
    keys: Vec<BlockingKey>,
    max_block_size: usize,
    window: usize,
}

/// The shape of an index's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockStats {
    pub blocks: usize,
    /// Blocks above `max_block_size`, compared only within windows.
    pub oversize_blocks: usize,
    pub largest_block: usize,
}

fn hashed(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The block keys of one record (hashes; a rare collision only adds a
/// candidate pair, which scoring then judges).
pub fn block_keys(profile: &Profile, keys: &[BlockingKey], out: &mut Vec<u64>) {
    let name = &*profile.pinyin_key;
    for key in keys {
        match key {
            BlockingKey::Phone => {
                out.extend(profile.phones.iter().map(|phone| hashed((1u8, phone))));
            }
            BlockingKey::Email => {
                out.extend(profile.emails.iter().map(|email| hashed((2u8, email))));
            }
            BlockingKey::NameBirthday => {
                if let Some(birthday) = profile.birthday
                    && !name.is_empty()
                {
                    out.push(hashed((3u8, name, birthday)));
                }
            }
            BlockingKey::NameCity => {
                if !name.is_empty() && !profile.city_key.is_empty() {
                    out.push(hashed((4u8, name, &profile.city_key)));
                }
            }
            BlockingKey::NameWordBirthday => {
                if let Some(birthday) = profile.birthday {
                    out.extend(
                        name.split(' ')
                            .filter(|word| !word.is_empty())
                            .map(|word| hashed((6u8, word, birthday))),
                    );
                }
            }
            BlockingKey::Pinyin => {
                if !name.is_empty() {
                    out.push(hashed((5u8, name)));
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
}

impl BlockingIndex {
    pub fn build(profiles: &[Profile], config: &MatchConfig) -> Self {
        let keys = config.blocking_keys.clone();
        let positions: Vec<u32> = (0..u32::try_from(profiles.len()).unwrap_or(u32::MAX)).collect();
        let mut entries = parallel::map_chunks(&positions, config.threads, |chunk| {
            let mut out = Vec::with_capacity(chunk.len() * keys.len());
            let mut scratch = Vec::new();
            for &position in chunk {
                scratch.clear();
                block_keys(&profiles[position as usize], &keys, &mut scratch);
                out.extend(scratch.iter().map(|&hash| (hash, position)));
            }
            out
        });
        entries.sort_unstable();
        Self {
            entries,
            keys,
            max_block_size: config.max_block_size,
            window: config.oversize_window,
        }
    }

    /// The blocks as ranges of `entries`.
    fn blocks(&self, entries: &[(u64, u32)]) -> impl Iterator<Item = std::ops::Range<usize>> {
        let mut start = 0;
        std::iter::from_fn(move || {
            if start >= entries.len() {
                return None;
            }
            let hash = entries[start].0;
            let end = start + entries[start..].partition_point(|(h, _)| *h == hash);
            let block = start..end;
            start = end;
            Some(block)
        })
    }

    pub fn stats(&self) -> BlockStats {
        let mut stats = BlockStats::default();
        for block in self.blocks(&self.entries) {
            stats.blocks += 1;
            stats.largest_block = stats.largest_block.max(block.len());
            if block.len() > self.max_block_size {
                stats.oversize_blocks += 1;
            }
        }
        stats
    }

    /// Every pair of positions sharing a block, each once, `a < b`, sorted.
    /// Oversize blocks give each record its `window` next neighbours and the
    /// block's first `window` records (so a block of identical records still
    /// links everyone to one anchor).
    pub fn candidate_pairs(&self, threads: usize) -> Vec<(u32, u32)> {
        let starts = self.split_points(threads.max(1));
        let ranges: Vec<std::ops::Range<usize>> = starts.windows(2).map(|w| w[0]..w[1]).collect();
        let mut pairs = parallel::map_threads(ranges.len(), |part| {
            let mut out = Vec::new();
            let entries = &self.entries[ranges[part].clone()];
            for block in self.blocks(entries) {
                self.block_pairs(&entries[block], &mut out);
            }
            out.sort_unstable();
            out.dedup();
            out
        });
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    fn block_pairs(&self, block: &[(u64, u32)], out: &mut Vec<(u32, u32)>) {
        let pair = |x: u32, y: u32| if x < y { (x, y) } else { (y, x) };
        let n = block.len();
        if n <= self.max_block_size {
            for i in 0..n {
                for j in i + 1..n {
                    out.push(pair(block[i].1, block[j].1));
                }
            }
            return;
        }
        for i in 0..n {
            for j in i + 1..n.min(i + 1 + self.window) {
                out.push(pair(block[i].1, block[j].1));
            }
        }
        for anchor in 0..self.window.min(n) {
            for other in anchor + self.window + 1..n {
                out.push(pair(block[anchor].1, block[other].1));
            }
        }
    }

    /// Entry indices splitting the index into about `parts` pieces at block edges.
    fn split_points(&self, parts: usize) -> Vec<usize> {
        let mut points = vec![0];
        for part in 1..parts {
            let mut at = self.entries.len() * part / parts;
            if at == 0 || at <= *points.last().unwrap_or(&0) {
                continue;
            }
            let hash = self.entries[at - 1].0;
            at += self.entries[at..].partition_point(|(h, _)| *h == hash);
            if at < self.entries.len() && at > *points.last().unwrap_or(&0) {
                points.push(at);
            }
        }
        points.push(self.entries.len());
        points
    }

    /// Positions of records sharing a block with `query` (a record not in the
    /// index, e.g. for FindDuplicates or an incremental run). From an oversize
    /// block only its first `max_block_size` records are returned.
    pub fn candidates(&self, query: &Profile) -> Vec<u32> {
        let mut hashes = Vec::new();
        block_keys(query, &self.keys, &mut hashes);
        let mut found = Vec::new();
        for hash in hashes {
            let start = self.entries.partition_point(|(h, _)| *h < hash);
            let block = self.entries[start..]
                .iter()
                .take_while(|(h, _)| *h == hash)
                .take(self.max_block_size);
            found.extend(block.map(|(_, position)| *position));
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}
