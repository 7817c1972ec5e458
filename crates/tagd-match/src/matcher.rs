//! The engine in one place: profiles, blocking, scoring in parallel and
//! clustering, for a whole set of records, one new record, or (as a
//! baseline) all pairs.

use crate::blocking::{BlockStats, BlockingIndex};
use crate::cluster::{Clustering, cluster};
use crate::config::MatchConfig;
use crate::error::MatchError;
use crate::parallel;
use crate::profile::Profile;
use crate::record::{MatchRecord, RecordId};
use crate::score::{PairScore, evaluate_above, score};

/// A validated configuration and the operations that use it.
#[derive(Debug, Clone)]
pub struct Matcher {
    config: MatchConfig,
}

/// What a dedupe run found, and what it cost.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dedupe {
    pub clusters: Vec<Vec<RecordId>>,
    pub review: Vec<PairScore>,
    pub stats: DedupeStats,
}

/// The size of a dedupe run's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DedupeStats {
    pub records: usize,
    pub blocks: BlockStats,
    /// Pairs scored.
    pub comparisons: u64,
    /// Pairs at or above the review threshold.
    pub scored_pairs: usize,
}

impl Matcher {
    /// A matcher for `config`, refused when the config is invalid.
    pub fn new(config: MatchConfig) -> Result<Self, MatchError> {
        config.validate()?;
        Ok(Self { config })
    }

    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// Comparison-ready profiles, in input order.
    pub fn profiles(&self, records: &[MatchRecord]) -> Vec<Profile> {
        parallel::map_chunks(records, self.config.threads, |chunk| {
            chunk.iter().map(Profile::new).collect()
        })
    }

    /// The blocking index over `profiles` (positions refer to that slice).
    pub fn index(&self, profiles: &[Profile]) -> BlockingIndex {
        BlockingIndex::build(profiles, &self.config)
    }

    /// One pair's score with its explanation.
    pub fn score(&self, a: &Profile, b: &Profile) -> PairScore {
        score(a, b, &self.config)
    }

    /// Scores candidate pairs (positions into `profiles`) in parallel and keeps
    /// those at or above the review threshold, explained, in pair order.
    pub fn score_pairs(&self, profiles: &[Profile], pairs: &[(u32, u32)]) -> Vec<PairScore> {
        parallel::map_chunks(pairs, self.config.threads, |chunk| {
            chunk
                .iter()
                .filter_map(|&(a, b)| self.keep(&profiles[a as usize], &profiles[b as usize]))
                .collect()
        })
    }

    fn keep(&self, a: &Profile, b: &Profile) -> Option<PairScore> {
        evaluate_above(a, b, &self.config, self.config.review_threshold)?;
        Some(score(a, b, &self.config))
    }

    /// Records of `profiles` (indexed by `index`) that may be `query`, best
    /// first: the `FindDuplicates` and incremental path, one record against
    /// everyone through the index.
    pub fn find_duplicates(
        &self,
        profiles: &[Profile],
        index: &BlockingIndex,
        query: &Profile,
    ) -> Vec<PairScore> {
        let mut found: Vec<PairScore> = index
            .candidates(query)
            .into_iter()
            .filter_map(|position| profiles.get(position as usize))
            .filter(|candidate| candidate.id != query.id)
            .filter_map(|candidate| self.keep(query, candidate))
            .collect();
        found.sort_by(|x, y| {
            y.total
                .total_cmp(&x.total)
                .then((x.a, x.b).cmp(&(y.a, y.b)))
        });
        found
    }

    /// Groups duplicates among `records` through blocking.
    pub fn dedupe(&self, records: &[MatchRecord]) -> Result<Dedupe, MatchError> {
        check_unique_ids(records)?;
        let profiles = self.profiles(records);
        let index = self.index(&profiles);
        let pairs = index.candidate_pairs(self.config.threads);
        let scored = self.score_pairs(&profiles, &pairs);
        Ok(self.finish(records.len(), index.stats(), pairs.len() as u64, scored))
    }

    /// The baseline: every pair compared, no blocking (n²/2 comparisons;
    /// for measuring what blocking saves and loses).
    pub fn dedupe_all_pairs(&self, records: &[MatchRecord]) -> Result<Dedupe, MatchError> {
        check_unique_ids(records)?;
        let profiles = self.profiles(records);
        let scored = self.score_all_pairs(&profiles);
        let n = records.len() as u64;
        Ok(self.finish(
            records.len(),
            BlockStats::default(),
            n * n.saturating_sub(1) / 2,
            scored,
        ))
    }

    /// Scores every pair of `profiles` (threads take interleaved rows so
    /// the triangle splits evenly), keeping those at or above review.
    pub fn score_all_pairs(&self, profiles: &[Profile]) -> Vec<PairScore> {
        let threads = self.config.threads;
        let mut scored = parallel::map_threads(threads, |part| {
            let mut kept = Vec::new();
            for i in (part..profiles.len()).step_by(threads) {
                for j in i + 1..profiles.len() {
                    kept.extend(self.keep(&profiles[i], &profiles[j]));
                }
            }
            kept
        });
        scored.sort_by_key(|p| (p.a, p.b));
        scored
    }

    /// Clusters scored pairs and assembles the result; with [`Matcher::profiles`],
    /// [`Matcher::index`], [`BlockingIndex::candidate_pairs`] and
    /// [`Matcher::score_pairs`] it is [`Matcher::dedupe`] step by step (for
    /// callers who time or persist the phases).
    pub fn finish(
        &self,
        records: usize,
        blocks: BlockStats,
        comparisons: u64,
        scored: Vec<PairScore>,
    ) -> Dedupe {
        let scored_pairs = scored.len();
        let Clustering { clusters, review } = cluster(scored, &self.config);
        Dedupe {
            clusters,
            review,
            stats: DedupeStats {
                records,
                blocks,
                comparisons,
                scored_pairs,
            },
        }
    }
}

fn check_unique_ids(records: &[MatchRecord]) -> Result<(), MatchError> {
    let mut ids: Vec<RecordId> = records.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    match ids.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(MatchError::DuplicateId(w[0])),
        None => Ok(()),
    }
}
