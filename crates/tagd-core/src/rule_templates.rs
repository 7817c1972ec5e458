//! The ready-made rule templates as data: which category and tags each uses
//! and the rules it installs, with thresholds computed from the buyers'
//! spending, orders and recency at install time. Pure: the caller reads the
//! statistics and writes the rules.

use crate::error::{DomainError, DomainResult};
use crate::rules::{RFM_CLASSES, quantile};
use crate::tags::ValueType;

/// The templates an admin installs with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    ValueTier,
    Rfm,
    Lifecycle,
    ChurnRisk,
}

impl Template {
    pub const ALL: [Template; 4] = [
        Template::ValueTier,
        Template::Rfm,
        Template::Lifecycle,
        Template::ChurnRisk,
    ];

    /// The name stored on each rule a template installs.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::ValueTier => "value_tier",
            Template::Rfm => "rfm",
            Template::Lifecycle => "lifecycle",
            Template::ChurnRisk => "churn_risk",
        }
    }

    /// Whether its thresholds come from the customers' purchases.
    pub fn needs_buyers(self) -> bool {
        matches!(self, Template::ValueTier | Template::Rfm)
    }
}

/// A tag a template sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTag {
    pub name: String,
    pub description: String,
    pub value_type: ValueType,
    pub enum_values: Vec<String>,
}

/// A rule a template installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRule {
    pub name: String,
    pub description: String,
    /// The name of one of the design's tags.
    pub tag: String,
    pub value: Option<String>,
    /// Condition text.
    pub condition: String,
}

/// Everything one template installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDesign {
    pub category: String,
    pub category_description: String,
    pub exclusive: bool,
    pub tags: Vec<TemplateTag>,
    pub rules: Vec<TemplateRule>,
}

/// Per buyer (a customer with an order in the window): orders and amount
/// (yuan) in the window, days since the last order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuyerStats {
    pub orders: Vec<f64>,
    pub spent: Vec<f64>,
    pub recency_days: Vec<f64>,
}

