//! `scorekeeper backfill`: re-pulling a source's history from a date, resuming after an
//! interruption, and handing over to incremental syncs when done.

use std::sync::{Arc, Mutex};

use scorekeeper::app::Services;
use scorekeeper::sources::engine::{SourceReport, SyncOptions, Trigger};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// 2025-11-01 at midnight in Berlin (CET, UTC+1), as Stripe's `created[gte]`.
const SINCE_GTE: &str = "1761951600";

fn since() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(SINCE_GTE.parse().expect("number"), 0).expect("valid")
}

/// Runs a backfill of the Stripe source from [`SINCE_GTE`], collecting the progress
/// reports as `(pages, records, end)`.
async fn backfill(services: &Services) -> (SourceReport, Vec<(u64, u64, Option<&'static str>)>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = SyncOptions {
        since: Some(since()),
        progress: Some(Arc::new(move |progress| {
            sink.lock().expect("not poisoned").push((
                progress.pages,
                progress.records,
                progress.end,
            ));
        })),
        ..SyncOptions::default()
    };
    let report = services
        .engine
        .sync_source_with(
            &services.settings.sources["stripe"],
            Trigger::Backfill,
            &CancellationToken::new(),
            &options,
        )
        .await
        .expect("backfill runs");
    let seen = seen.lock().expect("not poisoned").clone();
    (report, seen)
}

#[tokio::test]
async fn a_backfill_walks_from_its_date_resumes_after_a_failure_and_then_hands_over() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        let services = services(settings(
            &charges_config(&db.url, &stripe.uri(), &["charges"]),
            GOOD_KEY,
        ))
        .await;
        // The first page comes from the backfill's date, not from start_date; the
        // second page fails every attempt.
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("created[gte]", SINCE_GTE))
            .and(query_param_is_missing("starting_after"))
            .respond_with(fixture_response("stripe/charges_page_1.json"))
            .expect(1)
            .mount(&stripe)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&stripe)
            .await;
        let (report, progress) = backfill(&services).await;
        assert!(!report.is_success(), "{}: page 2 failed", db.backend);
        assert_eq!(
            progress.last(),
            Some(&(1, 3, Some("failed"))),
            "{}: {progress:?}",
            db.backend
        );
        let state = services
            .store
            .stream_state("stripe", "charges")
            .await
            .expect("state");
        assert_eq!(
            state.backfill_since,
            Some(SINCE_GTE.parse().expect("number")),
            "{}: the backfill is remembered",
            db.backend
        );
        stripe.verify().await;

        // Run again: it continues after the committed page with the same lower bound,
        // and does not read page 1 again.
        stripe.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .and(query_param("created[gte]", SINCE_GTE))
            .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
            .respond_with(fixture_response("stripe/charges_page_2.json"))
            .expect(1)
            .mount(&stripe)
            .await;
        let (report, progress) = backfill(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        assert_eq!(progress.last(), Some(&(1, 2, Some("done"))), "{progress:?}");
        stripe.verify().await;
        let state = services
            .store
            .stream_state("stripe", "charges")
            .await
            .expect("state");
        assert_eq!(state.backfill_since, None, "{}: finished", db.backend);
        // All five charges are counted once (March and April 2026, from the fixtures).
        let revenue = series(&services, "gross_revenue").await;
        assert_eq!(
            revenue.iter().filter(|(_, value)| value.is_some()).count(),
            revenue.len()
        );
        let total: f64 = revenue.iter().filter_map(|(_, value)| *value).sum();
        let expected = fixture_total_succeeded();
        assert!(
            (total - expected).abs() < 1e-9,
            "{}: {total} vs {expected}",
            db.backend
        );

        // The next scheduled sync is incremental again: from the newest charge minus
        // the lookback, not from the backfill's date.
        stripe.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                r#"{"object":"list","url":"/v1/charges","has_more":false,"data":[]}"#,
                "application/json",
            ))
            .mount(&stripe)
            .await;
        assert!(sync_source(&services, "stripe").await.is_success());
        let requests = stripe.received_requests().await.expect("recorded");
        let gte = requests[0]
            .url
            .query_pairs()
            .find(|(name, _)| name == "created[gte]")
            .map(|(_, value)| value.into_owned())
            .expect("filtered");
        let gte: i64 = gte.parse().expect("unix seconds");
        assert!(
            gte > SINCE_GTE.parse::<i64>().expect("number"),
            "{}: {gte}",
            db.backend
        );
        services.store.close().await;
    }
}

/// The sum of `amount / 100` over the fixtures' succeeded charges.
fn fixture_total_succeeded() -> f64 {
    ["stripe/charges_page_1.json", "stripe/charges_page_2.json"]
        .iter()
        .flat_map(|file| {
            let page: serde_json::Value = serde_json::from_str(&fixture(file)).expect("json");
            page["data"].as_array().expect("data").clone()
        })
        .filter(|charge| charge["status"] == "succeeded")
        .map(|charge| charge["amount"].as_f64().expect("amount") / 100.0)
        .sum()
}
