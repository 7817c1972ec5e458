//! `DedupeService`: dedupe jobs, the review queue, merges and their undo, and FindDuplicates.

use std::collections::HashMap;
use std::sync::Arc;

use tagd_core::customers::ContactRules;
use tagd_core::merges::{CandidateState, SurvivorRule};
use tagd_core::paging::PageRequest;
use tagd_jobs::{BlockingKey, DedupeRequest, Explanation, Jobs, MAX_FIND_LIMIT};
use tagd_proto::v1::dedupe_service_server::DedupeService;
use tagd_proto::v1::{self as pb};
use tagd_store::{Candidate, MergeFilter, MergeRecord, MergeRequest, Resolution, Store};
use tonic::{Request, Response, Status};

use crate::convert::{self, id, invalid, optional_id, timestamp};
use crate::customers::{partial_fields, raw_fields};
use crate::error::OrStatus;
use crate::jobs::job;
use crate::middleware::actor;

/// The longest reason a merge keeps.
const MAX_REASON_CHARS: usize = 500;

pub(crate) struct Dedupe {
    pub store: Arc<Store>,
    pub jobs: Arc<Jobs>,
    pub rules: ContactRules,
}

fn survivor_rule(field: &str, raw: i32) -> Result<SurvivorRule, Status> {
    Ok(match pb::SurvivorRule::try_from(raw) {
        Ok(pb::SurvivorRule::Unspecified | pb::SurvivorRule::MostComplete) => {
            SurvivorRule::MostComplete
        }
        Ok(pb::SurvivorRule::Oldest) => SurvivorRule::Oldest,
        Ok(pb::SurvivorRule::MostRecentlyUpdated) => SurvivorRule::MostRecentlyUpdated,
        Err(_) => return Err(invalid(field, &format!("unknown survivor rule {raw}"))),
    })
}

fn blocking_key(field: &str, raw: i32) -> Result<BlockingKey, Status> {
    Ok(match pb::BlockingKey::try_from(raw) {
        Ok(pb::BlockingKey::Phone) => BlockingKey::Phone,
        Ok(pb::BlockingKey::Email) => BlockingKey::Email,
        Ok(pb::BlockingKey::NameBirthday) => BlockingKey::NameBirthday,
        Ok(pb::BlockingKey::NameCity) => BlockingKey::NameCity,
        Ok(pb::BlockingKey::NameWordBirthday) => BlockingKey::NameWordBirthday,
        Ok(pb::BlockingKey::Pinyin) => BlockingKey::Pinyin,
        Ok(pb::BlockingKey::Unspecified) | Err(_) => {
            return Err(invalid(field, &format!("unknown blocking key {raw}")));
        }
    })
}

/// 0 means "the default"; anything else must be a probability.
fn threshold(value: f64) -> Option<f64> {
    (value != 0.0).then_some(value)
}

fn merge(record: MergeRecord) -> pb::Merge {
    pb::Merge {
        id: record.id,
        survivor_id: record.survivor_id,
        merged_ids: record.merged_ids,
        actor: record.actor,
        job_id: record.job_id,
        reason: record.reason,
        created_at: Some(timestamp(record.created_at)),
        undone_at: record.undone_at.map(timestamp),
        undone_by: record.undone_by,
    }
}

fn explanation(explanation: Explanation) -> pb::PairExplanation {
    pb::PairExplanation {
        fields: explanation
            .fields
            .into_iter()
            .map(|field| pb::FieldScore {
                field: field.field,
                comparison: field.comparison,
                weight: field.weight,
                contribution: field.contribution,
            })
            .collect(),
        log2_odds: explanation.log2_odds,
        guard: explanation.guard,
    }
}

fn candidate_state(state: CandidateState) -> pb::CandidateState {
    match state {
        CandidateState::Open => pb::CandidateState::Open,
        CandidateState::Merged => pb::CandidateState::Merged,
        CandidateState::NotDuplicate => pb::CandidateState::NotDuplicate,
    }
}

