//! The dedupe review queue (pairs between the review and merge thresholds, and
//! pairs an admin called "not a duplicate"), and the reads a dedupe run needs.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::customers::Customer;
use tagd_core::ids::new_id;
use tagd_core::jobs::{JobKind, JobState};
use tagd_core::merges::CandidateState;
use tagd_core::paging::{PageRequest, finish_page};

use crate::customers::CustomerQueries;
use crate::db::{IN_CHUNK, now, with_conn, write_transaction};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::merges::{MergeQueries, MergeRecord, MergeRequest};
use crate::schema::{customer_emails, customer_phones, customers, dedupe_candidates, jobs};
use crate::tags::page_limit;
use crate::{Page, Store};

/// How many customers FindDuplicates considers from each index (phone, email, name).
const SHARING_LIMIT: i64 = 200;

/// A scored pair for the review queue; `customer_a < customer_b`.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidatePair {
    pub customer_a: String,
    pub customer_b: String,
    pub score: f64,
    /// The score's explanation, JSON (the gRPC layer's form).
    pub explanation: String,
}

/// A pair in the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub customer_a: String,
    pub customer_b: String,
    pub score: f64,
    pub explanation: String,
    pub state: CandidateState,
    pub job_id: String,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dedupe_candidates, treat_none_as_default_value = false)]
struct CandidateRow {
    id: String,
    customer_a: String,
    customer_b: String,
    score: f64,
    explanation: String,
    state: String,
    job_id: String,
    created_at: NaiveDateTime,
    resolved_at: Option<NaiveDateTime>,
    resolved_by: String,
}

impl CandidateRow {
    fn into_candidate(self) -> StoreResult<Candidate> {
        let state = self
            .state
            .parse()
            .map_err(|e: String| StoreError::Corrupt(format!("candidate {}: {e}", self.id)))?;
        Ok(Candidate {
            id: self.id,
            customer_a: self.customer_a,
            customer_b: self.customer_b,
            score: self.score,
            explanation: self.explanation,
            state,
            job_id: self.job_id,
            created_at: self.created_at,
            resolved_at: self.resolved_at,
            resolved_by: self.resolved_by,
        })
    }
}

/// How an admin settles a queued pair.
#[derive(Debug, Clone)]
pub enum Resolution<'a> {
    Merge(MergeRequest<'a>),
    NotDuplicate,
}

/// What a queue write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueOutcome {
    pub added: u64,
    /// Open pairs whose score a newer run refreshed.
    pub refreshed: u64,
    /// Pairs already settled (merged or not a duplicate), left alone.
    pub settled: u64,
}

/// Page tokens of the queue order (score descending, then id).
fn candidate_key(row: &CandidateRow) -> String {
    format!("{:016x}:{}", row.score.to_bits(), row.id)
}

fn parse_candidate_key(key: &str) -> StoreResult<(f64, String)> {
    let bad = || {
        StoreError::Invalid(tagd_core::DomainError::invalid(
            "page_token",
            "is not a token this server issued",
        ))
    };
    let (bits, id) = key.split_once(':').ok_or_else(bad)?;
    let bits = u64::from_str_radix(bits, 16).map_err(|_| bad())?;
    Ok((f64::from_bits(bits), id.to_owned()))
}

