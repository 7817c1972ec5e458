//! `ImportService`: listing importer plugins, starting imports, and their reports.

use std::sync::Arc;

use tagd_core::paging::PageRequest;
use tagd_jobs::{ExistingCustomers, ImportRequest, Jobs};
use tagd_proto::v1::import_service_server::ImportService;
use tagd_proto::v1::{self as pb};
use tonic::{Request, Response, Status};

use crate::convert::{id, invalid};
use crate::error::OrStatus;
use crate::jobs::job;
use crate::middleware::actor;

pub(crate) struct Imports {
    pub jobs: Arc<Jobs>,
}

fn import_request(request: pb::StartImportRequest) -> Result<ImportRequest, Status> {
    if request.importer.trim().is_empty() {
        return Err(invalid("importer", "must not be empty"));
    }
    let existing = match pb::ExistingCustomers::try_from(request.existing) {
        Ok(pb::ExistingCustomers::Unspecified | pb::ExistingCustomers::Update) => {
            ExistingCustomers::Update
        }
        Ok(pb::ExistingCustomers::Skip) => ExistingCustomers::Skip,
        Err(_) => {
            return Err(invalid(
                "existing",
                &format!("unknown value {}", request.existing),
            ));
        }
    };
    let link = request.link_duplicates_at;
    if !(0.0..=1.0).contains(&link) {
        return Err(invalid(
            "link_duplicates_at",
            &format!("{link} is outside 0..=1 (0 never links)"),
        ));
    }
    Ok(ImportRequest {
        link_duplicates_at: (link > 0.0).then_some(link),
        importer: request.importer,
        source_path: request.source_path,
        options: request.options.into_iter().collect(),
        dry_run: request.dry_run,
        existing,
        create_missing_tags: request.create_missing_tags,
    })
}

#[tonic::async_trait]
impl ImportService for Imports {
    async fn list_importers(
        &self,
        _request: Request<pb::ListImportersRequest>,
    ) -> Result<Response<pb::ListImportersResponse>, Status> {
        let importers = self
            .jobs
            .importers()
            .await
            .into_iter()
            .map(|importer| pb::Importer {
                name: importer.name,
                version: importer.version,
                abi_version: importer.abi_version,
                channel: importer.channel,
                file_types: importer.file_types,
                options: importer
                    .options
                    .into_iter()
                    .map(|option| pb::ImporterOption {
                        name: option.name,
                        description: option.description,
                        default_value: option.default_value,
                        required: option.required,
                    })
                    .collect(),
                description: importer.description,
                path: importer.path.display().to_string(),
                error: importer.error,
            })
            .collect();
        Ok(Response::new(pb::ListImportersResponse { importers }))
    }

    async fn start_import(
        &self,
        request: Request<pb::StartImportRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let actor = actor(&request);
        let started = self
            .jobs
            .start_import(import_request(request.into_inner())?, &actor)
            .await
            .or_status()?;
        Ok(Response::new(job(started)))
    }

    async fn upload_import(
        &self,
        request: Request<tonic::Streaming<pb::UploadImportRequest>>,
    ) -> Result<Response<pb::Job>, Status> {
        let actor = actor(&request);
        let mut parts = request.into_inner();
        let start = match parts.message().await?.and_then(|first| first.part) {
            Some(pb::upload_import_request::Part::Start(start)) => start,
            _ => return Err(invalid("start", "the first message must carry the request")),
        };
        let import = import_request(start.request.unwrap_or_default())?;
        let mut upload = self.jobs.begin_upload(&start.file_name).await.or_status()?;
        while let Some(message) = parts.message().await? {
            match message.part {
                Some(pb::upload_import_request::Part::Chunk(bytes)) => {
                    upload.write(&bytes).await.or_status()?;
                }
                _ => {
                    return Err(invalid(
                        "start",
                        "only the first message may carry the request",
                    ));
                }
            }
        }
        let started = self
            .jobs
            .start_uploaded_import(import, upload, &actor)
            .await
            .or_status()?;
        Ok(Response::new(job(started)))
    }

    async fn revert_import(
        &self,
        request: Request<pb::RevertImportRequest>,
    ) -> Result<Response<pb::RevertImportResponse>, Status> {
        let actor = actor(&request);
        let job_id = id("job_id", &request.get_ref().job_id)?;
        let (reverted, outcome) = self.jobs.revert_import(&job_id, &actor).await.or_status()?;
        Ok(Response::new(pb::RevertImportResponse {
            job: Some(job(reverted)),
            customers_deleted: outcome.customers_deleted,
            customers_restored: outcome.customers_restored,
            tags_removed: outcome.tags_removed,
            tags_restored: outcome.tags_restored,
            purchases_removed: outcome.purchases_removed,
            interactions_removed: outcome.interactions_removed,
        }))
    }

    async fn get_import_report(
        &self,
        request: Request<pb::GetImportReportRequest>,
    ) -> Result<Response<pb::GetImportReportResponse>, Status> {
        let request = request.into_inner();
        let job_id = id("job_id", &request.job_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self.jobs.import_report(&job_id, &page).await.or_status()?;
        Ok(Response::new(pb::GetImportReportResponse {
            rows: page
                .items
                .into_iter()
                .map(|row| pb::RejectedRow {
                    row: row.row,
                    field: row.field,
                    reason: row.reason,
                    raw_value: row.raw_value,
                })
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
