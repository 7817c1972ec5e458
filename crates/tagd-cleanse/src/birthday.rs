//! Birthdays in the formats people type (1990-01-02, 1990/1/2, 1990.1.2, 19900102,
//! 1990年1月2日, 02/01/1990 when unambiguous), checked against today.

use chrono::{Datelike, NaiveDate};

/// The date a normalised text names, or why it names none.
pub(crate) fn parse(text: &str) -> Result<NaiveDate, String> {
    let date = without_time(text);
    let not_a_date = || format!("{text:?} is not a date in a format we know");
    let (year, month, day) = if date.contains('年') {
        chinese(date).ok_or_else(not_a_date)?
    } else {
        let parts: Vec<&str> = date
            .split(['-', '/', '.', ' '])
            .filter(|part| !part.is_empty())
            .collect();
        if parts.is_empty() || parts.iter().any(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(not_a_date());
        }
        match parts.as_slice() {
            [compact] if compact.len() == 8 => (&compact[..4], &compact[4..6], &compact[6..]),
            [compact] if compact.len() == 6 => {
                return Err(format!("{text:?} has no day"));
            }
            [y, _] if y.len() == 4 => return Err(format!("{text:?} has no day")),
            [y, m, d] if y.len() == 4 => (*y, *m, *d),
            [a, b, y] if y.len() == 4 => day_month(text, a, b, y)?,
            [_, _, y] if y.len() <= 2 => {
                return Err(format!("{text:?} has a two-digit year"));
            }
            _ => return Err(not_a_date()),
        }
    };
    let number = |s: &str| s.parse::<u32>().ok();
    let (Some(y), Some(m), Some(d)) = (number(year), number(month), number(day)) else {
        return Err(not_a_date());
    };
    if year.len() != 4 || month.len() > 2 || day.len() > 2 {
        return Err(not_a_date());
    }
    if !(1..=12).contains(&m) {
        return Err(format!("{text:?} has month {m}, which does not exist"));
    }
    let year = i32::try_from(y).map_err(|_| not_a_date())?;
    NaiveDate::from_ymd_opt(year, m, d)
        .ok_or_else(|| format!("{text:?} is not a real date: {year}-{m:02} has no day {d}"))
}

/// Day and month when the year comes last: unambiguous only if one of them exceeds 12.
fn day_month<'t>(
    text: &str,
    a: &'t str,
    b: &'t str,
    year: &'t str,
) -> Result<(&'t str, &'t str, &'t str), String> {
    let (Ok(first), Ok(second)) = (a.parse::<u32>(), b.parse::<u32>()) else {
        return Err(format!("{text:?} is not a date in a format we know"));
    };
    match (first > 12, second > 12) {
        (true, false) => Ok((year, b, a)),
        (false, true) => Ok((year, a, b)),
        (false, false) if first == second => Ok((year, a, b)),
        (false, false) => Err(format!(
            "{text:?} is ambiguous: the day and the month could be either way round"
        )),
        (true, true) => Err(format!("{text:?} is not a date in a format we know")),
    }
}

/// "1990年1月2日", "1990年01月02号", with or without spaces.
fn chinese(text: &str) -> Option<(&str, &str, &str)> {
    let (year, rest) = text.split_once('年')?;
    let (month, rest) = rest.split_once('月')?;
    let day = rest
        .trim()
        .strip_suffix('日')
        .or_else(|| rest.trim().strip_suffix('号'))
        .unwrap_or(rest.trim());
    let parts = [year.trim(), month.trim(), day.trim()];
    parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .then_some((parts[0], parts[1], parts[2]))
}

/// The date part of a date-time ("1990-01-02 00:00:00", "1990-01-02T00:00:00Z").
fn without_time(text: &str) -> &str {
    match text.split_once([' ', 'T']) {
        Some((date, time))
            if time.contains(':')
                && time
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | 'Z' | '+' | '-')) =>
        {
            date
        }
        _ => text,
    }
}

