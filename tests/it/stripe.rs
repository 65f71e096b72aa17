//! The Stripe source against wiremock: pagination, auth, rate limits, retries, broken
//! bodies, repeated cursors and upstream changes, through the real engine and store.

use std::time::Duration;

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "stripe").await
}

async fn cursor(services: &Services, stream: &str) -> Option<String> {
    services
        .store
        .stream_state("stripe", stream)
        .await
        .expect("state")
        .cursor
}

async fn record_count(services: &Services, stream: &str) -> i64 {
    let state = services
        .store
        .stream_state("stripe", stream)
        .await
        .expect("state");
    services.store.record_count(state.id).await.expect("count")
}

fn charges_only(database_url: &str, stripe_url: &str) -> String {
    charges_config(database_url, stripe_url, &["charges"])
}

#[tokio::test]
async fn syncs_every_page_and_computes_monthly_net_revenue() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        // Each page is requested exactly once: the expectation is the assertion.
        mount_stripe_fixtures(&stripe, 1).await;
        let services = services(settings(
            &stripe_config(&db.url, &stripe.uri(), ""),
            GOOD_KEY,
        ))
        .await;

        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(report.streams[0].pages, 2);
        assert_eq!(report.streams[0].records, 5);
        assert_eq!(record_count(&services, "charges").await, 5);
        assert_eq!(record_count(&services, "refunds").await, 1);
        // March: 30 + 20 (the failed charge is filtered out). April in Berlin: 50 + 12.50
        // (the charge at 2026-03-31T23:30Z is already April there), minus a 10.00 refund.
        assert_eq!(
            series(&services, "gross_revenue").await,
            [
                ("2026-03".into(), Some(50.0)),
                ("2026-04".into(), Some(62.5))
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            series(&services, "refunds").await,
            [
                ("2026-03".into(), Some(0.0)),
                ("2026-04".into(), Some(10.0))
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            series(&services, "net_revenue").await,
            [
                ("2026-03".into(), Some(50.0)),
                ("2026-04".into(), Some(52.5))
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            series(&services, "customers").await,
            [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(2.0))],
            "{}",
            db.backend
        );
        // The first walk is complete: the cursor holds the newest `created` seen.
        assert_eq!(
            cursor(&services, "charges").await.as_deref(),
            Some(r#"{"since":1775811600}"#)
        );
        services.store.close().await;
        stripe.verify().await;
    }
}

#[tokio::test]
async fn resync_without_upstream_change_leaves_records_and_series_identical() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param_is_missing("starting_after"))
            .respond_with(fixture_response("stripe/charges_page_1.json"))
            .mount(&stripe)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
            .respond_with(fixture_response("stripe/charges_page_2.json"))
            .mount(&stripe)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/refunds"))
            .respond_with(fixture_response("stripe/refunds.json"))
            .mount(&stripe)
            .await;
        let services = services(settings(
            &stripe_config(&db.url, &stripe.uri(), ""),
            GOOD_KEY,
        ))
        .await;

        let first = sync(&services).await;
        let records_before = (
            record_count(&services, "charges").await,
            record_count(&services, "refunds").await,
        );
        let series_before = series(&services, "net_revenue").await;
        let second = sync(&services).await;
        assert!(first.is_success() && second.is_success());
        assert_eq!(
            second.streams.iter().map(|s| s.changed).sum::<u64>(),
            0,
            "{}: nothing changed upstream, nothing rewritten",
            db.backend
        );
        assert_eq!(
            (
                record_count(&services, "charges").await,
                record_count(&services, "refunds").await
            ),
            records_before
        );
        assert_eq!(
            series(&services, "net_revenue").await,
            series_before,
            "{}",
            db.backend
        );
        services.store.close().await;
    }
}

