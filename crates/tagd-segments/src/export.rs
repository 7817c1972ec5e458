//! The rows of a segment export: one CSV record per customer with the
//! chosen columns, tags as `category/name[=value]` joined by `; `.

use std::collections::HashMap;

use rust_xlsxwriter::{Workbook, XlsxError};
use tagd_core::customers::Customer;
use tagd_core::segments::ExportColumn;
use tagd_store::AssignmentName;

use crate::error::{SegmentError, SegmentResult};

/// The UTF-8 byte-order mark: without it spreadsheet programs read the
/// Chinese text as the local code page.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header record (after the byte-order mark).
pub fn csv_header(columns: &[ExportColumn], chinese: bool) -> Vec<u8> {
    let mut out = BOM.to_vec();
    out.extend(record(columns.iter().map(|column| {
        if chinese {
            column.chinese_header().to_owned()
        } else {
            column.header().to_owned()
        }
    })));
    out
}

/// One record per customer, in the order given.
pub fn csv_rows(
    customers: &[Customer],
    tags: &[AssignmentName],
    columns: &[ExportColumn],
) -> Vec<u8> {
    let mut out = Vec::new();
    for values in row_values(customers, tags, columns) {
        out.extend(record(values.into_iter()));
    }
    out
}

/// The cells of each customer's row, in the order given.
fn row_values(
    customers: &[Customer],
    tags: &[AssignmentName],
    columns: &[ExportColumn],
) -> Vec<Vec<String>> {
    let mut tags_of: HashMap<&str, Vec<String>> = HashMap::new();
    for tag in tags {
        let label = match &tag.value {
            Some(value) => format!("{}/{}={value}", tag.category, tag.tag),
            None => format!("{}/{}", tag.category, tag.tag),
        };
        tags_of
            .entry(tag.customer_id.as_str())
            .or_default()
            .push(label);
    }
    customers
        .iter()
        .map(|customer| {
            let fields = &customer.fields;
            columns
                .iter()
                .map(|column| match column {
                    ExportColumn::Id => customer.id.clone(),
                    ExportColumn::Name => fields.name.clone(),
                    ExportColumn::Gender => fields.gender.as_str().to_owned(),
                    ExportColumn::Birthday => fields
                        .birthday
                        .map(|day| day.format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    ExportColumn::Phones => fields.phones.join("; "),
                    ExportColumn::Emails => fields.emails.join("; "),
                    ExportColumn::Province => fields.address.province.clone(),
                    ExportColumn::City => fields.address.city.clone(),
                    ExportColumn::District => fields.address.district.clone(),
                    ExportColumn::Company => fields.company.clone(),
                    ExportColumn::Channel => fields.source_channel.clone(),
                    ExportColumn::Tags => tags_of
                        .get(customer.id.as_str())
                        .map(|labels| labels.join("; "))
                        .unwrap_or_default(),
                })
                .collect()
        })
        .collect()
}

/// The most members one XLSX export holds: a sheet's rows less the header.
pub const MAX_XLSX_MEMBERS: u64 = 1_048_575;

/// An XLSX export being written: one sheet in constant-memory mode (rows
/// go to a temporary file as they are added), saved to a temporary file.
pub struct XlsxExport {
    workbook: Workbook,
    columns: Vec<ExportColumn>,
    next_row: u32,
}

fn xlsx_error(error: XlsxError) -> SegmentError {
    SegmentError::Export(error.to_string())
}

impl XlsxExport {
    /// A workbook with the header row.
    pub fn new(columns: &[ExportColumn], chinese: bool) -> SegmentResult<Self> {
        let mut workbook = Workbook::new();
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        for (index, column) in columns.iter().enumerate() {
            let header = if chinese {
                column.chinese_header()
            } else {
                column.header()
            };
            sheet
                .write_string(0, col(index)?, header)
                .map_err(xlsx_error)?;
        }
        Ok(Self {
            workbook,
            columns: columns.to_vec(),
            next_row: 1,
        })
    }

    /// Adds one row per customer, in the order given.
    pub fn add(&mut self, customers: &[Customer], tags: &[AssignmentName]) -> SegmentResult<()> {
        let rows = row_values(customers, tags, &self.columns);
        let sheet = self.workbook.worksheet_from_index(0).map_err(xlsx_error)?;
        for values in rows {
            for (index, value) in values.iter().enumerate() {
                sheet
                    .write_string(self.next_row, col(index)?, value)
                    .map_err(xlsx_error)?;
            }
            self.next_row += 1;
        }
        Ok(())
    }

    /// Writes the workbook to `path`.
    pub fn save(mut self, path: &std::path::Path) -> SegmentResult<()> {
        self.workbook.save(path).map_err(xlsx_error)
    }
}

fn col(index: usize) -> SegmentResult<u16> {
    u16::try_from(index).map_err(|_| SegmentError::Export("too many columns".into()))
}

/// One CSV record, quoted where needed, ending in CRLF.
fn record(values: impl Iterator<Item = String>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let values: Vec<String> = values.collect();
    // Writing to a Vec cannot fail; an empty record is the only other case.
    if writer.write_record(&values).is_err() {
        return Vec::new();
    }
    writer.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_bom_and_chinese_names() {
        let header = csv_header(&[ExportColumn::Id, ExportColumn::Tags], true);
        assert!(header.starts_with(BOM));
        assert_eq!(&header[BOM.len()..], "客户ID,标签\r\n".as_bytes());
    }
}
