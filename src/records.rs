//! Records: the API's own JSON objects, their primary keys and their event times.
//!
//! Pure: no IO. Event times are recognised as unix seconds and unix milliseconds
//! (numbers or numeric strings), RFC 3339 / ISO 8601 date-times with or without an
//! offset (UTC when none), plain dates (midnight in the scorecard's time zone) and the
//! Microsoft JSON dates Xero writes (`/Date(1518685950940+0000)/`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// A JSON object as the API sent it.
pub type Record = Map<String, Value>;

/// Separates the parts of a composite primary key (a control character no API uses in ids).
pub const KEY_SEPARATOR: char = '\u{1f}';

/// Numbers above this are unix milliseconds, below it unix seconds. 10^11 seconds is
/// the year 5138, while 10^11 milliseconds is March 1973: no real event time is ambiguous.
const MILLIS_THRESHOLD: f64 = 1e11;

/// The value at a dotted path (`properties.amount`), or `None` when any part is missing.
pub fn field<'a>(record: &'a Record, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = record.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// The primary key of a record from its key fields; `None` when a key field is missing,
/// null, or not a string or number.
pub fn primary_key(record: &Record, key_fields: &[&str]) -> Option<String> {
    let mut key = String::new();
    for (index, path) in key_fields.iter().enumerate() {
        if index > 0 {
            key.push(KEY_SEPARATOR);
        }
        match field(record, path)? {
            Value::String(text) => key.push_str(text),
            Value::Number(number) => key.push_str(&number.to_string()),
            _ => return None,
        }
    }
    Some(key)
}

/// Why an event time could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "cannot read {found} as an event time (expected unix seconds or milliseconds, an RFC 3339 date-time or a YYYY-MM-DD date)"
)]
pub struct TimeError {
    /// A short description of what was found (never the whole record).
    pub found: String,
}

/// Reads an event time. `Ok(None)` when the field is null or missing: such a record
/// belongs to no period.
pub fn event_time(value: Option<&Value>, tz: Tz) -> Result<Option<DateTime<Utc>>, TimeError> {
    let found = |what: &dyn std::fmt::Display| TimeError {
        found: what.to_string(),
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            let number = number.as_f64().ok_or_else(|| found(number))?;
            unix_time(number).map(Some).ok_or_else(|| found(&number))
        }
        Some(Value::String(text)) => parse_time_text(text.trim(), tz).map(Some).ok_or_else(|| {
            let shown: String = text.chars().take(40).collect();
            found(&format!("\"{shown}\""))
        }),
        Some(other) => Err(found(&match other {
            Value::Bool(_) => "a boolean",
            Value::Array(_) => "a list",
            _ => "an object",
        })),
    }
}

fn unix_time(number: f64) -> Option<DateTime<Utc>> {
    if !number.is_finite() {
        return None;
    }
    let millis = if number.abs() >= MILLIS_THRESHOLD {
        number
    } else {
        number * 1000.0
    };
    DateTime::from_timestamp_millis(millis.round() as i64)
}

