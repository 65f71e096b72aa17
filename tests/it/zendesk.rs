//! The Zendesk source against wiremock: API-token Basic auth, the incremental ticket
//! export's cursor, cursor-paginated lists, Retry-After, and measures over nested fields.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// `base64("ops@acme.test/token:zd-secret-token")`, Zendesk's API-token form of Basic auth.
const BASIC: &str = "Basic b3BzQGFjbWUudGVzdC90b2tlbjp6ZC1zZWNyZXQtdG9rZW4=";
const CURSOR_1: &str = "MTU3NjYxMzUzOS4wfHw0NTF8";

fn config(database_url: &str, zendesk_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Support"
timezone = "UTC"

[sources.support]
kind = "zendesk"
schedule = "0 0 * * * *"
base_url = "{zendesk_url}"
start_date = "2026-01-01"
email = "ops@acme.test"
api_token = "${{TEST_STRIPE_KEY}}"

[measures.solved_tickets]
perspective = "internal"
period = "month"
from = "support.tickets"
time = "created_at"
where = "status == 'solved'"
aggregate = "count"

[measures.reply_time]
perspective = "customer"
period = "month"
from = "support.ticket_metrics"
time = "created_at"
value = "reply_time_in_minutes.calendar"
aggregate = "avg"

[measures.good_ratings]
perspective = "customer"
period = "month"
from = "support.satisfaction_ratings"
time = "created_at"
where = "score == 'good'"
aggregate = "count"

[measures.rated]
perspective = "customer"
period = "month"
from = "support.satisfaction_ratings"
time = "created_at"
where = "score == 'good' || score == 'bad'"
aggregate = "count"

[measures.csat]
perspective = "customer"
period = "month"
formula = "good_ratings / rated * 100"
target = {{ value = 90, direction = "up", warn = 80 }}
"#
    )
}

async fn mount(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/tickets/cursor.json"))
        .and(header("authorization", BASIC))
        .and(query_param("start_time", "1767225600"))
        .and(query_param("per_page", "1000"))
        .respond_with(fixture_response("zendesk/tickets_page_1.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/tickets/cursor.json"))
        .and(query_param("cursor", CURSOR_1))
        .and(query_param_is_missing("start_time"))
        .respond_with(fixture_response("zendesk/tickets_page_2.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/ticket_metrics"))
        .and(query_param("page[size]", "100"))
        .respond_with(fixture_response("zendesk/ticket_metrics.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/satisfaction_ratings"))
        .and(query_param("start_time", "1767225600"))
        .respond_with(fixture_response("zendesk/satisfaction_ratings.json"))
        .expect(1)
        .mount(server)
        .await;
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "support").await
}

