//! `RuleService`: tag rules defined, previewed, run and installed from
//! templates, answered by `tagd-rules`.

use std::sync::Arc;

use tagd_core::paging::PageRequest;
use tagd_core::rule_templates::Template;
use tagd_core::rules::RuleSpec;
use tagd_proto::v1::rule_service_server::RuleService;
use tagd_proto::v1::{self as pb};
use tagd_rules::{MAX_SAMPLE, Preview, RuleDraft, RuleUpdate, Rules};
use tagd_store::{RuleRecord, RuleRun, RunState, RunTrigger};
use tonic::{Request, Response, Status};

use crate::condition::{from_input, to_tree};
use crate::convert::{self, id, invalid, mask_paths, optional_id, unknown_path};
use crate::error::OrStatus;
use crate::middleware::actor;

/// Sample ids a preview lists unless asked otherwise.
const DEFAULT_SAMPLE: usize = 10;
const UPDATE_PATHS: &str =
    "name, description, value, condition, interval_seconds, overrides_manual, enabled";

pub(crate) struct RulesService {
    pub rules: Arc<Rules>,
}

fn interval(seconds: u64) -> Option<u64> {
    (seconds > 0).then_some(seconds)
}

fn rule(rule: RuleRecord, last_run: Option<RuleRun>) -> pb::Rule {
    let tree = tagd_condition::parse(&rule.condition)
        .ok()
        .map(|condition| to_tree(&condition));
    pb::Rule {
        id: rule.id,
        name: rule.name,
        description: rule.description,
        tag_id: rule.tag_id,
        value: rule.value.unwrap_or_default(),
        condition: rule.condition,
        condition_tree: tree,
        interval_seconds: rule.interval_secs.unwrap_or(0),
        overrides_manual: rule.overrides_manual,
        enabled: rule.enabled,
        template: rule.template,
        create_time: Some(convert::timestamp(rule.created_at)),
        update_time: Some(convert::timestamp(rule.updated_at)),
        next_run_time: rule.next_run_at.map(convert::timestamp),
        last_run: last_run.map(run),
    }
}

fn run(run: RuleRun) -> pb::RuleRun {
    pb::RuleRun {
        id: run.id,
        rule_id: run.rule_id,
        rule_name: run.rule_name,
        trigger: match run.trigger {
            RunTrigger::Manual => pb::RuleRunTrigger::Manual,
            RunTrigger::Schedule => pb::RuleRunTrigger::Schedule,
        }
        .into(),
        actor: run.actor,
        state: match run.state {
            RunState::Running => pb::RuleRunState::Running,
            RunState::Succeeded => pb::RuleRunState::Succeeded,
            RunState::Failed => pb::RuleRunState::Failed,
        }
        .into(),
        start_time: Some(convert::timestamp(run.started_at)),
        finish_time: run.finished_at.map(convert::timestamp),
        evaluated: run.counts.evaluated,
        matched: run.counts.matched,
        gained: run.counts.gained,
        changed: run.counts.changed,
        lost: run.counts.lost,
        kept: run.counts.kept,
        held_back: run.counts.held_back,
        error: run.error,
    }
}

/// A draft from a create request; `prefix` names the request's field in errors.
fn draft(prefix: &str, request: &pb::CreateRuleRequest) -> Result<RuleDraft, Status> {
    let tag_id = id(&format!("{prefix}tag_id"), &request.tag_id)?;
    let condition = from_input(&format!("{prefix}condition"), request.condition.as_ref())?;
    Ok(RuleDraft {
        spec: RuleSpec {
            name: request.name.clone(),
            description: request.description.clone(),
            tag_id,
            value: (!request.value.is_empty()).then(|| request.value.clone()),
            condition: String::new(),
            interval_secs: interval(request.interval_seconds),
            overrides_manual: request.overrides_manual,
            enabled: !request.disabled,
        },
        condition,
    })
}

fn template(raw: i32) -> Result<Template, Status> {
    match pb::RuleTemplate::try_from(raw) {
        Ok(pb::RuleTemplate::ValueTier) => Ok(Template::ValueTier),
        Ok(pb::RuleTemplate::Rfm) => Ok(Template::Rfm),
        Ok(pb::RuleTemplate::Lifecycle) => Ok(Template::Lifecycle),
        Ok(pb::RuleTemplate::ChurnRisk) => Ok(Template::ChurnRisk),
        Ok(pb::RuleTemplate::Unspecified) | Err(_) => Err(invalid(
            "template",
            &format!("{raw} is not a template (value_tier, rfm, lifecycle, churn_risk)"),
        )),
    }
}

fn preview(preview: Preview, sample: usize) -> pb::RulePreview {
    let take = |ids: &[String]| ids.iter().take(sample).cloned().collect();
    pb::RulePreview {
        matched: preview.matched,
        gain: preview.plan.gain.len() as u64,
        change: preview.plan.change.len() as u64,
        lose: preview.plan.lose.len() as u64,
        keep: preview.plan.keep,
        held_back: preview.plan.held_back,
        gain_sample: take(&preview.plan.gain),
        change_sample: take(&preview.plan.change),
        lose_sample: take(&preview.plan.lose),
        from_index: preview.from_index,
    }
}

impl RulesService {
    async fn with_last_run(&self, record: RuleRecord) -> Result<pb::Rule, Status> {
        let mut last = self
            .rules
            .store()
            .last_rule_runs(std::slice::from_ref(&record.id))
            .await
            .or_status()?;
        let last_run = last.remove(&record.id);
        Ok(rule(record, last_run))
    }
}

