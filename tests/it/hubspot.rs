//! The HubSpot source against wiremock: the bearer token, CRM search pages (POST bodies
//! with the `hs_lastmodifieddate` filter, sort, properties and `after`), 429 without
//! `Retry-After`, HubSpot's own error message for a bad token, deals that change after
//! they were first synced, and the new query at the 10,000-result cap.
//!
//! The fixtures are HubSpot search responses trimmed to a few deals (page 1 stands for a
//! full page of 200, hence `paging.next.after = "200"`).

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

const TOKEN: &str = "pat-eu1-4f1c2b9a-7d3e-4e5f-9a8b-0c1d2e3f4a5b";
const SEARCH: &str = "/crm/v3/objects/deals/search";
/// `start_date = "2026-01-01"` in UTC, in epoch milliseconds as HubSpot's filters take it.
const START_MS: &str = "1767225600000";

fn config(database_url: &str, hubspot_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Sales"
timezone = "UTC"

[sources.crm]
kind = "hubspot"
schedule = "0 0 * * * *"
base_url = "{hubspot_url}"
start_date = "2026-01-01"
access_token = "${{TEST_STRIPE_KEY}}"

[measures.won_value]
perspective = "financial"
period = "month"
from = "crm.deals"
time = "properties.closedate"
where = "properties.dealstage == 'closedwon'"
value = "properties.amount"
aggregate = "sum"

[measures.deals_created]
perspective = "customer"
period = "month"
from = "crm.deals"
time = "properties.createdate"
aggregate = "count"
"#
    )
}

/// The search body's `hs_lastmodifieddate` filter, sort and page size, from `since_ms`.
fn search_filter(since_ms: &str) -> Value {
    json!({
        "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since_ms}]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 200,
    })
}

/// The JSON body of a recorded request.
fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

/// Matches a search for the first page (no `after`).
fn first_page(request: &Request) -> bool {
    body_of(request).get("after").is_none()
}

/// Mounts the two search pages, each expected once (the counts are the assertion).
async fn mount_pages(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(search_filter(START_MS)))
        .and(first_page)
        .respond_with(fixture_response("hubspot/deals_page_1.json"))
        .expect(1)
        .named("search page 1")
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_partial_json(search_filter(START_MS)))
        .and(body_partial_json(json!({"after": "200"})))
        .respond_with(fixture_response("hubspot/deals_page_2.json"))
        .expect(1)
        .named("search page 2")
        .mount(server)
        .await;
}

