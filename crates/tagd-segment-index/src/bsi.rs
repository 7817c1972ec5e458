//! A bit-sliced index over f64 values (numeric tags, dates as day numbers,
//! birthdays, metrics): 64 bitmaps, one per bit of an order-preserving
//! encoding, so a range test costs one pass over the slices instead of a
//! bitmap per distinct value. Slices where every holder has the same bit
//! (empty, or equal to the holders) cost nothing at query time, so integers
//! and dates touch only a couple of dozen slices.

use std::collections::BTreeMap;

use roaring::{MultiOps, RoaringBitmap};
use tagd_condition::CmpOp;

const BITS: usize = 64;
const SIGN: u64 = 1 << 63;
/// Integers up to 2^53 are exact in an f64.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// How values become the 64-bit keys that are sliced. Whole numbers and
/// amounts in cents (most tag values, all dates and counts) become small
/// integers whose high bits are constant, so a query touches ~15–25 slices
/// instead of ~55 for the general float encoding. A value that does not fit
/// moves the index to the next scale (one rebuild of this BSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Scale {
    #[default]
    Units,
    Cents,
    Float,
}

impl Scale {
    /// Bin width as a power of two: 256 days or units, 655.36 in cents,
    /// 1/16 of a binary order of magnitude for floats.
    fn bin_shift(self) -> u32 {
        match self {
            Scale::Units => 8,
            Scale::Cents => 16,
            Scale::Float => 48,
        }
    }

    fn factor(self) -> f64 {
        if self == Scale::Cents { 100.0 } else { 1.0 }
    }

    /// The key of `value`, if this scale holds it exactly.
    fn key(self, value: f64) -> Option<u64> {
        match self {
            Scale::Units | Scale::Cents => {
                let scaled = (value * self.factor()).round();
                (scaled.abs() < EXACT && self.value(scaled) == value).then(|| int_key(scaled))
            }
            Scale::Float => Some(float_key(value)),
        }
    }

    /// The value a whole number of units stands for.
    fn value(self, units: f64) -> f64 {
        units / self.factor()
    }

    fn decode(self, key: u64) -> f64 {
        match self {
            #[expect(
                clippy::cast_possible_wrap,
                clippy::cast_precision_loss,
                reason = "inverse of int_key, |units| < 2^53"
            )]
            Scale::Units | Scale::Cents => self.value(((key ^ SIGN) as i64) as f64),
            Scale::Float => f64::from_bits(if key & SIGN == 0 { !key } else { key ^ SIGN }),
        }
    }

    /// The smallest key whose value is `>= bound`, and whether its value is
    /// exactly `bound`.
    fn threshold(self, bound: f64) -> (u64, bool) {
        if self == Scale::Float {
            return (float_key(bound), true);
        }
        let mut units = (bound * self.factor()).ceil().clamp(-EXACT, EXACT);
        // Division rounds; step to the exact boundary.
        while units > -EXACT && self.value(units - 1.0) >= bound {
            units -= 1.0;
        }
        while units < EXACT && self.value(units) < bound {
            units += 1.0;
        }
        (int_key(units), self.value(units) == bound)
    }
}

/// The keys `op` accepts, inclusive, given the threshold from
/// [`Scale::threshold`] (the smallest key whose value is `>=` the bound;
/// `exact` when its value is the bound). `None` when no key does. Not for
/// `Ne`, which is the complement of `Eq`.
fn key_range(op: CmpOp, threshold: u64, exact: bool) -> Option<(u64, u64)> {
    match (op, exact) {
        (CmpOp::Eq, true) => Some((threshold, threshold)),
        (CmpOp::Eq | CmpOp::Ne, false) | (CmpOp::Ne, true) => None,
        (CmpOp::Ge, _) | (CmpOp::Gt, false) => Some((threshold, u64::MAX)),
        (CmpOp::Gt, true) => Some((threshold.checked_add(1)?, u64::MAX)),
        (CmpOp::Le, true) => Some((0, threshold)),
        (CmpOp::Lt, _) | (CmpOp::Le, false) => Some((0, threshold.checked_sub(1)?)),
    }
}

/// Order-preserving key of a whole number with |units| <= 2^53.
fn int_key(units: f64) -> u64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "whole number within ±2^53"
    )]
    let key = (units as i64) as u64;
    key ^ SIGN
}

