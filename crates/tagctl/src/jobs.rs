//! `tagctl jobs …` and what every long server-side job shares: how a job is shown,
//! following one to its end with a progress bar ([`follow`]), and the summary and
//! exit status at the end ([`conclude`]). `import` and `cleanse run` use both; dedupe
//! will too.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::JobsCommand;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::{Output, Time, View, cell, enum_name};
use crate::paging::fetch_all;
use crate::{cleanse, imports};

/// [`JobView::kind`] of a cleanse job.
const CLEANSE: &str = "cleanse";
/// The kind name of a dedupe job, whose counters mean other things.
const DEDUPE: &str = "dedupe";

#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub subject: String,
    pub dry_run: bool,
    pub created_by: String,
    pub created_at: Option<Time>,
    pub finished_at: Option<Time>,
    /// From start to finish; to now while the job runs.
    pub duration_secs: Option<f64>,
    /// Why a failed (or cancelled) job stopped; empty otherwise.
    pub error: String,
    pub progress: ProgressView,
}

#[derive(Debug, Default, Serialize)]
pub struct ProgressView {
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub tags_added: u64,
    pub purchases_added: u64,
    pub interactions_added: u64,
    pub rows_per_second: f64,
    /// Absent when the server cannot estimate it (it sends -1).
    pub eta_seconds: Option<i64>,
    pub bytes_total: u64,
    pub comparisons: u64,
    pub clusters: u64,
    pub merged: u64,
    pub queued_for_review: u64,
}

impl From<pb::JobProgress> for ProgressView {
    fn from(p: pb::JobProgress) -> Self {
        ProgressView {
            rows_read: p.rows_read,
            created: p.created,
            updated: p.updated,
            unchanged: p.unchanged,
            rejected: p.rejected,
            tags_added: p.tags_added,
            purchases_added: p.purchases_added,
            interactions_added: p.interactions_added,
            rows_per_second: p.rows_per_second,
            eta_seconds: (p.eta_seconds >= 0).then_some(p.eta_seconds),
            bytes_total: p.bytes_total,
            comparisons: p.comparisons,
            clusters: p.clusters,
            merged: p.merged,
            queued_for_review: p.queued_for_review,
        }
    }
}

impl From<pb::Job> for JobView {
    fn from(job: pb::Job) -> Self {
        JobView {
            kind: kind_name(job.kind),
            state: state_name(job.state),
            created_at: Time::from_proto(job.created_at.as_ref()),
            finished_at: Time::from_proto(job.finished_at.as_ref()),
            duration_secs: job_seconds(&job),
            progress: job.progress.unwrap_or_default().into(),
            id: job.id,
            subject: job.subject,
            dry_run: job.dry_run,
            created_by: job.created_by,
            error: job.error,
        }
    }
}

impl JobView {
    /// `succeeded`, or `succeeded (dry run)`: a dry run's counts are hypothetical.
    fn human_state(&self) -> String {
        if self.dry_run {
            format!("{} (dry run)", self.state)
        } else {
            self.state.clone()
        }
    }

    fn human_duration(&self) -> String {
        self.duration_secs.map(seconds).unwrap_or_default()
    }
}

impl View for JobView {
    const COLUMNS: &'static [&'static str] = &[
        "ID", "KIND", "STATE", "SUBJECT", "ROWS", "REJECTED", "BY", "STARTED", "DURATION",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.kind.clone(),
            self.human_state(),
            self.subject.clone(),
            count(self.progress.rows_read),
            count(self.progress.rejected),
            self.created_by.clone(),
            cell(self.created_at.as_ref()),
            self.human_duration(),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let p = &self.progress;
        let mut fields = vec![
            ("job", self.id.clone()),
            ("kind", self.kind.clone()),
            ("subject", self.subject.clone()),
            ("state", self.human_state()),
        ];
        if self.kind == CLEANSE {
            // A cleanse counts customers and the values it could not standardise.
            fields.extend([
                ("customers scanned", count(p.rows_read)),
                ("changed", count(p.updated)),
                ("unchanged", count(p.unchanged)),
                ("unfixable values", count(p.rejected)),
            ]);
        } else if self.kind == DEDUPE {
            fields.extend([
                ("customers read", count(p.rows_read)),
                ("pairs compared", count(p.comparisons)),
                ("clusters", count(p.clusters)),
                ("customers merged", count(p.merged)),
                ("queued for review", count(p.queued_for_review)),
                ("clusters skipped", count(p.rejected)),
            ]);
        } else {
            fields.extend([
                ("rows read", count(p.rows_read)),
                ("created", count(p.created)),
                ("updated", count(p.updated)),
                ("unchanged", count(p.unchanged)),
                ("rejected", count(p.rejected)),
                ("tags added", count(p.tags_added)),
            ]);
        }
        // Only some importers bring these; zeros would be noise for the rest.
        if p.purchases_added > 0 {
            fields.push(("purchases added", count(p.purchases_added)));
        }
        if p.interactions_added > 0 {
            fields.push(("interactions added", count(p.interactions_added)));
        }
        fields.extend([
            ("rate", rate(p.rows_per_second)),
            ("duration", self.human_duration()),
            ("started", cell(self.created_at.as_ref())),
            ("finished", cell(self.finished_at.as_ref())),
            ("started by", self.created_by.clone()),
        ]);
        if !self.error.is_empty() {
            fields.push(("error", self.error.clone()));
        }
        fields
    }
}