fn parse_time_text(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if text.is_empty() {
        return None;
    }
    if let Some(instant) = microsoft_json_date(text) {
        return Some(instant);
    }
    if let Ok(number) = text.parse::<f64>() {
        return unix_time(number);
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    // ISO 8601 variants APIs send: a space instead of T, no seconds, a +0000 offset.
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f %#z",
    ] {
        if let Ok(instant) = DateTime::parse_from_str(text, format) {
            return Some(instant.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&naive));
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(
        crate::measures::period::PeriodKind::Day
            .start_of_date(date, tz)
            .with_timezone(&Utc),
    )
}

/// `/Date(1518685950940+0000)/`: unix milliseconds (always UTC), optionally followed by
/// the writer's offset, which does not change the instant. Xero writes its dates this way:
/// <https://developer.xero.com/documentation/api/accounting/requests-and-responses#json-responses-and-date-formats>
fn microsoft_json_date(text: &str) -> Option<DateTime<Utc>> {
    let inner = text.strip_prefix("/Date(")?.strip_suffix(")/")?;
    // The sign of the millisecond count may be `-` (before 1970); a later `+`/`-` starts the offset.
    let digits_end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map_or(inner.len(), |(index, _)| index);
    let (millis, offset) = inner.split_at(digits_end);
    let offset_ok =
        offset.is_empty() || (offset.len() == 5 && offset[1..].bytes().all(|b| b.is_ascii_digit()));
    if !offset_ok {
        return None;
    }
    DateTime::from_timestamp_millis(millis.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value) -> Record {
        value.as_object().expect("test records are objects").clone()
    }

    #[test]
    fn event_time_formats() {
        let berlin: Tz = "Europe/Berlin".parse().expect("known zone");
        let cases = [
            (json!(1_774_999_800), Some("2026-03-31T23:30:00+00:00")),
            (
                json!(1_774_999_800_000_i64),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            (json!("1774999800"), Some("2026-03-31T23:30:00+00:00")),
            (json!("1774999800000"), Some("2026-03-31T23:30:00+00:00")),
            (
                json!(1_774_999_800.5),
                Some("2026-03-31T23:30:00.500+00:00"),
            ),
            (
                json!("2026-03-31T23:30:00Z"),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            (
                json!("2026-04-01T01:30:00+02:00"),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            (
                json!("2026-03-31T23:30:00"),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            (
                json!("2026-03-31 23:30:00"),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            (
                json!("2026-03-31T23:30:00.123Z"),
                Some("2026-03-31T23:30:00.123+00:00"),
            ),
            (
                json!("2026-04-01T01:30:00+0200"),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            // A plain date is local midnight in the scorecard's zone.
            (json!("2026-04-01"), Some("2026-03-31T22:00:00+00:00")),
            // Xero's Microsoft JSON dates: UTC milliseconds, the offset only informs.
            (
                json!("/Date(1518685950940+0000)/"),
                Some("2018-02-15T09:12:30.940+00:00"),
            ),
            (
                json!("/Date(1774999800000+1300)/"),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            (
                json!("/Date(1774999800000)/"),
                Some("2026-03-31T23:30:00+00:00"),
            ),
            (
                json!("/Date(-86400000)/"),
                Some("1969-12-31T00:00:00+00:00"),
            ),
            (Value::Null, None),
        ];
        for (value, expected) in cases {
            let got = event_time(Some(&value), berlin).expect("parses");
            let got =
                got.map(|instant| instant.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false));
            assert_eq!(got.as_deref(), expected, "{value}");
        }
        assert_eq!(event_time(None, berlin), Ok(None));
    }

    #[test]
    fn unreadable_event_times_are_errors_that_say_what_was_found() {
        let tz = chrono_tz::UTC;
        for value in [
            json!("next tuesday"),
            json!("/Date(abc)/"),
            json!("/Date(1518685950940+00)/"),
            json!("/Date(1518685950940"),
            json!(true),
            json!([1]),
            json!({"a": 1}),
        ] {
            let error = event_time(Some(&value), tz).expect_err("not a time");
            assert!(error.to_string().starts_with("cannot read"), "{error}");
        }
        let error = event_time(Some(&json!("next tuesday")), tz).expect_err("not a time");
        assert!(error.to_string().contains("\"next tuesday\""));
    }

    #[test]
    fn fields_and_keys() {
        let record =
            record(json!({"id": "ch_1", "n": 7, "properties": {"amount": "12.5"}, "empty": null}));
        assert_eq!(field(&record, "properties.amount"), Some(&json!("12.5")));
        assert_eq!(field(&record, "properties.missing"), None);
        assert_eq!(field(&record, "id.nested"), None);
        assert_eq!(primary_key(&record, &["id"]).as_deref(), Some("ch_1"));
        assert_eq!(
            primary_key(&record, &["id", "n"]).as_deref(),
            Some("ch_1\u{1f}7")
        );
        assert_eq!(primary_key(&record, &["empty"]), None);
        assert_eq!(primary_key(&record, &["missing"]), None);
    }
}