impl Store {
    /// Adds pairs to the review queue (one transaction); pairs already queued get the newer
    /// score, settled pairs stay settled.
    pub async fn queue_candidates(
        &self,
        job_id: &str,
        pairs: &[CandidatePair],
    ) -> StoreResult<QueueOutcome> {
        write_transaction!(self, |conn| {
            let mut outcome = QueueOutcome::default();
            let at = now();
            for chunk in pairs.chunks(IN_CHUNK) {
                let firsts: Vec<&str> = chunk.iter().map(|p| p.customer_a.as_str()).collect();
                let existing: Vec<CandidateRow> = dedupe_candidates::table
                    .filter(ids_in(dedupe_candidates::customer_a, &firsts))
                    .select(CandidateRow::as_select())
                    .load(conn)
                    .await?;
                let existing: HashMap<(String, String), CandidateRow> = existing
                    .into_iter()
                    .map(|row| ((row.customer_a.clone(), row.customer_b.clone()), row))
                    .collect();
                let mut new_rows = Vec::new();
                for pair in chunk {
                    match existing.get(&(pair.customer_a.clone(), pair.customer_b.clone())) {
                        Some(row) if row.state == CandidateState::Open.as_str() => {
                            diesel::update(dedupe_candidates::table.find(&row.id))
                                .set((
                                    dedupe_candidates::score.eq(pair.score),
                                    dedupe_candidates::explanation.eq(&pair.explanation),
                                    dedupe_candidates::job_id.eq(job_id),
                                ))
                                .execute(conn)
                                .await?;
                            outcome.refreshed += 1;
                        }
                        Some(_) => outcome.settled += 1,
                        None => {
                            new_rows.push(CandidateRow {
                                id: new_id(),
                                customer_a: pair.customer_a.clone(),
                                customer_b: pair.customer_b.clone(),
                                score: pair.score,
                                explanation: pair.explanation.clone(),
                                state: CandidateState::Open.as_str().to_owned(),
                                job_id: job_id.to_owned(),
                                created_at: at,
                                resolved_at: None,
                                resolved_by: String::new(),
                            });
                            outcome.added += 1;
                        }
                    }
                }
                // One row per statement keeps the queue write portable (it is small next to the scoring).
                for row in &new_rows {
                    diesel::insert_into(dedupe_candidates::table)
                        .values(row)
                        .execute(conn)
                        .await?;
                }
            }
            Ok(outcome)
        })
    }

    /// Removes open pairs one of whose customers no longer exists (merged away or deleted since
    /// it was queued): nobody can settle them any more. Returns how many went.
    pub async fn drop_stale_candidates(&self) -> StoreResult<u64> {
        let removed = write_transaction!(self, |conn| {
            let existing = customers::table.select(customers::id);
            Ok(diesel::delete(
                dedupe_candidates::table
                    .filter(dedupe_candidates::state.eq(CandidateState::Open.as_str()))
                    .filter(diesel::dsl::not(
                        dedupe_candidates::customer_a
                            .eq_any(existing)
                            .and(dedupe_candidates::customer_b.eq_any(existing)),
                    )),
            )
            .execute(conn)
            .await?)
        })?;
        Ok(u64::try_from(removed).unwrap_or(0))
    }

    /// Pairs an admin called "not a duplicate": a dedupe run never proposes them again.
    pub async fn not_duplicate_pairs(&self) -> StoreResult<HashSet<(String, String)>> {
        let pairs: Vec<(String, String)> = with_conn!(self, |conn| {
            dedupe_candidates::table
                .filter(dedupe_candidates::state.eq(CandidateState::NotDuplicate.as_str()))
                .select((dedupe_candidates::customer_a, dedupe_candidates::customer_b))
                .load(conn)
                .await?
        });
        Ok(pairs.into_iter().collect())
    }

