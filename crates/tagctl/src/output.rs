//! Rendering results: tables for people (the default), JSON for scripts (`--json`).
//!
//! Each noun module turns prost messages into small `View` structs; this module
//! decides how a list, a single record or an outcome is shown.

use std::fmt;
use std::io::{ErrorKind, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{ContentArrangement, Table, presets};
use serde::{Serialize, Serializer};

use crate::exit::Failure;

/// A row of a table, and the JSON object of the same thing.
pub trait View: Serialize {
    /// Table headers, one per cell.
    const COLUMNS: &'static [&'static str];

    fn cells(&self) -> Vec<String>;

    /// The field/value pairs shown for a single record; more than a row may hold.
    fn fields(&self) -> Vec<(&'static str, String)> {
        Self::COLUMNS.iter().copied().zip(self.cells()).collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    pub fn list<V: View>(&self, rows: &[V]) -> Result<(), Failure> {
        if self.json {
            return self.json_line(&rows);
        }
        let mut table = table();
        table.set_header(V::COLUMNS.iter().copied());
        for row in rows {
            table.add_row(row.cells());
        }
        self.write(&table.to_string())
    }

    pub fn record<V: View>(&self, record: &V) -> Result<(), Failure> {
        if self.json {
            return self.json_line(record);
        }
        let mut table = table();
        for (field, value) in record.fields() {
            table.add_row([field.to_owned(), value]);
        }
        self.write(&table.to_string())
    }

    /// A result that is a few counts: the JSON object, or one sentence.
    pub fn outcome<S: Serialize>(&self, value: &S, sentence: &str) -> Result<(), Failure> {
        if self.json {
            self.json_line(value)
        } else {
            self.write(sentence)
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A line for people between tables (a hint, a heading); nothing with `--json`,
    /// whose stdout must stay one JSON document.
    pub fn note(&self, text: &str) -> Result<(), Failure> {
        if self.json { Ok(()) } else { self.write(text) }
    }

    fn json_line<S: Serialize + ?Sized>(&self, value: &S) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::usage(format!("cannot encode JSON: {e}")))?;
        self.write(&text)
    }

    fn write(&self, text: &str) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
            // `tagctl … | head` closing the pipe early is not an error of ours.
            Err(e) if e.kind() != ErrorKind::BrokenPipe => {
                Err(Failure::usage(format!("cannot write to stdout: {e}")))
            }
            _ => Ok(()),
        }
    }
}

fn table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// A UTC time: RFC 3339 in JSON, `YYYY-MM-DD HH:MM:SS` in tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(DateTime<Utc>);

impl Time {
    pub fn from_proto(timestamp: Option<&prost_types::Timestamp>) -> Option<Time> {
        let timestamp = timestamp?;
        let nanos = u32::try_from(timestamp.nanos).ok()?;
        DateTime::from_timestamp(timestamp.seconds, nanos).map(Time)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S"))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// An optional value as a table cell: empty when absent.
pub fn cell<T: fmt::Display>(value: Option<&T>) -> String {
    value.map(ToString::to_string).unwrap_or_default()
}

/// Seconds in the largest whole unit: `30d`, `12h`, `90m`, `45s`.
pub fn duration(seconds: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds != 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// The lower-case suffix of a proto enum name (`VALUE_TYPE_FLAG` → `flag`).
pub fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_unit() {
        assert_eq!(duration(30 * 86_400), "30d");
        assert_eq!(duration(5400), "90m");
        assert_eq!(duration(45), "45s");
    }

    #[test]
    fn times_render_both_ways() {
        let time = Time::from_proto(Some(&prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 123_000,
        }))
        .expect("valid");
        assert_eq!(time.to_string(), "2026-01-01 00:00:00");
        assert_eq!(
            serde_json::to_string(&time).expect("json"),
            "\"2026-01-01T00:00:00.000123Z\""
        );
    }

    #[test]
    fn wide_characters_align() {
        let mut table = table();
        table.set_header(["名称", "x"]);
        table.add_row(["高价值客户", "1"]);
        table.add_row(["ab", "2"]);
        let rendered = table.to_string();
        let display_widths: Vec<usize> = rendered.lines().map(display_width).collect();
        assert!(
            display_widths.windows(2).all(|w| w[0] == w[1]),
            "{rendered}"
        );
    }

    /// CJK ideographs take two columns, box-drawing characters one.
    fn display_width(line: &str) -> usize {
        line.chars()
            .map(|c| {
                if ('\u{4e00}'..='\u{9fff}').contains(&c) {
                    2
                } else {
                    1
                }
            })
            .sum()
    }
}
