//! The Xero source against wiremock: the tenant header, JSON dates, `page`/`pageSize` paging
//! to the last page, If-Modified-Since walks that pick up a voided invoice and a late
//! payment, the 401 problem body, and a 429 with Retry-After and Xero's limit headers.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use serde_json::Value;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

pub const TENANT: &str = "70784a63-d24b-46a9-a4db-0e70a274b056";
const TOKEN: &str = "xero-access-token-eyJhbGciOiJSUzI1NiJ9";
const INVOICES: &str = "/api.xro/2.0/Invoices";
const PAYMENTS: &str = "/api.xro/2.0/Payments";

fn config(database_url: &str, base_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Kiwi Bakery"
timezone = "Pacific/Auckland"
currency = "NZD"

[sources.ledger]
kind = "xero"
schedule = "0 0 * * * *"
base_url = "{base_url}"
tenant_id = "{TENANT}"
access_token = "${{TEST_STRIPE_KEY}}"
start_date = "2026-03-01"
{MEASURES}"#
    )
}

/// The measures a small business wants from Xero, shared with the OAuth tests.
pub const MEASURES: &str = r#"
[measures.invoiced_revenue]
perspective = "financial"
period = "month"
from = "ledger.invoices"
time = "Date"
where = "Type == 'ACCREC' && Status != 'DRAFT' && Status != 'VOIDED' && Status != 'DELETED'"
value = "Total"
aggregate = "sum"

[measures.invoices_issued]
perspective = "internal"
period = "month"
from = "ledger.invoices"
time = "Date"
where = "Type == 'ACCREC'"
aggregate = "count"

[measures.payments_received]
perspective = "financial"
period = "month"
from = "ledger.payments"
time = "Date"
where = "Status == 'AUTHORISED'"
value = "Amount"
aggregate = "sum"
"#;

/// `start_date = 2026-03-01` in Auckland (UTC+13), as Xero's If-Modified-Since.
const START: &str = "2026-02-28T11:00:00";

/// Invoice page 1 padded to the full 1000 (the fixture's pagination says 1002 invoices
/// over two pages) with older bills, which the revenue measures leave out.
fn full_first_page() -> String {
    let mut page: Value =
        serde_json::from_str(&fixture("xero/invoices_page_1.json")).expect("fixture");
    let real = page["Invoices"].as_array().expect("invoices").clone();
    let mut all: Vec<Value> = (0..1000 - real.len())
        .map(|n| {
            let mut bill = real[0].clone();
            bill["Type"] = "ACCPAY".into();
            bill["InvoiceID"] = format!("00000000-0000-4000-8000-{n:012}").into();
            bill["InvoiceNumber"] = format!("BILL-{n}").into();
            bill["Date"] = "/Date(1765756800000+0000)/".into();
            bill["UpdatedDateUTC"] = "/Date(1772323200000+0000)/".into();
            bill
        })
        .collect();
    all.extend(real);
    page["Invoices"] = Value::Array(all);
    page.to_string()
}

/// Mounts the first sync: two invoice pages and one payment page, each expected once.
pub async fn mount_first_sync(server: &MockServer, bearer: &str) {
    Mock::given(method("GET"))
        .and(path(INVOICES))
        .and(header("authorization", bearer))
        .and(header("xero-tenant-id", TENANT))
        .and(header("accept", "application/json"))
        .and(header("if-modified-since", START))
        .and(query_param("page", "1"))
        .and(query_param("pageSize", "1000"))
        .and(query_param("order", "UpdatedDateUTC ASC"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(full_first_page(), "application/json"),
        )
        .expect(1)
        .named("invoices page 1")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(INVOICES))
        .and(header("authorization", bearer))
        .and(header("if-modified-since", START))
        .and(query_param("page", "2"))
        .respond_with(fixture_response("xero/invoices_page_2.json"))
        .expect(1)
        .named("invoices page 2")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(PAYMENTS))
        .and(header("authorization", bearer))
        .and(header("xero-tenant-id", TENANT))
        .and(header("if-modified-since", START))
        .and(query_param("page", "1"))
        .respond_with(fixture_response("xero/payments.json"))
        .expect(1)
        .named("payments")
        .mount(server)
        .await;
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "ledger").await
}

