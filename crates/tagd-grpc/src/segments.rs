//! `SegmentService`: segments and who is in them, answered by
//! `tagd-segments` (the in-memory index, or the reference path for what it
//! does not hold).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tagd_core::paging::{PageRequest, encode_token};
use tagd_core::segments::{ExportColumn, Segment, SegmentKind, member_chunk_size};
use tagd_proto::v1::segment_service_server::SegmentService;
use tagd_proto::v1::{self as pb};
use tagd_segments::{Count, MAX_XLSX_MEMBERS, Members, Segments, XlsxExport, csv_header};
use tonic::{Request, Response, Status};

use crate::condition::{from_input, to_tree};
use crate::convert::{self, id, invalid};
use crate::error::{OrStatus, segment_status};

/// Members exported per chunk: one read of customers and one of tags each.
const EXPORT_ROWS_PER_CHUNK: usize = 500;

pub(crate) struct SegmentsService {
    pub segments: Arc<Segments>,
}

fn segment(segment: Segment) -> pb::Segment {
    let tree = tagd_condition::parse(&segment.condition)
        .ok()
        .map(|condition| to_tree(&condition));
    pb::Segment {
        id: segment.id,
        name: segment.name,
        description: segment.description,
        kind: match segment.kind {
            SegmentKind::Dynamic => pb::SegmentKind::Dynamic,
            SegmentKind::Static => pb::SegmentKind::Static,
        }
        .into(),
        condition: segment.condition,
        condition_tree: tree,
        create_time: Some(convert::timestamp(segment.created_at)),
        update_time: Some(convert::timestamp(segment.updated_at)),
    }
}

fn count(count: Count) -> pb::CountResponse {
    pb::CountResponse {
        count: count.count,
        from_index: count.from_index,
        fallback_reason: count.fallback_reason,
    }
}

