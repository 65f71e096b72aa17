//! The CSV source: a real file on disk and one served by wiremock, synced through the real
//! engine and store into monthly measures; unchanged files skipped, changed files re-read
//! without duplicates, and bad input failing the whole file with nothing stored.

use std::path::{Path, PathBuf};

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use scorekeeper::sources::http::HttpClient;
use scorekeeper::sources::presets;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// The POS export in the shape the docs use: sales summed by `sold_at` (a datetime),
/// receipts counted by `day` (a date), refunded sales left out.
fn config(database_url: &str, location: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Bakery"
timezone = "Europe/Berlin"

[sources.pos]
kind = "csv"
schedule = "0 0 * * * *"
{location}
key = ["receipt_id"]
columns = {{ total = "number", sold_at = "datetime", items = "integer", refunded = "boolean", day = "date" }}

[measures.sales]
perspective = "financial"
period = "month"
from = "pos.rows"
time = "sold_at"
where = "!refunded"
value = "total"
aggregate = "sum"

[measures.receipts]
perspective = "customer"
period = "month"
from = "pos.rows"
time = "day"
aggregate = "count"
"#
    )
}

fn path_line(file: &Path) -> String {
    format!("path = \"{}\"", file.display())
}

/// A temp folder holding `name` with `contents`.
fn temp_file(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(name);
    std::fs::write(&file, contents).expect("write the CSV file");
    (dir, file)
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "pos").await
}

async fn cursor(services: &Services) -> Option<String> {
    services
        .store
        .stream_state("pos", "rows")
        .await
        .expect("state")
        .cursor
}

/// The stored records of `pos.rows` as (key, JSON text), in insertion order.
async fn stored(services: &Services, source: &str) -> Vec<(String, String)> {
    let state = services
        .store
        .stream_state(source, "rows")
        .await
        .expect("state");
    services
        .store
        .records_after(state.id, 0, 1_000)
        .await
        .expect("records")
        .into_iter()
        .map(|record| (record.key, record.data))
        .collect()
}

fn only_stream(report: &SourceReport) -> (u64, u64, Option<&str>) {
    assert_eq!(report.streams.len(), 1, "{report:?}");
    let stream = &report.streams[0];
    assert_eq!(stream.stream, "rows");
    (stream.records, stream.changed, stream.error.as_deref())
}

