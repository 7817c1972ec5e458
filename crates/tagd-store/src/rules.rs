//! Tag rules and their runs: the rule records, the claim that keeps a rule
//! from running twice at once (on any server over the same database), who
//! holds a rule's tag now, and one batch of a run applied in one transaction
//! — re-planned under the customers' locks, so a change made since the plan
//! was read is respected.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::ids::new_id;
use tagd_core::paging::{PageRequest, finish_page};
use tagd_core::rule_templates::TemplateTag;
use tagd_core::rules::{Holder, PlannedRule, RulePlan, RuleSpec};
use tagd_core::tagging::{Assignment, HistoryAction, TagSource};
use tagd_core::tags::Tag;
use tagd_core::text;

use crate::db::{
    BackendOps as _, IN_CHUNK, MysqlConn, SqliteConn, now, with_conn, write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::schema::{categories, customer_tags, rule_runs, tag_rules, tags};
use crate::tagging::{Change, TaggingQueries as _, plan_assignments};
use crate::tags::{CategoryRow, NewCategory, NewTag, TagRow, page_limit};
use crate::{Page, Store};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tag_rules, treat_none_as_default_value = false)]
struct RuleRow {
    id: String,
    name: String,
    name_key: String,
    description: String,
    tag_id: String,
    value: Option<String>,
    condition_text: String,
    interval_secs: Option<i64>,
    overrides_manual: bool,
    enabled: bool,
    template: String,
    created_by: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    next_run_at: Option<NaiveDateTime>,
    running_run_id: Option<String>,
    running_since: Option<NaiveDateTime>,
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tag_id: String,
    pub value: Option<String>,
    /// Canonical condition text.
    pub condition: String,
    pub interval_secs: Option<u64>,
    pub overrides_manual: bool,
    pub enabled: bool,
    /// The template that installed it ("" when written by hand).
    pub template: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub next_run_at: Option<NaiveDateTime>,
    /// The run holding the rule now, if any.
    pub running_run_id: Option<String>,
}

impl RuleRow {
    fn into_record(self) -> RuleRecord {
        RuleRecord {
            id: self.id,
            name: self.name,
            description: self.description,
            tag_id: self.tag_id,
            value: self.value,
            condition: self.condition_text,
            interval_secs: self.interval_secs.and_then(|secs| u64::try_from(secs).ok()),
            overrides_manual: self.overrides_manual,
            enabled: self.enabled,
            template: self.template,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            next_run_at: self.next_run_at,
            running_run_id: self.running_run_id,
        }
    }
}

/// The columns an update writes (`None`: left alone).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = tag_rules)]
struct RuleChanges {
    name: Option<String>,
    name_key: Option<String>,
    description: Option<String>,
    value: Option<Option<String>>,
    condition_text: Option<String>,
    interval_secs: Option<Option<i64>>,
    overrides_manual: Option<bool>,
    enabled: Option<bool>,
    next_run_at: Option<Option<NaiveDateTime>>,
    updated_at: NaiveDateTime,
}

/// What `UpdateRule` changes (`None`: kept). The condition is already checked and
/// printed canonically; the value is checked here against the rule's tag.
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub value: Option<String>,
    pub condition: Option<String>,
    pub interval_secs: Option<Option<u64>>,
    pub overrides_manual: Option<bool>,
    pub enabled: Option<bool>,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    Manual,
    Schedule,
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Manual => "manual",
            RunTrigger::Schedule => "schedule",
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
        }
    }
}

/// What a run counted and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub evaluated: u64,
    pub matched: u64,
    pub gained: u64,
    pub changed: u64,
    pub lost: u64,
    pub kept: u64,
    pub held_back: u64,
}

impl RunCounts {
    /// Adds what one applied batch changed.
    pub fn add_applied(&mut self, batch: &RunCounts) {
        self.gained += batch.gained;
        self.changed += batch.changed;
        self.lost += batch.lost;
        self.held_back += batch.held_back;
    }
}

/// One run of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRun {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub trigger: RunTrigger,
    pub actor: String,
    pub state: RunState,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub counts: RunCounts,
    pub error: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rule_runs, treat_none_as_default_value = false)]
