//! `kind = "http"`: connectors declared in the configuration, against wiremock, with each
//! pagination style, both incremental styles, every auth style and the OAuth2 refresh.

use std::collections::BTreeMap;

use serde_json::json;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// A scorecard with one declared source `api` (its TOML body given) and a monthly sum
/// and count over its `items` stream.
fn config(database_url: &str, base: &str, source: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Declared"
timezone = "UTC"

[sources.api]
kind = "http"
schedule = "0 0 * * * *"
base_url = "{base}/v1/"
{source}

[measures.total]
perspective = "financial"
period = "month"
from = "api.items"
time = "created"
value = "amount"
aggregate = "sum"

[measures.count]
perspective = "customer"
period = "month"
from = "api.items"
time = "created"
aggregate = "count"
"#
    )
}

fn item(id: u64, created: &str, amount: f64) -> serde_json::Value {
    json!({"id": id, "shop": "north", "created": created, "updated": created, "amount": amount})
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn cursor_in_the_body_with_a_header_key_and_an_updated_since_mark() {
    for db in TestDb::all().await {
        let api = MockServer::start().await;
        let source = r#"
lookback = "1h"
start_date = "2026-01-01"
auth = { kind = "header", name = "X-Api-Key", value = "${TEST_STRIPE_KEY}" }
headers = { Accept = "application/json" }

[sources.api.endpoints.items]
path = "items"
query = { status = "all" }
records = "data.items"
key = ["shop", "id"]
pagination = { kind = "cursor", cursor = "meta.next", param = "after" }
incremental = { field = "updated", param = "updated_since" }
"#;
        Mock::given(method("GET"))
            .and(path("/v1/items"))
            .and(header("x-api-key", "secret-key-1"))
            .and(header("accept", "application/json"))
            .and(query_param("status", "all"))
            .and(query_param("updated_since", "2026-01-01T00:00:00Z"))
            .and(query_param_is_missing("after"))
            .respond_with(ok(json!({"data": {"items": [
                item(1, "2026-03-05T10:00:00Z", 10.0),
                item(2, "2026-04-01T10:00:00Z", 20.5)
            ]}, "meta": {"next": "c2"}})))
            .expect(1)
            .mount(&api)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/items"))
            .and(query_param("after", "c2"))
            .and(query_param("updated_since", "2026-01-01T00:00:00Z"))
            .respond_with(ok(json!({"data": {"items": [
                item(3, "2026-04-03T09:00:00Z", 4.5)
            ]}, "meta": {"next": null}})))
            .expect(1)
            .mount(&api)
            .await;
        let services = services(settings(
            &config(&db.url, &api.uri(), source),
            "secret-key-1",
        ))
        .await;
        let report = sync_source(&services, "api").await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!((report.streams[0].pages, report.streams[0].records), (2, 3));
        assert_eq!(
            series(&services, "total").await,
            [
                ("2026-03".into(), Some(10.0)),
                ("2026-04".into(), Some(25.0))
            ],
            "{}",
            db.backend
        );
        api.verify().await;

        // Next sync: from the newest `updated` minus the 1h lookback; item 2 changed.
        api.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/items"))
            .and(query_param("updated_since", "2026-04-03T08:00:00Z"))
            .respond_with(ok(json!({"data": {"items": [
                {"id": 2, "shop": "north", "created": "2026-04-01T10:00:00Z", "updated": "2026-04-04T08:00:00Z", "amount": 30.5}
            ]}, "meta": {}})))
            .expect(1)
            .mount(&api)
            .await;
        assert!(sync_source(&services, "api").await.is_success());
        assert_eq!(
            series(&services, "total").await,
            [
                ("2026-03".into(), Some(10.0)),
                ("2026-04".into(), Some(35.0))
            ],
            "{}: replaced, not added",
            db.backend
        );
        assert_eq!(
            series(&services, "count").await,
            [("2026-03".into(), Some(1.0)), ("2026-04".into(), Some(2.0))]
        );
        api.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn link_header_pages_with_a_bearer_token_stay_on_the_configured_host() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let source = r#"
auth = { kind = "bearer", token = "${TEST_STRIPE_KEY}" }

[sources.api.endpoints.items]
path = "items"
key = ["id"]
pagination = { kind = "link_header" }
"#;
    let next = format!("<{}/v1/items?page=2>; rel=\"next\"", api.uri());
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(header("authorization", "Bearer tok-9"))
        .and(query_param_is_missing("page"))
        .respond_with(
            ok(json!([
                item(1, "2026-03-01", 1.0),
                item(2, "2026-03-02", 2.0)
            ]))
            .insert_header("link", next.as_str()),
        )
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(query_param("page", "2"))
        .respond_with(ok(json!([item(3, "2026-04-01", 3.0)])))
        .expect(1)
        .mount(&api)
        .await;
    let services = services(settings(&config(&db.url, &api.uri(), source), "tok-9")).await;
    assert!(sync_source(&services, "api").await.is_success());
    assert_eq!(
        series(&services, "total").await,
        [("2026-03".into(), Some(3.0)), ("2026-04".into(), Some(3.0))]
    );
    api.verify().await;

    // A next link to another host is refused: the token would go there.
    api.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .respond_with(ok(json!([item(1, "2026-03-01", 1.0)])).insert_header(
            "link",
            "<https://elsewhere.example/v1/items?page=2>; rel=\"next\"",
        ))
        .mount(&api)
        .await;
    let error = sync_source(&services, "api").await.streams[0]
        .error
        .clone()
        .expect("refused");
    assert!(
        error.contains("https://elsewhere.example instead of the configured base_url's host"),
        "{error}"
    );
}

#[tokio::test]
async fn next_url_in_the_body_and_a_server_sync_token() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let source = r#"
auth = { kind = "none" }

[sources.api.endpoints.items]
path = "items"
records = "results"
key = ["id"]
pagination = { kind = "next_url", next = "links.next" }
incremental = { token = "sync_token", param = "since_token" }
"#;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(query_param_is_missing("since_token"))
        .and(query_param_is_missing("p"))
        .respond_with(ok(json!({
            "results": [item(1, "2026-03-01", 5.0)],
            "links": {"next": "/v1/items?p=2"},
            "sync_token": "t1"
        })))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(query_param("p", "2"))
        .respond_with(ok(json!({
            "results": [item(2, "2026-03-02", 6.0)],
            "links": {"next": null},
            "sync_token": "t2"
        })))
        .expect(1)
        .mount(&api)
        .await;
    let services = services(settings(&config(&db.url, &api.uri(), source), "unused")).await;
    assert!(sync_source(&services, "api").await.is_success());
    api.verify().await;

    // The next sync sends the last page's token back.
    api.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(query_param("since_token", "t2"))
        .respond_with(ok(json!({"results": [], "links": {}, "sync_token": "t3"})))
        .expect(1)
        .mount(&api)
        .await;
    assert!(sync_source(&services, "api").await.is_success());
    api.verify().await;
    assert_eq!(
        series(&services, "total").await,
        [
            ("2026-03".into(), Some(11.0)),
            ("2026-04".into(), Some(0.0))
        ]
    );
}

#[tokio::test]
async fn page_numbers_end_on_a_short_page_and_offsets_on_has_more() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let source = r#"
auth = { kind = "query", name = "apikey", value = "${TEST_STRIPE_KEY}" }

[sources.api.endpoints.items]
path = "items"
key = ["id"]
records = "items"
pagination = { kind = "page", param = "page", size_param = "per_page", size = 2 }

[sources.api.endpoints.more]
path = "more"
key = ["id"]
records = "rows"
pagination = { kind = "offset", param = "offset", size_param = "limit", size = 2 }
has_more = "has_more"
"#;
    for (page, items) in [
        (
            "1",
            json!([item(1, "2026-06-01", 1.0), item(2, "2026-06-02", 1.0)]),
        ),
        ("2", json!([item(3, "2026-06-03", 1.0)])),
    ] {
        Mock::given(method("GET"))
            .and(path("/v1/items"))
            .and(query_param("apikey", "k-77"))
            .and(query_param("page", page))
            .and(query_param("per_page", "2"))
            .respond_with(ok(json!({ "items": items })))
            .expect(1)
            .mount(&api)
            .await;
    }
    for (offset, rows, more) in [
        ("0", json!([{"id": "a"}, {"id": "b"}]), true),
        ("2", json!([{"id": "c"}, {"id": "d"}]), false),
    ] {
        Mock::given(method("GET"))
            .and(path("/v1/more"))
            .and(query_param("offset", offset))
            .and(query_param("limit", "2"))
            .respond_with(ok(json!({ "rows": rows, "has_more": more })))
            .expect(1)
            .mount(&api)
            .await;
    }
    let services = services(settings(&config(&db.url, &api.uri(), source), "k-77")).await;
    let report = sync_source(&services, "api").await;
    assert!(report.is_success(), "{report:?}");
    let counts: BTreeMap<_, _> = report
        .streams
        .iter()
        .map(|stream| (stream.stream.clone(), (stream.pages, stream.records)))
        .collect();
    assert_eq!(counts["items"], (2, 3));
    assert_eq!(counts["more"], (2, 4));
    api.verify().await;
    // The key never shows in errors or logs: it is added to the sent URL only.
    let error = {
        api.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(400).set_body_string("bad"))
            .mount(&api)
            .await;
        sync_source(&services, "api").await.streams[0]
            .error
            .clone()
            .expect("failed")
    };
    assert!(
        !error.contains("k-77") && error.contains("/v1/items"),
        "{error}"
    );
}

