//! Streams records out of a WeCom export: detects a JSON array or JSON Lines,
//! parses one element at a time and maps it.

use std::{
    collections::VecDeque,
    io::{BufRead, Read},
};

use tagd_plugin_api::{BoxError, ImportRecord, Options, RowError, truncate_raw};

use crate::{
    contact::{Element as Response, Mapping, TagLibrary},
    elements::{ArrayElements, Element, LineElements},
};

/// A tag library file is read whole; it is small (tag groups, not customers).
const MAX_TAG_LIBRARY_BYTES: u64 = 64 << 20;

/// An iterator of records (or row errors) from a WeCom export.
pub struct WecomReader {
    elements: Box<dyn Iterator<Item = Element>>,
    mapping: Mapping,
    out: VecDeque<Result<ImportRecord, RowError>>,
}

impl std::fmt::Debug for WecomReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomReader")
            .field("pending", &self.out.len())
            .finish_non_exhaustive()
    }
}

fn load_tag_library(path: &str) -> Result<TagLibrary, BoxError> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("option `tag_library`: cannot open {path}: {e}"))?;
    let mut text = Vec::new();
    file.take(MAX_TAG_LIBRARY_BYTES).read_to_end(&mut text)?;
    serde_json::from_slice(&text).map_err(|e| {
        format!("option `tag_library`: {path} is not a get_corp_tag_list response: {e}").into()
    })
}

impl WecomReader {
    pub fn new<R: BufRead + 'static>(mut reader: R, options: &Options) -> Result<Self, BoxError> {
        let tag_names = match options.get("tag_library") {
            Some(path) => load_tag_library(path)?.names(),
            None => Default::default(),
        };
        let mapping = Mapping {
            tag_names,
            personal_tags: options.flag("personal_tags", true)?,
            source_tags: options.flag("source_tags", true)?,
        };
        let first = first_significant_byte(&mut reader)?;
        let elements: Box<dyn Iterator<Item = Element>> = match first {
            None => return Err("the file is empty: no WeCom contacts in it".into()),
            Some(b'[') => {
                reader.consume(1);
                Box::new(ArrayElements::new(reader))
            }
            Some(b'{') => {
                let mut lines = LineElements::new(reader).peekable();
                if let Some(Element::Json(_, line)) = lines.peek()
                    && line.trim_ascii() == b"{"
                {
                    return Err("a pretty-printed JSON object: write one object per line (JSON Lines) or wrap them in a JSON array".into());
                }
                Box::new(lines)
            }
            Some(other) => {
                return Err(format!(
                    "not a WeCom export: expected a JSON array or JSON Lines of externalcontact/get responses, found byte 0x{other:02x}"
                )
                .into());
            }
        };
        Ok(Self {
            elements,
            mapping,
            out: VecDeque::new(),
        })
    }

    fn handle(&mut self, position: u64, bytes: &[u8]) {
        let response: Response = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => {
                let raw = truncate_raw(&String::from_utf8_lossy(bytes));
                self.out.push_back(Err(RowError::new(
                    position,
                    "",
                    format!("not a WeCom contact object: {e}"),
                    &raw,
                )));
                return;
            }
        };
        self.response(position, response);
    }

    fn response(&mut self, position: u64, response: Response) {
        if response.errcode != 0 {
            let reason = format!("WeCom error {}: {}", response.errcode, response.errmsg);
            self.out
                .push_back(Err(RowError::new(position, "errcode", reason, "")));
            return;
        }
        if let Some(list) = response.external_contact_list {
            // A whole batch/get_by_user response: each item keeps the element's position.
            for item in list {
                self.response(position, item);
            }
            return;
        }
        let Some(contact) = response.external_contact else {
            self.out.push_back(Err(RowError::new(
                position,
                "external_contact",
                "no external_contact in this object",
                "",
            )));
            return;
        };
        let mut followers = response.follow_user;
        followers.extend(response.follow_info);
        let (record, warnings) = self.mapping.record(position, contact, followers);
        self.out.push_back(record);
        self.out.extend(warnings.into_iter().map(Err));
    }
}

/// Skips whitespace and a UTF-8 BOM; returns the next byte without consuming it.
fn first_significant_byte(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    let mut at_start = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if at_start && buf.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
            at_start = false;
            continue;
        }
        at_start = false;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let byte = buf[i];
                reader.consume(i);
                return Ok(Some(byte));
            }
            None => {
                let len = buf.len();
                reader.consume(len);
            }
        }
    }
}

impl Iterator for WecomReader {
    type Item = Result<ImportRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.out.pop_front() {
                return Some(item);
            }
            match self.elements.next()? {
                Element::Json(position, bytes) => self.handle(position, &bytes),
                Element::Bad(position, reason) => self
                    .out
                    .push_back(Err(RowError::new(position, "", reason, ""))),
            }
        }
    }
}