impl BuyerStats {
    pub fn push(&mut self, orders: f64, spent: f64, recency_days: f64) {
        self.orders.push(orders);
        self.spent.push(spent);
        self.recency_days.push(recency_days);
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// Numbers in conditions: whole numbers as such, others to the cent.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn flag(name: &str, description: &str) -> TemplateTag {
    TemplateTag {
        name: name.to_owned(),
        description: description.to_owned(),
        value_type: ValueType::Flag,
        enum_values: Vec::new(),
    }
}

fn rule(
    name: &str,
    description: String,
    tag: &str,
    value: Option<&str>,
    condition: String,
) -> TemplateRule {
    TemplateRule {
        name: name.to_owned(),
        description,
        tag: tag.to_owned(),
        value: value.map(str::to_owned),
        condition,
    }
}

/// The design of `template` for metric window `days` (the longest configured) over `buyers`.
/// A template that splits buyers by their numbers cannot be designed while nobody bought in
/// the window: the error says so (the caller's FAILED_PRECONDITION).
pub fn design(
    template: Template,
    days: u32,
    buyers: &BuyerStats,
) -> Result<TemplateDesign, String> {
    if template.needs_buyers() && buyers.is_empty() {
        return Err(format!(
            "template {} splits buyers by their purchases, and no customer has an order in the last {days} days",
            template.as_str()
        ));
    }
    Ok(match template {
        Template::ValueTier => value_tier(days, buyers),
        Template::Rfm => rfm(days, buyers),
        Template::Lifecycle => lifecycle(days),
        Template::ChurnRisk => churn_risk(),
    })
}

/// 高价值 from the 80th percentile of spending up, 中价值 from the 50th, 低价值 below
/// (among customers who spent anything).
fn value_tier(days: u32, buyers: &BuyerStats) -> TemplateDesign {
    let mut spent: Vec<f64> = buyers.spent.iter().copied().filter(|v| *v > 0.0).collect();
    let middle = quantile(&mut spent, 0.5).unwrap_or(0.0);
    let high = quantile(&mut spent, 0.8).unwrap_or(0.0);
    let metric = format!("spent_{days}d");
    let (high_text, middle_text) = (number(high), number(middle));
    TemplateDesign {
        category: "价值等级".into(),
        category_description: format!("客户价值分层：近{days}天消费额分位数（模板 value_tier）"),
        exclusive: true,
        tags: vec![
            flag("高价值", &format!("近{days}天消费额位于前20%")),
            flag("中价值", &format!("近{days}天消费额位于20%–50%")),
            flag("低价值", &format!("近{days}天有消费，消费额位于后50%")),
        ],
        rules: vec![
            rule(
                "价值等级·高价值",
                format!("{metric} ≥ {high_text}（第80百分位）"),
                "高价值",
                None,
                format!("{metric} >= {high_text}"),
            ),
            rule(
                "价值等级·中价值",
                format!("{middle_text} ≤ {metric} < {high_text}"),
                "中价值",
                None,
                format!("{metric} >= {middle_text} AND {metric} < {high_text}"),
            ),
            rule(
                "价值等级·低价值",
                format!("0 < {metric} < {middle_text}"),
                "低价值",
                None,
                format!("{metric} > 0 AND {metric} < {middle_text}"),
            ),
        ],
    }
}

/// Cut points between quintiles: the 20th, 40th, 60th and 80th percentiles.
fn quintile_cuts(values: &[f64]) -> [f64; 4] {
    let mut sorted = values.to_vec();
    [0.2, 0.4, 0.6, 0.8].map(|q| quantile(&mut sorted, q).unwrap_or(0.0))
}

/// Five rules setting `tag` to 1..=5 by quintile of `metric`. For recency (`higher_is_better`
/// false) the most recent buyers score 5.
fn score_rules(
    tag: &str,
    metric: &str,
    window: &str,
    cuts: [f64; 4],
    higher_is_better: bool,
) -> Vec<TemplateRule> {
    let cut = cuts.map(number);
    // Bands from the lowest value up: (lower bound, upper bound), each `>= lower AND < upper`.
    let bands: [(Option<&str>, Option<&str>); 5] = [
        (None, Some(&cut[0])),
        (Some(&cut[0]), Some(&cut[1])),
        (Some(&cut[1]), Some(&cut[2])),
        (Some(&cut[2]), Some(&cut[3])),
        (Some(&cut[3]), None),
    ];
    bands
        .iter()
        .enumerate()
        .map(|(band, (lower, upper))| {
            let score = if higher_is_better { band + 1 } else { 5 - band };
            // Everyone scored bought in the window; the window bounds recency too.
            let mut terms = vec![format!("orders_{window}d >= 1")];
            if let Some(lower) = lower {
                terms.push(format!("{metric} >= {lower}"));
            }
            if let Some(upper) = upper {
                terms.push(format!("{metric} < {upper}"));
            }
            let score = score.to_string();
            rule(
                &format!("{tag}={score}"),
                format!("{metric} 第{}五分位", band + 1),
                tag,
                Some(&score),
                terms.join(" AND "),
            )
        })
        .collect()
}

/// R, F and M scores by quintile among buyers in the window, and the eight classes by
/// whether each of recency, orders and spending is on the good side of its median.
fn rfm(days: u32, buyers: &BuyerStats) -> TemplateDesign {
    let window = days.to_string();
    let (recency, orders, spent) = (
        "recency_days".to_owned(),
        format!("orders_{days}d"),
        format!("spent_{days}d"),
    );
    let median = |values: &[f64]| number(quantile(&mut values.to_vec(), 0.5).unwrap_or(0.0));
    let (r_median, f_median, m_median) = (
        median(&buyers.recency_days),
        median(&buyers.orders),
        median(&buyers.spent),
    );
    let score_tag = |name: &str, what: &str| TemplateTag {
        name: name.to_owned(),
        description: format!("{what}五分位得分 1–5（5 最好）"),
        value_type: ValueType::Number,
        enum_values: Vec::new(),
    };
    let mut rules = Vec::new();
    rules.extend(score_rules(
        "R分",
        &recency,
        &window,
        quintile_cuts(&buyers.recency_days),
        false,
    ));
    rules.extend(score_rules(
        "F分",
        &orders,
        &window,
        quintile_cuts(&buyers.orders),
        true,
    ));
    rules.extend(score_rules(
        "M分",
        &spent,
        &window,
        quintile_cuts(&buyers.spent),
        true,
    ));
    for class in RFM_CLASSES {
        let (r_high, f_high, m_high) = rfm_sides(class);
        let side = |high: bool, metric: &str, median: &str, lower_is_better: bool| {
            // "High" means better than the median: fewer days, more orders, more money.
            match (high, lower_is_better) {
                (true, false) | (false, true) => format!("{metric} > {median}"),
                (false, false) | (true, true) => format!("{metric} <= {median}"),
            }
        };
        let condition = [
            format!("orders_{window}d >= 1"),
            side(r_high, &recency, &r_median, true),
            side(f_high, &orders, &f_median, false),
            side(m_high, &spent, &m_median, false),
        ]
        .join(" AND ");
        rules.push(rule(
            &format!("RFM分类={class}"),
            format!(
                "R{} F{} M{}（相对中位数）",
                arrow(r_high),
                arrow(f_high),
                arrow(m_high)
            ),
            "RFM分类",
            Some(class),
            condition,
        ));
    }
    TemplateDesign {
        category: "RFM".into(),
        category_description: format!("RFM 模型：近{days}天（模板 rfm）"),
        exclusive: false,
        tags: vec![
            score_tag("R分", "最近一次消费"),
            score_tag("F分", &format!("近{days}天订单数")),
            score_tag("M分", &format!("近{days}天消费额")),
            TemplateTag {
                name: "RFM分类".into(),
                description: "RFM 八类客户".into(),
                value_type: ValueType::Enum,
                enum_values: RFM_CLASSES.iter().map(|c| (*c).to_owned()).collect(),
            },
        ],
        rules,
    }
}

fn arrow(high: bool) -> &'static str {
    if high { "↑" } else { "↓" }
}

