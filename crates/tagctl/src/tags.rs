//! `tagctl tags …`: the typed tags of TagService.

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::categories::mask;
use crate::cli::TagsCommand;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::{Output, Time, View, cell, duration, enum_name};
use crate::paging::fetch_all;

#[derive(Debug, Serialize)]
pub struct TagView {
    pub id: String,
    pub category_id: String,
    pub name: String,
    pub description: String,
    pub value_type: String,
    pub enum_values: Vec<String>,
    /// Seconds; absent when assignments do not expire by default.
    pub default_validity_secs: Option<i64>,
    pub create_time: Option<Time>,
    pub update_time: Option<Time>,
}

impl From<pb::Tag> for TagView {
    fn from(tag: pb::Tag) -> Self {
        TagView {
            value_type: value_type_name(tag.value_type),
            default_validity_secs: tag.default_validity.map(|d| d.seconds),
            create_time: Time::from_proto(tag.create_time.as_ref()),
            update_time: Time::from_proto(tag.update_time.as_ref()),
            id: tag.id,
            category_id: tag.category_id,
            name: tag.name,
            description: tag.description,
            enum_values: tag.enum_values,
        }
    }
}

impl TagView {
    fn validity(&self) -> String {
        self.default_validity_secs.map(duration).unwrap_or_default()
    }
}

impl View for TagView {
    const COLUMNS: &'static [&'static str] = &[
        "ID",
        "CATEGORY ID",
        "NAME",
        "TYPE",
        "VALUES",
        "VALIDITY",
        "DESCRIPTION",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.category_id.clone(),
            self.name.clone(),
            self.value_type.clone(),
            self.enum_values.join(", "),
            self.validity(),
            self.description.clone(),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("category id", self.category_id.clone()),
            ("name", self.name.clone()),
            ("type", self.value_type.clone()),
            ("enum values", self.enum_values.join("\n")),
            ("default validity", self.validity()),
            ("description", self.description.clone()),
            ("created", cell(self.create_time.as_ref())),
            ("updated", cell(self.update_time.as_ref())),
        ]
    }
}

fn value_type_name(value: i32) -> String {
    pb::ValueType::try_from(value).map_or_else(
        |_| format!("unknown({value})"),
        |t| enum_name(t.as_str_name(), "VALUE_TYPE_"),
    )
}

#[derive(Debug, Serialize)]
struct Deleted {
    id: String,
    deleted_tags: u64,
    removed_assignments: u64,
}

pub async fn run(
    command: TagsCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.tags();
    match command {
        TagsCommand::Stats {
            category,
            tag,
            top,
            buckets,
            segments,
        } => {
            let report = client
                .get_tag_stats(pb::GetTagStatsRequest {
                    tag_id: tag.unwrap_or_default(),
                    category_id: category.unwrap_or_default(),
                    top_values: top.unwrap_or(0),
                    histogram_buckets: buckets.unwrap_or(0),
                    include_segments: segments,
                })
                .await?
                .into_inner();
            let total = report.total_customers;
            let rows: Vec<TagStatsView> = report.tags.into_iter().map(TagStatsView::from).collect();
            out.list(&rows)?;
            if segments {
                let sizes: Vec<SegmentSizesView> = report
                    .segments
                    .into_iter()
                    .map(SegmentSizesView::from)
                    .collect();
                out.list(&sizes)?;
            }
            out.note(&format!("{total} customers in all"))
        }
        TagsCommand::List { category, paging } => {
            let category_id = category.unwrap_or_default();
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let category_id = category_id.clone();
                async move {
                    let page = client
                        .list_tags(pb::ListTagsRequest {
                            category_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.tags, page.next_page_token))
                }
            })
            .await?;
            out.list(&rows.into_iter().map(TagView::from).collect::<Vec<_>>())
        }
        TagsCommand::Get { id } => {
            let tag = client.get_tag(pb::GetTagRequest { id }).await?.into_inner();
            out.record(&TagView::from(tag))
        }
        TagsCommand::Create {
            category,
            name,
            value_type,
            enum_values,
            validity,
            description,
        } => {
            let tag = pb::Tag {
                category_id: category,
                name,
                description,
                value_type: pb::ValueType::from(value_type).into(),
                enum_values,
                default_validity: validity,
                ..pb::Tag::default()
            };
            let tag = client
                .create_tag(pb::CreateTagRequest { tag: Some(tag) })
                .await?
                .into_inner();
            out.record(&TagView::from(tag))
        }
        TagsCommand::Update {
            id,
            name,
            description,
            value_type,
            enum_values,
            validity,
            no_validity,
        } => {
            let mut paths = Vec::new();
            for (given, path) in [
                (name.is_some(), "name"),
                (description.is_some(), "description"),
                (value_type.is_some(), "value_type"),
                (!enum_values.is_empty(), "enum_values"),
                (validity.is_some() || no_validity, "default_validity"),
            ] {
                if given {
                    paths.push(path);
                }
            }
            if paths.is_empty() {
                return Err(Failure::usage(
                    "nothing to update: give --name, --description, --type, --enum-value, --validity or --no-validity",
                ));
            }
            let tag = pb::Tag {
                id,
                name: name.unwrap_or_default(),
                description: description.unwrap_or_default(),
                value_type: value_type.map_or(0, |t| pb::ValueType::from(t).into()),
                enum_values,
                default_validity: validity,
                ..pb::Tag::default()
            };
            let tag = client
                .update_tag(pb::UpdateTagRequest {
                    tag: Some(tag),
                    update_mask: Some(mask(&paths)),
                })
                .await?
                .into_inner();
            out.record(&TagView::from(tag))
        }
        TagsCommand::Delete { id, force } => {
            let deleted = client
                .delete_tag(pb::DeleteTagRequest {
                    id: id.clone(),
                    force,
                })
                .await?
                .into_inner();
            let sentence = format!(
                "deleted tag {id} ({} assignments removed)",
                deleted.removed_assignments
            );
            out.outcome(
                &Deleted {
                    id,
                    deleted_tags: deleted.deleted_tags,
                    removed_assignments: deleted.removed_assignments,
                },
                &sentence,
            )
        }
    }
}

