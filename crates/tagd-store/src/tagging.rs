//! Tagging: assignments of tags to customers and the history of every change.
//!
//! Every change to `customer_tags` writes its `tag_history` entry in the same
//! transaction. Writers lock the customers' rows first (in id order), so two
//! calls for one customer never interleave.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::DomainError;
use tagd_core::ids::new_id;
use tagd_core::paging::{PageRequest, finish_page};
use tagd_core::tagging::{
    AssignOutcome, Assignment, CustomerTag, HistoryAction, HistoryEntry, SYSTEM_ACTOR, TagSource,
};
use tagd_core::tags::Tag;

use crate::customers::CustomerQueries as _;
use crate::db::{
    BackendOps, BatchInsert, IN_CHUNK, MysqlConn, ROWS_PER_PASS, SqliteConn, now,
    truncate_to_micros, with_conn, write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::schema::{categories, customer_tags, tag_history, tags};
use crate::tags::page_limit;
use crate::{Page, Store};

/// Expired assignments handled per sweep transaction.
const EXPIRE_BATCH: i64 = 1_000;

#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Queryable,
    Selectable,
    Insertable,
    serde::Serialize,
    serde::Deserialize,
)]
#[diesel(table_name = customer_tags, treat_none_as_default_value = false)]
pub(crate) struct AssignmentRow {
    pub customer_id: String,
    pub tag_id: String,
    pub category_id: String,
    pub value: Option<String>,
    pub source: String,
    pub source_ref: String,
    pub assigned_by: String,
    pub assigned_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

impl AssignmentRow {
    fn is_live(&self, at: NaiveDateTime) -> bool {
        self.expires_at.is_none_or(|expiry| expiry > at)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tag_history, treat_none_as_default_value = false)]
pub(crate) struct HistoryRow {
    pub id: String,
    pub customer_id: String,
    pub tag_id: String,
    pub tag_name: String,
    pub category_name: String,
    pub action: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub source: String,
    pub source_ref: String,
    pub actor: String,
    pub created_at: NaiveDateTime,
}

impl HistoryRow {
    fn into_entry(self) -> StoreResult<HistoryEntry> {
        let corrupt = |e: String| StoreError::Corrupt(format!("history {}: {e}", self.id));
        Ok(HistoryEntry {
            action: self.action.parse().map_err(corrupt)?,
            source: self.source.parse().map_err(corrupt)?,
            id: self.id,
            customer_id: self.customer_id,
            tag_id: self.tag_id,
            tag_name: self.tag_name,
            category_name: self.category_name,
            old_value: self.old_value,
            new_value: self.new_value,
            source_ref: self.source_ref,
            actor: self.actor,
            at: self.created_at,
        })
    }
}

/// An existing assignment with the names history entries need.
pub(crate) type NamedAssignment = (AssignmentRow, String, String);

/// A tag with what assigning it needs to know about its category.
pub(crate) struct CatalogueEntry {
    pub tag: Tag,
    pub category_name: String,
    pub exclusive: bool,
}

/// One change, before it becomes a history row.
pub(crate) struct Change<'a> {
    pub customer_id: &'a str,
    pub tag_id: &'a str,
    pub tag_name: &'a str,
    pub category_name: &'a str,
    pub action: HistoryAction,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub source: &'a str,
    pub source_ref: &'a str,
    pub actor: &'a str,
}

impl Change<'_> {
    pub(crate) fn into_row(self, at: NaiveDateTime) -> HistoryRow {
        HistoryRow {
            id: new_id(),
            customer_id: self.customer_id.to_owned(),
            tag_id: self.tag_id.to_owned(),
            tag_name: self.tag_name.to_owned(),
            category_name: self.category_name.to_owned(),
            action: self.action.as_str().to_owned(),
            old_value: self.old_value,
            new_value: self.new_value,
            source: self.source.to_owned(),
            source_ref: self.source_ref.to_owned(),
            actor: self.actor.to_owned(),
            created_at: at,
        }
    }
}

