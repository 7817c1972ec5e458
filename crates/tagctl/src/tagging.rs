//! `tagctl tagging …`: TaggingService — assignments, removals, current tags, history,
//! and the chunked batch assignment from a file.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tagd_proto::v1 as pb;

use crate::cli::{Provenance, SourceArg, TaggingCommand, parse_time};
use crate::connect::Connection;
use crate::customers::chunk_context;
use crate::exit::Failure;
use crate::input::{Record, entry_path, read_records};
use crate::output::{Output, Time, View, cell, enum_name};
use crate::paging::fetch_all;

#[derive(Debug, Serialize)]
pub struct CustomerTagView {
    pub tag_id: String,
    pub tag_name: String,
    pub category_id: String,
    pub category_name: String,
    pub value: String,
    pub source: String,
    pub source_ref: String,
    pub assigned_by: String,
    pub assigned_at: Option<Time>,
    pub expires_at: Option<Time>,
}

impl From<pb::CustomerTag> for CustomerTagView {
    fn from(tag: pb::CustomerTag) -> Self {
        CustomerTagView {
            source: source_name(tag.source),
            assigned_at: Time::from_proto(tag.assigned_at.as_ref()),
            expires_at: Time::from_proto(tag.expires_at.as_ref()),
            tag_id: tag.tag_id,
            tag_name: tag.tag_name,
            category_id: tag.category_id,
            category_name: tag.category_name,
            value: tag.value,
            source_ref: tag.source_ref,
            assigned_by: tag.assigned_by,
        }
    }
}

impl View for CustomerTagView {
    const COLUMNS: &'static [&'static str] = &[
        "TAG ID", "CATEGORY", "TAG", "VALUE", "SOURCE", "BY", "ASSIGNED", "EXPIRES",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.tag_id.clone(),
            self.category_name.clone(),
            self.tag_name.clone(),
            self.value.clone(),
            with_ref(&self.source, &self.source_ref),
            self.assigned_by.clone(),
            cell(self.assigned_at.as_ref()),
            cell(self.expires_at.as_ref()),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub id: String,
    pub customer_id: String,
    pub tag_id: String,
    pub tag_name: String,
    pub category_name: String,
    pub action: String,
    pub old_value: String,
    pub new_value: String,
    pub source: String,
    pub source_ref: String,
    pub actor: String,
    pub time: Option<Time>,
}

impl From<pb::TagHistoryEntry> for HistoryView {
    fn from(entry: pb::TagHistoryEntry) -> Self {
        HistoryView {
            action: pb::HistoryAction::try_from(entry.action).map_or_else(
                |_| format!("unknown({})", entry.action),
                |a| enum_name(a.as_str_name(), "HISTORY_ACTION_"),
            ),
            source: source_name(entry.source),
            time: Time::from_proto(entry.time.as_ref()),
            id: entry.id,
            customer_id: entry.customer_id,
            tag_id: entry.tag_id,
            tag_name: entry.tag_name,
            category_name: entry.category_name,
            old_value: entry.old_value,
            new_value: entry.new_value,
            source_ref: entry.source_ref,
            actor: entry.actor,
        }
    }
}

impl View for HistoryView {
    const COLUMNS: &'static [&'static str] = &[
        "TIME", "ACTION", "CATEGORY", "TAG", "OLD", "NEW", "SOURCE", "ACTOR",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            cell(self.time.as_ref()),
            self.action.clone(),
            self.category_name.clone(),
            self.tag_name.clone(),
            self.old_value.clone(),
            self.new_value.clone(),
            with_ref(&self.source, &self.source_ref),
            self.actor.clone(),
        ]
    }
}

fn source_name(source: i32) -> String {
    pb::TagSource::try_from(source).map_or_else(
        |_| format!("unknown({source})"),
        |s| enum_name(s.as_str_name(), "TAG_SOURCE_"),
    )
}

/// `import (job-7)`: the reference is what makes a source traceable.
pub(crate) fn with_ref(source: &str, source_ref: &str) -> String {
    if source_ref.is_empty() {
        source.to_owned()
    } else {
        format!("{source} ({source_ref})")
    }
}

#[derive(Debug, Default, Serialize)]
struct Assigned {
    assigned: u64,
    changed: u64,
    unchanged: u64,
    replaced: u64,
}

impl Assigned {
    fn add(&mut self, response: &pb::AssignTagsResponse) {
        self.assigned += response.assigned;
        self.changed += response.changed;
        self.unchanged += response.unchanged;
        self.replaced += response.replaced;
    }

    fn sentence(&self) -> String {
        format!(
            "{} assigned, {} changed, {} unchanged, {} replaced",
            self.assigned, self.changed, self.unchanged, self.replaced
        )
    }
}