/// Which sides (recency, frequency, monetary) an RFM class stands for.
fn rfm_sides(class: &str) -> (bool, bool, bool) {
    for r in [true, false] {
        for f in [true, false] {
            for m in [true, false] {
                if crate::rules::rfm_class(r, f, m) == class {
                    return (r, f, m);
                }
            }
        }
    }
    (false, false, false)
}

/// Lifecycle stages from orders and contacts.
fn lifecycle(days: u32) -> TemplateDesign {
    let no_orders = "NOT (recency_days >= 0)";
    let orders = format!("orders_{days}d");
    TemplateDesign {
        category: "生命周期".into(),
        category_description: "客户生命周期阶段（模板 lifecycle）".into(),
        exclusive: true,
        tags: vec![
            flag("潜在客户", "没有订单，也没有沟通记录"),
            flag("初次接触", "没有订单；最近一次沟通在30天以前"),
            flag("意向客户", "没有订单；30天内有沟通"),
            flag("成交客户", &format!("近{days}天恰好一笔订单")),
            flag(
                "老客户",
                &format!("近{days}天两笔以上订单，或一年多以前买过"),
            ),
        ],
        rules: vec![
            rule(
                "生命周期·潜在客户",
                "没有订单，也没有沟通记录".into(),
                "潜在客户",
                None,
                format!("{no_orders} AND NOT (last_interaction_days >= 0)"),
            ),
            rule(
                "生命周期·初次接触",
                "没有订单；最近一次沟通在30天以前".into(),
                "初次接触",
                None,
                format!("{no_orders} AND last_interaction_days > 30"),
            ),
            rule(
                "生命周期·意向客户",
                "没有订单；30天内有沟通".into(),
                "意向客户",
                None,
                format!("{no_orders} AND last_interaction_days <= 30"),
            ),
            rule(
                "生命周期·成交客户",
                format!("近{days}天恰好一笔订单"),
                "成交客户",
                None,
                format!("{orders} = 1"),
            ),
            rule(
                "生命周期·老客户",
                format!("近{days}天两笔以上订单，或更早买过"),
                "老客户",
                None,
                format!("{orders} >= 2 OR ({orders} = 0 AND recency_days >= 0)"),
            ),
        ],
    }
}

