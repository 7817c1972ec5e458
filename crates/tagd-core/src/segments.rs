//! Segments: a saved condition (dynamic) or a frozen list of members
//! (static), and the columns a segment export can carry.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;

use crate::DomainError;

/// How a segment decides its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// Members are whoever matches the condition now.
    Dynamic,
    /// Members were frozen by a snapshot; the condition is kept for reference.
    Static,
}

impl SegmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Dynamic => "dynamic",
            SegmentKind::Static => "static",
        }
    }
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SegmentKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "dynamic" => Ok(SegmentKind::Dynamic),
            "static" => Ok(SegmentKind::Static),
            other => Err(format!("unknown segment kind {other:?}")),
        }
    }
}

/// A segment as stored. `condition` is the canonical text of its condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: SegmentKind,
    pub condition: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The longest segment description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// Member ids per chunk of StreamSegmentMembers when the caller asks for none.
pub const DEFAULT_MEMBER_CHUNK: usize = 10_000;
/// The most member ids one chunk carries: 50,000 ids are about 2 MB, within
/// the 4 MB a gRPC client accepts by default.
pub const MAX_MEMBER_CHUNK: usize = 50_000;

/// The ids per chunk a caller asked for in `field`: 0 means
/// [`DEFAULT_MEMBER_CHUNK`], more than [`MAX_MEMBER_CHUNK`] is refused.
pub fn member_chunk_size(field: &str, requested: u32) -> Result<usize, DomainError> {
    match usize::try_from(requested) {
        Ok(0) => Ok(DEFAULT_MEMBER_CHUNK),
        Ok(size) if size <= MAX_MEMBER_CHUNK => Ok(size),
        _ => Err(DomainError::invalid(
            field,
            format!("{requested} is more than {MAX_MEMBER_CHUNK} ids a chunk"),
        )),
    }
}

/// The customer columns an export can carry, in the order given by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportColumn {
    Id,
    Name,
    Gender,
    Birthday,
    Phones,
    Emails,
    Province,
    City,
    District,
    Company,
    Channel,
    /// The customer's live tags, `category/name[=value]`, separated by `; `.
    Tags,
}

impl ExportColumn {
    /// Every column, in the default order.
    pub const ALL: [ExportColumn; 12] = [
        ExportColumn::Id,
        ExportColumn::Name,
        ExportColumn::Gender,
        ExportColumn::Birthday,
        ExportColumn::Phones,
        ExportColumn::Emails,
        ExportColumn::Province,
        ExportColumn::City,
        ExportColumn::District,
        ExportColumn::Company,
        ExportColumn::Channel,
        ExportColumn::Tags,
    ];

    /// The header in English.
    pub fn header(self) -> &'static str {
        match self {
            ExportColumn::Id => "id",
            ExportColumn::Name => "name",
            ExportColumn::Gender => "gender",
            ExportColumn::Birthday => "birthday",
            ExportColumn::Phones => "phones",
            ExportColumn::Emails => "emails",
            ExportColumn::Province => "province",
            ExportColumn::City => "city",
            ExportColumn::District => "district",
            ExportColumn::Company => "company",
            ExportColumn::Channel => "source_channel",
            ExportColumn::Tags => "tags",
        }
    }

    /// The header of the 客户标签管理表格 (customer tag management sheet).
    pub fn chinese_header(self) -> &'static str {
        match self {
            ExportColumn::Id => "客户ID",
            ExportColumn::Name => "姓名",
            ExportColumn::Gender => "性别",
            ExportColumn::Birthday => "生日",
            ExportColumn::Phones => "手机",
            ExportColumn::Emails => "邮箱",
            ExportColumn::Province => "省份",
            ExportColumn::City => "城市",
            ExportColumn::District => "区县",
            ExportColumn::Company => "公司",
            ExportColumn::Channel => "来源渠道",
            ExportColumn::Tags => "标签",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in [SegmentKind::Dynamic, SegmentKind::Static] {
            assert_eq!(kind.as_str().parse::<SegmentKind>(), Ok(kind));
        }
        assert!("other".parse::<SegmentKind>().is_err());
    }

    #[test]
    fn member_chunks_default_and_are_bounded() {
        assert_eq!(member_chunk_size("chunk_size", 0), Ok(DEFAULT_MEMBER_CHUNK));
        assert_eq!(member_chunk_size("chunk_size", 1), Ok(1));
        assert_eq!(
            member_chunk_size("chunk_size", 50_000),
            Ok(MAX_MEMBER_CHUNK)
        );
        assert!(
            member_chunk_size("chunk_size", 50_001)
                .is_err_and(|error| error.to_string().contains("chunk_size"))
        );
    }
}
