//! `every_response_matches_the_served_document`: real answers, good and bad, validated
//! against the served document (see the parent module).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::validate::{Exchange, Recorder, Send, check_declared, mutants, validate_with_python};
use super::{TOKEN, documented};
use crate::helpers::*;

/// A Stripe list of the charges of the last 40 days: 1 to 5 a day, of varying amounts,
/// so daily revenue and daily orders move together (evidence on the strategy map).
fn charges(now: i64) -> String {
    let mut data = Vec::new();
    for day in 1..=40_i64 {
        let created = now - day * 86_400;
        let count = 1 + (day * 7) % 5;
        for index in 0..count {
            data.push(json!({
                "id": format!("ch_{day:03}_{index}"), "object": "charge",
                "amount": 1000 + ((day * 13 + index) % 7) * 100, "created": created,
                "currency": "eur", "customer": format!("cus_{}", (day + index) % 9),
                "status": "succeeded"
            }));
        }
    }
    json!({"object": "list", "url": "/v1/charges", "has_more": false, "data": data}).to_string()
}

/// The contract scorecard (`tests/fixtures/openapi/contract.toml`) with its addresses.
fn contract_config(
    database_url: &str,
    stripe_url: &str,
    broken_url: &str,
    hooks_url: &str,
    start_date: &str,
) -> String {
    fixture("openapi/contract.toml")
        .replace("@database_url@", database_url)
        .replace("@stripe_url@", stripe_url)
        .replace("@broken_url@", broken_url)
        .replace("@hooks_url@", hooks_url)
        .replace("@start_date@", start_date)
        .replace("@TOKEN@", TOKEN)
}

const SYNC: &str = "/api/v1/sources/{name}/sync";
const SILENCE: &str = "/api/v1/alerts/{id}/silence";
const SERIES: &str = "/api/v1/measures/{id}/series";

#[tokio::test]
async fn every_response_matches_the_served_document() {
    scorekeeper::tls::install_crypto_provider();
    for db in TestDb::all().await {
        check_contract(&db).await;
    }
}

async fn check_contract(db: &TestDb) {
    let backend = db.backend;
    let now = chrono::Utc::now();
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(charges(now.timestamp()), "application/json"),
        )
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"object": "list", "url": "/v1/refunds", "has_more": false, "data": []}"#,
            "application/json",
        ))
        .mount(&stripe)
        .await;
    let broken = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("stripe/error_invalid_key.json"), "application/json"),
        )
        .mount(&broken)
        .await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ok"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/fail"))
        .respond_with(ResponseTemplate::new(500).set_body_string("receiver down"))
        .mount(&hooks)
        .await;
    let start_date = (now - chrono::Duration::days(100))
        .format("%Y-%m-%d")
        .to_string();
    let text = contract_config(
        &db.url,
        &stripe.uri(),
        &broken.uri(),
        &hooks.uri(),
        &start_date,
    );

    let mut exchanges = writes_off(&text, backend).await;
    let app = spawn_app(settings(&text, GOOD_KEY)).await;
    let mut calls = Recorder::new(app.address);
    refused_writes(&mut calls).await;
    syncs(&mut calls, &app, backend).await;
    alerts_fire_and_are_delivered(&app, backend).await;
    silences(&mut calls).await;
    let served = reads(&mut calls, backend).await;
    unrouted(&mut calls).await;
    failures(&mut calls, db).await;
    exchanges.append(&mut calls.exchanges);
    app.stop().await;

    // Every status each route answered with is declared, with its media type and headers,
    // and every documented response was seen.
    coverage(&served, &exchanges, backend);
    exchanges.extend(mutants(&exchanges));
    validate_with_python(&served, &exchanges).await;
}

/// The two write endpoints with no `api_token` configured: 403.
async fn writes_off(text: &str, backend: &str) -> Vec<Exchange> {
    let app = spawn_app(settings(
        &text.replace(&format!("api_token = \"{TOKEN}\"\n"), ""),
        GOOD_KEY,
    ))
    .await;
    let mut calls = Recorder::new(app.address);
    let (sync, silence) = (SYNC, SILENCE);
    let (status, _) = calls
        .post(sync, "/api/v1/sources/stripe/sync", Some(TOKEN), None)
        .await;
    assert_eq!(status, 403, "{backend}");
    let (status, body) = calls
        .post(
            silence,
            "/api/v1/alerts/revenue/silence",
            None,
            Some(json!({"for": "1h"})),
        )
        .await;
    assert_eq!(status, 403, "{backend}");
    assert_eq!(body["error"]["code"], "forbidden");
    app.stop().await;
    calls.exchanges
}

