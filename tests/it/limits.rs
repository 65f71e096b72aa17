//! The API's limits: request bodies over 64 KB get 413 and change nothing, oversized
//! request headers get 431, and the server listens on loopback unless told otherwise.

use crate::helpers::*;

const TOKEN: &str = "limits-token-1";

async fn app() -> (TestApp, TestDb) {
    scorekeeper::tls::install_crypto_provider();
    let db = TestDb::sqlite();
    let text = stripe_config(&db.url, "http://127.0.0.1:9", "").replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\napi_token = \"{TOKEN}\""),
    );
    (spawn_app(settings(&text, GOOD_KEY)).await, db)
}

#[tokio::test]
async fn a_body_over_64_kb_is_refused_with_413_and_changes_nothing() {
    let (app, _db) = app().await;
    let client = reqwest::Client::new();
    let silence = format!("http://{}/api/v1/alerts/net_revenue/silence", app.address);
    // Valid JSON, padded past the limit.
    let padded = format!(r#"{{"for": "1h", "padding": "{}"}}"#, "x".repeat(64 * 1024));
    let response = client
        .post(&silence)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(padded)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("a JSON error");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let now = chrono::Utc::now().timestamp();
    let silences = app.services.store.silences(now).await.expect("silences");
    assert!(silences.is_empty(), "nothing was silenced: {silences:?}");
    // The same call under the limit goes through, so the 413 was the size.
    let response = client
        .post(&silence)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"for": "1h"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status().as_u16(),
        200,
        "{:?}",
        response.text().await
    );
    let silences = app.services.store.silences(now).await.expect("silences");
    assert_eq!(
        silences.len(),
        1,
        "the small call silenced (so the check above can see one)"
    );
    app.stop().await;
}

#[tokio::test]
async fn oversized_request_headers_are_refused_with_431() {
    let (app, _db) = app().await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/healthz", app.address);
    let fine = client
        .get(&url)
        .header("x-note", "y".repeat(8 * 1024))
        .send()
        .await
        .expect("request");
    assert_eq!(fine.status().as_u16(), 200);
    // hyper's HTTP/1 read buffer (about 400 KB) bounds the request head.
    let answer = client
        .get(&url)
        .header("x-note", "y".repeat(512 * 1024))
        .send()
        .await;
    match answer {
        Ok(response) => assert_eq!(response.status().as_u16(), 431),
        Err(error) => panic!("expected a 431 answer, the connection failed: {error}"),
    }
    // The server keeps serving.
    let again = client.get(&url).send().await.expect("request");
    assert_eq!(again.status().as_u16(), 200);
    app.stop().await;
}

#[test]
fn the_server_listens_on_loopback_unless_told_otherwise() {
    let text = stripe_config("sqlite://unused.db", "http://127.0.0.1:9", "")
        .replace("[server]\nlisten = \"127.0.0.1:0\"\n", "");
    assert!(!text.contains("[server]"), "no server section: {text}");
    let settings = settings(&text, GOOD_KEY);
    assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
    assert!(settings.server.listen.ip().is_loopback());
}
