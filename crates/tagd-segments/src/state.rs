//! What the server holds in memory: the segment index plus what keeping it
//! in step needs (each tag's value type, when each assignment expires, the
//! attribute keys seen). Loading a customer replaces everything the index
//! held about it, so loading the same customer twice is harmless: that is
//! what lets the follower re-read a window of recent changes without
//! bookkeeping of its own.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDateTime;
use tagd_condition::Metric;
use tagd_core::customers::Customer;
use tagd_core::metrics::{Activity, compute};
use tagd_core::tags::ValueType;
use tagd_segment_index::SegmentIndex;
use tagd_store::LiveAssignment;

use crate::facts::metric_values;

/// The index and its bookkeeping.
#[derive(Debug, Default)]
pub struct IndexState {
    pub index: SegmentIndex,
    /// Tag id → value type, for every tag the index may hold.
    pub tag_types: HashMap<String, ValueType>,
    /// (expiry, customer number, tag number) of assignments that expire,
    /// soonest first. Numbers, not ids: an entry costs ~40 bytes instead of
    /// ~200, and only assignments that have an expiry get one.
    expiries: BTreeSet<(NaiveDateTime, u32, u32)>,
    /// The expiry the index holds for (customer number, tag number); entries
    /// of `expiries` that disagree are stale and skipped.
    expiry_of: HashMap<(u32, u32), NaiveDateTime>,
    /// Tag id → number, for `expiries` (numbers are never reused).
    tag_numbers: HashMap<String, u32>,
    tag_ids: Vec<String>,
    /// Attribute keys held by some customer (never shrinks until a rebuild):
    /// what `attr("…")` may name.
    pub attribute_keys: HashSet<String>,
    /// Bumped by every rebuild: dense customer numbers of one epoch mean
    /// nothing in another.
    pub epoch: u64,
    /// The metrics the index holds (see [`IndexState::hold_metrics`]).
    metrics: Vec<Metric>,
}

impl IndexState {
    /// Replaces what the index holds about `customer` with its stored
    /// fields and the assignments of it live at `now` (others in
    /// `assignments` are ignored). Assignments of tags missing from
    /// `tag_types` are skipped and logged (the caller refreshes the types
    /// first).
    pub fn load_customer(
        &mut self,
        customer: &Customer,
        assignments: &[&LiveAssignment],
        now: NaiveDateTime,
    ) {
        let id = customer.id.as_str();
        // A customer seen for the first time holds no tag in the index: skipping the clearing
        // pass makes a build O(assignments) instead of O(customers × tags).
        let known = self.index.dense_id(id).is_some();
        let number = match self.index.upsert_customer(id, &customer.fields) {
            Ok(number) => number,
            Err(error) => {
                tracing::error!(%error, customer = id, "segment index cannot hold the customer");
                return;
            }
        };
        for key in customer.fields.attributes.keys() {
            if !self.attribute_keys.contains(key) {
                self.attribute_keys.insert(key.clone());
            }
        }
        if known {
            for tag in self.tag_types.keys() {
                self.index.unassign_dense(number, tag);
            }
        }
        for assignment in assignments {
            if assignment.expires_at.is_some_and(|expiry| expiry <= now) {
                continue;
            }
            let Some(value_type) = self.tag_types.get(&assignment.tag_id) else {
                tracing::warn!(
                    tag = assignment.tag_id,
                    "assignment of a tag the index does not know"
                );
                continue;
            };
            if let Err(error) = self.index.assign(
                id,
                &assignment.tag_id,
                *value_type,
                assignment.value.as_deref(),
            ) {
                tracing::warn!(%error, customer = id, "segment index skipped an assignment");
                continue;
            }
            match assignment.expires_at {
                Some(expiry) => {
                    let key = (number, self.tag_number(&assignment.tag_id));
                    self.expiries.insert((expiry, key.0, key.1));
                    self.expiry_of.insert(key, expiry);
                }
                None if !self.expiry_of.is_empty() => {
                    if let Some(tag) = self.tag_numbers.get(&assignment.tag_id) {
                        self.expiry_of.remove(&(number, *tag));
                    }
                }
                None => {}
            }
        }
    }