pub async fn run(
    command: JobsCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.jobs();
    match command {
        JobsCommand::List(paging) => {
            let jobs = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_jobs(pb::ListJobsRequest {
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.jobs, page.next_page_token))
                }
            })
            .await?;
            out.list(&jobs.into_iter().map(JobView::from).collect::<Vec<_>>())
        }
        JobsCommand::Get { job_id } => {
            let job = client
                .get_job(pb::GetJobRequest { job_id })
                .await?
                .into_inner();
            out.record(&JobView::from(job))
        }
        JobsCommand::Watch { job_id } => {
            let job = follow(connection, &job_id, out).await?;
            conclude(connection, job, out).await
        }
        JobsCommand::Cancel { job_id } => {
            let job = client
                .cancel_job(pb::CancelJobRequest { job_id })
                .await?
                .into_inner();
            let running = is_running(&job);
            let id = job.id.clone();
            out.record(&JobView::from(job))?;
            if running {
                // The job stops at its next checkpoint, not at once.
                out.note(&format!(
                    "cancellation requested; `tagctl jobs watch {id}` follows it to its end"
                ))?;
            }
            Ok(())
        }
    }
}

/// Watches a job with `WatchJob` until it finishes, drawing a progress bar on
/// stderr (hidden with `--json` or when stderr is not a terminal), and returns the
/// finished job. Ctrl-C stops watching, not the job.
pub async fn follow(
    connection: &Connection,
    job_id: &str,
    out: Output,
) -> Result<pb::Job, Failure> {
    let mut client = connection.jobs();
    let mut stream = client
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.to_owned(),
        })
        .await?
        .into_inner();
    let mut bar = Bar::new(out.is_json());
    let mut last = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // If no handler can be installed, Ctrl-C keeps its default effect (ending
    // tagctl) and watching simply goes on.
    let mut can_catch_ctrl_c = true;
    loop {
        tokio::select! {
            update = stream.message() => match update? {
                Some(job) => {
                    bar.update(&job);
                    last = Some(job);
                }
                None => break,
            },
            caught = &mut ctrl_c, if can_catch_ctrl_c => match caught {
                Ok(()) => {
                    drop(bar);
                    return Err(Failure::Interrupted(format!(
                        "stopped watching; job {job_id} keeps running on the server \
                         (`tagctl jobs watch {job_id}` to follow it again, \
                         `tagctl jobs cancel {job_id}` to stop it)"
                    )));
                }
                Err(_) => can_catch_ctrl_c = false,
            },
        }
    }
    drop(bar);
    // The stream ends after the job finishes; if it ended early (a server going
    // down), the job's current state says whether anything was missed.
    let job = match last {
        Some(job) if !is_running(&job) => job,
        _ => client
            .get_job(pb::GetJobRequest {
                job_id: job_id.to_owned(),
            })
            .await?
            .into_inner(),
    };
    if is_running(&job) {
        return Err(Failure::Unreachable(format!(
            "the server stopped reporting on job {job_id} before it finished; \
             `tagctl jobs watch {job_id}` resumes watching"
        )));
    }
    Ok(job)
}

