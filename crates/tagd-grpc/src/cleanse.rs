//! `CleanseService`: starting cleanse jobs and reading their reports.

use std::sync::Arc;

use tagd_core::paging::PageRequest;
use tagd_jobs::{CleanseRequest, Jobs};
use tagd_proto::v1::cleanse_service_server::CleanseService;
use tagd_proto::v1::{self as pb};
use tonic::{Request, Response, Status};

use crate::convert::id;
use crate::error::OrStatus;
use crate::jobs::job;
use crate::middleware::actor;

pub(crate) struct Cleanse {
    pub jobs: Arc<Jobs>,
}

#[tonic::async_trait]
impl CleanseService for Cleanse {
    async fn start_cleanse(
        &self,
        request: Request<pb::StartCleanseRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let started = self
            .jobs
            .start_cleanse(
                CleanseRequest {
                    dry_run: request.dry_run,
                    fold_gmail: request.fold_gmail,
                    lowercase_email_local_part: request.lowercase_email_local_part,
                    fields: request.fields,
                },
                &actor,
            )
            .await
            .or_status()?;
        Ok(Response::new(job(started)))
    }

    async fn get_cleanse_report(
        &self,
        request: Request<pb::GetCleanseReportRequest>,
    ) -> Result<Response<pb::GetCleanseReportResponse>, Status> {
        let request = request.into_inner();
        let job_id = id("job_id", &request.job_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let report = self.jobs.cleanse_report(&job_id, &page).await.or_status()?;
        Ok(Response::new(pb::GetCleanseReportResponse {
            job: Some(job(report.job)),
            fields: report
                .fields
                .into_iter()
                .map(|count| pb::CleanseFieldCount {
                    field: count.field.path().to_owned(),
                    changed: count.changed,
                    duplicates_removed: count.duplicates_removed,
                    unfixable: count.unfixable,
                })
                .collect(),
            unfixable: report
                .unfixable
                .items
                .into_iter()
                .map(|value| pb::UnfixableValue {
                    customer_id: value.customer_id,
                    field: value.field.path().to_owned(),
                    value: value.value,
                    reason: value.reason,
                })
                .collect(),
            next_page_token: report.unfixable.next_page_token,
        }))
    }
}