#[tokio::test]
async fn bad_key_fails_with_a_clear_error_naming_the_source() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    // Two streams, one 401 each: no retries on an auth failure.
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("stripe/error_invalid_key.json"), "application/json"),
        )
        .expect(2)
        .mount(&stripe)
        .await;
    let services = services(settings(
        &stripe_config(&db.url, &stripe.uri(), ""),
        "sk_test_bad",
    ))
    .await;
    let report = sync(&services).await;
    assert!(!report.is_success());
    let error = report.streams[0].error.as_deref().expect("charges failed");
    assert!(
        error.contains("unauthorized")
            && error.contains("Invalid API Key provided: sk_test_****_bad"),
        "{error}"
    );
    let runs = services.store.latest_runs().await.expect("runs");
    assert_eq!(runs[0].source, "stripe");
    assert_eq!(runs[0].result.as_deref(), Some("failed"));
    assert!(
        runs[0]
            .error
            .as_deref()
            .is_some_and(|error| error.starts_with("charges: unauthorized")),
        "{runs:?}"
    );
    assert_eq!(cursor(&services, "charges").await, None);
}

#[tokio::test]
async fn waits_for_retry_after_on_429_then_succeeds() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount_rate_limited_once(
        &stripe,
        "/v1/charges",
        "1",
        r#"{"error":{"message":"Too many requests"}}"#,
    )
    .await;
    mount_stripe_fixtures(&stripe, 1).await;
    let services = services(settings(
        &stripe_config(&db.url, &stripe.uri(), ""),
        GOOD_KEY,
    ))
    .await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(record_count(&services, "charges").await, 5);
    stripe.verify().await;
}

#[tokio::test]
async fn a_500_is_retried_and_then_succeeds() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_string(r#"{"error":{"message":"An unknown error occurred"}}"#),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&stripe)
        .await;
    mount_stripe_fixtures(&stripe, 1).await;
    let services = services(settings(
        &stripe_config(&db.url, &stripe.uri(), ""),
        GOOD_KEY,
    ))
    .await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(record_count(&services, "charges").await, 5);
    stripe.verify().await;
}

#[tokio::test]
async fn stripe_should_retry_false_is_not_retried() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(500)
                .insert_header("stripe-should-retry", "false")
                .set_body_string(r#"{"error":{"message":"idempotency conflict"}}"#),
        )
        .expect(1)
        .mount(&stripe)
        .await;
    let services = services(settings(&charges_only(&db.url, &stripe.uri()), GOOD_KEY)).await;
    let report = sync(&services).await;
    let error = report.streams[0].error.as_deref().expect("failed");
    assert!(
        error.contains("HTTP 500") && error.contains("idempotency conflict"),
        "{error}"
    );
    stripe.verify().await;
}

#[tokio::test]
async fn truncated_body_commits_nothing_for_that_page_and_keeps_the_cursor() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        let whole = fixture("stripe/charges_page_2.json");
        let truncated = whole[..whole.len() / 2].to_string();
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param_is_missing("starting_after"))
            .respond_with(fixture_response("stripe/charges_page_1.json"))
            .expect(1)
            .mount(&stripe)
            .await;
        // Every attempt at page 2 breaks off: retried, then the sync fails (3 attempts is
        // the test retry policy; the count is the assertion).
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(truncated, "application/json"))
            .expect(3)
            .mount(&stripe)
            .await;
        let services = services(settings(&charges_only(&db.url, &stripe.uri()), GOOD_KEY)).await;
        let report = sync(&services).await;
        let error = report.streams[0].error.as_deref().expect("charges failed");
        assert!(
            error.contains("truncated body")
                && error.contains("/v1/charges")
                && error.contains("starting_after=ch_3Pq3"),
            "{error}"
        );
        // Page 1 is committed with its cursor; page 2 left nothing behind.
        assert_eq!(
            record_count(&services, "charges").await,
            3,
            "{}",
            db.backend
        );
        let saved = cursor(&services, "charges")
            .await
            .expect("cursor of page 1");
        assert_eq!(
            saved,
            format!(
                r#"{{"run":{{"gte":{START_GTE},"after":"ch_3Pq3AbCdEfGhIjKlMn","max":1775811600}}}}"#
            )
        );
        stripe.verify().await;

        // The next sync resumes at page 2, not at the beginning.
        stripe.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
            .and(query_param("created[gte]", START_GTE))
            .respond_with(fixture_response("stripe/charges_page_2.json"))
            .expect(1)
            .mount(&stripe)
            .await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{report:?}");
        assert_eq!(record_count(&services, "charges").await, 5);
        assert_eq!(
            series(&services, "gross_revenue").await,
            [
                ("2026-03".into(), Some(50.0)),
                ("2026-04".into(), Some(62.5))
            ]
        );
        stripe.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn a_page_that_repeats_the_previous_cursor_stops_the_sync() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    // The API ignores starting_after and always answers the same page with has_more.
    let looping = r#"{"object":"list","has_more":true,"data":[{"id":"ch_a","created":1772000000},{"id":"ch_b","created":1771000000}]}"#;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(looping, "application/json"))
        .expect(2)
        .mount(&stripe)
        .await;
    let services = services(settings(&charges_only(&db.url, &stripe.uri()), GOOD_KEY)).await;
    let report = tokio::time::timeout(Duration::from_secs(20), sync(&services))
        .await
        .expect("the sync ends by itself");
    let error = report.streams[0].error.as_deref().expect("failed");
    assert!(
        error.contains("repeated the previous page's cursor"),
        "{error}"
    );
    stripe.verify().await;
}

