//! The QuickBooks Online source against wiremock: query-API pages by STARTPOSITION, the
//! monthly Profit and Loss report flattened per account, a voided invoice and a late
//! payment picked up by the next sync, Intuit's 401 fault, and a 429 without Retry-After.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const REALM: &str = "9130357766554433";
const TOKEN: &str = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.qbo-access-token";
const QUERY_PATH: &str = "/v3/company/9130357766554433/query";
const REPORT_PATH: &str = "/v3/company/9130357766554433/reports/ProfitAndLoss";

fn config(database_url: &str, base_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Bakery Books"
timezone = "America/Chicago"
currency = "USD"

[sources.books]
kind = "quickbooks"
schedule = "0 0 * * * *"
base_url = "{base_url}"
realm_id = "{REALM}"
access_token = "${{TEST_STRIPE_KEY}}"
start_date = "2026-03-01"

[measures.invoiced_revenue]
perspective = "financial"
period = "month"
from = "books.invoices"
time = "TxnDate"
value = "TotalAmt"
aggregate = "sum"

[measures.invoices_issued]
perspective = "internal"
period = "month"
from = "books.invoices"
time = "TxnDate"
aggregate = "count"

[measures.payments_received]
perspective = "financial"
period = "month"
from = "books.payments"
time = "TxnDate"
value = "TotalAmt"
aggregate = "sum"

[measures.pnl_income]
perspective = "financial"
period = "month"
from = "books.profit_and_loss"
time = "month"
where = "group == 'Income'"
value = "amount"
aggregate = "sum"

[measures.pnl_expenses]
perspective = "financial"
period = "month"
from = "books.profit_and_loss"
time = "month"
where = "group == 'Expenses' || group == 'COGS'"
value = "amount"
aggregate = "sum"
"#
    )
}

/// The select statement the preset sends for `entity` from `since` at `position`.
fn select(entity: &str, since: &str, position: usize) -> String {
    format!(
        "SELECT * FROM {entity} WHERE MetaData.LastUpdatedTime >= '{since}' ORDERBY MetaData.LastUpdatedTime STARTPOSITION {position} MAXRESULTS 1000"
    )
}

/// `start_date = 2026-03-01` in Chicago, in UTC.
const START: &str = "2026-03-01T06:00:00+00:00";

/// Invoice page 1 padded to a full page of 1000 with older zero-amount invoices (as a
/// real first page is), so the preset must ask for page 2.
fn full_first_page() -> String {
    let mut page: Value =
        serde_json::from_str(&fixture("quickbooks/invoices_page_1.json")).expect("fixture");
    let real = page["QueryResponse"]["Invoice"]
        .as_array()
        .expect("invoices")
        .clone();
    let mut all: Vec<Value> = (0..1000 - real.len())
        .map(|n| {
            let mut filler = real[0].clone();
            filler["Id"] = Value::from(format!("{}", 500 + n));
            filler["DocNumber"] = filler["Id"].clone();
            filler["TxnDate"] = "2025-12-15".into();
            filler["TotalAmt"] = 0.into();
            filler["Balance"] = 0.into();
            filler["MetaData"]["LastUpdatedTime"] = "2026-03-01T08:00:00-08:00".into();
            filler
        })
        .collect();
    all.extend(real);
    page["QueryResponse"]["Invoice"] = Value::Array(all);
    page["QueryResponse"]["maxResults"] = 1000.into();
    page.to_string()
}

fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// The last day of the current month, the end of every report request.
fn report_end() -> String {
    use chrono::{Datelike, Months};
    let today = chrono::Utc::now().date_naive();
    let first = today.with_day(1).expect("first day");
    (first + Months::new(1))
        .pred_opt()
        .expect("a day before")
        .to_string()
}

async fn mount_first_sync(server: &MockServer) {
    let bearer = format!("Bearer {TOKEN}");
    Mock::given(method("GET"))
        .and(path(QUERY_PATH))
        .and(header("authorization", bearer.as_str()))
        .and(header("accept", "application/json"))
        .and(query_param("query", select("Invoice", START, 1)))
        .and(query_param("minorversion", "75"))
        .respond_with(json(full_first_page()))
        .expect(1)
        .named("invoices page 1")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY_PATH))
        .and(query_param("query", select("Invoice", START, 1001)))
        .respond_with(fixture_response("quickbooks/invoices_page_2.json"))
        .expect(1)
        .named("invoices page 2")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY_PATH))
        .and(query_param("query", select("Payment", START, 1)))
        .respond_with(fixture_response("quickbooks/payments.json"))
        .expect(1)
        .named("payments")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(REPORT_PATH))
        .and(header("accept", "application/json"))
        .and(query_param("start_date", "2026-03-01"))
        .and(query_param("end_date", report_end()))
        .and(query_param("summarize_column_by", "Month"))
        .respond_with(fixture_response("quickbooks/profit_and_loss.json"))
        .expect(1)
        .named("profit and loss")
        .mount(server)
        .await;
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "books").await
}

fn month(label: &str, value: f64) -> (String, Option<f64>) {
    (label.to_string(), Some(value))
}

