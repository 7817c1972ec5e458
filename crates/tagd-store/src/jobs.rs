//! Jobs: the stored record of every long-running job (its state, progress and
//! error) and the rows an import rejected.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use tagd_core::ids::new_id;
use tagd_core::jobs::{Job, JobKind, JobProgress, JobState, RejectedRow};
use tagd_core::paging::{PageRequest, finish_page};

use crate::db::{BatchInsert, now, with_conn, write_transaction};
use crate::error::{StoreError, StoreResult};
use crate::schema::{job_rejected_rows, jobs};
use crate::tags::page_limit;
use crate::{Page, Store};

/// What the server says of jobs it finds running when it starts.
pub const INTERRUPTED: &str = "interrupted: the server stopped while the job was running; rows committed before stay, run it again to finish";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jobs, treat_none_as_default_value = false)]
pub(crate) struct JobRow {
    id: String,
    kind: String,
    state: String,
    created_by: String,
    subject: String,
    dry_run: bool,
    params: String,
    progress: String,
    error: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    finished_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = job_rejected_rows)]
pub(crate) struct RejectedRowRow {
    job_id: String,
    seq: i64,
    source_row: i64,
    field: String,
    reason: String,
    raw_value: String,
}

/// The progress counters as stored (JSON, so that kinds can add counters without a migration).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct StoredProgress {
    rows_read: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    rejected: u64,
    tags_added: u64,
    purchases_added: u64,
    interactions_added: u64,
    bytes_total: u64,
    bytes_read: u64,
    comparisons: u64,
    clusters: u64,
    merged: u64,
    queued_for_review: u64,
}

impl From<&JobProgress> for StoredProgress {
    fn from(p: &JobProgress) -> Self {
        Self {
            rows_read: p.rows_read,
            created: p.created,
            updated: p.updated,
            unchanged: p.unchanged,
            rejected: p.rejected,
            tags_added: p.tags_added,
            purchases_added: p.purchases_added,
            interactions_added: p.interactions_added,
            bytes_total: p.bytes_total,
            bytes_read: p.bytes_read,
            comparisons: p.comparisons,
            clusters: p.clusters,
            merged: p.merged,
            queued_for_review: p.queued_for_review,
        }
    }
}

impl From<StoredProgress> for JobProgress {
    fn from(p: StoredProgress) -> Self {
        Self {
            rows_read: p.rows_read,
            created: p.created,
            updated: p.updated,
            unchanged: p.unchanged,
            rejected: p.rejected,
            tags_added: p.tags_added,
            purchases_added: p.purchases_added,
            interactions_added: p.interactions_added,
            bytes_total: p.bytes_total,
            bytes_read: p.bytes_read,
            comparisons: p.comparisons,
            clusters: p.clusters,
            merged: p.merged,
            queued_for_review: p.queued_for_review,
        }
    }
}

fn progress_json(progress: &JobProgress) -> StoreResult<String> {
    serde_json::to_string(&StoredProgress::from(progress))
        .map_err(|e| StoreError::Corrupt(format!("job progress: {e}")))
}

impl JobRow {
    fn into_job(self) -> StoreResult<Job> {
        let corrupt = |e: String| StoreError::Corrupt(format!("job {}: {e}", self.id));
        let progress: StoredProgress =
            serde_json::from_str(&self.progress).map_err(|e| corrupt(e.to_string()))?;
        Ok(Job {
            kind: self.kind.parse().map_err(corrupt)?,
            state: self.state.parse().map_err(corrupt)?,
            id: self.id,
            created_by: self.created_by,
            subject: self.subject,
            dry_run: self.dry_run,
            progress: progress.into(),
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        })
    }
}

/// A job about to start.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub created_by: String,
    pub subject: String,
    pub dry_run: bool,
    /// The job's parameters as JSON, kept for the record (and for re-running it).
    pub params: String,
    pub bytes_total: u64,
}

impl Store {
    /// Records a job as running.
    pub async fn create_job(&self, new: NewJob) -> StoreResult<Job> {
        let at = now();
        let progress = JobProgress {
            bytes_total: new.bytes_total,
            ..JobProgress::default()
        };
        let row = JobRow {
            id: new_id(),
            kind: new.kind.as_str().to_owned(),
            state: JobState::Running.as_str().to_owned(),
            created_by: new.created_by,
            subject: new.subject,
            dry_run: new.dry_run,
            params: new.params,
            progress: progress_json(&progress)?,
            error: String::new(),
            created_at: at,
            updated_at: at,
            finished_at: None,
        };
        with_conn!(self, |conn| {
            diesel::insert_into(jobs::table)
                .values(&row)
                .execute(conn)
                .await?
        });
        row.into_job()
    }

