//! Dedupe jobs: read every customer, find duplicates with `tagd-match`, merge the
//! certain clusters (one transaction each) and queue the doubtful pairs for review;
//! and FindDuplicates: drafts (one, or an import batch) against the stored customers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use tagd_core::customers::{Customer, CustomerFields, Gender};
use tagd_core::jobs::{Job, JobKind};
use tagd_core::merges::{SurvivorRule, check_thresholds};
use tagd_match::{BlockingKey, MatchConfig, MatchRecord, Matcher, PairScore, Profile};
use tagd_store::{CandidatePair, MergeRequest, NewJob, StoreError};

use crate::error::{JobError, JobResult};
use crate::registry::{Ending, Jobs, RunningJob};

/// Customers read per page while loading everyone.
const LOAD_PAGE: usize = 5_000;
/// Clusters merged per transaction. A batch is written set-based (a few statements per
/// table, whatever its size), so larger batches mean fewer statements; 1,000 clusters
/// (~2,000 customers) keep a transaction to a fraction of a second and its snapshots to a
/// few MB.
const MERGE_BATCH: usize = 1_000;
/// Customers per merge transaction at most (a batch of large clusters closes early), so a
/// batch's locks, reads and snapshots stay bounded whatever the clusters look like.
const MERGE_BATCH_CUSTOMERS: usize = 5_000;
/// The most matches FindDuplicates returns.
pub const MAX_FIND_LIMIT: u32 = 100;

/// What a dedupe run does.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupeRequest {
    pub dry_run: bool,
    /// `None`: the configured default.
    pub merge_threshold: Option<f64>,
    pub review_threshold: Option<f64>,
    /// Empty: the default set.
    pub blocking_keys: Vec<BlockingKey>,
    pub survivor_rule: SurvivorRule,
    /// Compare everyone, not only the customers changed since the last run.
    pub full: bool,
}

/// A pair's score explained, as the review queue keeps it (JSON) and the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Explanation {
    pub fields: Vec<FieldExplanation>,
    pub log2_odds: f64,
    /// Why the pair was held below auto-merge ("" when it was not).
    pub guard: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldExplanation {
    pub field: String,
    pub comparison: String,
    pub weight: f64,
    pub contribution: f64,
}

impl Explanation {
    pub fn of(score: &PairScore) -> Self {
        Self {
            fields: score
                .fields
                .iter()
                .map(|f| FieldExplanation {
                    field: f.field.as_str().to_owned(),
                    comparison: f.comparison.to_string(),
                    weight: f.weight,
                    contribution: f.contribution,
                })
                .collect(),
            log2_odds: score.log2_odds,
            guard: score.guard.map(|g| g.to_string()).unwrap_or_default(),
        }
    }

    /// Reads a stored explanation; an unreadable one shows as empty rather than failing a listing.
    pub fn parse(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }
}

/// A stored customer that may be the same person, with its score.
#[derive(Debug, Clone)]
pub struct DuplicateMatch {
    pub customer: Customer,
    pub score: f64,
    pub explanation: Explanation,
}

/// The matcher's view of a customer.
pub(crate) fn match_record(id: u32, fields: &CustomerFields) -> MatchRecord {
    MatchRecord {
        id,
        name: fields.name.clone(),
        gender: match fields.gender {
            Gender::Male => tagd_match::Gender::Male,
            Gender::Female => tagd_match::Gender::Female,
            Gender::Unspecified | Gender::Other => tagd_match::Gender::Unknown,
        },
        birthday: fields.birthday,
        phones: fields.phones.clone(),
        emails: fields.emails.clone(),
        province: fields.address.province.clone(),
        city: fields.address.city.clone(),
        district: fields.address.district.clone(),
        detail: fields.address.detail.clone(),
    }
}

impl Jobs {
    /// The matcher for a request (thresholds and keys checked).
    fn matcher(&self, request: &DedupeRequest) -> JobResult<Matcher> {
        let defaults = MatchConfig::default();
        let merge = request
            .merge_threshold
            .unwrap_or(defaults.auto_merge_threshold);
        let review = request
            .review_threshold
            .unwrap_or(defaults.review_threshold);
        check_thresholds(merge, review)?;
        let config = MatchConfig {
            auto_merge_threshold: merge,
            review_threshold: review,
            blocking_keys: if request.blocking_keys.is_empty() {
                defaults.blocking_keys.clone()
            } else {
                request.blocking_keys.clone()
            },
            ..defaults
        };
        Matcher::new(config).map_err(|error| {
            JobError::Invalid(tagd_core::DomainError::invalid("config", error.to_string()))
        })
    }

