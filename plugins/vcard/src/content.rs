//! One content line (`group.NAME;PARAM=a,b:value`): splitting, parameters,
//! quoted-printable, charsets and the text escapes of RFC 6350 §3.4.

use encoding_rs::Encoding;

/// A decoded property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Upper case, without its group.
    pub name: String,
    /// Parameter names upper case; bare 2.1 parameters become TYPE or ENCODING.
    pub params: Vec<(String, String)>,
    /// The value after quoted-printable and charset decoding, escapes still in.
    pub value: String,
}

impl Property {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether TYPE mentions `kind` (TYPE=HOME,WORK or TYPE="home,work").
    pub fn has_type(&self, kind: &str) -> bool {
        self.params
            .iter()
            .filter(|(n, _)| n == "TYPE")
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim_matches('"').eq_ignore_ascii_case(kind))
    }
}

/// Index of the first `:` outside double quotes: the name/parameters end there.
fn value_start(line: &[u8]) -> Option<usize> {
    let mut quoted = false;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Whether a raw line's parameters ask for quoted-printable (for soft line breaks).
pub fn is_quoted_printable(line: &[u8]) -> bool {
    let head = value_start(line).map_or(line, |at| &line[..at]);
    head.to_ascii_uppercase()
        .windows(16)
        .any(|w| w == b"QUOTED-PRINTABLE")
}

fn split_params(head: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in head.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&head[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&head[start..]);
    parts
}

/// Parses one unfolded line; `Err` says why it is no property.
pub fn parse(line: &[u8], file_encoding: &'static Encoding) -> Result<Property, String> {
    let at = value_start(line).ok_or("no `:` between name and value")?;
    let head =
        std::str::from_utf8(&line[..at]).map_err(|_| "property name is not text".to_owned())?;
    let mut parts = split_params(head).into_iter();
    let full_name = parts.next().unwrap_or_default().trim();
    let name = full_name
        .rsplit('.')
        .next()
        .unwrap_or(full_name)
        .to_ascii_uppercase();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("bad property name `{full_name}`"));
    }
    let params: Vec<(String, String)> = parts
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (
                n.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_owned(),
            ),
            None if p.eq_ignore_ascii_case("QUOTED-PRINTABLE")
                || p.eq_ignore_ascii_case("BASE64") =>
            {
                ("ENCODING".to_owned(), p.to_ascii_uppercase())
            }
            None => ("TYPE".to_owned(), p.trim().to_owned()),
        })
        .collect();
    let raw = &line[at + 1..];
    let encoding = params
        .iter()
        .find(|(n, _)| n == "ENCODING")
        .map(|(_, v)| v.to_ascii_uppercase());
    let bytes = match encoding.as_deref() {
        Some("QUOTED-PRINTABLE") => decode_quoted_printable(raw),
        // Photos and keys: nothing a customer record keeps.
        Some("B" | "BASE64") => Vec::new(),
        _ => raw.to_vec(),
    };
    let charset = match params.iter().find(|(n, _)| n == "CHARSET") {
        Some((_, label)) => Encoding::for_label(label.as_bytes())
            .ok_or_else(|| format!("unknown CHARSET `{label}`"))?,
        None => file_encoding,
    };
    let (value, _, had_errors) = charset.decode(&bytes);
    if had_errors {
        return Err(format!(
            "{name} is not valid {} (set the `encoding` option or CHARSET)",
            charset.name()
        ));
    }
    Ok(Property {
        name,
        params,
        value: value.into_owned(),
    })
}

/// `=E5=BC=A0` → bytes; a malformed escape is kept literally.
pub fn decode_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'=' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
            // A soft line break left in by unfolding: `=` at the end.
            if i + 1 == raw.len() {
                break;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// Splits on an unescaped `sep` and unescapes each part (`\n`, `\,`, `\;`, `\\`).
pub fn split_escaped(value: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        let Some(current) = parts.last_mut() else {
            break;
        };
        match c {
            '\\' => match chars.next() {
                Some('n' | 'N') => current.push('\n'),
                Some(other) => current.push(other),
                None => {}
            },
            c if c == sep => parts.push(String::new()),
            c => current.push(c),
        }
    }
    parts
}

/// The whole value unescaped.
pub fn unescape(value: &str) -> String {
    split_escaped(value, '\u{0}').concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_group_params_and_quoted_colons() {
        let p = parse(
            b"item1.TEL;TYPE=\"work,voice\";pref=1:+86 138",
            encoding_rs::UTF_8,
        )
        .unwrap();
        assert_eq!(p.name, "TEL");
        assert!(p.has_type("voice"));
        assert_eq!(p.param("PREF"), Some("1"));
        assert_eq!(p.value, "+86 138");
        let p = parse(b"X-A;LABEL=\"a:b\":v", encoding_rs::UTF_8).unwrap();
        assert_eq!(p.value, "v");
    }

    #[test]
    fn decodes_quoted_printable_with_charset() {
        let p = parse(
            b"FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E5=BC=A0=E4=B8=89",
            encoding_rs::UTF_8,
        )
        .unwrap();
        assert_eq!(p.value, "张三");
        let p = parse(
            b"FN;CHARSET=GBK;QUOTED-PRINTABLE:=D5=C5=C8=FD",
            encoding_rs::UTF_8,
        )
        .unwrap();
        assert_eq!(p.value, "张三");
        assert_eq!(decode_quoted_printable(b"a=3Db=ZZ="), b"a=b=ZZ");
    }

    #[test]
    fn refuses_wrong_encoding_and_garbage() {
        assert!(
            parse(b"FN:\xD5\xC5", encoding_rs::UTF_8)
                .unwrap_err()
                .contains("not valid UTF-8")
        );
        assert_eq!(
            parse(b"FN:\xD5\xC5\xC8\xFD", encoding_rs::GBK)
                .unwrap()
                .value,
            "张三"
        );
        assert!(parse(b"no colon here", encoding_rs::UTF_8).is_err());
        assert!(parse(b"B@D:x", encoding_rs::UTF_8).is_err());
    }

    #[test]
    fn splits_structured_values() {
        assert_eq!(
            split_escaped(r"a\;b;c\,d;\\;e\nf", ';'),
            vec!["a;b", "c,d", "\\", "e\nf"]
        );
        assert_eq!(split_escaped("x,y", ','), vec!["x", "y"]);
        assert_eq!(unescape(r"a\,b\;c"), "a,b;c");
    }
}
