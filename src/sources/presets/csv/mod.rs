//! CSV: one file, local (`path`) or over HTTP(S) (`url`), as one stream `rows`.
//!
//! Each row becomes a JSON object keyed by the header's column names, in header order.
//! Declared columns are converted (integer and number → JSON numbers, boolean →
//! true/false from true/false/yes/no/1/0 in any case, date → `YYYY-MM-DD`, datetime →
//! RFC 3339 in UTC from RFC 3339 or a date-time without offset, taken as UTC); the other
//! columns stay strings; an empty cell is null. The `key` columns identify a row (their
//! converted values, joined, are the record's primary key).
//!
//! Reading follows RFC 4180 (<https://www.rfc-editor.org/rfc/rfc4180>) through the `csv`
//! crate (<https://docs.rs/csv/latest/csv/struct.ReaderBuilder.html>): quoted fields may
//! hold the delimiter, doubled quotes and line breaks; a UTF-8 byte order mark is skipped;
//! blank lines are ignored; every row must have as many fields as the header. Line numbers
//! in errors are those of the line where the row starts
//! (<https://docs.rs/csv/latest/csv/struct.Position.html>).
//!
//! The whole file is one page, so a bad row anywhere fails the sync before anything is
//! stored. Every sync reads the whole file (it is the truth); its cursor is the SHA-256 of
//! the file together with the settings that shape the records (delimiter, key, column
//! types), and a sync that finds the same digest ends without records. Rows removed from
//! the file stay in the store (deletion is not reconciled yet).
//!
//! The preset does no IO: the shared client reads `file://` URLs from disk and fetches
//! `http(s)://` ones with its usual retries.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use reqwest::header::HeaderMap;
use serde_json::value::RawValue;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

use super::{Preset, PresetInfo, SyncWindow};
use crate::config::{CsvColumnType, CsvConfig, SourceConfig};
use crate::records::{KEY_SEPARATOR, Record};
use crate::sources::http::{Auth, ParseError};
use crate::sources::{FetchedRecord, Page, PageRequest, SourceError};

/// The CSV description. The address is the file's own (`path` or `url`), so there is no
/// default; nothing else is required beyond what `validate_csv` checks.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "",
    streams: &["rows"],
    required: &[],
    default_lookback: Duration::ZERO,
    token_url: None,
};

/// The CSV preset.
pub struct Csv;

/// Cursor prefix; bump the version when the conversion of rows changes, so every file
/// is read again once.
const CURSOR_PREFIX: &str = "csv1:sha256:";

/// The longest cell excerpt shown in an error.
const SHOWN_CHARS: usize = 40;

impl Preset for Csv {
    /// Every read is the whole file: rows missing from it are gone.
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::All
    }

    fn auth(&self, _source: &SourceConfig) -> Result<Auth, SourceError> {
        Ok(Auth::None)
    }

    /// Reads the whole file: a local one must exist, a remote one must answer; the header
    /// is then checked by [`Csv::check_probe`].
    fn probe(&self, source: &SourceConfig) -> PageRequest {
        PageRequest::get(source.base_url.clone(), String::new())
    }

    fn check_probe(
        &self,
        source: &SourceConfig,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), ParseError> {
        let csv = settings(source)?;
        let mut reader = reader(csv, body);
        header(csv, &mut reader).map(|_| ())
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        _stream: &str,
        cursor: Option<&str>,
        _window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        let cursor = cursor.unwrap_or_default();
        if !(cursor.is_empty() || is_cursor(cursor)) {
            return Err(SourceError::BadCursor(format!(
                "expected {CURSOR_PREFIX}<hex digest>, found {:?}",
                cursor.chars().take(SHOWN_CHARS).collect::<String>()
            )));
        }
        Ok(PageRequest::get(
            source.base_url.clone(),
            cursor.to_string(),
        ))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        _stream: &str,
        request: &PageRequest,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let csv = settings(source)?;
        let cursor = digest(csv, body);
        // The same file read with the same settings: every row is stored already.
        let records = if cursor == request.state {
            Vec::new()
        } else {
            parse_rows(csv, body)?
        };
        Ok(Page {
            records,
            cursor,
            next: None,
        })
    }
}

fn settings(source: &SourceConfig) -> Result<&CsvConfig, ParseError> {
    source
        .csv
        .as_ref()
        .ok_or_else(|| ParseError::malformed("the source has no CSV settings"))
}

