//! `tagctl dedupe …`: DedupeService — dedupe runs with a progress bar, the review queue
//! (listed, or reviewed interactively pair by pair), explicit merges, unmerges, merges
//! listed, and duplicate searches.

use std::io::{BufRead, Write};

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::{BlockingKeyArg, CandidateStateArg, DedupeCommand, DedupeRunArgs, SurvivorArg};
use crate::connect::Connection;
use crate::exit::Failure;
use crate::jobs::{self, JobView};
use crate::output::{Output, Time, View, cell, enum_name};
use crate::paging::fetch_all;

#[derive(Debug, Serialize)]
pub struct MergeView {
    pub id: String,
    pub survivor_id: String,
    pub merged_ids: Vec<String>,
    pub actor: String,
    pub job_id: String,
    pub reason: String,
    pub created_at: Option<Time>,
    pub undone_at: Option<Time>,
    pub undone_by: String,
}

impl From<pb::Merge> for MergeView {
    fn from(merge: pb::Merge) -> Self {
        MergeView {
            created_at: Time::from_proto(merge.created_at.as_ref()),
            undone_at: Time::from_proto(merge.undone_at.as_ref()),
            id: merge.id,
            survivor_id: merge.survivor_id,
            merged_ids: merge.merged_ids,
            actor: merge.actor,
            job_id: merge.job_id,
            reason: merge.reason,
            undone_by: merge.undone_by,
        }
    }
}

