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
