//! Installing a ready-made template: thresholds from the buyers' numbers now
//! (`tagd-core::rule_templates` decides them), the category and tags found or
//! created, the rules created — or, when the template is installed again with
//! `replace`, updated in place so the tags they gave stay theirs.

use std::collections::HashMap;

use chrono::Utc;
use tagd_core::rule_templates::{BuyerStats, Template, design, template_window};
use tagd_core::rules::{RuleSpec, check_interval};
use tagd_core::tags::Tag;
use tagd_core::text;
use tagd_store::{NewCategory, NewTag, RuleRecord};

use crate::{RuleDraft, RuleError, RuleResult, RuleUpdate, Rules};

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
    /// Installs `template`. Everything is checked before anything is written (a tag of
    /// the template's name but another type, a hand-written rule holding one of its
    /// names, a second install without `replace`); each write is idempotent, so an
    /// install cut short is completed by installing again with `replace`.
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

        let rules = self.store.all_rules().await?;
        let installed: Vec<&RuleRecord> = rules
            .iter()
            .filter(|rule| rule.template == template.as_str())
            .collect();
        if !installed.is_empty() && !replace {
            return Err(RuleError::AlreadyExists(format!(
                "template {} is already installed ({} rules); install it with replace to recompute its thresholds",
                template.as_str(),
                installed.len()
            )));
        }
        for rule in &design.rules {
            let key = text::key(&rule.name);
            if let Some(other) = rules
                .iter()
                .find(|other| text::key(&other.name) == key && other.template != template.as_str())
            {
                return Err(RuleError::AlreadyExists(format!(
                    "rule {:?} ({}) exists and was not installed by template {}; rename it first",
                    other.name,
                    other.id,
                    template.as_str()
                )));
            }
        }
        let mut conditions = Vec::with_capacity(design.rules.len());
        for rule in &design.rules {
            conditions.push(tagd_condition::parse(&rule.condition).map_err(|error| {
                RuleError::FailedPrecondition(format!(
                    "template rule {:?} has a condition that does not parse ({error}); this is a bug",
                    rule.name
                ))
            })?);
        }
        let category = self.store.category_named(&design.category).await?;
        let mut tags: HashMap<String, Tag> = HashMap::new();
        if let Some(category) = &category {
            for wanted in &design.tags {
                if let Some(tag) = self.store.tag_named(&category.id, &wanted.name).await? {
                    let fits = tag.value_type == wanted.value_type
                        && wanted
                            .enum_values
                            .iter()
                            .all(|value| tag.enum_values.contains(value));
                    if !fits {
                        return Err(RuleError::FailedPrecondition(format!(
                            "tag {}/{} exists as {} but template {} needs {}{}",
                            category.name,
                            tag.name,
                            tag.value_type.as_str(),
                            template.as_str(),
                            wanted.value_type.as_str(),
                            if wanted.enum_values.is_empty() {
                                String::new()
                            } else {
                                format!(" with values {}", wanted.enum_values.join(", "))
                            }
                        )));
                    }
                    tags.insert(wanted.name.clone(), tag);
                }
            }
        }

        let category = match category {
            Some(category) => category,
            None => {
                self.store
                    .create_category(NewCategory {
                        name: design.category.clone(),
                        description: design.category_description.clone(),
                        exclusive: design.exclusive,
                    })
                    .await?
            }
        };
        for wanted in &design.tags {
            if tags.contains_key(&wanted.name) {
                continue;
            }
            let tag = self
                .store
                .create_tag(NewTag {
                    category_id: category.id.clone(),
                    name: wanted.name.clone(),
                    description: wanted.description.clone(),
                    value_type: wanted.value_type,
                    enum_values: wanted.enum_values.clone(),
                    default_validity_secs: None,
                })
                .await?;
            tags.insert(wanted.name.clone(), tag);
        }

        let mut written = Vec::with_capacity(design.rules.len());
        for (rule, condition) in design.rules.iter().zip(conditions) {
            let tag = tags.get(&rule.tag).ok_or_else(|| {
                RuleError::FailedPrecondition(format!(
                    "template rule {:?} sets tag {:?}, which the template does not define; this is a bug",
                    rule.name, rule.tag
                ))
            })?;
            let key = text::key(&rule.name);
            let current = installed
                .iter()
                .find(|current| text::key(&current.name) == key);
            let record = match current {
                Some(current) => {
                    self.update(
                        &current.id,
                        &RuleUpdate {
                            description: Some(rule.description.clone()),
                            value: Some(rule.value.clone().unwrap_or_default()),
                            condition: Some(condition),
                            interval_secs: Some(Some(interval)),
                            enabled: Some(true),
                            ..RuleUpdate::default()
                        },
                    )
                    .await?
                }
                None => {
                    self.create_from(
                        &RuleDraft {
                            spec: RuleSpec {
                                name: rule.name.clone(),
                                description: rule.description.clone(),
                                tag_id: tag.id.clone(),
                                value: rule.value.clone(),
                                condition: String::new(),
                                interval_secs: Some(interval),
                                overrides_manual: false,
                                enabled: true,
                            },
                            condition,
                        },
                        template.as_str(),
                        actor,
                    )
                    .await?
                }
            };
            written.push(record);
        }
        // Rules an earlier install made that this design no longer has take their tags along.
        for old in installed {
            if !written.iter().any(|rule| rule.id == old.id) {
                self.store.delete_rule(&old.id, true, actor).await?;
            }
        }
        let tag_ids: Vec<String> = design
            .tags
            .iter()
            .filter_map(|wanted| tags.get(&wanted.name).map(|tag| tag.id.clone()))
            .collect();
        Ok(Installed {
            category_id: category.id,
            tag_ids,
            rules: written,
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