impl Dedupe {
    /// Candidates with both customers as they are now (a customer merged away since shows as unset).
    async fn candidates(&self, candidates: Vec<Candidate>) -> Result<Vec<pb::Candidate>, Status> {
        let mut ids: Vec<String> = candidates
            .iter()
            .flat_map(|c| [c.customer_a.clone(), c.customer_b.clone()])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let customers: HashMap<String, pb::Customer> = self
            .store
            .customers_by_ids(&ids)
            .await
            .or_status()?
            .into_iter()
            .map(|c| (c.id.clone(), convert::customer(c)))
            .collect();
        Ok(candidates
            .into_iter()
            .map(|c| pb::Candidate {
                left: customers.get(&c.customer_a).cloned(),
                right: customers.get(&c.customer_b).cloned(),
                id: c.id,
                score: c.score,
                explanation: Some(explanation(Explanation::parse(&c.explanation))),
                state: candidate_state(c.state).into(),
                job_id: c.job_id,
                created_at: Some(timestamp(c.created_at)),
                resolved_by: c.resolved_by,
            })
            .collect())
    }
}

#[tonic::async_trait]
impl DedupeService for Dedupe {
    async fn start_dedupe(
        &self,
        request: Request<pb::StartDedupeRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let blocking_keys = request
            .blocking_keys
            .iter()
            .enumerate()
            .map(|(index, raw)| blocking_key(&format!("blocking_keys[{index}]"), *raw))
            .collect::<Result<Vec<_>, _>>()?;
        let started = self
            .jobs
            .start_dedupe(
                DedupeRequest {
                    dry_run: request.dry_run,
                    merge_threshold: threshold(request.merge_threshold),
                    review_threshold: threshold(request.review_threshold),
                    blocking_keys,
                    survivor_rule: survivor_rule("survivor_rule", request.survivor_rule)?,
                    full: request.full,
                },
                &actor,
            )
            .await
            .or_status()?;
        Ok(Response::new(job(started)))
    }