#[tokio::test]
async fn syncs_a_local_file_into_monthly_measures_and_rereads_it_only_when_it_changes() {
    for db in TestDb::all().await {
        let (_dir, file) = temp_file("pos-sales.csv", &fixture("csv/pos-sales.csv"));
        let services = services(settings(&config(&db.url, &path_line(&file)), "unused")).await;

        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(only_stream(&report), (5, 5, None));
        // Berlin months. Sales: March r-1001 12.50 + r-1002 7.25 (r-1003 is refunded);
        // April r-1004 (22:30 UTC on March 31 is 00:30 on April 1 in Berlin) 18.75 + r-1005 25.
        assert_eq!(
            series(&services, "sales").await,
            [
                ("2026-03".into(), Some(19.75)),
                ("2026-04".into(), Some(43.75))
            ],
            "{}",
            db.backend
        );
        // Receipts by `day`: 03-02, 03-02, 03-15 in March; 04-01, 04-10 in April.
        assert_eq!(
            series(&services, "receipts").await,
            [("2026-03".into(), Some(3.0)), ("2026-04".into(), Some(2.0))]
        );
        let records = stored(&services, "pos").await;
        assert_eq!(records.len(), 5);
        // Header order, typed values, UTC date-times, null for empty cells, and a quoted
        // note that holds a line break.
        assert_eq!(
            records[2],
            (
                "r-1003".into(),
                r#"{"receipt_id":"r-1003","sold_at":"2026-03-15T16:05:00Z","day":"2026-03-15","total":30.0,"items":5,"refunded":true,"cashier":"Ana","note":"Refunded: stale\nbread"}"#.into()
            )
        );
        assert_eq!(
            records[1].1,
            r#"{"receipt_id":"r-1002","sold_at":"2026-03-02T09:40:00Z","day":"2026-03-02","total":7.25,"items":2,"refunded":false,"cashier":"Ben","note":"Croissants, two"}"#
        );
        assert!(records[0].1.ends_with(r#""cashier":"Ana","note":null}"#));
        let first_cursor = cursor(&services).await.expect("a cursor after the sync");
        assert!(first_cursor.starts_with("csv1:sha256:"), "{first_cursor}");

        // Unchanged: the file is read, found identical, and nothing is parsed or written.
        let report = sync(&services).await;
        assert!(report.is_success(), "{report:?}");
        assert_eq!(only_stream(&report), (0, 0, None));
        assert_eq!(
            cursor(&services).await.as_deref(),
            Some(first_cursor.as_str())
        );

        // r-1002 now costs 10.25 and r-1006 was added on April 20: the whole file is read
        // again, the unchanged rows are not rewritten, and nothing is counted twice.
        let changed = fixture("csv/pos-sales.csv").replace(
            "r-1002,2026-03-02 09:40:00,2026-03-02,7.25",
            "r-1002,2026-03-02 09:40:00,2026-03-02,10.25",
        ) + "r-1006,2026-04-20T15:00:00Z,2026-04-20,5,1,no,Ben,\n";
        std::fs::write(&file, changed).expect("rewrite the file");
        let report = sync(&services).await;
        assert!(report.is_success(), "{report:?}");
        assert_eq!(only_stream(&report), (6, 2, None));
        assert_eq!(
            series(&services, "sales").await,
            [
                ("2026-03".into(), Some(22.75)),
                ("2026-04".into(), Some(48.75))
            ]
        );
        assert_eq!(
            series(&services, "receipts").await,
            [("2026-03".into(), Some(3.0)), ("2026-04".into(), Some(3.0))]
        );
        assert_eq!(stored(&services, "pos").await.len(), 6);
        assert_ne!(cursor(&services).await, Some(first_cursor));
        services.store.close().await;
    }
}

#[tokio::test]
async fn syncs_a_file_served_over_http_through_the_shared_client() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    // One 503 first: the URL goes through the shared client, which retries it.
    Mock::given(method("GET"))
        .and(path("/exports/pos-sales.csv"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    // Two syncs, two downloads (the count is the assertion): the second finds the same
    // content and stores nothing.
    Mock::given(method("GET"))
        .and(path("/exports/pos-sales.csv"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("csv/pos-sales.csv"), "text/csv"),
        )
        .expect(2)
        .mount(&server)
        .await;
    let location = format!("url = \"{}/exports/pos-sales.csv\"", server.uri());
    let services = services(settings(&config(&db.url, &location), "unused")).await;
    let report = sync(&services).await;
    assert_eq!(only_stream(&report), (5, 5, None));
    assert_eq!(
        series(&services, "sales").await,
        [
            ("2026-03".into(), Some(19.75)),
            ("2026-04".into(), Some(43.75))
        ]
    );
    let report = sync(&services).await;
    assert_eq!(only_stream(&report), (0, 0, None));
    server.verify().await;
}

#[tokio::test]
async fn a_bad_row_in_a_served_file_names_the_redacted_url() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    let body = fixture("csv/pos-sales.csv").replace(",7.25,2,", ",7.25,two,");
    Mock::given(method("GET"))
        .and(path("/exports/pos-sales.csv"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/csv"))
        .expect(1)
        .mount(&server)
        .await;
    let location = format!(
        "url = \"{}/exports/pos-sales.csv?access_token=s3cr3t-export-token\"",
        server.uri()
    );
    let services = services(settings(&config(&db.url, &location), "unused")).await;
    let report = sync(&services).await;
    assert_eq!(
        only_stream(&report),
        (
            0,
            0,
            Some(
                format!(
                    "malformed response from {}/exports/pos-sales.csv?access_token=***: line 3, column \"items\": \"two\" is not a whole number",
                    server.uri()
                )
                .as_str()
            )
        )
    );
    assert!(stored(&services, "pos").await.is_empty());
    assert_eq!(cursor(&services).await, None);
    server.verify().await;
}

#[tokio::test]
async fn bad_input_fails_the_whole_file_naming_file_line_and_column_and_stores_nothing() {
    let good = fixture("csv/pos-sales.csv");
    let cases: Vec<(&str, String, String)> = vec![
        (
            "a non-number in a number column",
            good.replace("r-1004,2026-03-31T22:30:00Z,2026-04-01,18.75", "r-1004,2026-03-31T22:30:00Z,2026-04-01,18.7S"),
            // Line 6: the note of r-1003 spans lines 4 and 5.
            "line 6, column \"total\": \"18.7S\" is not a number".into(),
        ),
        (
            "a missing key column",
            good.replace("receipt_id,", "receipt,"),
            "line 1: the header lacks key column(s) \"receipt_id\"; it has \"receipt\", \"sold_at\", \"day\", \"total\", \"items\", \"refunded\", \"cashier\", \"note\"".into(),
        ),
        (
            "a missing declared column",
            good.replace(",refunded,", ",returned,"),
            "line 1: the header lacks declared column(s) \"refunded\"; it has \"receipt_id\", \"sold_at\", \"day\", \"total\", \"items\", \"returned\", \"cashier\", \"note\"".into(),
        ),
        (
            "a duplicate key",
            good.replace("r-1005,", "r-1002,"),
            "line 7 repeats the key of line 3 (receipt_id = \"r-1002\")".into(),
        ),
    ];
    for (what, contents, detail) in cases {
        let db = TestDb::sqlite();
        let (_dir, file) = temp_file("pos-sales.csv", &contents);
        let services = services(settings(&config(&db.url, &path_line(&file)), "unused")).await;
        let report = sync(&services).await;
        let expected = format!("malformed response from {}: {detail}", file.display());
        assert_eq!(
            only_stream(&report),
            (0, 0, Some(expected.as_str())),
            "{what}"
        );
        assert!(stored(&services, "pos").await.is_empty(), "{what}");
        assert_eq!(cursor(&services).await, None, "{what}");
    }

    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("not-exported-yet.csv");
    let services = services(settings(&config(&db.url, &path_line(&missing)), "unused")).await;
    let report = sync(&services).await;
    let expected = format!(
        "cannot read {}: No such file or directory (os error 2)",
        missing.display()
    );
    assert_eq!(only_stream(&report), (0, 0, Some(expected.as_str())));
    assert!(stored(&services, "pos").await.is_empty());
}

#[tokio::test]
async fn a_bad_edit_after_a_good_sync_leaves_the_stored_rows_and_cursor_alone() {
    for db in TestDb::all().await {
        let (_dir, file) = temp_file("pos-sales.csv", &fixture("csv/pos-sales.csv"));
        let services = services(settings(&config(&db.url, &path_line(&file)), "unused")).await;
        assert!(sync(&services).await.is_success());
        let before = stored(&services, "pos").await;
        let good_cursor = cursor(&services).await;

        // r-1001 changed (which would be stored) and r-1005 broken (which fails the file).
        let edited = fixture("csv/pos-sales.csv")
            .replace(",12.50,3,", ",99.00,3,")
            .replace(",25,6,0,", ",25,6,perhaps,");
        std::fs::write(&file, edited).expect("rewrite the file");
        let report = sync(&services).await;
        let expected = format!(
            "malformed response from {}: line 7, column \"refunded\": \"perhaps\" is not a boolean (true/false, yes/no, 1/0)",
            file.display()
        );
        assert_eq!(
            only_stream(&report),
            (0, 0, Some(expected.as_str())),
            "{}",
            db.backend
        );
        assert_eq!(stored(&services, "pos").await, before);
        assert_eq!(cursor(&services).await, good_cursor);
        assert_eq!(
            series(&services, "sales").await,
            [
                ("2026-03".into(), Some(19.75)),
                ("2026-04".into(), Some(43.75))
            ]
        );
        services.store.close().await;
    }
}

#[tokio::test]
async fn semicolons_composite_keys_and_quoted_fields() {
    let db = TestDb::sqlite();
    let (_dir, file) = temp_file("branches.csv", &fixture("csv/branches.csv"));
    let text = format!(
        r#"
[database]
url = "{}"

[scorecard]
name = "Bakery"
timezone = "Europe/Berlin"

[sources.branches]
kind = "csv"
schedule = "0 0 * * * *"
path = "{}"
delimiter = ";"
key = ["branch", "receipt"]
columns = {{ sold_on = "date", total = "number" }}

[measures.branch_sales]
perspective = "financial"
period = "month"
from = "branches.rows"
time = "sold_on"
value = "total"
aggregate = "sum"
"#,
        db.url,
        file.display()
    );
    let services = services(settings(&text, "unused")).await;
    let report = sync_source(&services, "branches").await;
    assert!(report.is_success(), "{report:?}");
    // Receipt 0001 exists at both branches: two rows, not one.
    let records = stored(&services, "branches").await;
    let keys: Vec<&str> = records.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Mitte\u{1f}0001",
            "Mitte\u{1f}0002",
            "Hafen\u{1f}0001",
            "Hafen\u{1f}0002"
        ]
    );
    assert_eq!(
        records[1].1,
        r#"{"branch":"Mitte","receipt":"0002","sold_on":"2026-03-20","total":10.5,"note":"semicolon; comma, and\na line break"}"#
    );
    assert_eq!(
        records[2].1,
        r#"{"branch":"Hafen","receipt":"0001","sold_on":"2026-03-03","total":6,"note":"quoted \"word\""}"#
    );
    // March 4.5 + 10.5 + 6; April 8.
    assert_eq!(
        series(&services, "branch_sales").await,
        [
            ("2026-03".into(), Some(21.0)),
            ("2026-04".into(), Some(8.0))
        ]
    );
}

/// What `scorekeeper check --connect` does for the source `pos` of `text`.
async fn check(text: String) -> Result<(), String> {
    let http = HttpClient::new(fast_retries()).expect("client");
    let settings = settings(&text, "unused");
    let source = &settings.sources["pos"];
    let preset = presets::preset(source.kind);
    let auth = preset.auth(source).expect("no credentials needed");
    http.send(
        &preset.probe(source),
        &auth,
        &CancellationToken::new(),
        |headers, body| preset.check_probe(source, headers, body),
    )
    .await
    .map_err(|error| error.to_string())
}

#[tokio::test]
async fn the_connection_check_reads_the_header() {
    let db = TestDb::sqlite();
    let (_dir, file) = temp_file("pos-sales.csv", &fixture("csv/pos-sales.csv"));
    assert_eq!(check(config(&db.url, &path_line(&file))).await, Ok(()));

    std::fs::write(&file, "receipt_id,sold_at,total\n").expect("rewrite the file");
    assert_eq!(
        check(config(&db.url, &path_line(&file))).await,
        Err(format!(
            "malformed response from {}: line 1: the header lacks declared column(s) \"day\", \"items\", \"refunded\"; it has \"receipt_id\", \"sold_at\", \"total\"",
            file.display()
        ))
    );

    let missing = file.with_file_name("elsewhere.csv");
    assert_eq!(
        check(config(&db.url, &path_line(&missing))).await,
        Err(format!(
            "cannot read {}: No such file or directory (os error 2)",
            missing.display()
        ))
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/exports/pos-sales.csv"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no such export"))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}/exports/pos-sales.csv", server.uri());
    assert_eq!(
        check(config(&db.url, &format!("url = \"{url}\""))).await,
        Err(format!("HTTP 404 from {url}: no such export"))
    );
}