/// An order-preserving map from finite f64 to u64 (-0 and 0 are one value).
fn float_key(value: f64) -> u64 {
    let value = if value == 0.0 { 0.0 } else { value };
    let bits = value.to_bits();
    if bits & SIGN == 0 { bits | SIGN } else { !bits }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Bsi {
    /// Who has a value.
    pub exists: RoaringBitmap,
    slices: Vec<RoaringBitmap>,
    scale: Scale,
    /// The key of every holder by dense number (stale for non-holders).
    /// When the other operands of an AND leave few candidates, reading their
    /// keys here beats a pass over the slices, whose cost does not shrink
    /// with the candidates; it costs 8 bytes per customer number.
    column: Vec<u64>,
    /// Holders by `key >> scale.bin_shift()`: a range test unions the bins
    /// wholly inside the range and only checks the two edge bins value by
    /// value, instead of a pass over every slice of every candidate.
    bins: BTreeMap<u64, RoaringBitmap>,
    /// Set when the values spread over more than [`MAX_BINS`] bins, where
    /// bins stop paying for themselves; cleared by a rescale.
    bins_off: bool,
    /// Holders whose key is at most a fence key, for fence keys at quantiles
    /// of the holders' keys (ascending), laid by [`Bsi::shrink`] after a bulk
    /// load and kept exact by every set and clear. A range within some of the
    /// holders is then a few whole-bitmap operations, plus an exact test of
    /// only the candidates whose keys lie between the two fences around each
    /// bound, instead of a pass over every slice.
    fences: Vec<Fence>,
}

#[derive(Debug, Clone)]
struct Fence {
    key: u64,
    at_most: RoaringBitmap,
}

/// Use the column when the candidates are at most this share of the holders.
/// Each candidate read from the column is a cache miss (8 bytes per holder,
/// megabytes at a million), so it only beats the slices for few: at 1M
/// holders and 60,000 candidates (1/16) the column took 6.8 ms, the slices
/// 1.2 ms (`has_tag AND attr AND number >= AND NOT has_tag`, 2026-11-30).
const COLUMN_SHARE: u64 = 128;
/// Test the candidates slice by slice, not through the bins, when they are
/// at most this share of the holders: the bins inside a range hold holders
/// of every kind, and unioning them costs as much as a range over everyone,
/// while a pass over the slices costs the candidates' containers only.
const NARROWED_SHARE: u64 = 4;
/// The most bins kept per index.
const MAX_BINS: usize = 1024;
/// Answer a range through the fences when the candidates are at most this
/// share of the holders. A pass over the slices costs about the same for any
/// candidates spread over every container (at 10M, 140,000 candidates took
/// 15 ms, 1.8M took 13 ms on two threads), while the fences leave only
/// the candidates between two fences, few enough for the column.
const FENCED_SHARE: u64 = 32;
/// Fences laid per index: each costs up to a bit per customer number, and
/// the candidates tested exactly are those within 1/`FENCES` of the holders
/// around each bound.
const FENCES: usize = 16;
/// Below this many holders a pass over the slices is cheap: no fences.
/// Unit tests lay fences on small sets.
#[cfg(not(test))]
const MIN_FENCED_HOLDERS: u64 = 1 << 14;
#[cfg(test)]
const MIN_FENCED_HOLDERS: u64 = 64;
/// Keys sampled to place the fences.
const FENCE_SAMPLE: u64 = 1 << 16;
/// Candidates from which a pass over the slices is split between two
/// threads: at 10M customers a million candidates cost ~1 ms per slice, while
/// starting a thread costs tens of microseconds. Unit tests take the
/// two-thread path on small sets.
#[cfg(not(test))]
const PARALLEL_CANDIDATES: u64 = 1 << 18;
#[cfg(test)]
const PARALLEL_CANDIDATES: u64 = 64;

/// Whether this machine has a second core to share a pass with.
fn two_cores() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)) >= 2
}

/// `bitmap` cut in two at its median.
fn halves(bitmap: RoaringBitmap) -> (RoaringBitmap, RoaringBitmap) {
    let median = u32::try_from(bitmap.len() / 2)
        .ok()
        .and_then(|rank| bitmap.select(rank))
        .unwrap_or(u32::MAX);
    let mut first = bitmap.clone();
    first.remove_range(median..);
    let mut second = bitmap;
    second.remove_range(..median);
    (first, second)
}

