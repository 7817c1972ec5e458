//! `tagctl segments …`: SegmentService — segments, their counts and members,
//! snapshots, the streamed CSV export and comparisons.

use std::io::{Read, Write};

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::{ConditionArgs, ExportFormatArg, SegmentsCommand};
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::{Output, Time, View, cell, enum_name};
use crate::paging::fetch_all;

#[derive(Debug, Serialize)]
pub struct SegmentView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub condition: String,
    pub create_time: Option<Time>,
    pub update_time: Option<Time>,
}

impl From<pb::Segment> for SegmentView {
    fn from(segment: pb::Segment) -> Self {
        SegmentView {
            kind: pb::SegmentKind::try_from(segment.kind).map_or_else(
                |_| format!("unknown({})", segment.kind),
                |kind| enum_name(kind.as_str_name(), "SEGMENT_KIND_"),
            ),
            create_time: Time::from_proto(segment.create_time.as_ref()),
            update_time: Time::from_proto(segment.update_time.as_ref()),
            id: segment.id,
            name: segment.name,
            description: segment.description,
            condition: segment.condition,
        }
    }
}

impl View for SegmentView {
    const COLUMNS: &'static [&'static str] = &["ID", "NAME", "KIND", "CONDITION", "UPDATED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.kind.clone(),
            self.condition.clone(),
            cell(self.update_time.as_ref()),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("description", self.description.clone()),
            ("kind", self.kind.clone()),
            ("condition", self.condition.clone()),
            ("created", cell(self.create_time.as_ref())),
            ("updated", cell(self.update_time.as_ref())),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct MemberView {
    pub customer_id: String,
}

impl View for MemberView {
    const COLUMNS: &'static [&'static str] = &["CUSTOMER ID"];

    fn cells(&self) -> Vec<String> {
        vec![self.customer_id.clone()]
    }
}

#[derive(Debug, Serialize)]
pub struct OverlapView {
    pub segment_ids: Vec<String>,
    pub count: u64,
}

impl View for OverlapView {
    const COLUMNS: &'static [&'static str] = &["SEGMENTS", "CUSTOMERS"];

    fn cells(&self) -> Vec<String> {
        vec![self.segment_ids.join(" ∩ "), self.count.to_string()]
    }
}

#[derive(Debug, Serialize)]
struct CountView {
    count: u64,
    from_index: bool,
    fallback_reason: String,
}

#[derive(Debug, Serialize)]
struct CompareView {
    sizes: Vec<OverlapView>,
    pairs: Vec<OverlapView>,
    all: OverlapView,
}

/// The condition of `--condition` or `--condition-file`, if either is given.
pub(crate) fn condition(args: ConditionArgs) -> Result<Option<pb::ConditionInput>, Failure> {
    let text = match (args.condition, args.condition_file) {
        (Some(text), _) => text,
        (None, Some(path)) => {
            let mut text = String::new();
            let read = if path.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)
            } else {
                std::fs::File::open(&path).and_then(|mut file| file.read_to_string(&mut text))
            };
            read.map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
            text
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(pb::ConditionInput {
        form: Some(pb::condition_input::Form::Text(text)),
    }))
}

pub(crate) fn required(input: Option<pb::ConditionInput>) -> Result<pb::ConditionInput, Failure> {
    input.ok_or_else(|| Failure::usage("give the condition with --condition or --condition-file"))
}

