//! `TagService`: the tag catalogue.

use std::sync::Arc;

use tagd_core::paging::PageRequest;
use tagd_core::tag_stats;
use tagd_core::tags::{self as domain, MAX_DESCRIPTION_CHARS};
use tagd_core::text;
use tagd_proto::v1::tag_service_server::TagService;
use tagd_proto::v1::{self as pb};
use tagd_store::{CategoryPatch, NewCategory, NewTag, Store, TagPatch, TagStatsScope};
use tonic::{Request, Response, Status};

use crate::convert::{self, id, invalid, mask_paths, optional_id, required, unknown_path};
use crate::error::OrStatus;
use crate::middleware::actor;

pub(crate) struct Tags {
    pub store: Arc<Store>,
}

fn description(field: &str, raw: &str) -> Result<String, Status> {
    text::free_text(field, raw, MAX_DESCRIPTION_CHARS).or_status()
}

#[tonic::async_trait]
impl TagService for Tags {
    async fn create_category(
        &self,
        request: Request<pb::CreateCategoryRequest>,
    ) -> Result<Response<pb::Category>, Status> {
        let request = request.into_inner();
        let new = NewCategory {
            name: text::required_name("name", &request.name).or_status()?,
            description: description("description", &request.description)?,
            exclusive: request.exclusive,
        };
        let category = self.store.create_category(new).await.or_status()?;
        Ok(Response::new(convert::category(category)))
    }

