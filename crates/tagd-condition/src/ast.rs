//! The condition syntax tree as written, before any name is resolved: every
//! node kind is explicit so the tree maps one-to-one onto a structured
//! (proto) message.

use std::fmt;

use chrono::NaiveDate;

/// A boolean combination of predicates.
///
/// Shape rule (kept by the parser, to be kept by the proto converter): `And`
/// and `Or` carry at least two operands; a parenthesised group is not a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Predicate(Predicate),
}

/// One test on one customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `has_tag("流失风险")`: the customer holds the tag (any value).
    HasTag(TagRef),
    /// `tag("年消费额") >= 5000`: the customer holds the tag with a matching value.
    Tag { tag: TagRef, test: Comparison },
    /// `province = "北京"`, `name contains "张"`.
    Field {
        field: CustomerField,
        test: Comparison,
    },
    /// `age between 25 and 35`: whole years from the birthday.
    Age(Comparison),
    /// `has_attr("会员等级")`: the customer has the free-form attribute.
    HasAttr(String),
    /// `attr("会员等级") = "金卡"`.
    Attr { key: String, test: Comparison },
    /// `orders_90d >= 3`: a precomputed per-customer metric.
    Metric { metric: Metric, test: Comparison },
    /// `bought_category("母婴")`: at least one purchase in the category, ever.
    BoughtCategory(String),
    /// `purchases(category = "母婴", days = 90) >= 2`: number of purchases.
    Purchases {
        filter: PurchaseFilter,
        test: Comparison,
    },
    /// `spent(days = 365) > 10000`: sum of purchase amounts.
    Spent {
        filter: PurchaseFilter,
        test: Comparison,
    },
    /// `in_segment("北京高价值")`: the customer matches another segment's condition.
    InSegment(String),
}

/// How a tag is named in a condition: `"name"` or `"category/name"`.
///
/// The reference is kept exactly as written; [`TagRef::parts`] splits it at
/// the first `/`. A tag whose own name contains `/` can still be named bare
/// (catalogues fall back to the whole text as a name, see
/// [`crate::catalogue::resolve_tag`]); a category whose name contains `/`
/// cannot be used as a qualifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagRef(pub String);