/// Prints a finished job's summary (with an import's first rejected rows) and
/// turns its state into the exit status: success only when it succeeded.
pub async fn conclude(connection: &Connection, job: pb::Job, out: Output) -> Result<(), Failure> {
    let state = pb::JobState::try_from(job.state).unwrap_or_default();
    let kind = pb::JobKind::try_from(job.kind).unwrap_or_default();
    out.record(&JobView::from(job.clone()))?;
    // What else a summary shows depends on the kind of job.
    match kind {
        pb::JobKind::Import => imports::show_rejected(connection, &job, state, out).await?,
        pb::JobKind::Cleanse => cleanse::show_unfixable(connection, &job, out).await?,
        // A dedupe run's counts are its summary; `dedupe run` adds where the review queue is.
        pb::JobKind::Dedupe | pb::JobKind::Unspecified => {}
    }
    let id = &job.id;
    let reason = if job.error.is_empty() {
        String::new()
    } else {
        format!(": {}", job.error)
    };
    match state {
        pb::JobState::Succeeded => {
            if job.dry_run {
                out.note("dry run: nothing was written")?;
            }
            Ok(())
        }
        pb::JobState::Reverted => {
            out.note("this import was reverted afterwards: what it wrote has been undone")?;
            Ok(())
        }
        pb::JobState::Failed => Err(Failure::Job(format!("job {id} failed{reason}"))),
        pb::JobState::Cancelled => Err(Failure::Job(format!("job {id} was cancelled{reason}"))),
        pb::JobState::Running | pb::JobState::Unspecified => Err(Failure::Job(format!(
            "job {id} ended in an unknown state ({}){reason}",
            job.state
        ))),
    }
}

fn is_running(job: &pb::Job) -> bool {
    matches!(
        pb::JobState::try_from(job.state),
        Ok(pb::JobState::Running | pb::JobState::Unspecified)
    )
}

/// The progress bar on stderr; cleared when dropped, so an error or the summary
/// never lands on a half-drawn line.
struct Bar {
    bar: ProgressBar,
    /// Whether the bar currently has a length (an ETA) or only spins.
    sized: bool,
}

impl Bar {
    fn new(hidden: bool) -> Bar {
        // indicatif hides a stderr target by itself when stderr is not a terminal.
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(style(SPINNER));
        bar.set_message("waiting for the first progress report…");
        // The server reports only on change; the spinner shows tagctl is still alive.
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar { bar, sized: false }
    }