#[tokio::test]
async fn syncs_every_page_and_the_monthly_measures_then_picks_up_a_void_and_a_late_payment() {
    for db in TestDb::all().await {
        let server = MockServer::start().await;
        mount_first_sync(&server).await;
        let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(report.streams[0].pages, 2, "invoices over two pages");
        assert_eq!(report.streams[0].records, 1002);
        server.verify().await;

        // By hand from the fixtures: March invoices 1001 (1200) + 1002 (450); April 1003
        // (800) + 1004 (300) + 1005 (650.50). Payments 2001 (1200, March), 2002 (300, April).
        // P&L income: March 1200 (sales) + 450 (services); April 1450.50 + 300 (catering).
        // P&L costs: COGS 400 / 520, rent 900 / 900, utilities 120 / 95.40.
        assert_eq!(
            series(&services, "invoiced_revenue").await,
            [month("2026-03", 1650.0), month("2026-04", 1750.5)]
        );
        assert_eq!(
            series(&services, "invoices_issued").await,
            [month("2026-03", 2.0), month("2026-04", 3.0)]
        );
        assert_eq!(
            series(&services, "payments_received").await,
            [month("2026-03", 1200.0), month("2026-04", 300.0)]
        );
        assert_eq!(
            series(&services, "pnl_income").await,
            [month("2026-03", 1650.0), month("2026-04", 1750.5)]
        );
        assert_eq!(
            series(&services, "pnl_expenses").await,
            [month("2026-03", 1420.0), month("2026-04", 1515.4)]
        );

        // Invoice 1002 is voided (its amounts become 0) and a payment for 1003 is entered
        // late. The next walks start a day (the lookback) before the newest
        // LastUpdatedTime: invoice 1005 at 2026-04-28T16:45Z, payment 2002 at 2026-04-20T17:00Z.
        server.reset().await;
        Mock::given(method("GET"))
            .and(path(QUERY_PATH))
            .and(query_param(
                "query",
                select("Invoice", "2026-04-27T16:45:00+00:00", 1),
            ))
            .respond_with(fixture_response("quickbooks/invoices_changed.json"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(QUERY_PATH))
            .and(query_param(
                "query",
                select("Payment", "2026-04-19T17:00:00+00:00", 1),
            ))
            .respond_with(fixture_response("quickbooks/payments_late.json"))
            .expect(1)
            .mount(&server)
            .await;
        // The P&L is read again from the month three before the current one (the fixture
        // stays trimmed to March and April): the voided 450 leaves the Services account.
        Mock::given(method("GET"))
            .and(path(REPORT_PATH))
            .and(query_param("end_date", report_end()))
            .respond_with(fixture_response(
                "quickbooks/profit_and_loss_after_void.json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        server.verify().await;
        assert_eq!(
            series(&services, "invoiced_revenue").await,
            [month("2026-03", 1200.0), month("2026-04", 1750.5)]
        );
        assert_eq!(
            series(&services, "invoices_issued").await,
            [month("2026-03", 2.0), month("2026-04", 3.0)],
            "the voided invoice replaced itself, nothing was counted twice"
        );
        assert_eq!(
            series(&services, "payments_received").await,
            [month("2026-03", 1200.0), month("2026-04", 1100.0)]
        );
        assert_eq!(
            series(&services, "pnl_income").await,
            [month("2026-03", 1200.0), month("2026-04", 1750.5)],
            "the Services account's own 450 is written as 0"
        );
        services.store.close().await;
    }
}

#[tokio::test]
async fn an_expired_token_fails_with_intuits_message_and_no_secret() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("quickbooks/fault_token_expired.json"),
            "application/json",
        ))
        // Three streams, one refused request each: a 401 is not retried.
        .expect(3)
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
    let report = sync(&services).await;
    assert!(!report.is_success());
    let error = report.streams[0].error.clone().expect("failed");
    assert_eq!(
        error,
        "unauthorized (HTTP 401: message=AuthenticationFailed; errorCode=003200; statusCode=401: Token expired: AB11773110003 (code 3200)); check the source's API key or token"
    );
    assert!(!error.contains(TOKEN));
    let runs = services.store.latest_runs().await.expect("runs");
    assert!(!runs[0].error.as_deref().unwrap_or_default().contains(TOKEN));
}

#[tokio::test]
async fn backs_off_on_429_without_retry_after_then_succeeds() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    // Intuit throttles with a bare 429 (no Retry-After); the client backs off on its own.
    Mock::given(method("GET"))
        .and(path(QUERY_PATH))
        .respond_with(ResponseTemplate::new(429).set_body_raw(
            r#"{"Fault":{"Error":[{"Message":"message=ThrottleExceeded; errorCode=003001; statusCode=429","Detail":"The request limit was reached.","code":"3001"}],"type":"SERVICE"}}"#,
            "application/json",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .named("429 once")
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY_PATH))
        .and(query_param("query", select("Invoice", START, 1)))
        .respond_with(fixture_response("quickbooks/invoices_page_2.json"))
        .expect(1)
        .mount(&server)
        .await;
    // One stream, so no measure reads the others.
    let full = config(&db.url, &server.uri());
    let text = full
        .split("\n[measures.")
        .next()
        .expect("the source part")
        .replace(
            "start_date = \"2026-03-01\"",
            "start_date = \"2026-03-01\"\nstreams = [\"invoices\"]",
        );
    let services = services(settings(&text, TOKEN)).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.streams[0].records, 2);
    server.verify().await;
}
