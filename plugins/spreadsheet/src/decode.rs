//! Turns CSV bytes of any supported encoding into UTF-8 as a stream, and
//! refuses what is plainly no text before the CSV parser sees it.

use std::io::{self, Read};

use encoding_rs::{CoderResult, Decoder, Encoding, GB18030, UTF_8};

/// How many bytes are looked at to guess the encoding and spot binary files.
const SNIFF_BYTES: usize = 64 << 10;
/// A physical line longer than this stops the import (a binary file or a broken export).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Picks the encoding: a BOM wins, then the option, then UTF-8 if the sample is valid, else GB18030.
pub fn choose(sample: &[u8], option: &str) -> Result<&'static Encoding, String> {
    if let Some((encoding, _)) = Encoding::for_bom(sample) {
        return Ok(encoding);
    }
    if !option.eq_ignore_ascii_case("auto") {
        return Encoding::for_label(option.as_bytes())
            .ok_or_else(|| format!("option `encoding`: unknown encoding `{option}`"));
    }
    match std::str::from_utf8(sample) {
        Ok(_) => Ok(UTF_8),
        // A multi-byte character cut by the sample's end is still UTF-8.
        Err(e) if e.error_len().is_none() => Ok(UTF_8),
        Err(_) => Ok(GB18030),
    }
}

/// Refuses a sample that is no text: NUL bytes, or a ZIP (XLSX) / OLE (XLS) signature.
pub fn check_text(sample: &[u8]) -> Result<(), String> {
    if sample.starts_with(b"PK\x03\x04") {
        return Err(
            "this is a ZIP (XLSX/ODS) file, not CSV: name it .xlsx or pass format=xlsx".to_owned(),
        );
    }
    if sample.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(
            "this is an old Excel (XLS) file, not CSV: name it .xls or pass format=xlsx".to_owned(),
        );
    }
    let utf16 = sample.starts_with(&[0xFF, 0xFE]) || sample.starts_with(&[0xFE, 0xFF]);
    if !utf16 && sample.contains(&0) {
        return Err(
            "not a text file (it contains NUL bytes): a binary file cannot be read as CSV"
                .to_owned(),
        );
    }
    Ok(())
}

/// A `Read` of UTF-8 decoded from `inner` (malformed sequences become U+FFFD,
/// which rows then report).
pub struct DecodeReader<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    eof: bool,
    /// The decoder was flushed (`last = true` returned); it must not be called again.
    flushed: bool,
    line_len: usize,
}

impl<R: Read> DecodeReader<R> {
    /// `sample` holds bytes already read from `inner`'s start.
    pub fn new(inner: R, encoding: &'static Encoding, sample: Vec<u8>) -> Self {
        let end = sample.len();
        let mut input = sample;
        input.resize(end.max(SNIFF_BYTES), 0);
        Self {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            input,
            start: 0,
            end,
            output: vec![0; SNIFF_BYTES * 3 + 16],
            out_start: 0,
            out_end: 0,
            eof: false,
            flushed: false,
            line_len: 0,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        while self.out_start == self.out_end && !self.flushed {
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.start..self.end],
                &mut self.output,
                self.eof,
            );
            self.start += read;
            self.out_start = 0;
            self.out_end = written;
            if self.eof && result == CoderResult::InputEmpty {
                self.flushed = true;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.refill()?;
        let n = buf.len().min(self.out_end - self.out_start);
        let chunk = &self.output[self.out_start..self.out_start + n];
        for &b in chunk {
            self.line_len = if b == b'\n' { 0 } else { self.line_len + 1 };
            if self.line_len > MAX_LINE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a line longer than {} MiB", MAX_LINE_BYTES >> 20),
                ));
            }
        }
        buf[..n].copy_from_slice(chunk);
        self.out_start += n;
        Ok(n)
    }
}

/// Reads up to [`SNIFF_BYTES`] from the start of `reader`.
pub fn sample(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut sample = Vec::with_capacity(SNIFF_BYTES);
    reader.take(SNIFF_BYTES as u64).read_to_end(&mut sample)?;
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], option: &str) -> String {
        let mut reader = bytes;
        let sample = sample(&mut reader).unwrap();
        let encoding = choose(&sample, option).unwrap();
        let mut out = String::new();
        DecodeReader::new(reader, encoding, sample)
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn decodes_utf8_bom_and_gbk() {
        assert_eq!(
            decode("\u{feff}姓名,手机\r\n".as_bytes(), "auto"),
            "姓名,手机\r\n"
        );
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,手机\n张三,1");
        assert_eq!(decode(&gbk, "auto"), "姓名,手机\n张三,1");
        assert_eq!(decode(&gbk, "gbk"), "姓名,手机\n张三,1");
        assert!(decode(&gbk, "utf-8").contains('\u{fffd}'));
    }

    #[test]
    fn refuses_binary_and_zip() {
        assert!(check_text(b"PK\x03\x04rest").unwrap_err().contains("XLSX"));
        assert!(check_text(b"a,b\0c").unwrap_err().contains("NUL"));
        assert!(check_text("姓名,手机".as_bytes()).is_ok());
    }

    #[test]
    fn caps_line_length() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut reader = DecodeReader::new(long.as_slice(), UTF_8, Vec::new());
        let mut out = Vec::new();
        assert!(reader.read_to_end(&mut out).is_err());
    }
}
