//! Streams an XLSX/XLSM sheet row by row in constant memory.
//!
//! calamine's `XlsxCellReader` parses the sheet XML straight from the zip entry,
//! one cell at a time; only the workbook-wide tables (shared strings, number
//! formats) and the sheet's merged ranges are held. The cell reader borrows the
//! workbook, so it runs on a reader thread that owns the workbook and hands
//! finished rows over a bounded channel: at most [`CHANNEL_ROWS`] rows are in
//! flight, whatever the sheet's length. Dropping [`XlsxRows`] stops and joins
//! the thread (the library may be unloaded right after `close`).
//!
//! Merged cells (see `plugins/README.md`): the header row takes the top-left
//! value in every column a merged range covers; below the header a range
//! spanning rows gives its value to each row it covers, in its first column
//! only; a data row holding nothing but one merged range across the whole
//! header width is a section heading and reported, not imported.

use std::{
    fmt::Display,
    fs::File,
    io::BufReader,
    path::Path,
    sync::mpsc::{Receiver, SyncSender, sync_channel},
    thread::{self, JoinHandle},
};

use calamine::{DataRef, Dimensions, ExcelDateTime, Reader, Xlsx, open_workbook};
use tagd_plugin_api::RowError;

/// Rows in flight between the reader thread and the iterator.
const CHANNEL_ROWS: usize = 256;
/// Excel's last column is XFD (16,384 columns); a cell beyond it is refused
/// rather than padding a row to an absurd width.
const MAX_COLUMNS: u32 = 16_384;

/// A whole float as an integer (phone numbers are often typed as numbers), else as is.
pub fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "only whole floats within i64 range are cast"
        )]
        let i = f as i64;
        i.to_string()
    } else {
        f.to_string()
    }
}

/// An Excel serial date (a cell whose number format is a date) as `YYYY-MM-DD`,
/// with ` HH:MM:SS` when it has a time of day.
pub fn date_text(dt: &ExcelDateTime) -> String {
    let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
    if (h, mi, s) == (0, 0, 0) {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}

/// A streamed cell as text. A formula cell arrives as its cached value: the
/// cell reader skips `<f>` and reads `<v>`.
fn cell_text(cell: &DataRef<'_>) -> Result<String, String> {
    Ok(match cell {
        DataRef::Empty => String::new(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => float_text(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => date_text(dt),
        DataRef::Error(e) => return Err(format!("cell error {e}")),
    })
}

/// The sheet to read: the `sheet` option's, else the first.
pub fn pick_sheet(names: &[String], wanted: Option<&str>) -> Result<String, String> {
    match wanted {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "option `sheet`: no sheet `{wanted}` (sheets: {})",
                    names.join(", ")
                )
            }),
        None => names
            .first()
            .cloned()
            .ok_or_else(|| "the workbook has no sheets".to_owned()),
    }
}

enum Msg {
    Row(u64, Vec<String>),
    /// A row that could not be read: position, reason, raw value.
    BadRow(u64, String, String),
    /// The sheet cannot be read further.
    Fatal(String),
}

/// Rows of one XLSX sheet, read on a thread and handed over one at a time.
pub struct XlsxRows {
    rx: Option<Receiver<Msg>>,
    worker: Option<JoinHandle<()>>,
    last_position: u64,
    done: bool,
}

impl XlsxRows {
    /// Opens the workbook (the zip directory, shared strings, styles and the
    /// sheet's merged ranges are read here; a broken file fails now, naming it)
    /// and starts the reader thread. `header_row` is 1-based.
    pub fn open(path: &Path, sheet: Option<&str>, header_row: u64) -> Result<Self, String> {
        let file = path.display().to_string();
        let mut workbook: Xlsx<BufReader<File>> =
            open_workbook(path).map_err(|e| format!("cannot read {file} as a workbook: {e}"))?;
        let name = pick_sheet(&workbook.sheet_names(), sheet)?;
        let merges = workbook
            .merge_cells_by_sheet_name(&name)
            .map_err(|e| format!("cannot read sheet `{name}` of {file}: {e}"))?;
        let header = u32::try_from(header_row.saturating_sub(1)).unwrap_or(u32::MAX);
        let (tx, rx) = sync_channel(CHANNEL_ROWS);
        let worker = thread::Builder::new()
            .name("xlsx-reader".to_owned())
            .spawn(move || {
                let merged = Merged::new(merges, header);
                produce(workbook, &name, &file, merged, &tx);
            })
            .map_err(|e| format!("cannot start the XLSX reader thread: {e}"))?;
        Ok(Self {
            rx: Some(rx),
            worker: Some(worker),
            last_position: 0,
            done: false,
        })
    }

