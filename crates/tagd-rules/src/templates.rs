//! Installing a ready-made template: thresholds from the buyers' numbers now
//! (`tagd-core::rule_templates` decides them), the category and tags found or
//! created, the rules created — or, when the template is installed again with
//! `replace`, updated in place so the tags they gave stay theirs — all in one
//! store transaction (`Store::install_template`).

use chrono::Utc;
use tagd_core::rule_templates::{BuyerStats, Template, design, template_window};
use tagd_core::rules::{RuleSpec, check_interval, check_rule};
use tagd_store::{NewCategory, RuleRecord, TemplateInstall, TemplateRuleSpec};

use crate::{RuleError, RuleResult, Rules};

/// Scheduled installs run daily unless told otherwise.
const DEFAULT_INTERVAL_SECS: u64 = 86_400;
const CENTS_PER_UNIT: f64 = 100.0;

/// What an install created or updated.
#[derive(Debug, Clone)]
pub struct Installed {
    pub category_id: String,
    pub tag_ids: Vec<String>,
    pub rules: Vec<RuleRecord>,
}

impl Rules {
    /// Installs `template` in one transaction: all of it or, when anything fails (a tag
    /// of the template's name but another type, a hand-written rule holding one of its
    /// names, a second install without `replace`, a database error), nothing.
    /// Installing again with `replace` recomputes the thresholds; when they did not
    /// move, it changes nothing.
    pub async fn install_template(
        &self,
        template: Template,
        interval_secs: Option<u64>,
        replace: bool,
        actor: &str,
    ) -> RuleResult<Installed> {
        let interval = interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS);
        check_interval("interval_seconds", Some(interval))?;
        let days = template_window(&self.settings.metric_windows_days)?;
        let stats = self.buyer_stats(template, days).await?;
        let design = design(template, days, &stats).map_err(RuleError::FailedPrecondition)?;

        let mut rules = Vec::with_capacity(design.rules.len());
        for rule in &design.rules {
            let condition = tagd_condition::parse(&rule.condition).map_err(|error| {
                RuleError::FailedPrecondition(format!(
                    "template rule {:?} has a condition that does not parse ({error}); this is a bug",
                    rule.name
                ))
            })?;
            // Template conditions read metrics, not the template's own tags, so they bind
            // before those exist.
            self.segments.bind("condition", &condition).await?;
            let spec = check_rule(RuleSpec {
                name: rule.name.clone(),
                description: rule.description.clone(),
                // The store finds (or creates) the tag by the template's name for it.
                tag_id: rule.tag.clone(),
                value: rule.value.clone(),
                condition: condition.to_string(),
                interval_secs: Some(interval),
                overrides_manual: false,
                enabled: true,
            })?;
            rules.push(TemplateRuleSpec {
                tag: rule.tag.clone(),
                spec,
            });
        }
        let installed = self
            .store
            .install_template(&TemplateInstall {
                template: template.as_str().to_owned(),
                replace,
                category: NewCategory {
                    name: design.category,
                    description: design.category_description,
                    exclusive: design.exclusive,
                },
                tags: design.tags,
                rules,
                actor: actor.to_owned(),
            })
            .await?;
        Ok(Installed {
            category_id: installed.category_id,
            tag_ids: installed.tag_ids,
            rules: installed.rules,
        })
    }

    /// The numbers of every buyer in the window, for templates that split buyers.
    async fn buyer_stats(&self, template: Template, days: u32) -> RuleResult<BuyerStats> {
        let mut stats = BuyerStats::default();
        if !template.needs_buyers() {
            return Ok(stats);
        }
        let now = Utc::now().naive_utc();
        for buyer in self.store.buyer_totals(now, days).await? {
            #[expect(
                clippy::cast_precision_loss,
                reason = "order counts, cents and days stay far below 2^52"
            )]
            stats.push(
                buyer.orders as f64,
                buyer.cents as f64 / CENTS_PER_UNIT,
                (now - buyer.last_ordered_at).num_days().max(0) as f64,
            );
        }
        Ok(stats)
    }
}
