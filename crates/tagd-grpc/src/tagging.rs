//! `TaggingService`: assigning tags and reading their history.

use std::sync::Arc;

use tagd_core::paging::PageRequest;
use tagd_core::tagging::{
    AssignOutcome, Assignment, MAX_ASSIGNMENTS_PER_CALL, MAX_BATCH_ASSIGNMENTS,
    MAX_SOURCE_REF_CHARS,
};
use tagd_core::text;
use tagd_proto::v1::tagging_service_server::TaggingService;
use tagd_proto::v1::{self as pb};
use tagd_store::{AssignCall, AssignQueue, Store};
use tonic::{Request, Response, Status};

use crate::convert::{self, id, invalid};
use crate::error::OrStatus;
use crate::middleware::actor;

pub(crate) struct Tagging {
    pub store: Arc<Store>,
    /// Single-customer calls go through the write combiner; batches go straight to the store.
    pub assign_queue: AssignQueue,
}

fn assignments(prefix: &str, raw: &[pb::TagAssignment]) -> Result<Vec<Assignment>, Status> {
    raw.iter()
        .enumerate()
        .map(|(index, assignment)| {
            let field = format!("{prefix}assignments[{index}]");
            Ok(Assignment {
                tag_id: id(&format!("{field}.tag_id"), &assignment.tag_id)?,
                value: assignment.value.clone(),
                source: convert::source_from_proto(&format!("{field}.source"), assignment.source)?,
                source_ref: text::optional(
                    &format!("{field}.source_ref"),
                    &assignment.source_ref,
                    MAX_SOURCE_REF_CHARS,
                )
                .or_status()?,
                expires_at: convert::from_timestamp(
                    &format!("{field}.expires_at"),
                    assignment.expires_at.as_ref(),
                )?,
            })
        })
        .collect()
}

fn outcome(outcome: AssignOutcome) -> pb::AssignTagsResponse {
    pb::AssignTagsResponse {
        assigned: outcome.assigned,
        changed: outcome.changed,
        unchanged: outcome.unchanged,
        replaced: outcome.replaced,
    }
}

#[tonic::async_trait]
impl TaggingService for Tagging {
    async fn assign_tags(
        &self,
        request: Request<pb::AssignTagsRequest>,
    ) -> Result<Response<pb::AssignTagsResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let customer_id = id("customer_id", &request.customer_id)?;
        if request.assignments.is_empty() {
            return Err(invalid("assignments", "must not be empty"));
        }
        if request.assignments.len() > MAX_ASSIGNMENTS_PER_CALL {
            return Err(invalid(
                "assignments",
                &format!(
                    "has {}; the limit is {MAX_ASSIGNMENTS_PER_CALL} (use BatchAssignTags)",
                    request.assignments.len()
                ),
            ));
        }
        let call = AssignCall {
            customer_id,
            assignments: assignments("", &request.assignments)?,
            actor,
        };
        let result = self.assign_queue.assign(call).await.or_status()?;
        Ok(Response::new(outcome(result)))
    }

    async fn remove_tags(
        &self,
        request: Request<pb::RemoveTagsRequest>,
    ) -> Result<Response<pb::RemoveTagsResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let customer_id = id("customer_id", &request.customer_id)?;
        if request.tag_ids.is_empty() {
            return Err(invalid("tag_ids", "must not be empty"));
        }
        let tag_ids = request
            .tag_ids
            .iter()
            .enumerate()
            .map(|(index, tag_id)| id(&format!("tag_ids[{index}]"), tag_id))
            .collect::<Result<Vec<_>, _>>()?;
        let removed = self
            .store
            .remove_tags(&customer_id, &tag_ids, &actor)
            .await
            .or_status()?;
        Ok(Response::new(pb::RemoveTagsResponse { removed }))
    }

    async fn list_customer_tags(
        &self,
        request: Request<pb::ListCustomerTagsRequest>,
    ) -> Result<Response<pb::ListCustomerTagsResponse>, Status> {
        let customer_id = id("customer_id", &request.get_ref().customer_id)?;
        let tags = self
            .store
            .list_customer_tags(&customer_id)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListCustomerTagsResponse {
            tags: tags.into_iter().map(convert::customer_tag).collect(),
        }))
    }

    async fn batch_assign_tags(
        &self,
        request: Request<pb::BatchAssignTagsRequest>,
    ) -> Result<Response<pb::AssignTagsResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        if request.entries.is_empty() {
            return Err(invalid("entries", "must not be empty"));
        }
        let total: usize = request
            .entries
            .iter()
            .map(|entry| entry.assignments.len())
            .sum();
        if total > MAX_BATCH_ASSIGNMENTS {
            return Err(invalid(
                "entries",
                &format!("carry {total} assignments; the limit is {MAX_BATCH_ASSIGNMENTS}"),
            ));
        }
        let mut requests = Vec::with_capacity(request.entries.len());
        for (index, entry) in request.entries.iter().enumerate() {
            let prefix = format!("entries[{index}].");
            if entry.assignments.is_empty() {
                return Err(invalid(
                    &format!("{prefix}assignments"),
                    "must not be empty",
                ));
            }
            let customer_id = id(&format!("{prefix}customer_id"), &entry.customer_id)?;
            requests.push((customer_id, assignments(&prefix, &entry.assignments)?));
        }
        let result = self
            .store
            .assign_tags(&requests, &actor, &|index| format!("entries[{index}]."))
            .await
            .or_status()?;
        Ok(Response::new(outcome(result)))
    }

    async fn get_tag_history(
        &self,
        request: Request<pb::GetTagHistoryRequest>,
    ) -> Result<Response<pb::GetTagHistoryResponse>, Status> {
        let request = request.into_inner();
        let customer_id = id("customer_id", &request.customer_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self
            .store
            .tag_history(&customer_id, &page)
            .await
            .or_status()?;
        Ok(Response::new(pb::GetTagHistoryResponse {
            entries: page.items.into_iter().map(convert::history_entry).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