    /// The next row's position (sheet row, 1-based) and cells.
    pub fn next_row(&mut self) -> Option<Result<(u64, Vec<String>), RowError>> {
        if self.done {
            return None;
        }
        let received = self.rx.as_ref().map(Receiver::recv);
        match received {
            Some(Ok(Msg::Row(position, cells))) => {
                self.last_position = position;
                Some(Ok((position, cells)))
            }
            Some(Ok(Msg::BadRow(position, reason, raw))) => {
                self.last_position = position;
                Some(Err(RowError::new(position, "", reason, &raw)))
            }
            Some(Ok(Msg::Fatal(reason))) => {
                // The row being read when it failed is not sent, even if it looked whole.
                self.done = true;
                let first_unread = self.last_position + 1;
                Some(Err(RowError::new(
                    first_unread,
                    "",
                    format!("{reason} (rows from {first_unread} on were not read)"),
                    "",
                )))
            }
            Some(Err(_)) | None => {
                // The thread hung up: the sheet ended, or the thread panicked,
                // which is passed on to the plugin's own panic handling.
                self.done = true;
                self.rx = None;
                if let Some(worker) = self.worker.take()
                    && let Err(panic) = worker.join()
                {
                    std::panic::resume_unwind(panic);
                }
                None
            }
        }
    }
}

impl Drop for XlsxRows {
    fn drop(&mut self) {
        // Hanging up makes the thread's next send fail, so it returns.
        self.rx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The reader thread: cells in XML order grouped into rows.
fn produce(
    mut workbook: Xlsx<BufReader<File>>,
    name: &str,
    file: &str,
    mut merged: Merged,
    tx: &SyncSender<Msg>,
) {
    let fatal = |e: &dyn Display| Msg::Fatal(format!("cannot read sheet `{name}` of {file}: {e}"));
    let mut reader = match workbook.worksheet_cells_reader(name) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.send(fatal(&e));
            return;
        }
    };
    let mut row = PendingRow::default();
    loop {
        match reader.next_cell() {
            Ok(Some(cell)) => {
                let (r, c) = cell.get_position();
                if row.index != Some(r) {
                    if !row.send(&mut merged, tx) {
                        return;
                    }
                    row.index = Some(r);
                }
                if c >= MAX_COLUMNS {
                    row.error
                        .get_or_insert_with(|| "a cell beyond the last column (XFD)".to_owned());
                    continue;
                }
                match cell_text(cell.get_value()) {
                    Ok(text) if text.is_empty() => {}
                    Ok(text) => {
                        let c = c as usize;
                        if row.cells.len() <= c {
                            row.cells.resize(c + 1, String::new());
                        }
                        row.cells[c] = text;
                    }
                    Err(e) => {
                        row.error.get_or_insert(e);
                    }
                }
            }
            Ok(None) => {
                row.send(&mut merged, tx);
                return;
            }
            Err(e) => {
                // The row being read is incomplete: it is not sent.
                let _ = tx.send(fatal(&e));
                return;
            }
        }
    }
}

/// The row being assembled on the reader thread.
#[derive(Default)]
struct PendingRow {
    index: Option<u32>,
    cells: Vec<String>,
    error: Option<String>,
}

impl PendingRow {
    /// Sends the row (if any) and resets; false once the iterator has hung up.
    fn send(&mut self, merged: &mut Merged, tx: &SyncSender<Msg>) -> bool {
        let Some(index) = self.index.take() else {
            return true;
        };
        let mut cells = std::mem::take(&mut self.cells);
        let position = u64::from(index) + 1;
        let msg = match self.error.take() {
            Some(reason) => Msg::BadRow(position, reason, String::new()),
            None => match merged.apply(index, &mut cells) {
                Ok(()) => Msg::Row(position, cells),
                Err((reason, raw)) => Msg::BadRow(position, reason, raw),
            },
        };
        tx.send(msg).is_ok()
    }
}

/// A merged range whose top-left value may be copied.
struct Range {
    dims: Dimensions,
    /// The top-left cell's text, once its row was read.
    value: String,
}

/// The sheet's merged ranges as rows go by (rows arrive in increasing order).
struct Merged {
    /// 0-based header row.
    header: u32,
    /// Ranges not started yet, the next to start last.
    pending: Vec<Dimensions>,
    /// Ranges covering the current row or started above it and not ended.
    active: Vec<Range>,
    /// First and last non-empty header columns, once the header was read.
    header_span: Option<(usize, usize)>,
}

impl Merged {
    fn new(mut merges: Vec<Dimensions>, header: u32) -> Self {
        // Kept: ranges covering the header row, and ranges below it spanning
        // rows (filled down) or columns (a possible section heading).
        merges.retain(|d| {
            let covers_header = d.start.0 <= header && header <= d.end.0;
            let below = d.start.0 > header && (d.end.0 > d.start.0 || d.end.1 > d.start.1);
            covers_header || below
        });
        merges.sort_unstable_by_key(|d| std::cmp::Reverse(d.start.0));
        Self {
            header,
            pending: merges,
            active: Vec::new(),
            header_span: None,
        }
    }