    /// Makes the index answer metrics and `bought_category(…)`: the metrics of the
    /// configured windows and the windowless ones. Call before loading activity.
    pub fn hold_metrics(&mut self, windows_days: &[u32]) {
        self.metrics = windows_days
            .iter()
            .flat_map(|&days| [Metric::Orders { days }, Metric::Spent { days }])
            .chain([
                Metric::RecencyDays,
                Metric::AvgOrderValue,
                Metric::LastInteractionDays,
                Metric::FrequencyTrend,
            ])
            .collect();
        for metric in &self.metrics {
            self.index.declare_metric(*metric);
        }
        self.index.set_purchases_loaded(true);
    }

    /// Replaces a loaded customer's metrics and categories bought with those of `activity`
    /// as of `now` (`None`: no orders or interactions, which still makes `orders_<N>d` and
    /// `spent_<N>d` zero, as GetCustomerMetrics says). A customer the index does not hold is
    /// skipped, so a late read never brings back a removed customer.
    pub fn load_activity(
        &mut self,
        customer: &str,
        activity: Option<&Activity>,
        now: NaiveDateTime,
        windows_days: &[u32],
    ) {
        if self.index.dense_id(customer).is_none() {
            return;
        }
        let none = Activity::default();
        let computed = compute(activity.unwrap_or(&none), now, windows_days);
        let values = metric_values(&computed, now);
        for metric in &self.metrics {
            if let Err(error) =
                self.index
                    .set_metric(customer, *metric, values.get(metric).copied())
            {
                tracing::warn!(%error, customer, "segment index skipped a metric");
            }
        }
        let categories = computed
            .categories
            .iter()
            .map(|bought| bought.category.as_str());
        if let Err(error) = self.index.set_bought(customer, categories) {
            tracing::warn!(%error, customer, "segment index skipped the categories bought");
        }
    }

    fn tag_number(&mut self, tag: &str) -> u32 {
        if let Some(number) = self.tag_numbers.get(tag) {
            return *number;
        }
        let number = u32::try_from(self.tag_ids.len()).unwrap_or(u32::MAX);
        self.tag_ids.push(tag.to_owned());
        self.tag_numbers.insert(tag.to_owned(), number);
        number
    }

    /// Forgets a customer that no longer exists.
    pub fn remove_customer(&mut self, customer: &str) {
        self.index.delete_customer(customer);
    }

    /// Drops the assignments whose expiry has passed at `now`: an expired
    /// assignment stops counting at once, before the sweeper deletes it.
    pub fn expire(&mut self, now: NaiveDateTime) -> usize {
        let mut dropped = 0;
        while let Some(first) = self.expiries.first() {
            if first.0 > now {
                break;
            }
            let Some((expiry, customer, tag)) = self.expiries.pop_first() else {
                break;
            };
            let key = (customer, tag);
            if self.expiry_of.get(&key) == Some(&expiry) {
                self.expiry_of.remove(&key);
                if let Some(tag) = self.tag_ids.get(tag as usize)
                    && self.index.unassign_dense(customer, tag)
                {
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// Gives back what loading over-allocated (after a build).
    pub fn compact(&mut self) {
        self.index.compact();
        self.expiry_of.shrink_to_fit();
        self.tag_numbers.shrink_to_fit();
        self.tag_ids.shrink_to_fit();
    }

    /// Bytes held beside the index (tag types, expiries, attribute keys), approximately.
    pub fn bookkeeping_bytes(&self) -> usize {
        let tags = 2 * (24 + 36 + 1);
        // B-tree entries with a share of their node, hash entries with their control byte.
        self.expiries.len() * (20 + 8)
            + self.expiry_of.capacity() * (20 + 1)
            + (self.tag_types.capacity() + self.tag_numbers.capacity()) * tags
            + self
                .attribute_keys
                .iter()
                .map(|key| key.len() + 25)
                .sum::<usize>()
    }

    /// Sets a tag's value type; a tag whose type changed is dropped (its
    /// holders are reloaded by the caller).
    pub fn set_tag_type(&mut self, tag: &str, value_type: ValueType) -> bool {
        match self.tag_types.insert(tag.to_owned(), value_type) {
            Some(previous) if previous != value_type => {
                self.index.drop_tag(tag);
                true
            }
            _ => false,
        }
    }
}