#[tonic::async_trait]
impl RuleService for RulesService {
    async fn create_rule(
        &self,
        request: Request<pb::CreateRuleRequest>,
    ) -> Result<Response<pb::Rule>, Status> {
        let actor = actor(&request);
        let draft = draft("", request.get_ref())?;
        let created = self.rules.create(&draft, &actor).await.or_status()?;
        Ok(Response::new(rule(created, None)))
    }

    async fn get_rule(
        &self,
        request: Request<pb::GetRuleRequest>,
    ) -> Result<Response<pb::Rule>, Status> {
        let rule_id = id("id", &request.get_ref().id)?;
        let record = self.rules.get(&rule_id).await.or_status()?;
        Ok(Response::new(self.with_last_run(record).await?))
    }

    async fn list_rules(
        &self,
        request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let tag_id = optional_id("tag_id", &request.tag_id)?;
        let store = self.rules.store();
        let page = store
            .list_rules(&page, tag_id.as_deref())
            .await
            .or_status()?;
        let ids: Vec<String> = page.items.iter().map(|rule| rule.id.clone()).collect();
        let mut last = store.last_rule_runs(&ids).await.or_status()?;
        Ok(Response::new(pb::ListRulesResponse {
            rules: page
                .items
                .into_iter()
                .map(|record| {
                    let last_run = last.remove(&record.id);
                    rule(record, last_run)
                })
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_rule(
        &self,
        request: Request<pb::UpdateRuleRequest>,
    ) -> Result<Response<pb::Rule>, Status> {
        let request = request.into_inner();
        let rule_id = id("id", &request.id)?;
        let mut update = RuleUpdate::default();
        for path in mask_paths(request.update_mask.as_ref())? {
            match path.as_str() {
                "name" => update.name = Some(request.name.clone()),
                "description" => update.description = Some(request.description.clone()),
                "value" => update.value = Some(request.value.clone()),
                "condition" => {
                    update.condition = Some(from_input("condition", request.condition.as_ref())?);
                }
                "interval_seconds" => {
                    update.interval_secs = Some(interval(request.interval_seconds))
                }
                "overrides_manual" => update.overrides_manual = Some(request.overrides_manual),
                "enabled" => update.enabled = Some(request.enabled),
                other => return Err(unknown_path(other, UPDATE_PATHS)),
            }
        }
        let updated = self.rules.update(&rule_id, &update).await.or_status()?;
        Ok(Response::new(self.with_last_run(updated).await?))
    }

    async fn delete_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let rule_id = id("id", &request.id)?;
        let removed = self
            .rules
            .delete(&rule_id, request.remove_assignments, &actor)
            .await
            .or_status()?;
        Ok(Response::new(pb::DeleteRuleResponse { removed }))
    }

    async fn preview_rule(
        &self,
        request: Request<pb::PreviewRuleRequest>,
    ) -> Result<Response<pb::RulePreview>, Status> {
        let request = request.into_inner();
        let sample = match request.sample_size {
            0 => DEFAULT_SAMPLE,
            size => usize::try_from(size).unwrap_or(MAX_SAMPLE).min(MAX_SAMPLE),
        };
        let answer = match (request.id.is_empty(), &request.draft) {
            (false, None) => {
                let rule_id = id("id", &request.id)?;
                self.rules.preview(&rule_id).await.or_status()?
            }
            (true, Some(raw)) => {
                let draft = draft("draft.", raw)?;
                self.rules.preview_draft(&draft).await.or_status()?
            }
            (false, Some(_)) => {
                return Err(invalid("id", "give a rule id or a draft, not both"));
            }
            (true, None) => return Err(invalid("id", "give a rule id or a draft")),
        };
        Ok(Response::new(preview(answer, sample)))
    }

    async fn run_rules(
        &self,
        request: Request<pb::RunRulesRequest>,
    ) -> Result<Response<pb::RunRulesResponse>, Status> {
        let actor = actor(&request);
        let rule_id = optional_id("id", &request.get_ref().id)?;
        let runs = self
            .rules
            .run(rule_id.as_deref(), &actor)
            .await
            .or_status()?;
        Ok(Response::new(pb::RunRulesResponse {
            runs: runs.into_iter().map(run).collect(),
        }))
    }

    async fn list_rule_runs(
        &self,
        request: Request<pb::ListRuleRunsRequest>,
    ) -> Result<Response<pb::ListRuleRunsResponse>, Status> {
        let request = request.into_inner();
        let rule_id = id("rule_id", &request.rule_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let store = self.rules.store();
        store.get_rule(&rule_id).await.or_status()?;
        let page = store.list_rule_runs(&rule_id, &page).await.or_status()?;
        Ok(Response::new(pb::ListRuleRunsResponse {
            runs: page.items.into_iter().map(run).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn install_template(
        &self,
        request: Request<pb::InstallTemplateRequest>,
    ) -> Result<Response<pb::InstallTemplateResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let template = template(request.template)?;
        let installed = self
            .rules
            .install_template(
                template,
                interval(request.interval_seconds),
                request.replace,
                &actor,
            )
            .await
            .or_status()?;
        Ok(Response::new(pb::InstallTemplateResponse {
            category_id: installed.category_id,
            tag_ids: installed.tag_ids,
            rules: installed
                .rules
                .into_iter()
                .map(|record| rule(record, None))
                .collect(),
        }))
    }
}