/// Churn risk from a long silence or a falling purchase frequency (orders in the last 90
/// days against the 90 before).
fn churn_risk() -> TemplateDesign {
    TemplateDesign {
        category: "客户风险".into(),
        category_description: "流失预警（模板 churn_risk）".into(),
        exclusive: false,
        tags: vec![TemplateTag {
            name: "流失风险".into(),
            description: "购买频率下降或长期未购买".into(),
            value_type: ValueType::Enum,
            enum_values: vec!["高".into(), "中".into()],
        }],
        rules: vec![
            rule(
                "流失风险·高",
                "180天以上未购买，或近90天订单不到前90天的四分之一".into(),
                "流失风险",
                Some("高"),
                "recency_days > 180 OR frequency_trend <= 0.25".into(),
            ),
            rule(
                "流失风险·中",
                "近90天订单是前90天的25%–50%".into(),
                "流失风险",
                Some("中"),
                "recency_days <= 180 AND frequency_trend > 0.25 AND frequency_trend <= 0.5".into(),
            ),
        ],
    }
}

/// Names a template from its stored form.
impl std::str::FromStr for Template {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Template::ALL
            .into_iter()
            .find(|template| template.as_str() == raw)
            .ok_or_else(|| format!("unknown rule template {raw:?}"))
    }
}

/// The metric window templates use: the longest configured one.
pub fn template_window(days: &[u32]) -> DomainResult<u32> {
    days.iter().copied().max().ok_or_else(|| {
        DomainError::invalid("metric_windows_days", "no metric window is configured")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buyers(n: u32) -> BuyerStats {
        let mut stats = BuyerStats::default();
        for i in 1..=n {
            stats.push(
                f64::from(i % 7 + 1),
                f64::from(i) * 10.0,
                f64::from(i % 300),
            );
        }
        stats
    }

    #[test]
    fn value_tiers_split_at_the_80th_and_50th_percentiles() {
        let design = design(Template::ValueTier, 365, &buyers(100)).unwrap();
        assert!(design.exclusive);
        let conditions: Vec<&str> = design.rules.iter().map(|r| r.condition.as_str()).collect();
        assert_eq!(
            conditions,
            [
                "spent_365d >= 800",
                "spent_365d >= 500 AND spent_365d < 800",
                "spent_365d > 0 AND spent_365d < 500",
            ]
        );
        for rule in &design.rules {
            assert!(design.tags.iter().any(|t| t.name == rule.tag));
        }
    }

    #[test]
    fn rfm_installs_fifteen_score_rules_and_the_eight_classes() {
        let design = design(Template::Rfm, 365, &buyers(1000)).unwrap();
        assert_eq!(design.rules.len(), 15 + 8);
        let classes: Vec<_> = design
            .rules
            .iter()
            .filter(|r| r.tag == "RFM分类")
            .map(|r| r.value.clone().unwrap())
            .collect();
        assert_eq!(classes, RFM_CLASSES.map(str::to_owned));
        // Recency scores run backwards: the lowest band (most recent) scores 5.
        let r5 = design.rules.iter().find(|r| r.name == "R分=5").unwrap();
        assert!(r5.condition.contains("recency_days <"), "{}", r5.condition);
        let best = design
            .rules
            .iter()
            .find(|r| r.value.as_deref() == Some("重要价值客户"))
            .unwrap();
        assert!(
            best.condition.contains("recency_days <="),
            "{}",
            best.condition
        );
        assert!(
            best.condition.contains("orders_365d >"),
            "{}",
            best.condition
        );
        assert!(
            best.condition.contains("spent_365d >"),
            "{}",
            best.condition
        );
    }

    #[test]
    fn templates_that_split_buyers_need_buyers() {
        let empty = BuyerStats::default();
        assert!(design(Template::ValueTier, 365, &empty).is_err());
        assert!(design(Template::Rfm, 365, &empty).is_err());
        assert!(design(Template::Lifecycle, 365, &empty).is_ok());
        assert!(design(Template::ChurnRisk, 365, &empty).is_ok());
    }

    #[test]
    fn every_template_names_round_trip() {
        for template in Template::ALL {
            assert_eq!(template.as_str().parse::<Template>(), Ok(template));
        }
        assert_eq!(number(12.0), "12");
        assert_eq!(number(12.345), "12.35");
    }
}
