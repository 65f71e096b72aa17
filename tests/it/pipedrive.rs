//! The Pipedrive source against wiremock: the query-string token (never shown), v2 cursor
//! pagination, and deals that change after they were first synced.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const TOKEN: &str = "pd-secret-0123456789abcdef";

fn config(database_url: &str, pipedrive_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Sales"
timezone = "UTC"

[sources.crm]
kind = "pipedrive"
schedule = "0 0 * * * *"
company_domain = "acme"
base_url = "{pipedrive_url}"
api_token = "${{TEST_STRIPE_KEY}}"
start_date = "2026-01-01"

[measures.won_value]
perspective = "financial"
period = "month"
from = "crm.deals"
time = "won_time"
where = "status == 'won'"
value = "value"
aggregate = "sum"
"#
    )
}

fn deal(id: u32, status: &str, value: u32, won_time: Option<&str>, update_time: &str) -> String {
    let won = won_time.map_or("null".to_string(), |time| format!("\"{time}\""));
    format!(
        r#"{{"id":{id},"title":"Catering {id}","value":{value},"currency":"EUR","status":"{status}","add_time":"2026-02-01T09:00:00Z","update_time":"{update_time}","won_time":{won},"stage_id":2,"pipeline_id":1,"owner_id":7}}"#
    )
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "crm").await
}

#[tokio::test]
async fn syncs_deals_over_cursor_pages_and_picks_up_a_deal_won_later() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    let page_1 = format!(
        r#"{{"success":true,"data":[{},{}],"additional_data":{{"next_cursor":"eyJpZCI6Mn0"}}}}"#,
        deal(
            1,
            "won",
            1200,
            Some("2026-03-05T10:00:00Z"),
            "2026-03-05T10:00:00Z"
        ),
        deal(2, "open", 800, None, "2026-03-06T10:00:00Z")
    );
    let page_2 = format!(
        r#"{{"success":true,"data":[{}],"additional_data":{{"next_cursor":null}}}}"#,
        deal(
            3,
            "won",
            500,
            Some("2026-04-01T10:00:00Z"),
            "2026-04-01T10:00:00Z"
        )
    );
    Mock::given(method("GET"))
        .and(path("/api/v2/deals"))
        .and(query_param("api_token", TOKEN))
        .and(query_param("limit", "500"))
        .and(query_param("sort_by", "update_time"))
        .and(query_param("updated_since", "2026-01-01T00:00:00Z"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(page_1, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/deals"))
        .and(query_param("api_token", TOKEN))
        .and(query_param("cursor", "eyJpZCI6Mn0"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(page_2, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
    assert!(sync(&services).await.is_success());
    assert_eq!(
        series(&services, "won_value").await,
        [
            ("2026-03".into(), Some(1200.0)),
            ("2026-04".into(), Some(500.0))
        ]
    );
    server.verify().await;

    // Deal 2 was won in April: its update_time moves and the next walk (newest update_time
    // 2026-04-01T10:00:00Z minus the 7-day lookback) brings it again.
    server.reset().await;
    let changed = format!(
        r#"{{"success":true,"data":[{}],"additional_data":{{"next_cursor":null}}}}"#,
        deal(
            2,
            "won",
            800,
            Some("2026-04-02T10:00:00Z"),
            "2026-04-02T10:00:00Z"
        )
    );
    Mock::given(method("GET"))
        .and(path("/api/v2/deals"))
        .and(query_param("updated_since", "2026-03-25T10:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(changed, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    assert!(sync(&services).await.is_success());
    assert_eq!(
        series(&services, "won_value").await,
        [
            ("2026-03".into(), Some(1200.0)),
            ("2026-04".into(), Some(1300.0))
        ]
    );
    server.verify().await;
}

#[tokio::test]
async fn errors_show_the_url_without_the_token() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"success":false,"error":"Not found","errorCode":404}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
    let error = sync(&services).await.streams[0]
        .error
        .clone()
        .expect("failed");
    assert!(
        error.starts_with("HTTP 404 from http://127.0.0.1:")
            && error.contains("/api/v2/deals?limit=500")
            && error.ends_with(": Not found"),
        "{error}"
    );
    assert!(!error.contains(TOKEN), "{error}");
    let runs = services.store.latest_runs().await.expect("runs");
    assert!(!runs[0].error.as_deref().unwrap_or_default().contains(TOKEN));
}