impl Bsi {
    pub fn set(&mut self, id: u32, value: f64) {
        let key = loop {
            if let Some(key) = self.scale.key(value) {
                break key;
            }
            let next = match self.scale {
                Scale::Units => Scale::Cents,
                Scale::Cents | Scale::Float => Scale::Float,
            };
            self.rescale(next);
        };
        self.set_key(id, key);
    }

    fn set_key(&mut self, id: u32, key: u64) {
        let old = self.exists.contains(id).then(|| self.key_of(id));
        if old.is_some() {
            self.unbin(id);
        }
        for fence in &mut self.fences {
            let was_in = old.is_some_and(|old| old <= fence.key);
            if key <= fence.key {
                if !was_in {
                    fence.at_most.insert(id);
                }
            } else if was_in {
                fence.at_most.remove(id);
            }
        }
        if self.slices.is_empty() {
            self.slices = vec![RoaringBitmap::new(); BITS];
        }
        for (bit, slice) in self.slices.iter_mut().enumerate() {
            if key >> bit & 1 == 1 {
                slice.insert(id);
            } else {
                slice.remove(id);
            }
        }
        let slot = id as usize;
        if self.column.len() <= slot {
            self.column.resize(slot + 1, 0);
        }
        self.column[slot] = key;
        self.exists.insert(id);
        if !self.bins_off {
            self.bins
                .entry(key >> self.scale.bin_shift())
                .or_default()
                .insert(id);
            if self.bins.len() > MAX_BINS {
                self.bins = BTreeMap::new();
                self.bins_off = true;
            }
        }
    }

    /// Takes a holder out of its bin.
    fn unbin(&mut self, id: u32) {
        let bin = self.key_of(id) >> self.scale.bin_shift();
        if let Some(members) = self.bins.get_mut(&bin) {
            members.remove(id);
            if members.is_empty() {
                self.bins.remove(&bin);
            }
        }
    }

    fn key_of(&self, id: u32) -> u64 {
        self.column.get(id as usize).copied().unwrap_or_default()
    }

    /// Re-encodes every value at another scale.
    fn rescale(&mut self, to: Scale) {
        let values: Vec<(u32, f64)> = self
            .exists
            .iter()
            .map(|id| (id, self.scale.decode(self.key_of(id))))
            .collect();
        self.scale = to;
        self.slices = vec![RoaringBitmap::new(); BITS];
        self.bins = BTreeMap::new();
        self.bins_off = false;
        let fenced = !std::mem::take(&mut self.fences).is_empty();
        for (id, value) in values {
            let key = to.key(value).unwrap_or_else(|| float_key(value));
            self.set_key(id, key);
        }
        if fenced {
            self.lay_fences();
        }
    }

    /// Places [`FENCES`] fences at quantiles of a sample of the holders'
    /// keys and fills them in one pass over the holders.
    fn lay_fences(&mut self) {
        self.fences = Vec::new();
        let holders = self.exists.len();
        if holders < MIN_FENCED_HOLDERS {
            return;
        }
        let step = usize::try_from((holders / FENCE_SAMPLE).max(1)).unwrap_or(1);
        let mut sample: Vec<u64> = self
            .exists
            .iter()
            .step_by(step)
            .map(|id| self.key_of(id))
            .collect();
        sample.sort_unstable();
        let mut keys: Vec<u64> = (1..FENCES)
            .map(|fence| sample[fence * sample.len() / FENCES])
            .collect();
        keys.dedup();
        // The last fence would hold every holder when it is the largest key.
        keys.retain(|key| Some(key) != sample.last());
        if keys.is_empty() {
            return;
        }
        // Each holder into the band of the first fence at or above its key
        // (ids ascend, so each band is appended to), then the bands summed.
        let mut bands = vec![Vec::new(); keys.len()];
        for id in &self.exists {
            let band = keys.partition_point(|fence| *fence < self.key_of(id));
            if let Some(members) = bands.get_mut(band) {
                members.push(id);
            }
        }
        let mut at_most = RoaringBitmap::new();
        for (key, members) in keys.into_iter().zip(bands) {
            let band = RoaringBitmap::from_sorted_iter(members).unwrap_or_default();
            at_most |= band;
            let mut fence = at_most.clone();
            fence.optimize();
            self.fences.push(Fence {
                key,
                at_most: fence,
            });
        }
    }

