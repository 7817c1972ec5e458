//! Opens a CSV or workbook, reads its header row and yields records row by row.
//! CSV and XLSX stream in constant memory; XLS, XLSB and ODS sheets are loaded whole.

use std::{fs::File, path::Path};

use calamine::{Data, Reader, open_workbook_auto};
use tagd_plugin_api::{BoxError, ImportRecord, Options, RowError};

use crate::{
    columns::plan,
    decode::{DecodeReader, check_text, choose, sample},
    rows::RowMapper,
    xlsx::{XlsxRows, date_text, float_text, pick_sheet},
};

const DEFAULT_TAG_SEPARATORS: &str = ",，;；|、";

/// Where rows come from: a streaming CSV reader, a streamed XLSX sheet, or a
/// loaded sheet (XLS, XLSB, ODS).
enum Rows {
    /// With the number of records read so far: a CSV row is numbered as a
    /// spreadsheet app shows it (header = row 1), not by physical line.
    Csv(Box<csv::Reader<DecodeReader<File>>>, u64),
    Xlsx(XlsxRows),
    Sheet(std::vec::IntoIter<(u64, Vec<String>)>),
}

/// An iterator of records (or row errors) from a sheet.
pub struct SheetReader {
    rows: Rows,
    mapper: RowMapper,
    done: bool,
}

impl std::fmt::Debug for SheetReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SheetReader")
            .field("mapper", &self.mapper)
            .finish_non_exhaustive()
    }
}

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Csv,
    /// XLSX/XLSM: streamed row by row.
    Xlsx,
    /// XLS, XLSB, ODS: loaded whole through calamine.
    Loaded,
}

fn kind(path: &Path, format: &str) -> Result<Kind, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let loaded = matches!(ext.as_str(), "xlsb" | "xls" | "ods");
    match format.to_ascii_lowercase().as_str() {
        "csv" => Ok(Kind::Csv),
        "xlsx" | "xls" | "ods" | "excel" if loaded => Ok(Kind::Loaded),
        "xlsx" | "xls" | "ods" | "excel" => Ok(Kind::Xlsx),
        "auto" if loaded => Ok(Kind::Loaded),
        "auto" if matches!(ext.as_str(), "xlsx" | "xlsm") => Ok(Kind::Xlsx),
        "auto" => Ok(Kind::Csv),
        other => Err(format!(
            "option `format`: unknown format `{other}` (auto, csv or xlsx)"
        )),
    }
}

/// A loaded workbook cell as text: whole numbers without `.0` (phone numbers are often numeric), dates as ISO.
fn cell_text(cell: &Data) -> Result<String, String> {
    Ok(match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => date_text(dt),
        Data::Error(e) => return Err(format!("cell error {e}")),
    })
}

/// XLS, XLSB and ODS have no streaming reader in calamine: the sheet is loaded whole.
fn load_sheet(path: &Path, options: &Options) -> Result<Vec<(u64, Vec<String>)>, String> {
    let mut workbook = open_workbook_auto(path)
        .map_err(|e| format!("cannot read {} as a workbook: {e}", path.display()))?;
    let name = pick_sheet(&workbook.sheet_names(), options.get("sheet"))?;
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| format!("cannot read sheet `{name}`: {e}"))?;
    let first_row = u64::from(range.start().map_or(0, |(row, _)| row));
    let first_col = range.start().map_or(0, |(_, col)| col as usize);
    let mut rows = Vec::with_capacity(range.height());
    for (i, row) in range.rows().enumerate() {
        let mut cells = vec![String::new(); first_col];
        let mut error = None;
        for cell in row {
            match cell_text(cell) {
                Ok(text) => cells.push(text),
                Err(e) => {
                    error.get_or_insert(e);
                    cells.push(String::new());
                }
            }
        }
        if let Some(e) = error {
            // Carried as a marker cell the iterator turns into a row error.
            cells = vec![format!("\u{0}{e}")];
        }
        rows.push((first_row + i as u64 + 1, cells));
    }
    Ok(rows)
}