/// The earliest birthday accepted on `today`: 1900-01-01 (the store's limit) or
/// `max_age_years` ago, whichever is later.
pub(crate) fn earliest(today: NaiveDate, max_age_years: u16) -> NaiveDate {
    let floor = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    let years_ago = today
        .with_year(today.year() - i32::from(max_age_years))
        // 29 February in a year that lacks it.
        .or_else(|| {
            today
                .pred_opt()
                .and_then(|d| d.with_year(d.year() - i32::from(max_age_years)))
        })
        .unwrap_or(floor);
    years_ago.max(floor)
}

/// Why `date` cannot be a birthday on `today`, if it cannot.
pub(crate) fn check(
    date: NaiveDate,
    today: NaiveDate,
    earliest: NaiveDate,
    max_age_years: u16,
) -> Result<(), String> {
    if date > today {
        return Err(format!("{date} is in the future"));
    }
    if date < earliest {
        if earliest.year() == 1900 && earliest.ordinal() == 1 {
            return Err(format!(
                "{date} is before 1900-01-01, the earliest birthday the store accepts"
            ));
        }
        return Err(format!(
            "{date} would make the customer older than {max_age_years}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::normalized;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn common_formats_parse() {
        let want = date(1990, 1, 2);
        for raw in [
            "1990-01-02",
            "1990-1-2",
            "1990/1/2",
            "1990/01/02",
            "1990.1.2",
            "19900102",
            "1990年1月2日",
            "1990年01月02日",
            "1990 年 1 月 2 日",
            "1990年1月2号",
            "1990-01-02 00:00:00",
            "1990-01-02T00:00:00Z",
            "1990/1/2 0:00",
            "１９９０－０１－０２",
            "１９９０年１月２日",
            "13/01/1990",
        ] {
            let text = normalized(raw);
            let expected = if raw == "13/01/1990" {
                date(1990, 1, 13)
            } else {
                want
            };
            assert_eq!(parse(&text), Ok(expected), "{raw:?}");
        }
        assert_eq!(parse("01/13/1990"), Ok(date(1990, 1, 13)));
    }

    #[test]
    fn bad_dates_say_why() {
        let reason = |raw: &str| parse(raw).unwrap_err();
        assert_eq!(
            reason("1990-02-30"),
            "\"1990-02-30\" is not a real date: 1990-02 has no day 30"
        );
        assert_eq!(
            reason("1990-13-01"),
            "\"1990-13-01\" has month 13, which does not exist"
        );
        assert_eq!(
            reason("03/04/1990"),
            "\"03/04/1990\" is ambiguous: the day and the month could be either way round"
        );
        assert_eq!(reason("90-01-02"), "\"90-01-02\" has a two-digit year");
        assert_eq!(reason("1990-01"), "\"1990-01\" has no day");
        assert_eq!(reason("199001"), "\"199001\" has no day");
        assert_eq!(
            reason("hello"),
            "\"hello\" is not a date in a format we know"
        );
        assert_eq!(
            reason("1990年1月"),
            "\"1990年1月\" is not a date in a format we know"
        );
        assert!(parse("1990-001-02").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn range_checks() {
        let today = date(2026, 5, 1);
        let earliest = earliest(today, 130);
        assert_eq!(earliest, date(1900, 1, 1));
        assert!(check(date(1990, 1, 2), today, earliest, 130).is_ok());
        assert_eq!(
            check(date(2026, 5, 2), today, earliest, 130).unwrap_err(),
            "2026-05-02 is in the future"
        );
        assert!(check(date(1899, 12, 31), today, earliest, 130).is_err());
        let later = date(2040, 3, 1);
        let earliest = super::earliest(later, 130);
        assert_eq!(earliest, date(1910, 3, 1));
        assert_eq!(
            check(date(1910, 2, 28), later, earliest, 130).unwrap_err(),
            "1910-02-28 would make the customer older than 130"
        );
        assert_eq!(super::earliest(date(2032, 2, 29), 130), date(1902, 2, 28));
    }
}