#[tokio::test]
async fn oauth2_refresh_on_a_declared_source_rotates_and_survives_a_restart() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let source = format!(
        r#"
client_id = "app-1"
client_secret = "${{TEST_STRIPE_KEY}}"
refresh_token = "refresh-0"
token_url = "{}/oauth/token"

[sources.api.endpoints.items]
path = "items"
key = ["id"]
"#,
        api.uri()
    );
    // Each refresh rotates: refresh-0 → refresh-1 → refresh-2.
    for (old, new, access) in [
        ("refresh-0", "refresh-1", "access-1"),
        ("refresh-1", "refresh-2", "access-2"),
    ] {
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(header(
                "authorization",
                "Basic YXBwLTE6Y2xpZW50LXNlY3JldA==",
            ))
            .and(wiremock::matchers::body_string_contains(
                format!("refresh_token={old}").as_str(),
            ))
            .and(wiremock::matchers::body_string_contains(
                "grant_type=refresh_token",
            ))
            .respond_with(ok(json!({
                "access_token": access, "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": new
            })))
            .expect(1)
            .mount(&api)
            .await;
    }
    // access-1 is refused mid-sync (revoked upstream): one refresh, one retry.
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "token revoked"})))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(header("authorization", "Bearer access-2"))
        .respond_with(ok(json!([item(1, "2026-03-07", 7.0)])))
        .expect(2)
        .mount(&api)
        .await;
    let text = config(&db.url, &api.uri(), &source);
    let first = services(settings(&text, "client-secret")).await;
    assert!(sync_source(&first, "api").await.is_success());
    let stored = first
        .store
        .oauth_tokens("api")
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(stored.refresh_token.expose(), "refresh-2");
    first.store.close().await;

    // A restart uses the stored access token (still fresh): no third refresh.
    let second = services(settings(&text, "client-secret")).await;
    assert!(sync_source(&second, "api").await.is_success());
    api.verify().await;

    // A refused refresh (the chain was revoked) fails with what to do, and no secret.
    api.reset().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        ))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&api)
        .await;
    let error = sync_source(&second, "api").await.streams[0]
        .error
        .clone()
        .expect("failed");
    assert!(
        error.contains("Token has been expired or revoked")
            && error.contains("authorize the app again and set the new refresh_token"),
        "{error}"
    );
    for secret in ["client-secret", "refresh-2", "access-2"] {
        assert!(!error.contains(secret), "{secret} leaked: {error}");
    }
}

