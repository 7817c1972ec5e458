//! Streams cards out of a file: physical lines → unfolded content lines →
//! cards → records, in constant memory whatever the file's size.

use std::{collections::VecDeque, io::BufRead};

use encoding_rs::Encoding;
use tagd_plugin_api::{
    BoxError, ImportRecord, Options, RowError,
    lines::{Line, Lines, strip_bom},
};

use crate::{
    card::Card,
    content::{is_quoted_printable, parse},
};

/// One unfolded content line may not exceed this (a photo inline is ~100 KB).
const MAX_LINE_BYTES: usize = 8 << 20;

/// One unfolded line: its first physical line number and bytes, or its length when too long.
type Logical = (u64, Result<Vec<u8>, usize>);

/// An iterator of records (or row errors) from a vCard stream.
#[derive(Debug)]
pub struct VcardReader<R> {
    lines: Lines<R>,
    pushed_back: Option<(u64, Line)>,
    encoding: &'static Encoding,
    tag_category: String,
    card: Option<Card>,
    out: VecDeque<Result<ImportRecord, RowError>>,
    done: bool,
}

impl<R: BufRead> VcardReader<R> {
    /// Checks that the stream starts like a vCard (after blank lines and a BOM).
    pub fn new(reader: R, options: &Options) -> Result<Self, BoxError> {
        let label = options.get_or("encoding", "utf-8");
        let encoding = Encoding::for_label(label.as_bytes())
            .ok_or_else(|| format!("option `encoding`: unknown encoding `{label}`"))?;
        let mut this = Self {
            lines: Lines::new(reader, MAX_LINE_BYTES),
            pushed_back: None,
            encoding,
            tag_category: options.get_or("tag_category", "").to_owned(),
            card: None,
            out: VecDeque::new(),
            done: false,
        };
        loop {
            match this
                .lines
                .next()
                .transpose()
                .map_err(|e| format!("cannot read the file: {e}"))?
            {
                None => return Err("the file is empty: no vCard in it".into()),
                Some((_, Line::Text(t))) if strip_bom(&t).iter().all(u8::is_ascii_whitespace) => {}
                Some((n, Line::Text(t)))
                    if strip_bom(&t)
                        .trim_ascii()
                        .eq_ignore_ascii_case(b"BEGIN:VCARD") =>
                {
                    this.pushed_back = Some((n, Line::Text(strip_bom(&t).to_vec())));
                    return Ok(this);
                }
                Some((n, line)) => {
                    let shown = match line {
                        Line::Text(t) => {
                            tagd_plugin_api::truncate_raw(&String::from_utf8_lossy(&t))
                        }
                        Line::TooLong { len } => format!("a line of {len} bytes"),
                    };
                    return Err(format!(
                        "not a vCard file: line {n} is `{shown}`, expected BEGIN:VCARD"
                    )
                    .into());
                }
            }
        }
    }

    fn physical(&mut self) -> Option<std::io::Result<(u64, Line)>> {
        self.pushed_back
            .take()
            .map(Ok)
            .or_else(|| self.lines.next())
    }

    /// The next unfolded line: continuation lines (leading space or tab) and
    /// quoted-printable soft breaks (trailing `=`) are joined.
    fn logical(&mut self) -> Option<std::io::Result<Logical>> {
        let (number, first) = match self.physical()? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        let mut text = match first {
            Line::Text(t) => Ok(t),
            Line::TooLong { len } => Err(len),
        };
        loop {
            let next = match self.physical() {
                None => break,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(line)) => line,
            };
            let soft_break = matches!(&text, Ok(t) if t.ends_with(b"=") && is_quoted_printable(t));
            let (line_no, line) = next;
            let more = match line {
                Line::Text(more) if more.starts_with(b" ") || more.starts_with(b"\t") => {
                    more[1..].to_vec()
                }
                Line::Text(more) if soft_break => more.trim_ascii_start().to_vec(),
                // Over-long lines cannot be seen to continue: each stands alone.
                other => {
                    self.pushed_back = Some((line_no, other));
                    break;
                }
            };
            text = match text {
                Ok(mut t) if t.len() + more.len() <= MAX_LINE_BYTES => {
                    if soft_break {
                        t.pop();
                    }
                    t.extend_from_slice(&more);
                    Ok(t)
                }
                Ok(t) => Err(t.len() + more.len()),
                Err(len) => Err(len + more.len()),
            };
        }
        Some(Ok((number, text)))
    }

    fn handle(&mut self, number: u64, text: Result<Vec<u8>, usize>) {
        let bytes = match text {
            Ok(bytes) => bytes,
            Err(len) => {
                let error = RowError::new(
                    number,
                    "",
                    format!("line of {len} bytes exceeds the limit of {MAX_LINE_BYTES}"),
                    "",
                );
                match &mut self.card {
                    Some(card) => card.errors.push(error),
                    None => self.out.push_back(Err(error)),
                }
                return;
            }
        };
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        if trimmed.eq_ignore_ascii_case(b"BEGIN:VCARD") {
            if let Some(card) = self.card.replace(Card::new(number)) {
                self.out.push_back(Err(RowError::new(
                    card.start_line,
                    "",
                    "card has no END:VCARD",
                    "",
                )));
            }
            return;
        }
        if trimmed.eq_ignore_ascii_case(b"END:VCARD") {
            match self.card.take() {
                Some(card) => self.finish(card),
                None => self.out.push_back(Err(RowError::new(
                    number,
                    "",
                    "END:VCARD without BEGIN:VCARD",
                    "",
                ))),
            }
            return;
        }
        let Some(card) = &mut self.card else {
            let raw = String::from_utf8_lossy(trimmed);
            self.out.push_back(Err(RowError::new(
                number,
                "",
                "text outside BEGIN:VCARD … END:VCARD",
                &raw,
            )));
            return;
        };
        match parse(&bytes, self.encoding) {
            Ok(property) => card.add(&property, &self.tag_category),
            Err(reason) => card.errors.push(RowError::new(
                number,
                "",
                reason,
                &String::from_utf8_lossy(&bytes),
            )),
        }
    }

    /// A card with any bad line is reported, not imported half-read.
    fn finish(&mut self, mut card: Card) {
        if card.errors.is_empty() {
            self.out.push_back(card.finish());
        } else {
            self.out.extend(card.errors.drain(..).map(Err));
        }
    }
}

impl<R: BufRead> Iterator for VcardReader<R> {
    type Item = Result<ImportRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.out.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.logical() {
                Some(Ok((number, text))) => self.handle(number, text),
                Some(Err(e)) => {
                    self.done = true;
                    self.card = None;
                    self.out.push_back(Err(RowError::new(
                        self.lines.line_no(),
                        "",
                        format!("read error, import stopped: {e}"),
                        "",
                    )));
                }
                None => {
                    self.done = true;
                    if let Some(card) = self.card.take() {
                        self.out.push_back(Err(RowError::new(
                            card.start_line,
                            "",
                            "card has no END:VCARD (truncated file?)",
                            "",
                        )));
                    }
                }
            }
        }
    }
}