/// The writes one assignment call decided on.
#[derive(Default)]
pub(crate) struct Plan {
    /// (customer_id, tag_id) rows to delete before inserting.
    delete: Vec<(String, String)>,
    insert: Vec<AssignmentRow>,
    /// New versions of rows that exist (a changed value or expiry).
    replace: Vec<AssignmentRow>,
    history: Vec<HistoryRow>,
    outcome: AssignOutcome,
}

impl Plan {
    /// Adds the removal of a held assignment with its history row.
    pub(crate) fn push_removal(&mut self, pair: (String, String), history: HistoryRow) {
        self.delete.push(pair);
        self.history.push(history);
    }

    /// Adds another call's writes to this plan; returns that call's outcome.
    fn absorb(&mut self, other: Plan) -> AssignOutcome {
        self.delete.extend(other.delete);
        self.insert.extend(other.insert);
        self.replace.extend(other.replace);
        self.history.extend(other.history);
        other.outcome
    }
}

/// Tagging queries, written once and compiled for each backend's connection.
pub(crate) trait TaggingQueries {
    async fn catalogue(
        &mut self,
        tag_ids: &[String],
    ) -> StoreResult<HashMap<String, CatalogueEntry>>;
    async fn existing_assignments(
        &mut self,
        customer_ids: &[String],
        tag_ids: &[String],
        category_ids: &[String],
    ) -> StoreResult<Vec<NamedAssignment>>;
    async fn apply(&mut self, plan: Plan) -> StoreResult<AssignOutcome>;
    async fn require_customers(
        &mut self,
        ids: &[String],
        fields: &HashMap<&str, String>,
    ) -> StoreResult<()>;
    async fn remove_tags_everywhere(&mut self, tag_ids: &[String], actor: &str)
    -> StoreResult<u64>;
    async fn delete_pairs(&mut self, pairs: &[(String, String)]) -> StoreResult<()>;
    /// The body of [`Store::assign_each`], for use inside a larger transaction.
    /// `customer_ids` and `tag_ids` are the calls' own, sorted and distinct.
    /// `created` are customers the enclosing transaction created: they exist,
    /// its inserts lock them and they hold no tags, so they are neither locked
    /// nor read again.
    async fn assign_calls(
        &mut self,
        customer_ids: &[String],
        tag_ids: &[String],
        calls: &[AssignCall],
        created: &HashSet<String>,
    ) -> StoreResult<Vec<StoreResult<AssignOutcome>>>;
}