/// Answers the first search with HubSpot's 429 (no `Retry-After`: HubSpot documents none),
/// then lets the other mocks answer. Expected exactly once: the count is an assertion.
async fn mount_search_rate_limited_once(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .respond_with(ResponseTemplate::new(429).set_body_raw(
            fixture("hubspot/error_rate_limited.json"),
            "application/json",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .named("429 once")
        .mount(server)
        .await;
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "crm").await
}

async fn record_count(services: &Services) -> i64 {
    let state = services
        .store
        .stream_state("crm", "deals")
        .await
        .expect("state");
    services
        .store
        .record_count(state.id)
        .await
        .expect("record count")
}

async fn cursor(services: &Services) -> Option<String> {
    services
        .store
        .stream_state("crm", "deals")
        .await
        .expect("state")
        .cursor
}

#[tokio::test]
async fn syncs_deal_search_pages_into_won_value_per_close_month() {
    for db in TestDb::all().await {
        let hubspot = MockServer::start().await;
        mount_search_rate_limited_once(&hubspot).await;
        mount_pages(&hubspot).await;
        let services = services(settings(&config(&db.url, &hubspot.uri()), TOKEN)).await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!((report.streams[0].pages, report.streams[0].records), (2, 5));
        // Won deals by close date: March 12000 (101) + 3500.50 (102); April 4200 (104).
        // 103 is still open (contractsent) and 105 was lost.
        assert_eq!(
            series(&services, "won_value").await,
            [
                ("2026-03".into(), Some(15500.5)),
                ("2026-04".into(), Some(4200.0))
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            series(&services, "deals_created").await,
            [("2026-03".into(), Some(5.0)), ("2026-04".into(), Some(0.0))]
        );
        // The mark: deal 105's hs_lastmodifieddate, 2026-04-05T08:00:00.900Z, to the second.
        assert_eq!(
            cursor(&services).await.as_deref(),
            Some(r#"{"since":1775376000}"#)
        );
        // The stored record is HubSpot's deal object as sent.
        let state = services
            .store
            .stream_state("crm", "deals")
            .await
            .expect("state");
        let stored = services
            .store
            .records_after(state.id, 0, 10)
            .await
            .expect("records");
        let first: Value = serde_json::from_str(&stored[0].data).expect("JSON");
        let page_1: Value =
            serde_json::from_str(&fixture("hubspot/deals_page_1.json")).expect("fixture");
        assert_eq!(first, page_1["results"][0]);
        hubspot.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn the_next_sync_searches_from_the_mark_minus_lookback_and_replaces_changed_deals() {
    let db = TestDb::sqlite();
    let hubspot = MockServer::start().await;
    mount_pages(&hubspot).await;
    let services = services(settings(&config(&db.url, &hubspot.uri()), TOKEN)).await;
    assert!(sync(&services).await.is_success());
    hubspot.verify().await;

    // Since then deal 101 was moved to closed lost (HubSpot resets its close date to the
    // day it moved) and deal 103 was won for 8500; 105 comes again unchanged.
    hubspot.reset().await;
    let page_1: Value =
        serde_json::from_str(&fixture("hubspot/deals_page_1.json")).expect("fixture");
    let page_2: Value =
        serde_json::from_str(&fixture("hubspot/deals_page_2.json")).expect("fixture");
    let mut lost = page_1["results"][0].clone();
    lost["properties"]["dealstage"] = "closedlost".into();
    lost["properties"]["hs_is_closed_won"] = "false".into();
    lost["properties"]["closedate"] = "2026-04-06T09:00:00Z".into();
    lost["properties"]["hs_lastmodifieddate"] = "2026-04-06T09:00:00.120Z".into();
    lost["updatedAt"] = "2026-04-06T09:00:00.120Z".into();
    let mut won = page_1["results"][2].clone();
    won["properties"]["dealstage"] = "closedwon".into();
    won["properties"]["amount"] = "8500".into();
    won["properties"]["hs_is_closed"] = "true".into();
    won["properties"]["hs_is_closed_won"] = "true".into();
    won["properties"]["closedate"] = "2026-04-06T10:00:00Z".into();
    won["properties"]["hs_lastmodifieddate"] = "2026-04-06T10:00:03Z".into();
    won["updatedAt"] = "2026-04-06T10:00:03Z".into();
    let changes = json!({"total": 3, "results": [page_2["results"][1], lost, won]}).to_string();
    // Default lookback: one day before the mark 2026-04-05T08:00:00Z.
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_partial_json(search_filter("1775289600000")))
        .and(first_page)
        .respond_with(ResponseTemplate::new(200).set_body_raw(changes, "application/json"))
        .expect(1)
        .named("changes since the mark")
        .mount(&hubspot)
        .await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    let requests = hubspot.received_requests().await.expect("recorded");
    assert_eq!(
        body_of(&requests[0])["filterGroups"][0]["filters"][0]["value"],
        "1775289600000",
        "2026-04-04T08:00:00Z in epoch milliseconds"
    );
    // March loses deal 101's 12000; April gains deal 103's 8500.
    assert_eq!(
        series(&services, "won_value").await,
        [
            ("2026-03".into(), Some(3500.5)),
            ("2026-04".into(), Some(12700.0))
        ]
    );
    // No duplicates: still five deals, all created in March.
    assert_eq!(record_count(&services).await, 5);
    assert_eq!(
        series(&services, "deals_created").await,
        [("2026-03".into(), Some(5.0)), ("2026-04".into(), Some(0.0))]
    );
    assert_eq!(
        cursor(&services).await.as_deref(),
        Some(r#"{"since":1775469603}"#),
        "2026-04-06T10:00:03Z"
    );
    hubspot.verify().await;
}

#[tokio::test]
async fn an_invalid_token_names_hubspots_message() {
    let db = TestDb::sqlite();
    let hubspot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("hubspot/error_invalid_token.json"),
            "application/json;charset=utf-8",
        ))
        .expect(1)
        .mount(&hubspot)
        .await;
    let services = services(settings(&config(&db.url, &hubspot.uri()), "pat-wrong")).await;
    let report = sync(&services).await;
    let error = report.streams[0].error.as_deref().expect("failed");
    assert_eq!(
        error,
        "unauthorized (HTTP 401: Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview); check the source's API key or token"
    );
    assert!(!error.contains("pat-wrong"), "the token is never shown");
    assert_eq!(cursor(&services).await, None, "nothing committed");
    hubspot.verify().await;
}

/// Deals 1..=`COUNT`, deal N modified N/2 seconds after 2026-03-01 (two deals a second),
/// served as HubSpot's search does: filtered by the `hs_lastmodifieddate` GTE value, sorted
/// ascending, `limit` at a time from `after`, and a 400 past the 10,000th result.
struct CappedSearch {
    deals: Vec<Value>,
}

const COUNT: u64 = 10_100;
/// 2026-03-01T00:00:00Z.
const BASE_SECONDS: u64 = 1_772_323_200;

impl CappedSearch {
    fn new() -> Self {
        let deals = (1..=COUNT)
            .map(|id| {
                let millis = (BASE_SECONDS + id / 2) * 1000 + (id % 2) * 300;
                let modified = chrono::DateTime::from_timestamp_millis(millis as i64)
                    .expect("valid")
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                json!({
                    "id": id.to_string(),
                    "properties": {
                        "dealname": format!("Deal {id}"),
                        "dealstage": "appointmentscheduled",
                        "createdate": "2026-03-01T00:00:00Z",
                        "hs_lastmodifieddate": modified,
                        "hs_object_id": id.to_string(),
                    },
                    "createdAt": "2026-03-01T00:00:00Z",
                    "updatedAt": modified,
                    "archived": false,
                })
            })
            .collect();
        Self { deals }
    }

    fn modified_ms(deal: &Value) -> i64 {
        chrono::DateTime::parse_from_rfc3339(
            deal["properties"]["hs_lastmodifieddate"]
                .as_str()
                .expect("text"),
        )
        .expect("RFC 3339")
        .timestamp_millis()
    }
}

impl Respond for CappedSearch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = body_of(request);
        let since: i64 = body["filterGroups"][0]["filters"][0]["value"]
            .as_str()
            .expect("a filter value")
            .parse()
            .expect("epoch milliseconds");
        let after: usize = body["after"]
            .as_str()
            .map_or(0, |after| after.parse().expect("an integer after"));
        let limit = body["limit"].as_u64().expect("a limit") as usize;
        if after + limit > 10_000 {
            let error = json!({"status": "error", "message": "Cannot page beyond 10000 results", "category": "VALIDATION_ERROR"});
            return ResponseTemplate::new(400).set_body_json(error);
        }
        let matching: Vec<&Value> = self
            .deals
            .iter()
            .filter(|deal| Self::modified_ms(deal) >= since)
            .collect();
        let end = (after + limit).min(matching.len());
        let mut page = json!({"total": matching.len(), "results": matching[after.min(end)..end]});
        if end < matching.len() {
            page["paging"] = json!({"next": {"after": end.to_string()}});
        }
        ResponseTemplate::new(200).set_body_json(page)
    }
}

#[tokio::test]
async fn at_the_10000_result_cap_a_new_query_starts_from_the_newest_modification() {
    let db = TestDb::sqlite();
    let hubspot = MockServer::start().await;
    // 50 pages of 200 up to the cap, then one page from the new query.
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .respond_with(CappedSearch::new())
        .expect(51)
        .mount(&hubspot)
        .await;
    let text = config(&db.url, &hubspot.uri()).replace("start_date = \"2026-01-01\"\n", "");
    let services = services(settings(&text, TOKEN)).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        (report.streams[0].pages, report.streams[0].records),
        (51, 10_101),
        "10,000 results, then deals 10000..=10100 from deal 10000's second"
    );
    let requests = hubspot.received_requests().await.expect("recorded");
    let last = body_of(&requests[50]);
    assert_eq!(
        last["filterGroups"][0]["filters"][0]["value"], "1772328200000",
        "2026-03-01T01:23:20Z, deal 10000's hs_lastmodifieddate"
    );
    assert!(
        last.get("after").is_none(),
        "the new query starts at its first result"
    );
    assert_eq!(
        body_of(&requests[49])["after"],
        "9800",
        "the last page under the cap"
    );
    // Deal 10000 was read twice and stored once; no deal is missing.
    assert_eq!(record_count(&services).await, 10_100);
    assert_eq!(
        series(&services, "deals_created").await,
        [
            ("2026-03".into(), Some(10_100.0)),
            ("2026-04".into(), Some(0.0))
        ]
    );
    // Deal 10100: 2026-03-01T01:24:10Z.
    assert_eq!(
        cursor(&services).await.as_deref(),
        Some(r#"{"since":1772328250}"#)
    );
    hubspot.verify().await;
}

#[tokio::test]
async fn hubspot_needs_an_access_token_and_defaults_to_api_hubapi_com() {
    let text = config("sqlite://unused.db", "http://127.0.0.1:9")
        .replace("base_url = \"http://127.0.0.1:9\"\n", "");
    let env = std::collections::BTreeMap::from([("TEST_STRIPE_KEY".to_string(), "t".to_string())]);
    let settings = scorekeeper::config::load_str(&text, "test.toml", &env).expect("valid");
    let source = &settings.sources["crm"];
    assert_eq!(source.base_url.as_str(), "https://api.hubapi.com/");
    assert_eq!(source.streams, ["deals"]);
    assert_eq!(
        source.lookback,
        std::time::Duration::from_secs(24 * 3600),
        "default lookback: one day"
    );
    let without = text.replace("access_token = \"${TEST_STRIPE_KEY}\"\n", "");
    let error = scorekeeper::config::load_str(&without, "test.toml", &env).expect_err("no token");
    assert!(
        error
            .problems
            .contains(&"sources.crm.access_token: is required for kind \"hubspot\"".to_string()),
        "{:?}",
        error.problems
    );
}