    fn update(&mut self, job: &pb::Job) {
        let p = job.progress.unwrap_or_default();
        // The server counts rows, not bytes: with an ETA, the rows still to come are
        // about rate × ETA, which sizes the bar.
        let total = (p.eta_seconds >= 0 && p.rows_per_second > 0.0)
            .then(|| p.rows_read + (p.rows_per_second * p.eta_seconds as f64).round() as u64);
        match total {
            Some(total) => {
                if !self.sized {
                    self.bar.set_style(style(SIZED));
                    self.sized = true;
                }
                self.bar.set_length(total.max(p.rows_read));
            }
            None => {
                if self.sized {
                    self.bar.set_style(style(SPINNER));
                    self.bar.unset_length();
                    self.sized = false;
                }
            }
        }
        self.bar.set_position(p.rows_read);
        self.bar.set_prefix(kind_name(job.kind));
        self.bar.set_message(progress_line(job, &p));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

// `wide_msg` truncates to the terminal's width: a wrapped line would be redrawn
// as two and scroll. The counts most worth seeing therefore come first.
const SPINNER: &str = "{spinner:.cyan} {prefix} {wide_msg}";
const SIZED: &str = "{spinner:.cyan} {prefix} [{bar:24.cyan/blue}] {percent:>3}% {wide_msg}";

fn style(template: &str) -> ProgressStyle {
    // The templates are constants checked by a test; the fallback is never used.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `1,234 rows · 456 rows/s · ETA 12s · created 10 · updated 2 · unchanged 0 · rejected 1 · 8s`;
/// a cleanse: `1,234 customers · … · changed 10 · unchanged 1,223 · unfixable 3 · 8s`.
fn progress_line(job: &pb::Job, p: &pb::JobProgress) -> String {
    let cleanse = job.kind == pb::JobKind::Cleanse as i32;
    let unit = if cleanse { "customers" } else { "rows" };
    let mut parts = vec![
        format!("{} {unit}", count(p.rows_read)),
        rate(p.rows_per_second),
    ];
    if p.eta_seconds >= 0 {
        parts.push(format!("ETA {}", seconds(p.eta_seconds as f64)));
    }
    let counters: &[(&str, u64)] = if cleanse {
        &[
            ("changed", p.updated),
            ("unchanged", p.unchanged),
            ("unfixable", p.rejected),
        ]
    } else {
        &[
            ("created", p.created),
            ("updated", p.updated),
            ("unchanged", p.unchanged),
            ("rejected", p.rejected),
        ]
    };
    for (name, value) in counters {
        parts.push(format!("{name} {}", count(*value)));
    }
    if let Some(elapsed) = job_seconds(job) {
        parts.push(seconds(elapsed.round()));
    }
    parts.join(" · ")
}

/// Seconds from the job's start to its end, or to now while it runs.
fn job_seconds(job: &pb::Job) -> Option<f64> {
    let start = job.created_at.as_ref()?;
    let end = job.finished_at.unwrap_or_else(|| {
        let now = chrono::Utc::now();
        prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }
    });
    let secs = (end.seconds - start.seconds) as f64 + f64::from(end.nanos - start.nanos) / 1e9;
    // A client clock behind the server's would give a negative time so far.
    Some((secs.max(0.0) * 1000.0).round() / 1000.0)
}

fn kind_name(kind: i32) -> String {
    pb::JobKind::try_from(kind).map_or_else(
        |_| format!("unknown({kind})"),
        |k| enum_name(k.as_str_name(), "JOB_KIND_"),
    )
}

fn state_name(state: i32) -> String {
    pb::JobState::try_from(state).map_or_else(
        |_| format!("unknown({state})"),
        |s| enum_name(s.as_str_name(), "JOB_STATE_"),
    )
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut groups = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

/// `4.5 rows/s` below ten, `1,234 rows/s` above.
fn rate(per_second: f64) -> String {
    if per_second < 10.0 {
        format!("{per_second:.1} rows/s")
    } else {
        format!("{} rows/s", count(per_second.round() as u64))
    }
}

/// `0.03s`, `2.4s`, `3s`, `42s`, `3m 05s`, `1h 02m`.
fn seconds(secs: f64) -> String {
    if secs < 10.0 {
        let digits = if secs < 1.0 { 2 } else { 1 };
        let text = format!("{secs:.digits$}");
        return format!("{}s", text.trim_end_matches('0').trim_end_matches('.'));
    }
    let whole = secs.round() as u64;
    match whole {
        0..60 => format!("{whole}s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!("{}h {:02}m", whole / 3600, whole % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        for template in [SPINNER, SIZED] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(0.0), "0s");
        assert_eq!(seconds(0.029), "0.03s");
        assert_eq!(seconds(2.998), "3s");
        assert_eq!(seconds(2.44), "2.4s");
        assert_eq!(seconds(42.0), "42s");
        assert_eq!(seconds(185.0), "3m 05s");
        assert_eq!(seconds(3720.0), "1h 02m");
        assert_eq!(rate(4.52), "4.5 rows/s");
        assert_eq!(rate(1234.4), "1,234 rows/s");
    }

    #[test]
    fn eta_is_shown_only_when_known() {
        let job = pb::Job::default();
        let mut p = pb::JobProgress {
            rows_read: 1500,
            rows_per_second: 300.0,
            eta_seconds: -1,
            rejected: 2,
            ..pb::JobProgress::default()
        };
        let line = progress_line(&job, &p);
        assert!(!line.contains("ETA"), "{line}");
        assert!(line.starts_with("1,500 rows · 300 rows/s"), "{line}");
        assert!(line.ends_with("unchanged 0 · rejected 2"), "{line}");
        p.eta_seconds = 12;
        assert!(progress_line(&job, &p).contains("ETA 12s"));
        let view = ProgressView::from(pb::JobProgress {
            eta_seconds: -1,
            ..p
        });
        assert_eq!(view.eta_seconds, None, "-1 means unknown");
    }

    #[test]
    fn a_dry_run_says_so() {
        let view = JobView::from(pb::Job {
            state: pb::JobState::Succeeded as i32,
            kind: pb::JobKind::Import as i32,
            dry_run: true,
            ..pb::Job::default()
        });
        assert_eq!(
            (view.kind.as_str(), view.state.as_str()),
            ("import", "succeeded")
        );
        assert_eq!(view.human_state(), "succeeded (dry run)");
    }
}