/// One tag's statistics, as `tags stats` shows them.
#[derive(Debug, Serialize)]
pub struct TagStatsView {
    pub tag_id: String,
    pub category: String,
    pub tag: String,
    pub customers: u64,
    pub coverage: f64,
    pub distinct_values: u64,
    pub top_values: Vec<(String, u64)>,
    pub histogram: Vec<(f64, f64, u64)>,
    pub by_source: Vec<(String, u64)>,
}

impl From<pb::TagStats> for TagStatsView {
    fn from(stats: pb::TagStats) -> Self {
        let tag = stats.tag.unwrap_or_default();
        TagStatsView {
            tag_id: tag.id,
            category: stats.category_name,
            tag: tag.name,
            customers: stats.customers,
            coverage: stats.coverage,
            distinct_values: stats.distinct_values,
            top_values: stats
                .top_values
                .into_iter()
                .map(|v| (v.value, v.customers))
                .collect(),
            histogram: stats
                .histogram
                .into_iter()
                .map(|b| (b.lower, b.upper, b.customers))
                .collect(),
            by_source: stats
                .by_source
                .into_iter()
                .map(|s| (s.source, s.assignments))
                .collect(),
        }
    }
}

impl View for TagStatsView {
    const COLUMNS: &'static [&'static str] = &[
        "CATEGORY",
        "TAG",
        "CUSTOMERS",
        "COVERAGE",
        "VALUES",
        "BY SOURCE",
    ];

    fn cells(&self) -> Vec<String> {
        let values = if self.histogram.is_empty() {
            self.top_values
                .iter()
                .map(|(value, n)| format!("{value}: {n}"))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            self.histogram
                .iter()
                .map(|(lower, upper, n)| format!("{lower}–{upper}: {n}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        vec![
            self.category.clone(),
            self.tag.clone(),
            self.customers.to_string(),
            format!("{:.1} %", self.coverage * 100.0),
            values,
            self.by_source
                .iter()
                .map(|(source, n)| format!("{source}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        ]
    }
}

/// A segment's recorded sizes, as `tags stats --segments` shows them.
#[derive(Debug, Serialize)]
pub struct SegmentSizesView {
    pub segment_id: String,
    pub segment: String,
    /// (when, members), oldest first.
    pub sizes: Vec<(Option<Time>, u64)>,
}

impl From<pb::SegmentSizeHistory> for SegmentSizesView {
    fn from(history: pb::SegmentSizeHistory) -> Self {
        SegmentSizesView {
            segment_id: history.segment_id,
            segment: history.segment_name,
            sizes: history
                .sizes
                .into_iter()
                .map(|size| (Time::from_proto(size.measured_at.as_ref()), size.members))
                .collect(),
        }
    }
}

impl View for SegmentSizesView {
    const COLUMNS: &'static [&'static str] = &["SEGMENT", "SIZE OVER TIME"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.segment.clone(),
            self.sizes
                .iter()
                .map(|(at, members)| format!("{}: {members}", cell(at.as_ref())))
                .collect::<Vec<_>>()
                .join("\n"),
        ]
    }
}
