//! `tagctl rules …`: RuleService — tag rules, their previews, runs and
//! schedules, and the ready-made templates.

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::RulesCommand;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::{Output, Time, View, cell, duration, enum_name};
use crate::paging::fetch_all;
use crate::segments::{condition, required};

#[derive(Debug, Serialize)]
pub struct RuleView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tag_id: String,
    pub value: String,
    pub condition: String,
    pub interval_seconds: u64,
    pub overrides_manual: bool,
    pub enabled: bool,
    pub template: String,
    pub next_run_time: Option<Time>,
    pub last_run: Option<RunView>,
}

impl From<pb::Rule> for RuleView {
    fn from(rule: pb::Rule) -> Self {
        RuleView {
            next_run_time: Time::from_proto(rule.next_run_time.as_ref()),
            last_run: rule.last_run.map(RunView::from),
            id: rule.id,
            name: rule.name,
            description: rule.description,
            tag_id: rule.tag_id,
            value: rule.value,
            condition: rule.condition,
            interval_seconds: rule.interval_seconds,
            overrides_manual: rule.overrides_manual,
            enabled: rule.enabled,
            template: rule.template,
        }
    }
}

impl RuleView {
    fn every(&self) -> String {
        if self.interval_seconds == 0 {
            "on demand".to_owned()
        } else {
            format!(
                "every {}",
                duration(i64::try_from(self.interval_seconds).unwrap_or(i64::MAX))
            )
        }
    }

    fn last(&self) -> String {
        self.last_run.as_ref().map_or_else(String::new, |run| {
            format!("{} +{} −{}", run.state, run.gained + run.changed, run.lost)
        })
    }
}

impl View for RuleView {
    const COLUMNS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "VALUE",
        "CONDITION",
        "SCHEDULE",
        "ENABLED",
        "LAST RUN",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.value.clone(),
            self.condition.clone(),
            self.every(),
            self.enabled.to_string(),
            self.last(),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("description", self.description.clone()),
            ("tag", self.tag_id.clone()),
            ("value", self.value.clone()),
            ("condition", self.condition.clone()),
            ("schedule", self.every()),
            ("next run", cell(self.next_run_time.as_ref())),
            ("overrides manual", self.overrides_manual.to_string()),
            ("enabled", self.enabled.to_string()),
            ("template", self.template.clone()),
            ("last run", self.last()),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: String,
    pub rule_name: String,
    pub trigger: String,
    pub actor: String,
    pub state: String,
    pub start_time: Option<Time>,
    pub finish_time: Option<Time>,
    pub evaluated: u64,
    pub matched: u64,
    pub gained: u64,
    pub changed: u64,
    pub lost: u64,
    pub kept: u64,
    pub held_back: u64,
    pub error: String,
}

impl From<pb::RuleRun> for RunView {
    fn from(run: pb::RuleRun) -> Self {
        RunView {
            trigger: enum_name(run.trigger().as_str_name(), "RULE_RUN_TRIGGER_"),
            state: enum_name(run.state().as_str_name(), "RULE_RUN_STATE_"),
            start_time: Time::from_proto(run.start_time.as_ref()),
            finish_time: Time::from_proto(run.finish_time.as_ref()),
            id: run.id,
            rule_name: run.rule_name,
            actor: run.actor,
            evaluated: run.evaluated,
            matched: run.matched,
            gained: run.gained,
            changed: run.changed,
            lost: run.lost,
            kept: run.kept,
            held_back: run.held_back,
            error: run.error,
        }
    }
}

impl View for RunView {
    const COLUMNS: &'static [&'static str] = &[
        "RUN",
        "RULE",
        "TRIGGER",
        "STATE",
        "STARTED",
        "MATCHED",
        "GAINED",
        "CHANGED",
        "LOST",
        "KEPT",
        "HELD BACK",
        "ERROR",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.rule_name.clone(),
            self.trigger.clone(),
            self.state.clone(),
            cell(self.start_time.as_ref()),
            self.matched.to_string(),
            self.gained.to_string(),
            self.changed.to_string(),
            self.lost.to_string(),
            self.kept.to_string(),
            self.held_back.to_string(),
            self.error.clone(),
        ]
    }
}

#[derive(Debug, Serialize)]
struct PreviewView {
    matched: u64,
    gain: u64,
    change: u64,
    lose: u64,
    keep: u64,
    held_back: u64,
    gain_sample: Vec<String>,
    change_sample: Vec<String>,
    lose_sample: Vec<String>,
    from_index: bool,
}

impl From<pb::RulePreview> for PreviewView {
    fn from(preview: pb::RulePreview) -> Self {
        PreviewView {
            matched: preview.matched,
            gain: preview.gain,
            change: preview.change,
            lose: preview.lose,
            keep: preview.keep,
            held_back: preview.held_back,
            gain_sample: preview.gain_sample,
            change_sample: preview.change_sample,
            lose_sample: preview.lose_sample,
            from_index: preview.from_index,
        }
    }
}

