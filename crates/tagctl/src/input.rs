//! Reading records from a JSON array or a JSON Lines file (or stdin), remembering
//! where each came from so errors can point at the line.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::exit::Failure;

pub struct Record<T> {
    /// `file.jsonl:12` (line) or `file.json[3]` (array index).
    pub origin: String,
    pub value: T,
}

/// A file whose first non-blank character is `[` is one JSON array; anything else is
/// JSON Lines (blank lines skipped). `-` is stdin.
pub fn read_records<T: DeserializeOwned>(path: &Path) -> Result<Vec<Record<T>>, Failure> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
        ("stdin".to_owned(), text)
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        (path.display().to_string(), text)
    };
    parse_records(&name, &text)
}

pub fn parse_records<T: DeserializeOwned>(
    name: &str,
    text: &str,
) -> Result<Vec<Record<T>>, Failure> {
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| Failure::usage(format!("{name}: {e}")))?;
        return values
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                let origin = format!("{name}[{index}]");
                T::deserialize(value)
                    .map(|value| Record {
                        origin: origin.clone(),
                        value,
                    })
                    .map_err(|e| Failure::usage(format!("{origin}: {e}")))
            })
            .collect();
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let origin = format!("{name}:{}", index + 1);
            serde_json::from_str(line)
                .map(|value| Record {
                    origin: origin.clone(),
                    value,
                })
                .map_err(|e| Failure::usage(format!("{origin}: {e}")))
        })
        .collect()
}

/// The `entries[i]` (and `.assignments[j]`) a server error message names, if any.
pub fn entry_path(message: &str) -> Option<(usize, Option<usize>)> {
    let rest = &message[message.find("entries[")? + "entries[".len()..];
    let (entry, rest) = rest.split_once(']')?;
    let entry = entry.parse().ok()?;
    let assignment = rest
        .strip_prefix(".assignments[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(index, _)| index.parse().ok());
    Some((entry, assignment))
}

/// The index of the `{list}[i]` a server error message names first, if any
/// (`purchases[3].items[0].quantity: …` → 3 for `purchases`).
pub fn list_index(message: &str, list: &str) -> Option<usize> {
    let start = format!("{list}[");
    let rest = &message[message.find(&start)? + start.len()..];
    rest.split_once(']')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Row {
        n: u32,
    }

    #[test]
    fn json_lines_keep_line_numbers() {
        let rows: Vec<Record<Row>> =
            parse_records("f.jsonl", "{\"n\":1}\n\n{\"n\":2}\n").expect("parse");
        let seen: Vec<_> = rows
            .iter()
            .map(|r| (r.origin.as_str(), r.value.n))
            .collect();
        assert_eq!(seen, [("f.jsonl:1", 1), ("f.jsonl:3", 2)]);
        let bad = parse_records::<Row>("f.jsonl", "{\"n\":1}\n{\"m\":2}\n")
            .err()
            .expect("error");
        assert!(
            bad.to_string().starts_with("f.jsonl:2: unknown field `m`"),
            "{bad}"
        );
    }

    #[test]
    fn arrays_are_indexed() {
        let rows: Vec<Record<Row>> =
            parse_records("f.json", " [{\"n\":1},{\"n\":2}]").expect("parse");
        assert_eq!(rows[1].origin, "f.json[1]");
        let bad = parse_records::<Row>("f.json", "[{\"n\":1},{\"n\":\"x\"}]")
            .err()
            .expect("error");
        assert!(bad.to_string().starts_with("f.json[1]: "), "{bad}");
    }

    #[test]
    fn server_paths_are_found() {
        assert_eq!(
            entry_path("entries[3].customer.phones[0]: bad"),
            Some((3, None))
        );
        assert_eq!(
            entry_path("entries[12].assignments[4].value: \"x\""),
            Some((12, Some(4)))
        );
        assert_eq!(entry_path("tag not found"), None);
        assert_eq!(
            list_index("purchases[7].items[0].quantity: bad", "purchases"),
            Some(7)
        );
        assert_eq!(
            list_index("purchases: must not be empty", "purchases"),
            None
        );
    }
}
