//! The Freshdesk source against wiremock: API-key Basic auth, page numbers from the `link`
//! header, `updated_since` walks with lookback, the 300-page restart, Retry-After, and
//! measures over ticket status codes and satisfaction ratings.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

/// `base64("fd-secret-key:X")`: Freshdesk's API key as the Basic user, a dummy password.
const BASIC: &str = "Basic ZmQtc2VjcmV0LWtleTpY";
/// `start_date = "2026-01-01"` in UTC.
const START: &str = "2026-01-01T00:00:00Z";

fn config(database_url: &str, freshdesk_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Support"
timezone = "UTC"

[sources.helpdesk]
kind = "freshdesk"
schedule = "0 0 * * * *"
base_url = "{freshdesk_url}"
start_date = "2026-01-01"
api_key = "${{TEST_STRIPE_KEY}}"

[measures.resolved_tickets]
perspective = "internal"
period = "month"
from = "helpdesk.tickets"
time = "created_at"
where = "status == 4"
aggregate = "count"

[measures.csat_score]
perspective = "customer"
period = "month"
from = "helpdesk.satisfaction_ratings"
time = "created_at"
value = "ratings.default_question"
aggregate = "avg"
"#
    )
}

/// Freshdesk's `link` header to `page` of the ticket list at `base`.
fn next_link(base: &str, page: u32) -> String {
    format!(
        "<{base}/api/v2/tickets?updated_since=2026-01-01T00%3A00%3A00Z&order_by=updated_at&order_type=asc&per_page=100&page={page}>; rel=\"next\""
    )
}

async fn mount(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .and(header("authorization", BASIC))
        .and(query_param("updated_since", START))
        .and(query_param("order_by", "updated_at"))
        .and(query_param("order_type", "asc"))
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("page"))
        .respond_with(
            fixture_response("freshdesk/tickets_page_1.json")
                .insert_header("link", next_link(&server.uri(), 2).as_str()),
        )
        .expect(1)
        .named("tickets page 1")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .and(header("authorization", BASIC))
        .and(query_param("updated_since", START))
        .and(query_param("page", "2"))
        .respond_with(fixture_response("freshdesk/tickets_page_2.json"))
        .expect(1)
        .named("tickets page 2")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/surveys/satisfaction_ratings"))
        .and(header("authorization", BASIC))
        .and(query_param("created_since", START))
        .and(query_param("per_page", "100"))
        .respond_with(fixture_response("freshdesk/satisfaction_ratings.json"))
        .expect(1)
        .named("satisfaction ratings")
        .mount(server)
        .await;
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "helpdesk").await
}