impl View for PreviewView {
    const COLUMNS: &'static [&'static str] =
        &["MATCHED", "GAIN", "CHANGE", "LOSE", "KEEP", "HELD BACK"];

    fn cells(&self) -> Vec<String> {
        [
            self.matched,
            self.gain,
            self.change,
            self.lose,
            self.keep,
            self.held_back,
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("matched", self.matched.to_string()),
            ("gain", self.gain.to_string()),
            ("change", self.change.to_string()),
            ("lose", self.lose.to_string()),
            ("keep", self.keep.to_string()),
            ("held back", self.held_back.to_string()),
            ("gain e.g.", self.gain_sample.join(" ")),
            ("change e.g.", self.change_sample.join(" ")),
            ("lose e.g.", self.lose_sample.join(" ")),
            (
                "evaluated by",
                if self.from_index {
                    "segment index"
                } else {
                    "customer by customer"
                }
                .to_owned(),
            ),
        ]
    }
}

pub async fn run(
    command: RulesCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.rules();
    match command {
        RulesCommand::List { tag, paging } => {
            let tag_id = tag.unwrap_or_default();
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let tag_id = tag_id.clone();
                async move {
                    let page = client
                        .list_rules(pb::ListRulesRequest {
                            page_size,
                            page_token,
                            tag_id,
                        })
                        .await?
                        .into_inner();
                    Ok((page.rules, page.next_page_token))
                }
            })
            .await?;
            let views: Vec<RuleView> = rows.into_iter().map(RuleView::from).collect();
            out.list(&views)
        }
        RulesCommand::Get { rule_id } => {
            let rule = client
                .get_rule(pb::GetRuleRequest { id: rule_id })
                .await?
                .into_inner();
            out.record(&RuleView::from(rule))
        }
        RulesCommand::Create {
            name,
            tag,
            value,
            condition: args,
            every,
            overrides_manual,
            disabled,
            description,
        } => {
            let rule = client
                .create_rule(pb::CreateRuleRequest {
                    name,
                    description,
                    tag_id: tag,
                    value,
                    condition: Some(required(condition(args)?)?),
                    interval_seconds: every.unwrap_or(0),
                    overrides_manual,
                    disabled,
                })
                .await?
                .into_inner();
            out.record(&RuleView::from(rule))
        }
        RulesCommand::Update {
            rule_id,
            name,
            description,
            value,
            condition: args,
            every,
            overrides_manual,
            enabled,
        } => {
            let condition = condition(args)?;
            let mut paths = Vec::new();
            for (path, given) in [
                ("name", name.is_some()),
                ("description", description.is_some()),
                ("value", value.is_some()),
                ("condition", condition.is_some()),
                ("interval_seconds", every.is_some()),
                ("overrides_manual", overrides_manual.is_some()),
                ("enabled", enabled.is_some()),
            ] {
                if given {
                    paths.push(path.to_owned());
                }
            }
            if paths.is_empty() {
                return Err(Failure::usage(
                    "nothing to change: give at least one option",
                ));
            }
            let rule = client
                .update_rule(pb::UpdateRuleRequest {
                    id: rule_id,
                    update_mask: Some(prost_types::FieldMask { paths }),
                    name: name.unwrap_or_default(),
                    description: description.unwrap_or_default(),
                    value: value.unwrap_or_default(),
                    condition,
                    interval_seconds: every.unwrap_or(0),
                    overrides_manual: overrides_manual.unwrap_or(false),
                    enabled: enabled.unwrap_or(false),
                })
                .await?
                .into_inner();
            out.record(&RuleView::from(rule))
        }
        RulesCommand::Delete {
            rule_id,
            remove_assignments,
        } => {
            let removed = client
                .delete_rule(pb::DeleteRuleRequest {
                    id: rule_id.clone(),
                    remove_assignments,
                })
                .await?
                .into_inner()
                .removed;
            out.outcome(
                &serde_json::json!({ "deleted": rule_id, "removed": removed }),
                &format!("deleted rule {rule_id}; {removed} assignments removed"),
            )
        }
        RulesCommand::Preview { rule_id, sample } => {
            let preview = client
                .preview_rule(pb::PreviewRuleRequest {
                    id: rule_id,
                    draft: None,
                    sample_size: sample,
                })
                .await?
                .into_inner();
            out.record(&PreviewView::from(preview))
        }
        RulesCommand::Run { rule_id } => {
            let runs = client
                .run_rules(pb::RunRulesRequest {
                    id: rule_id.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .runs;
            let failed = runs
                .iter()
                .filter(|run| run.state() == pb::RuleRunState::Failed)
                .count();
            let views: Vec<RunView> = runs.into_iter().map(RunView::from).collect();
            out.list(&views)?;
            if failed > 0 {
                return Err(Failure::Job(format!("{failed} rule runs failed")));
            }
            Ok(())
        }
        RulesCommand::Runs { rule_id, paging } => {
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let rule_id = rule_id.clone();
                async move {
                    let page = client
                        .list_rule_runs(pb::ListRuleRunsRequest {
                            rule_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.runs, page.next_page_token))
                }
            })
            .await?;
            let views: Vec<RunView> = rows.into_iter().map(RunView::from).collect();
            out.list(&views)
        }
        RulesCommand::Install {
            template,
            every,
            replace,
        } => {
            let installed = client
                .install_template(pb::InstallTemplateRequest {
                    template: template.to_proto().into(),
                    interval_seconds: every.unwrap_or(0),
                    replace,
                })
                .await?
                .into_inner();
            let views: Vec<RuleView> = installed.rules.into_iter().map(RuleView::from).collect();
            out.list(&views)
        }
    }
}