#[test]
fn declared_sources_are_checked_with_their_key_paths() {
    let env = BTreeMap::from([("TEST_STRIPE_KEY".to_string(), "k".to_string())]);
    let problems = |source: &str| {
        scorekeeper::config::load_str(
            &config("sqlite://unused.db", "http://127.0.0.1:9", source)
                .replace("from = \"api.items\"", "from = \"api.items\"\n"),
            "test.toml",
            &env,
        )
        .expect_err("invalid")
        .problems
    };
    assert_eq!(
        problems(
            r#"
[sources.api.endpoints.items]
path = "https://evil.example/items"
key = []
incremental = { field = "updated", token = "t", param = "p" }
"#
        ),
        [
            "sources.api.endpoints.items.path: must be relative to the source's base_url (requests never leave its host)",
            "sources.api.endpoints.items.key: needs the field(s) that identify a record, e.g. key = [\"id\"]",
            "sources.api.endpoints.items.incremental: give exactly one of field (a record's change time) and token (a server-side sync token)",
        ]
    );
    let text = config("sqlite://unused.db", "http://127.0.0.1:9", "");
    let errors = scorekeeper::config::load_str(&text, "test.toml", &env)
        .expect_err("no endpoints")
        .problems;
    assert!(
        errors.contains(&"sources.api.endpoints: kind \"http\" needs at least one endpoint: [sources.NAME.endpoints.STREAM] with path and key".to_string()),
        "{errors:?}"
    );
    let errors = problems(
        r#"
auth = { kind = "bearer", token = "x" }
client_id = "a"
client_secret = "b"
refresh_token = "c"

[sources.api.endpoints.items]
path = "items"
key = ["id"]
pagination = { kind = "page", param = "page", size = 10 }
"#,
    );
    assert_eq!(
        errors,
        [
            "sources.api.token_url: is required with client_id, client_secret and refresh_token (the API's OAuth2 token endpoint)",
            "sources.api.auth: give either auth or the OAuth2 settings (client_id, client_secret, refresh_token), not both",
            "sources.api.endpoints.items.pagination: size_param and size go together (size at least 1)",
        ]
    );
}
