//! The OAuth2 refresh-token flow end to end, on a Xero source against a wiremock token
//! endpoint and a wiremock API: a refresh before the first request, rotated refresh tokens
//! saved and used by the next refresh (also after a restart), one refresh and one retry on
//! a 401 mid-sync, a changed configured refresh token winning over the saved chain, and a
//! refused refresh failing with advice and without secrets.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{basic_auth, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::xero::{MEASURES, TENANT, assert_first_sync_measures, mount_first_sync};

const CLIENT_ID: &str = "5E1C5A0B8F3C4D2E9A7B6C5D4E3F2A1B";
const CLIENT_SECRET: &str = "client-secret-Zx9Qw8Er7Ty6";
const TOKEN_PATH: &str = "/connect/token";

/// A Xero source with the OAuth2 trio (no access token), syncing `streams`; the
/// measures only when both streams are synced (a measure needs its stream).
fn config(database_url: &str, api: &str, tokens: &str, refresh: &str, streams: &str) -> String {
    let measures = if streams.contains(',') { MEASURES } else { "" };
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Kiwi Bakery"
timezone = "Pacific/Auckland"

[sources.ledger]
kind = "xero"
schedule = "0 0 * * * *"
base_url = "{api}"
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret = "${{TEST_STRIPE_KEY}}"
refresh_token = "{refresh}"
token_url = "{tokens}{TOKEN_PATH}"
start_date = "2026-03-01"
streams = [{streams}]
{measures}"#
    )
}

/// Answers a refresh with `refresh` in the body: a new access token living `expires_in`
/// seconds and the next refresh token. Expected exactly `times` times.
async fn mount_refresh(
    server: &MockServer,
    refresh: &str,
    access: &str,
    expires_in: u64,
    next: &str,
    times: u64,
) {
    let body = format!(
        r#"{{"id_token":"eyJ.id.token","access_token":"{access}","expires_in":{expires_in},"token_type":"Bearer","refresh_token":"{next}","scope":"offline_access accounting.transactions.read"}}"#
    );
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(basic_auth(CLIENT_ID, CLIENT_SECRET))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(RefreshIs(refresh.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .expect(times)
        .named(format!("refresh with {refresh}"))
        .mount(server)
        .await;
}

/// The form body's `refresh_token` is exactly the given value.
struct RefreshIs(String);

impl wiremock::Match for RefreshIs {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let body = String::from_utf8_lossy(&request.body);
        let pairs = reqwest::Url::parse(&format!("http://form.invalid/?{body}"));
        pairs.is_ok_and(|url| {
            url.query_pairs()
                .any(|(name, value)| name == "refresh_token" && value == self.0.as_str())
        })
    }
}

/// Answers payment lists sent with `Bearer access`, expected `times` times.
async fn mount_payments(server: &MockServer, access: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path("/api.xro/2.0/Payments"))
        .and(header("authorization", format!("Bearer {access}").as_str()))
        .and(header("xero-tenant-id", TENANT))
        .respond_with(fixture_response("xero/payments.json"))
        .expect(times)
        .named(format!("payments with {access}"))
        .mount(server)
        .await;
}

async fn saved_refresh_token(services: &Services) -> String {
    services
        .store
        .oauth_tokens("ledger")
        .await
        .expect("read tokens")
        .expect("tokens saved")
        .refresh_token
        .expose()
        .to_string()
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "ledger").await
}

#[tokio::test]
async fn refreshes_before_the_first_request_and_keeps_the_rotated_tokens() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let tokens = MockServer::start().await;
    mount_refresh(&tokens, "seed-one", "access-1", 1800, "rotated-two", 1).await;
    mount_first_sync(&api, "Bearer access-1").await;
    let text = config(
        &db.url,
        &api.uri(),
        &tokens.uri(),
        "seed-one",
        r#""invoices", "payments""#,
    );
    let services = services(settings(&text, CLIENT_SECRET)).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_first_sync_measures(&services).await;
    assert_eq!(saved_refresh_token(&services).await, "rotated-two");
    // One refresh for both streams: the saved access token is fresh for the second.
    tokens.verify().await;
    api.verify().await;
}

#[tokio::test]
async fn rotated_refresh_tokens_are_used_by_the_next_refresh_also_after_a_restart() {
    for db in TestDb::all().await {
        let api = MockServer::start().await;
        let tokens = MockServer::start().await;
        // Each refresh is expected exactly once, with the token the previous one returned.
        // Tokens living one second are due again at once (refreshed 5 minutes early).
        mount_refresh(&tokens, "seed-one", "access-1", 1, "rotated-two", 1).await;
        mount_refresh(&tokens, "rotated-two", "access-2", 1, "rotated-three", 1).await;
        mount_refresh(
            &tokens,
            "rotated-three",
            "access-3",
            1800,
            "rotated-four",
            1,
        )
        .await;
        mount_payments(&api, "access-1", 1).await;
        mount_payments(&api, "access-2", 1).await;
        // Two syncs after the restart: the second reuses the fresh access token.
        mount_payments(&api, "access-3", 2).await;
        let text = config(
            &db.url,
            &api.uri(),
            &tokens.uri(),
            "seed-one",
            r#""payments""#,
        );

        let first = services(settings(&text, CLIENT_SECRET)).await;
        assert!(sync(&first).await.is_success(), "{}", db.backend);
        assert_eq!(saved_refresh_token(&first).await, "rotated-two");
        // access-1 has expired: the next sync refreshes with the rotated token.
        assert!(sync(&first).await.is_success(), "{}", db.backend);
        assert_eq!(saved_refresh_token(&first).await, "rotated-three");
        first.store.close().await;

        // A restart: new services on the same database continue the saved chain.
        let second = services(settings(&text, CLIENT_SECRET)).await;
        assert!(sync(&second).await.is_success(), "{}", db.backend);
        assert_eq!(saved_refresh_token(&second).await, "rotated-four");
        assert!(sync(&second).await.is_success(), "{}", db.backend);
        second.store.close().await;
        tokens.verify().await;
        api.verify().await;
    }
}