#[tokio::test]
async fn upstream_change_is_picked_up_by_the_next_sync() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        mount_stripe_fixtures(&stripe, 1).await;
        let services = services(settings(
            &stripe_config(&db.url, &stripe.uri(), ""),
            GOOD_KEY,
        ))
        .await;
        assert!(sync(&services).await.is_success());
        assert_eq!(
            series(&services, "net_revenue").await,
            [
                ("2026-03".into(), Some(50.0)),
                ("2026-04".into(), Some(52.5))
            ]
        );

        // Weeks later: the failed March charge was retried and succeeded (same object,
        // new state), and a new refund of 5.00 against it was issued in April.
        // Edited as text, so the unchanged objects stay byte for byte as before.
        let page_1 = fixture("stripe/charges_page_1.json");
        assert_eq!(
            page_1.matches(r#""status": "failed""#).count(),
            1,
            "fixture has one failed charge"
        );
        let page_1 = page_1.replace(r#""status": "failed""#, r#""status": "succeeded""#);
        let new_refund = r#"{"id": "re_new", "object": "refund", "amount": 500, "charge": "ch_3Pq3AbCdEfGhIjKlMn", "created": 1776000000, "currency": "eur", "status": "succeeded"}"#;
        let refunds = fixture("stripe/refunds.json").replacen(
            r#""data": ["#,
            &format!(r#""data": [{new_refund},"#),
            1,
        );

        // The incremental walk starts `lookback` (30 days) before the saved cursor.
        let gte = (1_775_811_600_i64 - 30 * 24 * 3600).to_string();
        stripe.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("created[gte]", gte.as_str()))
            .and(query_param_is_missing("starting_after"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(page_1, "application/json"))
            .expect(1)
            .mount(&stripe)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
            .respond_with(fixture_response("stripe/charges_page_2.json"))
            .expect(1)
            .mount(&stripe)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/refunds"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(refunds, "application/json"))
            .expect(1)
            .mount(&stripe)
            .await;

        let report = sync(&services).await;
        assert!(report.is_success(), "{report:?}");
        assert_eq!(
            report.streams.iter().map(|s| s.changed).sum::<u64>(),
            2,
            "one changed charge, one new refund"
        );
        assert_eq!(
            record_count(&services, "charges").await,
            5,
            "the changed charge replaced its earlier version"
        );
        // March gross 50 + 99 = 149; April refunds 10 + 5 = 15, so April net 62.5 - 15.
        assert_eq!(
            series(&services, "gross_revenue").await,
            [
                ("2026-03".into(), Some(149.0)),
                ("2026-04".into(), Some(62.5))
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            series(&services, "net_revenue").await,
            [
                ("2026-03".into(), Some(149.0)),
                ("2026-04".into(), Some(47.5))
            ],
            "{}",
            db.backend
        );
        stripe.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn a_record_whose_event_time_moves_is_recomputed_in_both_periods() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    let extra = r#"
[measures.paid_by_payout]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "metadata.booked_at"
value = "amount / 100"
aggregate = "sum"
"#;
    let page = |booked_at: &str| {
        format!(
            r#"{{"object":"list","has_more":false,"data":[{{"id":"ch_x","created":1772000000,"amount":1000,"status":"succeeded","metadata":{{"booked_at":"{booked_at}"}}}}]}}"#
        )
    };
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(page("2026-03-10"), "application/json"),
        )
        .up_to_n_times(1)
        .mount(&stripe)
        .await;
    let services = services(settings(
        &format!("{}{extra}", charges_only(&db.url, &stripe.uri())),
        GOOD_KEY,
    ))
    .await;
    assert!(sync(&services).await.is_success());
    assert_eq!(
        series(&services, "paid_by_payout").await,
        [
            ("2026-03".into(), Some(10.0)),
            ("2026-04".into(), Some(0.0))
        ]
    );
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(page("2026-04-02"), "application/json"),
        )
        .mount(&stripe)
        .await;
    assert!(sync(&services).await.is_success());
    assert_eq!(
        series(&services, "paid_by_payout").await,
        [
            ("2026-03".into(), Some(0.0)),
            ("2026-04".into(), Some(10.0))
        ],
        "the old period lost the record, the new one gained it"
    );
}

#[tokio::test]
async fn the_app_serves_health_readiness_and_the_series_api() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount_stripe_fixtures(&stripe, 1).await;
    let app = spawn_app(settings(
        &stripe_config(&db.url, &stripe.uri(), ""),
        GOOD_KEY,
    ))
    .await;
    assert!(sync(&app.services).await.is_success());
    assert_eq!(
        app.get_json("/healthz").await,
        (200, serde_json::json!({"status": "ok"}))
    );
    assert_eq!(app.get_json("/readyz").await.0, 200);
    let (status, body) = app
        .get_json("/api/v1/measures/net_revenue/series?from=2026-03-01&to=2026-04-30")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body[1]["value"], serde_json::json!(52.5));
    let (status, body) = app.get_json("/api/v1/measures/nope/series").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = app
        .get_json("/api/v1/measures/net_revenue/series?from=March")
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("from: \"March\"")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_changed_measure_definition_recomputes_its_history_from_stored_records() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        mount_stripe_fixtures(&stripe, 1).await;
        let text = stripe_config(&db.url, &stripe.uri(), "");
        let services = services(settings(&text, GOOD_KEY)).await;
        assert!(sync(&services).await.is_success());
        assert_eq!(
            series(&services, "gross_revenue").await,
            [
                ("2026-03".into(), Some(50.0)),
                ("2026-04".into(), Some(62.5))
            ]
        );
        services.store.close().await;

        // Count every charge, failed ones included, and in UTC: the history is rebuilt from
        // the stored records at the next start, without asking the API again (the mocks
        // expected exactly one request each).
        let changed = text
            .replacen(
                "where = \"status == 'succeeded'\"\nvalue = \"amount / 100\"",
                "value = \"amount / 100\"",
                1,
            )
            .replace("Europe/Berlin", "UTC");
        let services = crate::helpers::services(settings(&changed, GOOD_KEY)).await;
        // UTC March: 20 + 30 + 99 (failed, now counted) + 12.50 (late on 31 March); April: 50.
        assert_eq!(
            series(&services, "gross_revenue").await,
            [
                ("2026-03".into(), Some(161.5)),
                ("2026-04".into(), Some(50.0))
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            series(&services, "net_revenue").await,
            [
                ("2026-03".into(), Some(161.5)),
                ("2026-04".into(), Some(40.0))
            ],
            "{}",
            db.backend
        );
        services.store.close().await;
        stripe.verify().await;
    }
}
