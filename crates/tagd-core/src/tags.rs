//! Tag value types and the check every assigned value passes: a value is
//! validated against its tag's type and stored in one canonical form.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};

use crate::error::{DomainError, DomainResult};
use crate::text;

/// The longest TEXT value and the longest enum value, in characters.
pub const MAX_VALUE_CHARS: usize = 1000;
/// The most values an ENUM tag may list.
pub const MAX_ENUM_VALUES: usize = 200;
/// The longest description of a category or tag, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// What kind of value an assignment of a tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Flag,
    Enum,
    Number,
    Text,
    Bool,
    Date,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Flag => "flag",
            ValueType::Enum => "enum",
            ValueType::Number => "number",
            ValueType::Text => "text",
            ValueType::Bool => "bool",
            ValueType::Date => "date",
        }
    }
}

impl FromStr for ValueType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "flag" => ValueType::Flag,
            "enum" => ValueType::Enum,
            "number" => ValueType::Number,
            "text" => ValueType::Text,
            "bool" => ValueType::Bool,
            "date" => ValueType::Date,
            other => return Err(format!("unknown value type {other:?}")),
        })
    }
}

/// A tag category as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub description: String,
    pub exclusive: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A tag as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub id: String,
    pub category_id: String,
    pub name: String,
    pub description: String,
    pub value_type: ValueType,
    pub enum_values: Vec<String>,
    /// Seconds an assignment lasts when made without its own expiry.
    pub default_validity_secs: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Tag {
    /// Checks a raw value against this tag (see [`check_value`]).
    pub fn check_value(&self, field: &str, raw: &str) -> DomainResult<Option<String>> {
        check_value(field, self.value_type, &self.enum_values, raw)
    }
}

/// A default validity must be positive and at most 100 years.
pub fn default_validity(field: &str, secs: Option<i64>) -> DomainResult<Option<i64>> {
    const MAX_SECS: i64 = 100 * 366 * 24 * 3600;
    match secs {
        Some(secs) if secs <= 0 || secs > MAX_SECS => Err(DomainError::invalid(
            field,
            format!("must be between 1 second and 100 years, got {secs} seconds"),
        )),
        other => Ok(other),
    }
}

/// Validates the allowed values of a tag: required (and non-empty, unique) for
/// ENUM tags, forbidden for the others.
pub fn enum_values(
    field: &str,
    value_type: ValueType,
    raw: &[String],
) -> DomainResult<Vec<String>> {
    if value_type != ValueType::Enum {
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        return Err(DomainError::invalid(
            field,
            format!(
                "only enum tags have enum values; this tag is {}",
                value_type.as_str()
            ),
        ));
    }
    if raw.is_empty() {
        return Err(DomainError::invalid(
            field,
            "an enum tag needs at least one value",
        ));
    }
    if raw.len() > MAX_ENUM_VALUES {
        return Err(DomainError::invalid(
            field,
            format!("has {} values; the limit is {MAX_ENUM_VALUES}", raw.len()),
        ));
    }
    let mut values: Vec<String> = Vec::with_capacity(raw.len());
    for (index, value) in raw.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let value = text::required_name(&item_field, value)?;
        if values
            .iter()
            .any(|seen| text::key(seen) == text::key(&value))
        {
            return Err(DomainError::invalid(
                item_field,
                format!("{value:?} is listed twice"),
            ));
        }
        values.push(value);
    }
    Ok(values)
}

/// Checks `raw` against a tag's type and returns the canonical stored form
/// (`None` for a flag). `field` names the value in errors.
pub fn check_value(
    field: &str,
    value_type: ValueType,
    allowed: &[String],
    raw: &str,
) -> DomainResult<Option<String>> {
    let value = text::normalize(raw);
    let canonical = match value_type {
        ValueType::Flag if value.is_empty() => return Ok(None),
        ValueType::Flag => return Err(DomainError::invalid(field, "a flag tag takes no value")),
        _ if value.is_empty() => {
            return Err(DomainError::invalid(
                field,
                format!("a {} tag needs a value", value_type.as_str()),
            ));
        }
        ValueType::Enum => allowed
            .iter()
            .find(|candidate| text::key(candidate) == text::key(&value))
            .cloned()
            .ok_or_else(|| {
                DomainError::invalid(
                    field,
                    format!(
                        "{value:?} is not one of the allowed values: {}",
                        allowed.join(", ")
                    ),
                )
            })?,
        ValueType::Number => canonical_number(&value)
            .ok_or_else(|| DomainError::invalid(field, format!("{value:?} is not a number")))?,
        ValueType::Text => text::free_text(field, raw, MAX_VALUE_CHARS)?,
        ValueType::Bool => canonical_bool(&value)
            .ok_or_else(|| {
                DomainError::invalid(field, format!("{value:?} is not a boolean (true/false)"))
            })?
            .to_owned(),
        ValueType::Date => NaiveDate::parse_from_str(&value, "%Y-%m-%d")
            .map_err(|_| {
                DomainError::invalid(field, format!("{value:?} is not a date (YYYY-MM-DD)"))
            })?
            .format("%Y-%m-%d")
            .to_string(),
    };
    Ok(Some(canonical))
}