#[tokio::test]
async fn a_401_mid_sync_refreshes_once_and_retries_the_page() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let tokens = MockServer::start().await;
    mount_refresh(&tokens, "seed-one", "access-1", 1800, "rotated-two", 1).await;
    mount_refresh(&tokens, "rotated-two", "access-2", 1800, "rotated-three", 1).await;
    Mock::given(method("GET"))
        .and(path("/api.xro/2.0/Invoices"))
        .and(header("authorization", "Bearer access-1"))
        .and(query_param("page", "1"))
        .respond_with(fixture_response("xero/invoices_page_1.json"))
        .expect(1)
        .named("page 1 with the first token")
        .mount(&api)
        .await;
    // Xero revoked access-1 between the pages (the user reconnected the app, say).
    Mock::given(method("GET"))
        .and(path("/api.xro/2.0/Invoices"))
        .and(header("authorization", "Bearer access-1"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("xero/error_unauthorized.json"), "application/json"),
        )
        .expect(1)
        .named("page 2 refused")
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api.xro/2.0/Invoices"))
        .and(header("authorization", "Bearer access-2"))
        .and(query_param("page", "2"))
        .respond_with(fixture_response("xero/invoices_page_2.json"))
        .expect(1)
        .named("page 2 retried with the new token")
        .mount(&api)
        .await;
    let text = config(
        &db.url,
        &api.uri(),
        &tokens.uri(),
        "seed-one",
        r#""invoices""#,
    );
    let services = services(settings(&text, CLIENT_SECRET)).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.streams[0].records, 5);
    assert_eq!(saved_refresh_token(&services).await, "rotated-three");
    tokens.verify().await;
    api.verify().await;
}

#[tokio::test]
async fn a_changed_configured_refresh_token_wins_over_the_saved_chain() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let tokens = MockServer::start().await;
    mount_refresh(&tokens, "seed-one", "access-1", 1800, "rotated-two", 1).await;
    // The saved chain is never continued once the owner authorized again.
    mount_refresh(&tokens, "rotated-two", "access-x", 1800, "rotated-x", 0).await;
    mount_refresh(&tokens, "seed-new", "access-9", 1800, "rotated-ten", 1).await;
    mount_payments(&api, "access-1", 1).await;
    mount_payments(&api, "access-9", 1).await;
    let first = services(settings(
        &config(
            &db.url,
            &api.uri(),
            &tokens.uri(),
            "seed-one",
            r#""payments""#,
        ),
        CLIENT_SECRET,
    ))
    .await;
    assert!(sync(&first).await.is_success());
    first.store.close().await;

    // access-1 is still fresh, but it belongs to the old authorization.
    let second = services(settings(
        &config(
            &db.url,
            &api.uri(),
            &tokens.uri(),
            "seed-new",
            r#""payments""#,
        ),
        CLIENT_SECRET,
    ))
    .await;
    assert!(sync(&second).await.is_success());
    assert_eq!(saved_refresh_token(&second).await, "rotated-ten");
    tokens.verify().await;
    api.verify().await;
}

#[tokio::test]
async fn a_refused_refresh_fails_the_sync_with_advice_and_no_secret() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let tokens = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(r#"{"error":"invalid_grant"}"#, "application/json"),
        )
        // A refused grant is not retried: once per stream.
        .expect(1)
        .mount(&tokens)
        .await;
    mount_payments(&api, "anything", 0).await;
    let refresh = "seed-refresh-0a1b2c3d4e5f";
    let text = config(&db.url, &api.uri(), &tokens.uri(), refresh, r#""payments""#);
    let services = services(settings(&text, CLIENT_SECRET)).await;
    let report = sync(&services).await;
    assert!(!report.is_success());
    let error = report.streams[0].error.clone().expect("failed");
    let endpoint = format!("{}{TOKEN_PATH}", tokens.uri());
    assert_eq!(
        error,
        format!(
            "unauthorized (the token endpoint {endpoint} refused the refresh (HTTP 400: invalid_grant); \
             check client_id and client_secret, or authorize the app again and set the new refresh_token); \
             check the source's API key or token"
        )
    );
    let runs = services.store.latest_runs().await.expect("runs");
    let stored = runs[0].error.clone().unwrap_or_default();
    for secret in [CLIENT_SECRET, refresh] {
        assert!(!error.contains(secret), "{error}");
        assert!(!stored.contains(secret), "{stored}");
    }
    assert!(
        services
            .store
            .oauth_tokens("ledger")
            .await
            .expect("read")
            .is_none(),
        "nothing saved from a refused refresh"
    );
    tokens.verify().await;
    api.verify().await;
}
