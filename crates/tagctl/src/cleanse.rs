//! `tagctl cleanse run` and `tagctl cleanse report`: CleanseService. Following the
//! started job and its summary are `jobs.rs`'s.

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::{CleanseArgs, CleanseCommand};
use crate::connect::Connection;
use crate::exit::Failure;
use crate::jobs::{self, JobView, count};
use crate::output::{Output, View};
use crate::paging::fetch_all;

/// How many unfixable values the summary of a cleanse shows.
const PREVIEW_VALUES: u32 = 10;

#[derive(Debug, Serialize)]
pub struct FieldCountView {
    pub field: String,
    pub changed: u64,
    pub duplicates_removed: u64,
    pub unfixable: u64,
}

impl From<pb::CleanseFieldCount> for FieldCountView {
    fn from(count: pb::CleanseFieldCount) -> Self {
        FieldCountView {
            field: count.field,
            changed: count.changed,
            duplicates_removed: count.duplicates_removed,
            unfixable: count.unfixable,
        }
    }
}

impl View for FieldCountView {
    const COLUMNS: &'static [&'static str] =
        &["FIELD", "CHANGED", "DUPLICATES REMOVED", "UNFIXABLE"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.field.clone(),
            count(self.changed),
            count(self.duplicates_removed),
            count(self.unfixable),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct UnfixableView {
    pub customer_id: String,
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl From<pb::UnfixableValue> for UnfixableView {
    fn from(value: pb::UnfixableValue) -> Self {
        UnfixableView {
            customer_id: value.customer_id,
            field: value.field,
            value: value.value,
            reason: value.reason,
        }
    }
}

impl View for UnfixableView {
    const COLUMNS: &'static [&'static str] = &["CUSTOMER", "FIELD", "VALUE", "REASON"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.customer_id.clone(),
            self.field.clone(),
            self.value.clone(),
            self.reason.clone(),
        ]
    }
}

/// A cleanse report as `--json` prints it.
#[derive(Debug, Serialize)]
struct ReportView {
    job: JobView,
    fields: Vec<FieldCountView>,
    unfixable: Vec<UnfixableView>,
}

pub async fn run(
    command: CleanseCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    match command {
        CleanseCommand::Run(args) => start(args, connection, out).await,
        CleanseCommand::Report { job_id, limit } => report(job_id, limit, connection, out).await,
    }
}

async fn start(args: CleanseArgs, connection: &Connection, out: Output) -> Result<(), Failure> {
    let job = connection
        .cleanse()
        .start_cleanse(pb::StartCleanseRequest {
            dry_run: args.dry_run,
            fold_gmail: args.fold_gmail,
            lowercase_email_local_part: args.lowercase_emails,
            fields: args.fields,
        })
        .await?
        .into_inner();
    if args.detach {
        let id = job.id.clone();
        out.outcome(&JobView::from(job), &id)?;
        if !out.is_json() {
            // stderr, so `id=$(tagctl cleanse run --detach)` captures only the id.
            eprintln!("cleanse started; follow it with `tagctl jobs watch {id}`");
        }
        return Ok(());
    }
    let done = jobs::follow(connection, &job.id, out).await?;
    jobs::conclude(connection, done, out).await
}

async fn report(
    job_id: String,
    limit: Option<u32>,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let client = connection.cleanse();
    // The first page brings the job and the per-field counts (every page repeats them).
    let first = client
        .clone()
        .get_cleanse_report(pb::GetCleanseReportRequest {
            job_id: job_id.clone(),
            page_size: 1,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    let unfixable = fetch_all(limit, |page_size, page_token| {
        let mut client = client.clone();
        let job_id = job_id.clone();
        async move {
            let page = client
                .get_cleanse_report(pb::GetCleanseReportRequest {
                    job_id,
                    page_size,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((page.unfixable, page.next_page_token))
        }
    })
    .await?;
    let view = ReportView {
        job: JobView::from(first.job.unwrap_or_default()),
        fields: first.fields.into_iter().map(FieldCountView::from).collect(),
        unfixable: unfixable.into_iter().map(UnfixableView::from).collect(),
    };
    if out.is_json() {
        return out.outcome(&view, "");
    }
    out.record(&view.job)?;
    out.note("\nPer field:")?;
    out.list(&view.fields)?;
    if view.unfixable.is_empty() {
        out.note("\nEvery value could be standardised.")
    } else {
        out.note(&format!(
            "\n{} values could not be standardised (kept as they were):",
            count(view.unfixable.len() as u64)
        ))?;
        out.list(&view.unfixable)
    }
}

/// After a cleanse's summary: the counts per field, its first unfixable values and
/// where to find the rest.
pub async fn show_unfixable(
    connection: &Connection,
    job: &pb::Job,
    out: Output,
) -> Result<(), Failure> {
    // With --json the job is the whole output; the report is its own command.
    if out.is_json() {
        return Ok(());
    }
    let unfixable = job.progress.unwrap_or_default().rejected;
    let first = connection
        .cleanse()
        .get_cleanse_report(pb::GetCleanseReportRequest {
            job_id: job.id.clone(),
            page_size: PREVIEW_VALUES,
            page_token: String::new(),
        })
        .await;
    let page = match first {
        Ok(page) => page.into_inner(),
        // The job's outcome decides the exit status, not this extra: warn and go on.
        Err(status) => {
            eprintln!(
                "warning: cannot fetch the cleanse report: {}",
                Failure::from(status)
            );
            return Ok(());
        }
    };
    if !page.fields.is_empty() {
        out.note("\nPer field:")?;
        out.list(
            &page
                .fields
                .into_iter()
                .map(FieldCountView::from)
                .collect::<Vec<_>>(),
        )?;
    }
    if unfixable == 0 {
        return Ok(());
    }
    let values = if unfixable == 1 {
        "value was"
    } else {
        "values were"
    };
    out.note(&format!(
        "\n{} {values} left as they were (not standardisable).",
        count(unfixable)
    ))?;
    let preview: Vec<UnfixableView> = page
        .unfixable
        .into_iter()
        .map(UnfixableView::from)
        .collect();
    if u64::try_from(preview.len()).is_ok_and(|shown| shown < unfixable) {
        out.note(&format!("The first {}:", preview.len()))?;
    }
    out.list(&preview)?;
    out.note(&format!(
        "Every unfixable value: tagctl cleanse report {}",
        job.id
    ))
}