    /// Checks the request, records the job and starts it; returns at once. Refused while
    /// another dedupe or cleanse job runs.
    pub async fn start_dedupe(
        self: &Arc<Self>,
        request: DedupeRequest,
        actor: &str,
    ) -> JobResult<Job> {
        let matcher = self.matcher(&request)?;
        let params = serde_json::json!({
            "dry_run": request.dry_run,
            "merge_threshold": matcher.config().auto_merge_threshold,
            "review_threshold": matcher.config().review_threshold,
            "blocking_keys": matcher.config().blocking_keys.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>(),
            "survivor_rule": request.survivor_rule.as_str(),
            "full": request.full,
        });
        let (job, running) = self
            .begin(NewJob {
                kind: JobKind::Dedupe,
                created_by: actor.to_owned(),
                subject: format!(
                    "dedupe{}: merge ≥ {}, review ≥ {}",
                    if request.full { " (full)" } else { "" },
                    matcher.config().auto_merge_threshold,
                    matcher.config().review_threshold
                ),
                dry_run: request.dry_run,
                params: params.to_string(),
                bytes_total: 0,
            })
            .await?;
        let run = DedupeRun {
            jobs: Arc::clone(self),
            running,
            job: job.clone(),
            matcher: Arc::new(matcher),
            request,
            actor: actor.to_owned(),
        };
        tokio::spawn(run.run());
        Ok(job)
    }

    /// The matcher FindDuplicates scores with: nothing is merged, and any `min_score` up to
    /// 1 is a valid review threshold.
    fn finding_matcher(&self, min_score: Option<f64>) -> JobResult<Matcher> {
        self.matcher(&DedupeRequest {
            dry_run: true,
            merge_threshold: Some(1.0),
            review_threshold: min_score,
            blocking_keys: Vec::new(),
            survivor_rule: SurvivorRule::default(),
            full: false,
        })
    }

    /// The stored customers most likely to be `subject` (a draft or, with `exclude`, a stored
    /// customer), best first. Candidates come from the database's phone, email and name pinyin
    /// indexes.
    pub async fn find_duplicates(
        &self,
        subject: &CustomerFields,
        exclude: Option<&str>,
        min_score: Option<f64>,
        limit: u32,
    ) -> JobResult<Vec<DuplicateMatch>> {
        let matcher = self.finding_matcher(min_score)?;
        let phones: Vec<&str> = subject.phones.iter().map(String::as_str).collect();
        let emails: Vec<&str> = subject.emails.iter().map(String::as_str).collect();
        let candidates = self
            .store
            .customers_sharing(&phones, &emails, &[subject.name.as_str()])
            .await?;
        let mut found = rank(
            &matcher,
            subject,
            candidates
                .iter()
                .filter(|candidate| Some(candidate.id.as_str()) != exclude),
        );
        found.truncate(limit.clamp(1, MAX_FIND_LIMIT) as usize);
        Ok(found
            .into_iter()
            .map(|(score, customer)| DuplicateMatch {
                explanation: Explanation::of(&score),
                score: score.total,
                customer: customer.clone(),
            })
            .collect())
    }