impl View for MergeView {
    const COLUMNS: &'static [&'static str] = &[
        "MERGE",
        "SURVIVOR",
        "MERGED",
        "BY",
        "AT",
        "JOB / REASON",
        "UNDONE",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.survivor_id.clone(),
            self.merged_ids.join("\n"),
            self.actor.clone(),
            cell(self.created_at.as_ref()),
            if self.job_id.is_empty() {
                self.reason.clone()
            } else {
                self.job_id.clone()
            },
            self.undone_at
                .map(|at| format!("{at} by {}", self.undone_by))
                .unwrap_or_default(),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct FieldScoreView {
    pub field: String,
    pub comparison: String,
    pub weight: f64,
    pub contribution: f64,
}

#[derive(Debug, Serialize)]
pub struct CandidateView {
    pub id: String,
    pub score: f64,
    pub state: String,
    pub left: Option<CustomerBrief>,
    pub right: Option<CustomerBrief>,
    pub guard: String,
    pub fields: Vec<FieldScoreView>,
}

/// The fields a reviewer compares.
#[derive(Debug, Serialize, Clone, Default)]
pub struct CustomerBrief {
    pub id: String,
    pub name: String,
    pub gender: String,
    pub birthday: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub address: String,
    pub company: String,
}

impl From<pb::Customer> for CustomerBrief {
    fn from(c: pb::Customer) -> Self {
        let address = c
            .address
            .map(|a| {
                [a.province, a.city, a.district, a.detail]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        CustomerBrief {
            gender: enum_name(
                pb::Gender::try_from(c.gender)
                    .unwrap_or_default()
                    .as_str_name(),
                "GENDER_",
            ),
            id: c.id,
            name: c.name,
            birthday: c.birthday,
            phones: c.phones,
            emails: c.emails,
            address,
            company: c.company,
        }
    }
}

fn explanation_fields(explanation: Option<&pb::PairExplanation>) -> (String, Vec<FieldScoreView>) {
    let Some(explanation) = explanation else {
        return (String::new(), Vec::new());
    };
    (
        explanation.guard.clone(),
        explanation
            .fields
            .iter()
            .map(|f| FieldScoreView {
                field: f.field.clone(),
                comparison: f.comparison.clone(),
                weight: f.weight,
                contribution: f.contribution,
            })
            .collect(),
    )
}

impl From<pb::Candidate> for CandidateView {
    fn from(c: pb::Candidate) -> Self {
        let (guard, fields) = explanation_fields(c.explanation.as_ref());
        CandidateView {
            state: enum_name(
                pb::CandidateState::try_from(c.state)
                    .unwrap_or_default()
                    .as_str_name(),
                "CANDIDATE_STATE_",
            ),
            id: c.id,
            score: c.score,
            left: c.left.map(CustomerBrief::from),
            right: c.right.map(CustomerBrief::from),
            guard,
            fields,
        }
    }
}

fn brief_name(brief: Option<&CustomerBrief>) -> String {
    brief.map_or_else(
        || "(merged away)".to_owned(),
        |b| {
            format!(
                "{} {}",
                b.name,
                b.phones.first().cloned().unwrap_or_default()
            )
        },
    )
}

impl View for CandidateView {
    const COLUMNS: &'static [&'static str] =
        &["CANDIDATE", "SCORE", "LEFT", "RIGHT", "STATE", "NOTE"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            format!("{:.3}", self.score),
            brief_name(self.left.as_ref()),
            brief_name(self.right.as_ref()),
            self.state.clone(),
            self.guard.clone(),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct MatchView {
    pub score: f64,
    pub customer: CustomerBrief,
    pub guard: String,
    pub fields: Vec<FieldScoreView>,
}

impl View for MatchView {
    const COLUMNS: &'static [&'static str] =
        &["SCORE", "CUSTOMER", "NAME", "PHONES", "EMAILS", "WHY"];

    fn cells(&self) -> Vec<String> {
        vec![
            format!("{:.3}", self.score),
            self.customer.id.clone(),
            self.customer.name.clone(),
            self.customer.phones.join("\n"),
            self.customer.emails.join("\n"),
            self.fields
                .iter()
                .filter(|f| f.weight != 0.0)
                .map(|f| format!("{} {}", f.field, f.comparison))
                .collect::<Vec<_>>()
                .join(", "),
        ]
    }
}

fn survivor_rule(arg: Option<SurvivorArg>) -> i32 {
    match arg {
        None => pb::SurvivorRule::Unspecified,
        Some(SurvivorArg::MostComplete) => pb::SurvivorRule::MostComplete,
        Some(SurvivorArg::Oldest) => pb::SurvivorRule::Oldest,
        Some(SurvivorArg::MostRecentlyUpdated) => pb::SurvivorRule::MostRecentlyUpdated,
    }
    .into()
}

fn blocking_key(arg: BlockingKeyArg) -> i32 {
    match arg {
        BlockingKeyArg::Phone => pb::BlockingKey::Phone,
        BlockingKeyArg::Email => pb::BlockingKey::Email,
        BlockingKeyArg::NameBirthday => pb::BlockingKey::NameBirthday,
        BlockingKeyArg::NameCity => pb::BlockingKey::NameCity,
        BlockingKeyArg::NameWordBirthday => pb::BlockingKey::NameWordBirthday,
        BlockingKeyArg::Pinyin => pb::BlockingKey::Pinyin,
    }
    .into()
}

pub async fn run(
    command: DedupeCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.dedupe();
    match command {
        DedupeCommand::Run(args) => start(args, connection, out).await,
        DedupeCommand::Candidates { state, paging } => {
            let state = match state.unwrap_or(CandidateStateArg::Open) {
                CandidateStateArg::Open => pb::CandidateState::Open,
                CandidateStateArg::Merged => pb::CandidateState::Merged,
                CandidateStateArg::NotDuplicate => pb::CandidateState::NotDuplicate,
            };
            let candidates = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_candidates(pb::ListCandidatesRequest {
                            state: state.into(),
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.candidates, page.next_page_token))
                }
            })
            .await?;
            out.list(
                &candidates
                    .into_iter()
                    .map(CandidateView::from)
                    .collect::<Vec<_>>(),
            )
        }
        DedupeCommand::Review { survivor } => review(connection, survivor, out).await,
        DedupeCommand::Resolve {
            candidate_id,
            not_duplicate,
            survivor_id,
        } => {
            let resolved = client
                .resolve_candidate(pb::ResolveCandidateRequest {
                    candidate_id,
                    resolution: if not_duplicate {
                        pb::Resolution::NotDuplicate
                    } else {
                        pb::Resolution::Merge
                    }
                    .into(),
                    survivor_id: survivor_id.unwrap_or_default(),
                    survivor_rule: pb::SurvivorRule::Unspecified.into(),
                })
                .await?
                .into_inner();
            match resolved.merge {
                Some(merge) => out.record(&MergeView::from(merge)),
                None => out.outcome(
                    &resolved.candidate.map(CandidateView::from),
                    "marked not a duplicate: the pair will not be proposed again",
                ),
            }
        }
        DedupeCommand::Merge {
            customer_ids,
            survivor_id,
            rule,
            reason,
        } => {
            let merge = client
                .merge_customers(pb::MergeCustomersRequest {
                    customer_ids,
                    survivor_id: survivor_id.unwrap_or_default(),
                    survivor_rule: survivor_rule(rule),
                    reason: reason.unwrap_or_default(),
                })
                .await?
                .into_inner();
            out.record(&MergeView::from(merge))
        }
        DedupeCommand::Unmerge { merge_id } => {
            let merge = client
                .unmerge(pb::UnmergeRequest { merge_id })
                .await?
                .into_inner();
            out.record(&MergeView::from(merge))
        }
        DedupeCommand::Merges {
            customer_id,
            job_id,
            paging,
        } => {
            let merges = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let customer_id = customer_id.clone().unwrap_or_default();
                let job_id = job_id.clone().unwrap_or_default();
                async move {
                    let page = client
                        .list_merges(pb::ListMergesRequest {
                            customer_id,
                            job_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.merges, page.next_page_token))
                }
            })
            .await?;
            out.list(&merges.into_iter().map(MergeView::from).collect::<Vec<_>>())
        }
        DedupeCommand::Find {
            customer_id,
            name,
            phones,
            emails,
            birthday,
            limit,
        } => {
            let subject = match customer_id {
                Some(id) => pb::find_duplicates_request::Subject::CustomerId(id),
                None => pb::find_duplicates_request::Subject::Draft(pb::Customer {
                    name: name.unwrap_or_default(),
                    phones,
                    emails,
                    birthday: birthday.unwrap_or_default(),
                    ..pb::Customer::default()
                }),
            };
            let matches = client
                .find_duplicates(pb::FindDuplicatesRequest {
                    subject: Some(subject),
                    min_score: 0.0,
                    limit: limit.unwrap_or(10),
                })
                .await?
                .into_inner()
                .matches;
            let views: Vec<MatchView> = matches
                .into_iter()
                .map(|m| {
                    let (guard, fields) = explanation_fields(m.explanation.as_ref());
                    MatchView {
                        score: m.score,
                        customer: m.customer.map(CustomerBrief::from).unwrap_or_default(),
                        guard,
                        fields,
                    }
                })
                .collect();
            out.list(&views)
        }
    }
}

