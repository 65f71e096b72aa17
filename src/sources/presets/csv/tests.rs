//! Unit tests of the CSV preset: cell conversions, rows, errors, cursor and probe.

use std::collections::BTreeMap;

use super::*;
use crate::config::CsvLocation;

fn settings(key: &[&str], columns: &[(&str, CsvColumnType)], delimiter: u8) -> CsvConfig {
    CsvConfig {
        location: CsvLocation::Path("/tmp/sales.csv".into()),
        columns: columns
            .iter()
            .map(|(name, kind)| (name.to_string(), *kind))
            .collect::<BTreeMap<_, _>>(),
        key: key.iter().map(|key| key.to_string()).collect(),
        delimiter,
    }
}

#[test]
fn converts_cells_by_column_type() {
    use CsvColumnType::*;
    let cases: &[(&str, CsvColumnType, Value)] = &[
        ("", Number, Value::Null),
        ("  ", Integer, Value::Null),
        ("", String, Value::Null),
        (" padded ", String, Value::from(" padded ")),
        ("42", Integer, Value::from(42)),
        (" -7 ", Integer, Value::from(-7)),
        ("12", Number, Value::from(12)),
        ("12.50", Number, Value::from(12.5)),
        ("-0.25", Number, Value::from(-0.25)),
        ("1e3", Number, Value::from(1000.0)),
        ("true", Boolean, Value::Bool(true)),
        ("YES", Boolean, Value::Bool(true)),
        ("1", Boolean, Value::Bool(true)),
        ("False", Boolean, Value::Bool(false)),
        ("no", Boolean, Value::Bool(false)),
        ("0", Boolean, Value::Bool(false)),
        ("2026-03-01", Date, Value::from("2026-03-01")),
        (
            "2026-03-01T09:30:00Z",
            Datetime,
            Value::from("2026-03-01T09:30:00Z"),
        ),
        (
            "2026-03-01T09:30:00+01:00",
            Datetime,
            Value::from("2026-03-01T08:30:00Z"),
        ),
        (
            "2026-03-01T09:30:00.250-02:00",
            Datetime,
            Value::from("2026-03-01T11:30:00.250Z"),
        ),
        (
            "2026-03-01 09:30:00",
            Datetime,
            Value::from("2026-03-01T09:30:00Z"),
        ),
        (
            "2026-03-01T09:30",
            Datetime,
            Value::from("2026-03-01T09:30:00Z"),
        ),
        (
            "2026-03-01 09:30",
            Datetime,
            Value::from("2026-03-01T09:30:00Z"),
        ),
    ];
    for (cell, kind, expected) in cases {
        assert_eq!(
            convert(cell, *kind).as_ref(),
            Ok(expected),
            "{cell:?} as {kind:?}"
        );
    }
}

#[test]
fn rejects_cells_that_are_not_their_type() {
    use CsvColumnType::*;
    let cases: &[(&str, CsvColumnType, &str)] = &[
        ("12.5", Integer, "\"12.5\" is not a whole number"),
        ("abc", Number, "\"abc\" is not a number"),
        (
            "12,50",
            Number,
            "\"12,50\" is not a number (use a dot for decimals and no thousands separators)",
        ),
        ("NaN", Number, "\"NaN\" is not a number"),
        ("inf", Number, "\"inf\" is not a number"),
        (
            "maybe",
            Boolean,
            "\"maybe\" is not a boolean (true/false, yes/no, 1/0)",
        ),
        (
            "01/03/2026",
            Date,
            "\"01/03/2026\" is not a date (YYYY-MM-DD)",
        ),
        (
            "2026-02-30",
            Date,
            "\"2026-02-30\" is not a date (YYYY-MM-DD)",
        ),
        ("2026-03-01", Datetime, "\"2026-03-01\" is not a date-time"),
        ("yesterday", Datetime, "\"yesterday\" is not a date-time"),
    ];
    for (cell, kind, expected) in cases {
        let error = convert(cell, *kind).expect_err(cell);
        assert!(error.starts_with(expected), "{cell:?} as {kind:?}: {error}");
    }
}

#[test]
fn rows_become_objects_in_header_order_with_composite_keys() {
    let csv = settings(
        &["store", "receipt"],
        &[
            ("total", CsvColumnType::Number),
            ("items", CsvColumnType::Integer),
        ],
        b';',
    );
    let body = "\u{feff}store; receipt;total;items;note\nB1;r-1;12.5;2;\"a; b\"\"c\"\"\nnext\"\n\nB2;r-1;3;;\n";
    let records = parse_rows(&csv, body.as_bytes()).expect("valid file");
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0].raw.get(),
        r#"{"store":"B1","receipt":"r-1","total":12.5,"items":2,"note":"a; b\"c\"\nnext"}"#
    );
    assert_eq!(records[0].key, format!("B1{KEY_SEPARATOR}r-1"));
    assert_eq!(
        records[1].raw.get(),
        r#"{"store":"B2","receipt":"r-1","total":3,"items":null,"note":null}"#
    );
    assert_eq!(records[1].record["total"], Value::from(3));
}

