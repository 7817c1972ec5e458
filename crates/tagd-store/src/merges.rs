//! Merges of duplicate customers and their undo.
//!
//! A merge is one transaction: the customers are locked in id order, the
//! survivor's fields and tags are decided by `tagd_core::merges`, every history,
//! purchase and interaction row of the others moves to the survivor, the others'
//! rows are removed (their ids then resolve to the survivor through
//! `merged_customers`), and `merges.snapshot` keeps everything an undo needs.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use tagd_core::customers::{Customer, CustomerFields, ExternalId, FieldSource};
use tagd_core::ids::new_id;
use tagd_core::merges::{
    HeldTag, SurvivorRule, check_merge_ids, choose_survivor, merge_fields, unmerge_fields,
};
use tagd_core::paging::{PageRequest, finish_page};
use tagd_core::tagging::{HistoryAction, TagSource};

use crate::customers::{CustomerQueries, fields_from_json, fields_json};
use crate::db::{
    BackendOps, BatchInsert, IN_CHUNK, MysqlConn, SqliteConn, now, removing_transaction, with_conn,
    write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::field_history::{ChangeOrigin, FieldHistoryRow, history_rows};
use crate::ids_in::ids_in;
use crate::schema::{
    categories, customer_field_history, customer_tags, customers, interactions, merged_customers,
    merges, purchase_items, purchases, tag_history, tags,
};
use crate::tagging::{AssignmentRow, HistoryRow};
use crate::tags::page_limit;
use crate::{Page, Store};

/// Snapshot bytes one multi-row INSERT of `merges` rows carries at most (MariaDB refuses
/// statements above `max_allowed_packet`, 16 MiB by default).
const SNAPSHOT_BYTES_PER_STATEMENT: usize = 4 << 20;
/// How far a chain of merges (A into B, B into C…) is followed before it is called corrupt.
const MAX_MERGE_CHAIN: usize = 64;

/// One merge as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRecord {
    pub id: String,
    pub survivor_id: String,
    /// The customers merged into the survivor (their ids now resolve to it).
    pub merged_ids: Vec<String>,
    pub actor: String,
    /// The dedupe job that made the merge; "" for an explicit merge.
    pub job_id: String,
    pub reason: String,
    pub created_at: NaiveDateTime,
    pub undone_at: Option<NaiveDateTime>,
    pub undone_by: String,
}

/// What to merge and on whose behalf.
#[derive(Debug, Clone)]
pub struct MergeRequest<'a> {
    /// The field path the ids came from, for errors ("customer_ids").
    pub field: &'a str,
    pub customer_ids: &'a [String],
    /// Who survives; `None` lets `rule` choose.
    pub survivor_id: Option<&'a str>,
    pub rule: SurvivorRule,
    pub actor: &'a str,
    pub job_id: &'a str,
    pub reason: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = merges, treat_none_as_default_value = false)]
pub(crate) struct MergeRow {
    id: String,
    survivor_id: String,
    merged_ids: String,
    actor: String,
    job_id: String,
    reason: String,
    snapshot: String,
    created_at: NaiveDateTime,
    undone_at: Option<NaiveDateTime>,
    undone_by: String,
}

