//! Tagd importer plugin for customer sheets: CSV (UTF-8 with or without BOM,
//! GBK/GB18030, CRLF) and XLSX/XLSM streamed in constant memory, XLS/XLSB/ODS
//! loaded through calamine. A header row is mapped to fields by built-in recognition of common
//! Chinese and English headers, overridable with `map.<header>` options.

mod columns;
mod decode;
mod rows;
mod sheet;
mod xlsx;

use std::path::Path;

use tagd_plugin_api::{
    BoxError, ImportRecord, Importer, OptionSpec, Options, PluginInfo, RowError,
};

pub use columns::{Field, recognise};
pub use sheet::SheetReader;

pub struct SpreadsheetImporter;

fn option(name: &str, description: &str, default_value: &str) -> OptionSpec {
    OptionSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        default_value: default_value.to_owned(),
        required: false,
    }
}

impl Importer for SpreadsheetImporter {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "spreadsheet".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channel: "spreadsheet".to_owned(),
            file_types: ["csv", "tsv", "txt", "xlsx", "xlsm", "xls", "ods"].map(str::to_owned).to_vec(),
            options: vec![
                option("format", "auto (by extension), csv or xlsx (also xls and ods)", "auto"),
                option("encoding", "CSV encoding: auto (BOM, else UTF-8 if valid, else GB18030), utf-8, gbk or gb18030", "auto"),
                option("delimiter", "CSV delimiter: one character, or `tab`; default `,` (`tab` for .tsv)", ","),
                option("sheet", "XLSX sheet name; default the first sheet", ""),
                option("header_row", "1-based row of the header", "1"),
                option(
                    "map.<header>",
                    "maps a header to a field: name, gender, birthday, phone, email, province, city, district, address, company, external_id, tags, tag:<category> (empty category = the header), attr:<key>, ignore",
                    "",
                ),
                option("tag_separators", "characters splitting a tags cell", ",，;；|、"),
                option("tag_category", "tag category for the tags column; empty means the import's default", ""),
                option("tag_columns", "comma-separated headers holding one tag category each (the header is the category)", ""),
                option("keep_unmapped", "keep unrecognised columns as attributes: true or false", "true"),
            ],
            description: "Customer sheets (CSV, XLSX) with a header row; tags in one column or one column per category.".to_owned(),
            ..PluginInfo::default()
        }
    }

    fn open(
        path: &Path,
        options: &Options,
    ) -> Result<impl Iterator<Item = Result<ImportRecord, RowError>> + 'static, BoxError> {
        SheetReader::open(path, options)
    }
}

tagd_plugin_api::export_plugin!(SpreadsheetImporter);