    pub async fn get_job(&self, id: &str) -> StoreResult<Job> {
        let row: Option<JobRow> = with_conn!(self, |conn| {
            jobs::table
                .filter(jobs::id.eq(id))
                .select(JobRow::as_select())
                .get_result(conn)
                .await
                .optional()?
        });
        row.ok_or_else(|| StoreError::not_found("job", id).at("job_id"))?
            .into_job()
    }

    /// Jobs newest first (ids are time-ordered).
    pub async fn list_jobs(&self, page: &PageRequest) -> StoreResult<Page<Job>> {
        let mut rows: Vec<JobRow> = with_conn!(self, |conn| {
            let mut query = jobs::table
                .order(jobs::id.desc())
                .limit(page_limit(page))
                .select(JobRow::as_select())
                .into_boxed();
            if let Some(before) = &page.after {
                query = query.filter(jobs::id.lt(before.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows
                .into_iter()
                .map(JobRow::into_job)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    /// Saves a running job's progress.
    pub async fn save_job_progress(&self, id: &str, progress: &JobProgress) -> StoreResult<()> {
        let progress = progress_json(progress)?;
        with_conn!(self, |conn| {
            diesel::update(jobs::table.filter(jobs::id.eq(id)))
                .set((jobs::progress.eq(&progress), jobs::updated_at.eq(now())))
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// Marks a job finished with its final progress and, when it failed, why.
    pub async fn finish_job(
        &self,
        id: &str,
        state: JobState,
        progress: &JobProgress,
        error: &str,
    ) -> StoreResult<Job> {
        let progress = progress_json(progress)?;
        let at = now();
        with_conn!(self, |conn| {
            diesel::update(jobs::table.filter(jobs::id.eq(id)))
                .set((
                    jobs::state.eq(state.as_str()),
                    jobs::progress.eq(&progress),
                    jobs::error.eq(error),
                    jobs::updated_at.eq(at),
                    jobs::finished_at.eq(Some(at)),
                ))
                .execute(conn)
                .await?
        });
        self.get_job(id).await
    }

    /// Marks every job still recorded as running as failed: called at start-up,
    /// when no job of this server can be running. Returns how many there were.
    pub async fn fail_interrupted_jobs(&self) -> StoreResult<usize> {
        let at = now();
        let count = with_conn!(self, |conn| {
            diesel::update(jobs::table.filter(jobs::state.eq(JobState::Running.as_str())))
                .set((
                    jobs::state.eq(JobState::Failed.as_str()),
                    jobs::error.eq(INTERRUPTED),
                    jobs::updated_at.eq(at),
                    jobs::finished_at.eq(Some(at)),
                ))
                .execute(conn)
                .await?
        });
        Ok(count)
    }

    /// Appends rejected rows to a job's report; `first_seq` numbers the first of them.
    pub async fn add_rejected_rows(
        &self,
        job_id: &str,
        first_seq: u64,
        rows: &[RejectedRow],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows: Vec<RejectedRowRow> = rows
            .iter()
            .zip(first_seq..)
            .map(|(row, seq)| RejectedRowRow {
                job_id: job_id.to_owned(),
                seq: i64::try_from(seq).unwrap_or(i64::MAX),
                source_row: i64::try_from(row.row).unwrap_or(i64::MAX),
                field: row.field.chars().take(200).collect(),
                reason: row.reason.chars().take(1000).collect(),
                raw_value: row.raw_value.clone(),
            })
            .collect();
        write_transaction!(self, |conn| {
            conn.insert_rejected_rows(&rows).await?;
            Ok(())
        })
    }

    /// A job's rejected rows in source order.
    pub async fn rejected_rows(
        &self,
        job_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<RejectedRow>> {
        let after: Option<i64> = match &page.after {
            Some(token) => Some(token.parse().map_err(|_| {
                tagd_core::DomainError::invalid("page_token", "is not a token this service issued")
            })?),
            None => None,
        };
        self.get_job(job_id).await?;
        let mut rows: Vec<RejectedRowRow> = with_conn!(self, |conn| {
            let mut query = job_rejected_rows::table
                .filter(job_rejected_rows::job_id.eq(job_id))
                .order(job_rejected_rows::seq)
                .limit(page_limit(page))
                .select(RejectedRowRow::as_select())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(job_rejected_rows::seq.gt(after));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.seq.to_string());
        Ok(Page {
            items: rows
                .into_iter()
                .map(|row| RejectedRow {
                    row: u64::try_from(row.source_row).unwrap_or_default(),
                    field: row.field,
                    reason: row.reason,
                    raw_value: row.raw_value,
                })
                .collect(),
            next_page_token,
        })
    }
}