impl MergeRow {
    fn into_record(self) -> StoreResult<MergeRecord> {
        let merged_ids = serde_json::from_str(&self.merged_ids)
            .map_err(|e| StoreError::Corrupt(format!("merge {}: merged_ids: {e}", self.id)))?;
        Ok(MergeRecord {
            id: self.id,
            survivor_id: self.survivor_id,
            merged_ids,
            actor: self.actor,
            job_id: self.job_id,
            reason: self.reason,
            created_at: self.created_at,
            undone_at: self.undone_at,
            undone_by: self.undone_by,
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = merged_customers)]
pub(crate) struct MergedCustomerRow {
    customer_id: String,
    merge_id: String,
    survivor_id: String,
}

/// A customer row as it was, in the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedCustomer {
    id: String,
    /// `customers::fields_json` form.
    fields: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl SavedCustomer {
    fn of(customer: &Customer) -> Self {
        Self {
            id: customer.id.clone(),
            fields: fields_json(&customer.fields),
            created_at: customer.created_at,
            updated_at: customer.updated_at,
        }
    }

    fn restore(&self) -> StoreResult<Customer> {
        Ok(Customer {
            id: self.id.clone(),
            fields: fields_from_json(&self.fields)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The rows of one merged customer that moved to the survivor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct MovedRows {
    history: Vec<String>,
    purchases: Vec<String>,
    interactions: Vec<String>,
    field_history: Vec<String>,
}

/// Everything an undo needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    survivor_before: SavedCustomer,
    survivor_after: SavedCustomer,
    merged: Vec<SavedCustomer>,
    /// Every assignment row (live or expired) of every customer of the merge, as it was.
    tags_before: Vec<AssignmentRow>,
    /// The survivor's assignment rows right after the merge.
    survivor_tags_after: Vec<AssignmentRow>,
    /// Per merged customer id.
    moved: BTreeMap<String, MovedRows>,
}

/// An assignment with the names and category rule a merge needs.
pub(crate) struct HeldRow {
    row: AssignmentRow,
    tag_name: String,
    category_name: String,
    exclusive: bool,
}

/// What a merge batch reads before it plans: which of its customers exist (locked,
/// on MySQL), their rows, and every tag they hold.
pub(crate) struct BatchReads {
    existing: HashSet<String>,
    customers: HashMap<String, Customer>,
    held: HashMap<String, Vec<HeldRow>>,
}

/// One cluster's merge as decided before anything is written: what the survivor becomes,
/// the history rows that say so, and the snapshot's parts (the moved row ids are added by
/// the batch's reads).
struct MergePlan {
    merge_id: String,
    survivor: Customer,
    after: Customer,
    others: Vec<Customer>,
    merged_ids: Vec<String>,
    tags_before: Vec<AssignmentRow>,
    survivor_tags_after: Vec<AssignmentRow>,
    history: Vec<HistoryRow>,
    field_changes: Vec<FieldHistoryRow>,
    moved: BTreeMap<String, MovedRows>,
    actor: String,
    job_id: String,
    reason: String,
    at: NaiveDateTime,
}

impl MergePlan {
    /// The `merges` row, with the snapshot an exact undo needs.
    fn into_row(self) -> StoreResult<MergeRow> {
        let snapshot = Snapshot {
            survivor_before: SavedCustomer::of(&self.survivor),
            survivor_after: SavedCustomer::of(&self.after),
            merged: self.others.iter().map(SavedCustomer::of).collect(),
            tags_before: self.tags_before,
            survivor_tags_after: self.survivor_tags_after,
            moved: self.moved,
        };
        Ok(MergeRow {
            id: self.merge_id,
            survivor_id: self.survivor.id,
            merged_ids: json(&self.merged_ids)?,
            actor: self.actor,
            job_id: self.job_id,
            reason: self.reason,
            snapshot: json(&snapshot)?,
            created_at: self.at,
            undone_at: None,
            undone_by: String::new(),
        })
    }
}

/// Decides one merge (no I/O): `customers` are the cluster's customers in id order, `held`
/// their assignment rows (live or expired) in (customer, tag) order.
fn plan_merge(
    request: &MergeRequest<'_>,
    mut customers: Vec<Customer>,
    held: Vec<HeldRow>,
    at: NaiveDateTime,
) -> MergePlan {
    let survivor_index = match request.survivor_id.filter(|s| !s.is_empty()) {
        Some(chosen) => customers
            .iter()
            .position(|c| c.id == chosen)
            .unwrap_or_default(),
        None => choose_survivor(&customers, request.rule),
    };
    let survivor = customers.remove(survivor_index);
    let others = customers;
    let merged_ids: Vec<String> = others.iter().map(|c| c.id.clone()).collect();
    let merge_id = new_id();

    // Tags: the survivor keeps the newest of each tag, one per exclusive category.
    let live: Vec<&HeldRow> = held
        .iter()
        .filter(|h| h.row.expires_at.is_none_or(|expiry| expiry > at))
        .collect();
    let choice: Vec<HeldTag> = live
        .iter()
        .map(|h| HeldTag {
            customer_id: h.row.customer_id.clone(),
            tag_id: h.row.tag_id.clone(),
            category_id: h.row.category_id.clone(),
            exclusive: h.exclusive,
            assigned_at: h.row.assigned_at,
        })
        .collect();
    let kept: Vec<usize> = tagd_core::merges::surviving_tags(&choice, &survivor.id);
    let mut history = Vec::new();
    let history_row = |held: &HeldRow,
                       action: HistoryAction,
                       old_value: Option<String>,
                       new_value: Option<String>| HistoryRow {
        id: new_id(),
        customer_id: survivor.id.clone(),
        tag_id: held.row.tag_id.clone(),
        tag_name: held.tag_name.clone(),
        category_name: held.category_name.clone(),
        action: action.as_str().to_owned(),
        old_value,
        new_value,
        source: TagSource::Merge.as_str().to_owned(),
        source_ref: merge_id.clone(),
        actor: request.actor.to_owned(),
        created_at: at,
    };
    // The survivor's rows after the merge, by tag: its own (expired ones included,
    // the sweeper owns those), with losers dropped and winners from others moved in.
    let mut survivor_rows: BTreeMap<String, AssignmentRow> = held
        .iter()
        .filter(|h| h.row.customer_id == survivor.id)
        .map(|h| (h.row.tag_id.clone(), h.row.clone()))
        .collect();
    let survivor_live: HashMap<&str, &HeldRow> = live
        .iter()
        .filter(|h| h.row.customer_id == survivor.id)
        .map(|h| (h.row.tag_id.as_str(), *h))
        .collect();
    for (index, held) in live.iter().enumerate() {
        let is_kept = kept.binary_search(&index).is_ok();
        let own = held.row.customer_id == survivor.id;
        match (is_kept, own) {
            (true, true) => {}
            (true, false) => {
                let mut row = held.row.clone();
                row.customer_id = survivor.id.clone();
                match survivor_live.get(held.row.tag_id.as_str()) {
                    Some(mine) if mine.row.value != row.value => {
                        history.push(history_row(
                            held,
                            HistoryAction::Change,
                            mine.row.value.clone(),
                            row.value.clone(),
                        ));
                    }
                    Some(_) => {}
                    None => history.push(history_row(
                        held,
                        HistoryAction::Assign,
                        None,
                        row.value.clone(),
                    )),
                }
                survivor_rows.insert(row.tag_id.clone(), row);
            }
            (false, own) => {
                let superseded_by_same_tag = live.iter().enumerate().any(|(i, other)| {
                    other.row.tag_id == held.row.tag_id && kept.binary_search(&i).is_ok()
                });
                if own && !superseded_by_same_tag {
                    survivor_rows.remove(&held.row.tag_id);
                }
                if !superseded_by_same_tag {
                    // Lost to another tag of an exclusive category.
                    history.push(history_row(
                        held,
                        HistoryAction::Replace,
                        held.row.value.clone(),
                        None,
                    ));
                }
            }
        }
    }
    let survivor_tags_after: Vec<AssignmentRow> = survivor_rows.into_values().collect();

    let mut after = survivor.clone();
    let other_refs: Vec<&Customer> = others.iter().collect();
    after.fields = merge_fields(&survivor, &other_refs);
    after.updated_at = at;
    // The survivor's fields the merge filled or extended, with their values before.
    let field_changes: Vec<FieldHistoryRow> = history_rows(
        &survivor.id,
        after.fields.changes_since(&survivor.fields),
        ChangeOrigin {
            source: FieldSource::Merge,
            source_ref: &merge_id,
            actor: request.actor,
            at,
        },
    )
    .collect();
    MergePlan {
        moved: merged_ids
            .iter()
            .map(|id| (id.clone(), MovedRows::default()))
            .collect(),
        merge_id,
        tags_before: held.into_iter().map(|h| h.row).collect(),
        survivor_tags_after,
        history,
        field_changes,
        merged_ids,
        survivor,
        after,
        others,
        actor: request.actor.to_owned(),
        job_id: request.job_id.to_owned(),
        reason: request.reason.to_owned(),
        at,
    }
}

/// Time spent in each step of a merge batch, logged at debug level
/// (`TAGD_LOG_LEVEL=info,tagd_store::merges=debug`): where a dedupe run's
/// merge time goes.
struct Steps {
    last: std::time::Instant,
    spent: Vec<(&'static str, std::time::Duration)>,
}

impl Steps {
    fn start() -> Self {
        Self {
            last: std::time::Instant::now(),
            spent: Vec::new(),
        }
    }

    /// Ends `step` (begun when the previous one ended).
    fn done(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.spent.push((step, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, (step, spent)) in self.spent.iter().enumerate() {
            let separator = if index == 0 { "" } else { " " };
            write!(f, "{separator}{step}={:.1}ms", spent.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

/// Moves the rows of `$table` that belong to the merged-away ids `$ids` to each one's
/// survivor, read from the `merged_customers` rows the batch wrote just before: one
/// statement for a whole batch of merges instead of one per merge.
macro_rules! move_to_survivors {
    ($conn:expr, $table:ident, $ids:expr) => {
        diesel::update($table::table.filter(ids_in($table::customer_id, $ids)))
            .set(
                $table::customer_id.eq(merged_customers::table
                    .filter(merged_customers::customer_id.eq($table::customer_id))
                    .select(merged_customers::survivor_id)
                    .single_value()
                    .assume_not_null()),
            )
            .execute($conn)
            .await?
    };
}

/// Merge queries, written once and compiled for each backend's connection.
pub(crate) trait MergeQueries {
    /// The merge that took `id` away and the customer it resolves to now (following later merges).
    async fn merged_into(&mut self, id: &str) -> StoreResult<Option<(String, String)>>;
    /// Merges inside the caller's transaction (locks, checks, then `merge_locked`).
    async fn merge(&mut self, request: &MergeRequest<'_>) -> StoreResult<MergeRecord>;
    /// Locks (on MySQL) and reads the customers `ids` (sorted, each once) and their tags.
    async fn read_batch(&mut self, ids: &[String]) -> StoreResult<BatchReads>;
    /// Merges a batch of disjoint clusters from `reads` (made for exactly their
    /// customers): each cluster with a customer gone is answered with its error, the
    /// others are merged by [`MergeQueries::merge_locked`].
    async fn merge_read_batch(
        &mut self,
        requests: &[MergeRequest<'_>],
        reads: BatchReads,
    ) -> StoreResult<Vec<StoreResult<MergeRecord>>>;
    /// Merges disjoint clusters whose customers the caller locked and found in `reads`,
    /// set-based: a few statements per table for the whole batch, whatever its size. A
    /// customer named by two clusters fails the batch.
    async fn merge_locked(
        &mut self,
        requests: &[&MergeRequest<'_>],
        reads: BatchReads,
    ) -> StoreResult<Vec<MergeRecord>>;
    /// Every assignment (live or expired) of these customers, with names and category rules.
    async fn held_tags(&mut self, ids: &[String]) -> StoreResult<Vec<HeldRow>>;
    /// Undoes a merge inside the caller's transaction.
    async fn unmerge(&mut self, merge_id: &str, actor: &str) -> StoreResult<MergeRecord>;
}

macro_rules! merge_queries {
    ($conn:ty) => {
        impl MergeQueries for $conn {
            async fn merged_into(&mut self, id: &str) -> StoreResult<Option<(String, String)>> {
                let mut current = id.to_owned();
                let mut first_merge = None;
                for _ in 0..MAX_MERGE_CHAIN {
                    let next: Option<(String, String)> = merged_customers::table
                        .find(&current)
                        .select((merged_customers::merge_id, merged_customers::survivor_id))
                        .get_result(self)
                        .await
                        .optional()?;
                    match next {
                        Some((merge_id, survivor)) => {
                            first_merge.get_or_insert(merge_id);
                            current = survivor;
                        }
                        None => return Ok(first_merge.map(|merge_id| (merge_id, current))),
                    }
                }
                Err(StoreError::Corrupt(format!(
                    "customer {id}: merge chain longer than {MAX_MERGE_CHAIN}"
                )))
            }

            async fn merge(&mut self, request: &MergeRequest<'_>) -> StoreResult<MergeRecord> {
                let mut ids = request.customer_ids.to_vec();
                ids.sort();
                ids.dedup();
                let reads = self.read_batch(&ids).await?;
                // One merge is a batch of one: a single code path writes every merge.
                self.merge_read_batch(std::slice::from_ref(request), reads)
                    .await?
                    .pop()
                    .ok_or_else(|| StoreError::Corrupt("a merge wrote no record".to_owned()))?
            }

            async fn read_batch(&mut self, ids: &[String]) -> StoreResult<BatchReads> {
                let mut existing = HashSet::with_capacity(ids.len());
                for chunk in ids.chunks(IN_CHUNK) {
                    existing.extend(self.lock_customers(chunk).await?);
                }
                let customers = self
                    .load_customers(ids)
                    .await?
                    .into_iter()
                    .map(|customer| (customer.id.clone(), customer))
                    .collect();
                let mut held: HashMap<String, Vec<HeldRow>> = HashMap::new();
                for row in self.held_tags(ids).await? {
                    held.entry(row.row.customer_id.clone()).or_default().push(row);
                }
                Ok(BatchReads {
                    existing,
                    customers,
                    held,
                })
            }

            async fn merge_read_batch(
                &mut self,
                requests: &[MergeRequest<'_>],
                reads: BatchReads,
            ) -> StoreResult<Vec<StoreResult<MergeRecord>>> {
                let mut outcomes: Vec<Option<StoreResult<MergeRecord>>> =
                    Vec::with_capacity(requests.len());
                let mut ready = Vec::with_capacity(requests.len());
                for request in requests {
                    let missing = request
                        .customer_ids
                        .iter()
                        .enumerate()
                        .find(|(_, id)| !reads.existing.contains(*id));
                    outcomes.push(match missing {
                        Some((index, id)) => {
                            let field = format!("{}[{index}]", request.field);
                            Some(Err(match self.merged_into(id).await? {
                                Some((merge_id, survivor)) => StoreError::FailedPrecondition(format!(
                                    "{field}: customer {id} was already merged into {survivor} (merge {merge_id})"
                                )),
                                None => StoreError::not_found("customer", id).at(&field),
                            }))
                        }
                        None => {
                            ready.push(request);
                            None
                        }
                    });
                }
                let mut merged = self.merge_locked(&ready, reads).await?.into_iter();
                outcomes
                    .into_iter()
                    .map(|outcome| match outcome {
                        Some(refused) => Ok(refused),
                        None => merged.next().map(Ok).ok_or_else(|| {
                            StoreError::Corrupt(
                                "a merge batch wrote fewer records than merges".to_owned(),
                            )
                        }),
                    })
                    .collect()
            }

            async fn merge_locked(
                &mut self,
                requests: &[&MergeRequest<'_>],
                reads: BatchReads,
            ) -> StoreResult<Vec<MergeRecord>> {
                if requests.is_empty() {
                    return Ok(Vec::new());
                }
                let mut steps = Steps::start();
                let at = now();
                let mut all_ids: Vec<String> = requests
                    .iter()
                    .flat_map(|r| r.customer_ids.iter().cloned())
                    .collect();
                all_ids.sort_unstable();
                all_ids.dedup();

                let BatchReads {
                    mut customers,
                    held: mut held_by_customer,
                    ..
                } = reads;
                let mut plans = Vec::with_capacity(requests.len());
                for request in requests {
                    let mut ids = request.customer_ids.to_vec();
                    ids.sort();
                    let mut cluster = Vec::with_capacity(ids.len());
                    let mut held = Vec::new();
                    for id in &ids {
                        // Taken out of the map: a customer named by two clusters of one batch is caught here.
                        let customer = customers.remove(id).ok_or_else(|| {
                            StoreError::FailedPrecondition(format!(
                                "customer {id} is in two merges of one batch, or was not read"
                            ))
                        })?;
                        cluster.push(customer);
                        held.extend(held_by_customer.remove(id).unwrap_or_default());
                    }
                    plans.push(plan_merge(request, cluster, held, at));
                }
                steps.done("plan");

                // The rows that move, per merged customer, for the snapshots: one read per table and chunk.
                let owner: HashMap<String, usize> = plans
                    .iter()
                    .enumerate()
                    .flat_map(|(index, plan)| plan.merged_ids.iter().map(move |id| (id.clone(), index)))
                    .collect();
                let mut merged_ids: Vec<String> = owner.keys().cloned().collect();
                merged_ids.sort_unstable();
                let mut moved = |rows: Vec<(String, String)>, pick: fn(&mut MovedRows) -> &mut Vec<String>| {
                    for (id, customer) in rows {
                        if let Some(&index) = owner.get(&customer) {
                            pick(plans[index].moved.entry(customer).or_default()).push(id);
                        }
                    }
                };
                for chunk in merged_ids.chunks(IN_CHUNK) {
                    moved(
                        tag_history::table
                            .filter(ids_in(tag_history::customer_id, chunk))
                            .select((tag_history::id, tag_history::customer_id))
                            .load(self)
                            .await?,
                        |m| &mut m.history,
                    );
                    moved(
                        purchases::table
                            .filter(ids_in(purchases::customer_id, chunk))
                            .select((purchases::id, purchases::customer_id))
                            .load(self)
                            .await?,
                        |m| &mut m.purchases,
                    );
                    moved(
                        interactions::table
                            .filter(ids_in(interactions::customer_id, chunk))
                            .select((interactions::id, interactions::customer_id))
                            .load(self)
                            .await?,
                        |m| &mut m.interactions,
                    );
                    moved(
                        customer_field_history::table
                            .filter(ids_in(customer_field_history::customer_id, chunk))
                            .select((customer_field_history::id, customer_field_history::customer_id))
                            .load(self)
                            .await?,
                        |m| &mut m.field_history,
                    );
                }
                steps.done("read_moved");

                // What the writes need, taken from the plans before they go to be serialised.
                let redirects: Vec<MergedCustomerRow> = plans
                    .iter()
                    .flat_map(|plan| {
                        plan.merged_ids.iter().map(|id| MergedCustomerRow {
                            customer_id: id.clone(),
                            merge_id: plan.merge_id.clone(),
                            survivor_id: plan.survivor.id.clone(),
                        })
                    })
                    .collect();
                let field_changes: Vec<FieldHistoryRow> = plans
                    .iter()
                    .flat_map(|plan| plan.field_changes.iter().cloned())
                    .collect();
                let tags_after: Vec<AssignmentRow> = plans
                    .iter()
                    .flat_map(|plan| plan.survivor_tags_after.iter().cloned())
                    .collect();
                let history: Vec<HistoryRow> = plans
                    .iter()
                    .flat_map(|plan| plan.history.iter().cloned())
                    .collect();
                let afters: Vec<Customer> = plans.iter().map(|plan| plan.after.clone()).collect();
                let befores: HashMap<String, CustomerFields> = plans
                    .iter()
                    .map(|plan| (plan.survivor.id.clone(), plan.survivor.fields.clone()))
                    .collect();
                // The snapshots (megabytes of JSON per batch) are written on another thread
                // while this one runs the statements below.
                let snapshots = tokio::task::spawn_blocking(move || {
                    plans
                        .into_iter()
                        .map(MergePlan::into_row)
                        .collect::<StoreResult<Vec<MergeRow>>>()
                });

                // Writes, each one statement (per chunk or bind limit) for the whole batch.
                // The redirects go first: the moves below read each merged id's survivor from them.
                self.insert_merged_customer_rows(&redirects).await?;
                for chunk in merged_ids.chunks(IN_CHUNK) {
                    move_to_survivors!(self, tag_history, chunk);
                    move_to_survivors!(self, customer_field_history, chunk);
                    move_to_survivors!(self, purchases, chunk);
                    move_to_survivors!(self, purchase_items, chunk);
                    move_to_survivors!(self, interactions, chunk);
                }
                steps.done("redirect_and_move");
                self.insert_field_history_rows(&field_changes).await?;
                for chunk in all_ids.chunks(IN_CHUNK) {
                    diesel::delete(customer_tags::table.filter(ids_in(customer_tags::customer_id, chunk)))
                        .execute(self)
                        .await?;
                }
                self.insert_assignment_rows(&tags_after).await?;
                self.insert_history_rows(&history).await?;
                steps.done("rewrite_tags");
                // The others' identities go first: the survivors take them over.
                self.delete_children(&merged_ids).await?;
                steps.done("delete_merged_children");
                for chunk in merged_ids.chunks(IN_CHUNK) {
                    diesel::delete(customers::table.filter(ids_in(customers::id, chunk)))
                        .execute(self)
                        .await?;
                }
                steps.done("delete_merged");
                self.replace_customers(&afters, &befores).await?;
                steps.done("replace_customers");
                // A panic while serialising is a bug, raised here as if it had run inline; a
                // task cancelled instead of run means the runtime is closing.
                let rows: Vec<MergeRow> = match snapshots.await {
                    Ok(rows) => rows?,
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(_) => return Err(StoreError::ShuttingDown),
                };
                // Snapshots can be large (a cluster of a thousand customers is one row of
                // megabytes): a statement carries a bounded number of their bytes, well under
                // MySQL's max_allowed_packet, however the batch is made up.
                let mut start = 0;
                while start < rows.len() {
                    let mut end = start;
                    let mut bytes = 0;
                    while end < rows.len() && (end == start || bytes + rows[end].snapshot.len() <= SNAPSHOT_BYTES_PER_STATEMENT) {
                        bytes += rows[end].snapshot.len();
                        end += 1;
                    }
                    self.insert_merge_rows(&rows[start..end]).await?;
                    start = end;
                }
                steps.done("insert_snapshots");
                tracing::debug!(
                    merges = rows.len(),
                    customers = all_ids.len(),
                    %steps,
                    "merge batch written"
                );
                rows.into_iter().map(MergeRow::into_record).collect()
            }

            async fn held_tags(&mut self, ids: &[String]) -> StoreResult<Vec<HeldRow>> {
                let mut held = Vec::new();
                for chunk in ids.chunks(IN_CHUNK) {
                    // Their tags held shared until the commit, as every writer of assignments
                    // does: a forced delete of one either waits for the merge or has removed
                    // its rows already, so the merge never writes a row of a deleted tag.
                    let tag_ids: Vec<String> = customer_tags::table
                        .filter(ids_in(customer_tags::customer_id, chunk))
                        .select(customer_tags::tag_id)
                        .distinct()
                        .order(customer_tags::tag_id)
                        .load(self)
                        .await?;
                    for tag_chunk in tag_ids.chunks(IN_CHUNK) {
                        self.share_lock_tags(tag_chunk).await?;
                    }
                    let rows: Vec<(AssignmentRow, String, String, bool)> = customer_tags::table
                        .inner_join(tags::table.on(tags::id.eq(customer_tags::tag_id)))
                        .inner_join(
                            categories::table.on(categories::id.eq(customer_tags::category_id)),
                        )
                        .filter(ids_in(customer_tags::customer_id, chunk))
                        .order((customer_tags::customer_id, customer_tags::tag_id))
                        .select((
                            AssignmentRow::as_select(),
                            tags::name,
                            categories::name,
                            categories::is_exclusive,
                        ))
                        .load(self)
                        .await?;
                    held.extend(rows.into_iter().map(
                        |(row, tag_name, category_name, exclusive)| HeldRow {
                            row,
                            tag_name,
                            category_name,
                            exclusive,
                        },
                    ));
                }
                Ok(held)
            }

            async fn unmerge(&mut self, merge_id: &str, actor: &str) -> StoreResult<MergeRecord> {
                let row: MergeRow = merges::table
                    .find(merge_id)
                    .select(MergeRow::as_select())
                    .get_result(self)
                    .await
                    .optional()?
                    .ok_or_else(|| StoreError::not_found("merge", merge_id).at("merge_id"))?;
                if let Some(undone_at) = row.undone_at {
                    return Err(StoreError::FailedPrecondition(format!(
                        "merge {merge_id} was already undone at {undone_at} by {:?}",
                        row.undone_by
                    )));
                }
                let snapshot: Snapshot = serde_json::from_str(&row.snapshot)
                    .map_err(|e| StoreError::Corrupt(format!("merge {merge_id}: snapshot: {e}")))?;
                let survivor_id = row.survivor_id.clone();
                if self.lock_customers(std::slice::from_ref(&survivor_id)).await?.is_empty() {
                    return Err(match self.merged_into(&survivor_id).await? {
                        Some((later, now_in)) => StoreError::FailedPrecondition(format!(
                            "customer {survivor_id} was merged into {now_in} by merge {later} after this merge; undo merge {later} first"
                        )),
                        None => StoreError::FailedPrecondition(format!(
                            "customer {survivor_id}, the survivor of merge {merge_id}, was deleted since; there is nothing to undo the merge from"
                        )),
                    });
                }
                let current = self.load_customer(&survivor_id).await?;
                let before = snapshot.survivor_before.restore()?;
                let after = snapshot.survivor_after.restore()?;
                let mut restored = current.clone();
                restored.fields = unmerge_fields(&before.fields, &after.fields, &current.fields);
                if current.updated_at == after.updated_at && restored.fields == before.fields {
                    restored.updated_at = before.updated_at;
                } else {
                    restored.updated_at = now();
                }
                let merged: Vec<Customer> = snapshot
                    .merged
                    .iter()
                    .map(SavedCustomer::restore)
                    .collect::<StoreResult<_>>()?;
                // The identities go back to their owners; one taken since by a third customer blocks the undo.
                let wanted: Vec<&ExternalId> =
                    merged.iter().flat_map(|c| c.fields.external_ids.iter()).collect();
                let holders = self.external_id_holders(&wanted).await?;
                for (id, holder) in &holders {
                    if *holder != survivor_id {
                        return Err(StoreError::FailedPrecondition(format!(
                            "{}:{} of a merged customer now belongs to customer {holder}; the merge cannot be undone while it does",
                            id.channel, id.external_id
                        )));
                    }
                }
                let survivor_fields = HashMap::from([(survivor_id.clone(), current.fields.clone())]);
                self.rewrite_customers(std::slice::from_ref(&restored), &survivor_fields)
                    .await?;
                self.insert_customers(&merged).await?;

                // Tags: each tag the merge changed on the survivor goes back, unless it changed since.
                let current_tags: BTreeMap<String, AssignmentRow> = customer_tags::table
                    .filter(customer_tags::customer_id.eq(&survivor_id))
                    .select(AssignmentRow::as_select())
                    .load(self)
                    .await?
                    .into_iter()
                    .map(|row| (row.tag_id.clone(), row))
                    .collect();
                let before_tags: BTreeMap<&str, &AssignmentRow> = snapshot
                    .tags_before
                    .iter()
                    .filter(|r| r.customer_id == survivor_id)
                    .map(|r| (r.tag_id.as_str(), r))
                    .collect();
                let after_tags: BTreeMap<&str, &AssignmentRow> = snapshot
                    .survivor_tags_after
                    .iter()
                    .map(|r| (r.tag_id.as_str(), r))
                    .collect();
                let mut touched: Vec<&str> = before_tags.keys().chain(after_tags.keys()).copied().collect();
                touched.sort_unstable();
                touched.dedup();
                let mut remove = Vec::new();
                let mut restore = Vec::new();
                for tag_id in touched {
                    let was = before_tags.get(tag_id).copied();
                    let became = after_tags.get(tag_id).copied();
                    if was == became || current_tags.get(tag_id) != became {
                        continue;
                    }
                    if became.is_some() {
                        remove.push(tag_id.to_owned());
                    }
                    if let Some(was) = was {
                        restore.push(was.clone());
                    }
                }
                for chunk in remove.chunks(IN_CHUNK) {
                    diesel::delete(
                        customer_tags::table
                            .filter(customer_tags::customer_id.eq(&survivor_id))
                            .filter(ids_in(customer_tags::tag_id, chunk)),
                    )
                    .execute(self)
                    .await?;
                }
                // A restored tag must not sit beside a newer one of its exclusive category,
                // and a tag deleted since stays gone.
                let categories_of_restore: Vec<String> =
                    restore.iter().map(|r| r.category_id.clone()).collect();
                let exclusive: HashSet<String> = categories::table
                    .filter(categories::id.eq_any(&categories_of_restore))
                    .filter(categories::is_exclusive.eq(true))
                    .select(categories::id)
                    .load::<String>(self)
                    .await?
                    .into_iter()
                    .collect();
                restore.retain(|was| {
                    !exclusive.contains(&was.category_id)
                        || !current_tags.values().any(|held| {
                            held.category_id == was.category_id && !remove.contains(&held.tag_id)
                        })
                });
                restore.extend(
                    snapshot
                        .tags_before
                        .iter()
                        .filter(|r| r.customer_id != survivor_id)
                        .cloned(),
                );
                let tag_ids: Vec<String> = restore.iter().map(|r| r.tag_id.clone()).collect();
                let mut existing_tags = HashSet::new();
                for chunk in tag_ids.chunks(IN_CHUNK) {
                    self.share_lock_tags(chunk).await?;
                    let found: Vec<String> = tags::table
                        .filter(ids_in(tags::id, chunk))
                        .select(tags::id)
                        .load(self)
                        .await?;
                    existing_tags.extend(found);
                }
                restore.retain(|row| existing_tags.contains(&row.tag_id));
                self.insert_assignment_rows(&restore).await?;

                for (owner, rows) in &snapshot.moved {
                    for chunk in rows.history.chunks(IN_CHUNK) {
                        diesel::update(tag_history::table.filter(ids_in(tag_history::id, chunk)))
                            .set(tag_history::customer_id.eq(owner))
                            .execute(self)
                            .await?;
                    }
                    for chunk in rows.purchases.chunks(IN_CHUNK) {
                        diesel::update(purchases::table.filter(ids_in(purchases::id, chunk)))
                            .set(purchases::customer_id.eq(owner))
                            .execute(self)
                            .await?;
                        diesel::update(
                            purchase_items::table.filter(ids_in(purchase_items::purchase_id, chunk)),
                        )
                        .set(purchase_items::customer_id.eq(owner))
                        .execute(self)
                        .await?;
                    }
                    for chunk in rows.field_history.chunks(IN_CHUNK) {
                        diesel::update(
                            customer_field_history::table
                                .filter(ids_in(customer_field_history::id, chunk)),
                        )
                        .set(customer_field_history::customer_id.eq(owner))
                        .execute(self)
                        .await?;
                    }
                    for chunk in rows.interactions.chunks(IN_CHUNK) {
                        diesel::update(interactions::table.filter(ids_in(interactions::id, chunk)))
                            .set(interactions::customer_id.eq(owner))
                            .execute(self)
                            .await?;
                    }
                }
                // The merge's own history entries go: the survivor's logs read as before the merge.
                diesel::delete(
                    customer_field_history::table
                        .filter(customer_field_history::source_ref.eq(merge_id))
                        .filter(customer_field_history::source.eq(FieldSource::Merge.as_str())),
                )
                .execute(self)
                .await?;
                diesel::delete(
                    tag_history::table
                        .filter(tag_history::source_ref.eq(merge_id))
                        .filter(tag_history::source.eq(TagSource::Merge.as_str())),
                )
                .execute(self)
                .await?;
                diesel::delete(
                    merged_customers::table.filter(merged_customers::merge_id.eq(merge_id)),
                )
                .execute(self)
                .await?;
                let undone_at = now();
                diesel::update(merges::table.find(merge_id))
                    .set((
                        merges::undone_at.eq(Some(undone_at)),
                        merges::undone_by.eq(actor),
                    ))
                    .execute(self)
                    .await?;
                let mut record = row.into_record()?;
                record.undone_at = Some(undone_at);
                actor.clone_into(&mut record.undone_by);
                Ok(record)
            }
        }
    };
}

merge_queries!(SqliteConn);
merge_queries!(MysqlConn);

fn json<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

/// Which merges `list_merges` returns.
#[derive(Debug, Clone, Default)]
pub struct MergeFilter {
    /// Merges whose survivor or merged customers include this id.
    pub customer_id: Option<String>,
    /// Merges a dedupe job made.
    pub job_id: Option<String>,
}

impl Store {
    /// Merges customers in one transaction (see the module docs).
    pub async fn merge_customers(&self, request: &MergeRequest<'_>) -> StoreResult<MergeRecord> {
        check_merge_ids(request.field, request.customer_ids, request.survivor_id)?;
        removing_transaction!(self, |conn| {
            let record = conn.merge(request).await?;
            Ok((record, request.customer_ids.to_vec()))
        })
    }

    /// Merges several disjoint clusters in one transaction (a dedupe run's batch: one commit
    /// and a few set-based statements per table instead of ~20 statements per cluster). Each
    /// cluster is merged whole or not at all: a cluster with a customer deleted or merged
    /// away since is answered with its error and left alone before anything is written. An
    /// error while merging (or a customer named by two clusters) fails the whole batch, and
    /// nothing of it is written; the caller may then merge cluster by cluster, so only the
    /// cluster at fault fails.
    pub async fn merge_batch(
        &self,
        requests: &[MergeRequest<'_>],
    ) -> StoreResult<Vec<StoreResult<MergeRecord>>> {
        for request in requests {
            check_merge_ids(request.field, request.customer_ids, request.survivor_id)?;
        }
        let mut all: Vec<String> = requests
            .iter()
            .flat_map(|r| r.customer_ids.iter().cloned())
            .collect();
        all.sort_unstable();
        all.dedup();
        let started = std::time::Instant::now();
        let outcomes = removing_transaction!(self, |conn| {
            let reads = conn.read_batch(&all).await?;
            tracing::debug!(
                millis = started.elapsed().as_secs_f64() * 1e3,
                "merge batch locked and read"
            );
            Ok((conn.merge_read_batch(requests, reads).await?, all))
        })?;
        tracing::debug!(
            millis = started.elapsed().as_secs_f64() * 1e3,
            "merge batch committed (the write lock's wait, locks, writes and commit)"
        );
        Ok(outcomes)
    }

    /// Undoes a merge: the merged customers come back with their own fields, tags, history,
    /// purchases and interactions; the survivor's fields and tags go back to what they were,
    /// except those changed since the merge (a later edit wins).
    pub async fn unmerge(&self, merge_id: &str, actor: &str) -> StoreResult<MergeRecord> {
        removing_transaction!(self, |conn| {
            let record = conn.unmerge(merge_id, actor).await?;
            let mut restored = record.merged_ids.clone();
            restored.push(record.survivor_id.clone());
            Ok((record, restored))
        })
    }

    pub async fn get_merge(&self, merge_id: &str) -> StoreResult<MergeRecord> {
        let row: Option<MergeRow> = with_conn!(self, |conn| {
            merges::table
                .find(merge_id)
                .select(MergeRow::as_select())
                .get_result(conn)
                .await
                .optional()?
        });
        row.ok_or_else(|| StoreError::not_found("merge", merge_id))?
            .into_record()
    }

    /// Merges newest first.
    pub async fn list_merges(
        &self,
        filter: &MergeFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<MergeRecord>> {
        let mut rows: Vec<MergeRow> = with_conn!(self, |conn| {
            let mut query = merges::table
                .select(MergeRow::as_select())
                .order(merges::id.desc())
                .limit(page_limit(page))
                .into_boxed();
            if let Some(before) = &page.after {
                query = query.filter(merges::id.lt(before.clone()));
            }
            if let Some(customer) = &filter.customer_id {
                // Ids are UUIDs: a substring of the JSON list matches only that id.
                query = query.filter(
                    merges::survivor_id
                        .eq(customer.clone())
                        .or(merges::merged_ids.like(format!("%\"{customer}\"%"))),
                );
            }
            if let Some(job) = &filter.job_id {
                query = query.filter(merges::job_id.eq(job.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows
                .into_iter()
                .map(MergeRow::into_record)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    /// Where a merged-away customer id leads: (the merge that took it, the customer it is part of now).
    pub async fn merged_into(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        Ok(with_conn!(self, |conn| conn.merged_into(id).await?))
    }
}