fn is_cursor(text: &str) -> bool {
    text.strip_prefix(CURSOR_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// The cursor of `body` read with `csv`'s settings: a change of either reads the file again.
fn digest(csv: &CsvConfig, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    // The settings first, each part length-prefixed so no two settings hash alike.
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    part(&[csv.delimiter]);
    for key in &csv.key {
        part(key.as_bytes());
    }
    for (name, kind) in &csv.columns {
        part(name.as_bytes());
        part(type_name(*kind).as_bytes());
    }
    part(body);
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{CURSOR_PREFIX}{hex}")
}

fn type_name(kind: CsvColumnType) -> &'static str {
    match kind {
        CsvColumnType::String => "string",
        CsvColumnType::Integer => "integer",
        CsvColumnType::Number => "number",
        CsvColumnType::Boolean => "boolean",
        CsvColumnType::Date => "date",
        CsvColumnType::Datetime => "datetime",
    }
}

fn reader<'a>(csv: &CsvConfig, body: &'a [u8]) -> ::csv::Reader<&'a [u8]> {
    ::csv::ReaderBuilder::new()
        .delimiter(csv.delimiter)
        .has_headers(true)
        .flexible(false)
        .trim(::csv::Trim::Headers)
        .from_reader(body)
}

/// One header column: its name and the type its cells are read as.
struct Column {
    name: String,
    kind: CsvColumnType,
}

/// Reads the header and checks it against the settings: no empty or repeated names, and
/// every key and declared column present.
fn header(csv: &CsvConfig, reader: &mut ::csv::Reader<&[u8]>) -> Result<Vec<Column>, ParseError> {
    let names = reader.headers().map_err(|error| describe(&error, &[]))?;
    if names.is_empty() {
        return Err(ParseError::malformed(
            "the file is empty: the first line must name the columns",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(ParseError::malformed(format!(
                "line 1: column {} of the header has no name",
                index + 1
            )));
        }
        if let Some(first) = seen.insert(name, index) {
            return Err(ParseError::malformed(format!(
                "line 1: the header names column \"{name}\" twice (columns {} and {})",
                first + 1,
                index + 1
            )));
        }
    }
    let missing = |wanted: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        wanted
            .filter(|name| !seen.contains_key(name.as_str()))
            .map(|name| format!("\"{name}\""))
            .collect()
    };
    let missing_key = missing(&mut csv.key.iter());
    let missing_columns = missing(&mut csv.columns.keys());
    if !missing_key.is_empty() || !missing_columns.is_empty() {
        let mut problems = Vec::new();
        if !missing_key.is_empty() {
            problems.push(format!("key column(s) {}", missing_key.join(", ")));
        }
        if !missing_columns.is_empty() {
            problems.push(format!("declared column(s) {}", missing_columns.join(", ")));
        }
        let found: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
        return Err(ParseError::malformed(format!(
            "line 1: the header lacks {}; it has {}",
            problems.join(" and "),
            found.join(", ")
        )));
    }
    Ok(names
        .iter()
        .map(|name| Column {
            name: name.to_string(),
            kind: csv
                .columns
                .get(name)
                .copied()
                .unwrap_or(CsvColumnType::String),
        })
        .collect())
}