async fn start(args: DedupeRunArgs, connection: &Connection, out: Output) -> Result<(), Failure> {
    let job = connection
        .dedupe()
        .start_dedupe(pb::StartDedupeRequest {
            dry_run: args.dry_run,
            merge_threshold: args.merge_threshold.unwrap_or(0.0),
            review_threshold: args.review_threshold.unwrap_or(0.0),
            blocking_keys: args.keys.into_iter().map(blocking_key).collect(),
            survivor_rule: survivor_rule(args.survivor),
            full: args.full,
        })
        .await?
        .into_inner();
    if args.detach {
        let id = job.id.clone();
        out.outcome(&JobView::from(job), &id)?;
        if !out.is_json() {
            eprintln!("dedupe started; follow it with `tagctl jobs watch {id}`");
        }
        return Ok(());
    }
    let done = jobs::follow(connection, &job.id, out).await?;
    let queued = done.progress.unwrap_or_default().queued_for_review;
    jobs::conclude(connection, done, out).await?;
    if queued > 0 {
        out.note(&format!(
            "{queued} pair(s) await review: `tagctl dedupe review` shows them one by one"
        ))?;
    }
    Ok(())
}

/// Shows each open pair side by side with its field scores and asks merge / not / skip / quit.
async fn review(
    connection: &Connection,
    survivor: Option<SurvivorArg>,
    out: Output,
) -> Result<(), Failure> {
    if out.is_json() {
        return Err(Failure::usage(
            "review is interactive; use `dedupe candidates --json` and `dedupe resolve` in scripts",
        ));
    }
    let mut client = connection.dedupe();
    let mut skipped: Vec<String> = Vec::new();
    let mut token = String::new();
    let stdin = std::io::stdin();
    let mut answers = stdin.lock();
    let (mut merged, mut kept_apart) = (0_u32, 0_u32);
    loop {
        let page = client
            .list_candidates(pb::ListCandidatesRequest {
                state: pb::CandidateState::Open.into(),
                page_size: 50,
                page_token: token.clone(),
            })
            .await?
            .into_inner();
        let fresh: Vec<pb::Candidate> = page
            .candidates
            .into_iter()
            .filter(|c| !skipped.contains(&c.id))
            .collect();
        if fresh.is_empty() && page.next_page_token.is_empty() {
            break;
        }
        for candidate in fresh {
            let id = candidate.id.clone();
            let view = CandidateView::from(candidate);
            show_pair(&view, out)?;
            let answer = loop {
                let mut stdout = std::io::stdout().lock();
                write!(
                    stdout,
                    "merge (m), not a duplicate (n), skip (s), quit (q)? "
                )
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
                let mut line = String::new();
                let read = answers
                    .read_line(&mut line)
                    .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
                if read == 0 {
                    break Answer::Quit;
                }
                match line.trim() {
                    "m" | "merge" => break Answer::Resolve(pb::Resolution::Merge),
                    "n" | "not" => break Answer::Resolve(pb::Resolution::NotDuplicate),
                    "s" | "skip" | "" => break Answer::Skip,
                    "q" | "quit" => break Answer::Quit,
                    _ => {}
                }
            };
            match answer {
                Answer::Resolve(resolution) => {
                    let resolved = client
                        .resolve_candidate(pb::ResolveCandidateRequest {
                            candidate_id: id.clone(),
                            resolution: resolution.into(),
                            survivor_id: String::new(),
                            survivor_rule: survivor_rule(survivor),
                        })
                        .await;
                    match resolved {
                        Ok(resolved) => match resolved.into_inner().merge {
                            Some(merge) => {
                                merged += 1;
                                out.note(&format!(
                                    "merged into {} (merge {}; `tagctl dedupe unmerge {}` undoes it)",
                                    merge.survivor_id, merge.id, merge.id
                                ))?;
                            }
                            None => kept_apart += 1,
                        },
                        // A pair overtaken by another merge: say so and go on with the rest.
                        Err(status)
                            if status.code() == tonic::Code::FailedPrecondition
                                || status.code() == tonic::Code::NotFound =>
                        {
                            out.note(&format!("cannot resolve: {}", status.message()))?;
                            skipped.push(id);
                        }
                        Err(status) => return Err(status.into()),
                    }
                }
                Answer::Skip => skipped.push(id),
                Answer::Quit => {
                    out.note(&format!(
                        "stopped: {merged} merged, {kept_apart} kept apart"
                    ))?;
                    return Ok(());
                }
            }
        }
        // Resolved pairs leave the queue, so the first page is read again; skipped ones
        // are filtered out above. Only when a whole page was skipped does paging move on.
        if !page.next_page_token.is_empty() && skipped.len() >= 50 {
            token = page.next_page_token;
        }
    }
    out.note(&format!(
        "review queue done: {merged} merged, {kept_apart} kept apart"
    ))
}

