//! Splits a JSON text into top-level elements without parsing them: the
//! elements of a top-level array, or the lines of a JSON Lines file. Memory is
//! one element (capped), not the file.

use std::io::BufRead;

use tagd_plugin_api::lines::{Line, Lines};

/// One element may not exceed this.
pub const MAX_ELEMENT_BYTES: usize = 16 << 20;

/// A raw element and its 1-based position (array index or line number).
#[derive(Debug, PartialEq, Eq)]
pub enum Element {
    Json(u64, Vec<u8>),
    /// Unusable: too long, truncated, or the stream broke.
    Bad(u64, String),
}

/// An element's bytes (or its length when over the cap) and the delimiter after it.
type Scanned = (Result<Vec<u8>, usize>, Option<u8>);

/// Elements of a top-level JSON array; the opening `[` is already consumed.
#[derive(Debug)]
pub struct ArrayElements<R> {
    reader: R,
    index: u64,
    done: bool,
}

impl<R: BufRead> ArrayElements<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            index: 0,
            done: false,
        }
    }

    /// Reads up to a `,` or `]` at depth 0. Returns the bytes (or their
    /// length when over the cap) and the delimiter (`None` at end of input).
    fn scan(&mut self) -> std::io::Result<Scanned> {
        let mut bytes = Vec::new();
        let mut len = 0;
        let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok((
                    if len > MAX_ELEMENT_BYTES {
                        Err(len)
                    } else {
                        Ok(bytes)
                    },
                    None,
                ));
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if in_string {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth > 0 => depth -= 1,
                    b',' | b']' if depth == 0 => {
                        end = Some((i, b));
                        break;
                    }
                    _ => {}
                }
            }
            let take = end.map_or(buf.len(), |(i, _)| i);
            if len + take <= MAX_ELEMENT_BYTES {
                bytes.extend_from_slice(&buf[..take]);
            } else {
                bytes = Vec::new();
            }
            len += take;
            let consumed = end.map_or(take, |(i, _)| i + 1);
            self.reader.consume(consumed);
            if let Some((_, delimiter)) = end {
                return Ok((
                    if len > MAX_ELEMENT_BYTES {
                        Err(len)
                    } else {
                        Ok(bytes)
                    },
                    Some(delimiter),
                ));
            }
        }
    }
}

impl<R: BufRead> Iterator for ArrayElements<R> {
    type Item = Element;

    fn next(&mut self) -> Option<Element> {
        if self.done {
            return None;
        }
        self.index += 1;
        let index = self.index;
        let (bytes, delimiter) = match self.scan() {
            Ok(scanned) => scanned,
            Err(e) => {
                self.done = true;
                return Some(Element::Bad(
                    index,
                    format!("read error, import stopped: {e}"),
                ));
            }
        };
        match delimiter {
            Some(b']') => self.done = true,
            Some(_) => {}
            None => {
                self.done = true;
                let empty = matches!(&bytes, Ok(b) if b.trim_ascii().is_empty());
                return (!empty).then(|| {
                    Element::Bad(index, "truncated file: the array is not closed".to_owned())
                });
            }
        }
        match bytes {
            // `[]` and a trailing comma leave an empty element: nothing to report.
            Ok(b) if b.trim_ascii().is_empty() => self.next(),
            Ok(b) => Some(Element::Json(index, b)),
            Err(len) => Some(Element::Bad(
                index,
                format!("element of {len} bytes exceeds the limit of {MAX_ELEMENT_BYTES}"),
            )),
        }
    }
}

/// The lines of a JSON Lines file, blank lines skipped.
#[derive(Debug)]
pub struct LineElements<R> {
    lines: Lines<R>,
}

impl<R: BufRead> LineElements<R> {
    pub fn new(reader: R) -> Self {
        Self {
            lines: Lines::new(reader, MAX_ELEMENT_BYTES),
        }
    }
}

impl<R: BufRead> Iterator for LineElements<R> {
    type Item = Element;

    fn next(&mut self) -> Option<Element> {
        loop {
            return match self.lines.next()? {
                Ok((_, Line::Text(t))) if t.trim_ascii().is_empty() => continue,
                Ok((n, Line::Text(t))) => Some(Element::Json(n, t)),
                Ok((n, Line::TooLong { len })) => Some(Element::Bad(
                    n,
                    format!("line of {len} bytes exceeds the limit of {MAX_ELEMENT_BYTES}"),
                )),
                Err(e) => Some(Element::Bad(
                    self.lines.line_no() + 1,
                    format!("read error, import stopped: {e}"),
                )),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(text: &str) -> Vec<Element> {
        let text = text.strip_prefix('[').unwrap();
        ArrayElements::new(std::io::BufReader::with_capacity(4, text.as_bytes())).collect()
    }

    fn json(i: u64, s: &str) -> Element {
        Element::Json(i, s.as_bytes().to_vec())
    }

    #[test]
    fn splits_arrays_respecting_strings_and_nesting() {
        assert_eq!(
            array(r#"[{"a":"x,]}\"",  "b":[1,2]}, {"c":{}} ,3]"#),
            vec![
                json(1, r#"{"a":"x,]}\"",  "b":[1,2]}"#),
                json(2, r#" {"c":{}} "#),
                json(3, "3")
            ]
        );
        assert!(array("[]").is_empty());
        assert_eq!(array("[1,]"), vec![json(1, "1")]);
        assert_eq!(
            array(r#"[{"a":1}, {"b":"#),
            vec![
                json(1, r#"{"a":1}"#),
                Element::Bad(2, "truncated file: the array is not closed".to_owned())
            ]
        );
    }

    #[test]
    fn lines_skip_blanks() {
        let got: Vec<_> = LineElements::new("{}\n\n {\"a\":1}\r\n".as_bytes()).collect();
        assert_eq!(got, vec![json(1, "{}"), json(3, r#" {"a":1}"#)]);
    }
}
