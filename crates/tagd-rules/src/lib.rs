//! Tag rules without tonic: a rule keeps its tag on exactly the customers who
//! match its condition. Matching comes from the segment engine (the in-memory
//! index, or its reference path for metrics and purchases); what changes is
//! planned by `tagd-core::rules` and written by the store a batch per
//! transaction, each batch planned again under its customers' locks. The
//! scheduler runs due rules; a claim in the database keeps a rule from running
//! twice at once on any server.

mod error;
mod templates;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tagd_condition::Condition;
use tagd_core::rules::{PlannedRule, RulePlan, RuleSpec, check_interval, check_rule};
use tagd_core::text;
use tagd_segments::Segments;
use tagd_store::{
    RuleBatch, RulePatch, RuleRecord, RuleRun, RunCounts, RunState, RunTrigger, Store, StoreError,
};

pub use crate::error::{RuleError, RuleResult};
pub use crate::templates::Installed;

/// Customers one transaction of a run changes at most.
const BATCH: usize = 1_000;
/// Most sample ids a preview lists.
pub const MAX_SAMPLE: usize = 100;
/// The actor of scheduled runs.
pub const SCHEDULER: &str = "scheduler";

/// How rules run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often the scheduler looks for due rules.
    pub tick: Duration,
    /// A run that has not written a batch for this long is taken for dead (its server
    /// stopped) and another may claim the rule.
    pub stale_after: Duration,
    /// The metric windows (days) conditions may name; templates use the longest.
    pub metric_windows_days: Vec<u32>,
}

/// A rule as a caller gives it: the spec's condition is replaced by the parsed one.
#[derive(Debug, Clone)]
pub struct RuleDraft {
    pub spec: RuleSpec,
    pub condition: Condition,
}

/// What `UpdateRule` asks for.
#[derive(Debug, Clone, Default)]
pub struct RuleUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub value: Option<String>,
    pub condition: Option<Condition>,
    pub interval_secs: Option<Option<u64>>,
    pub overrides_manual: Option<bool>,
    pub enabled: Option<bool>,
}

/// PreviewRule's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    pub matched: u64,
    pub plan: RulePlan,
    pub from_index: bool,
}