fn month(label: &str, value: f64) -> (String, Option<f64>) {
    (label.to_string(), Some(value))
}

/// The monthly measures after the first sync, by hand from the fixtures: sales invoices
/// INV-0001 (1150) and INV-0002 (460) in March, INV-0003 (920) and INV-0004 (345) in April,
/// INV-0005 a draft (left out); payments 1150 (March) and 345 (April).
pub async fn assert_first_sync_measures(services: &Services) {
    assert_eq!(
        series(services, "invoiced_revenue").await,
        [month("2026-03", 1610.0), month("2026-04", 1265.0)]
    );
    assert_eq!(
        series(services, "invoices_issued").await,
        [month("2026-03", 2.0), month("2026-04", 3.0)]
    );
    assert_eq!(
        series(services, "payments_received").await,
        [month("2026-03", 1150.0), month("2026-04", 345.0)]
    );
}

#[tokio::test]
async fn syncs_every_page_then_picks_up_a_voided_invoice_and_a_late_payment() {
    for db in TestDb::all().await {
        let server = MockServer::start().await;
        let bearer = format!("Bearer {TOKEN}");
        mount_first_sync(&server, &bearer).await;
        let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(report.streams[0].pages, 2);
        assert_eq!(report.streams[0].records, 1002);
        server.verify().await;
        assert_first_sync_measures(&services).await;

        // INV-0002 is voided and a payment for INV-0003 is recorded late. The next walks
        // ask for changes since the newest UpdatedDateUTC minus a day: invoices
        // 2026-04-29T05:00Z (INV-0005), payments 2026-04-25T04:00Z.
        server.reset().await;
        Mock::given(method("GET"))
            .and(path(INVOICES))
            .and(header("if-modified-since", "2026-04-28T05:00:00"))
            .and(query_param("page", "1"))
            .respond_with(fixture_response("xero/invoices_changed.json"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(PAYMENTS))
            .and(header("if-modified-since", "2026-04-24T04:00:00"))
            .and(query_param("page", "1"))
            .respond_with(fixture_response("xero/payments_late.json"))
            .expect(1)
            .mount(&server)
            .await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        server.verify().await;
        assert_eq!(
            series(&services, "invoiced_revenue").await,
            [month("2026-03", 1150.0), month("2026-04", 1265.0)]
        );
        assert_eq!(
            series(&services, "invoices_issued").await,
            [month("2026-03", 2.0), month("2026-04", 3.0)],
            "re-read invoices replaced themselves"
        );
        assert_eq!(
            series(&services, "payments_received").await,
            [month("2026-03", 1150.0), month("2026-04", 1265.0)]
        );
        services.store.close().await;
    }
}

#[tokio::test]
async fn a_refused_token_fails_with_xeros_problem_detail() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("xero/error_unauthorized.json"), "application/json"),
        )
        // Two streams, one refused request each: a 401 is not retried.
        .expect(2)
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
    let report = sync(&services).await;
    let error = report.streams[1].error.clone().expect("failed");
    assert_eq!(
        error,
        "unauthorized (HTTP 401: AuthenticationUnsuccessful); check the source's API key or token"
    );
    assert!(!error.contains(TOKEN));
}

#[tokio::test]
async fn waits_for_retry_after_on_429_then_succeeds() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PAYMENTS))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .insert_header("x-rate-limit-problem", "minute")
                .insert_header("x-minlimit-remaining", "0")
                .insert_header("x-daylimit-remaining", "4870"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .named("429 once")
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(PAYMENTS))
        .and(header_exists("if-modified-since"))
        .respond_with(fixture_response("xero/payments.json"))
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
            "start_date = \"2026-03-01\"\nstreams = [\"payments\"]",
        );
    let services = services(settings(&text, TOKEN)).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.streams[0].records, 2);
    server.verify().await;
}