    async fn list_candidates(
        &self,
        request: Request<pb::ListCandidatesRequest>,
    ) -> Result<Response<pb::ListCandidatesResponse>, Status> {
        let request = request.into_inner();
        let state = match pb::CandidateState::try_from(request.state) {
            Ok(pb::CandidateState::Unspecified | pb::CandidateState::Open) => CandidateState::Open,
            Ok(pb::CandidateState::Merged) => CandidateState::Merged,
            Ok(pb::CandidateState::NotDuplicate) => CandidateState::NotDuplicate,
            Err(_) => {
                return Err(invalid(
                    "state",
                    &format!("unknown candidate state {}", request.state),
                ));
            }
        };
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self.store.list_candidates(state, &page).await.or_status()?;
        Ok(Response::new(pb::ListCandidatesResponse {
            candidates: self.candidates(page.items).await?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn resolve_candidate(
        &self,
        request: Request<pb::ResolveCandidateRequest>,
    ) -> Result<Response<pb::ResolveCandidateResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let candidate_id = id("candidate_id", &request.candidate_id)?;
        let rule = survivor_rule("survivor_rule", request.survivor_rule)?;
        let pair = self.store.get_candidate(&candidate_id).await.or_status()?;
        let ids = [pair.customer_a.clone(), pair.customer_b.clone()];
        let survivor = request.survivor_id.trim();
        if !survivor.is_empty() && !ids.iter().any(|id| id == survivor) {
            return Err(invalid(
                "survivor_id",
                &format!(
                    "{survivor:?} is not one of the pair {} and {}",
                    ids[0], ids[1]
                ),
            ));
        }
        let reason = format!("review of candidate {candidate_id}");
        let resolution = match pb::Resolution::try_from(request.resolution) {
            Ok(pb::Resolution::Merge) => Resolution::Merge(MergeRequest {
                field: "candidate",
                customer_ids: &ids,
                survivor_id: (!survivor.is_empty()).then_some(survivor),
                rule,
                actor: &actor,
                job_id: "",
                reason: &reason,
            }),
            Ok(pb::Resolution::NotDuplicate) => Resolution::NotDuplicate,
            Ok(pb::Resolution::Unspecified) | Err(_) => {
                return Err(invalid(
                    "resolution",
                    "must be RESOLUTION_MERGE or RESOLUTION_NOT_DUPLICATE",
                ));
            }
        };
        let (resolved, merged) = self
            .store
            .resolve_candidate(&candidate_id, &resolution, &actor)
            .await
            .or_status()?;
        let candidate = self.candidates(vec![resolved]).await?.into_iter().next();
        Ok(Response::new(pb::ResolveCandidateResponse {
            candidate,
            merge: merged.map(merge),
        }))
    }

    async fn merge_customers(
        &self,
        request: Request<pb::MergeCustomersRequest>,
    ) -> Result<Response<pb::Merge>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let ids: Vec<String> = request
            .customer_ids
            .iter()
            .map(|raw| raw.trim().to_owned())
            .collect();
        let survivor = request.survivor_id.trim();
        if request.reason.chars().count() > MAX_REASON_CHARS {
            return Err(invalid(
                "reason",
                &format!("is longer than {MAX_REASON_CHARS} characters"),
            ));
        }
        let record = self
            .store
            .merge_customers(&MergeRequest {
                field: "customer_ids",
                customer_ids: &ids,
                survivor_id: (!survivor.is_empty()).then_some(survivor),
                rule: survivor_rule("survivor_rule", request.survivor_rule)?,
                actor: &actor,
                job_id: "",
                reason: request.reason.trim(),
            })
            .await
            .or_status()?;
        Ok(Response::new(merge(record)))
    }

    async fn unmerge(
        &self,
        request: Request<pb::UnmergeRequest>,
    ) -> Result<Response<pb::Merge>, Status> {
        let actor = actor(&request);
        let merge_id = id("merge_id", &request.get_ref().merge_id)?;
        let record = self.store.unmerge(&merge_id, &actor).await.or_status()?;
        Ok(Response::new(merge(record)))
    }

    async fn list_merges(
        &self,
        request: Request<pb::ListMergesRequest>,
    ) -> Result<Response<pb::ListMergesResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        // Checked as ids: the customer filter matches inside the stored JSON list of merged ids.
        let filter = MergeFilter {
            customer_id: optional_id("customer_id", &request.customer_id)?,
            job_id: optional_id("job_id", &request.job_id)?,
        };
        let page = self.store.list_merges(&filter, &page).await.or_status()?;
        Ok(Response::new(pb::ListMergesResponse {
            merges: page.items.into_iter().map(merge).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn find_duplicates(
        &self,
        request: Request<pb::FindDuplicatesRequest>,
    ) -> Result<Response<pb::FindDuplicatesResponse>, Status> {
        let request = request.into_inner();
        if request.limit > MAX_FIND_LIMIT {
            return Err(invalid(
                "limit",
                &format!("{} is above the maximum {MAX_FIND_LIMIT}", request.limit),
            ));
        }
        if !(0.0..=1.0).contains(&request.min_score) {
            return Err(invalid(
                "min_score",
                &format!("{} is outside 0..=1", request.min_score),
            ));
        }
        let (fields, exclude) = match request.subject {
            Some(pb::find_duplicates_request::Subject::CustomerId(raw)) => {
                let customer_id = id("customer_id", &raw)?;
                let customer = self.store.get_customer(&customer_id).await.or_status()?;
                (customer.fields, Some(customer.id))
            }
            Some(pb::find_duplicates_request::Subject::Draft(draft)) => (
                partial_fields(&self.rules, raw_fields(&draft, "draft")?, "draft")?,
                None,
            ),
            None => return Err(invalid("subject", "set customer_id or draft")),
        };
        let limit = if request.limit == 0 {
            10
        } else {
            request.limit
        };
        let found = self
            .jobs
            .find_duplicates(
                &fields,
                exclude.as_deref(),
                threshold(request.min_score),
                limit,
            )
            .await
            .or_status()?;
        Ok(Response::new(pb::FindDuplicatesResponse {
            matches: found
                .into_iter()
                .map(|found| pb::DuplicateMatch {
                    customer: Some(convert::customer(found.customer)),
                    score: found.score,
                    explanation: Some(explanation(found.explanation)),
                })
                .collect(),
        }))
    }
}