/// Rules: their records in the store, matches from the segment engine.
pub struct Rules {
    store: Arc<Store>,
    segments: Arc<Segments>,
    settings: Settings,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Rules {
    pub fn new(store: Arc<Store>, segments: Arc<Segments>, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            store,
            segments,
            settings,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Checks a draft: its spec (names, interval), its condition against the catalogue,
    /// and the tag it sets. Answers the spec with the condition's canonical text.
    /// `prefix` names the request field holding the draft in errors (`draft.`).
    async fn checked(&self, draft: &RuleDraft, prefix: &str) -> RuleResult<RuleSpec> {
        let spec = check_rule(RuleSpec {
            condition: draft.condition.to_string(),
            ..draft.spec.clone()
        })
        .map_err(|error| {
            if prefix.is_empty() {
                error
            } else {
                error.within(prefix.trim_end_matches('.'))
            }
        })?;
        self.segments
            .bind(&format!("{prefix}condition"), &draft.condition)
            .await?;
        Ok(spec)
    }

    pub async fn create(&self, draft: &RuleDraft, actor: &str) -> RuleResult<RuleRecord> {
        self.create_from(draft, "", actor).await
    }

    async fn create_from(
        &self,
        draft: &RuleDraft,
        template: &str,
        actor: &str,
    ) -> RuleResult<RuleRecord> {
        let spec = self.checked(draft, "").await?;
        Ok(self.store.create_rule(&spec, template, actor).await?)
    }

    pub async fn get(&self, id: &str) -> RuleResult<RuleRecord> {
        Ok(self.store.get_rule(id).await?)
    }

    pub async fn update(&self, id: &str, update: &RuleUpdate) -> RuleResult<RuleRecord> {
        let name = update
            .name
            .as_deref()
            .map(|name| text::required_name("name", name))
            .transpose()?;
        let description = update
            .description
            .as_deref()
            .map(|description| {
                text::free_text(
                    "description",
                    description,
                    tagd_core::rules::MAX_DESCRIPTION_CHARS,
                )
            })
            .transpose()?;
        if let Some(interval) = update.interval_secs {
            check_interval("interval_seconds", interval)?;
        }
        let condition = match &update.condition {
            Some(condition) => {
                self.segments.bind("condition", condition).await?;
                Some(condition.to_string())
            }
            None => None,
        };
        Ok(self
            .store
            .update_rule(
                id,
                &RulePatch {
                    name,
                    description,
                    value: update.value.clone(),
                    condition,
                    interval_secs: update.interval_secs,
                    overrides_manual: update.overrides_manual,
                    enabled: update.enabled,
                },
            )
            .await?)
    }

    pub async fn delete(&self, id: &str, remove_assignments: bool, actor: &str) -> RuleResult<u64> {
        Ok(self
            .store
            .delete_rule(id, remove_assignments, actor)
            .await?)
    }

    /// Who matches `rule` now, in id order, and whether the index answered.
    async fn matching(&self, rule: &RuleRecord) -> RuleResult<(Vec<String>, bool)> {
        let condition = tagd_condition::parse(&rule.condition).map_err(|error| {
            RuleError::FailedPrecondition(format!(
                "rule {:?}: its stored condition no longer parses: {error}",
                rule.name
            ))
        })?;
        let bound = self
            .segments
            .bind("condition", &condition)
            .await
            .map_err(|error| {
                RuleError::FailedPrecondition(format!(
                    "rule {:?} can no longer be evaluated: {error}",
                    rule.name
                ))
            })?;
        let members = self.segments.condition_members(&bound).await?;
        let from_index = matches!(members, tagd_segments::Members::Dense { .. });
        Ok((self.segments.sorted_ids(&members)?, from_index))
    }

    /// Plans a run of `rule` against what the store holds now.
    async fn plan(&self, rule: &RuleRecord) -> RuleResult<(BTreeSet<String>, RulePlan, bool)> {
        let target = self.store.rule_target(&rule.tag_id, "tag_id").await?;
        let (matching, from_index) = self.matching(rule).await?;
        let holders = self.store.rule_holders(&target).await?;
        let matching: BTreeSet<String> = matching.into_iter().collect();
        let plan = RulePlan::compute(planned(rule), &matching, &holders);
        Ok((matching, plan, from_index))
    }

    /// What running a stored rule now would change.
    pub async fn preview(&self, id: &str) -> RuleResult<Preview> {
        let rule = self.store.get_rule(id).await?;
        self.preview_record(&rule).await
    }

    /// What running an unsaved rule now would change.
    pub async fn preview_draft(&self, draft: &RuleDraft) -> RuleResult<Preview> {
        let spec = self
            .checked(
                &RuleDraft {
                    spec: RuleSpec {
                        // A preview needs no name; keep the check from asking for one.
                        name: if draft.spec.name.trim().is_empty() {
                            "preview".to_owned()
                        } else {
                            draft.spec.name.clone()
                        },
                        ..draft.spec.clone()
                    },
                    condition: draft.condition.clone(),
                },
                "draft.",
            )
            .await?;
        let target = self.store.rule_target(&spec.tag_id, "draft.tag_id").await?;
        let value = target
            .tag
            .check_value("draft.value", spec.value.as_deref().unwrap_or_default())?;
        let now = Utc::now().naive_utc();
        let rule = RuleRecord {
            id: String::new(),
            name: spec.name,
            description: spec.description,
            tag_id: spec.tag_id,
            value,
            condition: spec.condition,
            interval_secs: spec.interval_secs,
            overrides_manual: spec.overrides_manual,
            enabled: spec.enabled,
            template: String::new(),
            created_by: String::new(),
            created_at: now,
            updated_at: now,
            next_run_at: None,
            running_run_id: None,
        };
        self.preview_record(&rule).await
    }

    async fn preview_record(&self, rule: &RuleRecord) -> RuleResult<Preview> {
        let (matching, plan, from_index) = self.plan(rule).await?;
        Ok(Preview {
            matched: matching.len() as u64,
            plan,
            from_index,
        })
    }

    /// Runs one rule now (refused while it runs elsewhere), or every enabled rule one
    /// after another (those already running are skipped).
    pub async fn run(&self, id: Option<&str>, actor: &str) -> RuleResult<Vec<RuleRun>> {
        match id {
            Some(id) => {
                let rule = self.store.get_rule(id).await?;
                Ok(vec![self.run_rule(&rule, RunTrigger::Manual, actor).await?])
            }
            None => {
                let mut runs = Vec::new();
                for rule in self.store.all_rules().await? {
                    if !rule.enabled {
                        continue;
                    }
                    match self.run_rule(&rule, RunTrigger::Manual, actor).await {
                        Ok(run) => runs.push(run),
                        Err(RuleError::Store(StoreError::FailedPrecondition(reason))) => {
                            tracing::info!(rule = %rule.name, %reason, "rule skipped");
                        }
                        Err(error) => return Err(error),
                    }
                }
                Ok(runs)
            }
        }
    }

    /// One run: claim, match, plan, apply batch by batch, record. A run that fails after
    /// its claim is recorded as failed (with what it changed before) and answered, not
    /// raised: the caller sees the run.
    pub async fn run_rule(
        &self,
        rule: &RuleRecord,
        trigger: RunTrigger,
        actor: &str,
    ) -> RuleResult<RuleRun> {
        let stale_after = chrono::Duration::from_std(self.settings.stale_after)
            .unwrap_or(chrono::Duration::minutes(10));
        let mut run = self
            .store
            .claim_rule(rule, trigger, actor, stale_after)
            .await?;
        let mut counts = RunCounts::default();
        let outcome = self.apply(rule, &run.id, actor, &mut counts).await;
        run.counts = counts;
        run.finished_at = Some(Utc::now().naive_utc());
        match outcome {
            Ok(()) => run.state = RunState::Succeeded,
            Err(error) => {
                run.state = RunState::Failed;
                run.error = error.to_string();
                tracing::warn!(rule = %rule.name, run = %run.id, error = %run.error, "rule run failed");
            }
        }
        self.store.finish_rule_run(&run).await?;
        tracing::info!(
            rule = %rule.name,
            run = %run.id,
            state = run.state.as_str(),
            matched = run.counts.matched,
            gained = run.counts.gained,
            changed = run.counts.changed,
            lost = run.counts.lost,
            "rule run ended"
        );
        Ok(run)
    }

    async fn apply(
        &self,
        rule: &RuleRecord,
        run_id: &str,
        actor: &str,
        counts: &mut RunCounts,
    ) -> RuleResult<()> {
        let (matching, plan, _) = self.plan(rule).await?;
        counts.evaluated = self.store.count_customers().await?;
        counts.matched = matching.len() as u64;
        counts.kept = plan.keep;
        counts.held_back = plan.held_back;
        let mut candidates: Vec<String> = plan
            .gain
            .iter()
            .chain(&plan.change)
            .chain(&plan.lose)
            .cloned()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        for chunk in candidates.chunks(BATCH) {
            let applied = self
                .store
                .apply_rule_batch(&RuleBatch {
                    rule,
                    run_id,
                    candidates: chunk,
                    matching: &matching,
                    actor,
                })
                .await?;
            // Kept customers were counted by the plan; a batch only meets those who
            // changed since, so its own keeps are not added again.
            counts.add_applied(&applied);
        }
        Ok(())
    }

    /// Runs due rules until the task is dropped. Every server over one database runs a
    /// scheduler; the claim lets exactly one of them run each due rule.
    pub async fn schedule(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let due = match self.store.due_rules(Utc::now().naive_utc()).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "cannot read due rules");
                    continue;
                }
            };
            for rule in due {
                match self.run_rule(&rule, RunTrigger::Schedule, SCHEDULER).await {
                    Ok(_) | Err(RuleError::Store(StoreError::FailedPrecondition(_))) => {}
                    Err(error) => {
                        tracing::warn!(rule = %rule.name, %error, "scheduled rule run failed");
                    }
                }
            }
        }
    }
}

fn planned(rule: &RuleRecord) -> PlannedRule<'_> {
    PlannedRule {
        id: &rule.id,
        tag_id: &rule.tag_id,
        value: rule.value.as_deref(),
        overrides_manual: rule.overrides_manual,
    }
}