fn open_csv(path: &Path, options: &Options) -> Result<csv::Reader<DecodeReader<File>>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let sample = sample(&mut file).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if sample.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty: no header row".to_owned());
    }
    check_text(&sample)?;
    let encoding = choose(&sample, options.get_or("encoding", "auto"))?;
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = match options.get("delimiter") {
        None if tsv => b'\t',
        None => b',',
        Some("tab" | "\\t") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            return Err(format!(
                "option `delimiter`: expected one ASCII character or `tab`, got `{d}`"
            ));
        }
    };
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(DecodeReader::new(file, encoding, sample)))
}

impl SheetReader {
    pub fn open(path: &Path, options: &Options) -> Result<Self, BoxError> {
        let header_row = options.number("header_row", 1)?.max(1);
        let mut rows = match kind(path, options.get_or("format", "auto"))? {
            Kind::Csv => Rows::Csv(Box::new(open_csv(path, options)?), 0),
            Kind::Xlsx => Rows::Xlsx(XlsxRows::open(path, options.get("sheet"), header_row)?),
            Kind::Loaded => Rows::Sheet(load_sheet(path, options)?.into_iter()),
        };
        let mut headers = None;
        let mut seen = 0;
        while seen < header_row {
            match next_row(&mut rows) {
                None => {
                    return Err(format!(
                        "the file has no header row (expected at row {header_row})"
                    )
                    .into());
                }
                Some(Err(e)) => {
                    return Err(format!("cannot read the header row: {}", e.reason).into());
                }
                Some(Ok((_, cells))) => headers = Some(cells),
            }
            seen += 1;
        }
        let headers: Vec<String> = headers
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        if headers.iter().any(|h| h.contains('\u{fffd}')) {
            return Err("the header row is not valid text in the detected encoding: set the `encoding` option (utf-8, gbk or gb18030)".into());
        }
        let fields = plan(&headers, options)?;
        let mapper = RowMapper {
            headers,
            fields,
            tag_separators: options
                .get_or("tag_separators", DEFAULT_TAG_SEPARATORS)
                .chars()
                .collect(),
            tag_category: options.get_or("tag_category", "").to_owned(),
        };
        Ok(Self {
            rows,
            mapper,
            done: false,
        })
    }
}

/// The next row's position (line or sheet row, 1-based) and cells.
fn next_row(rows: &mut Rows) -> Option<Result<(u64, Vec<String>), RowError>> {
    match rows {
        Rows::Xlsx(xlsx) => xlsx.next_row(),
        Rows::Sheet(iter) => iter.next().map(|(position, cells)| {
            match cells.first().and_then(|c| c.strip_prefix('\u{0}')) {
                Some(error) => Err(RowError::new(position, "", error, "")),
                None => Ok((position, cells)),
            }
        }),
        Rows::Csv(reader, count) => {
            let mut record = csv::StringRecord::new();
            *count += 1;
            match reader.read_record(&mut record) {
                Ok(false) => None,
                Ok(true) => Some(Ok((*count, record.iter().map(str::to_owned).collect()))),
                Err(e) => Some(Err(RowError::new(
                    *count,
                    "",
                    format!("unreadable CSV: {e}"),
                    "",
                ))),
            }
        }
    }
}

impl Iterator for SheetReader {
    type Item = Result<ImportRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match next_row(&mut self.rows) {
                None => self.done = true,
                Some(Err(e)) => {
                    // A CSV read error (I/O, an over-long line) leaves the parser unusable;
                    // a streamed sheet ends by itself after an unreadable part.
                    self.done = matches!(self.rows, Rows::Csv(..));
                    return Some(Err(e));
                }
                Some(Ok((position, cells))) => {
                    if let Some(item) = self.mapper.record(position, &cells) {
                        return Some(item);
                    }
                }
            }
        }
        None
    }
}