    /// For each draft, the id of the stored customer most likely to be it, scoring at least
    /// `min_score` (`None`: none does): FindDuplicates for a whole import batch, with one
    /// candidate read for all the drafts, each scored only against the candidates that share
    /// one of its phones, emails or name key.
    pub async fn best_duplicates(
        &self,
        drafts: &[&CustomerFields],
        min_score: f64,
    ) -> JobResult<Vec<Option<String>>> {
        let matcher = self.finding_matcher(Some(min_score))?;
        let mut phones: Vec<&str> = Vec::new();
        let mut emails: Vec<&str> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for draft in drafts {
            phones.extend(draft.phones.iter().map(String::as_str));
            emails.extend(draft.emails.iter().map(String::as_str));
            names.push(draft.name.as_str());
        }
        for values in [&mut phones, &mut emails, &mut names] {
            values.sort_unstable();
            values.dedup();
        }
        let candidates = self
            .store
            .customers_sharing(&phones, &emails, &names)
            .await?;
        let mut holders: HashMap<SharedKey, Vec<usize>> = HashMap::new();
        for (index, candidate) in candidates.iter().enumerate() {
            for key in shared_keys(&candidate.fields) {
                holders.entry(key).or_default().push(index);
            }
        }
        Ok(drafts
            .iter()
            .map(|draft| {
                let mut sharing: Vec<usize> = shared_keys(draft)
                    .filter_map(|key| holders.get(&key))
                    .flatten()
                    .copied()
                    .collect();
                sharing.sort_unstable();
                sharing.dedup();
                rank(
                    &matcher,
                    draft,
                    sharing.iter().map(|&index| &candidates[index]),
                )
                .first()
                .map(|(_, customer)| customer.id.clone())
            })
            .collect())
    }
}

/// A value a draft and a stored customer may share, as the store looks them up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SharedKey {
    Phone(String),
    Email(String),
    /// The name's pinyin key, as the store keeps it.
    Name(String),
}

fn shared_keys(fields: &CustomerFields) -> impl Iterator<Item = SharedKey> + '_ {
    let name = tagd_match::name_pinyin(&fields.name);
    fields
        .phones
        .iter()
        .cloned()
        .map(SharedKey::Phone)
        .chain(fields.emails.iter().cloned().map(SharedKey::Email))
        .chain((!name.is_empty()).then_some(SharedKey::Name(name)))
}

/// `candidates` scored against `subject`, those at or above the matcher's review threshold,
/// best first (ties by id).
fn rank<'a>(
    matcher: &Matcher,
    subject: &CustomerFields,
    candidates: impl Iterator<Item = &'a Customer>,
) -> Vec<(PairScore, &'a Customer)> {
    let query = Profile::new(&match_record(u32::MAX, subject));
    let mut found: Vec<(PairScore, &Customer)> = candidates
        .enumerate()
        .filter_map(|(index, customer)| {
            let position = u32::try_from(index).ok()?;
            let profile = Profile::new(&match_record(position, &customer.fields));
            let score = matcher.score(&profile, &query);
            (score.total >= matcher.config().review_threshold).then_some((score, customer))
        })
        .collect();
    found.sort_by(|a, b| {
        b.0.total
            .total_cmp(&a.0.total)
            .then_with(|| a.1.id.cmp(&b.1.id))
    });
    found
}

struct DedupeRun {
    jobs: Arc<Jobs>,
    running: Arc<RunningJob>,
    job: Job,
    matcher: Arc<Matcher>,
    request: DedupeRequest,
    actor: String,
}

/// Everyone, as the matcher sees them, with the way back to customer ids.
struct Population {
    ids: Vec<String>,
    records: Vec<MatchRecord>,
    /// Positions of the customers an incremental run compares (`None`: everyone).
    changed: Option<Vec<u32>>,
}

impl DedupeRun {
    async fn run(mut self) {
        let (state, error) = self.drive().await.outcome();
        let job_id = self.job.id.clone();
        self.jobs
            .conclude(&self.running, &mut self.job, state, error)
            .await;
        tracing::info!(
            job = %job_id,
            state = %state,
            customers = self.job.progress.rows_read,
            comparisons = self.job.progress.comparisons,
            merged = self.job.progress.merged,
            queued = self.job.progress.queued_for_review,
            "dedupe finished"
        );
    }

    fn cancelled(&self) -> bool {
        *self.running.cancel.borrow()
    }

    fn publish(&mut self) {
        self.job.updated_at = chrono::Utc::now().naive_utc();
        self.running.updates.send_replace(self.job.clone());
    }

