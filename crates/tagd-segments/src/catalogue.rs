//! The catalogue conditions are bound against: the store's tags with their
//! categories, its dynamic segments (parsed), the attribute keys the index
//! has seen on customers, and the metric windows the server computes. Read
//! once per call, so a binding sees one consistent catalogue.

use std::collections::HashSet;

use tagd_condition::{Catalogue, Metric, SegmentInfo, TagInfo, TagLookup, TagRef, resolve_tag};
use tagd_core::segments::{Segment, SegmentKind};
use tagd_core::text;

/// A snapshot of everything a condition may name.
#[derive(Debug, Clone, Default)]
pub struct StoreCatalogue {
    pub tags: Vec<TagInfo>,
    /// Dynamic segments whose stored condition parses; a static segment's
    /// members are frozen, so `in_segment(…)` cannot name one.
    pub segments: Vec<SegmentInfo>,
    pub attributes: HashSet<String>,
    pub metric_windows_days: Vec<u32>,
}

impl StoreCatalogue {
    /// The catalogue entries of stored segments (unparsable ones are logged
    /// and left out: the store only holds conditions that parsed).
    pub fn segment_infos(segments: &[Segment]) -> Vec<SegmentInfo> {
        segments
            .iter()
            .filter(|segment| segment.kind == SegmentKind::Dynamic)
            .filter_map(|segment| match tagd_condition::parse(&segment.condition) {
                Ok(condition) => Some(SegmentInfo {
                    id: segment.id.clone(),
                    name: segment.name.clone(),
                    condition,
                }),
                Err(error) => {
                    tracing::error!(%error, segment = segment.id, "stored condition does not parse");
                    None
                }
            })
            .collect()
    }
}

impl Catalogue for StoreCatalogue {
    fn tag(&self, reference: &TagRef) -> TagLookup {
        resolve_tag(&self.tags, reference)
    }

    fn attribute_known(&self, key: &str) -> bool {
        self.attributes.contains(key)
    }

    fn segment(&self, name: &str) -> Option<SegmentInfo> {
        let key = text::key(name);
        self.segments
            .iter()
            .find(|segment| text::key(&segment.name) == key)
            .cloned()
    }

    fn metric_available(&self, metric: Metric) -> bool {
        match metric {
            Metric::Orders { days } | Metric::Spent { days } => {
                self.metric_windows_days.contains(&days)
            }
            _ => true,
        }
    }
}
