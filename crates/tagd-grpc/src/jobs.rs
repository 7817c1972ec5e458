//! `JobService`: reading, watching and cancelling long-running jobs.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tagd_core::jobs::{Job, JobKind, JobState};
use tagd_core::paging::PageRequest;
use tagd_jobs::Jobs;
use tagd_proto::v1::job_service_server::JobService;
use tagd_proto::v1::{self as pb};
use tonic::{Request, Response, Status};

use crate::convert::{id, timestamp};
use crate::error::OrStatus;

pub(crate) struct JobsService {
    pub jobs: Arc<Jobs>,
}

pub(crate) fn job(job: Job) -> pb::Job {
    let rows_per_second = job.rows_per_second();
    let eta_seconds = job.eta_seconds().unwrap_or(-1);
    let progress = job.progress;
    pb::Job {
        id: job.id,
        kind: match job.kind {
            JobKind::Import => pb::JobKind::Import,
            JobKind::Dedupe => pb::JobKind::Dedupe,
            JobKind::Cleanse => pb::JobKind::Cleanse,
        }
        .into(),
        state: match job.state {
            JobState::Running => pb::JobState::Running,
            JobState::Succeeded => pb::JobState::Succeeded,
            JobState::Failed => pb::JobState::Failed,
            JobState::Cancelled => pb::JobState::Cancelled,
            JobState::Reverted => pb::JobState::Reverted,
        }
        .into(),
        created_by: job.created_by,
        created_at: Some(timestamp(job.created_at)),
        finished_at: job.finished_at.map(timestamp),
        progress: Some(pb::JobProgress {
            rows_read: progress.rows_read,
            created: progress.created,
            updated: progress.updated,
            unchanged: progress.unchanged,
            rejected: progress.rejected,
            tags_added: progress.tags_added,
            purchases_added: progress.purchases_added,
            interactions_added: progress.interactions_added,
            rows_per_second,
            eta_seconds,
            bytes_total: progress.bytes_total,
            comparisons: progress.comparisons,
            clusters: progress.clusters,
            merged: progress.merged,
            queued_for_review: progress.queued_for_review,
        }),
        error: job.error,
        dry_run: job.dry_run,
        subject: job.subject,
    }
}

type JobStream = Pin<Box<dyn Stream<Item = Result<pb::Job, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for JobsService {
    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let job_id = id("job_id", &request.get_ref().job_id)?;
        Ok(Response::new(job(self
            .jobs
            .get(&job_id)
            .await
            .or_status()?)))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self.jobs.list(&page).await.or_status()?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: page.items.into_iter().map(job).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    type WatchJobStream = JobStream;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let job_id = id("job_id", &request.get_ref().job_id)?;
        let mut updates = self.jobs.watch(&job_id).await.or_status()?;
        let stream = async_stream(move |sender| async move {
            loop {
                let current = updates.borrow_and_update().clone();
                let finished = current.state.is_finished();
                if sender.send(Ok(job(current))).await.is_err() || finished {
                    return;
                }
                // Closed with nothing new: the runner went away without a final state
                // (the server is stopping). GetJob tells what was stored.
                if updates.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let job_id = id("job_id", &request.get_ref().job_id)?;
        Ok(Response::new(job(self
            .jobs
            .cancel(&job_id)
            .await
            .or_status()?)))
    }
}

/// A stream fed by a task through a small channel: the task stops when the client goes away.
fn async_stream<F, Fut>(produce: F) -> JobStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::Job, Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(produce(sender));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}
