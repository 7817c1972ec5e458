//! Reverting an import: everything it wrote is undone in one transaction —
//! customers it created are deleted, fields it changed restored, tags it added
//! removed (values it changed and tags it replaced restored), purchases and
//! interactions it added deleted — unless a customer it touched changed after
//! it finished, in which case nothing is done and the customers are named.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::jobs::{Job, JobKind, JobState};
use tagd_core::tagging::{HistoryAction, TagSource};

use crate::Store;
use crate::customers::{CustomerQueries, fields_from_json};
use crate::db::{
    BackendOps, BatchInsert, IN_CHUNK, now, removing_transaction, with_conn, write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::imports::ImportChangeRow;
use crate::merges::MergeQueries;
use crate::schema::{
    customer_tags, import_changes, interactions, jobs, purchase_items, purchases, tag_history, tags,
};
use crate::tagging::{AssignmentRow, HistoryRow};

/// Customers named in a refusal, at most.
const NAMED_IN_REFUSAL: usize = 5;

/// What a revert undid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevertOutcome {
    pub customers_deleted: u64,
    pub customers_restored: u64,
    pub tags_removed: u64,
    pub tags_restored: u64,
    pub purchases_removed: u64,
    pub interactions_removed: u64,
}

fn refuse_unless_revertible(job: &Job) -> StoreResult<NaiveDateTime> {
    let refuse = |why: &str| {
        Err(StoreError::FailedPrecondition(format!(
            "job {}: {why}",
            job.id
        )))
    };
    if job.kind != JobKind::Import {
        return refuse("is not an import");
    }
    if job.dry_run {
        return refuse("is a dry run; it wrote nothing to revert");
    }
    match job.state {
        JobState::Running => refuse("is still running; cancel it first"),
        JobState::Reverted => refuse("was already reverted"),
        JobState::Succeeded | JobState::Failed | JobState::Cancelled => {
            Ok(job.finished_at.unwrap_or(job.updated_at))
        }
    }
}