pub async fn run(
    command: TaggingCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.tagging();
    match command {
        TaggingCommand::Assign {
            customer,
            tags,
            provenance,
            expires_at,
        } => {
            let assignments = tags
                .into_iter()
                .map(|(tag_id, value)| pb::TagAssignment {
                    tag_id,
                    value,
                    source: pb::TagSource::from(provenance.source).into(),
                    source_ref: provenance.source_ref.clone(),
                    expires_at,
                })
                .collect();
            let response = client
                .assign_tags(pb::AssignTagsRequest {
                    customer_id: customer,
                    assignments,
                })
                .await?
                .into_inner();
            let mut assigned = Assigned::default();
            assigned.add(&response);
            out.outcome(&assigned, &assigned.sentence())
        }
        TaggingCommand::Remove { customer, tags } => {
            let response = client
                .remove_tags(pb::RemoveTagsRequest {
                    customer_id: customer,
                    tag_ids: tags,
                })
                .await?
                .into_inner();
            #[derive(Serialize)]
            struct Removed {
                removed: u64,
            }
            out.outcome(
                &Removed {
                    removed: response.removed,
                },
                &format!("{} removed", response.removed),
            )
        }
        TaggingCommand::List { customer } => {
            let tags = client
                .list_customer_tags(pb::ListCustomerTagsRequest {
                    customer_id: customer,
                })
                .await?
                .into_inner()
                .tags;
            out.list(
                &tags
                    .into_iter()
                    .map(CustomerTagView::from)
                    .collect::<Vec<_>>(),
            )
        }
        TaggingCommand::History { customer, paging } => {
            let entries = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let customer_id = customer.clone();
                async move {
                    let page = client
                        .get_tag_history(pb::GetTagHistoryRequest {
                            customer_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.entries, page.next_page_token))
                }
            })
            .await?;
            out.list(
                &entries
                    .into_iter()
                    .map(HistoryView::from)
                    .collect::<Vec<_>>(),
            )
        }
        TaggingCommand::BatchAssign {
            file,
            chunk_size,
            provenance,
        } => batch_assign(connection, out, &file, chunk_size, &provenance).await,
    }
}

/// One assignment of a batch file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentRecord {
    customer_id: String,
    tag_id: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    source: Option<SourceArg>,
    #[serde(default)]
    source_ref: Option<String>,
    /// RFC 3339 or YYYY-MM-DD.
    #[serde(default)]
    expires_at: Option<String>,
}

/// One BatchAssignTags call: assignments grouped by customer, with where each came from.
#[derive(Default)]
struct Chunk {
    entries: Vec<pb::CustomerAssignments>,
    origins: Vec<Vec<String>>,
    by_customer: HashMap<String, usize>,
    assignments: usize,
    /// The first and last records in file order, for error messages.
    span: (String, String),
}

impl Chunk {
    fn push(&mut self, origin: String, customer_id: String, assignment: pb::TagAssignment) {
        let index = *self
            .by_customer
            .entry(customer_id.clone())
            .or_insert_with(|| {
                self.entries.push(pb::CustomerAssignments {
                    customer_id,
                    assignments: Vec::new(),
                });
                self.origins.push(Vec::new());
                self.entries.len() - 1
            });
        self.entries[index].assignments.push(assignment);
        if self.assignments == 0 {
            self.span.0.clone_from(&origin);
        }
        self.span.1.clone_from(&origin);
        self.origins[index].push(origin);
        self.assignments += 1;
    }
}

/// The record a server message such as `entries[2].assignments[1].value: …` points at.
fn culprit<'a>(origins: &'a [Vec<String>], message: &str) -> Option<&'a String> {
    let (entry, assignment) = entry_path(message)?;
    origins.get(entry)?.get(assignment.unwrap_or(0))
}

#[derive(Debug, Serialize)]
struct BatchSummary {
    records: usize,
    calls: usize,
    #[serde(flatten)]
    counts: Assigned,
}

async fn batch_assign(
    connection: &Connection,
    out: Output,
    file: &Path,
    chunk_size: u32,
    provenance: &Provenance,
) -> Result<(), Failure> {
    let records: Vec<Record<AssignmentRecord>> = read_records(file)?;
    let chunk_size = usize::try_from(chunk_size).unwrap_or(10_000);
    // Parse everything first: a bad date on the last line must not leave earlier chunks applied.
    let mut chunks: Vec<Chunk> = Vec::new();
    for record in &records {
        let value = &record.value;
        let expires_at = value
            .expires_at
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| Failure::usage(format!("{}: expires_at: {e}", record.origin)))?;
        let assignment = pb::TagAssignment {
            tag_id: value.tag_id.clone(),
            value: value.value.clone(),
            source: pb::TagSource::from(value.source.unwrap_or(provenance.source)).into(),
            source_ref: value
                .source_ref
                .clone()
                .unwrap_or_else(|| provenance.source_ref.clone()),
            expires_at,
        };
        if chunks
            .last()
            .is_none_or(|chunk| chunk.assignments >= chunk_size)
        {
            chunks.push(Chunk::default());
        }
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(record.origin.clone(), value.customer_id.clone(), assignment);
        }
    }
    let mut client = connection.tagging();
    let mut counts = Assigned::default();
    let total = chunks.len();
    for (index, chunk) in chunks.into_iter().enumerate() {
        let Chunk {
            entries,
            origins,
            span,
            ..
        } = chunk;
        let response = client
            .batch_assign_tags(pb::BatchAssignTagsRequest { entries })
            .await
            .map_err(|status| {
                let culprit = culprit(&origins, status.message());
                Failure::from(status).with_context(chunk_context(
                    index + 1,
                    total,
                    &span,
                    index,
                    culprit,
                ))
            })?
            .into_inner();
        counts.add(&response);
    }
    let sentence = format!(
        "{} records in {} calls: {}",
        records.len(),
        total,
        counts.sentence()
    );
    out.outcome(
        &BatchSummary {
            records: records.len(),
            calls: total,
            counts,
        },
        &sentence,
    )
}
