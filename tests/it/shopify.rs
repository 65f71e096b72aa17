//! The Shopify source against wiremock: the access-token header, `Link` header
//! pagination with `page_info`, Retry-After, string money and upstream changes.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const ORDERS: &str = "/admin/api/2026-07/orders.json";
const TOKEN: &str = "shpat_test_0123456789";

fn config(database_url: &str, shop_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Shop"
timezone = "Europe/Berlin"

[sources.shop]
kind = "shopify"
schedule = "0 0 * * * *"
shop = "acme"
base_url = "{shop_url}"
access_token = "${{TEST_STRIPE_KEY}}"
start_date = "2026-01-01"

[measures.sales]
perspective = "financial"
period = "month"
from = "shop.orders"
time = "created_at"
where = "financial_status == 'paid'"
value = "total_price"
aggregate = "sum"

[measures.orders_with_loaves]
perspective = "internal"
period = "month"
from = "shop.orders"
time = "created_at"
value = "size(line_items.filter(i, i.sku == 'SD-1'))"
aggregate = "sum"
"#
    )
}

/// Page 1 (filtered) links to page 2 (page_info only).
async fn mount(server: &MockServer) {
    let next = format!(
        "<{}{ORDERS}?limit=250&page_info=eyJsYXN0X2lkIjo0NTA3ODk0NzF9>; rel=\"next\"",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("x-shopify-access-token", TOKEN))
        .and(query_param("status", "any"))
        .and(query_param("limit", "250"))
        .and(query_param("updated_at_min", "2025-12-31T23:00:00Z"))
        .and(query_param_is_missing("page_info"))
        .respond_with(
            fixture_response("shopify/orders_page_1.json")
                .insert_header("link", next.as_str())
                .insert_header("x-shopify-shop-api-call-limit", "1/40"),
        )
        .expect(1)
        .mount(server)
        .await;
    // Shopify refuses filters beside page_info: the mock insists they are absent.
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param("page_info", "eyJsYXN0X2lkIjo0NTA3ODk0NzF9"))
        .and(query_param_is_missing("status"))
        .and(query_param_is_missing("updated_at_min"))
        .respond_with(fixture_response("shopify/orders_page_2.json"))
        .expect(1)
        .mount(server)
        .await;
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "shop").await
}

#[tokio::test]
async fn syncs_orders_across_link_header_pages() {
    for db in TestDb::all().await {
        let shop = MockServer::start().await;
        mount_rate_limited_once(&shop, ORDERS, "1.0", r#"{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}"#).await;
        mount(&shop).await;
        let services = services(settings(&config(&db.url, &shop.uri()), TOKEN)).await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!((report.streams[0].pages, report.streams[0].records), (2, 4));
        // Money arrives as strings ("49.90"); the pending April order is not counted.
        assert_eq!(
            series(&services, "sales").await,
            [
                ("2026-03".into(), Some(68.9)),
                ("2026-04".into(), Some(120.1))
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            series(&services, "orders_with_loaves").await,
            [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(2.0))]
        );
        shop.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn a_changed_order_comes_back_through_updated_at_min() {
    let db = TestDb::sqlite();
    let shop = MockServer::start().await;
    mount(&shop).await;
    let services = services(settings(&config(&db.url, &shop.uri()), TOKEN)).await;
    assert!(sync(&services).await.is_success());
    shop.verify().await;

    // The pending April order was paid: its updated_at moves, and the next walk (from the
    // newest updated_at, 2026-04-03T06:00:30Z, minus the 7-day lookback) brings it again.
    shop.reset().await;
    let paid = fixture("shopify/orders_page_2.json").replace(
        r#""financial_status": "pending""#,
        r#""financial_status": "paid""#,
    );
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param("updated_at_min", "2026-03-27T06:00:30Z"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(paid, "application/json"))
        .expect(1)
        .mount(&shop)
        .await;
    assert!(sync(&services).await.is_success());
    assert_eq!(
        series(&services, "sales").await,
        [
            ("2026-03".into(), Some(68.9)),
            ("2026-04".into(), Some(150.1))
        ]
    );
    shop.verify().await;
}

#[tokio::test]
async fn a_bad_token_names_the_api_message_and_a_bad_version_is_a_config_error() {
    let db = TestDb::sqlite();
    let shop = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("shopify/error_invalid_token.json"),
            "application/json",
        ))
        .mount(&shop)
        .await;
    let services = services(settings(&config(&db.url, &shop.uri()), "shpat_wrong")).await;
    let error = sync(&services).await.streams[0]
        .error
        .clone()
        .expect("failed");
    assert!(error.contains("Invalid API key or access token"), "{error}");

    let env = std::collections::BTreeMap::from([("TEST_STRIPE_KEY".to_string(), "t".to_string())]);
    let text = config("sqlite://unused.db", "http://127.0.0.1:9").replace(
        "shop = \"acme\"",
        "shop = \"acme\"\napi_version = \"July 2026\"",
    );
    let problems = scorekeeper::config::load_str(&text, "test.toml", &env)
        .expect_err("bad version")
        .problems;
    assert_eq!(
        problems,
        ["sources.shop.api_version: \"July 2026\" is not an API version (YYYY-MM, e.g. 2026-07)"]
    );
    let default_shop = config("sqlite://unused.db", "http://127.0.0.1:9")
        .replace("base_url = \"http://127.0.0.1:9\"\n", "");
    let settings = scorekeeper::config::load_str(&default_shop, "test.toml", &env).expect("valid");
    assert_eq!(
        settings.sources["shop"].base_url.as_str(),
        "https://acme.myshopify.com/"
    );
}

/// A nearly full bucket (`39/40`) holds the next request until it fits under the
/// ceiling the client keeps (35 of 40, draining at 2 per second): 2.5 seconds. Only the
/// lower bound is checked; a slow machine can only make the gap longer.
#[tokio::test]
async fn a_nearly_full_bucket_paces_the_next_request() {
    let db = TestDb::sqlite();
    let shop = MockServer::start().await;
    let next = format!(
        "<{}{ORDERS}?limit=250&page_info=eyJsYXN0X2lkIjo0NTA3ODk0NzF9>; rel=\"next\"",
        shop.uri()
    );
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param_is_missing("page_info"))
        .respond_with(
            fixture_response("shopify/orders_page_1.json")
                .insert_header("link", next.as_str())
                .insert_header("x-shopify-shop-api-call-limit", "39/40"),
        )
        .expect(1)
        .mount(&shop)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param("page_info", "eyJsYXN0X2lkIjo0NTA3ODk0NzF9"))
        .respond_with(fixture_response("shopify/orders_page_2.json"))
        .expect(1)
        .mount(&shop)
        .await;
    let services = services(settings(&config(&db.url, &shop.uri()), TOKEN)).await;
    let started = std::time::Instant::now();
    assert!(sync(&services).await.is_success());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_millis(2_400),
        "the second page came after {elapsed:?}, before the bucket had room"
    );
    shop.verify().await;
}