macro_rules! tagging_queries {
    ($conn:ty) => {
        impl TaggingQueries for $conn {
            async fn catalogue(
                &mut self,
                tag_ids: &[String],
            ) -> StoreResult<HashMap<String, CatalogueEntry>> {
                let mut entries = HashMap::with_capacity(tag_ids.len());
                for chunk in tag_ids.chunks(IN_CHUNK) {
                    // Whoever writes assignments of a tag holds its row shared until the
                    // commit, so a concurrent forced delete either waits for this transaction
                    // (and then removes what it wrote) or has committed, and the tag is absent.
                    let rows = self.locked_catalogue(chunk).await?;
                    for (row, category_name, exclusive) in rows {
                        let tag = row.into_tag()?;
                        entries.insert(
                            tag.id.clone(),
                            CatalogueEntry {
                                tag,
                                category_name,
                                exclusive,
                            },
                        );
                    }
                }
                Ok(entries)
            }

            async fn existing_assignments(
                &mut self,
                customer_ids: &[String],
                tag_ids: &[String],
                category_ids: &[String],
            ) -> StoreResult<Vec<NamedAssignment>> {
                if let [customer_id] = customer_ids {
                    // One customer: load all its assignments with a static (cached) statement
                    // and keep the ones that matter here.
                    let rows: Vec<NamedAssignment> = customer_tags::table
                        .inner_join(tags::table.on(tags::id.eq(customer_tags::tag_id)))
                        .inner_join(
                            categories::table.on(categories::id.eq(customer_tags::category_id)),
                        )
                        .filter(customer_tags::customer_id.eq(customer_id))
                        .select((AssignmentRow::as_select(), tags::name, categories::name))
                        .load(self)
                        .await?;
                    return Ok(rows
                        .into_iter()
                        .filter(|(row, _, _)| {
                            tag_ids.contains(&row.tag_id) || category_ids.contains(&row.category_id)
                        })
                        .collect());
                }
                let mut found = Vec::new();
                for chunk in customer_ids.chunks(IN_CHUNK) {
                    let rows: Vec<NamedAssignment> = customer_tags::table
                        .inner_join(tags::table.on(tags::id.eq(customer_tags::tag_id)))
                        .inner_join(
                            categories::table.on(categories::id.eq(customer_tags::category_id)),
                        )
                        .filter(ids_in(customer_tags::customer_id, chunk))
                        .filter(
                            ids_in(customer_tags::tag_id, tag_ids)
                                .or(ids_in(customer_tags::category_id, category_ids)),
                        )
                        .select((AssignmentRow::as_select(), tags::name, categories::name))
                        .load(self)
                        .await?;
                    found.extend(rows);
                }
                Ok(found)
            }

            async fn apply(&mut self, plan: Plan) -> StoreResult<AssignOutcome> {
                self.delete_pairs(&plan.delete).await?;
                self.insert_assignment_rows(&plan.insert).await?;
                self.upsert_assignment_rows(&plan.replace).await?;
                self.insert_history_rows(&plan.history).await?;
                Ok(plan.outcome)
            }

            async fn require_customers(
                &mut self,
                ids: &[String],
                fields: &HashMap<&str, String>,
            ) -> StoreResult<()> {
                let mut found = BTreeSet::new();
                for chunk in ids.chunks(IN_CHUNK) {
                    found.extend(self.lock_customers(chunk).await?);
                }
                match ids.iter().find(|id| !found.contains(*id)) {
                    Some(missing) => {
                        let field = fields
                            .get(missing.as_str())
                            .map_or("customer_id", String::as_str);
                        Err(StoreError::not_found("customer", missing).at(field))
                    }
                    None => Ok(()),
                }
            }

            async fn remove_tags_everywhere(
                &mut self,
                tag_ids: &[String],
                actor: &str,
            ) -> StoreResult<u64> {
                let mut removed = 0;
                loop {
                    let batch: Vec<NamedAssignment> = customer_tags::table
                        .inner_join(tags::table.on(tags::id.eq(customer_tags::tag_id)))
                        .inner_join(
                            categories::table.on(categories::id.eq(customer_tags::category_id)),
                        )
                        .filter(ids_in(customer_tags::tag_id, tag_ids))
                        .select((AssignmentRow::as_select(), tags::name, categories::name))
                        .limit(ROWS_PER_PASS as i64)
                        .load(self)
                        .await?;
                    if batch.is_empty() {
                        return Ok(removed);
                    }
                    let at = now();
                    let mut history = Vec::with_capacity(batch.len());
                    let mut pairs = Vec::with_capacity(batch.len());
                    for (row, tag_name, category_name) in &batch {
                        let action = if row.is_live(at) {
                            HistoryAction::Remove
                        } else {
                            HistoryAction::Expire
                        };
                        history.push(
                            Change {
                                customer_id: &row.customer_id,
                                tag_id: &row.tag_id,
                                tag_name,
                                category_name,
                                action,
                                old_value: row.value.clone(),
                                new_value: None,
                                source: TagSource::Manual.as_str(),
                                source_ref: "tag deleted",
                                actor,
                            }
                            .into_row(at),
                        );
                        pairs.push((row.customer_id.clone(), row.tag_id.clone()));
                    }
                    self.delete_pairs(&pairs).await?;
                    self.insert_history_rows(&history).await?;
                    removed += batch.len() as u64;
                }
            }

            async fn delete_pairs(&mut self, pairs: &[(String, String)]) -> StoreResult<()> {
                let mut by_tag: HashMap<&str, Vec<&str>> = HashMap::new();
                for (customer_id, tag_id) in pairs {
                    by_tag
                        .entry(tag_id.as_str())
                        .or_default()
                        .push(customer_id.as_str());
                }
                for (tag_id, customer_ids) in by_tag {
                    for chunk in customer_ids.chunks(IN_CHUNK) {
                        diesel::delete(
                            customer_tags::table
                                .filter(customer_tags::tag_id.eq(tag_id))
                                .filter(ids_in(customer_tags::customer_id, chunk)),
                        )
                        .execute(self)
                        .await?;
                    }
                }
                Ok(())
            }

            async fn assign_calls(
                &mut self,
                customer_ids: &[String],
                tag_ids: &[String],
                calls: &[AssignCall],
                created: &HashSet<String>,
            ) -> StoreResult<Vec<StoreResult<AssignOutcome>>> {
                let no_prefix = |_: usize| String::new();
                let stored: Vec<String> = customer_ids
                    .iter()
                    .filter(|id| !created.contains(*id))
                    .cloned()
                    .collect();
                let mut found = Vec::with_capacity(stored.len());
                for chunk in stored.chunks(IN_CHUNK) {
                    found.extend(self.lock_customers(chunk).await?);
                }
                let catalogue = self.catalogue(&tag_ids).await?;
                let exclusive_categories: Vec<String> = catalogue
                    .values()
                    .filter(|entry| entry.exclusive)
                    .map(|entry| entry.tag.category_id.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let existing = if found.is_empty() {
                    Vec::new()
                } else {
                    self.existing_assignments(&found, &tag_ids, &exclusive_categories)
                        .await?
                };
                let mut held: HashMap<String, Vec<NamedAssignment>> = HashMap::new();
                for entry in existing {
                    held.entry(entry.0.customer_id.clone())
                        .or_default()
                        .push(entry);
                }
                let found: BTreeSet<String> = found
                    .into_iter()
                    .chain(
                        customer_ids
                            .iter()
                            .filter(|id| created.contains(*id))
                            .cloned(),
                    )
                    .collect();
                let at = now();
                let mut plan = Plan::default();
                let mut results = Vec::with_capacity(calls.len());
                for call in calls {
                    if !found.contains(&call.customer_id) {
                        results
                            .push(Err(StoreError::not_found("customer", &call.customer_id)
                                .at("customer_id")));
                        continue;
                    }
                    let request = [(call.customer_id.clone(), call.assignments.clone())];
                    let result =
                        check_request_shape(&request, &catalogue, &no_prefix).and_then(|()| {
                            plan_assignments(
                                &request,
                                &catalogue,
                                held.remove(&call.customer_id).unwrap_or_default(),
                                &call.actor,
                                &no_prefix,
                                at,
                            )
                        });
                    results.push(result.map(|call_plan| plan.absorb(call_plan)));
                }
                self.apply(plan).await?;
                Ok(results)
            }
        }
    };
}

tagging_queries!(SqliteConn);
tagging_queries!(MysqlConn);

/// The assignments of one customer, as a request gave them.
pub type CustomerAssignments = (String, Vec<Assignment>);

/// One AssignTags call: a customer's assignments and who asked.
#[derive(Debug, Clone)]
pub struct AssignCall {
    pub customer_id: String,
    pub assignments: Vec<Assignment>,
    pub actor: String,
}

/// Checks values and expiries against the catalogue, and decides every write.
pub(crate) fn plan_assignments(
    requests: &[CustomerAssignments],
    catalogue: &HashMap<String, CatalogueEntry>,
    existing: Vec<NamedAssignment>,
    actor: &str,
    field_prefix: &dyn Fn(usize) -> String,
    at: NaiveDateTime,
) -> StoreResult<Plan> {
    // customer → tag → existing assignment
    let mut held: HashMap<String, HashMap<String, NamedAssignment>> = HashMap::new();
    for entry in existing {
        held.entry(entry.0.customer_id.clone())
            .or_default()
            .insert(entry.0.tag_id.clone(), entry);
    }
    let mut plan = Plan::default();
    for (index, (customer_id, assignments)) in requests.iter().enumerate() {
        let prefix = field_prefix(index);
        let mut current = held.remove(customer_id).unwrap_or_default();
        // Expired rows still in the table are recorded as expired, then treated as absent.
        let expired: Vec<String> = current
            .iter()
            .filter(|(_, (row, _, _))| !row.is_live(at))
            .map(|(tag_id, _)| tag_id.clone())
            .collect();
        for tag_id in expired {
            if let Some((row, tag_name, category_name)) = current.remove(&tag_id) {
                plan.history.push(
                    Change {
                        customer_id,
                        tag_id: &row.tag_id,
                        tag_name: &tag_name,
                        category_name: &category_name,
                        action: HistoryAction::Expire,
                        old_value: row.value.clone(),
                        new_value: None,
                        source: &row.source,
                        source_ref: &row.source_ref,
                        actor: SYSTEM_ACTOR,
                    }
                    .into_row(at),
                );
                plan.delete.push((row.customer_id, row.tag_id));
            }
        }
        for (position, assignment) in assignments.iter().enumerate() {
            let field = format!("{prefix}assignments[{position}]");
            let entry = catalogue.get(&assignment.tag_id).ok_or_else(|| {
                StoreError::not_found("tag", &assignment.tag_id).at(&format!("{field}.tag_id"))
            })?;
            let value = entry
                .tag
                .check_value(&format!("{field}.value"), &assignment.value)?;
            let expires_at = match assignment.expires_at {
                Some(expiry) if expiry <= at => {
                    return Err(DomainError::invalid(
                        format!("{field}.expires_at"),
                        "is in the past",
                    )
                    .into());
                }
                Some(expiry) => Some(truncate_to_micros(expiry)),
                None => entry
                    .tag
                    .default_validity_secs
                    .map(|secs| at + Duration::seconds(secs)),
            };
            let source = assignment.source.as_str();
            let row = AssignmentRow {
                customer_id: customer_id.clone(),
                tag_id: entry.tag.id.clone(),
                category_id: entry.tag.category_id.clone(),
                value: value.clone(),
                source: source.to_owned(),
                source_ref: assignment.source_ref.clone(),
                assigned_by: actor.to_owned(),
                assigned_at: at,
                expires_at,
            };
            let change = |action, old_value| Change {
                customer_id,
                tag_id: &entry.tag.id,
                tag_name: &entry.tag.name,
                category_name: &entry.category_name,
                action,
                old_value,
                new_value: value.clone(),
                source,
                source_ref: &assignment.source_ref,
                actor,
            };
            if let Some((old, _, _)) = current.get(&entry.tag.id) {
                if old.value == value {
                    plan.outcome.unchanged += 1;
                    if old.expires_at != expires_at {
                        // Renewal: same value, new expiry; not a change worth a history entry.
                        plan.replace.push(AssignmentRow {
                            source: old.source.clone(),
                            source_ref: old.source_ref.clone(),
                            assigned_by: old.assigned_by.clone(),
                            assigned_at: old.assigned_at,
                            ..row.clone()
                        });
                    }
                } else {
                    plan.outcome.changed += 1;
                    plan.history
                        .push(change(HistoryAction::Change, old.value.clone()).into_row(at));
                    plan.replace.push(row.clone());
                }
                current.insert(
                    entry.tag.id.clone(),
                    (row, entry.tag.name.clone(), entry.category_name.clone()),
                );
                continue;
            }
            if entry.exclusive {
                // A rule's replacement names the rule, like the rest of its history; other
                // replacements name the tag that took the place.
                let replaced_by = if assignment.source == TagSource::Rule {
                    assignment.source_ref.clone()
                } else {
                    format!("replaced by {}", entry.tag.name)
                };
                let rivals: Vec<String> = current
                    .values()
                    .filter(|(held_row, _, _)| held_row.category_id == entry.tag.category_id)
                    .map(|(held_row, _, _)| held_row.tag_id.clone())
                    .collect();
                for rival in rivals {
                    if let Some((old, old_tag_name, old_category_name)) = current.remove(&rival) {
                        plan.outcome.replaced += 1;
                        plan.history.push(
                            Change {
                                customer_id,
                                tag_id: &old.tag_id,
                                tag_name: &old_tag_name,
                                category_name: &old_category_name,
                                action: HistoryAction::Replace,
                                old_value: old.value.clone(),
                                new_value: None,
                                source,
                                source_ref: &replaced_by,
                                actor,
                            }
                            .into_row(at),
                        );
                        // A rival inserted earlier in this same call has no stored row to delete.
                        plan.insert.retain(|pending| {
                            !(pending.customer_id == old.customer_id
                                && pending.tag_id == old.tag_id)
                        });
                        plan.delete.push((old.customer_id, old.tag_id));
                    }
                }
            }
            plan.outcome.assigned += 1;
            plan.history
                .push(change(HistoryAction::Assign, None).into_row(at));
            plan.insert.push(row.clone());
            current.insert(
                entry.tag.id.clone(),
                (row, entry.tag.name.clone(), entry.category_name.clone()),
            );
        }
    }
    Ok(plan)
}

/// Rejects a request that names a tag twice for one customer, or two tags of one exclusive category.
fn check_request_shape(
    requests: &[CustomerAssignments],
    catalogue: &HashMap<String, CatalogueEntry>,
    field_prefix: &dyn Fn(usize) -> String,
) -> StoreResult<()> {
    for (index, (_, assignments)) in requests.iter().enumerate() {
        let mut tags_seen = HashMap::new();
        let mut exclusive_seen: HashMap<&str, usize> = HashMap::new();
        for (position, assignment) in assignments.iter().enumerate() {
            let field = format!("{}assignments[{position}].tag_id", field_prefix(index));
            if let Some(first) = tags_seen.insert(assignment.tag_id.as_str(), position) {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "tag {} is already given at assignments[{first}]",
                        assignment.tag_id
                    ),
                )
                .into());
            }
            if let Some(entry) = catalogue
                .get(&assignment.tag_id)
                .filter(|entry| entry.exclusive)
                && let Some(first) = exclusive_seen.insert(entry.tag.category_id.as_str(), position)
            {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "category {:?} is exclusive and assignments[{first}] already gives one of its tags",
                        entry.category_name
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}

fn customer_tag((row, tag_name, category_name): NamedAssignment) -> StoreResult<CustomerTag> {
    Ok(CustomerTag {
        source: row.source.parse().map_err(|e: String| {
            StoreError::Corrupt(format!("assignment of {}: {e}", row.tag_id))
        })?,
        tag_id: row.tag_id,
        tag_name,
        category_id: row.category_id,
        category_name,
        value: row.value,
        source_ref: row.source_ref,
        assigned_by: row.assigned_by,
        assigned_at: row.assigned_at,
        expires_at: row.expires_at,
    })
}

impl Store {
    /// Assigns tags to customers in one transaction: all of them, or none.
    /// `field_prefix(i)` names request entry `i` in errors (e.g. `entries[3].`).
    pub async fn assign_tags(
        &self,
        requests: &[CustomerAssignments],
        actor: &str,
        field_prefix: &(dyn Fn(usize) -> String + Sync),
    ) -> StoreResult<AssignOutcome> {
        let mut tag_ids: Vec<String> = requests
            .iter()
            .flat_map(|(_, assignments)| assignments.iter().map(|a| a.tag_id.clone()))
            .collect();
        tag_ids.sort_unstable();
        tag_ids.dedup();
        let mut customer_ids: Vec<String> = requests.iter().map(|(id, _)| id.clone()).collect();
        customer_ids.sort_unstable();
        customer_ids.dedup();
        let mut customer_fields: HashMap<&str, String> = HashMap::new();
        for (index, (customer_id, _)) in requests.iter().enumerate() {
            customer_fields
                .entry(customer_id.as_str())
                .or_insert_with(|| format!("{}customer_id", field_prefix(index)));
        }
        if customer_ids.len() != requests.len() {
            let mut seen = BTreeSet::new();
            if let Some(index) = requests.iter().position(|(id, _)| !seen.insert(id)) {
                return Err(DomainError::invalid(
                    format!("{}customer_id", field_prefix(index)),
                    "this customer already has an entry earlier in the request; merge them",
                )
                .into());
            }
        }
        write_transaction!(self, |conn| {
            // Lock first: everything read after this sees the last writer's commit.
            conn.require_customers(&customer_ids, &customer_fields)
                .await?;
            let catalogue = conn.catalogue(&tag_ids).await?;
            check_request_shape(requests, &catalogue, field_prefix)?;
            let exclusive_categories: Vec<String> = catalogue
                .values()
                .filter(|entry| entry.exclusive)
                .map(|entry| entry.tag.category_id.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let existing = conn
                .existing_assignments(&customer_ids, &tag_ids, &exclusive_categories)
                .await?;
            let plan =
                plan_assignments(requests, &catalogue, existing, actor, field_prefix, now())?;
            conn.apply(plan).await
        })
    }

    /// Applies independent single-customer calls, each for a different customer, in one
    /// transaction, so they share one commit. A call that is invalid (unknown customer or
    /// tag, a bad value) gets its own error and writes nothing; the others still commit.
    /// Fails as a whole only when the transaction does.
    pub(crate) async fn assign_each(
        &self,
        calls: &[AssignCall],
    ) -> StoreResult<Vec<StoreResult<AssignOutcome>>> {
        let mut customer_ids: Vec<String> =
            calls.iter().map(|call| call.customer_id.clone()).collect();
        customer_ids.sort_unstable();
        customer_ids.dedup();
        if customer_ids.len() != calls.len() {
            // The plan treats each customer's assignments as one call.
            return Err(StoreError::Corrupt(
                "combined assignment calls must name distinct customers".to_owned(),
            ));
        }
        let mut tag_ids: Vec<String> = calls
            .iter()
            .flat_map(|call| call.assignments.iter().map(|a| a.tag_id.clone()))
            .collect();
        tag_ids.sort_unstable();
        tag_ids.dedup();
        write_transaction!(self, |conn| conn
            .assign_calls(&customer_ids, &tag_ids, calls, &HashSet::new())
            .await)
    }

    /// Removes tags from a customer; tags it does not hold are ignored.
    pub async fn remove_tags(
        &self,
        customer_id: &str,
        tag_ids: &[String],
        actor: &str,
    ) -> StoreResult<u64> {
        write_transaction!(self, |conn| {
            conn.require_customers(&[customer_id.to_owned()], &HashMap::new())
                .await?;
            let existing = conn
                .existing_assignments(&[customer_id.to_owned()], tag_ids, &[])
                .await?;
            let at = now();
            let mut history = Vec::with_capacity(existing.len());
            let mut pairs = Vec::with_capacity(existing.len());
            let mut removed = 0;
            for (row, tag_name, category_name) in &existing {
                let live = row.is_live(at);
                removed += u64::from(live);
                history.push(
                    Change {
                        customer_id,
                        tag_id: &row.tag_id,
                        tag_name,
                        category_name,
                        action: if live {
                            HistoryAction::Remove
                        } else {
                            HistoryAction::Expire
                        },
                        old_value: row.value.clone(),
                        new_value: None,
                        source: if live {
                            TagSource::Manual.as_str()
                        } else {
                            &row.source
                        },
                        source_ref: "",
                        actor: if live { actor } else { SYSTEM_ACTOR },
                    }
                    .into_row(at),
                );
                pairs.push((row.customer_id.clone(), row.tag_id.clone()));
            }
            conn.delete_pairs(&pairs).await?;
            conn.insert_history_rows(&history).await?;
            Ok(removed)
        })
    }

    /// The customer's unexpired tags, by category then tag name.
    pub async fn list_customer_tags(&self, customer_id: &str) -> StoreResult<Vec<CustomerTag>> {
        // One customer's tags: a point read, run without the blocking-pool hop.
        let rows: Vec<NamedAssignment> = crate::db::inline_sqlite(async {
            Ok::<_, StoreError>(with_conn!(self, |conn| {
                conn.require_customer(customer_id).await?;
                let at = now();
                customer_tags::table
                    .inner_join(tags::table.on(tags::id.eq(customer_tags::tag_id)))
                    .inner_join(categories::table.on(categories::id.eq(customer_tags::category_id)))
                    .filter(customer_tags::customer_id.eq(customer_id))
                    .filter(
                        customer_tags::expires_at
                            .is_null()
                            .or(customer_tags::expires_at.gt(at)),
                    )
                    .order((categories::name, tags::name))
                    .select((AssignmentRow::as_select(), tags::name, categories::name))
                    .load(conn)
                    .await?
            }))
        })
        .await?;
        rows.into_iter().map(customer_tag).collect()
    }

    /// The customer's tag history, newest first.
    pub async fn tag_history(
        &self,
        customer_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<HistoryEntry>> {
        let mut rows: Vec<HistoryRow> = with_conn!(self, |conn| {
            conn.require_customer(customer_id).await?;
            let mut query = tag_history::table
                .filter(tag_history::customer_id.eq(customer_id))
                .order(tag_history::id.desc())
                .limit(page_limit(page))
                .select(HistoryRow::as_select())
                .into_boxed();
            if let Some(before) = &page.after {
                query = query.filter(tag_history::id.lt(before.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows
                .into_iter()
                .map(HistoryRow::into_entry)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    /// Removes assignments whose expiry has passed, recording each in history.
    /// Returns how many expired.
    pub async fn expire_due(&self) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let expired = write_transaction!(self, |conn| {
                let at = now();
                let due_customers: Vec<String> = customer_tags::table
                    .select(customer_tags::customer_id)
                    .filter(customer_tags::expires_at.le(at))
                    .limit(EXPIRE_BATCH)
                    .load(conn)
                    .await?;
                if due_customers.is_empty() {
                    return Ok(0);
                }
                let customer_ids: Vec<String> = due_customers
                    .into_iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                // Lock first, then read again: a concurrent assignment may have renewed a row.
                for chunk in customer_ids.chunks(IN_CHUNK) {
                    conn.lock_customers(chunk).await?;
                }
                let mut history = Vec::new();
                let mut pairs = Vec::new();
                for chunk in customer_ids.chunks(IN_CHUNK) {
                    let rows: Vec<NamedAssignment> = customer_tags::table
                        .inner_join(tags::table.on(tags::id.eq(customer_tags::tag_id)))
                        .inner_join(
                            categories::table.on(categories::id.eq(customer_tags::category_id)),
                        )
                        .filter(ids_in(customer_tags::customer_id, chunk))
                        .filter(customer_tags::expires_at.le(at))
                        .select((AssignmentRow::as_select(), tags::name, categories::name))
                        .load(conn)
                        .await?;
                    for (row, tag_name, category_name) in &rows {
                        history.push(
                            Change {
                                customer_id: &row.customer_id,
                                tag_id: &row.tag_id,
                                tag_name,
                                category_name,
                                action: HistoryAction::Expire,
                                old_value: row.value.clone(),
                                new_value: None,
                                source: &row.source,
                                source_ref: &row.source_ref,
                                actor: SYSTEM_ACTOR,
                            }
                            .into_row(at),
                        );
                        pairs.push((row.customer_id.clone(), row.tag_id.clone()));
                    }
                }
                conn.delete_pairs(&pairs).await?;
                conn.insert_history_rows(&history).await?;
                Ok(pairs.len() as u64)
            })?;
            total += expired;
            if expired == 0 {
                return Ok(total);
            }
        }
    }
}
