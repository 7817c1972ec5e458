//! Line reading with a length cap, for line-based plugins: a 10 MB line (or a
//! binary file without newlines) costs the cap in memory, not the line.

use std::io::{BufRead, ErrorKind};

/// One line, without its `\n` / `\r\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(Vec<u8>),
    /// Longer than the cap; its bytes were skipped. `len` is its full length.
    TooLong {
        len: usize,
    },
}

/// Numbered lines (1-based) of a reader, each at most `max_len` bytes kept.
#[derive(Debug)]
pub struct Lines<R> {
    reader: R,
    max_len: usize,
    line_no: u64,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, max_len: usize) -> Self {
        Self {
            reader,
            max_len,
            line_no: 0,
            done: false,
        }
    }

    /// The number of the last line returned (0 before the first).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    fn read_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut kept = Vec::new();
        let mut len = 0_usize;
        let mut saw_any = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            saw_any = true;
            let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(at) => (&buf[..at], true),
                None => (buf, false),
            };
            if len + chunk.len() <= self.max_len {
                kept.extend_from_slice(chunk);
            } else {
                kept = Vec::new();
            }
            len += chunk.len();
            let consumed = chunk.len() + usize::from(found);
            self.reader.consume(consumed);
            if found {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        if len > self.max_len {
            return Ok(Some(Line::TooLong { len }));
        }
        if kept.last() == Some(&b'\r') {
            kept.pop();
        }
        Ok(Some(Line::Text(kept)))
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = std::io::Result<(u64, Line)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_line() {
            Ok(Some(line)) => {
                self.line_no += 1;
                Some(Ok((self.line_no, line)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// `bytes` without a leading UTF-8 byte order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(u64, Line)> {
        // A tiny buffer exercises lines spanning refills.
        Lines::new(std::io::BufReader::with_capacity(3, input), max)
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn splits_lf_and_crlf_and_caps_length() {
        let got = lines(b"ab\r\ncdef\n\nlas", 3);
        assert_eq!(
            got,
            vec![
                (1, Line::Text(b"ab".to_vec())),
                (2, Line::TooLong { len: 4 }),
                (3, Line::Text(Vec::new())),
                (4, Line::Text(b"las".to_vec())),
            ]
        );
        assert!(lines(b"", 10).is_empty());
        assert_eq!(lines(b"x\n", 10), vec![(1, Line::Text(b"x".to_vec()))]);
    }

    #[test]
    fn strips_bom() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBFa"), b"a");
        assert_eq!(strip_bom(b"a"), b"a");
    }
}
