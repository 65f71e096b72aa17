//! The `/api/v1` contract beyond the scorecard: measures, sources, alerts, and the write
//! endpoints behind the bearer token (401 without it, 403 when none is configured).

use serde_json::{Value, json};

use crate::helpers::*;

async fn post(
    address: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("http://{address}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request to the app");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        challenge,
    )
}

#[tokio::test]
async fn reads_and_guarded_writes() {
    scorekeeper::tls::install_crypto_provider();
    let db = TestDb::sqlite();
    let stripe = wiremock::MockServer::start().await;
    mount_stripe_fixtures(&stripe, 1).await;
    let text = stripe_config(&db.url, &stripe.uri(), "").replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\napi_token = \"api-secret-1\"",
    );
    let app = spawn_app(settings(&text, GOOD_KEY)).await;

    let (status, measures) = app.get_json("/api/v1/measures").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = measures
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|measure| measure["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"gross_revenue") && ids.contains(&"net_revenue"),
        "{ids:?}"
    );
    let net = measures
        .as_array()
        .expect("a list")
        .iter()
        .find(|measure| measure["id"] == "net_revenue")
        .expect("net revenue");
    assert_eq!(net["kind"], "formula");
    assert_eq!(net["alert_on"], json!(["red"]));

    // The scorecard is built once per sync (and minute): the same body until a sync.
    let (_, before) = app.get_json("/api/v1/scorecard").await;
    let (_, again) = app.get_json("/api/v1/scorecard").await;
    // (Unless the minute turned in between, which also rebuilds it.)
    let minute = |view: &Value| {
        view["generated_at"]
            .as_str()
            .map(|text| text[..16].to_string())
    };
    if minute(&before) == minute(&again) {
        assert_eq!(
            before["generated_at"], again["generated_at"],
            "served from the cache"
        );
    }

    let series = "/api/v1/measures/gross_revenue/series?from=2026-03-01&to=2026-04-30";
    let (_, empty) = app.get_json(series).await;
    assert_eq!(empty[0]["value"], 0.0, "nothing synced yet: {empty}");

    // Writes need the token.
    let (status, body, challenge) =
        post(app.address, "/api/v1/sources/stripe/sync", None, json!({})).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (401, Some("Bearer")),
        "{body}"
    );
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _, _) = post(
        app.address,
        "/api/v1/sources/stripe/sync",
        Some("api-secret-2"),
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, report, _) = post(
        app.address,
        "/api/v1/sources/stripe/sync",
        Some("api-secret-1"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["success"], true);
    let (_, after) = app.get_json("/api/v1/scorecard").await;
    assert_ne!(
        before["generated_at"], after["generated_at"],
        "rebuilt after the sync"
    );
    let (status, body, _) = post(
        app.address,
        "/api/v1/sources/nope/sync",
        Some("api-secret-1"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let (status, sources) = app.get_json("/api/v1/sources").await;
    assert_eq!(status, 200);
    let streams = &sources[0]["streams"];
    assert_eq!(sources[0]["name"], "stripe");
    assert_eq!(streams[0]["stream"], "charges");
    assert_eq!(streams[0]["records"], 5);
    assert!(streams[0]["last_success_at"].is_string(), "{sources}");
    assert!(sources[0]["next_run"].is_string());

    let (status, silenced, _) = post(
        app.address,
        "/api/v1/alerts/net_revenue/silence",
        Some("api-secret-1"),
        json!({"for": "3d"}),
    )
    .await;
    assert_eq!(status, 200, "{silenced}");
    let (status, body, _) = post(
        app.address,
        "/api/v1/alerts/net_revenue/silence",
        Some("api-secret-1"),
        json!({"for": "soon"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"soon\"")),
        "{body}"
    );
    let (status, alerts) = app.get_json("/api/v1/alerts").await;
    assert_eq!(status, 200);
    assert!(
        alerts["alerts"].is_array() && alerts["deliveries"].is_array(),
        "{alerts}"
    );
    app.stop().await;

    // Without an api_token, writes are off: 403 saying how to turn them on.
    let db = TestDb::sqlite();
    let app = spawn_app(settings(
        &stripe_config(&db.url, &stripe.uri(), ""),
        GOOD_KEY,
    ))
    .await;
    let (status, body, _) = post(
        app.address,
        "/api/v1/sources/stripe/sync",
        Some("anything"),
        json!({}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("server.api_token"))
    );
    app.stop().await;
}

/// `/metrics` in the Prometheus text format, checked with the Prometheus client
/// library's own parser (Python `prometheus_client`) when it is installed (CI requires
/// it through `SCOREKEEPER_TEST_PROMETHEUS=1`), and line by line here.
#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    scorekeeper::tls::install_crypto_provider();
    for db in TestDb::all().await {
        check_metrics(&db).await;
    }
}

async fn check_metrics(db: &TestDb) {
    let stripe = wiremock::MockServer::start().await;
    mount_stripe_fixtures(&stripe, 1).await;
    let app = spawn_app(settings(
        &stripe_config(&db.url, &stripe.uri(), ""),
        GOOD_KEY,
    ))
    .await;
    assert!(sync_source(&app.services, "stripe").await.is_success());
    let response = reqwest::get(format!("http://{}/metrics", app.address))
        .await
        .expect("metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    assert_eq!(
        content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text().await.expect("body");
    for expected in [
        "scorekeeper_sync_runs_total{source=\"stripe\",result=\"success\"} 1",
        "scorekeeper_records_synced_total{source=\"stripe\"} 6",
        "scorekeeper_records_stored{source=\"stripe\",stream=\"charges\"} 5",
        "scorekeeper_sync_duration_seconds_count{source=\"stripe\"} 1",
        "scorekeeper_outbox_messages{status=\"pending\"} ",
        "scorekeeper_measure_status{measure=\"net_revenue\",perspective=\"financial\",status=\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        text.lines().any(|line| line.starts_with(
            "scorekeeper_upstream_responses_total{host=\"127.0.0.1\",status=\"200\"} "
        )),
        "{text}"
    );
    // Every sample line is `name{labels} value` with a declared name.
    let declared: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().expect("a name");
        assert!(
            declared.iter().any(|family| name == *family
                || name
                    .strip_prefix(family)
                    .is_some_and(|rest| ["_bucket", "_sum", "_count"].contains(&rest))),
            "undeclared {name}"
        );
    }
    // The reference parser.
    let required = std::env::var_os("SCOREKEEPER_TEST_PROMETHEUS").is_some();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).expect("write");
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg("import sys\nfrom prometheus_client.parser import text_string_to_metric_families as parse\nfamilies = list(parse(open(sys.argv[1]).read()))\nprint(len(families), sum(len(f.samples) for f in families))")
        .arg(&file)
        .output()
        .await;
    match output {
        Ok(output) if output.status.success() => {
            let printed = String::from_utf8_lossy(&output.stdout);
            let families: usize = printed
                .split_whitespace()
                .next()
                .and_then(|count| count.parse().ok())
                .expect("a count");
            assert_eq!(families, declared.len(), "{printed}");
        }
        other if required => panic!("prometheus_client must parse /metrics here: {other:?}"),
        other => eprintln!("skipped the prometheus_client parse (not installed?): {other:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn the_strategy_map_has_one_link_per_driver_with_its_evidence() {
    scorekeeper::tls::install_crypto_provider();
    let db = TestDb::sqlite();
    let stripe = wiremock::MockServer::start().await;
    mount_stripe_fixtures(&stripe, 1).await;
    let text = stripe_config(
        &db.url,
        &stripe.uri(),
        r#"
[objectives.revenue]
name = "Grow revenue"
perspective = "financial"
drivers = ["loyalty"]

[objectives.loyalty]
name = "Loyal customers"
perspective = "customer"
"#,
    )
    .replace(
        "value = \"amount / 100\"\naggregate = \"sum\"",
        "value = \"amount / 100\"\naggregate = \"sum\"\nobjective = \"revenue\"",
    )
    .replace(
        "value = \"customer\"\naggregate = \"count_distinct\"",
        "value = \"customer\"\naggregate = \"count_distinct\"\nobjective = \"loyalty\"",
    );
    let app = spawn_app(settings(&text, GOOD_KEY)).await;
    assert!(sync_source(&app.services, "stripe").await.is_success());
    let (status, map) = app.get_json("/api/v1/strategy-map").await;
    assert_eq!(status, 200, "{map}");
    assert_eq!(map["links"].as_array().map(Vec::len), Some(1), "{map}");
    let link = &map["links"][0];
    assert_eq!(
        (link["driver"].as_str(), link["effect"].as_str()),
        (Some("loyalty"), Some("revenue"))
    );
    assert_eq!(link["pairs"][0]["driver_measure"], "customers");
    assert_eq!(link["pairs"][0]["effect_measure"], "gross_revenue");
    // Two months of history: not enough for a coefficient (8 periods at least).
    assert!(link["best"].is_null(), "{link}");
    assert_eq!(map["min_periods"], 8);
    app.stop().await;
}