fn export_column(field: &str, raw: i32) -> Result<ExportColumn, Status> {
    Ok(match pb::ExportColumn::try_from(raw) {
        Ok(pb::ExportColumn::Id) => ExportColumn::Id,
        Ok(pb::ExportColumn::Name) => ExportColumn::Name,
        Ok(pb::ExportColumn::Gender) => ExportColumn::Gender,
        Ok(pb::ExportColumn::Birthday) => ExportColumn::Birthday,
        Ok(pb::ExportColumn::Phones) => ExportColumn::Phones,
        Ok(pb::ExportColumn::Emails) => ExportColumn::Emails,
        Ok(pb::ExportColumn::Province) => ExportColumn::Province,
        Ok(pb::ExportColumn::City) => ExportColumn::City,
        Ok(pb::ExportColumn::District) => ExportColumn::District,
        Ok(pb::ExportColumn::Company) => ExportColumn::Company,
        Ok(pb::ExportColumn::Channel) => ExportColumn::Channel,
        Ok(pb::ExportColumn::Tags) => ExportColumn::Tags,
        Ok(pb::ExportColumn::Unspecified) | Err(_) => {
            return Err(invalid(field, &format!("{raw} is not an export column")));
        }
    })
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportChunk, Status>> + Send>>;
type MembersStream = Pin<Box<dyn Stream<Item = Result<pb::SegmentMembersChunk, Status>> + Send>>;
type ChunkSender = tokio::sync::mpsc::Sender<Result<pb::ExportChunk, Status>>;

/// Bytes per chunk when an XLSX file is streamed.
const XLSX_CHUNK_BYTES: usize = 64 * 1024;

/// One export's members and columns, written by a task into the stream.
struct Export {
    segments: Arc<Segments>,
    members: Members,
    columns: Vec<ExportColumn>,
    chinese: bool,
}

impl Export {
    /// The next page of member ids after the position `after`, and where to go on from.
    fn page(&self, after: Option<u64>) -> Result<(Vec<String>, Option<u64>), Status> {
        self.segments
            .ids_of(&self.members, after, EXPORT_ROWS_PER_CHUNK)
            .or_status()
    }

    /// CSV: the header, then one chunk per page of members as it is read.
    async fn csv(&self, sender: &ChunkSender) -> Result<(), Status> {
        let header = csv_header(&self.columns, self.chinese);
        if sender
            .send(Ok(pb::ExportChunk { data: header }))
            .await
            .is_err()
        {
            return Ok(());
        }
        let mut after = None;
        loop {
            let (ids, next) = self.page(after)?;
            if !ids.is_empty() {
                let data = self
                    .segments
                    .export_rows(&ids, &self.columns)
                    .await
                    .or_status()?;
                // A closed channel means the client went away: stop reading.
                if sender.send(Ok(pb::ExportChunk { data })).await.is_err() {
                    return Ok(());
                }
            }
            match next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// XLSX: every row written to a constant-memory sheet, the workbook
    /// saved to a temporary file, the file streamed.
    async fn xlsx(self, sender: &ChunkSender) -> Result<(), Status> {
        let mut workbook = XlsxExport::new(&self.columns, self.chinese).or_status()?;
        let mut after = None;
        loop {
            if sender.is_closed() {
                return Ok(());
            }
            let (ids, next) = self.page(after)?;
            if !ids.is_empty() {
                self.segments
                    .export_xlsx_rows(&mut workbook, &ids, &self.columns)
                    .await
                    .or_status()?;
            }
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let file = tempfile::NamedTempFile::new()
            .map_err(|error| Status::internal(format!("cannot create the export file: {error}")))?;
        let path = file.path().to_owned();
        tokio::task::spawn_blocking(move || workbook.save(&path))
            .await
            .map_err(|error| Status::internal(format!("the export writer failed: {error}")))?
            .or_status()?;
        let mut reader = tokio::fs::File::open(file.path())
            .await
            .map_err(|error| Status::internal(format!("cannot read the export file: {error}")))?;
        loop {
            let mut data = vec![0; XLSX_CHUNK_BYTES];
            let read = tokio::io::AsyncReadExt::read(&mut reader, &mut data)
                .await
                .map_err(|error| {
                    Status::internal(format!("cannot read the export file: {error}"))
                })?;
            if read == 0 {
                return Ok(());
            }
            data.truncate(read);
            if sender.send(Ok(pb::ExportChunk { data })).await.is_err() {
                return Ok(());
            }
        }
    }
}

#[tonic::async_trait]
impl SegmentService for SegmentsService {
    async fn create_segment(
        &self,
        request: Request<pb::CreateSegmentRequest>,
    ) -> Result<Response<pb::Segment>, Status> {
        let request = request.into_inner();
        let condition = from_input("condition", request.condition.as_ref())?;
        let created = self
            .segments
            .create(&request.name, &request.description, &condition)
            .await
            .or_status()?;
        Ok(Response::new(segment(created)))
    }

    async fn get_segment(
        &self,
        request: Request<pb::GetSegmentRequest>,
    ) -> Result<Response<pb::Segment>, Status> {
        let segment_id = id("segment_id", &request.get_ref().segment_id)?;
        Ok(Response::new(segment(
            self.segments.get(&segment_id).await.or_status()?,
        )))
    }

    async fn list_segments(
        &self,
        request: Request<pb::ListSegmentsRequest>,
    ) -> Result<Response<pb::ListSegmentsResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self
            .segments
            .store()
            .list_segments(&page)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListSegmentsResponse {
            segments: page.items.into_iter().map(segment).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_segment(
        &self,
        request: Request<pb::UpdateSegmentRequest>,
    ) -> Result<Response<pb::Segment>, Status> {
        let request = request.into_inner();
        let segment_id = id("segment_id", &request.segment_id)?;
        let condition = match &request.condition {
            Some(_) => Some(from_input("condition", request.condition.as_ref())?),
            None => None,
        };
        let updated = self
            .segments
            .update(
                &segment_id,
                request.name.as_deref(),
                request.description.as_deref(),
                condition.as_ref(),
            )
            .await
            .or_status()?;
        Ok(Response::new(segment(updated)))
    }

    async fn delete_segment(
        &self,
        request: Request<pb::DeleteSegmentRequest>,
    ) -> Result<Response<pb::DeleteSegmentResponse>, Status> {
        let segment_id = id("segment_id", &request.get_ref().segment_id)?;
        self.segments.delete(&segment_id).await.or_status()?;
        Ok(Response::new(pb::DeleteSegmentResponse {}))
    }

    async fn count_segment(
        &self,
        request: Request<pb::CountSegmentRequest>,
    ) -> Result<Response<pb::CountResponse>, Status> {
        let segment_id = id("segment_id", &request.get_ref().segment_id)?;
        Ok(Response::new(count(
            self.segments.count_segment(&segment_id).await.or_status()?,
        )))
    }

    async fn count_condition(
        &self,
        request: Request<pb::CountConditionRequest>,
    ) -> Result<Response<pb::CountResponse>, Status> {
        let condition = from_input("condition", request.get_ref().condition.as_ref())?;
        let bound = self
            .segments
            .bind("condition", &condition)
            .await
            .or_status()?;
        Ok(Response::new(count(
            self.segments.count_condition(&bound).await.or_status()?,
        )))
    }

    async fn list_segment_members(
        &self,
        request: Request<pb::ListSegmentMembersRequest>,
    ) -> Result<Response<pb::ListSegmentMembersResponse>, Status> {
        let request = request.into_inner();
        let segment_id = id("segment_id", &request.segment_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let members = self.segments.members(&segment_id).await.or_status()?;
        // A page costs its own ids, not a sort of every member's id (a 1M-member segment).
        let (ids, more) = self
            .segments
            .page_by_id(&members, page.after.as_deref(), page.size)
            .or_status()?;
        let next_page_token = match ids.last() {
            Some(last) if more => encode_token(last),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListSegmentMembersResponse {
            total: members.len(),
            customer_ids: ids,
            next_page_token,
        }))
    }

    type StreamSegmentMembersStream = MembersStream;

    async fn stream_segment_members(
        &self,
        request: Request<pb::StreamSegmentMembersRequest>,
    ) -> Result<Response<Self::StreamSegmentMembersStream>, Status> {
        let request = request.into_inner();
        let segment_id = id("segment_id", &request.segment_id)?;
        let chunk_size = member_chunk_size("chunk_size", request.chunk_size).or_status()?;
        let packed = request.packed;
        // Evaluated once, before answering: a bad segment fails the call itself.
        let members = self.segments.members(&segment_id).await.or_status()?;
        let members = self.segments.in_id_order(members).or_status()?;
        let segments = self.segments.clone();
        // Two chunks in flight: the next is formatted while the last is sent.
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let total = members.len();
            let mut after = None;
            loop {
                let page = if packed {
                    segments
                        .packed_ids_of(&members, after, chunk_size)
                        .map(|(packed_ids, next)| {
                            (
                                pb::SegmentMembersChunk {
                                    customer_ids: Vec::new(),
                                    total,
                                    packed_ids,
                                },
                                next,
                            )
                        })
                } else {
                    segments
                        .ids_of(&members, after, chunk_size)
                        .map(|(customer_ids, next)| {
                            (
                                pb::SegmentMembersChunk {
                                    customer_ids,
                                    total,
                                    packed_ids: Vec::new(),
                                },
                                next,
                            )
                        })
                };
                let (chunk, next) = match page {
                    Ok(page) => page,
                    Err(error) => {
                        // The client may be gone already; nothing else to tell.
                        let _ = sender.send(Err(segment_status(error))).await;
                        return;
                    }
                };
                // A closed channel means the client went away: stop formatting ids.
                if sender.send(Ok(chunk)).await.is_err() {
                    return;
                }
                match next {
                    Some(next) => after = Some(next),
                    None => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn snapshot_segment(
        &self,
        request: Request<pb::SnapshotSegmentRequest>,
    ) -> Result<Response<pb::Segment>, Status> {
        let request = request.into_inner();
        let segment_id = id("segment_id", &request.segment_id)?;
        let snapshot = self
            .segments
            .snapshot(&segment_id, &request.name, &request.description)
            .await
            .or_status()?;
        Ok(Response::new(segment(snapshot)))
    }

    type ExportSegmentStream = ExportStream;

    async fn export_segment(
        &self,
        request: Request<pb::ExportSegmentRequest>,
    ) -> Result<Response<Self::ExportSegmentStream>, Status> {
        let request = request.into_inner();
        let segment_id = id("segment_id", &request.segment_id)?;
        let columns: Vec<ExportColumn> = if request.columns.is_empty() {
            ExportColumn::ALL.to_vec()
        } else {
            request
                .columns
                .iter()
                .enumerate()
                .map(|(index, raw)| export_column(&format!("columns[{index}]"), *raw))
                .collect::<Result<_, _>>()?
        };
        let xlsx = match pb::ExportFormat::try_from(request.format) {
            Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::Csv) => false,
            Ok(pb::ExportFormat::Xlsx) => true,
            Err(_) => {
                return Err(invalid(
                    "format",
                    &format!("{} is not an export format", request.format),
                ));
            }
        };
        // Resolve the members before answering, so a bad id fails the call itself.
        let members = self.segments.members(&segment_id).await.or_status()?;
        if xlsx && members.len() > MAX_XLSX_MEMBERS {
            return Err(Status::failed_precondition(format!(
                "the segment has {} members; one XLSX sheet holds {MAX_XLSX_MEMBERS}: export CSV",
                members.len()
            )));
        }
        let export = Export {
            segments: self.segments.clone(),
            members,
            columns,
            chinese: request.chinese_headers,
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let outcome = if xlsx {
                export.xlsx(&sender).await
            } else {
                export.csv(&sender).await
            };
            if let Err(status) = outcome {
                // The client may be gone already; nothing else to tell.
                let _ = sender.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn compare_segments(
        &self,
        request: Request<pb::CompareSegmentsRequest>,
    ) -> Result<Response<pb::CompareSegmentsResponse>, Status> {
        let ids = request
            .get_ref()
            .segment_ids
            .iter()
            .enumerate()
            .map(|(index, raw)| id(&format!("segment_ids[{index}]"), raw))
            .collect::<Result<Vec<_>, _>>()?;
        let comparison = self.segments.compare(&ids).await.or_status()?;
        Ok(Response::new(pb::CompareSegmentsResponse {
            sizes: comparison
                .sizes
                .into_iter()
                .map(|(segment_id, count)| pb::SegmentSize { segment_id, count })
                .collect(),
            pairs: comparison
                .pairs
                .into_iter()
                .map(|((first, second), count)| pb::SegmentOverlap {
                    segment_ids: vec![first, second],
                    count,
                })
                .collect(),
            all: Some(pb::SegmentOverlap {
                segment_ids: ids,
                count: comparison.all,
            }),
        }))
    }

    async fn validate_condition(
        &self,
        request: Request<pb::ValidateConditionRequest>,
    ) -> Result<Response<pb::ValidateConditionResponse>, Status> {
        let condition = from_input("condition", request.get_ref().condition.as_ref())?;
        self.segments
            .bind("condition", &condition)
            .await
            .or_status()?;
        Ok(Response::new(pb::ValidateConditionResponse {
            condition: condition.to_string(),
            condition_tree: Some(to_tree(&condition)),
        }))
    }
}
