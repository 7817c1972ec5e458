//! The options of one import as the plugin sees them, with typed accessors.

use std::collections::BTreeMap;

use crate::Error;

/// A string map of options; unknown keys are the plugin's to refuse or ignore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options(BTreeMap<String, String>);

impl Options {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }

    /// The value, if set and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    /// `true`/`false`/`yes`/`no`/`1`/`0`, else an error naming the option.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, Error> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "yes" | "1" | "on") => Ok(true),
            Some("false" | "no" | "0" | "off") => Ok(false),
            Some(other) => Err(Error::BadOption {
                name: name.to_owned(),
                reason: format!("expected true or false, got `{other}`"),
            }),
        }
    }

    /// A positive integer option.
    pub fn number(&self, name: &str, default: u64) -> Result<u64, Error> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| Error::BadOption {
                name: name.to_owned(),
                reason: format!("expected a whole number, got `{v}`"),
            }),
        }
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Keys starting with `prefix`, with the prefix removed (e.g. `map.姓名` → `姓名`).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn typed_accessors() {
        let o = opts(&[
            ("a", " yes "),
            ("n", "12"),
            ("blank", "  "),
            ("map.姓名", "name"),
        ]);
        assert!(o.flag("a", false).unwrap());
        assert!(o.flag("missing", true).unwrap());
        assert_eq!(o.number("n", 1).unwrap(), 12);
        assert!(o.number("a", 1).is_err());
        assert_eq!(o.get("blank"), None);
        assert_eq!(
            o.with_prefix("map.").collect::<Vec<_>>(),
            vec![("姓名", "name")]
        );
    }
}