    pub fn clear(&mut self, id: u32) {
        if self.exists.contains(id) {
            self.unbin(id);
            for fence in &mut self.fences {
                fence.at_most.remove(id);
            }
            self.exists.remove(id);
            for slice in &mut self.slices {
                slice.remove(id);
            }
        }
    }

    /// Holders (within `filter`, when given) whose value compares `op` with `bound`.
    pub fn compare(&self, op: CmpOp, bound: f64, filter: Option<&RoaringBitmap>) -> RoaringBitmap {
        let base = self.base(filter);
        let (threshold, exact) = self.scale.threshold(bound);
        match op {
            CmpOp::Ne => {
                let equal = if exact {
                    self.range(threshold, threshold, &base)
                } else {
                    RoaringBitmap::new()
                };
                base - equal
            }
            _ => match key_range(op, threshold, exact) {
                Some((low, high)) => self.range(low, high, &base),
                None => RoaringBitmap::new(),
            },
        }
    }

    /// Holders within `filter` whose value lies in `low..=high`.
    pub fn between(&self, low: f64, high: f64, filter: Option<&RoaringBitmap>) -> RoaringBitmap {
        let base = self.base(filter);
        let (low_key, _) = self.scale.threshold(low);
        let (high_threshold, exact) = self.scale.threshold(high);
        match key_range(CmpOp::Le, high_threshold, exact) {
            Some((_, high_key)) => self.range(low_key, high_key, &base),
            None => RoaringBitmap::new(),
        }
    }

    fn base(&self, filter: Option<&RoaringBitmap>) -> RoaringBitmap {
        match filter {
            Some(filter) => &self.exists & filter,
            None => self.exists.clone(),
        }
    }

    /// The members of `base` (⊆ holders) whose key is in `low..=high`.
    fn range(&self, low: u64, high: u64, base: &RoaringBitmap) -> RoaringBitmap {
        if low > high || base.is_empty() {
            return RoaringBitmap::new();
        }
        if (low == 0 && high == u64::MAX) || self.few(base) {
            return self.exact_range(low, high, base.clone());
        }
        if !self.fences.is_empty() && base.len() * FENCED_SHARE <= self.exists.len() {
            return self.fenced_range(low, high, base);
        }
        if self.bins_off || base.len() * NARROWED_SHARE <= self.exists.len() {
            return self.exact_range(low, high, base.clone());
        }
        let shift = self.scale.bin_shift();
        let (low_bin, high_bin) = (low >> shift, high >> shift);
        let edge = |bin: u64, low: u64, high: u64| match self.bins.get(&bin) {
            Some(members) => self.exact_range(low, high, members & base),
            None => RoaringBitmap::new(),
        };
        if low_bin == high_bin {
            return edge(low_bin, low, high);
        }
        // Union whichever side has fewer bins: the bins strictly inside, or
        // those outside (edges included) to take away from `base`.
        let inside_bins = self.bins.range(low_bin + 1..high_bin).count();
        let inside = if inside_bins * 2 <= self.bins.len() {
            let mut inside: RoaringBitmap = self
                .bins
                .range(low_bin + 1..high_bin)
                .map(|(_, members)| members)
                .union();
            inside &= base;
            inside
        } else {
            let outside: RoaringBitmap = self
                .bins
                .range(..=low_bin)
                .chain(self.bins.range(high_bin..))
                .map(|(_, members)| members)
                .union();
            base - outside
        };
        inside | edge(low_bin, low, u64::MAX) | edge(high_bin, 0, high)
    }

