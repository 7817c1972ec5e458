//! The rows of a segment export: one CSV record per customer with the
//! chosen columns, tags as `category/name[=value]` joined by `; `.

use std::collections::HashMap;

use tagd_core::customers::Customer;
use tagd_core::segments::ExportColumn;
use tagd_store::AssignmentName;

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
    let mut out = Vec::new();
    for customer in customers {
        let fields = &customer.fields;
        out.extend(record(columns.iter().map(|column| {
            match column {
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
            }
        })));
    }
    out
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