    async fn drive(&mut self) -> Ending {
        let started = Instant::now();
        let population = match self.load().await {
            Ok(Some(population)) => population,
            Ok(None) => return Ending::Cancelled,
            Err(error) => return Ending::Failed(error.to_string()),
        };
        tracing::info!(
            job = %self.job.id,
            customers = population.ids.len(),
            seconds = started.elapsed().as_secs_f64(),
            "dedupe read every customer"
        );
        let not_duplicates = match self.jobs.store.not_duplicate_pairs().await {
            Ok(pairs) => pairs,
            Err(error) => return Ending::Failed(error.to_string()),
        };
        let matcher = Arc::clone(&self.matcher);
        let Population {
            ids,
            records,
            changed,
        } = population;
        let ids = Arc::new(ids);
        let ids_for_match = Arc::clone(&ids);
        let found = tokio::task::spawn_blocking(move || {
            let profiles = matcher.profiles(&records);
            let index = matcher.index(&profiles);
            let pairs: Vec<(u32, u32)> = match changed {
                None => index.candidate_pairs(matcher.config().threads),
                Some(changed) => {
                    let mut pairs = Vec::new();
                    for position in changed {
                        for other in index.candidates(&profiles[position as usize]) {
                            if other != position {
                                pairs.push((position.min(other), position.max(other)));
                            }
                        }
                    }
                    pairs.sort_unstable();
                    pairs.dedup();
                    pairs
                }
            };
            let comparisons = pairs.len() as u64;
            let mut scored = matcher.score_pairs(&profiles, &pairs);
            scored.retain(|pair| {
                let (a, b) = ordered(
                    &ids_for_match[pair.a as usize],
                    &ids_for_match[pair.b as usize],
                );
                !not_duplicates.contains(&(a.to_owned(), b.to_owned()))
            });
            matcher.finish(records.len(), index.stats(), comparisons, scored)
        })
        .await;
        let found = match found {
            Ok(found) => found,
            Err(error) => return Ending::Failed(format!("the matcher failed: {error}")),
        };
        self.job.progress.comparisons = found.stats.comparisons;
        self.job.progress.clusters = found.clusters.len() as u64;
        self.publish();
        tracing::info!(
            job = %self.job.id,
            customers = ids.len(),
            comparisons = found.stats.comparisons,
            clusters = found.clusters.len(),
            review = found.review.len(),
            seconds = started.elapsed().as_secs_f64(),
            "dedupe matched"
        );

        let review: Vec<CandidatePair> = found
            .review
            .iter()
            .map(|pair| {
                let (a, b) = ordered(&ids[pair.a as usize], &ids[pair.b as usize]);
                CandidatePair {
                    customer_a: a.to_owned(),
                    customer_b: b.to_owned(),
                    score: pair.total,
                    explanation: serde_json::to_string(&Explanation::of(pair)).unwrap_or_default(),
                }
            })
            .collect();
        if self.request.dry_run {
            self.job.progress.merged = found
                .clusters
                .iter()
                .map(|cluster| cluster.len().saturating_sub(1) as u64)
                .sum();
            self.job.progress.queued_for_review = review.len() as u64;
            self.publish();
            return Ending::Finished;
        }
        let reason = format!(
            "dedupe job {}: score ≥ {}",
            self.job.id,
            self.matcher.config().auto_merge_threshold
        );
        for batch in merge_batches(&found.clusters) {
            if self.cancelled() {
                return Ending::Cancelled;
            }
            let customer_ids: Vec<Vec<String>> = batch
                .iter()
                .map(|cluster| {
                    cluster
                        .iter()
                        .map(|position| ids[*position as usize].clone())
                        .collect()
                })
                .collect();
            let requests: Vec<MergeRequest<'_>> = customer_ids
                .iter()
                .map(|ids| MergeRequest {
                    field: "cluster",
                    customer_ids: ids,
                    survivor_id: None,
                    rule: self.request.survivor_rule,
                    actor: &self.actor,
                    job_id: &self.job.id,
                    reason: &reason,
                })
                .collect();
            let (outcomes, alone) = match self.jobs.store.merge_batch(&requests).await {
                Ok(outcomes) => (outcomes, false),
                // The batch failed as a whole and wrote nothing: merge its clusters one by one,
                // so only the one at fault fails.
                Err(batch_error) => {
                    tracing::warn!(job = %self.job.id, %batch_error, "merge batch failed; merging cluster by cluster");
                    let mut outcomes = Vec::with_capacity(requests.len());
                    for request in &requests {
                        outcomes.push(self.jobs.store.merge_customers(request).await);
                    }
                    (outcomes, true)
                }
            };
            for outcome in outcomes {
                match outcome {
                    Ok(merge) => self.job.progress.merged += merge.merged_ids.len() as u64,
                    // Someone changed these customers since they were read: leave the cluster for the next run.
                    Err(
                        error @ (StoreError::NotFound { .. } | StoreError::FailedPrecondition(_)),
                    ) => {
                        tracing::info!(job = %self.job.id, %error, "cluster skipped");
                        self.job.progress.rejected += 1;
                    }
                    // Merged alone, a cluster whose own rows break a constraint or cannot be read
                    // is skipped (and named in the log); the rest of the run goes on.
                    Err(error) if alone && error.is_data_fault() => {
                        tracing::warn!(job = %self.job.id, %error, "cluster not merged");
                        self.job.progress.rejected += 1;
                    }
                    Err(error) => return Ending::Failed(error.to_string()),
                }
            }
            self.publish();
        }
        if let Err(error) = self.jobs.store.drop_stale_candidates().await {
            return Ending::Failed(error.to_string());
        }
        match self
            .jobs
            .store
            .queue_candidates(&self.job.id, &review)
            .await
        {
            Ok(outcome) => {
                self.job.progress.queued_for_review = outcome.added + outcome.refreshed;
            }
            Err(error) => return Ending::Failed(error.to_string()),
        }
        self.publish();
        Ending::Finished
    }