    /// [`Bsi::range`] by the fences: the candidates at or below the last
    /// fence under `low`, or above the first fence at or over `high`, are out;
    /// those above a fence at or over `low - 1` and at or below a fence under
    /// `high` are in; only the rest are tested key by key.
    fn fenced_range(&self, low: u64, high: u64, base: &RoaringBitmap) -> RoaringBitmap {
        let below_low = self.fences.partition_point(|fence| fence.key < low);
        let mut maybe = match below_low.checked_sub(1) {
            Some(fence) => base - &self.fences[fence].at_most,
            None => base.clone(),
        };
        let at_or_over_high = self.fences.partition_point(|fence| fence.key < high);
        if let Some(fence) = self.fences.get(at_or_over_high) {
            maybe &= &fence.at_most;
        }
        // Keys above fence `inner_low` (key >= low - 1) are at least `low`;
        // keys at or below fence `inner_high` (key < high) are below `high`.
        // A bound at the end of the key space needs no fence.
        let inner_low = self
            .fences
            .partition_point(|fence| fence.key.saturating_add(1) < low);
        let inside = (|| {
            let mut inside = match high {
                u64::MAX => maybe.clone(),
                _ => &maybe & &self.fences[at_or_over_high.checked_sub(1)?].at_most,
            };
            if low != 0 {
                inside -= &self.fences.get(inner_low)?.at_most;
            }
            Some(inside)
        })()
        .unwrap_or_default();
        let edges = maybe - &inside;
        inside | self.exact_range(low, high, edges)
    }

    fn few(&self, candidates: &RoaringBitmap) -> bool {
        candidates.len() * COLUMN_SHARE <= self.exists.len()
    }

