//! Page requests: the page size rule and opaque page tokens.
//!
//! Page size 0 means the default (100); more than 1,000 is rejected rather
//! than silently clamped, so a caller never mistakes a short page for the end.
//! A token carries the sort key of the last row served (keyset paging).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::error::{DomainError, DomainResult};

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1_000;

/// A validated page request: how many rows, and after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    pub after: Option<String>,
}

impl PageRequest {
    pub fn parse(page_size: u32, page_token: &str) -> DomainResult<Self> {
        let size = match usize::try_from(page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE_SIZE,
            size if size > MAX_PAGE_SIZE => {
                return Err(DomainError::invalid(
                    "page_size",
                    format!("is {size}; the maximum is {MAX_PAGE_SIZE}"),
                ));
            }
            size => size,
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode_token(page_token)?)
        };
        Ok(Self { size, after })
    }
}

/// The token that continues after `key`.
pub fn encode_token(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{key}"))
}

fn decode_token(token: &str) -> DomainResult<String> {
    let invalid = || DomainError::invalid("page_token", "is not a token this service issued");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix("v1:")
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// Given one row more than the page size was fetched, trims the extra row
/// and returns the token for the next page (empty on the last page).
pub fn finish_page<T>(rows: &mut Vec<T>, size: usize, key: impl Fn(&T) -> String) -> String {
    if rows.len() > size {
        rows.truncate(size);
        rows.last()
            .map(key)
            .map(|k| encode_token(&k))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

/// The key of a row sorted by time, then id: rows at the same microsecond
/// still page without gaps or repeats.
pub fn time_key(time: NaiveDateTime, id: &str) -> String {
    format!("{}|{id}", time.and_utc().timestamp_micros())
}

/// The (time, id) a [`time_key`] holds.
pub fn parse_time_key(key: &str) -> DomainResult<(NaiveDateTime, String)> {
    let invalid = || DomainError::invalid("page_token", "is not a token this list issued");
    let (micros, id) = key.split_once('|').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let time = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((time.naive_utc(), id.to_owned()))
}

/// The key of a row sorted by date, then id.
pub fn date_key(date: NaiveDate, id: &str) -> String {
    format!("{}|{id}", date.format("%Y-%m-%d"))
}

/// The (date, id) a [`date_key`] holds.
pub fn parse_date_key(key: &str) -> DomainResult<(NaiveDate, String)> {
    let invalid = || DomainError::invalid("page_token", "is not a token this list issued");
    let (date, id) = key.split_once('|').ok_or_else(invalid)?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| invalid())?;
    Ok((date, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_rules() {
        assert_eq!(PageRequest::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::parse(1000, "").unwrap().size, 1000);
        let err = PageRequest::parse(1001, "").unwrap_err();
        assert_eq!(
            err,
            DomainError::invalid("page_size", "is 1001; the maximum is 1000")
        );
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = encode_token("0190-abc");
        assert_eq!(
            PageRequest::parse(5, &token).unwrap().after.as_deref(),
            Some("0190-abc")
        );
        assert!(PageRequest::parse(5, "not a token!").is_err());
        assert!(PageRequest::parse(5, &URL_SAFE_NO_PAD.encode("v2:x")).is_err());
    }

    #[test]
    fn finish_page_trims_the_probe_row() {
        let mut rows = vec![1, 2, 3];
        let token = finish_page(&mut rows, 2, |n| n.to_string());
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(
            PageRequest::parse(2, &token).unwrap().after.as_deref(),
            Some("2")
        );
        let mut last = vec![1];
        assert_eq!(finish_page(&mut last, 2, |n| n.to_string()), "");
    }

    #[test]
    fn time_and_date_keys_round_trip() {
        let time = DateTime::from_timestamp_micros(1_767_225_600_123_456)
            .unwrap()
            .naive_utc();
        let key = time_key(time, "0190-a|b");
        assert_eq!(parse_time_key(&key), Ok((time, "0190-a|b".to_owned())));
        assert!(parse_time_key("x|y").is_err());
        assert!(parse_time_key("123").is_err());
        let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(
            parse_date_key(&date_key(date, "id")),
            Ok((date, "id".to_owned()))
        );
        assert!(parse_date_key("2026-13-01|id").is_err());
    }
}
