//! `tagctl importers`, `tagctl import`, `tagctl import-report` and `tagctl import-revert`: ImportService.
//! Following the started job and its summary are `jobs.rs`'s.

use std::collections::HashMap;

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::ImportArgs;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::jobs::{self, JobView, count};
use crate::output::{Output, View};
use crate::paging::fetch_all;

/// How many rejected rows the summary of an import shows.
const PREVIEW_ROWS: u32 = 10;

#[derive(Debug, Serialize)]
pub struct ImporterView {
    pub name: String,
    pub version: String,
    pub abi_version: u32,
    pub channel: String,
    pub file_types: Vec<String>,
    pub description: String,
    pub path: String,
    /// Whether StartImport accepts it; `error` says why not.
    pub usable: bool,
    pub error: String,
    pub options: Vec<ImporterOptionView>,
}

#[derive(Debug, Serialize)]
pub struct ImporterOptionView {
    pub name: String,
    pub default_value: String,
    pub required: bool,
    pub description: String,
}

impl From<pb::Importer> for ImporterView {
    fn from(importer: pb::Importer) -> Self {
        ImporterView {
            usable: importer.error.is_empty(),
            name: importer.name,
            version: importer.version,
            abi_version: importer.abi_version,
            channel: importer.channel,
            file_types: importer.file_types,
            description: importer.description,
            path: importer.path,
            error: importer.error,
            options: importer
                .options
                .into_iter()
                .map(|option| ImporterOptionView {
                    name: option.name,
                    default_value: option.default_value,
                    required: option.required,
                    description: option.description,
                })
                .collect(),
        }
    }
}

impl View for ImporterView {
    const COLUMNS: &'static [&'static str] =
        &["NAME", "VERSION", "CHANNEL", "FILE TYPES", "STATUS"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.version.clone(),
            self.channel.clone(),
            self.file_types.join(", "),
            if self.usable {
                "ok".to_owned()
            } else {
                self.error.clone()
            },
        ]
    }
}

impl View for ImporterOptionView {
    const COLUMNS: &'static [&'static str] = &["OPTION", "DEFAULT", "REQUIRED", "DESCRIPTION"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.default_value.clone(),
            if self.required { "yes" } else { "" }.to_owned(),
            self.description.clone(),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct RejectedRowView {
    pub row: u64,
    pub field: String,
    pub reason: String,
    pub raw_value: String,
}

impl From<pb::RejectedRow> for RejectedRowView {
    fn from(row: pb::RejectedRow) -> Self {
        RejectedRowView {
            row: row.row,
            field: row.field,
            reason: row.reason,
            raw_value: row.raw_value,
        }
    }
}

impl View for RejectedRowView {
    const COLUMNS: &'static [&'static str] = &["ROW", "FIELD", "REASON", "RAW VALUE"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.row.to_string(),
            if self.field.is_empty() {
                "(whole row)".to_owned()
            } else {
                self.field.clone()
            },
            self.reason.clone(),
            self.raw_value.clone(),
        ]
    }
}

pub async fn importers(verbose: bool, connection: &Connection, out: Output) -> Result<(), Failure> {
    let importers = connection
        .imports()
        .list_importers(pb::ListImportersRequest {})
        .await?
        .into_inner()
        .importers;
    let views: Vec<ImporterView> = importers.into_iter().map(ImporterView::from).collect();
    // JSON always carries the options: scripts should not need a flag to see them.
    out.list(&views)?;
    if verbose && !out.is_json() {
        for importer in &views {
            let mut heading = format!("\n{}", importer.name);
            for (separator, part) in [(" ", &importer.version), (": ", &importer.description)] {
                if !part.is_empty() {
                    heading.push_str(separator);
                    heading.push_str(part);
                }
            }
            heading.push_str("\n  library: ");
            heading.push_str(&importer.path);
            out.note(&heading)?;
            if importer.options.is_empty() {
                out.note("  no options")?;
            } else {
                out.list(&importer.options)?;
            }
        }
    }
    Ok(())
}

pub async fn import(args: ImportArgs, connection: &Connection, out: Output) -> Result<(), Failure> {
    let request = start_request(&args)?;
    let job = connection
        .imports()
        .start_import(request)
        .await?
        .into_inner();
    if args.detach {
        let id = job.id.clone();
        out.outcome(&JobView::from(job), &id)?;
        if !out.is_json() {
            // stderr, so `id=$(tagctl import … --detach)` captures only the id.
            eprintln!("import started; follow it with `tagctl jobs watch {id}`");
        }
        return Ok(());
    }
    let done = jobs::follow(connection, &job.id, out).await?;
    jobs::conclude(connection, done, out).await
}