    /// The members of `candidates` whose key is in `low..=high`, by the
    /// column for a few candidates, by the slices otherwise.
    fn exact_range(&self, low: u64, high: u64, candidates: RoaringBitmap) -> RoaringBitmap {
        if candidates.is_empty() {
            return candidates;
        }
        if self.few(&candidates) {
            let mut selected = RoaringBitmap::new();
            // `candidates` iterates in ascending order, so `append` takes
            // every value; it also skips the max() scan `push` does on dense
            // containers.
            let _appended = selected.append(
                candidates
                    .iter()
                    .filter(|id| (low..=high).contains(&self.key_of(*id))),
            );
            return selected;
        }
        if candidates.len() < PARALLEL_CANDIDATES || !two_cores() {
            return self.sliced_range(low, high, candidates);
        }
        // Both halves touch disjoint containers of the same slices, so two
        // cores halve the pass; the halves are ordered and disjoint, so
        // joining them only moves containers.
        let (first, second) = halves(candidates);
        let (mut selected, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| self.sliced_range(low, high, second));
            let first = self.sliced_range(low, high, first);
            let second = second
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (first, second)
        });
        selected |= second;
        selected
    }

    /// The members of `candidates` whose key is in `low..=high`, by a pass
    /// over the slices for each bound.
    fn sliced_range(&self, low: u64, high: u64, candidates: RoaringBitmap) -> RoaringBitmap {
        let at_least = if low == 0 {
            candidates
        } else {
            let (above, equal) = self.split(low, candidates);
            above | equal
        };
        if high == u64::MAX {
            return at_least;
        }
        let (above, _) = self.split(high, at_least.clone());
        at_least - above
    }

    /// Splits `base` (⊆ holders) into those whose key is above `key` and
    /// those equal to it (O'Neil & Quass), from the highest bit down.
    ///
    /// The "above" parts found at each bit are disjoint; they are unioned
    /// once at the end, which is much cheaper than growing one bitmap a
    /// slice at a time.
    fn split(&self, key: u64, base: RoaringBitmap) -> (RoaringBitmap, RoaringBitmap) {
        let mut above: Vec<RoaringBitmap> = Vec::new();
        let mut equal = base;
        let holders = self.exists.len();
        for bit in (0..self.slices.len()).rev() {
            let slice = &self.slices[bit];
            let bound_bit = key >> bit & 1 == 1;
            let ones = slice.len();
            if ones == 0 {
                if bound_bit {
                    equal.clear();
                }
            } else if ones == holders {
                if !bound_bit {
                    above.push(std::mem::take(&mut equal));
                }
            } else if bound_bit {
                equal &= slice;
            } else {
                let part = &equal & slice;
                equal -= slice;
                above.push(part);
            }
            if equal.is_empty() {
                break;
            }
        }
        (above.union(), equal)
    }

    /// Gives back capacity grown while loading and stores slices as runs
    /// where that is smaller (a bit every holder shares).
    pub fn shrink(&mut self) {
        self.lay_fences();
        self.column.shrink_to_fit();
        self.exists.optimize();
        for slice in &mut self.slices {
            slice.optimize();
        }
        for members in self.bins.values_mut() {
            members.optimize();
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.column.capacity() * 8
            + self
                .bins
                .values()
                .map(|members| 8 + members.serialized_size())
                .sum::<usize>()
            + self.exists.serialized_size()
            + self
                .fences
                .iter()
                .map(|fence| 8 + fence.at_most.serialized_size())
                .sum::<usize>()
            + self
                .slices
                .iter()
                .map(RoaringBitmap::serialized_size)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_preserves_order() {
        let values = [
            f64::MIN,
            -1e9,
            -2.5,
            -1.0,
            -0.0,
            0.0,
            1e-300,
            0.5,
            1.0,
            2.0,
            5000.0,
            f64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(float_key(pair[0]) <= float_key(pair[1]), "{pair:?}");
        }
        assert_eq!(float_key(-0.0), float_key(0.0));
        for scale in [Scale::Units, Scale::Cents, Scale::Float] {
            for value in [-3.0, 0.0, 7.0, 12_000.0] {
                assert_eq!(scale.decode(scale.key(value).unwrap()), value);
            }
        }
        assert_eq!(
            Scale::Cents.key(0.1).map(|key| Scale::Cents.decode(key)),
            Some(0.1)
        );
        assert_eq!(Scale::Units.key(0.5), None);
        assert_eq!(Scale::Cents.key(0.001), None);
        assert_eq!(Scale::Cents.threshold(0.005), (int_key(1.0), false));
        assert_eq!(Scale::Cents.threshold(-0.01), (int_key(-1.0), true));
        assert_eq!(Scale::Units.threshold(1e300), (int_key(EXACT), false));
    }

    #[test]
    fn range_tests_match_a_scan() {
        let values = [5000.0, -3.0, 0.0, 12000.5, 5000.0, 1e9, -0.0, 0.001];
        let mut bsi = Bsi::default();
        for (id, value) in values.iter().enumerate() {
            bsi.set(u32::try_from(id).unwrap() * 3, *value);
        }
        bsi.set(3, 4.0);
        bsi.set(3, -3.0);
        bsi.clear(21);
        let live: Vec<(u32, f64)> = values
            .iter()
            .enumerate()
            .map(|(id, value)| {
                (
                    u32::try_from(id).unwrap() * 3,
                    if id == 1 { -3.0 } else { *value },
                )
            })
            .filter(|(id, _)| *id != 21)
            .collect();
        let ops = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ];
        for bound in [
            -5.0, -3.0, 0.0, 0.0005, 0.001, 5000.0, 5000.1, 1e10, 1e300, -1e300,
        ] {
            for op in ops {
                let expected: Vec<u32> = live
                    .iter()
                    .filter(|(_, value)| {
                        tagd_condition::NumberTest::Compare(op, bound).matches(*value)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                assert_eq!(
                    bsi.compare(op, bound, None).iter().collect::<Vec<_>>(),
                    expected,
                    "{op:?} {bound}"
                );
            }
        }
        let filter: RoaringBitmap = [0, 9, 12].into_iter().collect();
        assert_eq!(
            bsi.between(0.0, 5000.0, Some(&filter))
                .iter()
                .collect::<Vec<_>>(),
            vec![0, 12]
        );
    }

    #[test]
    fn the_column_and_the_slices_agree() {
        let mut bsi = Bsi::default();
        for id in 0..400u32 {
            bsi.set(id, f64::from(id % 17) * 0.5 - 3.0);
        }
        let few: RoaringBitmap = [3, 50, 77, 120, 399].into_iter().collect();
        let many: RoaringBitmap = (0..300).collect();
        let ops = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ];
        for bound in [-3.5, -3.0, -0.25, 0.0, 2.5, 5.0, 9.0] {
            for op in ops {
                let all = bsi.compare(op, bound, None);
                assert_eq!(
                    bsi.compare(op, bound, Some(&few)),
                    &all & &few,
                    "{op:?} {bound}"
                );
                assert_eq!(
                    bsi.compare(op, bound, Some(&many)),
                    &all & &many,
                    "{op:?} {bound}"
                );
            }
            let between = bsi.between(bound, bound + 2.0, None);
            assert_eq!(bsi.between(bound, bound + 2.0, Some(&few)), &between & &few);
        }
    }

    /// The candidates whose value lies in `low..=high`, by looking at each.
    fn scan(
        values: impl Iterator<Item = (u32, f64)>,
        candidates: &RoaringBitmap,
        low: f64,
        high: f64,
    ) -> RoaringBitmap {
        values
            .filter(|(id, value)| candidates.contains(*id) && (low..=high).contains(value))
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn a_pass_split_over_two_threads_matches_a_scan() {
        // Holders across many containers, values repeating with a period
        // unrelated to the ids, so both halves hold every kind of value.
        let mut bsi = Bsi::default();
        let mut values = Vec::new();
        for step in 0..5_000u32 {
            let id = step * 97;
            let value = f64::from(step * 31 % 1_000);
            bsi.set(id, value);
            values.push((id, value));
        }
        // Most holders (the bins' edges are split) and a fifth (the slices are).
        for every in [
            |id: u32| !id.is_multiple_of(3),
            |id: u32| id.is_multiple_of(5),
        ] {
            let candidates: RoaringBitmap = values
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| every(*id))
                .collect();
            assert!(candidates.len() >= PARALLEL_CANDIDATES && !bsi.few(&candidates));
            for (low, high) in [(0.0, 999.0), (100.0, 100.0), (250.5, 700.0), (-5.0, 3.0)] {
                let expected = scan(values.iter().copied(), &candidates, low, high);
                assert_eq!(
                    bsi.between(low, high, Some(&candidates)),
                    expected,
                    "{low}..={high}"
                );
            }
        }
        let candidates: RoaringBitmap = values.iter().map(|(id, _)| *id).collect();
        let (first, second) = halves(candidates.clone());
        assert_eq!(first.len() + second.len(), candidates.len());
        assert!(first.max() < second.min());
        assert_eq!(first | second, candidates);
    }

    #[test]
    fn fences_answer_ranges_and_follow_every_change() {
        let mut bsi = Bsi::default();
        let mut values: BTreeMap<u32, f64> = BTreeMap::new();
        for step in 0..3_000u32 {
            let id = step * 7;
            // Skewed like spending: many small values, a long tail.
            let value = f64::from(step * 37 % 1_000).powi(2) / 100.0;
            bsi.set(id, value);
            values.insert(id, value);
        }
        bsi.shrink();
        assert!(bsi.fences.len() > 4, "{}", bsi.fences.len());
        // Changes after the fences were laid: moves both ways, clears, new holders.
        for step in 0..300u32 {
            let id = step * 70;
            let value = f64::from(step % 50) * 97.0;
            bsi.set(id, value);
            values.insert(id, value);
        }
        for id in (5..3_000u32).step_by(11).map(|step| step * 7) {
            bsi.clear(id);
            values.remove(&id);
        }
        bsi.set(21_007, 5.0);
        values.insert(21_007, 5.0);
        for fence in &bsi.fences {
            let expected: RoaringBitmap = values
                .iter()
                .filter(|(id, _)| bsi.key_of(**id) <= fence.key)
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(fence.at_most, expected, "fence {}", fence.key);
        }
        let check = |bsi: &Bsi, values: &BTreeMap<u32, f64>| {
            for every in [3u32, 5, 9, 41] {
                let candidates: RoaringBitmap = values
                    .keys()
                    .copied()
                    .filter(|id| (id / 7).is_multiple_of(every))
                    .collect();
                for (low, high) in [
                    (0.0, 9_980.0),
                    (1.0, 50.0),
                    (25.0, 2_500.0),
                    (97.0, 97.0),
                    (2_000.5, 20_000.0),
                    (-10.0, 0.0),
                    (9_000.0, 1e9),
                ] {
                    let expected = scan(
                        values.iter().map(|(id, value)| (*id, *value)),
                        &candidates,
                        low,
                        high,
                    );
                    assert_eq!(
                        bsi.between(low, high, Some(&candidates)),
                        expected,
                        "1/{every}: {low}..={high}"
                    );
                }
            }
        };
        check(&bsi, &values);
        // A value that needs cents re-encodes everything and lays the fences again.
        bsi.set(7, 0.25);
        values.insert(7, 0.25);
        assert!(!bsi.fences.is_empty());
        check(&bsi, &values);
    }
}
