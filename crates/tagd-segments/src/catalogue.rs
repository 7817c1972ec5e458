//! The catalogue conditions are bound against: the store's tags with their
//! categories, its dynamic segments (parsed), the attribute keys the index
//! has seen on customers, and the metric windows the server computes. A
//! binding sees one consistent catalogue; the engine keeps the last one read
//! ([`CachedCatalogue`]) until the store may have changed it, so a count
//! binds without reading the database.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tagd_condition::{
    BoundCondition, Catalogue, Metric, SegmentInfo, TagInfo, TagLookup, TagRef, resolve_tag,
};
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

/// The catalogue as last read from the store, kept while neither this
/// process wrote (the store's write generation) nor the follower saw the
/// catalogue tables change (its catalogue version).
#[derive(Debug)]
pub(crate) struct CachedCatalogue {
    /// The store's write generation and the follower's catalogue version
    /// read before the catalogue was: a write after them moves one of them.
    pub generation: u64,
    pub version: u64,
    /// Tags, dynamic segments and metric windows; its attribute keys are
    /// empty (they come from the index at each binding, see [`WithAttributes`]).
    pub catalogue: StoreCatalogue,
    /// Every stored segment (static ones too) by id: what CountSegment
    /// would otherwise read first.
    pub stored: HashMap<String, Arc<Segment>>,
    /// Stored segments' conditions bound against this catalogue, with the
    /// index epoch whose attribute keys they were bound with (a rebuild may
    /// forget a key). Only successful bindings are kept.
    bound: Mutex<HashMap<String, (u64, Arc<BoundCondition>)>>,
}

impl CachedCatalogue {
    pub fn new(
        generation: u64,
        version: u64,
        catalogue: StoreCatalogue,
        segments: Vec<Segment>,
    ) -> Self {
        Self {
            generation,
            version,
            catalogue,
            stored: segments
                .into_iter()
                .map(|segment| (segment.id.clone(), Arc::new(segment)))
                .collect(),
            bound: Mutex::new(HashMap::new()),
        }
    }

    /// The bound condition of stored segment `id` kept for index `epoch`.
    pub fn bound(&self, id: &str, epoch: u64) -> Option<Arc<BoundCondition>> {
        let bound = self
            .bound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bound
            .get(id)
            .filter(|(at, _)| *at == epoch)
            .map(|(_, condition)| condition.clone())
    }

    /// Keeps stored segment `id`'s bound condition for index `epoch`.
    pub fn keep_bound(&self, id: &str, epoch: u64, condition: Arc<BoundCondition>) {
        self.bound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), (epoch, condition));
    }
}

/// A catalogue with the index's attribute keys of now: a key a customer
/// gained since the catalogue was read binds.
pub(crate) struct WithAttributes<'a> {
    pub base: &'a StoreCatalogue,
    pub attributes: &'a HashSet<String>,
}

impl Catalogue for WithAttributes<'_> {
    fn tag(&self, reference: &TagRef) -> TagLookup {
        self.base.tag(reference)
    }

    fn attribute_known(&self, key: &str) -> bool {
        self.attributes.contains(key)
    }

    fn segment(&self, name: &str) -> Option<SegmentInfo> {
        self.base.segment(name)
    }

    fn metric_available(&self, metric: Metric) -> bool {
        self.base.metric_available(metric)
    }
}