impl TagRef {
    pub fn new(reference: impl Into<String>) -> Self {
        Self(reference.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(Some(category), name)` for `"category/name"`, `(None, name)` otherwise.
    pub fn parts(&self) -> (Option<&str>, &str) {
        match self.0.split_once('/') {
            Some((category, name)) => (Some(category), name),
            None => (None, &self.0),
        }
    }
}

impl fmt::Display for TagRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The right-hand side of a predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// `= v`, `!= v`, `< v`, `<= v`, `> v`, `>= v`.
    Compare { op: CmpOp, value: Literal },
    /// `in [a, b, …]` (at least one value).
    In(Vec<Literal>),
    /// `between low and high`, both ends included.
    Between { low: Literal, high: Literal },
    /// `contains "text"`: case-insensitive substring.
    Contains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether the operator needs ordered values (numbers, dates).
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// A constant in a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    /// Always finite.
    Number(f64),
    /// Written `date("2026-01-31")`.
    Date(NaiveDate),
    Bool(bool),
}

impl Literal {
    /// What kind of literal this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Literal::String(_) => "a string",
            Literal::Number(_) => "a number",
            Literal::Date(_) => "a date",
            Literal::Bool(_) => "a boolean",
        }
    }
}

/// The customer fields a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerField {
    Name,
    Gender,
    Province,
    City,
    District,
    Company,
    /// The customer's source channel.
    Channel,
}

impl CustomerField {
    pub const ALL: [CustomerField; 7] = [
        CustomerField::Name,
        CustomerField::Gender,
        CustomerField::Province,
        CustomerField::City,
        CustomerField::District,
        CustomerField::Company,
        CustomerField::Channel,
    ];

    /// The keyword naming the field in the text form.
    pub fn keyword(self) -> &'static str {
        match self {
            CustomerField::Name => "name",
            CustomerField::Gender => "gender",
            CustomerField::Province => "province",
            CustomerField::City => "city",
            CustomerField::District => "district",
            CustomerField::Company => "company",
            CustomerField::Channel => "channel",
        }
    }

    pub fn from_keyword(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|field| field.keyword() == word)
    }
}

/// The closed set of precomputed customer metrics. Windowed metrics carry
/// their window as data; which windows are actually computed is the
/// catalogue's call ([`crate::Catalogue::metric_available`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// `orders_<N>d`: orders in the last N days.
    Orders {
        days: u32,
    },
    /// `spent_<N>d`: amount spent in the last N days.
    Spent {
        days: u32,
    },
    /// Days since the last order.
    RecencyDays,
    AvgOrderValue,
    /// Days since the last interaction of any kind.
    LastInteractionDays,
    /// Recent order frequency relative to the long-run one (>1 rising, <1 falling).
    FrequencyTrend,
}

impl Metric {
    /// The windows the standard metric job computes.
    pub const STANDARD_WINDOWS: [u32; 3] = [30, 90, 365];
    /// The longest window a condition may name, in days (ten years).
    pub const MAX_WINDOW_DAYS: u32 = 3660;

    /// Parses a metric keyword (`orders_90d`, `recency_days`, …); the window
    /// is any whole number of days from 1 to [`Metric::MAX_WINDOW_DAYS`].
    pub fn from_keyword(word: &str) -> Option<Self> {
        match word {
            "recency_days" => return Some(Metric::RecencyDays),
            "avg_order_value" => return Some(Metric::AvgOrderValue),
            "last_interaction_days" => return Some(Metric::LastInteractionDays),
            "frequency_trend" => return Some(Metric::FrequencyTrend),
            _ => {}
        }
        let (kind, rest) = word.split_once('_')?;
        let digits = rest.strip_suffix('d')?;
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return None;
        }
        let days: u32 = digits.parse().ok()?;
        if days > Self::MAX_WINDOW_DAYS {
            return None;
        }
        match kind {
            "orders" => Some(Metric::Orders { days }),
            "spent" => Some(Metric::Spent { days }),
            _ => None,
        }
    }

    /// Whether the standard metric job computes this metric.
    pub fn is_standard(self) -> bool {
        match self {
            Metric::Orders { days } | Metric::Spent { days } => {
                Self::STANDARD_WINDOWS.contains(&days)
            }
            _ => true,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Orders { days } => write!(f, "orders_{days}d"),
            Metric::Spent { days } => write!(f, "spent_{days}d"),
            Metric::RecencyDays => f.write_str("recency_days"),
            Metric::AvgOrderValue => f.write_str("avg_order_value"),
            Metric::LastInteractionDays => f.write_str("last_interaction_days"),
            Metric::FrequencyTrend => f.write_str("frequency_trend"),
        }
    }
}

/// Which purchase events `purchases(…)` and `spent(…)` look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PurchaseFilter {
    /// Only purchases in this category (compared case-insensitively).
    pub category: Option<String>,
    /// Only purchases made on or after `today - days`; all of them when absent.
    pub days: Option<u32>,
}

impl Condition {
    pub fn predicate(predicate: Predicate) -> Self {
        Condition::Predicate(predicate)
    }

    /// `NOT self`.
    #[must_use]
    pub fn negate(self) -> Self {
        Condition::Not(Box::new(self))
    }

    /// Nesting depth: a predicate is 1, each AND/OR/NOT adds one. Computed
    /// without recursion so a hostile tree cannot overflow the stack here.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((node, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            match node {
                Condition::And(items) | Condition::Or(items) => {
                    stack.extend(items.iter().map(|item| (item, depth + 1)));
                }
                Condition::Not(inner) => stack.push((inner, depth + 1)),
                Condition::Predicate(_) => {}
            }
        }
        deepest
    }

    /// Every predicate, depth first, left to right.
    pub fn predicates(&self) -> Vec<&Predicate> {
        let mut found = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                Condition::And(items) | Condition::Or(items) => stack.extend(items.iter().rev()),
                Condition::Not(inner) => stack.push(inner),
                Condition::Predicate(predicate) => found.push(predicate),
            }
        }
        found
    }

    /// The tags named anywhere in this condition (not inside referenced
    /// segments), each once, in order of first appearance.
    pub fn referenced_tags(&self) -> Vec<&TagRef> {
        let mut tags: Vec<&TagRef> = Vec::new();
        for predicate in self.predicates() {
            if let Predicate::HasTag(tag) | Predicate::Tag { tag, .. } = predicate
                && !tags.contains(&tag)
            {
                tags.push(tag);
            }
        }
        tags
    }

    /// The segments this condition names directly, each once, in order.
    pub fn referenced_segments(&self) -> Vec<&str> {
        let mut segments: Vec<&str> = Vec::new();
        for predicate in self.predicates() {
            if let Predicate::InSegment(name) = predicate
                && !segments.contains(&name.as_str())
            {
                segments.push(name);
            }
        }
        segments
    }

    /// The attribute keys this condition names, each once, in order.
    pub fn referenced_attributes(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for predicate in self.predicates() {
            if let Predicate::HasAttr(key) | Predicate::Attr { key, .. } = predicate
                && !keys.contains(&key.as_str())
            {
                keys.push(key);
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_windows_are_data() {
        assert_eq!(
            Metric::from_keyword("orders_90d"),
            Some(Metric::Orders { days: 90 })
        );
        assert_eq!(
            Metric::from_keyword("spent_7d"),
            Some(Metric::Spent { days: 7 })
        );
        assert_eq!(Metric::from_keyword("orders_0d"), None);
        assert_eq!(Metric::from_keyword("orders_090d"), None);
        assert_eq!(Metric::from_keyword("orders_99999d"), None);
        assert_eq!(Metric::from_keyword("visits_9d"), None);
        assert!(Metric::Orders { days: 365 }.is_standard());
        assert!(!Metric::Orders { days: 7 }.is_standard());
        assert_eq!(Metric::Spent { days: 30 }.to_string(), "spent_30d");
    }

    #[test]
    fn tag_refs_split_at_the_first_slash() {
        assert_eq!(
            TagRef::new("价值等级/高价值").parts(),
            (Some("价值等级"), "高价值")
        );
        assert_eq!(TagRef::new("a/b/c").parts(), (Some("a"), "b/c"));
        assert_eq!(TagRef::new("流失风险").parts(), (None, "流失风险"));
    }
}