struct RunRow {
    id: String,
    rule_id: String,
    rule_name: String,
    run_trigger: String,
    actor: String,
    state: String,
    started_at: NaiveDateTime,
    finished_at: Option<NaiveDateTime>,
    evaluated: i64,
    matched: i64,
    gained: i64,
    changed: i64,
    lost: i64,
    kept: i64,
    held_back: i64,
    error: String,
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn uncount(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl RunRow {
    fn from_run(run: &RuleRun) -> Self {
        Self {
            id: run.id.clone(),
            rule_id: run.rule_id.clone(),
            rule_name: run.rule_name.clone(),
            run_trigger: run.trigger.as_str().to_owned(),
            actor: run.actor.clone(),
            state: run.state.as_str().to_owned(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            evaluated: count(run.counts.evaluated),
            matched: count(run.counts.matched),
            gained: count(run.counts.gained),
            changed: count(run.counts.changed),
            lost: count(run.counts.lost),
            kept: count(run.counts.kept),
            held_back: count(run.counts.held_back),
            error: run.error.clone(),
        }
    }

    fn into_run(self) -> StoreResult<RuleRun> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("rule run {}: {what}", self.id));
        let trigger = match self.run_trigger.as_str() {
            "manual" => RunTrigger::Manual,
            "schedule" => RunTrigger::Schedule,
            _ => return Err(corrupt("unknown trigger")),
        };
        let state = match self.state.as_str() {
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            _ => return Err(corrupt("unknown state")),
        };
        Ok(RuleRun {
            trigger,
            state,
            counts: RunCounts {
                evaluated: uncount(self.evaluated),
                matched: uncount(self.matched),
                gained: uncount(self.gained),
                changed: uncount(self.changed),
                lost: uncount(self.lost),
                kept: uncount(self.kept),
                held_back: uncount(self.held_back),
            },
            id: self.id,
            rule_id: self.rule_id,
            rule_name: self.rule_name,
            actor: self.actor,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error,
        })
    }
}

/// A rule's tag with what a run needs to know of its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTarget {
    pub tag: Tag,
    pub category_name: String,
    pub exclusive: bool,
}

fn rule_not_found(id: &str) -> StoreError {
    StoreError::not_found("rule", id)
}

fn name_taken(name: &str) -> StoreError {
    StoreError::AlreadyExists(format!("a rule named {name:?} already exists"))
}

fn interval(secs: Option<u64>) -> Option<i64> {
    secs.map(count)
}

/// When a rule with `interval` runs next after `from`.
fn next_run(enabled: bool, interval: Option<u64>, from: NaiveDateTime) -> Option<NaiveDateTime> {
    let secs = i64::try_from(interval?).ok()?;
    enabled.then(|| from + Duration::seconds(secs))
}

/// The batch of a run: the customers it may change (sorted, distinct) and which of
/// them matched the condition when it was evaluated.
#[derive(Debug, Clone, Copy)]
pub struct RuleBatch<'a> {
    pub rule: &'a RuleRecord,
    pub run_id: &'a str,
    pub candidates: &'a [String],
    pub matching: &'a BTreeSet<String>,
    pub actor: &'a str,
}

/// Rule queries, written once and compiled for each backend's connection.
pub(crate) trait RuleQueries {
    /// The body of [`Store::apply_rule_batch`], for use inside a larger transaction.
    async fn apply_rule_batch_locked(&mut self, batch: &RuleBatch<'_>) -> StoreResult<RunCounts>;
}

macro_rules! rule_queries {
    ($conn:ty) => {
        impl RuleQueries for $conn {
            async fn apply_rule_batch_locked(
                &mut self,
                batch: &RuleBatch<'_>,
            ) -> StoreResult<RunCounts> {
                let rule = batch.rule;
                let mut found = Vec::with_capacity(batch.candidates.len());
                for chunk in batch.candidates.chunks(IN_CHUNK) {
                    found.extend(self.lock_customers(chunk).await?);
                }
                if !batch.run_id.is_empty() {
                    diesel::update(
                        tag_rules::table
                            .filter(tag_rules::id.eq(&rule.id))
                            .filter(tag_rules::running_run_id.eq(batch.run_id)),
                    )
                    .set(tag_rules::running_since.eq(now()))
                    .execute(self)
                    .await?;
                }
                if found.is_empty() {
                    return Ok(RunCounts::default());
                }
                let catalogue = self.catalogue(std::slice::from_ref(&rule.tag_id)).await?;
                let Some(entry) = catalogue.get(&rule.tag_id) else {
                    return Err(StoreError::FailedPrecondition(format!(
                        "rule {:?} sets tag {}, which no longer exists",
                        rule.name, rule.tag_id
                    )));
                };
                let categories = if entry.exclusive {
                    vec![entry.tag.category_id.clone()]
                } else {
                    Vec::new()
                };
                let existing = self
                    .existing_assignments(&found, std::slice::from_ref(&rule.tag_id), &categories)
                    .await?;
                let at = now();
                let holders: Vec<Holder> = existing
                    .iter()
                    .filter(|(row, _, _)| row.expires_at.is_none_or(|expiry| expiry > at))
                    .map(|(row, _, _)| {
                        Ok(Holder {
                            customer_id: row.customer_id.clone(),
                            tag_id: row.tag_id.clone(),
                            value: row.value.clone(),
                            source: row.source.parse().map_err(|e: String| {
                                StoreError::Corrupt(format!("assignment of {}: {e}", row.tag_id))
                            })?,
                            source_ref: row.source_ref.clone(),
                        })
                    })
                    .collect::<StoreResult<_>>()?;
                let matching: BTreeSet<String> = found
                    .iter()
                    .filter(|id| batch.matching.contains(*id))
                    .cloned()
                    .collect();
                let plan = RulePlan::compute(
                    PlannedRule {
                        id: &rule.id,
                        tag_id: &rule.tag_id,
                        value: rule.value.as_deref(),
                        overrides_manual: rule.overrides_manual,
                    },
                    &matching,
                    &holders,
                );
                let assignment = Assignment {
                    tag_id: rule.tag_id.clone(),
                    value: rule.value.clone().unwrap_or_default(),
                    source: TagSource::Rule,
                    source_ref: rule.id.clone(),
                    expires_at: None,
                };
                let requests: Vec<(String, Vec<Assignment>)> = plan
                    .gain
                    .iter()
                    .chain(&plan.change)
                    .map(|customer| (customer.clone(), vec![assignment.clone()]))
                    .collect();
                let writing: BTreeSet<&str> = requests.iter().map(|(id, _)| id.as_str()).collect();
                let relevant: Vec<_> = existing
                    .iter()
                    .filter(|(row, _, _)| writing.contains(row.customer_id.as_str()))
                    .cloned()
                    .collect();
                let no_prefix = |_: usize| String::new();
                let mut writes =
                    plan_assignments(&requests, &catalogue, relevant, batch.actor, &no_prefix, at)?;
                let losing: BTreeSet<&str> = plan.lose.iter().map(String::as_str).collect();
                for (row, tag_name, category_name) in &existing {
                    if row.tag_id == rule.tag_id && losing.contains(row.customer_id.as_str()) {
                        writes.push_removal(
                            (row.customer_id.clone(), row.tag_id.clone()),
                            Change {
                                customer_id: &row.customer_id,
                                tag_id: &row.tag_id,
                                tag_name,
                                category_name,
                                action: HistoryAction::Remove,
                                old_value: row.value.clone(),
                                new_value: None,
                                source: TagSource::Rule.as_str(),
                                source_ref: &rule.id,
                                actor: batch.actor,
                            }
                            .into_row(at),
                        );
                    }
                }
                self.apply(writes).await?;
                Ok(RunCounts {
                    gained: plan.gain.len() as u64,
                    changed: plan.change.len() as u64,
                    lost: plan.lose.len() as u64,
                    kept: plan.keep,
                    held_back: plan.held_back,
                    ..RunCounts::default()
                })
            }
        }
    };
}

rule_queries!(SqliteConn);
rule_queries!(MysqlConn);

impl Store {
    /// The tag a rule sets and its category; NOT_FOUND names `field`.
    pub async fn rule_target(&self, tag_id: &str, field: &str) -> StoreResult<RuleTarget> {
        let row: Option<(TagRow, String, bool)> = with_conn!(self, |conn| {
            tags::table
                .inner_join(categories::table.on(categories::id.eq(tags::category_id)))
                .filter(tags::id.eq(tag_id))
                .select((
                    TagRow::as_select(),
                    categories::name,
                    categories::is_exclusive,
                ))
                .first(conn)
                .await
                .optional()?
        });
        let (row, category_name, exclusive) =
            row.ok_or_else(|| StoreError::not_found("tag", tag_id).at(field))?;
        Ok(RuleTarget {
            tag: row.into_tag()?,
            category_name,
            exclusive,
        })
    }