impl Store {
    /// Undoes a finished import (see the module docs); `actor` is recorded in history.
    pub async fn revert_import(
        &self,
        job_id: &str,
        actor: &str,
    ) -> StoreResult<(Job, RevertOutcome)> {
        let job = self.get_job(job_id).await?;
        let finished_at = refuse_unless_revertible(&job)?;
        let revert_ref = format!("revert of import {job_id}");
        let outcome = removing_transaction!(self, |conn| {
            let changes: Vec<ImportChangeRow> = import_changes::table
                .filter(import_changes::job_id.eq(job_id))
                .select(ImportChangeRow::as_select())
                .load(conn)
                .await?;
            // The import's own tag history, newest first, so that undoing runs backwards.
            let history: Vec<HistoryRow> = tag_history::table
                .filter(tag_history::source_ref.eq(job_id))
                .order(tag_history::id.desc())
                .select(HistoryRow::as_select())
                .load(conn)
                .await?;
            let mut touched: BTreeSet<String> = changes
                .iter()
                .map(|change| change.customer_id.clone())
                .collect();
            touched.extend(history.iter().map(|row| row.customer_id.clone()));
            let touched: Vec<String> = touched.into_iter().collect();
            let mut existing = Vec::with_capacity(touched.len());
            for chunk in touched.chunks(IN_CHUNK) {
                existing.extend(conn.lock_customers(chunk).await?);
            }
            let stored: HashMap<String, tagd_core::customers::Customer> = conn
                .load_customers(&existing)
                .await?
                .into_iter()
                .map(|customer| (customer.id.clone(), customer))
                .collect();

            // Refuse when anything about these customers changed after the import.
            let mut later: BTreeMap<String, String> = BTreeMap::new();
            // A customer merged away since lives on in its survivor: undoing the import would
            // take from the survivor what the merge gave it.
            for id in touched.iter().filter(|id| !stored.contains_key(*id)) {
                if let Some((merge_id, survivor)) = conn.merged_into(id).await? {
                    later.insert(
                        id.clone(),
                        format!("merged into {survivor} by merge {merge_id}"),
                    );
                }
            }
            for customer in stored.values() {
                if customer.updated_at > finished_at {
                    later.insert(
                        customer.id.clone(),
                        format!("changed at {}", customer.updated_at),
                    );
                }
            }
            for chunk in existing.chunks(IN_CHUNK) {
                let tagged_later: Vec<(String, NaiveDateTime)> = tag_history::table
                    .filter(ids_in(tag_history::customer_id, chunk))
                    .filter(tag_history::created_at.gt(finished_at))
                    .select((tag_history::customer_id, tag_history::created_at))
                    .load(conn)
                    .await?;
                for (customer_id, at) in tagged_later {
                    later
                        .entry(customer_id)
                        .or_insert_with(|| format!("tags changed at {at}"));
                }
            }
            if !later.is_empty() {
                let named: Vec<String> = later
                    .iter()
                    .take(NAMED_IN_REFUSAL)
                    .map(|(id, why)| format!("{id} ({why})"))
                    .collect();
                return Err(StoreError::FailedPrecondition(format!(
                    "cannot revert import {job_id}: {} customer(s) it touched changed after it finished: {}{}",
                    later.len(),
                    named.join(", "),
                    if later.len() > NAMED_IN_REFUSAL {
                        ", …"
                    } else {
                        ""
                    }
                )));
            }

            let mut outcome = RevertOutcome::default();
            let at = now();
            let created: Vec<String> = changes
                .iter()
                .filter(|change| {
                    change.action == crate::imports::CREATED
                        && stored.contains_key(&change.customer_id)
                })
                .map(|change| change.customer_id.clone())
                .collect();
            let created_set: BTreeSet<&str> = created.iter().map(String::as_str).collect();

            // Tags on the customers that stay: undo each change, newest first.
            let mut restored_history = Vec::new();
            // Exclusive-category tags the import's assignments replaced: written in the
            // same transaction, so with the same customer and time as the assignment.
            let customers_kept: Vec<&str> = history
                .iter()
                .map(|row| row.customer_id.as_str())
                .filter(|id| !created_set.contains(id))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut replacements: HashMap<(String, NaiveDateTime), Vec<HistoryRow>> =
                HashMap::new();
            for chunk in customers_kept.chunks(IN_CHUNK) {
                let rows: Vec<HistoryRow> = tag_history::table
                    .filter(ids_in(tag_history::customer_id, chunk))
                    .filter(tag_history::action.eq(HistoryAction::Replace.as_str()))
                    .filter(tag_history::source.eq(TagSource::Import.as_str()))
                    .select(HistoryRow::as_select())
                    .load(conn)
                    .await?;
                for row in rows {
                    replacements
                        .entry((row.customer_id.clone(), row.created_at))
                        .or_default()
                        .push(row);
                }
            }
            let category_of: HashMap<String, String> = {
                let mut tag_ids: BTreeSet<String> = replacements
                    .values()
                    .flatten()
                    .map(|row| row.tag_id.clone())
                    .collect();
                tag_ids.extend(history.iter().map(|row| row.tag_id.clone()));
                let tag_ids: Vec<String> = tag_ids.into_iter().collect();
                let mut map = HashMap::new();
                for chunk in tag_ids.chunks(IN_CHUNK) {
                    let rows: Vec<(String, String)> = tags::table
                        .filter(ids_in(tags::id, chunk))
                        .select((tags::id, tags::category_id))
                        .load(conn)
                        .await?;
                    map.extend(rows);
                }
                map
            };
            for row in history
                .iter()
                .filter(|row| !created_set.contains(row.customer_id.as_str()))
            {
                let action: HistoryAction = row
                    .action
                    .parse()
                    .map_err(|e: String| StoreError::Corrupt(format!("history {}: {e}", row.id)))?;
                let key = customer_tags::table
                    .filter(customer_tags::customer_id.eq(&row.customer_id))
                    .filter(customer_tags::tag_id.eq(&row.tag_id));
                let undo =
                    |action: HistoryAction, old: Option<String>, new: Option<String>| HistoryRow {
                        id: tagd_core::ids::new_id(),
                        customer_id: row.customer_id.clone(),
                        tag_id: row.tag_id.clone(),
                        tag_name: row.tag_name.clone(),
                        category_name: row.category_name.clone(),
                        action: action.as_str().to_owned(),
                        old_value: old,
                        new_value: new,
                        source: TagSource::Import.as_str().to_owned(),
                        source_ref: revert_ref.clone(),
                        actor: actor.to_owned(),
                        created_at: at,
                    };
                match action {
                    HistoryAction::Assign => {
                        diesel::delete(key).execute(conn).await?;
                        outcome.tags_removed += 1;
                        restored_history.push(undo(
                            HistoryAction::Remove,
                            row.new_value.clone(),
                            None,
                        ));
                        // Give back what the assignment replaced in an exclusive category.
                        let replaced_here = replacements
                            .get(&(row.customer_id.clone(), row.created_at))
                            .map_or(&[][..], Vec::as_slice);
                        for replaced in replaced_here {
                            let Some(category_id) = category_of.get(&replaced.tag_id) else {
                                continue; // the replaced tag has since been deleted
                            };
                            diesel::insert_into(customer_tags::table)
                                .values(AssignmentRow {
                                    customer_id: replaced.customer_id.clone(),
                                    tag_id: replaced.tag_id.clone(),
                                    category_id: category_id.clone(),
                                    value: replaced.old_value.clone(),
                                    source: TagSource::Manual.as_str().to_owned(),
                                    source_ref: revert_ref.clone(),
                                    assigned_by: actor.to_owned(),
                                    assigned_at: at,
                                    expires_at: None,
                                })
                                .execute(conn)
                                .await?;
                            outcome.tags_restored += 1;
                            restored_history.push(HistoryRow {
                                tag_id: replaced.tag_id.clone(),
                                tag_name: replaced.tag_name.clone(),
                                category_name: replaced.category_name.clone(),
                                ..undo(HistoryAction::Assign, None, replaced.old_value.clone())
                            });
                        }
                    }
                    HistoryAction::Change => {
                        diesel::update(key)
                            .set(customer_tags::value.eq(&row.old_value))
                            .execute(conn)
                            .await?;
                        outcome.tags_restored += 1;
                        restored_history.push(undo(
                            HistoryAction::Change,
                            row.new_value.clone(),
                            row.old_value.clone(),
                        ));
                    }
                    // Removals, expiries and replacements are not an import's own writes.
                    HistoryAction::Remove | HistoryAction::Expire | HistoryAction::Replace => {}
                }
            }
            conn.insert_history_rows(&restored_history).await?;

            // Fields of the customers the import updated.
            let mut restored = Vec::new();
            let mut current_fields = HashMap::new();
            for change in changes.iter().filter(|change| change.action == "updated") {
                let Some(customer) = stored.get(&change.customer_id) else {
                    continue;
                };
                let mut customer = customer.clone();
                current_fields.insert(customer.id.clone(), customer.fields.clone());
                customer.fields = fields_from_json(&change.before_fields)?;
                customer.updated_at = at;
                restored.push(customer);
            }
            conn.rewrite_customers(&restored, &current_fields).await?;
            outcome.customers_restored = restored.len() as u64;

            // Orders and contacts it added (those of created customers go with them).
            let added_orders: Vec<(String, String)> = purchases::table
                .filter(purchases::source_ref.eq(job_id))
                .select((purchases::id, purchases::customer_id))
                .load(conn)
                .await?;
            let added_contacts: Vec<String> = interactions::table
                .filter(interactions::source_ref.eq(job_id))
                .select(interactions::customer_id)
                .load(conn)
                .await?;
            // Their customers' metrics change: journaled with the rest for the segment index.
            let mut touched: BTreeSet<String> = touched.into_iter().collect();
            touched.extend(added_orders.iter().map(|(_, customer)| customer.clone()));
            touched.extend(added_contacts);
            let touched: Vec<String> = touched.into_iter().collect();
            let purchase_ids: Vec<&str> = added_orders.iter().map(|(id, _)| id.as_str()).collect();
            for chunk in purchase_ids.chunks(IN_CHUNK) {
                diesel::delete(
                    purchase_items::table.filter(ids_in(purchase_items::purchase_id, chunk)),
                )
                .execute(conn)
                .await?;
            }
            outcome.purchases_removed =
                diesel::delete(purchases::table.filter(purchases::source_ref.eq(job_id)))
                    .execute(conn)
                    .await? as u64;
            outcome.interactions_removed =
                diesel::delete(interactions::table.filter(interactions::source_ref.eq(job_id)))
                    .execute(conn)
                    .await? as u64;

            conn.erase_customers(&created).await?;
            outcome.customers_deleted = created.len() as u64;
            diesel::delete(import_changes::table.filter(import_changes::job_id.eq(job_id)))
                .execute(conn)
                .await?;
            diesel::update(jobs::table.filter(jobs::id.eq(job_id)))
                .set((
                    jobs::state.eq(JobState::Reverted.as_str()),
                    jobs::updated_at.eq(at),
                ))
                .execute(conn)
                .await?;
            Ok((outcome, touched))
        })?;
        Ok((self.get_job(job_id).await?, outcome))
    }
}
