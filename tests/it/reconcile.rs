//! Deletion reconciliation: a re-read of a recent window removes records that vanished
//! upstream, recomputes their periods, and leaves the incremental cursor alone.

use std::collections::BTreeMap;

use scorekeeper::app::Services;
use scorekeeper::sources::engine::{SourceReport, SyncOptions, Trigger};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

/// The Stripe charges config, judged from 2026-03-10 and reconciled over a window so
/// long that `start_date` bounds it (the test does not depend on today's date).
fn config(database_url: &str, stripe_url: &str) -> String {
    charges_config(database_url, stripe_url, &["charges"]).replace(
        "start_date = \"2026-01-01\"",
        "start_date = \"2026-03-10\"\nreconcile_window = \"100000d\"\nreconcile_schedule = \"0 0 4 * * *\"",
    )
}

async fn reconcile(services: &Services) -> SourceReport {
    services
        .engine
        .sync_source_with(
            &services.settings.sources["stripe"],
            Trigger::Reconcile,
            &CancellationToken::new(),
            &SyncOptions {
                reconcile: true,
                ..SyncOptions::default()
            },
        )
        .await
        .expect("reconcile runs")
}

/// The fixtures' charges except `without`, as one last page.
fn listing(without: &[&str]) -> String {
    let mut data = Vec::new();
    for file in ["stripe/charges_page_1.json", "stripe/charges_page_2.json"] {
        let page: serde_json::Value = serde_json::from_str(&fixture(file)).expect("json");
        data.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .filter(|charge| !without.contains(&charge["id"].as_str().expect("id")))
                .cloned(),
        );
    }
    serde_json::json!({"object": "list", "url": "/v1/charges", "has_more": false, "data": data})
        .to_string()
}

fn total(series: &[(String, Option<f64>)]) -> f64 {
    series.iter().filter_map(|(_, value)| *value).sum()
}

#[tokio::test]
async fn a_vanished_charge_is_removed_and_its_month_recomputed() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        mount_stripe_fixtures(&stripe, 1).await;
        let services = services(settings(&config(&db.url, &stripe.uri()), GOOD_KEY)).await;
        assert!(sync_source(&services, "stripe").await.is_success());
        let before = series(&services, "gross_revenue").await;
        let cursor_before = services
            .store
            .stream_state("stripe", "charges")
            .await
            .expect("state")
            .cursor;

        // Upstream, ch_3Pq2 (2026-03-15, EUR 30) is gone; ch_3Pq1 (2026-03-01) is not
        // listed either, but it lies before start_date, outside what the re-read covers.
        stripe.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param_is_missing("starting_after"))
            .and(|request: &Request| {
                // The re-read starts at the window's start: start_date here.
                request
                    .url
                    .query_pairs()
                    .any(|(name, value)| name == "created[gte]" && value == "1773097200")
            })
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                listing(&["ch_3Pq2AbCdEfGhIjKlMn", "ch_3Pq1AbCdEfGhIjKlMn"]),
                "application/json",
            ))
            .expect(1)
            .mount(&stripe)
            .await;
        let report = reconcile(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(report.streams[0].removed, 1, "{}", db.backend);
        stripe.verify().await;

        let after = series(&services, "gross_revenue").await;
        assert!(
            (total(&before) - total(&after) - 30.0).abs() < 1e-9,
            "{}: {before:?} → {after:?}",
            db.backend
        );
        let state = services
            .store
            .stream_state("stripe", "charges")
            .await
            .expect("state");
        assert_eq!(
            state.cursor, cursor_before,
            "{}: cursor untouched",
            db.backend
        );

        // A re-read that lists nothing at all removes nothing.
        stripe.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                r#"{"object":"list","url":"/v1/charges","has_more":false,"data":[]}"#,
                "application/json",
            ))
            .mount(&stripe)
            .await;
        let report = reconcile(&services).await;
        assert!(report.is_success());
        assert_eq!(report.streams[0].removed, 0, "{}", db.backend);
        assert_eq!(series(&services, "gross_revenue").await, after);
        services.store.close().await;
    }
}

#[test]
fn reconciliation_settings_are_checked() {
    let env = BTreeMap::from([
        ("TEST_STRIPE_KEY".to_string(), "k".to_string()),
        ("ZENDESK_TOKEN".to_string(), "z".to_string()),
    ]);
    let text = config("sqlite://unused.db", "http://127.0.0.1:9")
        .replace("reconcile_window = \"100000d\"\n", "")
        .replace("0 0 4 * * *", "every night")
        + r#"
[sources.support]
kind = "zendesk"
schedule = "0 0 * * * *"
subdomain = "acme"
email = "agent@example.com"
api_token = "${ZENDESK_TOKEN}"
reconcile_window = "90d"
"#;
    let problems = scorekeeper::config::load_str(&text, "test.toml", &env)
        .expect_err("invalid")
        .problems;
    assert_eq!(
        problems,
        [
            "sources.stripe.reconcile_schedule: needs reconcile_window (how far back the re-read looks, e.g. \"90d\")",
            "sources.support.reconcile_window: tickets, ticket_metrics, satisfaction_ratings cannot be reconciled (its API reports deletions itself or cannot re-list a window); limit `streams` to the others or remove reconcile_window",
        ]
    );
    let settings = scorekeeper::config::load_str(
        &config("sqlite://unused.db", "http://127.0.0.1:9"),
        "test.toml",
        &env,
    )
    .expect("valid");
    let reconcile = settings.sources["stripe"]
        .reconcile
        .as_ref()
        .expect("configured");
    assert_eq!(reconcile.schedule_text, "0 0 4 * * *");
    assert_eq!(reconcile.window.as_secs(), 100_000 * 86_400);
}
