//! What a condition's names are checked against: the caller's catalogue of
//! tags, attributes, segments and metrics, and an in-memory one for tests
//! and previews.

use tagd_core::tags::ValueType;
use tagd_core::text;

use crate::ast::{Condition, Metric, TagRef};

/// A tag as the condition language needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub id: String,
    pub category: String,
    pub name: String,
    pub value_type: ValueType,
    /// The allowed values of an enum tag; empty for the other types.
    pub enum_values: Vec<String>,
}

/// The outcome of looking a tag reference up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagLookup {
    Found(TagInfo),
    Unknown,
    /// A bare name held by tags of several categories (listed).
    Ambiguous {
        categories: Vec<String>,
    },
}

/// A stored segment: its id, its name and its condition (parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub id: String,
    pub name: String,
    pub condition: Condition,
}

/// The names a condition may use. Implemented by the store (over its
/// tables) and by [`MemoryCatalogue`].
pub trait Catalogue {
    /// Resolves `tag("…")`; [`resolve_tag`] implements the rule over a list.
    fn tag(&self, reference: &TagRef) -> TagLookup;
    /// Whether customers may carry the attribute `key` (normalised text).
    fn attribute_known(&self, key: &str) -> bool;
    /// The segment called `name` (compared case-insensitively).
    fn segment(&self, name: &str) -> Option<SegmentInfo>;
    /// Whether the metric is computed; by default the standard windows.
    fn metric_available(&self, metric: Metric) -> bool {
        metric.is_standard()
    }
}

/// The tag-reference rule over a list of tags, names compared by
/// [`text::key`]:
/// - `"category/name"` is the tag `name` of category `category`;
/// - `"name"` is the one tag called `name`, ambiguous if several categories
///   have one;
/// - a qualified reference that matches nothing is tried once more as a bare
///   name, so a tag whose name contains `/` can be named.
pub fn resolve_tag<'a>(
    tags: impl IntoIterator<Item = &'a TagInfo> + Clone,
    reference: &TagRef,
) -> TagLookup {
    let by_name = |name: &str| -> TagLookup {
        let name_key = text::key(name);
        let found: Vec<&TagInfo> = tags
            .clone()
            .into_iter()
            .filter(|tag| text::key(&tag.name) == name_key)
            .collect();
        match found.as_slice() {
            [] => TagLookup::Unknown,
            [one] => TagLookup::Found((*one).clone()),
            many => TagLookup::Ambiguous {
                categories: many.iter().map(|tag| tag.category.clone()).collect(),
            },
        }
    };
    match reference.parts() {
        (Some(category), name) => {
            let (category_key, name_key) = (text::key(category), text::key(name));
            tags.clone()
                .into_iter()
                .find(|tag| {
                    text::key(&tag.category) == category_key && text::key(&tag.name) == name_key
                })
                .map_or_else(
                    || by_name(reference.as_str()),
                    |tag| TagLookup::Found(tag.clone()),
                )
        }
        (None, name) => by_name(name),
    }
}

/// A catalogue held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryCatalogue {
    pub tags: Vec<TagInfo>,
    /// Known attribute keys (normalised); see `any_attribute`.
    pub attributes: Vec<String>,
    /// Accept every attribute key (attributes are free-form).
    pub any_attribute: bool,
    pub segments: Vec<SegmentInfo>,
}

impl MemoryCatalogue {
    #[must_use]
    pub fn with_tag(
        mut self,
        id: &str,
        category: &str,
        name: &str,
        value_type: ValueType,
        enum_values: &[&str],
    ) -> Self {
        self.tags.push(TagInfo {
            id: id.to_owned(),
            category: category.to_owned(),
            name: name.to_owned(),
            value_type,
            enum_values: enum_values.iter().map(|&value| value.to_owned()).collect(),
        });
        self
    }

    #[must_use]
    pub fn with_attribute(mut self, key: &str) -> Self {
        self.attributes.push(text::normalize(key));
        self
    }

    #[must_use]
    pub fn with_segment(mut self, id: &str, name: &str, condition: Condition) -> Self {
        self.segments.push(SegmentInfo {
            id: id.to_owned(),
            name: name.to_owned(),
            condition,
        });
        self
    }
}

impl Catalogue for MemoryCatalogue {
    fn tag(&self, reference: &TagRef) -> TagLookup {
        resolve_tag(&self.tags, reference)
    }

    fn attribute_known(&self, key: &str) -> bool {
        self.any_attribute || self.attributes.iter().any(|known| known == key)
    }

    fn segment(&self, name: &str) -> Option<SegmentInfo> {
        let name_key = text::key(name);
        self.segments
            .iter()
            .find(|segment| text::key(&segment.name) == name_key)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> MemoryCatalogue {
        MemoryCatalogue::default()
            .with_tag("t1", "价值等级", "高价值", ValueType::Flag, &[])
            .with_tag("t2", "活动", "高价值", ValueType::Flag, &[])
            .with_tag("t3", "渠道", "A/B", ValueType::Flag, &[])
            .with_tag("t4", "风险", "流失风险", ValueType::Flag, &[])
    }

    fn id(lookup: TagLookup) -> String {
        match lookup {
            TagLookup::Found(tag) => tag.id,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn references_resolve_by_rule() {
        let catalogue = catalogue();
        assert_eq!(id(catalogue.tag(&TagRef::new("流失风险"))), "t4");
        assert_eq!(id(catalogue.tag(&TagRef::new("价值等级/高价值"))), "t1");
        assert_eq!(id(catalogue.tag(&TagRef::new("活动/高价值"))), "t2");
        assert_eq!(id(catalogue.tag(&TagRef::new("A/B"))), "t3");
        assert_eq!(id(catalogue.tag(&TagRef::new("渠道/A/B"))), "t3");
        assert_eq!(
            catalogue.tag(&TagRef::new("高价值")),
            TagLookup::Ambiguous {
                categories: vec!["价值等级".into(), "活动".into()]
            }
        );
        assert_eq!(
            catalogue.tag(&TagRef::new("风险/高价值")),
            TagLookup::Unknown
        );
    }
}