pub async fn run(
    command: SegmentsCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.segments();
    match command {
        SegmentsCommand::List { paging } => {
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_segments(pb::ListSegmentsRequest {
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.segments, page.next_page_token))
                }
            })
            .await?;
            let views: Vec<SegmentView> = rows.into_iter().map(SegmentView::from).collect();
            out.list(&views)
        }
        SegmentsCommand::Get { segment_id } => {
            let segment = client
                .get_segment(pb::GetSegmentRequest { segment_id })
                .await?
                .into_inner();
            out.record(&SegmentView::from(segment))
        }
        SegmentsCommand::Create {
            name,
            description,
            condition: args,
        } => {
            let segment = client
                .create_segment(pb::CreateSegmentRequest {
                    name,
                    description,
                    condition: Some(required(condition(args)?)?),
                })
                .await?
                .into_inner();
            out.record(&SegmentView::from(segment))
        }
        SegmentsCommand::Update {
            segment_id,
            name,
            description,
            condition: args,
        } => {
            let segment = client
                .update_segment(pb::UpdateSegmentRequest {
                    segment_id,
                    name,
                    description,
                    condition: condition(args)?,
                })
                .await?
                .into_inner();
            out.record(&SegmentView::from(segment))
        }
        SegmentsCommand::Delete { segment_id } => {
            client
                .delete_segment(pb::DeleteSegmentRequest {
                    segment_id: segment_id.clone(),
                })
                .await?;
            out.outcome(
                &serde_json::json!({ "deleted": segment_id }),
                &format!("deleted segment {segment_id}"),
            )
        }
        SegmentsCommand::Count {
            segment_id,
            condition: args,
        } => {
            let answer = match (segment_id, condition(args)?) {
                (Some(segment_id), None) => client
                    .count_segment(pb::CountSegmentRequest { segment_id })
                    .await?
                    .into_inner(),
                (None, Some(condition)) => client
                    .count_condition(pb::CountConditionRequest {
                        condition: Some(condition),
                    })
                    .await?
                    .into_inner(),
                _ => {
                    return Err(Failure::usage(
                        "give a segment id or a condition (--condition / --condition-file), not both",
                    ));
                }
            };
            let how = if answer.from_index {
                String::new()
            } else if answer.fallback_reason.is_empty() {
                " (stored members)".to_owned()
            } else {
                format!(
                    " (evaluated customer by customer: {})",
                    answer.fallback_reason
                )
            };
            out.outcome(
                &CountView {
                    count: answer.count,
                    from_index: answer.from_index,
                    fallback_reason: answer.fallback_reason.clone(),
                },
                &format!("{} customers{how}", answer.count),
            )
        }
        SegmentsCommand::Members {
            segment_id,
            paging: _,
            all: true,
        } => {
            let mut stream = client
                .stream_segment_members(pb::StreamSegmentMembersRequest {
                    segment_id,
                    chunk_size: 0,
                    packed: false,
                })
                .await?
                .into_inner();
            let mut views = Vec::new();
            while let Some(chunk) = stream.message().await? {
                views.extend(
                    chunk
                        .customer_ids
                        .into_iter()
                        .map(|customer_id| MemberView { customer_id }),
                );
            }
            out.list(&views)
        }
        SegmentsCommand::Members {
            segment_id,
            paging,
            all: false,
        } => {
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let segment_id = segment_id.clone();
                async move {
                    let page = client
                        .list_segment_members(pb::ListSegmentMembersRequest {
                            segment_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.customer_ids, page.next_page_token))
                }
            })
            .await?;
            let views: Vec<MemberView> = rows
                .into_iter()
                .map(|customer_id| MemberView { customer_id })
                .collect();
            out.list(&views)
        }
        SegmentsCommand::Snapshot {
            segment_id,
            name,
            description,
        } => {
            let segment = client
                .snapshot_segment(pb::SnapshotSegmentRequest {
                    segment_id,
                    name: name.unwrap_or_default(),
                    description,
                })
                .await?
                .into_inner();
            out.record(&SegmentView::from(segment))
        }
        SegmentsCommand::Export {
            segment_id,
            columns,
            chinese,
            format,
            output,
        } => {
            let mut stream = client
                .export_segment(pb::ExportSegmentRequest {
                    segment_id,
                    columns: columns
                        .into_iter()
                        .map(|column| column.to_proto() as i32)
                        .collect(),
                    chinese_headers: chinese,
                    format: match format {
                        ExportFormatArg::Csv => pb::ExportFormat::Csv,
                        ExportFormatArg::Xlsx => pb::ExportFormat::Xlsx,
                    } as i32,
                })
                .await?
                .into_inner();
            let mut sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|e| {
                        Failure::usage(format!("cannot create {}: {e}", path.display()))
                    })?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut bytes = 0usize;
            while let Some(chunk) = stream.message().await? {
                bytes += chunk.data.len();
                sink.write_all(&chunk.data)
                    .map_err(|e| Failure::usage(format!("cannot write the export: {e}")))?;
            }
            sink.flush()
                .map_err(|e| Failure::usage(format!("cannot write the export: {e}")))?;
            drop(sink);
            match output {
                Some(path) => out.outcome(
                    &serde_json::json!({ "file": path.display().to_string(), "bytes": bytes }),
                    &format!("wrote {bytes} bytes to {}", path.display()),
                ),
                None => Ok(()),
            }
        }
        SegmentsCommand::Compare { segment_ids } => {
            let answer = client
                .compare_segments(pb::CompareSegmentsRequest { segment_ids })
                .await?
                .into_inner();
            let view = CompareView {
                sizes: answer
                    .sizes
                    .into_iter()
                    .map(|size| OverlapView {
                        segment_ids: vec![size.segment_id],
                        count: size.count,
                    })
                    .collect(),
                pairs: answer
                    .pairs
                    .into_iter()
                    .map(|pair| OverlapView {
                        segment_ids: pair.segment_ids,
                        count: pair.count,
                    })
                    .collect(),
                all: answer.all.map_or(
                    OverlapView {
                        segment_ids: Vec::new(),
                        count: 0,
                    },
                    |all| OverlapView {
                        segment_ids: all.segment_ids,
                        count: all.count,
                    },
                ),
            };
            if out.is_json() {
                return out.outcome(&view, "");
            }
            let mut rows = view.sizes;
            rows.extend(view.pairs);
            rows.push(view.all);
            out.list(&rows)
        }
        SegmentsCommand::Validate { condition: args } => {
            let answer = client
                .validate_condition(pb::ValidateConditionRequest {
                    condition: Some(required(condition(args)?)?),
                })
                .await?
                .into_inner();
            out.outcome(
                &serde_json::json!({ "valid": true, "condition": answer.condition }),
                &format!("valid: {}", answer.condition),
            )
        }
    }
}