    /// Creates a rule (its spec checked by `tagd-core`, its condition checked and printed
    /// canonically by the caller); the value is checked against the tag's type here.
    pub async fn create_rule(
        &self,
        spec: &RuleSpec,
        template: &str,
        created_by: &str,
    ) -> StoreResult<RuleRecord> {
        let target = self.rule_target(&spec.tag_id, "tag_id").await?;
        let value = target
            .tag
            .check_value("value", spec.value.as_deref().unwrap_or_default())?;
        let at = now();
        let row = RuleRow {
            id: new_id(),
            name: spec.name.clone(),
            name_key: text::key(&spec.name),
            description: spec.description.clone(),
            tag_id: spec.tag_id.clone(),
            value,
            condition_text: spec.condition.clone(),
            interval_secs: interval(spec.interval_secs),
            overrides_manual: spec.overrides_manual,
            enabled: spec.enabled,
            template: template.to_owned(),
            created_by: created_by.to_owned(),
            created_at: at,
            updated_at: at,
            next_run_at: next_run(spec.enabled, spec.interval_secs, at),
            running_run_id: None,
            running_since: None,
        };
        let inserted = &row;
        write_transaction!(self, |conn| {
            // Held shared until the commit: a concurrent DeleteTag waits, then sees this rule
            // and refuses; one that committed first leaves the tag missing here.
            if conn
                .share_lock_existing_tags(std::slice::from_ref(&inserted.tag_id))
                .await?
                .is_empty()
            {
                return Err(StoreError::not_found("tag", &inserted.tag_id).at("tag_id"));
            }
            let taken: i64 = tag_rules::table
                .filter(tag_rules::name_key.eq(&inserted.name_key))
                .count()
                .get_result(conn)
                .await?;
            if taken > 0 {
                return Err(name_taken(&inserted.name));
            }
            diesel::insert_into(tag_rules::table)
                .values(inserted)
                .execute(conn)
                .await?;
            Ok(())
        })?;
        Ok(row.into_record())
    }