    async fn list_categories(
        &self,
        request: Request<pb::ListCategoriesRequest>,
    ) -> Result<Response<pb::ListCategoriesResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self.store.list_categories(&page).await.or_status()?;
        Ok(Response::new(pb::ListCategoriesResponse {
            categories: page.items.into_iter().map(convert::category).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_category(
        &self,
        request: Request<pb::UpdateCategoryRequest>,
    ) -> Result<Response<pb::Category>, Status> {
        let request = request.into_inner();
        let category = required("category", request.category.as_ref())?;
        let category_id = id("category.id", &category.id)?;
        let mut patch = CategoryPatch::default();
        for path in mask_paths(request.update_mask.as_ref())? {
            match path.as_str() {
                "name" => {
                    patch.name =
                        Some(text::required_name("category.name", &category.name).or_status()?)
                }
                "description" => {
                    patch.description =
                        Some(description("category.description", &category.description)?)
                }
                "exclusive" => patch.exclusive = Some(category.exclusive),
                other => return Err(unknown_path(other, "name, description, exclusive")),
            }
        }
        let category = self
            .store
            .update_category(&category_id, patch)
            .await
            .or_status()?;
        Ok(Response::new(convert::category(category)))
    }

    async fn delete_category(
        &self,
        request: Request<pb::DeleteCategoryRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let category_id = id("id", &request.id)?;
        let outcome = self
            .store
            .delete_category(&category_id, request.force, &actor)
            .await
            .or_status()?;
        Ok(Response::new(pb::DeleteResponse {
            deleted_tags: outcome.deleted_tags,
            removed_assignments: outcome.removed_assignments,
        }))
    }

    async fn create_tag(
        &self,
        request: Request<pb::CreateTagRequest>,
    ) -> Result<Response<pb::Tag>, Status> {
        let request = request.into_inner();
        let tag = required("tag", request.tag.as_ref())?;
        let value_type = convert::value_type("tag.value_type", tag.value_type)?;
        let new = NewTag {
            category_id: id("tag.category_id", &tag.category_id)?,
            name: text::required_name("tag.name", &tag.name).or_status()?,
            description: description("tag.description", &tag.description)?,
            value_type,
            enum_values: domain::enum_values("tag.enum_values", value_type, &tag.enum_values)
                .or_status()?,
            default_validity_secs: convert::validity_secs(
                "tag.default_validity",
                tag.default_validity.as_ref(),
            )?,
        };
        let tag = self.store.create_tag(new).await.or_status()?;
        Ok(Response::new(convert::tag(tag)))
    }

    async fn get_tag(
        &self,
        request: Request<pb::GetTagRequest>,
    ) -> Result<Response<pb::Tag>, Status> {
        let tag_id = id("id", &request.get_ref().id)?;
        let tag = self.store.get_tag(&tag_id).await.or_status()?;
        Ok(Response::new(convert::tag(tag)))
    }

    async fn list_tags(
        &self,
        request: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let category_id = optional_id("category_id", &request.category_id)?;
        let page = self
            .store
            .list_tags(category_id.as_deref(), &page)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListTagsResponse {
            tags: page.items.into_iter().map(convert::tag).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_tag(
        &self,
        request: Request<pb::UpdateTagRequest>,
    ) -> Result<Response<pb::Tag>, Status> {
        let request = request.into_inner();
        let tag = required("tag", request.tag.as_ref())?;
        let tag_id = id("tag.id", &tag.id)?;
        let mut patch = TagPatch::default();
        for path in mask_paths(request.update_mask.as_ref())? {
            match path.as_str() {
                "name" => {
                    patch.name = Some(text::required_name("tag.name", &tag.name).or_status()?)
                }
                "description" => {
                    patch.description = Some(description("tag.description", &tag.description)?)
                }
                "value_type" => {
                    patch.value_type = Some(convert::value_type("tag.value_type", tag.value_type)?)
                }
                // Checked against the (possibly new) value type by the store.
                "enum_values" => {
                    patch.enum_values =
                        Some(tag.enum_values.iter().map(|v| text::normalize(v)).collect())
                }
                "default_validity" => {
                    patch.default_validity_secs = Some(convert::validity_secs(
                        "tag.default_validity",
                        tag.default_validity.as_ref(),
                    )?);
                }
                other => {
                    return Err(unknown_path(
                        other,
                        "name, description, value_type, enum_values, default_validity",
                    ));
                }
            }
        }
        let tag = self.store.update_tag(&tag_id, patch).await.or_status()?;
        Ok(Response::new(convert::tag(tag)))
    }

    async fn delete_tag(
        &self,
        request: Request<pb::DeleteTagRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let tag_id = id("id", &request.id)?;
        let outcome = self
            .store
            .delete_tag(&tag_id, request.force, &actor)
            .await
            .or_status()?;
        Ok(Response::new(pb::DeleteResponse {
            deleted_tags: outcome.deleted_tags,
            removed_assignments: outcome.removed_assignments,
        }))
    }

    async fn get_tag_stats(
        &self,
        request: Request<pb::GetTagStatsRequest>,
    ) -> Result<Response<pb::GetTagStatsResponse>, Status> {
        let request = request.into_inner();
        let scope = TagStatsScope {
            tag_id: optional_id("tag_id", &request.tag_id)?,
            category_id: optional_id("category_id", &request.category_id)?,
        };
        let limit = |field: &str, raw: u32, default: usize, max: usize| -> Result<usize, Status> {
            match usize::try_from(raw) {
                Ok(0) => Ok(default),
                Ok(n) if n <= max => Ok(n),
                _ => Err(invalid(field, &format!("{raw} is above the maximum {max}"))),
            }
        };
        let top_n = limit(
            "top_values",
            request.top_values,
            tag_stats::DEFAULT_TOP_VALUES,
            tag_stats::MAX_TOP_VALUES,
        )?;
        let buckets = limit(
            "histogram_buckets",
            request.histogram_buckets,
            tag_stats::DEFAULT_HISTOGRAM_BUCKETS,
            tag_stats::MAX_HISTOGRAM_BUCKETS,
        )?;
        if let Some(tag_id) = &scope.tag_id {
            // An unknown tag is an error, not an empty report.
            self.store.get_tag(tag_id).await.or_status()?;
        }
        let report = self
            .store
            .tag_stats(&scope, top_n, buckets)
            .await
            .or_status()?;
        let mut segments = Vec::new();
        if request.include_segments {
            let mut all = self.store.all_segments().await.or_status()?;
            all.sort_by(|a, b| a.name.cmp(&b.name));
            for segment in all {
                let sizes = self.store.segment_sizes(&segment.id).await.or_status()?;
                segments.push(pb::SegmentSizeHistory {
                    segment_id: segment.id,
                    segment_name: segment.name,
                    sizes: sizes
                        .into_iter()
                        .map(|(at, members)| pb::SegmentSizeAt {
                            measured_at: Some(convert::timestamp(at)),
                            members,
                        })
                        .collect(),
                });
            }
        }
        Ok(Response::new(pb::GetTagStatsResponse {
            segments,
            total_customers: report.total_customers,
            computed_at: Some(convert::timestamp(report.computed_at)),
            tags: report
                .tags
                .into_iter()
                .map(|stats| pb::TagStats {
                    tag: Some(convert::tag(stats.tag)),
                    category_name: stats.category_name,
                    customers: stats.customers,
                    coverage: stats.coverage,
                    distinct_values: stats.distinct_values,
                    top_values: stats
                        .top_values
                        .into_iter()
                        .map(|v| pb::ValueCount {
                            value: v.value,
                            customers: v.customers,
                        })
                        .collect(),
                    histogram: stats
                        .histogram
                        .into_iter()
                        .map(|b| pb::HistogramBucket {
                            lower: b.lower,
                            upper: b.upper,
                            customers: b.customers,
                        })
                        .collect(),
                    by_source: stats
                        .by_source
                        .into_iter()
                        .map(|(source, assignments)| pb::SourceCount {
                            source: source.as_str().to_owned(),
                            assignments,
                        })
                        .collect(),
                })
                .collect(),
        }))
    }
}