/// A finite decimal number in its shortest form: "05000.0" → "5000", "1e3" → "1000".
fn canonical_number(value: &str) -> Option<String> {
    let number: f64 = value.replace(',', "").parse().ok()?;
    if !number.is_finite() || value.eq_ignore_ascii_case("nan") {
        return None;
    }
    Some(if number == 0.0 {
        "0".to_owned()
    } else {
        format!("{number}")
    })
}

fn canonical_bool(value: &str) -> Option<&'static str> {
    match value.to_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "是" | "真" => Some("true"),
        "false" | "0" | "no" | "n" | "否" | "假" => Some("false"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<String> {
        ["高价值", "中价值", "低价值"].map(String::from).to_vec()
    }

    #[test]
    fn flag_takes_no_value() {
        assert_eq!(check_value("v", ValueType::Flag, &[], "").unwrap(), None);
        assert_eq!(check_value("v", ValueType::Flag, &[], "  ").unwrap(), None);
        assert!(check_value("v", ValueType::Flag, &[], "x").is_err());
    }

    #[test]
    fn numbers_are_canonical() {
        let check = |raw| check_value("v", ValueType::Number, &[], raw);
        assert_eq!(check("5000").unwrap().as_deref(), Some("5000"));
        assert_eq!(check(" 05000.50 ").unwrap().as_deref(), Some("5000.5"));
        assert_eq!(check("１２").unwrap().as_deref(), Some("12"));
        assert_eq!(check("-0").unwrap().as_deref(), Some("0"));
        assert_eq!(check("1,200").unwrap().as_deref(), Some("1200"));
        let err = check("abc").unwrap_err();
        assert_eq!(err, DomainError::invalid("v", "\"abc\" is not a number"));
        assert!(check("inf").is_err());
        assert!(check("NaN").is_err());
        assert!(check("").is_err());
    }

    #[test]
    fn enum_values_must_be_listed() {
        let allowed = tiers();
        assert_eq!(
            check_value("v", ValueType::Enum, &allowed, "高价值")
                .unwrap()
                .as_deref(),
            Some("高价值")
        );
        let err = check_value("v", ValueType::Enum, &allowed, "超高价值").unwrap_err();
        assert!(err.to_string().contains("not one of the allowed values"));
    }

    #[test]
    fn bools_and_dates() {
        assert_eq!(
            check_value("v", ValueType::Bool, &[], "是")
                .unwrap()
                .as_deref(),
            Some("true")
        );
        assert_eq!(
            check_value("v", ValueType::Bool, &[], "FALSE")
                .unwrap()
                .as_deref(),
            Some("false")
        );
        assert!(check_value("v", ValueType::Bool, &[], "maybe").is_err());
        assert_eq!(
            check_value("v", ValueType::Date, &[], "2041-02-28")
                .unwrap()
                .as_deref(),
            Some("2041-02-28")
        );
        assert!(check_value("v", ValueType::Date, &[], "2041-02-30").is_err());
    }

    #[test]
    fn text_is_bounded() {
        assert_eq!(
            check_value("v", ValueType::Text, &[], " 喜欢户外 ")
                .unwrap()
                .as_deref(),
            Some("喜欢户外")
        );
        assert!(check_value("v", ValueType::Text, &[], &"字".repeat(1001)).is_err());
    }

    #[test]
    fn enum_lists_are_checked() {
        assert_eq!(
            enum_values("e", ValueType::Enum, &tiers()).unwrap(),
            tiers()
        );
        assert!(enum_values("e", ValueType::Enum, &[]).is_err());
        let twice = vec!["A".to_owned(), "a".to_owned()];
        assert_eq!(
            enum_values("e", ValueType::Enum, &twice).unwrap_err(),
            DomainError::invalid("e[1]", "\"a\" is listed twice")
        );
        assert!(enum_values("e", ValueType::Number, &tiers()).is_err());
        assert!(enum_values("e", ValueType::Number, &[]).unwrap().is_empty());
    }
}