/// A reviewer's answer to one pair.
enum Answer {
    Resolve(pb::Resolution),
    Skip,
    Quit,
}

fn show_pair(view: &CandidateView, out: Output) -> Result<(), Failure> {
    let left = view.left.clone().unwrap_or_default();
    let right = view.right.clone().unwrap_or_default();
    let rows: Vec<PairRow> = [
        ("id", left.id.clone(), right.id.clone()),
        ("name", left.name.clone(), right.name.clone()),
        ("gender", left.gender.clone(), right.gender.clone()),
        ("birthday", left.birthday.clone(), right.birthday.clone()),
        ("phones", left.phones.join("\n"), right.phones.join("\n")),
        ("emails", left.emails.join("\n"), right.emails.join("\n")),
        ("address", left.address.clone(), right.address.clone()),
        ("company", left.company.clone(), right.company.clone()),
    ]
    .into_iter()
    .map(|(field, l, r)| {
        let score = view
            .fields
            .iter()
            .find(|f| {
                field.starts_with(&f.field)
                    || f.field.starts_with(field)
                    || (field == "address" && f.field == "city")
            })
            .map(|f| format!("{} ({:+.1})", f.comparison, f.weight))
            .unwrap_or_default();
        PairRow {
            field,
            left: l,
            right: r,
            score,
        }
    })
    .collect();
    out.note(&format!(
        "\ncandidate {}: score {:.3}{}",
        view.id,
        view.score,
        if view.guard.is_empty() {
            String::new()
        } else {
            format!(" — {}", view.guard)
        }
    ))?;
    out.list(&rows)
}

#[derive(Debug, Serialize)]
struct PairRow {
    field: &'static str,
    left: String,
    right: String,
    score: String,
}

impl View for PairRow {
    const COLUMNS: &'static [&'static str] = &["FIELD", "LEFT", "RIGHT", "COMPARISON"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.field.to_owned(),
            self.left.clone(),
            self.right.clone(),
            self.score.clone(),
        ]
    }
}
