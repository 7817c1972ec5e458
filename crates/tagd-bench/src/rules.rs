//! The rules measurement, over the segments phase's customers: a rule on the
//! segments phase's five-term condition (answered by the index) is run twice —
//! the first run writes every gain, the second finds nothing to change and
//! measures evaluation alone — beside the same condition evaluated by SQL in
//! the same run, as customers evaluated per second.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use tagd_proto::v1 as pb;
use tagd_proto::v1::rule_service_client::RuleServiceClient;
use tagd_proto::v1::tag_service_client::TagServiceClient;

use crate::report::{Report, thousands};
use crate::segments::{CONDITION, SegmentsOn, ms, sql_counts};

/// The tag ids the condition names (`seg-3`, `seg-7`, `seg-11`), read back by name.
async fn condition_tags(on: &SegmentsOn<'_>) -> Result<[String; 3]> {
    let mut tags = TagServiceClient::new(on.channel.clone());
    let mut found: [Option<String>; 3] = [None, None, None];
    let mut page_token = String::new();
    loop {
        let page = tags
            .list_tags(pb::ListTagsRequest {
                page_size: 1_000,
                page_token,
                ..pb::ListTagsRequest::default()
            })
            .await
            .context("ListTags")?
            .into_inner();
        for tag in page.tags {
            for (slot, name) in found.iter_mut().zip(["seg-3", "seg-7", "seg-11"]) {
                if tag.name == name {
                    *slot = Some(tag.id.clone());
                }
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    match found {
        [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
        _ => anyhow::bail!("the segments phase's tags seg-3, seg-7, seg-11 are missing"),
    }
}

pub async fn measure_rules(
    backend: &str,
    on: &SegmentsOn<'_>,
    customers: usize,
    report: &mut Report,
) -> Result<()> {
    let condition_tags = condition_tags(on).await?;
    let mut tags = TagServiceClient::new(on.channel.clone());
    let category = tags
        .create_category(pb::CreateCategoryRequest {
            name: format!("bench rules {:08x}", rand::random::<u32>()),
            description: "created by tagd-bench".to_owned(),
            exclusive: false,
        })
        .await
        .context("CreateCategory")?
        .into_inner();
    let target = tags
        .create_tag(pb::CreateTagRequest {
            tag: Some(pb::Tag {
                category_id: category.id,
                name: "规则目标".to_owned(),
                value_type: pb::ValueType::Flag.into(),
                ..pb::Tag::default()
            }),
        })
        .await
        .context("CreateTag")?
        .into_inner();
    let mut rules = RuleServiceClient::new(on.channel.clone());
    let rule = rules
        .create_rule(pb::CreateRuleRequest {
            name: format!("bench {:08x}", rand::random::<u32>()),
            tag_id: target.id,
            condition: Some(pb::ConditionInput {
                form: Some(pb::condition_input::Form::Text(CONDITION.to_owned())),
            }),
            ..pb::CreateRuleRequest::default()
        })
        .await
        .context("CreateRule")?
        .into_inner();
    let run_once = async |rules: &mut RuleServiceClient<tonic::transport::Channel>| -> Result<(pb::RuleRun, f64)> {
        let t0 = Instant::now();
        let mut runs = rules
            .run_rules(pb::RunRulesRequest {
                id: rule.id.clone(),
            })
            .await
            .context("RunRules")?
            .into_inner()
            .runs;
        let seconds = t0.elapsed().as_secs_f64();
        let run = runs.pop().context("RunRules answered no run")?;
        ensure!(
            run.state() == pb::RuleRunState::Succeeded,
            "the rule run failed: {}",
            run.error
        );
        Ok((run, seconds))
    };
    let (first, first_secs) = run_once(&mut rules).await?;
    let (steady, steady_secs) = run_once(&mut rules).await?;
    let (sql_count, sql_latency) = sql_counts(on.database_url, &condition_tags, 5).await?;
    let sql_secs = ms(&sql_latency, 0.5) / 1000.0;
    let evaluated = steady.evaluated as f64;
    let rule_rate = evaluated / steady_secs.max(1e-9);
    let sql_rate = evaluated / sql_secs.max(1e-9);
    report.note(format!(
        "{backend}: RunRules of a rule on the 5-term condition over {} customers: first run \
         (writes {} gains) {first_secs:.2} s; steady run (nothing to change) {steady_secs:.3} s = \
         {} customers evaluated/s; the same condition as one SQL count: {:.1} ms = {} customers/s; \
         rule/SQL = {:.2}×",
        thousands(customers as f64),
        first.gained,
        thousands(rule_rate),
        sql_secs * 1000.0,
        thousands(sql_rate),
        rule_rate / sql_rate.max(1e-9),
    ));
    report.check(
        backend,
        "a rule run tags exactly the SQL count",
        &sql_count.to_string(),
        first.gained.to_string(),
        i64::try_from(first.gained).ok() == Some(sql_count) && steady.kept == first.gained,
    );
    Ok(())
}
