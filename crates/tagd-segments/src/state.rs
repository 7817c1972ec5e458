//! What the server holds in memory: the segment index plus what keeping it
//! in step needs (each tag's value type, when each assignment expires, the
//! attribute keys seen). Loading a customer replaces everything the index
//! held about it, so loading the same customer twice is harmless: that is
//! what lets the follower re-read a window of recent changes without
//! bookkeeping of its own.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDateTime;
use tagd_core::customers::Customer;
use tagd_core::tags::ValueType;
use tagd_segment_index::SegmentIndex;
use tagd_store::LiveAssignment;

/// The index and its bookkeeping.
#[derive(Debug, Default)]
pub struct IndexState {
    pub index: SegmentIndex,
    /// Tag id → value type, for every tag the index may hold.
    pub tag_types: HashMap<String, ValueType>,
    /// (expiry, customer, tag) of assignments that expire, soonest first.
    expiries: BTreeSet<(NaiveDateTime, String, String)>,
    /// The expiry the index holds for (customer, tag); entries of
    /// `expiries` that disagree are stale and skipped.
    expiry_of: HashMap<(String, String), NaiveDateTime>,
    /// Attribute keys held by some customer (never shrinks until a rebuild):
    /// what `attr("…")` may name.
    pub attribute_keys: HashSet<String>,
    /// Bumped by every rebuild: dense customer numbers of one epoch mean
    /// nothing in another.
    pub epoch: u64,
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
        if let Err(error) = self.index.upsert_customer(id, &customer.fields) {
            tracing::error!(%error, customer = id, "segment index cannot hold the customer");
            return;
        }
        self.attribute_keys
            .extend(customer.fields.attributes.keys().cloned());
        for tag in self.tag_types.keys() {
            self.index.unassign(id, tag);
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
            let key = (id.to_owned(), assignment.tag_id.clone());
            match assignment.expires_at {
                Some(expiry) => {
                    self.expiries.insert((expiry, key.0.clone(), key.1.clone()));
                    self.expiry_of.insert(key, expiry);
                }
                None => {
                    self.expiry_of.remove(&key);
                }
            }
        }
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
                if self.index.unassign(&key.0, &key.1) {
                    dropped += 1;
                }
            }
        }
        dropped
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