/// Every row of the file as a record, or the first problem (with its line and column).
pub fn parse_rows(csv: &CsvConfig, body: &[u8]) -> Result<Vec<FetchedRecord>, ParseError> {
    let mut reader = reader(csv, body);
    let columns = header(csv, &mut reader)?;
    let key_indexes: Vec<usize> = csv
        .key
        .iter()
        .map(|key| {
            columns
                .iter()
                .position(|column| &column.name == key)
                .expect("header() checked every key column is present")
        })
        .collect();
    let mut first_line_of_key: HashMap<String, u64> = HashMap::new();
    let mut records = Vec::new();
    let mut row = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(describe(&error, &columns)),
        }
        let line = row.position().map_or(0, ::csv::Position::line);
        let mut record = Record::new();
        let mut text = String::from("{");
        for (index, (column, cell)) in columns.iter().zip(row.iter()).enumerate() {
            let value = convert(cell, column.kind).map_err(|problem| {
                ParseError::malformed(format!(
                    "line {line}, column \"{}\": {problem}",
                    column.name
                ))
            })?;
            if index > 0 {
                text.push(',');
            }
            text.push_str(&json_text(&Value::String(column.name.clone())));
            text.push(':');
            text.push_str(&json_text(&value));
            record.insert(column.name.clone(), value);
        }
        text.push('}');
        let mut key = String::new();
        for (position, index) in key_indexes.iter().enumerate() {
            let name = &columns[*index].name;
            if position > 0 {
                key.push(KEY_SEPARATOR);
            }
            match &record[name] {
                Value::Null => {
                    return Err(ParseError::malformed(format!(
                        "line {line}, column \"{name}\": the key column is empty"
                    )));
                }
                Value::String(text) => key.push_str(text),
                other => key.push_str(&json_text(other)),
            }
        }
        match first_line_of_key.entry(key) {
            Entry::Occupied(first) => {
                let shown: Vec<String> = key_indexes
                    .iter()
                    .map(|index| {
                        let name = &columns[*index].name;
                        format!("{name} = {}", excerpt(&json_text(&record[name])))
                    })
                    .collect();
                return Err(ParseError::malformed(format!(
                    "line {line} repeats the key of line {} ({})",
                    first.get(),
                    shown.join(", ")
                )));
            }
            Entry::Vacant(slot) => {
                let key = slot.key().clone();
                slot.insert(line);
                let raw = RawValue::from_string(text)
                    .expect("the row's JSON text is built from serialized values");
                records.push(FetchedRecord { key, raw, record });
            }
        }
    }
    Ok(records)
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value always serializes")
}

/// A cell for an error message: at most [`SHOWN_CHARS`] characters.
fn excerpt(text: &str) -> String {
    let mut shown: String = text.chars().take(SHOWN_CHARS).collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

/// A csv crate error with the line (and column where it says one).
fn describe(error: &::csv::Error, columns: &[Column]) -> ParseError {
    let line = |position: &Option<::csv::Position>| {
        position.as_ref().map_or_else(
            || "a line".to_string(),
            |position| format!("line {}", position.line()),
        )
    };
    let detail = match error.kind() {
        ::csv::ErrorKind::Utf8 { pos, err } => {
            let column = columns.get(err.field()).map_or_else(
                || format!("field {}", err.field() + 1),
                |column| format!("column \"{}\"", column.name),
            );
            format!(
                "{}, {column}: not valid UTF-8 text (save the file as UTF-8)",
                line(pos)
            )
        }
        ::csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "{} has {len} field(s) where the header has {expected_len} (a missing delimiter or an unclosed quote?)",
            line(pos)
        ),
        _ => error.to_string(),
    };
    ParseError::malformed(detail)
}

/// A cell converted to its column's type; an empty cell is null. The error says what
/// was found and what was expected.
pub fn convert(cell: &str, kind: CsvColumnType) -> Result<Value, String> {
    if cell.is_empty() {
        return Ok(Value::Null);
    }
    let trimmed = cell.trim();
    if kind != CsvColumnType::String && trimmed.is_empty() {
        return Ok(Value::Null);
    }
    let found = || format!("\"{}\"", excerpt(cell));
    match kind {
        CsvColumnType::String => Ok(Value::String(cell.to_string())),
        CsvColumnType::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{} is not a whole number", found())),
        CsvColumnType::Number => {
            if let Ok(whole) = trimmed.parse::<i64>() {
                return Ok(Value::from(whole));
            }
            trimmed
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| {
                    let hint = if trimmed.contains(',') {
                        " (use a dot for decimals and no thousands separators)"
                    } else {
                        ""
                    };
                    format!("{} is not a number{hint}", found())
                })
        }
        CsvColumnType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "{} is not a boolean (true/false, yes/no, 1/0)",
                found()
            )),
        },
        CsvColumnType::Date => NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
            .map(|date| Value::String(date.format("%Y-%m-%d").to_string()))
            .map_err(|_| format!("{} is not a date (YYYY-MM-DD)", found())),
        CsvColumnType::Datetime => datetime(trimmed)
            .map(|time| Value::String(time.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
            .ok_or_else(|| {
                format!(
                    "{} is not a date-time (RFC 3339 such as 2026-03-01T09:30:00+01:00, or 2026-03-01 09:30:00 for UTC)",
                    found()
                )
            }),
    }
}

/// An RFC 3339 date-time, or a date and time without offset (taken as UTC), with `T` or
/// a space between them and optional seconds and fractions.
fn datetime(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests;