fn start_request(args: &ImportArgs) -> Result<pb::StartImportRequest, Failure> {
    // The server resolves the path itself; tagctl and tagd usually share a machine,
    // so a path relative to where tagctl runs is what the user means.
    let path = std::path::absolute(&args.file)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.file.display())))?;
    let source_path = path
        .to_str()
        .ok_or_else(|| {
            Failure::usage(format!(
                "{}: not valid UTF-8, which the server requires of paths",
                path.display()
            ))
        })?
        .to_owned();
    let mut options = HashMap::new();
    for (key, value) in &args.options {
        if options.insert(key.clone(), value.clone()).is_some() {
            return Err(Failure::usage(format!("--option {key} is given twice")));
        }
    }
    Ok(pb::StartImportRequest {
        importer: args.importer.clone(),
        source_path,
        options,
        dry_run: args.dry_run,
        existing: if args.skip_existing {
            pb::ExistingCustomers::Skip
        } else {
            pb::ExistingCustomers::Update
        } as i32,
        create_missing_tags: args.create_missing_tags,
        link_duplicates_at: args.link_duplicates_at.unwrap_or(0.0),
    })
}

pub async fn report(
    job_id: String,
    limit: Option<u32>,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let client = connection.imports();
    let rows = fetch_all(limit, |page_size, page_token| {
        let mut client = client.clone();
        let job_id = job_id.clone();
        async move {
            let page = client
                .get_import_report(pb::GetImportReportRequest {
                    job_id,
                    page_size,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((page.rows, page.next_page_token))
        }
    })
    .await?;
    out.list(
        &rows
            .into_iter()
            .map(RejectedRowView::from)
            .collect::<Vec<_>>(),
    )
}

/// What `import-revert` undid, as `--json` prints it.
#[derive(serde::Serialize)]
struct RevertSummary {
    job_id: String,
    customers_deleted: u64,
    customers_restored: u64,
    tags_removed: u64,
    tags_restored: u64,
    purchases_removed: u64,
    interactions_removed: u64,
}

pub async fn revert(job_id: String, connection: &Connection, out: Output) -> Result<(), Failure> {
    let undone = connection
        .imports()
        .revert_import(pb::RevertImportRequest {
            job_id: job_id.clone(),
        })
        .await?
        .into_inner();
    let summary = RevertSummary {
        job_id,
        customers_deleted: undone.customers_deleted,
        customers_restored: undone.customers_restored,
        tags_removed: undone.tags_removed,
        tags_restored: undone.tags_restored,
        purchases_removed: undone.purchases_removed,
        interactions_removed: undone.interactions_removed,
    };
    let sentence = format!(
        "reverted import {}: {} customers deleted, {} restored; {} tags removed, {} restored; {} purchases and {} interactions removed",
        summary.job_id,
        summary.customers_deleted,
        summary.customers_restored,
        summary.tags_removed,
        summary.tags_restored,
        summary.purchases_removed,
        summary.interactions_removed,
    );
    out.outcome(&summary, &sentence)
}

/// After an import's summary: its first rejected rows and where to find the rest.
pub async fn show_rejected(
    connection: &Connection,
    job: &pb::Job,
    state: pb::JobState,
    out: Output,
) -> Result<(), Failure> {
    let rejected = job.progress.unwrap_or_default().rejected;
    // With --json the job is the whole output; the report is its own command.
    if rejected == 0 || out.is_json() {
        return Ok(());
    }
    let rows = if rejected == 1 {
        "row was"
    } else {
        "rows were"
    };
    let outcome = if state == pb::JobState::Succeeded {
        " (the import still succeeded: the other rows were imported)"
    } else {
        ""
    };
    out.note(&format!("\n{} {rows} rejected{outcome}.", count(rejected)))?;
    let first = connection
        .imports()
        .get_import_report(pb::GetImportReportRequest {
            job_id: job.id.clone(),
            page_size: PREVIEW_ROWS,
            page_token: String::new(),
        })
        .await;
    match first {
        Ok(page) => {
            let preview: Vec<RejectedRowView> = page
                .into_inner()
                .rows
                .into_iter()
                .map(RejectedRowView::from)
                .collect();
            if u64::try_from(preview.len()).is_ok_and(|shown| shown < rejected) {
                out.note(&format!("The first {}:", preview.len()))?;
            }
            out.list(&preview)?;
        }
        // The job's outcome decides the exit status, not this extra: warn and go on.
        Err(status) => eprintln!(
            "warning: cannot fetch the rejected rows: {}",
            Failure::from(status)
        ),
    }
    out.note(&format!(
        "Every rejected row: tagctl import-report {}",
        job.id
    ))
}
