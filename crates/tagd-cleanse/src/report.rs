//! The cleanse report: per-field counts and every value that could not be standardised,
//! fed one cleansed record at a time and merged across batches.

use std::collections::BTreeMap;

use tagd_core::customers::CustomerField;

use crate::record::{ChangeKind, Cleansed};

/// What happened to one field over all records seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldTally {
    /// Values rewritten in standard form (a split or a filled-in value counts once).
    pub changed: u64,
    /// Values dropped because they equalled another after standardising.
    pub duplicates_removed: u64,
    /// Values kept as they were because they could not be standardised.
    pub unfixable: u64,
}

/// One value that could not be standardised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfixableValue {
    pub customer_id: String,
    pub field: CustomerField,
    pub value: String,
    pub reason: String,
}

/// Counts and unfixable values of a cleanse run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CleanseReport {
    /// Records seen.
    pub customers: u64,
    /// Records with at least one change.
    pub customers_changed: u64,
    /// Records with at least one unfixable value.
    pub customers_with_problems: u64,
    /// Per field, in field order; fields nothing happened to are absent.
    pub fields: BTreeMap<CustomerField, FieldTally>,
    /// Every unfixable value, in the order seen (see [`CleanseReport::take_unfixable`]).
    pub unfixable: Vec<UnfixableValue>,
}

impl CleanseReport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one cleansed record.
    pub fn add(&mut self, customer_id: &str, cleansed: &Cleansed) {
        self.customers += 1;
        if !cleansed.changes.is_empty() {
            self.customers_changed += 1;
        }
        if !cleansed.problems.is_empty() {
            self.customers_with_problems += 1;
        }
        for change in &cleansed.changes {
            let tally = self.fields.entry(change.field).or_default();
            match change.kind {
                ChangeKind::MergedDuplicate => tally.duplicates_removed += 1,
                ChangeKind::Standardised | ChangeKind::Split | ChangeKind::FilledIn => {
                    tally.changed += 1;
                }
            }
        }
        for problem in &cleansed.problems {
            self.fields.entry(problem.field).or_default().unfixable += 1;
            self.unfixable.push(UnfixableValue {
                customer_id: customer_id.to_owned(),
                field: problem.field,
                value: problem.value.clone(),
                reason: problem.reason.clone(),
            });
        }
    }

    /// Adds another batch's report to this one.
    pub fn merge(&mut self, other: CleanseReport) {
        self.customers += other.customers;
        self.customers_changed += other.customers_changed;
        self.customers_with_problems += other.customers_with_problems;
        for (field, tally) in other.fields {
            let mine = self.fields.entry(field).or_default();
            mine.changed += tally.changed;
            mine.duplicates_removed += tally.duplicates_removed;
            mine.unfixable += tally.unfixable;
        }
        self.unfixable.extend(other.unfixable);
    }

    /// The tally of one field (zero when nothing happened to it).
    pub fn tally(&self, field: CustomerField) -> FieldTally {
        self.fields.get(&field).copied().unwrap_or_default()
    }

    /// Removes the unfixable values collected so far (to store them batch by batch);
    /// the counts keep them.
    pub fn take_unfixable(&mut self) -> Vec<UnfixableValue> {
        std::mem::take(&mut self.unfixable)
    }
}

#[cfg(test)]
mod tests {
    use tagd_core::customers::CustomerFields;

    use super::*;
    use crate::{CleanseOptions, Cleanser};

    fn cleansed(phones: &[&str]) -> Cleansed {
        let cleanser = Cleanser::new(CleanseOptions::default()).unwrap();
        cleanser.cleanse(CustomerFields {
            name: "张伟".into(),
            phones: phones.iter().map(|p| (*p).to_owned()).collect(),
            ..CustomerFields::default()
        })
    }

    #[test]
    fn counts_per_field_and_collects_unfixable_values() {
        let mut report = CleanseReport::new();
        report.add("c1", &cleansed(&["138-0013-8000", "13800138000", "x"]));
        report.add("c2", &cleansed(&["+8613800138000"]));
        assert_eq!(report.customers, 2);
        assert_eq!(report.customers_changed, 1);
        assert_eq!(report.customers_with_problems, 1);
        assert_eq!(
            report.tally(CustomerField::Phones),
            FieldTally {
                changed: 1,
                duplicates_removed: 1,
                unfixable: 1
            }
        );
        assert_eq!(report.tally(CustomerField::Name), FieldTally::default());
        assert_eq!(report.unfixable.len(), 1);
        assert_eq!(report.unfixable[0].customer_id, "c1");
        assert_eq!(report.unfixable[0].value, "x");
    }

    #[test]
    fn batches_merge() {
        let mut first = CleanseReport::new();
        first.add("c1", &cleansed(&["138-0013-8000", "x"]));
        let mut second = CleanseReport::new();
        second.add("c2", &cleansed(&["139-0013-9000", "y"]));
        let taken = second.take_unfixable();
        assert_eq!(taken.len(), 1);
        first.merge(second);
        assert_eq!(first.customers, 2);
        assert_eq!(first.tally(CustomerField::Phones).changed, 2);
        assert_eq!(first.tally(CustomerField::Phones).unfixable, 2);
        assert_eq!(first.unfixable.len(), 1);
    }
}