    pub async fn get_rule(&self, id: &str) -> StoreResult<RuleRecord> {
        let row: Option<RuleRow> = with_conn!(self, |conn| {
            tag_rules::table
                .filter(tag_rules::id.eq(id))
                .select(RuleRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        Ok(row.ok_or_else(|| rule_not_found(id))?.into_record())
    }

    /// A rule by name (case-folded key), if there is one.
    pub async fn rule_named(&self, name: &str) -> StoreResult<Option<RuleRecord>> {
        let key = text::key(name);
        let row: Option<RuleRow> = with_conn!(self, |conn| {
            tag_rules::table
                .filter(tag_rules::name_key.eq(&key))
                .select(RuleRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        Ok(row.map(RuleRow::into_record))
    }

    /// Rules in id (creation) order, optionally only those setting `tag_id`.
    pub async fn list_rules(
        &self,
        page: &PageRequest,
        tag_id: Option<&str>,
    ) -> StoreResult<Page<RuleRecord>> {
        let mut rows: Vec<RuleRow> = with_conn!(self, |conn| {
            let mut query = tag_rules::table
                .select(RuleRow::as_select())
                .order(tag_rules::id)
                .limit(page_limit(page))
                .into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(tag_rules::id.gt(after.clone()));
            }
            if let Some(tag_id) = tag_id {
                query = query.filter(tag_rules::tag_id.eq(tag_id.to_owned()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows.into_iter().map(RuleRow::into_record).collect(),
            next_page_token,
        })
    }

    /// Every rule (conditions naming a segment are checked against these).
    pub async fn all_rules(&self) -> StoreResult<Vec<RuleRecord>> {
        let rows: Vec<RuleRow> = with_conn!(self, |conn| {
            tag_rules::table
                .select(RuleRow::as_select())
                .order(tag_rules::id)
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(RuleRow::into_record).collect())
    }

    /// Changes a rule; a new value is checked against its tag, a new interval or
    /// enabling moves the next scheduled run.
    pub async fn update_rule(&self, id: &str, patch: &RulePatch) -> StoreResult<RuleRecord> {
        let current = self.get_rule(id).await?;
        let value = match &patch.value {
            Some(raw) => Some(
                self.rule_target(&current.tag_id, "tag_id")
                    .await?
                    .tag
                    .check_value("value", raw)?,
            ),
            None => None,
        };
        let name_key = patch.name.as_deref().map(text::key);
        let at = now();
        let enabled = patch.enabled.unwrap_or(current.enabled);
        let interval_secs = patch.interval_secs.unwrap_or(current.interval_secs);
        let changes = RuleChanges {
            name: patch.name.clone(),
            name_key: name_key.clone(),
            description: patch.description.clone(),
            value,
            condition_text: patch.condition.clone(),
            interval_secs: patch.interval_secs.map(interval),
            overrides_manual: patch.overrides_manual,
            enabled: patch.enabled,
            next_run_at: (patch.interval_secs.is_some() || patch.enabled.is_some())
                .then(|| next_run(enabled, interval_secs, at)),
            updated_at: at,
        };
        let changes = &changes;
        write_transaction!(self, |conn| {
            if let (Some(name), Some(key)) = (&patch.name, &name_key) {
                let taken: i64 = tag_rules::table
                    .filter(tag_rules::name_key.eq(key))
                    .filter(tag_rules::id.ne(id))
                    .count()
                    .get_result(conn)
                    .await?;
                if taken > 0 {
                    return Err(name_taken(name));
                }
            }
            // Only the named columns are written, so two updates of different fields
            // never undo each other.
            let updated = diesel::update(tag_rules::table.filter(tag_rules::id.eq(id)))
                .set(changes)
                .execute(conn)
                .await?;
            if updated == 0 {
                return Err(rule_not_found(id));
            }
            Ok(())
        })?;
        self.get_rule(id).await
    }

    /// Deletes a rule, refused while it runs. With `remove_assignments` the tags it gave
    /// are removed first (history source = rule, the rule's id), a batch per
    /// transaction: a failure half-way leaves the rule in place to delete again.
    pub async fn delete_rule(
        &self,
        id: &str,
        remove_assignments: bool,
        actor: &str,
    ) -> StoreResult<u64> {
        let rule = self.get_rule(id).await?;
        if let Some(run) = &rule.running_run_id {
            return Err(StoreError::FailedPrecondition(format!(
                "rule {:?} is running (run {run}); delete it when the run ends",
                rule.name
            )));
        }
        let mut removed = 0;
        if remove_assignments {
            loop {
                let holders: Vec<String> = with_conn!(self, |conn| {
                    customer_tags::table
                        .filter(customer_tags::tag_id.eq(&rule.tag_id))
                        .filter(customer_tags::source.eq(TagSource::Rule.as_str()))
                        .filter(customer_tags::source_ref.eq(&rule.id))
                        .select(customer_tags::customer_id)
                        .order(customer_tags::customer_id)
                        .limit(i64::try_from(IN_CHUNK).unwrap_or(1_000))
                        .load(conn)
                        .await?
                });
                if holders.is_empty() {
                    break;
                }
                let batch = RuleBatch {
                    rule: &rule,
                    run_id: "",
                    candidates: &holders,
                    matching: &BTreeSet::new(),
                    actor,
                };
                let applied = self.apply_rule_batch(&batch).await?;
                if applied.lost == 0 {
                    // Nothing left that is the rule's own (e.g. expired rows): stop.
                    break;
                }
                removed += applied.lost;
            }
        }
        write_transaction!(self, |conn| {
            diesel::delete(tag_rules::table.filter(tag_rules::id.eq(id)))
                .execute(conn)
                .await?;
            Ok(())
        })?;
        Ok(removed)
    }

    /// Who holds the rule's tag now (and, in an exclusive category, a rival tag of it).
    pub async fn rule_holders(&self, target: &RuleTarget) -> StoreResult<Vec<Holder>> {
        type Row = (String, String, Option<String>, String, String);
        let at = now();
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let query = customer_tags::table
                .filter(
                    customer_tags::expires_at
                        .is_null()
                        .or(customer_tags::expires_at.gt(at)),
                )
                .select((
                    customer_tags::customer_id,
                    customer_tags::tag_id,
                    customer_tags::value,
                    customer_tags::source,
                    customer_tags::source_ref,
                ));
            if target.exclusive {
                query
                    .filter(customer_tags::category_id.eq(&target.tag.category_id))
                    .load(conn)
                    .await?
            } else {
                query
                    .filter(customer_tags::tag_id.eq(&target.tag.id))
                    .load(conn)
                    .await?
            }
        });
        rows.into_iter()
            .map(|(customer_id, tag_id, value, source, source_ref)| {
                Ok(Holder {
                    source: source.parse().map_err(|e: String| {
                        StoreError::Corrupt(format!("assignment of {tag_id}: {e}"))
                    })?,
                    customer_id,
                    tag_id,
                    value,
                    source_ref,
                })
            })
            .collect()
    }

    /// Applies one batch of a run in one transaction: locks the candidates, reads what
    /// they hold now, plans again with `tagd-core::rules` and writes the gains, changes
    /// (an exclusive category's rival replaced, with history) and losses. Also tells
    /// other servers the run is alive (the claim's heartbeat). Customers deleted since
    /// the plan are skipped.
    pub async fn apply_rule_batch(&self, batch: &RuleBatch<'_>) -> StoreResult<RunCounts> {
        write_transaction!(self, |conn| conn.apply_rule_batch_locked(batch).await)
    }

    /// Claims `rule` for a new run and records the run. Refused (FAILED_PRECONDITION,
    /// naming the run) while another run holds it — on any server — unless that run
    /// has shown no sign of life for `stale_after`, when it is recorded as failed.
    pub async fn claim_rule(
        &self,
        rule: &RuleRecord,
        trigger: RunTrigger,
        actor: &str,
        stale_after: Duration,
    ) -> StoreResult<RuleRun> {
        let run = RuleRun {
            id: new_id(),
            rule_id: rule.id.clone(),
            rule_name: rule.name.clone(),
            trigger,
            actor: actor.to_owned(),
            state: RunState::Running,
            started_at: now(),
            finished_at: None,
            counts: RunCounts::default(),
            error: String::new(),
        };
        let row = RunRow::from_run(&run);
        let at = run.started_at;
        let rule_id = rule.id.as_str();
        let stale_before = at - stale_after;
        write_transaction!(self, |conn| {
            let current: Option<(Option<String>, Option<NaiveDateTime>)> = tag_rules::table
                .filter(tag_rules::id.eq(rule_id))
                .select((tag_rules::running_run_id, tag_rules::running_since))
                .first(conn)
                .await
                .optional()?;
            let Some((running, _)) = current else {
                return Err(rule_not_found(rule_id));
            };
            let refused = || {
                StoreError::FailedPrecondition(format!(
                    "rule {:?} is already running (run {}, started by another call or the scheduler); a rule never runs twice at once",
                    rule.name,
                    running.as_deref().unwrap_or("on another server")
                ))
            };
            // One conditional UPDATE is the claim: of two servers claiming at once,
            // exactly one changes the row.
            let claimed = diesel::update(
                tag_rules::table.filter(tag_rules::id.eq(rule_id)).filter(
                    tag_rules::running_run_id
                        .is_null()
                        .or(tag_rules::running_since.lt(stale_before)),
                ),
            )
            .set((
                tag_rules::running_run_id.eq(Some(&row.id)),
                tag_rules::running_since.eq(Some(at)),
            ))
            .execute(conn)
            .await?;
            if claimed == 0 {
                return Err(refused());
            }
            if let Some(abandoned) = &running {
                diesel::update(rule_runs::table.filter(rule_runs::id.eq(abandoned)))
                    .set((
                        rule_runs::state.eq(RunState::Failed.as_str()),
                        rule_runs::finished_at.eq(Some(at)),
                        rule_runs::error.eq("abandoned: its server stopped showing progress"),
                    ))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(rule_runs::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(())
        })?;
        Ok(run)
    }

    /// Records how a run ended, frees the rule and schedules its next run.
    pub async fn finish_rule_run(&self, run: &RuleRun) -> StoreResult<()> {
        let row = RunRow::from_run(run);
        write_transaction!(self, |conn| {
            diesel::update(rule_runs::table.filter(rule_runs::id.eq(&row.id)))
                .set((
                    rule_runs::state.eq(&row.state),
                    rule_runs::finished_at.eq(row.finished_at),
                    rule_runs::evaluated.eq(row.evaluated),
                    rule_runs::matched.eq(row.matched),
                    rule_runs::gained.eq(row.gained),
                    rule_runs::changed.eq(row.changed),
                    rule_runs::lost.eq(row.lost),
                    rule_runs::kept.eq(row.kept),
                    rule_runs::held_back.eq(row.held_back),
                    rule_runs::error.eq(&row.error),
                ))
                .execute(conn)
                .await?;
            let rule: Option<(bool, Option<i64>)> = tag_rules::table
                .filter(tag_rules::id.eq(&row.rule_id))
                .select((tag_rules::enabled, tag_rules::interval_secs))
                .first(conn)
                .await
                .optional()?;
            if let Some((enabled, secs)) = rule {
                let next = next_run(
                    enabled,
                    secs.and_then(|secs| u64::try_from(secs).ok()),
                    now(),
                );
                diesel::update(
                    tag_rules::table
                        .filter(tag_rules::id.eq(&row.rule_id))
                        .filter(tag_rules::running_run_id.eq(&row.id)),
                )
                .set((
                    tag_rules::running_run_id.eq(None::<String>),
                    tag_rules::running_since.eq(None::<NaiveDateTime>),
                    tag_rules::next_run_at.eq(next),
                ))
                .execute(conn)
                .await?;
            }
            Ok(())
        })
    }

    /// Enabled rules whose next run is due at `at` and that no live run holds.
    pub async fn due_rules(&self, at: NaiveDateTime) -> StoreResult<Vec<RuleRecord>> {
        let rows: Vec<RuleRow> = with_conn!(self, |conn| {
            tag_rules::table
                .filter(tag_rules::enabled.eq(true))
                .filter(tag_rules::next_run_at.le(at))
                .select(RuleRow::as_select())
                .order(tag_rules::next_run_at)
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(RuleRow::into_record).collect())
    }

    /// A rule's runs, newest first.
    pub async fn list_rule_runs(
        &self,
        rule_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<RuleRun>> {
        let mut rows: Vec<RunRow> = with_conn!(self, |conn| {
            let mut query = rule_runs::table
                .filter(rule_runs::rule_id.eq(rule_id.to_owned()))
                .select(RunRow::as_select())
                .order(rule_runs::id.desc())
                .limit(page_limit(page))
                .into_boxed();
            if let Some(before) = &page.after {
                query = query.filter(rule_runs::id.lt(before.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows
                .into_iter()
                .map(RunRow::into_run)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    /// The latest run of each of these rules: two statements per 1,000 rules (the newest
    /// run id of each, then those runs), not one per rule.
    pub async fn last_rule_runs(
        &self,
        rule_ids: &[String],
    ) -> StoreResult<HashMap<String, RuleRun>> {
        let mut latest = HashMap::with_capacity(rule_ids.len());
        for chunk in rule_ids.chunks(IN_CHUNK) {
            let rows: Vec<RunRow> = with_conn!(self, |conn| {
                let newest: Vec<Option<String>> = rule_runs::table
                    .filter(ids_in(rule_runs::rule_id, chunk))
                    .group_by(rule_runs::rule_id)
                    .select(diesel::dsl::max(rule_runs::id))
                    .load(conn)
                    .await?;
                let newest: Vec<String> = newest.into_iter().flatten().collect();
                rule_runs::table
                    .filter(ids_in(rule_runs::id, &newest))
                    .select(RunRow::as_select())
                    .load(conn)
                    .await?
            });
            for row in rows {
                let run = row.into_run()?;
                latest.insert(run.rule_id.clone(), run);
            }
        }
        Ok(latest)
    }

    /// Per customer with an order in the last `days` at `at`: orders and amount (cents,
    /// currencies at face value as the metrics add them) in the window, and the time of the
    /// customer's last order in it. Added up here: `SUM` of a BIGINT is a DECIMAL on MySQL.
    pub async fn buyer_totals(&self, at: NaiveDateTime, days: u32) -> StoreResult<Vec<BuyerTotal>> {
        use crate::schema::purchases;
        let since = at - Duration::days(i64::from(days));
        let rows: Vec<(String, i64, NaiveDateTime)> = with_conn!(self, |conn| {
            purchases::table
                .filter(purchases::ordered_at.gt(since))
                .filter(purchases::ordered_at.le(at))
                .select((
                    purchases::customer_id,
                    purchases::total_cents,
                    purchases::ordered_at,
                ))
                .load(conn)
                .await?
        });
        let mut totals: HashMap<String, BuyerTotal> = HashMap::new();
        for (customer_id, cents, ordered_at) in rows {
            let total = totals
                .entry(customer_id.clone())
                .or_insert_with(|| BuyerTotal {
                    customer_id,
                    orders: 0,
                    cents: 0,
                    last_ordered_at: ordered_at,
                });
            total.orders += 1;
            total.cents = total.cents.saturating_add(cents);
            total.last_ordered_at = total.last_ordered_at.max(ordered_at);
        }
        Ok(totals.into_values().collect())
    }
}

/// One buyer's orders in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerTotal {
    pub customer_id: String,
    pub orders: u64,
    pub cents: i64,
    pub last_ordered_at: NaiveDateTime,
}

/// One rule of a template: its spec (checked by `tagd-core`, the condition bound and
/// printed canonically by the caller) and the name of the template tag it sets; the
/// spec's `tag_id` is ignored (the tag may not exist yet).
#[derive(Debug, Clone)]
pub struct TemplateRuleSpec {
    pub tag: String,
    pub spec: RuleSpec,
}

/// Everything a template installs, written by [`Store::install_template`].
#[derive(Debug, Clone)]
pub struct TemplateInstall {
    /// The template's name (`RuleRecord::template` of the rules it installs).
    pub template: String,
    /// Update the rules of an earlier install in place (without it, a second install is refused).
    pub replace: bool,
    pub category: NewCategory,
    pub tags: Vec<TemplateTag>,
    pub rules: Vec<TemplateRuleSpec>,
    pub actor: String,
}

/// What an install holds once it is done.
#[derive(Debug, Clone)]
pub struct InstalledTemplate {
    pub category_id: String,
    /// The template's tags, in the template's order.
    pub tag_ids: Vec<String>,
    pub rules: Vec<RuleRecord>,
}

impl Store {
    /// Installs a template in one transaction: its category and tags found by name or
    /// created, its rules created — or, with `replace`, the rules of an earlier install
    /// updated in place (so the tags they gave stay theirs; a rule that already reads as
    /// the template says is not written at all) and those the template no longer has
    /// deleted with their assignments. A failure anywhere writes nothing; installing the
    /// same template again with `replace` changes nothing.
    pub async fn install_template(
        &self,
        install: &TemplateInstall,
    ) -> StoreResult<InstalledTemplate> {
        let template = install.template.as_str();
        let actor = install.actor.as_str();
        write_transaction!(self, |conn| {
            let rules: Vec<RuleRecord> = tag_rules::table
                .select(RuleRow::as_select())
                .order(tag_rules::id)
                .load(conn)
                .await?
                .into_iter()
                .map(RuleRow::into_record)
                .collect();
            let installed: Vec<&RuleRecord> = rules
                .iter()
                .filter(|rule| rule.template == template)
                .collect();
            if !installed.is_empty() && !install.replace {
                return Err(StoreError::AlreadyExists(format!(
                    "template {template} is already installed ({} rules); install it with replace to recompute its thresholds",
                    installed.len()
                )));
            }

            let category_key = text::key(&install.category.name);
            let found: Option<CategoryRow> = categories::table
                .filter(categories::name_key.eq(&category_key))
                .select(CategoryRow::as_select())
                .get_result(conn)
                .await
                .optional()?;
            let category = match found {
                Some(category) => {
                    // Held shared until the commit, as CreateTag holds it: a concurrent delete
                    // of the category waits for the tags created below.
                    if !conn.lock_category(&category.id, false).await? {
                        return Err(StoreError::FailedPrecondition(format!(
                            "category {:?} was deleted while template {template} was being installed; install it again",
                            category.name
                        )));
                    }
                    category
                }
                None => {
                    let new = NewCategory {
                        name: install.category.name.clone(),
                        description: install.category.description.clone(),
                        exclusive: install.category.exclusive,
                    };
                    let row = CategoryRow::new(&new, category_key);
                    diesel::insert_into(categories::table)
                        .values(&row)
                        .execute(conn)
                        .await
                        .map_err(|e| {
                            crate::tags::name_taken(e, &format!("category {:?}", row.name))
                        })?;
                    row
                }
            };

            let mut tags: HashMap<&str, Tag> = HashMap::new();
            let mut tag_ids = Vec::with_capacity(install.tags.len());
            for wanted in &install.tags {
                let name_key = text::key(&wanted.name);
                let found: Option<TagRow> = tags::table
                    .filter(tags::category_id.eq(&category.id))
                    .filter(tags::name_key.eq(&name_key))
                    .select(TagRow::as_select())
                    .get_result(conn)
                    .await
                    .optional()?;
                let tag = match found {
                    Some(row) => {
                        // Held shared until the commit: a concurrent DeleteTag waits, then sees
                        // the rules written below and refuses.
                        if conn
                            .share_lock_existing_tags(std::slice::from_ref(&row.id))
                            .await?
                            .is_empty()
                        {
                            return Err(StoreError::FailedPrecondition(format!(
                                "tag {}/{} was deleted while template {template} was being installed; install it again",
                                category.name, row.name
                            )));
                        }
                        let tag = row.into_tag()?;
                        let fits = tag.value_type == wanted.value_type
                            && wanted
                                .enum_values
                                .iter()
                                .all(|value| tag.enum_values.contains(value));
                        if !fits {
                            return Err(StoreError::FailedPrecondition(format!(
                                "tag {}/{} exists as {} but template {template} needs {}{}",
                                category.name,
                                tag.name,
                                tag.value_type.as_str(),
                                wanted.value_type.as_str(),
                                if wanted.enum_values.is_empty() {
                                    String::new()
                                } else {
                                    format!(" with values {}", wanted.enum_values.join(", "))
                                }
                            )));
                        }
                        tag
                    }
                    None => {
                        let new = NewTag {
                            category_id: category.id.clone(),
                            name: wanted.name.clone(),
                            description: wanted.description.clone(),
                            value_type: wanted.value_type,
                            enum_values: wanted.enum_values.clone(),
                            default_validity_secs: None,
                        };
                        let row = TagRow::new(&new, name_key);
                        diesel::insert_into(tags::table)
                            .values(&row)
                            .execute(conn)
                            .await
                            .map_err(|e| {
                                crate::tags::name_taken(e, &format!("tag {:?}", row.name))
                            })?;
                        row.into_tag()?
                    }
                };
                tag_ids.push(tag.id.clone());
                tags.insert(wanted.name.as_str(), tag);
            }

            let mut written: Vec<RuleRecord> = Vec::with_capacity(install.rules.len());
            for rule in &install.rules {
                let spec = &rule.spec;
                let tag = tags.get(rule.tag.as_str()).ok_or_else(|| {
                    StoreError::FailedPrecondition(format!(
                        "template rule {:?} sets tag {:?}, which the template does not define; this is a bug",
                        spec.name, rule.tag
                    ))
                })?;
                let key = text::key(&spec.name);
                if let Some(other) = rules
                    .iter()
                    .find(|other| text::key(&other.name) == key && other.template != template)
                {
                    return Err(StoreError::AlreadyExists(format!(
                        "rule {:?} ({}) exists and was not installed by template {template}; rename it first",
                        other.name, other.id
                    )));
                }
                let value = tag.check_value("value", spec.value.as_deref().unwrap_or_default())?;
                let at = now();
                let current = installed
                    .iter()
                    .find(|current| text::key(&current.name) == key);
                let record = match current {
                    Some(current)
                        if current.description == spec.description
                            && current.value == value
                            && current.condition == spec.condition
                            && current.interval_secs == spec.interval_secs
                            && current.enabled == spec.enabled =>
                    {
                        (*current).clone()
                    }
                    Some(current) => {
                        let changes = RuleChanges {
                            name: None,
                            name_key: None,
                            description: Some(spec.description.clone()),
                            value: Some(value),
                            condition_text: Some(spec.condition.clone()),
                            interval_secs: Some(interval(spec.interval_secs)),
                            overrides_manual: None,
                            enabled: Some(spec.enabled),
                            next_run_at: Some(next_run(spec.enabled, spec.interval_secs, at)),
                            updated_at: at,
                        };
                        diesel::update(tag_rules::table.filter(tag_rules::id.eq(&current.id)))
                            .set(&changes)
                            .execute(conn)
                            .await?;
                        tag_rules::table
                            .filter(tag_rules::id.eq(&current.id))
                            .select(RuleRow::as_select())
                            .get_result(conn)
                            .await?
                            .into_record()
                    }
                    None => {
                        let row = RuleRow {
                            id: new_id(),
                            name: spec.name.clone(),
                            name_key: key,
                            description: spec.description.clone(),
                            tag_id: tag.id.clone(),
                            value,
                            condition_text: spec.condition.clone(),
                            interval_secs: interval(spec.interval_secs),
                            overrides_manual: spec.overrides_manual,
                            enabled: spec.enabled,
                            template: template.to_owned(),
                            created_by: actor.to_owned(),
                            created_at: at,
                            updated_at: at,
                            next_run_at: next_run(spec.enabled, spec.interval_secs, at),
                            running_run_id: None,
                            running_since: None,
                        };
                        diesel::insert_into(tag_rules::table)
                            .values(&row)
                            .execute(conn)
                            .await
                            .map_err(|e| {
                                crate::tags::name_taken(e, &format!("rule {:?}", row.name))
                            })?;
                        row.into_record()
                    }
                };
                written.push(record);
            }

            // Rules an earlier install made that this template no longer has take their tags along.
            for old in installed {
                if written.iter().any(|rule| rule.id == old.id) {
                    continue;
                }
                if let Some(run) = &old.running_run_id {
                    return Err(StoreError::FailedPrecondition(format!(
                        "rule {:?} of template {template} is running (run {run}); install again when the run ends",
                        old.name
                    )));
                }
                loop {
                    let holders: Vec<String> = customer_tags::table
                        .filter(customer_tags::tag_id.eq(&old.tag_id))
                        .filter(customer_tags::source.eq(TagSource::Rule.as_str()))
                        .filter(customer_tags::source_ref.eq(&old.id))
                        .select(customer_tags::customer_id)
                        .order(customer_tags::customer_id)
                        .limit(i64::try_from(IN_CHUNK).unwrap_or(1_000))
                        .load(conn)
                        .await?;
                    if holders.is_empty() {
                        break;
                    }
                    let batch = RuleBatch {
                        rule: old,
                        run_id: "",
                        candidates: &holders,
                        matching: &BTreeSet::new(),
                        actor,
                    };
                    if conn.apply_rule_batch_locked(&batch).await?.lost == 0 {
                        // Nothing left that is the rule's own (e.g. expired rows): stop.
                        break;
                    }
                }
                diesel::delete(tag_rules::table.filter(tag_rules::id.eq(&old.id)))
                    .execute(conn)
                    .await?;
            }
            Ok(InstalledTemplate {
                category_id: category.id,
                tag_ids,
                rules: written,
            })
        })
    }
}