#[test]
fn bad_rows_name_their_line_and_column() {
    let csv = settings(&["id"], &[("total", CsvColumnType::Number)], b',');
    let cases: &[(&str, &str)] = &[
        (
            "id,total\n1,2\n2,\"multi\nline\"\n3,x\n",
            "line 3, column \"total\": \"multi\nline\" is not a number",
        ),
        (
            "id,total\n1,2\n2,3\n1,4\n",
            "line 4 repeats the key of line 2 (id = \"1\")",
        ),
        (
            "id,total\n1,2\n,3\n",
            "line 3, column \"id\": the key column is empty",
        ),
        (
            "id,total\n1,2\n2,3,4\n",
            "line 3 has 3 field(s) where the header has 2",
        ),
        (
            "total,name\n1,a\n",
            "line 1: the header lacks key column(s) \"id\"; it has \"total\", \"name\"",
        ),
        (
            "name\n1\n",
            "line 1: the header lacks key column(s) \"id\" and declared column(s) \"total\"; it has \"name\"",
        ),
        (
            "id,total,id\n",
            "line 1: the header names column \"id\" twice (columns 1 and 3)",
        ),
        ("", "the file is empty"),
    ];
    for (body, expected) in cases {
        let error = parse_rows(&csv, body.as_bytes()).expect_err(body);
        assert!(
            error.detail.starts_with(expected),
            "{body:?}: {}",
            error.detail
        );
    }
    let not_utf8 = b"id,total\n1,2\n2,\xff\n";
    let error = parse_rows(&csv, not_utf8).expect_err("invalid UTF-8");
    assert!(
        error
            .detail
            .starts_with("line 3, column \"total\": not valid UTF-8"),
        "{}",
        error.detail
    );
}

#[test]
fn keys_are_converted_values() {
    // 2026-03-01T10:00:00+01:00 and 09:00Z are the same instant: the same row twice.
    let csv = settings(&["at"], &[("at", CsvColumnType::Datetime)], b',');
    let error = parse_rows(
        &csv,
        b"at\n2026-03-01T10:00:00+01:00\n2026-03-01T09:00:00Z\n",
    )
    .expect_err("same instant");
    assert_eq!(
        error.detail,
        "line 3 repeats the key of line 2 (at = \"2026-03-01T09:00:00Z\")"
    );
}

#[test]
fn an_unchanged_file_gives_no_records_and_keeps_its_cursor() {
    let csv = settings(&["id"], &[], b',');
    let mut source =
        super::super::test_source(crate::config::SourceKind::Csv, "http://127.0.0.1/x.csv");
    source.csv = Some(csv);
    let body = b"id,n\n1,7\n";
    let first = Csv
        .first_request(
            &source,
            "rows",
            None,
            &SyncWindow {
                start: None,
                lookback: Duration::ZERO,
            },
        )
        .expect("no cursor yet");
    let page = Csv
        .parse_page(&source, "rows", &first, &HeaderMap::new(), body)
        .expect("valid");
    assert_eq!(page.records.len(), 1);
    assert!(page.next.is_none());
    assert!(is_cursor(&page.cursor), "{}", page.cursor);

    let again = Csv
        .first_request(
            &source,
            "rows",
            Some(&page.cursor),
            &SyncWindow {
                start: None,
                lookback: Duration::ZERO,
            },
        )
        .expect("own cursor");
    let unchanged = Csv
        .parse_page(&source, "rows", &again, &HeaderMap::new(), body)
        .expect("valid");
    assert!(unchanged.records.is_empty());
    assert_eq!(unchanged.cursor, page.cursor);

    let changed = Csv
        .parse_page(&source, "rows", &again, &HeaderMap::new(), b"id,n\n1,8\n")
        .expect("valid");
    assert_eq!(changed.records.len(), 1);
    assert_ne!(changed.cursor, page.cursor);

    // The same bytes read with another column type are other records.
    let retyped = Csv
        .parse_page(
            &SourceConfig {
                csv: Some(settings(&["id"], &[("n", CsvColumnType::Integer)], b',')),
                ..source.clone()
            },
            "rows",
            &again,
            &HeaderMap::new(),
            body,
        )
        .expect("valid");
    assert_eq!(retyped.records.len(), 1);
    assert_ne!(retyped.cursor, page.cursor);

    let error = Csv
        .first_request(
            &source,
            "rows",
            Some("walk:123"),
            &SyncWindow {
                start: None,
                lookback: Duration::ZERO,
            },
        )
        .expect_err("not a CSV cursor");
    assert!(matches!(error, SourceError::BadCursor(_)), "{error}");
}

#[test]
fn the_probe_checks_the_header() {
    let mut source =
        super::super::test_source(crate::config::SourceKind::Csv, "http://127.0.0.1/x.csv");
    source.csv = Some(settings(&["id"], &[("total", CsvColumnType::Number)], b','));
    assert!(
        Csv.check_probe(&source, &HeaderMap::new(), b"id,total\n1,x\n")
            .is_ok()
    );
    let error = Csv
        .check_probe(&source, &HeaderMap::new(), b"id,amount\n")
        .expect_err("no total column");
    assert!(
        error.detail.contains("declared column(s) \"total\""),
        "{}",
        error.detail
    );
}