    /// Applies the merged-cell rules to row `r` (0-based). `Err((reason, raw))`
    /// for a section heading.
    fn apply(&mut self, r: u32, cells: &mut Vec<String>) -> Result<(), (String, String)> {
        self.active.retain(|range| range.dims.end.0 >= r);
        while self.pending.last().is_some_and(|d| d.start.0 <= r) {
            if let Some(dims) = self.pending.pop()
                && dims.end.0 >= r
            {
                self.active.push(Range {
                    dims,
                    value: String::new(),
                });
            }
        }
        for range in &mut self.active {
            if range.dims.start.0 == r {
                range.value = cells
                    .get(range.dims.start.1 as usize)
                    .cloned()
                    .unwrap_or_default();
            }
        }
        if self.active.is_empty() && r != self.header {
            return Ok(());
        }
        if r == self.header {
            for range in &self.active {
                let (first, last) = (range.dims.start.1 as usize, range.dims.end.1 as usize);
                if range.value.is_empty() || last >= MAX_COLUMNS as usize {
                    continue;
                }
                if cells.len() <= last {
                    cells.resize(last + 1, String::new());
                }
                for cell in &mut cells[first..=last] {
                    if cell.is_empty() {
                        cell.clone_from(&range.value);
                    }
                }
            }
            let first = cells.iter().position(|c| !c.trim().is_empty());
            let last = cells.iter().rposition(|c| !c.trim().is_empty());
            self.header_span = first.zip(last);
        } else if r > self.header {
            let mut filled = cells
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.trim().is_empty());
            let (first_filled, second_filled) = (filled.next(), filled.next());
            let only = match (first_filled, second_filled) {
                (Some((column, _)), None) => Some(column),
                _ => None,
            };
            if let (Some(column), Some((first, last))) = (only, self.header_span)
                && let Some(range) = self.active.iter().find(|range| {
                    range.dims.start == (r, column as u32)
                        && range.dims.end.1 > range.dims.start.1
                        && range.dims.start.1 as usize <= first
                        && range.dims.end.1 as usize >= last
                })
            {
                return Err((
                    "a merged cell across the whole row: read as a section heading, not a customer"
                        .to_owned(),
                    range.value.clone(),
                ));
            }
            if first_filled.is_some() {
                // Fill down: a range started in an earlier data row gives its
                // value to this row, in its first column only.
                for range in &self.active {
                    let column = range.dims.start.1 as usize;
                    if range.dims.start.0 > self.header
                        && range.dims.start.0 < r
                        && range.dims.end.0 > range.dims.start.0
                        && !range.value.is_empty()
                    {
                        if cells.len() <= column {
                            cells.resize(column + 1, String::new());
                        }
                        if cells[column].is_empty() {
                            cells[column].clone_from(&range.value);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(start: (u32, u32), end: (u32, u32)) -> Dimensions {
        Dimensions { start, end }
    }

    fn cells(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn header_spans_and_fill_down() {
        // Header (row 0): "标签" over C:D. Data: B2:B4 merged (a city over three rows),
        // E2:F2 merged across columns (not filled), A6:D6 a section heading.
        let mut merged = Merged::new(
            vec![
                dims((0, 2), (0, 3)),
                dims((1, 1), (3, 1)),
                dims((1, 4), (1, 5)),
                dims((5, 0), (5, 3)),
            ],
            0,
        );
        let mut header = cells(&["姓名", "城市", "标签"]);
        merged.apply(0, &mut header).unwrap();
        assert_eq!(header, cells(&["姓名", "城市", "标签", "标签"]));
        let mut row = cells(&["张三", "杭州", "VIP", "", "x"]);
        merged.apply(1, &mut row).unwrap();
        assert_eq!(row, cells(&["张三", "杭州", "VIP", "", "x"]));
        let mut row = cells(&["李四"]);
        merged.apply(2, &mut row).unwrap();
        assert_eq!(row, cells(&["李四", "杭州"]));
        // A row with nothing of its own stays blank.
        let mut row = Vec::new();
        merged.apply(3, &mut row).unwrap();
        assert!(row.is_empty());
        let mut row = cells(&["王五"]);
        merged.apply(4, &mut row).unwrap();
        assert_eq!(row, cells(&["王五"]));
        let mut row = cells(&["华东区"]);
        let (reason, raw) = merged.apply(5, &mut row).unwrap_err();
        assert!(reason.contains("section heading"), "{reason}");
        assert_eq!(raw, "华东区");
    }

    #[test]
    fn texts() {
        assert_eq!(float_text(13_800_000_001.0), "13800000001");
        assert_eq!(float_text(12.5), "12.5");
        assert_eq!(cell_text(&DataRef::Bool(true)).unwrap(), "true");
        assert_eq!(cell_text(&DataRef::SharedString("x")).unwrap(), "x");
    }
}