/// Reads before any sync, and writes without the right token: 401 with a challenge.
async fn refused_writes(calls: &mut Recorder) {
    let (sync, silence) = (SYNC, SILENCE);
    // Before any sync: empty series, alerts and runs.
    calls.get("/api/v1/scorecard", "/api/v1/scorecard").await;
    let (status, empty) = calls.get("/api/v1/alerts", "/api/v1/alerts").await;
    assert_eq!(
        (status, empty["alerts"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    calls.get("/api/v1/sources", "/api/v1/sources").await;
    calls
        .get("/api/v1/strategy-map", "/api/v1/strategy-map")
        .await;

    // Refused writes.
    let (status, body) = calls
        .post(sync, "/api/v1/sources/stripe/sync", None, None)
        .await;
    assert_eq!(
        (status, calls.last_header("www-authenticate")),
        (401, Some("Bearer")),
        "{body}"
    );
    calls
        .post(
            sync,
            "/api/v1/sources/stripe/sync",
            Some("contract-token-2"),
            None,
        )
        .await;
    assert_eq!(calls.last_header("www-authenticate"), Some("Bearer"));
    let (status, _) = calls
        .call(
            Send::PostWithAuthorization(&format!("Basic {TOKEN}")),
            Some(sync),
            "/api/v1/sources/stripe/sync",
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = calls
        .post(
            silence,
            "/api/v1/alerts/revenue/silence",
            None,
            Some(json!({"for": "1h"})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = calls
        .post(
            silence,
            "/api/v1/alerts/revenue/silence",
            Some("x"),
            Some(json!({"for": "1h"})),
        )
        .await;
    assert_eq!(status, 401);
}

/// Syncs through the API: one source succeeds, one fails upstream (a report, not an
/// error), an unknown one is 404, and a source whose lock is held is busy.
async fn syncs(calls: &mut Recorder, app: &TestApp, backend: &str) {
    let sync = SYNC;
    let (status, report) = calls
        .post(sync, "/api/v1/sources/stripe/sync", Some(TOKEN), None)
        .await;
    assert_eq!(
        (status, &report["success"]),
        (200, &json!(true)),
        "{backend}: {report}"
    );
    let (status, report) = calls
        .post(sync, "/api/v1/sources/broken/sync", Some(TOKEN), None)
        .await;
    assert_eq!(
        (status, &report["success"]),
        (200, &json!(false)),
        "{report}"
    );
    assert!(report["streams"][0]["error"].is_string(), "{report}");
    let (status, body) = calls
        .post(sync, "/api/v1/sources/nope/sync", Some(TOKEN), None)
        .await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = calls
        .post(sync, "/api/v1/sources/%FF/sync", Some(TOKEN), None)
        .await;
    assert_eq!(status, 400);
    {
        let syncing = app
            .services
            .locks
            .try_acquire("stripe", None)
            .await
            .expect("the stripe source is free");
        let (status, body) = calls
            .post(sync, "/api/v1/sources/stripe/sync", Some(TOKEN), None)
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (409, &json!("busy")),
            "{body}"
        );
        syncing.release().await;
    }
}

/// The last complete month is far below its target: the alert fires, and is delivered to
/// one channel and fails on the other.
async fn alerts_fire_and_are_delivered(app: &TestApp, backend: &str) {
    scorekeeper::app::evaluate_alerts(&app.services)
        .await
        .expect("evaluation");
    app.services
        .dispatcher
        .run_once(chrono::Utc::now())
        .await
        .expect("deliveries");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let deliveries = app
            .services
            .store
            .deliveries(100)
            .await
            .expect("deliveries");
        if deliveries.len() >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{backend}: no deliveries: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Silences, good and bad (400, 404, 413).
async fn silences(calls: &mut Recorder) {
    let silence = SILENCE;
    let (status, silenced) = calls
        .post(
            silence,
            "/api/v1/alerts/revenue/silence",
            Some(TOKEN),
            Some(json!({"for": "3d"})),
        )
        .await;
    assert_eq!(status, 200, "{silenced}");
    let (status, _) = calls
        .post(
            silence,
            "/api/v1/alerts/broken/silence",
            Some(TOKEN),
            Some(json!({"for": "2h"})),
        )
        .await;
    assert_eq!(status, 200);
    for (body, expected) in [
        (Some(json!({"for": "soon"})), 400),
        (Some(json!({"for": 3})), 400),
        (Some(json!({"until": "3d"})), 400),
        (Some(json!({"for": "900000000000y"})), 400),
        (None, 400),
    ] {
        let (status, answer) = calls
            .post(
                silence,
                "/api/v1/alerts/revenue/silence",
                Some(TOKEN),
                body.clone(),
            )
            .await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (expected, &json!("bad_request")),
            "{body:?}: {answer}"
        );
    }
    let (status, _) = calls
        .call(
            Send::Post {
                token: Some(TOKEN),
                body: Some("{\"for\": ".to_string()),
            },
            Some(silence),
            "/api/v1/alerts/revenue/silence",
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = calls
        .post(
            silence,
            "/api/v1/alerts/nope/silence",
            Some(TOKEN),
            Some(json!({"for": "3d"})),
        )
        .await;
    assert_eq!(status, 404);
    let oversized = json!({"for": "3d", "padding": "x".repeat(70 * 1024)});
    let (status, body) = calls
        .post(
            silence,
            "/api/v1/alerts/revenue/silence",
            Some(TOKEN),
            Some(oversized),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("payload_too_large")),
        "{body}"
    );
}

/// Every read, with data; returns the served document.
async fn reads(calls: &mut Recorder, backend: &str) -> Value {
    let (status, scorecard) = calls.get("/api/v1/scorecard", "/api/v1/scorecard").await;
    assert_eq!(status, 200);
    assert_eq!(
        scorecard["perspectives"].as_array().map(Vec::len),
        Some(4),
        "{scorecard}"
    );
    let (_, measures) = calls.get("/api/v1/measures", "/api/v1/measures").await;
    assert_eq!(measures.as_array().map(Vec::len), Some(6), "{measures}");
    let series = SERIES;
    let (status, points) = calls
        .get(series, "/api/v1/measures/daily_revenue/series")
        .await;
    assert_eq!(status, 200);
    assert!(
        points.as_array().is_some_and(|points| points.len() >= 40),
        "{points}"
    );
    let (status, _) = calls
        .get(
            series,
            "/api/v1/measures/revenue/series?from=2026-01-01&to=2026-12-31",
        )
        .await;
    assert_eq!(status, 200);
    let (status, points) = calls.get(series, "/api/v1/measures/refunded/series").await;
    assert_eq!(
        (status, points),
        (200, json!([])),
        "no stored value: no periods"
    );
    for (bad, expected) in [
        ("/api/v1/measures/revenue/series?from=yesterday", 400),
        ("/api/v1/measures/revenue/series?to=2026-13-01", 400),
        (
            "/api/v1/measures/revenue/series?from=2026-01-01&from=2026-02-01",
            400,
        ),
        ("/api/v1/measures/%FF/series", 400),
        ("/api/v1/measures/nope/series", 404),
    ] {
        let (status, body) = calls.get(series, bad).await;
        assert_eq!(status, expected, "{bad}: {body}");
    }
    let (_, alerts) = calls.get("/api/v1/alerts", "/api/v1/alerts").await;
    assert!(
        alerts["alerts"]
            .as_array()
            .is_some_and(
                |alerts| alerts.iter().any(|alert| alert["subject"] == "revenue"
                    && alert["state"] == "firing"
                    && alert["silenced_until"].is_string())
            ),
        "{backend}: {alerts}"
    );
    assert!(
        alerts["history"]
            .as_array()
            .is_some_and(|history| !history.is_empty()),
        "{alerts}"
    );
    let results: BTreeSet<&str> = alerts["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter_map(|delivery| delivery["result"].as_str())
        .collect();
    assert!(
        results.contains("delivered") && results.len() >= 2,
        "{alerts}"
    );
    let (_, sources) = calls.get("/api/v1/sources", "/api/v1/sources").await;
    let broken_source = sources
        .as_array()
        .and_then(|sources| sources.iter().find(|source| source["name"] == "broken"))
        .expect("the broken source");
    assert!(
        broken_source["streams"][0]["last_error"].is_string(),
        "{sources}"
    );
    assert_eq!(broken_source["last_run"]["result"], "failed");
    let (_, map) = calls
        .get("/api/v1/strategy-map", "/api/v1/strategy-map")
        .await;
    let link = |driver: &str| {
        map["links"]
            .as_array()
            .and_then(|links| links.iter().find(|link| link["driver"] == driver))
            .cloned()
            .unwrap_or_else(|| panic!("no link from {driver}: {map}"))
    };
    let evidence = link("service");
    assert_eq!(evidence["best"]["driver_measure"], "daily_orders", "{map}");
    assert!(evidence["best"]["best"]["coefficient"].is_number(), "{map}");
    assert!(
        evidence["pairs"]
            .as_array()
            .is_some_and(|pairs| pairs.iter().any(|pair| pair["best"].is_null())),
        "the monthly pair has not enough data: {map}"
    );
    assert!(link("skills")["best"].is_null(), "{map}");
    calls.get("/healthz", "/healthz").await;
    let (status, ready) = calls.get("/readyz", "/readyz").await;
    assert_eq!((status, &ready["database"]), (200, &json!(backend)));
    let (status, _) = calls.get("/metrics", "/metrics").await;
    assert_eq!(status, 200);
    let (status, _) = calls.get("/", "/").await;
    assert_eq!(status, 200);
    let page = &calls.exchanges.last().expect("the page").body;
    let version = page
        .split("/assets/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the page names its assets' folder")
        .to_string();
    for file in ["app.js", "style.css", "icon.svg"] {
        let (status, _) = calls
            .get(
                "/assets/{version}/{file}",
                &format!("/assets/{version}/{file}"),
            )
            .await;
        assert_eq!(status, 200, "{file}");
    }
    let (status, _) = calls
        .get("/assets/{version}/{file}", "/assets/another-build/app.js")
        .await;
    assert_eq!(status, 404);
    let (status, _) = calls.get("/api/v1/events", "/api/v1/events").await;
    assert_eq!(status, 200);
    assert!(
        calls
            .exchanges
            .last()
            .is_some_and(|exchange| exchange.body.contains("event: sync")),
        "the events stream starts with the current sync count"
    );
    let (status, served) = calls
        .get("/api/v1/openapi.json", "/api/v1/openapi.json")
        .await;
    assert_eq!(status, 200);
    served
}

/// No route: the fallback and the method check answer with the error shape.
async fn unrouted(calls: &mut Recorder) {
    let (status, _) = calls.call(Send::Get, None, "/api/v2/scorecard").await;
    assert_eq!(status, 404);
    let (status, body) = calls
        .call(Send::Get, None, "/api/v1/sources/stripe/sync")
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (405, &json!("method_not_allowed"))
    );
    let (status, _) = calls
        .call(
            Send::Post {
                token: Some(TOKEN),
                body: None,
            },
            None,
            "/api/v1/scorecard",
        )
        .await;
    assert_eq!(status, 405);
}

/// The database fails under the daemon: 500 with the generic message, 503 not ready.
async fn failures(calls: &mut Recorder, db: &TestDb) {
    let (backend, sync, silence, series) = (db.backend, SYNC, SILENCE, SERIES);
    break_database(db, &["measure_values", "silences"]).await;
    // A finished sync moves the scorecard's cache on, so the next read builds again.
    let (status, report) = calls
        .post(sync, "/api/v1/sources/broken/sync", Some(TOKEN), None)
        .await;
    assert_eq!(status, 200, "{report}");
    for (route, request) in [
        ("/api/v1/scorecard", "/api/v1/scorecard"),
        (series, "/api/v1/measures/revenue/series?from=2025-01-01"),
        ("/api/v1/alerts", "/api/v1/alerts"),
        ("/api/v1/strategy-map", "/api/v1/strategy-map"),
        ("/metrics", "/metrics"),
    ] {
        let (status, body) = calls.get(route, request).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (500, &json!("internal")),
            "{backend} {request}: {body}"
        );
        assert_eq!(
            body["error"]["message"],
            "internal error; see the server log"
        );
    }
    let (status, _) = calls
        .post(
            silence,
            "/api/v1/alerts/revenue/silence",
            Some(TOKEN),
            Some(json!({"for": "3d"})),
        )
        .await;
    assert_eq!(status, 500);
    break_database(db, &["sync_runs", "_sqlx_migrations"]).await;
    let (status, _) = calls.get("/api/v1/sources", "/api/v1/sources").await;
    assert_eq!(status, 500);
    let (status, _) = calls
        .post(sync, "/api/v1/sources/broken/sync", Some(TOKEN), None)
        .await;
    assert_eq!(status, 500);
    let (status, _) = calls.get("/readyz", "/readyz").await;
    assert_eq!(status, 503);
    // Whatever the page answers now must be documented (it reads the scorecard).
    calls.get("/", "/").await;
}

/// Every status each route answered with is declared with its media type and headers,
/// and every documented response was seen at least once.
fn coverage(served: &Value, exchanges: &[Exchange], backend: &str) {
    let mut answered: BTreeSet<(String, &str, u16)> = BTreeSet::new();
    for exchange in exchanges {
        check_declared(served, exchange);
        if let Some(route) = exchange.route {
            answered.insert((exchange.method.to_string(), route, exchange.status));
        }
    }
    for (method, route) in documented(served) {
        for status in served["paths"][&route][&method]["responses"]
            .as_object()
            .expect("responses")
            .keys()
        {
            let status: u16 = status.parse().expect("a numeric status");
            assert!(
                answered.contains(&(method.clone(), route.as_str(), status)),
                "{backend}: {method} {route} {status} is documented but was never seen"
            );
        }
    }
}

/// Drops tables under the running daemon, through a connection of the test's own.
async fn break_database(db: &TestDb, tables: &[&str]) {
    for table in tables {
        if db.backend == "postgres" {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP TABLE \"{table}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .expect("drop a table");
            pool.close().await;
        } else {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
                .execute(&pool)
                .await
                .expect("drop a table");
            pool.close().await;
        }
    }
}