#[tokio::test]
async fn syncs_tickets_and_ratings_into_support_measures() {
    for db in TestDb::all().await {
        let freshdesk = MockServer::start().await;
        // A 429 with Retry-After on the first ticket request (Tickets List has its own limit).
        mount_rate_limited_once(
            &freshdesk,
            "/api/v2/tickets",
            "1",
            r#"{"message":"Rate limit exceeded"}"#,
        )
        .await;
        // Each page exactly once: the expectations are the assertion.
        mount(&freshdesk).await;
        let services = services(settings(
            &config(&db.url, &freshdesk.uri()),
            "fd-secret-key",
        ))
        .await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(
            report
                .streams
                .iter()
                .map(|s| (s.stream.as_str(), s.pages, s.records))
                .collect::<Vec<_>>(),
            [("tickets", 2, 5), ("satisfaction_ratings", 1, 3)]
        );
        // Status 4 is resolved: ticket 101 in March, 104 in April (102 open, 103 closed, 105 pending).
        assert_eq!(
            series(&services, "resolved_tickets").await,
            [("2026-03".into(), Some(1.0)), ("2026-04".into(), Some(1.0))]
        );
        // Ratings on Freshdesk's scale: March 103 and 101, April -102.
        assert_eq!(
            series(&services, "csat_score").await,
            [
                ("2026-03".into(), Some(102.0)),
                ("2026-04".into(), Some(-102.0))
            ]
        );
        // The marks: the newest updated_at (2026-04-10T16:30:00Z) and created_at (2026-04-03T08:00:00Z).
        let tickets = services
            .store
            .stream_state("helpdesk", "tickets")
            .await
            .expect("state");
        assert_eq!(tickets.cursor.as_deref(), Some(r#"{"since":1775838600}"#));
        let ratings = services
            .store
            .stream_state("helpdesk", "satisfaction_ratings")
            .await
            .expect("state");
        assert_eq!(ratings.cursor.as_deref(), Some(r#"{"since":1775203200}"#));
        freshdesk.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn the_next_sync_walks_from_the_mark_minus_lookback_and_replaces_changed_tickets() {
    let db = TestDb::sqlite();
    let freshdesk = MockServer::start().await;
    mount(&freshdesk).await;
    let services = services(settings(
        &config(&db.url, &freshdesk.uri()),
        "fd-secret-key",
    ))
    .await;
    assert!(sync(&services).await.is_success());
    freshdesk.verify().await;

    // Ticket 102 (created in March) was resolved since; 105 comes again unchanged.
    freshdesk.reset().await;
    let page_1: serde_json::Value =
        serde_json::from_str(&fixture("freshdesk/tickets_page_1.json")).expect("fixture");
    let page_2: serde_json::Value =
        serde_json::from_str(&fixture("freshdesk/tickets_page_2.json")).expect("fixture");
    let mut resolved = page_1[1].clone();
    resolved["status"] = 4.into();
    resolved["updated_at"] = "2026-04-11T09:00:00Z".into();
    let changes = serde_json::json!([page_2[1], resolved]).to_string();
    // Default lookback: one day before 2026-04-10T16:30:00Z.
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .and(header("authorization", BASIC))
        .and(query_param("updated_since", "2026-04-09T16:30:00Z"))
        .and(query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(changes, "application/json"))
        .expect(1)
        .mount(&freshdesk)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/surveys/satisfaction_ratings"))
        .and(query_param("created_since", "2026-04-02T08:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("[]", "application/json"))
        .expect(1)
        .mount(&freshdesk)
        .await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        series(&services, "resolved_tickets").await,
        [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(1.0))]
    );
    let tickets = services
        .store
        .stream_state("helpdesk", "tickets")
        .await
        .expect("state");
    assert_eq!(
        tickets.cursor.as_deref(),
        Some(r#"{"since":1775898000}"#),
        "2026-04-11T09:00:00Z"
    );
    // An empty ratings walk keeps its mark.
    let ratings = services
        .store
        .stream_state("helpdesk", "satisfaction_ratings")
        .await
        .expect("state");
    assert_eq!(ratings.cursor.as_deref(), Some(r#"{"since":1775203200}"#));
    freshdesk.verify().await;
}

/// Serves one ticket a page, ticket N updated N minutes after 2026-03-01, and a link to
/// the next page up to 301; from a later `updated_since` it serves the tickets from there.
struct ThreeHundredPages {
    base: String,
}

impl ThreeHundredPages {
    fn ticket(id: u32) -> serde_json::Value {
        let updated = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").expect("valid")
            + chrono::Duration::minutes(i64::from(id));
        let updated = updated.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        serde_json::json!({"id": id, "status": 4, "created_at": updated, "updated_at": updated})
    }
}

impl Respond for ThreeHundredPages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        let page: u32 = query("page").map_or(1, |page| page.parse().expect("page number"));
        if page > 300 {
            let body = r#"{"description":"Validation failed","errors":[{"field":"page","message":"You cannot access tickets beyond the 300th page. Please provide a smaller page number.","code":"invalid_value"}]}"#;
            return ResponseTemplate::new(400).set_body_raw(body, "application/json");
        }
        if query("updated_since").as_deref() == Some(START) {
            let response = ResponseTemplate::new(200).set_body_raw(
                serde_json::json!([Self::ticket(page)]).to_string(),
                "application/json",
            );
            return response.insert_header("link", next_link(&self.base, page + 1).as_str());
        }
        // The restart: ticket 300 again (same second) and the one after it, then the end.
        assert_eq!(
            query("updated_since").as_deref(),
            Some("2026-03-01T05:00:00Z"),
            "restarted from ticket 300's updated_at"
        );
        assert_eq!(page, 1, "the restart begins at page 1");
        ResponseTemplate::new(200).set_body_raw(
            serde_json::json!([Self::ticket(300), Self::ticket(301)]).to_string(),
            "application/json",
        )
    }
}

#[tokio::test]
async fn past_the_300th_page_the_walk_restarts_from_the_newest_updated_at() {
    let db = TestDb::sqlite();
    let freshdesk = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ThreeHundredPages {
            base: freshdesk.uri(),
        })
        .expect(301)
        .mount(&freshdesk)
        .await;
    let text = config(&db.url, &freshdesk.uri())
        .replace("api_key =", "streams = [\"tickets\"]\napi_key =");
    let text = text
        .split("[measures.csat_score]")
        .next()
        .expect("ticket measures")
        .to_string();
    let services = services(settings(&text, "fd-secret-key")).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        (report.streams[0].pages, report.streams[0].records),
        (301, 302),
        "300 pages, then one from the new updated_since"
    );
    let page_301 = freshdesk
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|request| {
            request
                .url
                .query_pairs()
                .any(|(key, value)| key == "page" && value == "301")
        })
        .count();
    assert_eq!(page_301, 0, "never asks for a page Freshdesk refuses");
    assert_eq!(
        series(&services, "resolved_tickets").await,
        [
            ("2026-03".into(), Some(301.0)),
            ("2026-04".into(), Some(0.0))
        ]
    );
    let tickets = services
        .store
        .stream_state("helpdesk", "tickets")
        .await
        .expect("state");
    // Ticket 301: 2026-03-01T05:01:00Z.
    assert_eq!(tickets.cursor.as_deref(), Some(r#"{"since":1772341260}"#));
}

#[tokio::test]
async fn a_wrong_key_names_the_api_message() {
    let db = TestDb::sqlite();
    let freshdesk = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("freshdesk/error_invalid_credentials.json"),
            "application/json",
        ))
        .mount(&freshdesk)
        .await;
    let services = services(settings(&config(&db.url, &freshdesk.uri()), "wrong")).await;
    let report = sync(&services).await;
    let error = report.streams[0].error.as_deref().expect("failed");
    assert_eq!(
        error,
        "unauthorized (HTTP 401: You have to be logged in to perform this action.); check the source's API key or token"
    );
    assert!(!error.contains("wrong"), "the key is never shown");
}

#[tokio::test]
async fn freshdesk_settings_are_required_with_their_key_paths() {
    let text = config("sqlite://unused.db", "http://127.0.0.1:9")
        .replace("base_url = \"http://127.0.0.1:9\"\n", "");
    let env = std::collections::BTreeMap::from([("TEST_STRIPE_KEY".to_string(), "t".to_string())]);
    let error = scorekeeper::config::load_str(&text, "test.toml", &env).expect_err("no domain");
    assert!(
        error
            .problems
            .contains(&"sources.helpdesk.domain: is required for kind \"freshdesk\"".to_string()),
        "{:?}",
        error.problems
    );
    let without_key = text.replace(
        "api_key = \"${TEST_STRIPE_KEY}\"\n",
        "domain = \"acme.freshdesk.com\"\n",
    );
    let error = scorekeeper::config::load_str(&without_key, "test.toml", &env).expect_err("no key");
    assert!(
        error
            .problems
            .contains(&"sources.helpdesk.api_key: is required for kind \"freshdesk\"".to_string()),
        "{:?}",
        error.problems
    );
    let with_domain = text.replace(
        "kind = \"freshdesk\"",
        "kind = \"freshdesk\"\ndomain = \"acme.freshdesk.com\"",
    );
    let settings = scorekeeper::config::load_str(&with_domain, "test.toml", &env).expect("valid");
    assert_eq!(
        settings.sources["helpdesk"].base_url.as_str(),
        "https://acme.freshdesk.com/"
    );
    assert_eq!(
        settings.sources["helpdesk"].streams,
        ["tickets", "satisfaction_ratings"]
    );
    assert_eq!(
        settings.sources["helpdesk"].lookback,
        std::time::Duration::from_secs(24 * 3600),
        "default lookback: one day"
    );
}