    /// Reads every customer in pages; `None` when cancelled meanwhile.
    async fn load(&mut self) -> JobResult<Option<Population>> {
        let since: Option<NaiveDateTime> = if self.request.full {
            None
        } else {
            self.jobs.store.last_dedupe_started().await?
        };
        let mut ids = Vec::new();
        let mut records = Vec::new();
        let mut changed = since.map(|_| Vec::new());
        let mut after = String::new();
        loop {
            if self.cancelled() {
                return Ok(None);
            }
            let page = self
                .jobs
                .store
                .customers_after((!after.is_empty()).then_some(after.as_str()), LOAD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            last.id.clone_into(&mut after);
            for customer in page {
                let position = u32::try_from(ids.len()).map_err(|_| {
                    JobError::FailedPrecondition("more than 4 billion customers".to_owned())
                })?;
                if let (Some(changed), Some(since)) = (changed.as_mut(), since)
                    && customer.updated_at >= since
                {
                    changed.push(position);
                }
                records.push(match_record(position, &customer.fields));
                ids.push(customer.id);
            }
            self.job.progress.rows_read = ids.len() as u64;
            self.publish();
        }
        Ok(Some(Population {
            ids,
            records,
            changed,
        }))
    }
}

/// Consecutive runs of clusters, each at most [`MERGE_BATCH`] clusters and, unless one
/// cluster alone is larger, [`MERGE_BATCH_CUSTOMERS`] customers.
fn merge_batches<T>(clusters: &[Vec<T>]) -> impl Iterator<Item = &[Vec<T>]> {
    let mut rest = clusters;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut customers = 0;
        let mut end = 0;
        while end < rest.len()
            && end < MERGE_BATCH
            && (end == 0 || customers + rest[end].len() <= MERGE_BATCH_CUSTOMERS)
        {
            customers += rest[end].len();
            end += 1;
        }
        let (batch, after) = rest.split_at(end);
        rest = after;
        Some(batch)
    })
}

fn ordered<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b { (a, b) } else { (b, a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_batches_cap_clusters_and_customers() {
        let pairs: Vec<Vec<u32>> = (0..2_500).map(|i| vec![2 * i, 2 * i + 1]).collect();
        let sizes: Vec<usize> = merge_batches(&pairs).map(<[_]>::len).collect();
        assert_eq!(sizes, vec![1_000, 1_000, 500]);

        // Large clusters close a batch early; one larger than the cap still goes alone.
        let mixed: Vec<Vec<u32>> = [3_000, 1_000, 1_000, 6_000, 2, 2]
            .into_iter()
            .map(|size| (0..size).collect())
            .collect();
        let sizes: Vec<usize> = merge_batches(&mixed).map(<[_]>::len).collect();
        assert_eq!(sizes, vec![3, 1, 2]);
        assert!(merge_batches::<u32>(&[]).next().is_none());
    }
}