    /// The queue in one state, highest score first.
    pub async fn list_candidates(
        &self,
        state: CandidateState,
        page: &PageRequest,
    ) -> StoreResult<Page<Candidate>> {
        let after = match &page.after {
            Some(key) => Some(parse_candidate_key(key)?),
            None => None,
        };
        let mut rows: Vec<CandidateRow> = with_conn!(self, |conn| {
            let mut query = dedupe_candidates::table
                .filter(dedupe_candidates::state.eq(state.as_str()))
                .select(CandidateRow::as_select())
                .order((dedupe_candidates::score.desc(), dedupe_candidates::id))
                .limit(page_limit(page))
                .into_boxed();
            if let Some((score, id)) = after {
                query = query.filter(
                    dedupe_candidates::score
                        .lt(score)
                        .or(dedupe_candidates::score
                            .eq(score)
                            .and(dedupe_candidates::id.gt(id))),
                );
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, candidate_key);
        Ok(Page {
            items: rows
                .into_iter()
                .map(CandidateRow::into_candidate)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    pub async fn get_candidate(&self, id: &str) -> StoreResult<Candidate> {
        let row: Option<CandidateRow> = with_conn!(self, |conn| {
            dedupe_candidates::table
                .find(id)
                .select(CandidateRow::as_select())
                .get_result(conn)
                .await
                .optional()?
        });
        row.ok_or_else(|| StoreError::not_found("candidate", id).at("candidate_id"))?
            .into_candidate()
    }

    /// Settles a queued pair in one transaction: merged (the merge included) or "not a duplicate".
    pub async fn resolve_candidate(
        &self,
        id: &str,
        resolution: &Resolution<'_>,
        actor: &str,
    ) -> StoreResult<(Candidate, Option<MergeRecord>)> {
        write_transaction!(self, |conn| {
            let row: CandidateRow = dedupe_candidates::table
                .find(id)
                .select(CandidateRow::as_select())
                .get_result(conn)
                .await
                .optional()?
                .ok_or_else(|| StoreError::not_found("candidate", id).at("candidate_id"))?;
            if row.state != CandidateState::Open.as_str() {
                return Err(StoreError::FailedPrecondition(format!(
                    "candidate {id} was already resolved ({}) by {:?}",
                    row.state, row.resolved_by
                )));
            }
            let (state, merge) = match resolution {
                Resolution::Merge(request) => {
                    (CandidateState::Merged, Some(conn.merge(request).await?))
                }
                Resolution::NotDuplicate => (CandidateState::NotDuplicate, None),
            };
            let at = now();
            diesel::update(dedupe_candidates::table.find(id))
                .set((
                    dedupe_candidates::state.eq(state.as_str()),
                    dedupe_candidates::resolved_at.eq(Some(at)),
                    dedupe_candidates::resolved_by.eq(actor),
                ))
                .execute(conn)
                .await?;
            let mut candidate = row.into_candidate()?;
            candidate.state = state;
            candidate.resolved_at = Some(at);
            actor.clone_into(&mut candidate.resolved_by);
            Ok((candidate, merge))
        })
    }

    /// Customers that share a phone, an email or the name's pinyin key
    /// ([`tagd_match::name_pinyin`]: the same name in Han characters, in pinyin, in either
    /// order, or a homophone) with one of the drafts
    /// these came from: where FindDuplicates and an import's linking look. Each lookup of
    /// `n` values reads at most `n × SHARING_LIMIT` holders, so a common name stays cheap.
    pub async fn customers_sharing(
        &self,
        phones: &[&str],
        emails: &[&str],
        names: &[&str],
    ) -> StoreResult<Vec<Customer>> {
        let mut name_keys: Vec<String> = names
            .iter()
            .map(|name| tagd_match::name_pinyin(name))
            .filter(|key| !key.is_empty())
            .collect();
        name_keys.sort_unstable();
        name_keys.dedup();
        let cap =
            |values: usize| SHARING_LIMIT.saturating_mul(i64::try_from(values).unwrap_or(i64::MAX));
        Ok(with_conn!(self, |conn| {
            let mut ids: Vec<String> = Vec::new();
            for chunk in phones.chunks(IN_CHUNK) {
                ids.extend(
                    customer_phones::table
                        .filter(ids_in(customer_phones::phone, chunk))
                        .select(customer_phones::customer_id)
                        .limit(cap(chunk.len()))
                        .load::<String>(conn)
                        .await?,
                );
            }
            for chunk in emails.chunks(IN_CHUNK) {
                ids.extend(
                    customer_emails::table
                        .filter(ids_in(customer_emails::email, chunk))
                        .select(customer_emails::customer_id)
                        .limit(cap(chunk.len()))
                        .load::<String>(conn)
                        .await?,
                );
            }
            for chunk in name_keys.chunks(IN_CHUNK) {
                ids.extend(
                    customers::table
                        .filter(ids_in(customers::name_pinyin, chunk))
                        .select(customers::id)
                        .limit(cap(chunk.len()))
                        .load::<String>(conn)
                        .await?,
                );
            }
            ids.sort_unstable();
            ids.dedup();
            conn.load_customers(&ids).await?
        }))
    }

    /// Customers by id (missing ids skipped), in id order.
    pub async fn customers_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Customer>> {
        Ok(with_conn!(self, |conn| conn.load_customers(ids).await?))
    }

    /// When the last finished dedupe run that wrote (not a dry run) started: an incremental
    /// run compares only customers changed since.
    pub async fn last_dedupe_started(&self) -> StoreResult<Option<NaiveDateTime>> {
        Ok(with_conn!(self, |conn| {
            jobs::table
                .filter(jobs::kind.eq(JobKind::Dedupe.as_str()))
                .filter(jobs::state.eq(JobState::Succeeded.as_str()))
                .filter(jobs::dry_run.eq(false))
                .select(diesel::dsl::max(jobs::created_at))
                .get_result::<Option<NaiveDateTime>>(conn)
                .await?
        }))
    }
}