#[tokio::test]
async fn syncs_tickets_metrics_and_ratings_into_support_measures() {
    for db in TestDb::all().await {
        let zendesk = MockServer::start().await;
        // A 429 with Retry-After on the first export request (10 requests a minute).
        mount_rate_limited_once(
            &zendesk,
            "/api/v2/incremental/tickets/cursor.json",
            "1",
            "Too Many Requests",
        )
        .await;
        // Each page exactly once: the expectations are the assertion.
        mount(&zendesk).await;
        let services = services(settings(
            &config(&db.url, &zendesk.uri()),
            "zd-secret-token",
        ))
        .await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(
            report.streams.iter().map(|s| s.records).collect::<Vec<_>>(),
            [3, 3, 3]
        );
        assert_eq!(
            series(&services, "solved_tickets").await,
            [("2026-03".into(), Some(1.0)), ("2026-04".into(), Some(1.0))]
        );
        // March: one metric with 90 minutes, one still without a reply (null, skipped).
        assert_eq!(
            series(&services, "reply_time").await,
            [
                ("2026-03".into(), Some(90.0)),
                ("2026-04".into(), Some(30.0))
            ]
        );
        assert_eq!(
            series(&services, "csat").await,
            [
                ("2026-03".into(), Some(100.0)),
                ("2026-04".into(), Some(0.0))
            ]
        );
        let tickets = services
            .store
            .stream_state("support", "tickets")
            .await
            .expect("state");
        assert_eq!(
            tickets.cursor.as_deref(),
            Some(r#"{"export":"MTU3NjYxMzUzOS4wfHw0NTJ8"}"#)
        );
        zendesk.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn the_next_sync_continues_the_ticket_export_from_its_cursor() {
    let db = TestDb::sqlite();
    let zendesk = MockServer::start().await;
    mount(&zendesk).await;
    let services = services(settings(
        &config(&db.url, &zendesk.uri()),
        "zd-secret-token",
    ))
    .await;
    assert!(sync(&services).await.is_success());
    zendesk.verify().await;

    // Ticket 2 was solved since: the export brings it again from the saved cursor.
    zendesk.reset().await;
    let changed = fixture("zendesk/tickets_page_1.json")
        .replace(r#""status": "open""#, r#""status": "solved""#);
    let page = format!(
        r#"{{"tickets": [{}], "after_cursor": "next-3", "end_of_stream": true}}"#,
        {
            let value: serde_json::Value = serde_json::from_str(&changed).expect("fixture");
            value["tickets"][1].to_string()
        }
    );
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/tickets/cursor.json"))
        .and(query_param("cursor", "MTU3NjYxMzUzOS4wfHw0NTJ8"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(page, "application/json"))
        .expect(1)
        .mount(&zendesk)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/ticket_metrics"))
        .respond_with(fixture_response("zendesk/ticket_metrics.json"))
        .mount(&zendesk)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/satisfaction_ratings"))
        .respond_with(fixture_response("zendesk/satisfaction_ratings.json"))
        .mount(&zendesk)
        .await;
    assert!(sync(&services).await.is_success());
    assert_eq!(
        series(&services, "solved_tickets").await,
        [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(1.0))]
    );
    zendesk.verify().await;
}

#[tokio::test]
async fn a_wrong_token_names_the_source_and_the_api_message() {
    let db = TestDb::sqlite();
    let zendesk = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("zendesk/error_unauthenticated.json"),
            "application/json",
        ))
        .mount(&zendesk)
        .await;
    let services = services(settings(&config(&db.url, &zendesk.uri()), "wrong")).await;
    let report = sync(&services).await;
    let error = report.streams[0].error.as_deref().expect("failed");
    assert_eq!(
        error,
        "unauthorized (HTTP 401: Couldn't authenticate you); check the source's API key or token"
    );
}

#[tokio::test]
async fn zendesk_settings_are_required_with_their_key_paths() {
    let text = config("sqlite://unused.db", "http://127.0.0.1:9")
        .replace("email = \"ops@acme.test\"\n", "")
        .replace("base_url = \"http://127.0.0.1:9\"\n", "");
    let env = std::collections::BTreeMap::from([("TEST_STRIPE_KEY".to_string(), "t".to_string())]);
    let error =
        scorekeeper::config::load_str(&text, "test.toml", &env).expect_err("missing settings");
    assert!(
        error
            .problems
            .contains(&"sources.support.subdomain: is required for kind \"zendesk\"".to_string()),
        "{:?}",
        error.problems
    );
    assert!(
        error
            .problems
            .contains(&"sources.support.email: is required for kind \"zendesk\"".to_string()),
        "{:?}",
        error.problems
    );
    let with_subdomain = text.replace(
        "kind = \"zendesk\"",
        "kind = \"zendesk\"\nsubdomain = \"acme\"\nemail = \"ops@acme.test\"",
    );
    let settings =
        scorekeeper::config::load_str(&with_subdomain, "test.toml", &env).expect("valid");
    assert_eq!(
        settings.sources["support"].base_url.as_str(),
        "https://acme.zendesk.com/"
    );
}
